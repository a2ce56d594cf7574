"""Verify a C2PA manifest (embedded or sidecar) offline, and classify the outcome.

Verification statuses (``VerifyResult.status``)
-----------------------------------------------
``no-manifest``        no C2PA data in the file and no sidecar.
``trusted``            content intact, signature valid, signer chains to a trust anchor.
``valid``              content intact and signature valid, but no trust anchor was given
                       (and the SDK's own trust list does not know the signer): who signed
                       is unestablished, not contradicted.
``untrusted``          content intact and signature valid, trust anchors were given, and the
                       signer does not chain to any of them.
``tampered``           the content (or an assertion) changed after signing: a hash mismatch.
``invalid-signature``  the claim signature or the signing credential is bad.
``malformed``          the manifest cannot be parsed or fails validation in another way.
``unreachable``        the manifest lives at a remote URL, which this tool never fetches.

Only ``trusted``, ``valid`` and ``untrusted`` mean "the disclosure is what the signer
wrote"; ``VerifyResult.intact`` says exactly that.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from provenance.atomic import read_file_bytes
from provenance.c2pa_formats import (
    OFFLINE_VERIFY_SETTINGS,
    c2pa,
    reader_media_types,
    sidecar_path_for,
    sniff_media_type,
)
from provenance.errors import BadInputError, ManifestError

__all__ = [
    "INTACT_STATUSES",
    "ChainLink",
    "StoreOutcome",
    "VerifyResult",
    "VerifyStatus",
    "claim_generator_name",
    "load_trust_anchors",
    "manifest_actions",
    "manifest_chain",
    "read_manifest_json",
    "read_store",
    "verify",
]

VerifyStatus = Literal[
    "no-manifest",
    "trusted",
    "valid",
    "untrusted",
    "tampered",
    "invalid-signature",
    "malformed",
    "unreachable",
]

#: Statuses that mean "the disclosure is what the signer wrote".
INTACT_STATUSES = frozenset({"trusted", "valid", "untrusted"})


@dataclass
class VerifyResult:
    """The outcome of ``verify``. See the module docstring for the meaning of ``status``."""

    path: Path
    status: VerifyStatus
    source_types: list[str] = field(default_factory=list)
    generator: str | None = None
    signer: dict[str, Any] | None = None
    failure_codes: list[str] = field(default_factory=list)
    status_codes: list[str] = field(default_factory=list)
    manifest_label: str | None = None
    sidecar: Path | None = None
    validation_state: str | None = None
    remote_url: str | None = None
    error: str | None = None
    assertions: dict[str, Any] = field(default_factory=dict)
    chain: list[ChainLink] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        """True when the signature is valid and the content unchanged (trusted or not)."""
        return self.status in INTACT_STATUSES

    @property
    def trusted(self) -> bool:
        """True only when the signer chains to a trust anchor."""
        return self.status == "trusted"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (paths as strings, ``intact``/``trusted`` included)."""
        data = asdict(self)
        data["path"] = str(self.path)
        data["sidecar"] = str(self.sidecar) if self.sidecar else None
        data["intact"] = self.intact
        data["trusted"] = self.trusted
        data["chain"] = [link.to_dict() for link in self.chain]
        return data


@dataclass
class ChainLink:
    """One manifest in the history of an asset, newest (the active manifest, depth 0) first.

    ``relationship`` is how it entered its child (``parentOf``, ``componentOf``,
    ``inputTo``), ``None`` for the active manifest. ``status`` uses the ``verify`` statuses:
    for the active manifest it is the file's own; for an ingredient it is what the SDK
    recorded when the ingredient was added plus what it re-checked on reading
    (``ingredientDeltas``). An ingredient that carried no manifest is ``no-manifest``.
    """

    depth: int
    label: str | None
    relationship: str | None
    title: str | None
    status: str
    failure_codes: list[str]
    source_types: list[str]
    actions: list[str]
    generator: str | None
    claim_generator: str | None
    signer: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass
class StoreOutcome:
    """What one SDK read of a manifest store gave: a status, and the store JSON if any."""

    status: VerifyStatus
    store: dict[str, Any] | None = None
    failure_codes: list[str] = field(default_factory=list)
    status_codes: list[str] = field(default_factory=list)
    error: str | None = None
    remote_url: str | None = None


def verify(
    path: Path,
    *,
    trust_anchors: list[Path] | None = None,
    sidecar: Path | None = None,
) -> VerifyResult:
    """Verify the C2PA manifest of ``path`` (embedded, or a sidecar) offline.

    The sidecar is ``sidecar`` when given; otherwise ``<file>.c2pa`` is used when the
    format cannot embed a manifest, or when an embeddable file carries none. Trust anchors
    are CA certificates (PEM files, each may hold several); the signer is ``trusted`` only
    when it chains to one of them. Never touches the network; never raises for a bad
    manifest (that is a status), only for unusable arguments.

    Raises:
        BadInputError: ``path``, ``sidecar`` or a trust anchor is missing or unreadable, or
            a trust anchor is not a PEM certificate.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInputError("no such file (or not a regular file)", str(path))
    trust_pem = load_trust_anchors(trust_anchors)
    content = read_file_bytes(path, "input")
    media_type = sniff_media_type(path, content)

    used_sidecar: Path | None = None
    if sidecar is not None:
        used_sidecar = Path(sidecar)
        if not used_sidecar.is_file():
            raise BadInputError("no such sidecar manifest", str(used_sidecar))
        outcome = read_store(media_type, content, read_file_bytes(used_sidecar, "sidecar"),
                              trust_pem)
    else:
        candidate = sidecar_path_for(path)
        if media_type in reader_media_types():
            outcome = read_store(media_type, content, None, trust_pem)
            if outcome.status == "no-manifest" and candidate.is_file():
                used_sidecar = candidate
        elif candidate.is_file():
            used_sidecar = candidate
        else:
            outcome = StoreOutcome(status="no-manifest")
        if used_sidecar is not None:
            outcome = read_store(media_type, content, read_file_bytes(used_sidecar, "sidecar"),
                                  trust_pem)

    result = VerifyResult(
        path=path,
        status=outcome.status,
        failure_codes=outcome.failure_codes,
        status_codes=outcome.status_codes,
        sidecar=used_sidecar,
        error=outcome.error,
        remote_url=outcome.remote_url,
    )
    store = outcome.store
    if store is not None:
        result.validation_state = store.get("validation_state")
        label = store.get("active_manifest")
        result.manifest_label = label
        active = (store.get("manifests") or {}).get(label) if label else None
        if active:
            _describe_manifest(active, result)
            result.chain = manifest_chain(store, result.status, anchors_given=bool(trust_pem))
    return result


def _describe_manifest(manifest: dict[str, Any], result: VerifyResult) -> None:
    """Fill source types, generator, signer and assertions from the active manifest."""
    for assertion in manifest.get("assertions") or []:
        label = assertion.get("label", "")
        data = assertion.get("data")
        result.assertions[label] = data
        # c2pa.actions, c2pa.actions.v2 and their numbered repeats (c2pa.actions__1).
        if not re.fullmatch(r"c2pa\.actions(\.v2)?(__\d+)?", label) or not isinstance(data, dict):
            continue
        for action in data.get("actions") or []:
            source = action.get("digitalSourceType")
            if source and source not in result.source_types:
                result.source_types.append(source)
            agent = action.get("softwareAgent")
            if result.generator is None and agent:
                if isinstance(agent, dict):
                    name = agent.get("name")
                    version = agent.get("version")
                    result.generator = f"{name} {version}" if name and version else name
                elif isinstance(agent, str):
                    result.generator = agent
    info = manifest.get("signature_info")
    if info:
        result.signer = {
            "common_name": info.get("common_name"),
            "issuer": info.get("issuer"),
            "algorithm": info.get("alg"),
            "serial_number": info.get("cert_serial_number"),
            "time": info.get("time"),
        }


_ACTIONS_LABEL = re.compile(r"c2pa\.actions(\.v2)?(__\d+)?")


def manifest_actions(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The actions of a manifest's ``c2pa.actions`` assertions, each as
    ``{action, digitalSourceType, softwareAgent, when}`` (absent fields ``None``)."""
    out: list[dict[str, Any]] = []
    for assertion in manifest.get("assertions") or []:
        data = assertion.get("data")
        if not _ACTIONS_LABEL.fullmatch(str(assertion.get("label", ""))) or \
                not isinstance(data, dict):
            continue
        for action in data.get("actions") or []:
            if not isinstance(action, dict):
                continue
            agent = action.get("softwareAgent")
            if isinstance(agent, dict):
                agent = " ".join(str(agent[k]) for k in ("name", "version") if agent.get(k))
            out.append({"action": action.get("action"),
                        "digitalSourceType": action.get("digitalSourceType"),
                        "softwareAgent": agent or None, "when": action.get("when")})
    return out


def claim_generator_name(manifest: dict[str, Any]) -> str | None:
    """The claim generator as "name version" (``claim_generator_info``, or the v1 string)."""
    info = manifest.get("claim_generator_info")
    if isinstance(info, list) and info and isinstance(info[0], dict):
        first = info[0]
        return " ".join(str(first[k]) for k in ("name", "version") if first.get(k)) or None
    value = manifest.get("claim_generator")
    return str(value) if value else None


def manifest_chain(store: dict[str, Any], active_status: str, *,
                   anchors_given: bool = False, max_depth: int = 16) -> list[ChainLink]:
    """The active manifest and, through their ``ingredients``, the manifests before it.

    Depth-first, parents before other ingredients; ``max_depth`` and a visited set guard
    against hostile stores that loop.
    """
    manifests = store.get("manifests") or {}
    deltas: dict[str, list[str]] = {}
    for delta in (store.get("validation_results") or {}).get("ingredientDeltas") or []:
        codes = [f.get("code", "") for f in
                 (delta.get("validationDeltas") or {}).get("failure") or []]
        deltas[str(delta.get("ingredientAssertionURI", ""))] = codes
    links: list[ChainLink] = []
    seen: set[str] = set()

    def describe(manifest: dict[str, Any] | None, link: ChainLink) -> ChainLink:
        if manifest:
            actions = manifest_actions(manifest)
            link.actions = [str(a["action"]) for a in actions if a["action"]]
            link.source_types = list(dict.fromkeys(
                a["digitalSourceType"] for a in actions if a["digitalSourceType"]))
            link.generator = next((a["softwareAgent"] for a in actions if a["softwareAgent"]),
                                  None)
            link.claim_generator = claim_generator_name(manifest)
            link.signer = (manifest.get("signature_info") or {}).get("common_name")
            link.title = link.title or manifest.get("title")
        return link

    def walk(label: str, depth: int) -> None:
        manifest = manifests.get(label)
        if not isinstance(manifest, dict) or depth >= max_depth:
            return
        ingredients = sorted(manifest.get("ingredients") or [],
                             key=lambda i: i.get("relationship") != "parentOf")
        for ingredient in ingredients:
            if not isinstance(ingredient, dict):
                continue
            child = ingredient.get("active_manifest")
            results = (ingredient.get("validation_results") or {}).get("activeManifest") or {}
            codes = [f.get("code", "") for f in results.get("failure") or []]
            codes += [s.get("code", "") for s in ingredient.get("validation_status") or []
                      if s.get("code") not in codes]
            for uri, extra in deltas.items():
                if label in uri and ingredient.get("label") and uri.endswith(ingredient["label"]):
                    codes += [c for c in extra if c not in codes]
            if "manifest.inaccessible" in codes:
                status = "unreachable"
            elif child is None:
                status = "no-manifest"
            else:
                status = _classify(codes, "Valid", anchors_given)
            link = ChainLink(depth=depth + 1, label=child,
                             relationship=ingredient.get("relationship"),
                             title=ingredient.get("title"), status=status, failure_codes=codes,
                             source_types=[], actions=[], generator=None, claim_generator=None,
                             signer=None)
            links.append(describe(manifests.get(child) if child else None, link))
            if child and child not in seen:
                seen.add(child)
                walk(child, depth + 1)

    active = store.get("active_manifest")
    if not active or active not in manifests:
        return links
    seen.add(active)
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    links.append(describe(manifests[active], ChainLink(
        depth=0, label=active, relationship=None, title=None, status=active_status,
        failure_codes=[f.get("code", "") for f in results.get("failure") or []],
        source_types=[], actions=[], generator=None, claim_generator=None, signer=None)))
    walk(active, 0)
    return links


# Failure codes. Anything unlisted that still fails validation is "malformed": unknown
# problems must never be presented as valid.
_UNTRUSTED_CODES = frozenset({"signingCredential.untrusted"})
# Trust in a foreign timestamp authority says nothing about the content or the signer.
_BENIGN_CODES = frozenset({"timeStamp.untrusted", "signingCredential.ocsp.skipped",
                           "signingCredential.ocsp.unknown"})
_TAMPER_PREFIXES = (
    "assertion.dataHash.",
    "assertion.bmffHash.",
    "assertion.boxesHash.",
    "assertion.collectionHash.",
    "assertion.hashedURI.",
)
_SIGNATURE_PREFIXES = ("claimSignature.", "signingCredential.", "timeStamp.")


def _classify(failure_codes: Iterable[str], state: str | None, anchors_given: bool) -> VerifyStatus:
    codes = set(failure_codes)
    serious = codes - _UNTRUSTED_CODES - _BENIGN_CODES
    if any(c.startswith(_SIGNATURE_PREFIXES) and c != "claimSignature.insideValidity"
           for c in serious):
        return "invalid-signature"
    if any(c.startswith(_TAMPER_PREFIXES) for c in serious):
        return "tampered"
    if serious or state not in ("Valid", "Trusted"):
        return "malformed"
    if state == "Trusted" and not codes & _UNTRUSTED_CODES:
        return "trusted"
    return "untrusted" if anchors_given else "valid"


def read_store(
    media_type: str,
    asset: bytes,
    manifest_data: bytes | None,
    trust_pem: str | None,
) -> StoreOutcome:
    """Read and validate one manifest store with the SDK (offline) and classify it.

    ``manifest_data`` is a sidecar's bytes, or ``None`` for the manifest embedded in
    ``asset``; ``trust_pem`` the trust anchors (PEM), or ``None``. Never raises for a bad
    manifest: that is the outcome's status.
    """
    settings: dict[str, Any] = {"verify": dict(OFFLINE_VERIFY_SETTINGS, verify_trust=True)}
    if trust_pem:
        settings["trust"] = {"user_anchors": trust_pem}
    try:
        with c2pa.Context.from_dict(settings) as context:
            reader = c2pa.Reader(media_type, io.BytesIO(asset), manifest_data, context=context)
            try:
                store = json.loads(reader.json())
            finally:
                reader.close()
    except c2pa.C2paError.ManifestNotFound:
        return StoreOutcome(status="no-manifest")
    except c2pa.C2paError as exc:
        message = str(exc)
        # The native layer reports remote manifests as "Remote: ..."; newer bindings may
        # map it to C2paError.RemoteManifest. Either way: reported, never fetched.
        if isinstance(exc, c2pa.C2paError.RemoteManifest) or message.startswith("Remote"):
            match = re.search(r"https?://\S+", message)
            return StoreOutcome(
                status="unreachable",
                error="the manifest is stored remotely and this tool does not fetch it"
                      f" (offline): {message}",
                remote_url=match.group(0).rstrip(").,") if match else None,
            )
        if isinstance(exc, c2pa.C2paError.NotSupported):
            return StoreOutcome(status="no-manifest", error=message)
        return StoreOutcome(status="malformed", error=message)
    except json.JSONDecodeError as exc:
        return StoreOutcome(status="malformed", error=f"manifest JSON unreadable: {exc}")

    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    failure_codes = [item.get("code", "") for item in results.get("failure") or []]
    status_codes = [item.get("code", "") for item in store.get("validation_status") or []]
    status = _classify(failure_codes, store.get("validation_state"), bool(trust_pem))
    return StoreOutcome(status=status, store=store, failure_codes=failure_codes,
                         status_codes=status_codes)


def load_trust_anchors(paths: list[Path] | None) -> str | None:
    """The certificates in ``paths`` (PEM files) as one PEM string, or ``None`` for none.

    Raises:
        BadInputError: a file is missing, unreadable or holds no PEM certificate.
    """
    if not paths:
        return None
    pems: list[str] = []
    for anchor in paths:
        anchor = Path(anchor)
        data = read_file_bytes(anchor, "trust anchor")
        try:
            certs = x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise BadInputError(f"trust anchor is not a PEM certificate ({exc})",
                                str(anchor)) from exc
        pems.extend(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in certs)
    return "".join(pems)


def read_manifest_json(path: Path, *, sidecar: Path | None = None) -> dict[str, Any] | None:
    """The C2PA manifest store of ``path`` as the SDK's JSON, or ``None`` when it has none.

    Uses the same sidecar discovery as ``verify``. Validation results are included in the
    store (``validation_state``, ``validation_results``) but not judged here.

    Raises:
        BadInputError: the file is missing or unreadable.
        ManifestError: a manifest is there but cannot be read (malformed, or remote).
    """
    path = Path(path)
    if not path.is_file():
        raise BadInputError("no such file (or not a regular file)", str(path))
    content = read_file_bytes(path, "input")
    media_type = sniff_media_type(path, content)
    candidate = Path(sidecar) if sidecar is not None else sidecar_path_for(path)
    attempts: list[bytes | None] = []
    if sidecar is None and media_type in reader_media_types():
        attempts.append(None)
    if candidate.is_file():
        attempts.append(read_file_bytes(candidate, "sidecar"))
    elif sidecar is not None:
        raise BadInputError("no such sidecar manifest", str(candidate))
    for manifest_data in attempts:
        outcome = read_store(media_type, content, manifest_data, trust_pem=None)
        if outcome.store is not None:
            return outcome.store
        if outcome.status in ("malformed", "unreachable"):
            raise ManifestError(f"{path}: cannot read the C2PA manifest: {outcome.error}")
    return None

"""Disclosure workflow: originality check → signed C2PA manifest → soft binding in the index.

``provenance.c2pa_sign`` and ``provenance.c2pa_verify`` sign and verify one file. This module joins it to the
originality index, so a library caller gets the same behaviour as ``provenance disclose`` / ``lookup``:

* ``check_originality`` runs the index check on the content about to be disclosed and turns
  the report into the ``org.provenance-checker.originality`` assertion (verdict, top matches'
  ids and scores, index identity, thresholds, time). It names no file paths: the manifest is
  published with the content, and local paths (user names, folder layouts) are not the
  reader's business; item ids and source labels are enough to look matches up locally.
* ``disclose_content`` refuses to sign content the check flags (unless ``force``), signs, then
  adds the disclosed content to the index (source label ``disclosed``) and records the
  disclosure against that item (``provenance.indexes.manifests``).
* ``lookup`` finds recorded disclosures for a copy whose manifest was stripped, or which was
  re-encoded, resized or lightly edited, by fingerprint (PDQ/pHash for images, shingles and
  embeddings for text), and says how close the copy is.
* ``disclose_content`` also inspects what the input already says about its origin
  (``provenance.origin``) and warns, or with ``strict`` refuses, when the declared source
  type contradicts it; the manifest it signs keeps an existing manifest as its parent.
* ``import_signing_identity`` stores an existing certificate chain and key in the directory
  layout that ``new_signing_identity`` creates, so ``--signer DIR`` works for both.
"""

from __future__ import annotations

import datetime
import hashlib
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .atomic import atomic_write_bytes
from .c2pa_formats import sniff_media_type
from .c2pa_sign import DisclosureResult, disclose
from .c2pa_verify import verify
from .checker import Index
from .content import load_content
from .errors import BadInputError, ProvenanceError
from .identities import (
    CA_FILE,
    CHAIN_FILE,
    KEY_FILE,
    SigningIdentity,
    load_signing_identity,
)
from .indexes.manifests import DisclosureRow, DisclosureStore
from .iptc import parse_source_type
from .origin import Conflict, OriginReport, consistency_conflicts, inspect_origin
from .report import VERDICTS, Match, Report, verdict_rank
from .soft_binding import ISCC_NEAR_BITS, IsccCode, iscc_content_code, iscc_distance

__all__ = [
    "DISCLOSED_SOURCE",
    "ORIGINALITY_LABEL",
    "ORIGINALITY_SCHEMA",
    "DisclosureOutcome",
    "InconsistentDisclosureError",
    "LookupHit",
    "LookupResult",
    "OriginalityCheck",
    "OriginalityRefusedError",
    "check_originality",
    "disclose_content",
    "import_signing_identity",
    "index_identity",
    "lookup",
    "signer_fingerprint",
]

#: Label of the custom assertion that records the originality check inside the manifest.
ORIGINALITY_LABEL = "org.provenance-checker.originality"
#: Version of that assertion's data; bump when its fields change meaning.
ORIGINALITY_SCHEMA = "provenance.originality/1"
#: Source label of catalog items added by ``disclose_content``.
DISCLOSED_SOURCE = "disclosed"
#: Matches listed in the originality assertion (the report keeps more).
ASSERTION_MATCHES = 5

_FAIL_ON = ("exact", "near-duplicate", "partial", "paraphrase", "never")


class OriginalityRefusedError(ProvenanceError):
    """The originality check flagged the content, so it was not disclosed (pass ``force``)."""

    def __init__(self, message: str, check: OriginalityCheck) -> None:
        self.check = check
        super().__init__(message)


class InconsistentDisclosureError(ProvenanceError):
    """The declared source type contradicts what the input carries, and ``strict`` is on."""

    def __init__(self, message: str, origin: OriginReport, conflicts: list[Conflict]) -> None:
        self.origin = origin
        self.conflicts = conflicts
        super().__init__(message)


@dataclass
class OriginalityCheck:
    """An originality check made for a disclosure.

    ``verdict`` ignores matches against content the same signer disclosed before (listed in
    ``excluded``): re-disclosing your own work is not copying. ``flagged`` is whether that
    verdict is at or above ``fail_on``. ``assertion`` is the data signed into the manifest.
    """

    report: Report
    verdict: str
    flagged: bool
    fail_on: str
    excluded: list[int]
    assertion: dict[str, Any]


@dataclass
class DisclosureOutcome:
    """What ``disclose_content`` did: the signed result, the check, and the index record.

    ``record`` is ``None`` when no index was given or the content cannot be fingerprinted by
    the index (``record_note`` says why); ``fingerprint_skipped`` lists signals that said
    nothing about the content (so ``lookup`` cannot use them).
    """

    result: DisclosureResult
    check: OriginalityCheck | None = None
    record: DisclosureRow | None = None
    record_note: str | None = None
    fingerprint_skipped: dict[str, str] = field(default_factory=dict)
    origin: OriginReport | None = None
    conflicts: list[Conflict] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            **self.result.to_dict(),
            "origin": self.origin.to_dict() if self.origin else None,
            "consistency": consistency_dict(self.conflicts, checked=self.origin is not None),
            "originality": self.check.assertion if self.check else None,
            "recorded": self.record.to_dict() if self.record else None,
            "record_note": self.record_note,
            "fingerprint_skipped": self.fingerprint_skipped,
        }


def consistency_dict(conflicts: list[Conflict], *, checked: bool = True) -> dict[str, Any]:
    """The ``consistency`` part of a disclosure's JSON: checked, consistent, conflicts."""
    return {"checked": checked, "consistent": not conflicts,
            "conflicts": [c.to_dict() for c in conflicts]}


def signer_fingerprint(identity: SigningIdentity) -> str:
    """SHA-256 (hex) of the leaf certificate's DER: a stable id for "the same signer"."""
    leaf = x509.load_pem_x509_certificates(identity.certificate_chain_pem)[0]
    return hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest()


def index_identity(idx: Index) -> dict[str, Any]:
    """A stable, path-free identity of ``idx``: a random id kept in the catalog, and its size.

    The id is created on first use and stored in the catalog's ``meta`` table, so copies of the
    index share it and a reader of the manifest can tell which index a check ran against
    without learning where it lives.
    """
    index_id = idx.catalog.get_meta("index_id")
    if index_id is None:
        index_id = str(uuid.uuid4())
        idx.catalog.set_meta("index_id", index_id)
    return {"id": index_id, "items": int(idx.catalog.counts().get("items", 0))}


def _tool_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("provenance-checker")
    except metadata.PackageNotFoundError:  # running from a checkout
        return "0.0.0"


def check_originality(idx: Index, path: Path, *, fail_on: str = "near-duplicate",
                      signer_sha256: str | None = None, forced: bool = False) -> OriginalityCheck:
    """Check ``path`` against ``idx`` and build the originality assertion for its manifest.

    Args:
        fail_on: the weakest verdict that flags the content (``never`` flags nothing).
        signer_sha256: the signer's ``signer_fingerprint``; matches against items this signer
            disclosed before are excluded from the verdict (and listed in the assertion).
        forced: recorded in the assertion, so a reader sees that a flagged result was overridden.

    Raises:
        BadInputError: unreadable or unsupported content, or an unknown ``fail_on``.
        ProvenanceIndexError: the index cannot be read.
    """
    if fail_on not in _FAIL_ON:
        raise BadInputError(f"fail_on must be one of {', '.join(_FAIL_ON)}, not {fail_on!r}")
    path = Path(path)
    report = idx.check(path, str(path))
    excluded: list[int] = []
    if signer_sha256 and report.matches:
        store = DisclosureStore(idx.catalog.db)
        by_item = store.for_items(m.id for m in report.matches)
        excluded = sorted(item for item, rows in by_item.items()
                          if any(r.signer_cert_sha256 == signer_sha256 for r in rows))
    counted = [m for m in report.matches if m.id not in excluded]
    verdict = counted[0].verdict if counted else "original"  # matches are sorted strongest first
    flagged = fail_on != "never" and verdict_rank(verdict) <= verdict_rank(fail_on)
    assertion = {
        "schema": ORIGINALITY_SCHEMA,
        "verdict": verdict,
        "score": max((m.score for m in counted if m.verdict == verdict), default=0.0),
        "flagged": flagged,
        "forced": bool(forced and flagged),
        "fail_on": fail_on,
        "checked_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "content_sha256": report.sha256,
        "media": report.media,
        "index": index_identity(idx),
        "thresholds": {s.name: s.threshold for s in idx.signals},
        "matches": [{"id": m.id, "verdict": m.verdict, "signal": m.signal, "score": m.score,
                     "distance": m.distance, "threshold": m.threshold, "source": m.source}
                    for m in counted[:ASSERTION_MATCHES]],
        "excluded_own_disclosures": excluded,
        "skipped": report.skipped,
        "tool": {"name": "provenance-checker", "version": _tool_version()},
    }
    return OriginalityCheck(report=report, verdict=verdict, flagged=flagged, fail_on=fail_on,
                            excluded=excluded, assertion=assertion)


def disclose_content(path: Path, *, source_type: str, generator: str | None,
                     identity: SigningIdentity, index: Index | None = None, check: bool = False,
                     force: bool = False, fail_on: str = "near-duplicate",
                     output: Path | None = None, in_place: bool = False,
                     record: bool = True, strict: bool = False,
                     trust_anchors: list[Path] | None = None) -> DisclosureOutcome:
    """Disclose ``path`` (see ``provenance.c2pa_sign.disclose``), optionally after an
    originality check, and record the disclosure in ``index`` for ``lookup``.

    Order matters: the source type is validated and the check runs before anything is
    signed, so a refused disclosure writes nothing; the index record is made after the signed
    file is in place, so the catalog never points at a manifest that was not written.

    ``record=False`` uses ``index`` for the check only and records nothing.

    Before signing, the input is inspected (``inspect_origin``, with ``trust_anchors``): a
    declared type that contradicts what the file carries (say ``digitalCapture`` for an
    image whose own valid manifest says ``trainedAlgorithmicMedia``) is listed in the
    outcome's ``conflicts``, and with ``strict`` nothing is signed.

    Raises:
        BadInputError: unusable input or arguments (``check`` without ``index``, unknown
            source type, ...).
        OriginalityRefusedError: ``check`` flagged the content and ``force`` is off.
        InconsistentDisclosureError: ``strict`` and the declaration contradicts the input.
        ManifestError: signing or embedding failed.
        ProvenanceIndexError: the index could not be read or written.
    """
    path = Path(path)
    parse_source_type(source_type)  # fail on a bad type before the (slower) check
    if check and index is None:
        raise BadInputError("an originality check needs an index", str(path))
    if not path.is_file():
        raise BadInputError("no such file (or not a regular file)", str(path))
    origin = inspect_origin(path, trust_anchors=trust_anchors)
    conflicts = consistency_conflicts(source_type, origin)
    if conflicts and strict:
        raise InconsistentDisclosureError(
            f"{path}: the declared source type contradicts what the file carries: "
            + "; ".join(c.message for c in conflicts) + ". Not disclosed (strict)",
            origin, conflicts)
    signer_sha = signer_fingerprint(identity)
    originality: OriginalityCheck | None = None
    if check:
        assert index is not None
        originality = check_originality(index, path, fail_on=fail_on, signer_sha256=signer_sha,
                                        forced=force)
        if originality.flagged and not force:
            top = next((m for m in originality.report.matches
                        if m.id not in originality.excluded), None)
            where = f" (closest: item {top.id} {top.path or ''} via {top.signal}, score " \
                    f"{top.score:.2f})" if top else ""
            raise OriginalityRefusedError(
                f"{path}: the originality check says {originality.verdict.upper()}{where}; "
                "not disclosed. Run again with --force to disclose anyway; the verdict is "
                "then recorded in the manifest", originality)
    result = disclose(
        path, source_type=source_type, generator=generator, identity=identity, output=output,
        in_place=in_place,
        extra_assertions=[{"label": ORIGINALITY_LABEL, "data": originality.assertion}]
        if originality else None)
    outcome = DisclosureOutcome(result=result, check=originality, origin=origin,
                                conflicts=conflicts)
    if index is not None and record:
        _record(index, outcome, signer_sha)
    return outcome


def _record(idx: Index, outcome: DisclosureOutcome, signer_sha: str) -> None:
    result = outcome.result
    try:
        # The disclosed file itself: for embedded manifests its pixels are the input's (the
        # manifest and XMP live in metadata), for sidecars it is the unchanged content.
        content = load_content(result.path, str(result.path))
    except BadInputError as exc:
        outcome.record_note = f"not recorded in the index: it cannot fingerprint this file ({exc})"
        return
    added = idx.add_contents([content], source=DISCLOSED_SOURCE)[0]
    if added.id is None:  # pragma: no cover - add_contents always returns an id or raises
        outcome.record_note = f"not recorded in the index: {added.error}"
        return
    outcome.fingerprint_skipped = dict(added.skipped)
    if added.status == "exists":
        # Already indexed (an earlier disclosure, or the user added it): its skipped signals
        # are in the item's metadata.
        item = idx.catalog.get_item(added.id)
        outcome.fingerprint_skipped = dict((item.metadata if item else {}).get("skipped", {}))
    store = DisclosureStore(idx.catalog.db)
    outcome.record = store.record(
        item_id=added.id, manifest_label=result.manifest_label,
        output_path=str(Path(result.path).resolve()),
        manifest_path=str(Path(result.manifest_path).resolve()) if result.manifest_path else None,
        output_sha256=content.sha256, embedded=result.embedded, media_type=result.media_type,
        source_type=result.source_type, generator=result.generator, signer=result.signer,
        signer_cert_sha256=signer_sha,
        originality=outcome.check.assertion if outcome.check else None,
        iscc=result.soft_binding)


# ---------------------------------------------------------------------------------------
# Lookup


@dataclass
class LookupHit:
    """A catalog item that matches the looked-up file and has recorded disclosures.

    ``closeness`` holds every signal's value, threshold and a one-line summary of its evidence
    (Hamming distance and transform for images, copied words or cosine for text).
    ``disclosures`` are newest first; each comes with ``manifest_status``, the current
    ``verify`` status of the recorded file (``missing`` when it is gone, ``replaced`` when
    its bytes changed since the disclosure).
    """

    item_id: int
    verdict: str
    signal: str
    score: float
    distance: float | None
    threshold: float
    closeness: dict[str, Any]
    disclosures: list[DisclosureRow]
    manifest_status: list[str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = asdict(self)
        data["disclosures"] = [dict(d.to_dict(), manifest_status=s)
                               for d, s in zip(self.disclosures, self.manifest_status)]
        del data["manifest_status"]
        return data


@dataclass
class LookupResult:
    """Disclosures found for ``path`` by content, and the file's own manifest status."""

    path: str
    sha256: str
    media: str
    own_status: str
    min_verdict: str
    hits: list[LookupHit]
    iscc: str | None = None

    @property
    def found(self) -> bool:
        """Whether any recorded disclosure matched."""
        return bool(self.hits)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"schema": "provenance.lookup/1", "path": self.path, "sha256": self.sha256,
                "media": self.media, "own_manifest_status": self.own_status,
                "min_verdict": self.min_verdict, "found": self.found, "iscc": self.iscc,
                "hits": [h.to_dict() for h in self.hits]}


def _closeness(match: Match) -> dict[str, Any]:
    """Per signal: its evidence, value, threshold, whether it passed, and a one-line summary."""
    return {o.signal: {**o.to_dict(), "summary": o.summary()} for o in match.observations}


def _recorded_status(row: DisclosureRow) -> str:
    output = Path(row.output_path)
    if not output.is_file() or (row.manifest_path and not Path(row.manifest_path).is_file()):
        return "missing"
    try:
        if hashlib.sha256(output.read_bytes()).hexdigest() != row.output_sha256:
            # Overwritten since (often by a later disclosure of the same file): the manifest
            # there now is not the one recorded in this row.
            return "replaced"
        return verify(output, sidecar=Path(row.manifest_path) if row.manifest_path else None).status
    except (BadInputError, OSError):
        return "missing"


def lookup(idx: Index, path: Path, *, min_verdict: str = "near-duplicate") -> LookupResult:
    """Find recorded disclosures of content that ``path`` copies.

    Runs the index check on ``path`` and keeps matches at ``min_verdict`` or stronger whose
    items have disclosures. ``paraphrase`` matches (embedding similarity) are left out by
    default: a paraphrase is new wording, and linking it to someone's manifest would
    overclaim.

    Raises:
        BadInputError: unreadable or unsupported file, or an unknown ``min_verdict``.
        ProvenanceIndexError: the index cannot be read.
    """
    if min_verdict not in VERDICTS or min_verdict == "original":
        raise BadInputError(f"min_verdict must be exact, near-duplicate or paraphrase, "
                            f"not {min_verdict!r}")
    path = Path(path)
    report = idx.check(path, str(path))
    own = verify(path).status
    kept = [m for m in report.matches if verdict_rank(m.verdict) <= verdict_rank(min_verdict)]
    store = DisclosureStore(idx.catalog.db)
    by_item = store.for_items(m.id for m in kept)
    hits = [LookupHit(item_id=m.id, verdict=m.verdict, signal=m.signal, score=m.score,
                      distance=m.distance, threshold=m.threshold,
                      closeness=_closeness(m), disclosures=by_item[m.id],
                      manifest_status=[_recorded_status(r) for r in by_item[m.id]])
            for m in kept if m.id in by_item]
    code = _query_iscc(path)
    if code is not None:
        _add_iscc_hits(store, code, hits, min_verdict)
    # Closest first; among equally close items (the same pixels disclosed twice), the newest
    # disclosure first, since it is the one that is current.
    hits.sort(key=lambda h: (verdict_rank(h.verdict), -h.score, -h.disclosures[0].disclosed_at))
    return LookupResult(path=str(path), sha256=report.sha256, media=report.media, own_status=own,
                        min_verdict=min_verdict, hits=hits, iscc=code.code if code else None)


def _query_iscc(path: Path) -> IsccCode | None:
    """The looked-up file's ISCC content code, when it has one (images and text)."""
    try:
        data = path.read_bytes()
        media_type = sniff_media_type(path, data)
        if not media_type.startswith(("image/", "text/")):
            return None
        return iscc_content_code(data, media_type, str(path))
    except (OSError, BadInputError):
        return None


def _add_iscc_hits(store: DisclosureStore, code: IsccCode, hits: list[LookupHit],
                   min_verdict: str) -> None:
    """Disclosures whose soft-binding ISCC is within ``ISCC_NEAR_BITS`` of ``code``: joined
    to the fingerprint hit of the same item, or added as their own hits.

    A content code within the threshold is a near-duplicate, never ``exact``: equal codes
    say equal 32 x 32 grey thumbnails (or collapsed text), not equal bytes.
    """
    near: dict[int, int] = {}
    for row in store.with_iscc():
        distance = iscc_distance(code, row.iscc or "")
        if distance is not None and distance <= ISCC_NEAR_BITS:
            near[row.item_id] = min(distance, near.get(row.item_id, distance))
    by_id = {h.item_id: h for h in hits}
    new_items = [item for item in near if item not in by_id]
    rows = store.for_items(new_items) if new_items else {}
    for item, distance in near.items():
        evidence = {"distance": distance, "threshold": ISCC_NEAR_BITS, "bits": 64,
                    "code": code.code, "alg": "io.iscc.v0",
                    "summary": f"{distance}/64 bits apart (io.iscc.v0 content code, threshold {ISCC_NEAR_BITS})"}
        if item in by_id:
            by_id[item].closeness["iscc"] = evidence
        elif verdict_rank("near-duplicate") <= verdict_rank(min_verdict) and rows.get(item):
            hits.append(LookupHit(
                item_id=item, verdict="near-duplicate", signal="iscc",
                score=round(1 - distance / 64, 4), distance=float(distance),
                threshold=float(ISCC_NEAR_BITS), closeness={"iscc": evidence},
                disclosures=rows[item], manifest_status=[_recorded_status(r) for r in rows[item]]))


# ---------------------------------------------------------------------------------------
# Signing identities


def import_signing_identity(directory: Path, *, certificate: Path, key: Path,
                            overwrite: bool = False) -> SigningIdentity:
    """Copy an existing certificate chain (leaf first) and private key into ``directory``,
    in the layout ``new_signing_identity`` writes, after checking that they fit together.

    The key is written with mode 0600. When the chain ends in a self-signed certificate, that
    root is also written as ``ca.pem`` (the trust anchor to hand to verifiers).

    Raises:
        BadInputError: unreadable or mismatched files, an unsupported key, or an identity
            already in ``directory`` without ``overwrite``.
    """
    identity = load_signing_identity(certificate=Path(certificate), key=Path(key))
    directory = Path(directory)
    if not overwrite and (directory / KEY_FILE).exists():
        raise BadInputError("a signing key already exists here; pass --overwrite to replace it "
                            "or choose another directory", str(directory / KEY_FILE))
    directory.mkdir(parents=True, exist_ok=True)
    certs = x509.load_pem_x509_certificates(identity.certificate_chain_pem)
    atomic_write_bytes(directory / KEY_FILE, identity.private_key_pem, mode=0o600)
    atomic_write_bytes(directory / CHAIN_FILE, identity.certificate_chain_pem, mode=0o644)
    root = certs[-1]
    if len(certs) > 1 and root.issuer == root.subject:
        atomic_write_bytes(directory / CA_FILE, root.public_bytes(serialization.Encoding.PEM),
                            mode=0o644)
    elif (directory / CA_FILE).exists():
        # A ca.pem left from an earlier identity would be handed out as the wrong anchor.
        (directory / CA_FILE).unlink()
    return load_signing_identity(directory)

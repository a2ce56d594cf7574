"""Disclosure manifests: sign an AI-generation disclosure into a file, and verify one.

Input contract
--------------
* ``disclose`` takes a path to an existing file. Formats the C2PA SDK can embed into
  (JPEG, PNG, WebP, GIF, TIFF, AVIF, HEIF, PDF, MP4, ... — whatever
  ``c2pa.Builder.get_supported_mime_types()`` reports) get a signed manifest *inside* the
  file. Everything else (plain text, Markdown, ...) gets a detached manifest, a sidecar
  ``<file>.c2pa`` (e.g. ``draft.md.c2pa``), whose ``c2pa.hash.data`` assertion covers every
  byte of the content, so any later edit of the content reads back as ``tampered``.
* The disclosure is C2PA's own vocabulary: a ``c2pa.actions`` assertion whose
  ``c2pa.created`` action carries an IPTC ``digitalSourceType`` URI and, when given, a
  ``softwareAgent`` naming the generator.
* JPEG, PNG and WebP also get the IPTC XMP property ``Iptc4xmpExt:DigitalSourceType``,
  written into the file *before* signing so the signed data hash covers it; platforms that
  read XMP but not C2PA still see the disclosure.
* Nothing here touches the network: no timestamp authority, no OCSP, no remote manifests.
  A manifest stored remotely is reported as ``unreachable`` at once.

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

import datetime
import io
import json
import mimetypes
import os
import re
import stat
import struct
import zlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from provenance.errors import BadInputError, ManifestError, MissingComponentError

try:  # c2pa-python ships a native library; say how to get it rather than fail obscurely.
    import c2pa
except ImportError as exc:  # pragma: no cover - exercised only without the dependency
    raise MissingComponentError(
        "c2pa-python is not installed; install it with `pip install c2pa-python==0.38.1`"
    ) from exc

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

__all__ = [
    "DIGITAL_SOURCE_TYPES",
    "IPTC_DIGITAL_SOURCE_TYPE_BASE",
    "SIDECAR_SUFFIX",
    "DisclosureResult",
    "SigningIdentity",
    "VerifyResult",
    "VerifyStatus",
    "default_output_path",
    "disclose",
    "load_signing_identity",
    "new_signing_identity",
    "parse_source_type",
    "read_manifest_json",
    "sidecar_path_for",
    "verify",
]

IPTC_DIGITAL_SOURCE_TYPE_BASE = "http://cv.iptc.org/newscodes/digitalsourcetype/"

# The IPTC "Digital Source Type" NewsCodes vocabulary (2024 revision).
_SOURCE_TYPE_NAMES = (
    "trainedAlgorithmicMedia",
    "compositeWithTrainedAlgorithmicMedia",
    "algorithmicallyEnhanced",
    "algorithmicMedia",
    "digitalCapture",
    "computationalCapture",
    "digitalCreation",
    "humanEdits",
    "minorHumanEdits",
    "compositeCapture",
    "compositeSynthetic",
    "composite",
    "dataDrivenMedia",
    "negativeFilm",
    "positiveFilm",
    "print",
    "screenCapture",
    "virtualRecording",
)

DIGITAL_SOURCE_TYPES: dict[str, str] = {
    name: IPTC_DIGITAL_SOURCE_TYPE_BASE + name for name in _SOURCE_TYPE_NAMES
}
"""Short IPTC name -> full IPTC digital source type URI."""

SIDECAR_SUFFIX = ".c2pa"

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

_INTACT_STATUSES = frozenset({"trusted", "valid", "untrusted"})

# Reverse-DNS label under which this tool names itself in claim_generator_info.
_CLAIM_GENERATOR = "provenance-checker"

# Settings for every reader and builder: local-first means no network, ever. Remote
# manifest fetching would otherwise make verify() block on DNS/HTTP for an unknown time.
_OFFLINE_VERIFY_SETTINGS: dict[str, Any] = {
    "remote_manifest_fetch": False,
    "ocsp_fetch": False,
}

# The C2PA "documentSigning" EKU (RFC 9336). c2pa-rs accepts it, as well as emailProtection.
_EKU_DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")

_ALGORITHMS = ("es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519")
_NEW_IDENTITY_ALGORITHMS = ("es256", "es384", "ed25519")

CA_FILE = "ca.pem"
CHAIN_FILE = "signer-chain.pem"
KEY_FILE = "signer.key"


# ---------------------------------------------------------------------------------------
# Source types


def parse_source_type(value: str) -> str:
    """Return the IPTC digital source type URI for a short name or a full URI.

    Short names match case-insensitively (``trainedalgorithmicmedia`` is accepted) because
    people type them; the returned URI always has IPTC's canonical spelling.

    Raises:
        BadInputError: the value is not in the IPTC vocabulary; the message lists the names.
    """
    if not isinstance(value, str) or not value.strip():
        raise BadInputError(_unknown_source_type_message(value))
    text = value.strip()
    name = text[len(IPTC_DIGITAL_SOURCE_TYPE_BASE):] if text.startswith(
        IPTC_DIGITAL_SOURCE_TYPE_BASE) else text
    # Older documents use https; the vocabulary URIs are http.
    if text.startswith("https://cv.iptc.org/newscodes/digitalsourcetype/"):
        name = text.rsplit("/", 1)[-1]
    for known in _SOURCE_TYPE_NAMES:
        if known.lower() == name.lower():
            return DIGITAL_SOURCE_TYPES[known]
    raise BadInputError(_unknown_source_type_message(value))


def _unknown_source_type_message(value: object) -> str:
    return (
        f"unknown digital source type {value!r}; use one of: "
        + ", ".join(_SOURCE_TYPE_NAMES)
        + f" (or the full URI {IPTC_DIGITAL_SOURCE_TYPE_BASE}<name>)"
    )


# ---------------------------------------------------------------------------------------
# Signing identity


@dataclass(frozen=True)
class SigningIdentity:
    """A signing certificate chain and its private key, as PEM.

    ``certificate_chain_pem`` is leaf first, then intermediates/CA. ``ca_path`` is the root
    to hand to verifiers as a trust anchor, when known. The key never appears in ``repr``.
    """

    algorithm: str
    certificate_chain_pem: bytes
    private_key_pem: bytes = field(repr=False)
    chain_path: Path | None = None
    key_path: Path | None = None
    ca_path: Path | None = None
    subject: str = ""
    issuer: str = ""


def new_signing_identity(
    directory: Path,
    *,
    algorithm: str = "es256",
    common_name: str = "provenance-checker signer",
    organization: str = "provenance-checker",
    valid_days: int = 825,
    overwrite: bool = False,
) -> SigningIdentity:
    """Create a private CA and a leaf signing certificate in ``directory``.

    Writes ``ca.pem`` (self-signed root: hand it to verifiers as a trust anchor),
    ``signer-chain.pem`` (leaf then CA) and ``signer.key`` (PKCS#8, unencrypted, mode 0600
    from the moment the file exists). C2PA requires the signing certificate to be issued
    by a CA — a self-signed leaf is rejected by validators — hence the two levels.

    Args:
        directory: created if missing.
        algorithm: ``es256`` (P-256, default), ``es384`` (P-384) or ``ed25519``.
        common_name: the leaf's CN, which verifiers show as the signer.
        overwrite: replace an existing identity; off by default because losing a key
            you have published certificates for is not undoable.

    Raises:
        BadInputError: unsupported algorithm, or an identity already exists there.
    """
    algorithm = algorithm.lower()
    if algorithm not in _NEW_IDENTITY_ALGORITHMS:
        raise BadInputError(
            f"unsupported signing algorithm {algorithm!r}; use one of: "
            + ", ".join(_NEW_IDENTITY_ALGORITHMS)
        )
    directory = Path(directory)
    key_path = directory / KEY_FILE
    if not overwrite and key_path.exists():
        raise BadInputError(
            "a signing key already exists here; pass overwrite=True to replace it "
            "or choose another directory",
            str(key_path),
        )
    directory.mkdir(parents=True, exist_ok=True)

    def generate() -> Any:
        if algorithm == "ed25519":
            return ed25519.Ed25519PrivateKey.generate()
        curve = ec.SECP256R1() if algorithm == "es256" else ec.SECP384R1()
        return ec.generate_private_key(curve)

    # Ed25519 signs the message itself, so cryptography wants no hash for it.
    digest = None if algorithm == "ed25519" else (
        hashes.SHA256() if algorithm == "es256" else hashes.SHA384())
    now = datetime.datetime.now(datetime.timezone.utc)
    # Backdate slightly so a verifier with a skewed clock does not see "not yet valid".
    not_before = now - datetime.timedelta(minutes=10)

    ca_key = generate()
    ca_name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name} CA"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
    ])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(now + datetime.timedelta(days=max(valid_days, 1) * 2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, digest)
    )

    leaf_key = generate()
    leaf_name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
    ])
    leaf_cert = (
        x509.CertificateBuilder()
        .subject_name(leaf_name)
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(now + datetime.timedelta(days=max(valid_days, 1)))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        # C2PA's certificate profile requires an EKU from its allowed list and forbids
        # anyExtendedKeyUsage; emailProtection and documentSigning are both on it.
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION,
                                   _EKU_DOCUMENT_SIGNING]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()),
                       critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, digest)
    )

    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    chain_pem = leaf_cert.public_bytes(serialization.Encoding.PEM) + ca_pem
    key_pem = leaf_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # The key goes first and privately; certificates are public and get ordinary modes.
    atomic_write_bytes(key_path, key_pem, mode=0o600)
    atomic_write_bytes(directory / CA_FILE, ca_pem, mode=0o644)
    atomic_write_bytes(directory / CHAIN_FILE, chain_pem, mode=0o644)
    return SigningIdentity(
        algorithm=algorithm,
        certificate_chain_pem=chain_pem,
        private_key_pem=key_pem,
        chain_path=directory / CHAIN_FILE,
        key_path=key_path,
        ca_path=directory / CA_FILE,
        subject=leaf_cert.subject.rfc4514_string(),
        issuer=leaf_cert.issuer.rfc4514_string(),
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def load_signing_identity(
    directory: Path | None = None,
    *,
    certificate: Path | None = None,
    key: Path | None = None,
    algorithm: str | None = None,
) -> SigningIdentity:
    """Load a signing identity from a directory made by ``new_signing_identity``, or
    from an explicit certificate-chain PEM (leaf first) and private-key PEM.

    The algorithm is inferred from the key (P-256 → es256, P-384 → es384, P-521 → es512,
    Ed25519 → ed25519, RSA → ps256) unless given.

    Raises:
        BadInputError: files missing or unreadable, not PEM, key does not match the leaf
            certificate, or the algorithm does not fit the key.
    """
    if directory is not None:
        directory = Path(directory)
        certificate = certificate or directory / CHAIN_FILE
        key = key or directory / KEY_FILE
        ca_candidate = directory / CA_FILE
        ca_path = ca_candidate if ca_candidate.is_file() else None
    else:
        ca_path = None
    if certificate is None or key is None:
        raise BadInputError(
            "give a signing identity directory, or both a certificate chain and a key")
    certificate, key = Path(certificate), Path(key)
    chain_pem = _read_file(certificate, "certificate chain")
    key_pem = _read_file(key, "private key")
    try:
        certs = x509.load_pem_x509_certificates(chain_pem)
    except ValueError as exc:
        raise BadInputError(f"not a PEM certificate chain ({exc})", str(certificate)) from exc
    try:
        private_key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise BadInputError(
            f"not an unencrypted PEM private key ({exc})", str(key)) from exc

    leaf = certs[0]
    if _public_bytes(leaf.public_key()) != _public_bytes(private_key.public_key()):
        raise BadInputError(
            f"private key {key} does not match the first (leaf) certificate; "
            "the chain must list the signing certificate first",
            str(certificate),
        )
    inferred = _algorithm_for_key(private_key)
    if algorithm is None:
        if inferred is None:
            raise BadInputError("unsupported private key type for C2PA signing", str(key))
        algorithm = inferred
    algorithm = algorithm.lower()
    if algorithm not in _ALGORITHMS:
        raise BadInputError(
            f"unsupported signing algorithm {algorithm!r}; use one of: " + ", ".join(_ALGORITHMS))
    if inferred is not None and algorithm[:2] != inferred[:2]:
        raise BadInputError(f"algorithm {algorithm} does not fit this {inferred} key", str(key))
    return SigningIdentity(
        algorithm=algorithm,
        certificate_chain_pem=chain_pem,
        private_key_pem=key_pem,
        chain_path=certificate,
        key_path=key,
        ca_path=ca_path,
        subject=leaf.subject.rfc4514_string(),
        issuer=leaf.issuer.rfc4514_string(),
    )


def _public_bytes(public_key: Any) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _algorithm_for_key(private_key: Any) -> str | None:
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        return {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}.get(
            private_key.curve.name)
    if isinstance(private_key, rsa.RSAPrivateKey):
        return "ps256"
    return None


def _make_signer(identity: SigningIdentity) -> c2pa.Signer:
    try:
        # ta_url None: never contact a timestamp authority (local-first, offline).
        info = c2pa.C2paSignerInfo(
            identity.algorithm,
            identity.certificate_chain_pem,
            identity.private_key_pem,
            None,
        )
        return c2pa.Signer.from_info(info)
    except (c2pa.C2paError, ValueError, TypeError) as exc:
        where = str(identity.chain_path) if identity.chain_path else None
        raise ManifestError(
            f"{where + ': ' if where else ''}the C2PA SDK rejected the signing identity: {exc}"
        ) from exc


# ---------------------------------------------------------------------------------------
# Disclose


@dataclass(frozen=True)
class DisclosureResult:
    """What ``disclose`` wrote.

    ``path`` is the file that now carries (or, for sidecars, is covered by) the manifest;
    ``manifest_path`` is the sidecar, or ``None`` when the manifest is embedded.
    """

    source: Path
    path: Path
    manifest_path: Path | None
    embedded: bool
    media_type: str
    source_type: str
    generator: str | None
    manifest_label: str | None
    xmp_written: bool
    signer: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (paths as strings)."""
        data = asdict(self)
        for key in ("source", "path", "manifest_path"):
            if data[key] is not None:
                data[key] = str(data[key])
        return data


def sidecar_path_for(path: Path) -> Path:
    """The sidecar manifest path for ``path``: the full name plus ``.c2pa``
    (``draft.md`` → ``draft.md.c2pa``), so ``a.md`` and ``a.txt`` never share one."""
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def default_output_path(path: Path) -> Path:
    """Where ``disclose`` writes an embedded copy by default: ``<stem>.c2pa<suffix>``
    beside the input (``photo.jpg`` → ``photo.c2pa.jpg``), keeping the extension so the
    copy still opens as what it is."""
    path = Path(path)
    return path.with_name(f"{path.stem}.c2pa{path.suffix}")


def disclose(
    path: Path,
    *,
    source_type: str,
    generator: str | None,
    identity: SigningIdentity,
    output: Path | None = None,
    in_place: bool = False,
    extra_assertions: list[dict] | None = None,
) -> DisclosureResult:
    """Sign an AI-generation disclosure into ``path`` (or beside it).

    Embeddable formats: the signed copy goes to ``output``, or over the input when
    ``in_place``, or by default to ``<stem>.c2pa<suffix>`` beside it. Other formats: the
    content is never modified; a sidecar goes to ``output`` or ``<file>.c2pa``
    (``in_place`` changes nothing for them). Every write is atomic: a temporary file in
    the destination directory, fsync, ``os.replace``; the result is read back and checked
    before it replaces anything.

    Args:
        source_type: IPTC short name or URI (see ``DIGITAL_SOURCE_TYPES``).
        generator: the model or tool that made the content, recorded as ``softwareAgent``.
        extra_assertions: more assertions, each ``{"label": str, "data": dict}``; labels in
            the reserved ``c2pa.`` namespace are refused.

    Raises:
        BadInputError: unreadable input, unknown source type, conflicting arguments, bad
            extra assertion.
        ManifestError: the SDK could not sign or embed, or the result did not verify.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInputError("no such file (or not a regular file)", str(path))
    if output is not None and in_place:
        raise BadInputError("give either output or in_place, not both", str(path))
    source_uri = parse_source_type(source_type)
    if generator is not None and (not isinstance(generator, str) or not generator.strip()):
        raise BadInputError("generator must be a non-empty string or None", str(path))
    generator = generator.strip() if generator else None
    assertions = _validate_extra_assertions(extra_assertions, path)

    content = _read_file(path, "input")
    if not content:
        # A data hash over nothing binds the disclosure to nothing; the SDK refuses too.
        raise BadInputError("the file is empty; there is no content to disclose", str(path))
    media_type = _media_type(path, content)
    manifest = _manifest_definition(path, source_uri, generator, assertions)
    embeddable = media_type in _builder_media_types()

    if embeddable:
        destination = path if in_place else Path(output) if output else default_output_path(path)
        prepared, xmp_written = _with_xmp(content, media_type, source_uri)
        signed_bytes = _sign(manifest, identity, media_type, prepared, embed=True, path=path)
        label = _checked_label(path, media_type, signed_bytes, manifest_data=None)
        atomic_write_bytes(destination, signed_bytes, mode=_file_mode(path))
        return DisclosureResult(
            source=path, path=destination, manifest_path=None, embedded=True,
            media_type=media_type, source_type=source_uri, generator=generator,
            manifest_label=label, xmp_written=xmp_written, signer=identity.subject,
        )

    sidecar = Path(output) if output else sidecar_path_for(path)
    if sidecar.resolve() == path.resolve():
        raise BadInputError("the sidecar path must differ from the content path", str(path))
    manifest_bytes = _sign(manifest, identity, media_type, content, embed=False, path=path)
    label = _checked_label(path, media_type, content, manifest_data=manifest_bytes)
    atomic_write_bytes(sidecar, manifest_bytes, mode=_file_mode(path))
    return DisclosureResult(
        source=path, path=path, manifest_path=sidecar, embedded=False,
        media_type=media_type, source_type=source_uri, generator=generator,
        manifest_label=label, xmp_written=False, signer=identity.subject,
    )


def _validate_extra_assertions(extra: list[dict] | None, path: Path) -> list[dict]:
    if extra is None:
        return []
    if not isinstance(extra, (list, tuple)):
        raise BadInputError("extra_assertions must be a list of {label, data} dicts", str(path))
    checked = []
    for item in extra:
        if not isinstance(item, dict) or not isinstance(item.get("label"), str) \
                or not item["label"].strip() or "data" not in item:
            raise BadInputError(
                f"extra assertion {item!r} must be a dict with a 'label' string and 'data'",
                str(path))
        label = item["label"].strip()
        # c2pa.* labels are the standard's own; a caller's c2pa.actions would collide with
        # the disclosure, and hash assertions are the SDK's to compute.
        if label.startswith("c2pa."):
            raise BadInputError(
                f"extra assertion label {label!r} is in the reserved 'c2pa.' namespace; "
                "use a reverse-domain label such as 'org.provenance-checker.originality'",
                str(path))
        try:
            json.dumps(item["data"])
        except (TypeError, ValueError) as exc:
            raise BadInputError(
                f"extra assertion {label!r} data is not JSON-serialisable: {exc}", str(path)
            ) from exc
        checked.append({"label": label, "data": item["data"]})
    return checked


def _manifest_definition(
    path: Path, source_uri: str, generator: str | None, extra: list[dict]
) -> dict[str, Any]:
    from importlib import metadata

    try:
        version = metadata.version("provenance-checker")
    except metadata.PackageNotFoundError:  # running from a checkout
        version = "0.0.0"
    action: dict[str, Any] = {"action": "c2pa.created", "digitalSourceType": source_uri}
    if generator:
        action["softwareAgent"] = {"name": generator}
    return {
        "claim_generator_info": [{"name": _CLAIM_GENERATOR, "version": version}],
        "title": path.name,
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [action]}}, *extra],
    }


def _sign(
    manifest: dict[str, Any],
    identity: SigningIdentity,
    media_type: str,
    content: bytes,
    *,
    embed: bool,
    path: Path,
) -> bytes:
    """Sign ``content``; return the signed asset (embed) or the detached manifest bytes."""
    signer = _make_signer(identity)
    try:
        with c2pa.Context.from_dict({"verify": _OFFLINE_VERIFY_SETTINGS}) as context:
            builder = c2pa.Builder(manifest, context=context)
            if not embed:
                builder.set_no_embed()
            destination = io.BytesIO()
            manifest_bytes = builder.sign(signer, media_type, io.BytesIO(content), destination)
    except c2pa.C2paError as exc:
        raise ManifestError(f"{path}: could not sign a C2PA manifest ({media_type}): {exc}") \
            from exc
    finally:
        signer.close()
    if embed:
        signed = destination.getvalue()
        if not signed:
            raise ManifestError(f"{path}: the C2PA SDK produced an empty signed file")
        return signed
    if not manifest_bytes:
        raise ManifestError(f"{path}: the C2PA SDK returned no manifest bytes for the sidecar")
    return manifest_bytes


def _checked_label(
    path: Path, media_type: str, asset: bytes, manifest_data: bytes | None
) -> str | None:
    """Read back what was just signed; refuse to write anything that does not verify."""
    outcome = _read_store(media_type, asset, manifest_data, trust_pem=None)
    status, store = outcome.status, outcome.store
    if status not in _INTACT_STATUSES or store is None:
        raise ManifestError(
            f"{path}: the freshly signed manifest does not verify (status {status}; "
            f"{outcome.error or ', '.join(outcome.failure_codes)}); nothing was written")
    return store.get("active_manifest")


# ---------------------------------------------------------------------------------------
# Verify


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

    @property
    def intact(self) -> bool:
        """True when the signature is valid and the content unchanged (trusted or not)."""
        return self.status in _INTACT_STATUSES

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
        return data


@dataclass
class _StoreOutcome:
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
    trust_pem = _load_trust_anchors(trust_anchors)
    content = _read_file(path, "input")
    media_type = _media_type(path, content)

    used_sidecar: Path | None = None
    if sidecar is not None:
        used_sidecar = Path(sidecar)
        if not used_sidecar.is_file():
            raise BadInputError("no such sidecar manifest", str(used_sidecar))
        outcome = _read_store(media_type, content, _read_file(used_sidecar, "sidecar"),
                              trust_pem)
    else:
        candidate = sidecar_path_for(path)
        if media_type in _reader_media_types():
            outcome = _read_store(media_type, content, None, trust_pem)
            if outcome.status == "no-manifest" and candidate.is_file():
                used_sidecar = candidate
        elif candidate.is_file():
            used_sidecar = candidate
        else:
            outcome = _StoreOutcome(status="no-manifest")
        if used_sidecar is not None:
            outcome = _read_store(media_type, content, _read_file(used_sidecar, "sidecar"),
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


def _read_store(
    media_type: str,
    asset: bytes,
    manifest_data: bytes | None,
    trust_pem: str | None,
) -> _StoreOutcome:
    settings: dict[str, Any] = {"verify": dict(_OFFLINE_VERIFY_SETTINGS, verify_trust=True)}
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
        return _StoreOutcome(status="no-manifest")
    except c2pa.C2paError as exc:
        message = str(exc)
        # The native layer reports remote manifests as "Remote: ..."; newer bindings may
        # map it to C2paError.RemoteManifest. Either way: reported, never fetched.
        if isinstance(exc, c2pa.C2paError.RemoteManifest) or message.startswith("Remote"):
            match = re.search(r"https?://\S+", message)
            return _StoreOutcome(
                status="unreachable",
                error="the manifest is stored remotely and this tool does not fetch it"
                      f" (offline): {message}",
                remote_url=match.group(0).rstrip(").,") if match else None,
            )
        if isinstance(exc, c2pa.C2paError.NotSupported):
            return _StoreOutcome(status="no-manifest", error=message)
        return _StoreOutcome(status="malformed", error=message)
    except json.JSONDecodeError as exc:
        return _StoreOutcome(status="malformed", error=f"manifest JSON unreadable: {exc}")

    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    failure_codes = [item.get("code", "") for item in results.get("failure") or []]
    status_codes = [item.get("code", "") for item in store.get("validation_status") or []]
    status = _classify(failure_codes, store.get("validation_state"), bool(trust_pem))
    return _StoreOutcome(status=status, store=store, failure_codes=failure_codes,
                         status_codes=status_codes)


def _load_trust_anchors(paths: list[Path] | None) -> str | None:
    if not paths:
        return None
    pems: list[str] = []
    for anchor in paths:
        anchor = Path(anchor)
        data = _read_file(anchor, "trust anchor")
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
    content = _read_file(path, "input")
    media_type = _media_type(path, content)
    candidate = Path(sidecar) if sidecar is not None else sidecar_path_for(path)
    attempts: list[bytes | None] = []
    if sidecar is None and media_type in _reader_media_types():
        attempts.append(None)
    if candidate.is_file():
        attempts.append(_read_file(candidate, "sidecar"))
    elif sidecar is not None:
        raise BadInputError("no such sidecar manifest", str(candidate))
    for manifest_data in attempts:
        outcome = _read_store(media_type, content, manifest_data, trust_pem=None)
        if outcome.store is not None:
            return outcome.store
        if outcome.status in ("malformed", "unreachable"):
            raise ManifestError(f"{path}: cannot read the C2PA manifest: {outcome.error}")
    return None


# ---------------------------------------------------------------------------------------
# Media types


_SUPPORTED_CACHE: dict[str, frozenset[str]] = {}


def _builder_media_types() -> frozenset[str]:
    if "builder" not in _SUPPORTED_CACHE:
        _SUPPORTED_CACHE["builder"] = frozenset(
            t for t in c2pa.Builder.get_supported_mime_types() if "/" in t)
    return _SUPPORTED_CACHE["builder"]


def _reader_media_types() -> frozenset[str]:
    if "reader" not in _SUPPORTED_CACHE:
        _SUPPORTED_CACHE["reader"] = frozenset(
            t for t in c2pa.Reader.get_supported_mime_types() if "/" in t)
    return _SUPPORTED_CACHE["reader"]


_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"%PDF-", "application/pdf"),
)


def _media_type(path: Path, content: bytes) -> str:
    """Sniff the common formats from their bytes (extensions lie), else trust the name."""
    for magic, media in _MAGIC:
        if content.startswith(magic):
            return media
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    guessed = mimetypes.guess_type(path.name)[0]
    if guessed is None and path.suffix.lower() in (".md", ".markdown"):
        guessed = "text/markdown"  # not in every platform's mimetypes table
    return guessed or "application/octet-stream"


# ---------------------------------------------------------------------------------------
# XMP: Iptc4xmpExt:DigitalSourceType, written before signing so the data hash covers it.

_IPTC_EXT_NS = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
_JPEG_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
_PNG_XMP_KEYWORD = b"XML:com.adobe.xmp"


def _xmp_description(uri: str) -> str:
    return (
        f'<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="{_IPTC_EXT_NS}">'
        f"<Iptc4xmpExt:DigitalSourceType>{escape(uri)}</Iptc4xmpExt:DigitalSourceType>"
        "</rdf:Description>"
    )


def _new_xmp_packet(uri: str) -> bytes:
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f"{_xmp_description(uri)}"
        "</rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    ).encode()


def _merge_xmp(existing: bytes, uri: str) -> bytes | None:
    """Set DigitalSourceType in an existing XMP packet by a minimal textual edit.

    A full RDF round trip through an XML library would re-serialise (and can mangle) other
    tools' metadata; a targeted edit keeps every other byte. Returns None when the packet
    cannot be edited safely, in which case the caller leaves it alone.
    """
    try:
        text = existing.decode("utf-8")
    except UnicodeDecodeError:
        return None
    value = escape(uri)
    element = re.compile(
        r"(<Iptc4xmpExt:DigitalSourceType>)(.*?)(</Iptc4xmpExt:DigitalSourceType>)", re.S)
    attribute = re.compile(r'(Iptc4xmpExt:DigitalSourceType=")([^"]*)(")')
    if element.search(text):
        text = element.sub(lambda m: m.group(1) + value + m.group(3), text, count=1)
    elif attribute.search(text):
        text = attribute.sub(lambda m: m.group(1) + value + m.group(3), text, count=1)
    else:
        opening = re.search(r"<rdf:RDF\b[^>]*>", text)
        if not opening:
            return None
        # A second rdf:Description about the same resource is valid RDF/XMP.
        text = text[:opening.end()] + _xmp_description(uri) + text[opening.end():]
    body = re.sub(r"<\?xpacket[^>]*\?>", "", text).strip()
    try:
        ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return None
    return text.encode("utf-8")


def _with_xmp(content: bytes, media_type: str, uri: str) -> tuple[bytes, bool]:
    """Return ``content`` with the XMP property set, and whether it was written.

    Byte-level edits instead of re-encoding through Pillow: re-encoding a JPEG or lossy
    WebP would change the pixels the user is disclosing.
    """
    writers = {"image/jpeg": _jpeg_set_xmp, "image/png": _png_set_xmp,
               "image/webp": _webp_set_xmp}
    writer = writers.get(media_type)
    if writer is None:
        return content, False
    try:
        updated = writer(content, uri)
    except (ValueError, struct.error, IndexError, zlib.error):
        # A file we cannot parse safely keeps its bytes; the C2PA manifest still discloses.
        return content, False
    return (updated, True) if updated is not None else (content, False)


def _jpeg_set_xmp(data: bytes, uri: str) -> bytes | None:
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG")
    pos = 2
    insert_at = 2
    leading = True
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError("bad JPEG marker")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end of image: metadata ends here
            break
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        segment_end = pos + 2 + length
        payload = data[pos + 4:segment_end]
        if marker == 0xE1 and payload.startswith(_JPEG_XMP_HEADER):
            merged = _merge_xmp(payload[len(_JPEG_XMP_HEADER):], uri)
            if merged is None:
                return None
            return data[:pos] + _jpeg_app1(merged) + data[segment_end:]
        # JFIF (APP0) must stay first and Exif (APP1) conventionally next; XMP follows.
        if leading and marker in (0xE0, 0xE1):
            insert_at = segment_end
        else:
            leading = False
        pos = segment_end
    return data[:insert_at] + _jpeg_app1(_new_xmp_packet(uri)) + data[insert_at:]


def _jpeg_app1(xmp: bytes) -> bytes:
    payload = _JPEG_XMP_HEADER + xmp
    if len(payload) + 2 > 0xFFFF:
        raise ValueError("XMP packet too large for one JPEG segment")
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(
        ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _png_set_xmp(data: bytes, uri: str) -> bytes | None:
    signature = b"\x89PNG\r\n\x1a\n"
    if not data.startswith(signature):
        raise ValueError("not a PNG")
    pos = len(signature)
    after_ihdr = None
    while pos + 8 <= len(data):
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        kind = data[pos + 4:pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise ValueError("truncated PNG chunk")
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            after_ihdr = end
        elif kind == b"iTXt" and body.startswith(_PNG_XMP_KEYWORD + b"\x00"):
            rest = body[len(_PNG_XMP_KEYWORD) + 1:]
            compressed, text_parts = rest[0], rest[2:].split(b"\x00", 2)
            xmp = text_parts[2]
            if compressed:
                xmp = zlib.decompress(xmp)
            merged = _merge_xmp(xmp, uri)
            if merged is None:
                return None
            return data[:pos] + _png_xmp_chunk(merged) + data[end:]
        elif kind in (b"IDAT", b"IEND"):
            break
        pos = end
    if after_ihdr is None:
        raise ValueError("PNG without IHDR")
    return data[:after_ihdr] + _png_xmp_chunk(_new_xmp_packet(uri)) + data[after_ihdr:]


def _png_xmp_chunk(xmp: bytes) -> bytes:
    # keyword NUL, compression flag 0, method 0, empty language NUL, empty translation NUL.
    return _png_chunk(b"iTXt", _PNG_XMP_KEYWORD + b"\x00\x00\x00\x00\x00" + xmp)


def _webp_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("not a WebP")
    chunks = []
    pos = 12
    end = min(len(data), 8 + struct.unpack("<I", data[4:8])[0])
    while pos + 8 <= end:
        kind = data[pos:pos + 4]
        size = struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]
        if len(body) != size:
            raise ValueError("truncated WebP chunk")
        chunks.append((kind, body))
        pos += 8 + size + (size & 1)
    return chunks


def _webp_set_xmp(data: bytes, uri: str) -> bytes | None:
    chunks = _webp_chunks(data)
    if not chunks:
        raise ValueError("empty WebP")
    if chunks[0][0] != b"VP8X":
        # Simple (lossy or lossless) WebP cannot carry metadata; promote it to the extended
        # format, which needs the canvas size from the bitstream header.
        kind, body = chunks[0]
        if kind == b"VP8 ":
            if body[3:6] != b"\x9d\x01\x2a":
                raise ValueError("bad VP8 header")
            width = struct.unpack("<H", body[6:8])[0] & 0x3FFF
            height = struct.unpack("<H", body[8:10])[0] & 0x3FFF
            flags = 0
        elif kind == b"VP8L":
            if body[0] != 0x2F:
                raise ValueError("bad VP8L header")
            bits = struct.unpack("<I", body[1:5])[0]
            width = (bits & 0x3FFF) + 1
            height = ((bits >> 14) & 0x3FFF) + 1
            flags = 0x10 if (bits >> 28) & 1 else 0
        else:
            raise ValueError(f"unexpected first WebP chunk {kind!r}")
        vp8x = bytes([flags]) + b"\x00\x00\x00" + (width - 1).to_bytes(3, "little") + \
            (height - 1).to_bytes(3, "little")
        chunks.insert(0, (b"VP8X", vp8x))
    vp8x_body = bytearray(chunks[0][1])
    vp8x_body[0] |= 0x04  # XMP metadata present
    chunks[0] = (b"VP8X", bytes(vp8x_body))
    for index, (kind, body) in enumerate(chunks):
        if kind == b"XMP ":
            merged = _merge_xmp(body, uri)
            if merged is None:
                return None
            chunks[index] = (kind, merged)
            break
    else:
        chunks.append((b"XMP ", _new_xmp_packet(uri)))
    out = bytearray()
    for kind, body in chunks:
        out += kind + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) & 1 else b"")
    return b"RIFF" + struct.pack("<I", len(out) + 4) + b"WEBP" + bytes(out)


# ---------------------------------------------------------------------------------------
# Files


def _read_file(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise BadInputError(f"{what} file not found", str(path)) from exc
    except OSError as exc:
        raise BadInputError(f"cannot read {what} file: {exc.strerror or exc}", str(path)) from exc


def _file_mode(path: Path) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o644


def atomic_write_bytes(destination: Path, data: bytes, *, mode: int) -> None:
    """Write ``data`` to ``destination`` so readers see the old file or the new, never half.

    The temporary file is created with ``mode`` already applied (os.open), so a private key
    is never readable by others, not even for the instant before a chmod.
    """
    destination = Path(destination)
    directory = destination.parent if str(destination.parent) else Path(".")
    if not directory.is_dir():
        raise BadInputError("output directory does not exist", str(directory))
    fd = -1
    temp_path = ""
    try:
        for _ in range(100):
            temp_path = os.path.join(
                directory, f".{destination.name}.{os.urandom(6).hex()}.tmp")
            try:
                fd = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - 100 random collisions
            raise ManifestError(f"{destination}: could not create a temporary file")
        os.fchmod(fd, mode)  # umask may have narrowed it; never widened beyond `mode`
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(temp_path, destination)
        temp_path = ""
        _fsync_directory(directory)
    except OSError as exc:
        raise BadInputError(f"cannot write file: {exc.strerror or exc}", str(destination)) \
            from exc
    finally:
        if fd >= 0:
            os.close(fd)
        if temp_path and os.path.exists(temp_path):
            os.unlink(temp_path)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not every platform/filesystem allows it.
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)

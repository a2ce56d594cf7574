"""Signing identities: a private CA and a C2PA-conformant signing certificate, or an
existing chain and key, loaded and checked to fit together.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from provenance.atomic import atomic_write_bytes, read_file_bytes
from provenance.errors import BadInputError

__all__ = [
    "CA_FILE",
    "CHAIN_FILE",
    "KEY_FILE",
    "SigningIdentity",
    "load_signing_identity",
    "new_signing_identity",
]

# The C2PA "documentSigning" EKU (RFC 9336). c2pa-rs accepts it, as well as emailProtection.
_EKU_DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")

_ALGORITHMS = ("es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519")
_NEW_IDENTITY_ALGORITHMS = ("es256", "es384", "ed25519")

CA_FILE = "ca.pem"
CHAIN_FILE = "signer-chain.pem"
KEY_FILE = "signer.key"


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
            "a signing key already exists here; replace it with `provenance keys new --overwrite` "
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
    chain_pem = read_file_bytes(certificate, "certificate chain")
    key_pem = read_file_bytes(key, "private key")
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

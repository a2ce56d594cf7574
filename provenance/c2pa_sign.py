"""Sign an AI-generation disclosure into a file (embedded C2PA manifest) or beside it (sidecar).

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
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from provenance.atomic import atomic_write_bytes, file_mode, read_file_bytes
from provenance.c2pa_formats import (
    OFFLINE_VERIFY_SETTINGS,
    builder_media_types,
    c2pa,
    sidecar_path_for,
    sniff_media_type,
)
from provenance.c2pa_verify import INTACT_STATUSES, read_store
from provenance.errors import BadInputError, ManifestError
from provenance.identities import SigningIdentity
from provenance.iptc import parse_source_type
from provenance.xmp import with_xmp

__all__ = ["DisclosureResult", "default_output_path", "disclose"]

# Reverse-DNS label under which this tool names itself in claim_generator_info.
_CLAIM_GENERATOR = "provenance-checker"


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

    content = read_file_bytes(path, "input")
    if not content:
        # A data hash over nothing binds the disclosure to nothing; the SDK refuses too.
        raise BadInputError("the file is empty; there is no content to disclose", str(path))
    media_type = sniff_media_type(path, content)
    manifest = _manifest_definition(path, source_uri, generator, assertions)
    embeddable = media_type in builder_media_types()

    if embeddable:
        destination = path if in_place else Path(output) if output else default_output_path(path)
        prepared, xmp_written = with_xmp(content, media_type, source_uri)
        signed_bytes = _sign(manifest, identity, media_type, prepared, embed=True, path=path)
        label = _checked_label(path, media_type, signed_bytes, manifest_data=None)
        atomic_write_bytes(destination, signed_bytes, mode=file_mode(path))
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
    atomic_write_bytes(sidecar, manifest_bytes, mode=file_mode(path))
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
        with c2pa.Context.from_dict({"verify": OFFLINE_VERIFY_SETTINGS}) as context:
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
    outcome = read_store(media_type, asset, manifest_data, trust_pem=None)
    status, store = outcome.status, outcome.store
    if status not in INTACT_STATUSES or store is None:
        raise ManifestError(
            f"{path}: the freshly signed manifest does not verify (status {status}; "
            f"{outcome.error or ', '.join(outcome.failure_codes)}); nothing was written")
    return store.get("active_manifest")

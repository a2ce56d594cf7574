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
* History is kept: when the input already carries a manifest (embedded, or the sidecar of a
  text file), it becomes the new manifest's ``parentOf`` ingredient and the actions are
  ``c2pa.opened`` (added by the SDK, pointing at it) then ``c2pa.edited.metadata`` with the
  declared type: disclosing changes metadata only. A manifest the SDK cannot ingest at all is
  replaced, and ``DisclosureResult.parent_note`` says so.
* Images and text also get a ``c2pa.soft-binding`` assertion (``io.iscc.v0``, the ISCC
  content code; see ``provenance.soft_binding``) so a stripped copy can be resolved.
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
    reader_media_types,
    sidecar_path_for,
    sniff_media_type,
)
from provenance.c2pa_verify import INTACT_STATUSES, read_store
from provenance.errors import BadInputError, ManifestError
from provenance.identities import SigningIdentity
from provenance.iptc import parse_source_type
from provenance.soft_binding import IsccCode, iscc_content_code, soft_binding_assertion
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
    parent_manifest: str | None = None
    parent_status: str | None = None
    parent_note: str | None = None
    soft_binding: str | None = None
    soft_binding_note: str | None = None

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
    embeddable = media_type in builder_media_types()
    sidecar = None if embeddable else (Path(output) if output else sidecar_path_for(path))
    if sidecar is not None and sidecar.resolve() == path.resolve():
        raise BadInputError("the sidecar path must differ from the content path", str(path))

    # History: a manifest the input already carries becomes the parentOf ingredient of the
    # new one instead of being replaced, so a reader sees the chain.
    parent = _existing_manifest(path, media_type, content, embeddable)
    binding, binding_note = _soft_binding(content, media_type, path)
    if binding is not None:
        assertions = [*assertions, soft_binding_assertion(binding)]
    manifest = _manifest_definition(path, source_uri, generator, assertions,
                                    edit=parent.store is not None)
    extras = {"parent_manifest": parent.label, "parent_status": parent.status,
              "soft_binding": binding.code if binding else None,
              "soft_binding_note": binding_note}

    if embeddable:
        destination = path if in_place else Path(output) if output else default_output_path(path)
        prepared, xmp_written = with_xmp(content, media_type, source_uri)
        note = parent.note
        try:
            signed_bytes = _sign(manifest, identity, media_type, prepared, embed=True,
                                 path=path, parent=parent, original=content)
        except _ParentRejected as exc:
            # The SDK cannot even ingest the existing manifest as an ingredient: disclose
            # anyway (the user asked), as a new creation, and say the old one is replaced.
            note = f"the input's existing manifest could not be kept as history ({exc}); " \
                   "it is replaced"
            extras["parent_manifest"] = None
            manifest = _manifest_definition(path, source_uri, generator, assertions, edit=False)
            signed_bytes = _sign(manifest, identity, media_type, prepared, embed=True, path=path)
        label = _checked_label(path, media_type, signed_bytes, manifest_data=None)
        atomic_write_bytes(destination, signed_bytes, mode=file_mode(path))
        return DisclosureResult(
            source=path, path=destination, manifest_path=None, embedded=True,
            media_type=media_type, source_type=source_uri, generator=generator,
            manifest_label=label, xmp_written=xmp_written, signer=identity.subject,
            parent_note=note, **extras,
        )

    assert sidecar is not None
    manifest_bytes = _sign(manifest, identity, media_type, content, embed=False, path=path,
                           parent=parent, original=content)
    label = _checked_label(path, media_type, content, manifest_data=manifest_bytes)
    atomic_write_bytes(sidecar, manifest_bytes, mode=file_mode(path))
    return DisclosureResult(
        source=path, path=path, manifest_path=sidecar, embedded=False,
        media_type=media_type, source_type=source_uri, generator=generator,
        manifest_label=label, xmp_written=False, signer=identity.subject,
        parent_note=parent.note, **extras,
    )


@dataclass
class _Parent:
    """The manifest store the input already carries (embedded, or its sidecar), if any."""

    store: dict[str, Any] | None = None
    label: str | None = None
    status: str | None = None
    sidecar_bytes: bytes | None = None
    note: str | None = None


def _existing_manifest(path: Path, media_type: str, content: bytes, embeddable: bool) -> _Parent:
    sidecar = sidecar_path_for(path)
    attempts: list[bytes | None] = []
    if media_type in reader_media_types():
        attempts.append(None)
    if not embeddable and sidecar.is_file():
        attempts.append(read_file_bytes(sidecar, "sidecar"))
    for manifest_data in attempts:
        outcome = read_store(media_type, content, manifest_data, trust_pem=None)
        if outcome.store is not None:
            return _Parent(store=outcome.store, label=outcome.store.get("active_manifest"),
                           status=outcome.status, sidecar_bytes=manifest_data)
        if outcome.status in ("malformed", "unreachable"):
            if manifest_data is None and embeddable:
                # The SDK can still record an unreadable or remote manifest as an ingredient
                # (manifest.inaccessible); try, and say so if it cannot.
                return _Parent(store={}, status=outcome.status,
                               note=f"the input's existing manifest is {outcome.status}: "
                                    f"{outcome.error}")
            return _Parent(status=outcome.status,
                           note=f"the input's existing manifest is {outcome.status} and is "
                                f"replaced, not kept as history: {outcome.error}")
    return _Parent()


def _soft_binding(content: bytes, media_type: str, path: Path) -> tuple[IsccCode | None, str | None]:
    """The ISCC content code for the soft binding, or why there is none."""
    if not media_type.startswith(("image/", "text/")):
        return None, f"no ISCC content code for {media_type}; no soft binding"
    try:
        return iscc_content_code(content, media_type, str(path)), None
    except BadInputError as exc:
        return None, f"no soft binding: {exc}"


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
    path: Path, source_uri: str, generator: str | None, extra: list[dict], *, edit: bool
) -> dict[str, Any]:
    from importlib import metadata

    try:
        version = metadata.version("provenance-checker")
    except metadata.PackageNotFoundError:  # running from a checkout
        version = "0.0.0"
    # A first disclosure creates; a re-disclosure changes metadata only (the XMP property and
    # the manifest; never pixels or text), which C2PA calls c2pa.edited.metadata. The SDK
    # adds the c2pa.opened action that points at the parent ingredient before it.
    name = "c2pa.edited.metadata" if edit else "c2pa.created"
    action: dict[str, Any] = {"action": name, "digitalSourceType": source_uri}
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
    parent: _Parent | None = None,
    original: bytes = b"",
) -> bytes:
    """Sign ``content``; return the signed asset (embed) or the detached manifest bytes.

    Raises:
        _ParentRejected: the SDK would not take ``parent`` as an ingredient.
    """
    signer = _make_signer(identity)
    try:
        with c2pa.Context.from_dict({"verify": OFFLINE_VERIFY_SETTINGS}) as context:
            if parent is not None and parent.sidecar_bytes is not None and not embed:
                manifest = _with_sidecar_parent(manifest, parent, path, media_type)
            builder = c2pa.Builder(manifest, context=context)
            if not embed:
                builder.set_no_embed()
                if parent is not None and parent.sidecar_bytes is not None:
                    builder.add_resource(_PARENT_RESOURCE, io.BytesIO(parent.sidecar_bytes))
                    builder.set_intent(c2pa.C2paBuilderIntent.EDIT)
            elif parent is not None and parent.store is not None:
                _add_embedded_parent(builder, path, media_type, original)
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


_PARENT_RESOURCE = "parent-manifest.c2pa"


class _ParentRejected(Exception):
    """The SDK refused the input's existing manifest as an ingredient."""


def _add_embedded_parent(builder: Any, path: Path, media_type: str, original: bytes) -> None:
    """Add the input as it was (before the XMP edit, so its manifest's data hash still
    matches) as the parentOf ingredient, and mark the manifest as an edit."""
    try:
        builder.add_ingredient({"title": path.name, "relationship": "parentOf"}, media_type,
                               io.BytesIO(original))
    except c2pa.C2paError as exc:
        raise _ParentRejected(str(exc)) from exc
    builder.set_intent(c2pa.C2paBuilderIntent.EDIT)


def _with_sidecar_parent(manifest: dict[str, Any], parent: _Parent, path: Path,
                         media_type: str) -> dict[str, Any]:
    """The manifest definition with the previous sidecar manifest as parentOf ingredient.

    A sidecar cannot be handed to ``add_ingredient`` (it wants an asset, or an ingredient
    archive), so the ingredient is declared with the sidecar as its ``manifest_data``
    resource and the validation results just read from it.
    """
    assert parent.store is not None
    ingredient = {
        "title": path.name, "relationship": "parentOf", "format": media_type,
        "manifest_data": {"format": "application/c2pa", "identifier": _PARENT_RESOURCE},
        "active_manifest": parent.store.get("active_manifest"),
        "validation_results": parent.store.get("validation_results") or {},
    }
    return dict(manifest, ingredients=[ingredient])


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

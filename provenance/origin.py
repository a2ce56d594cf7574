"""What a file already says about its origin, combined into one suggested IPTC source type.

``inspect_origin(path_or_content)`` gathers every origin signal a file carries, each with where
it was found, and ends with a suggested IPTC ``digitalSourceType`` and the evidence for it,
or ``None`` ("unknown"):

=====================  ==========================================================  ==========
signal                 what                                                        strength
=====================  ==========================================================  ==========
``c2pa``               a C2PA manifest store: validation state under our trust     signed
                       settings, active manifest, claim generator, actions with
                       their digitalSourceType, ingredients and the chain before
``watermark``          a known generator's invisible watermark (dwtDct), decoded   strong
``generator-settings`` a generator's settings in text metadata (SD web UI          medium
                       ``parameters``, ComfyUI ``prompt``/``workflow``, ...)
``xmp``                ``Iptc4xmpExt:DigitalSourceType`` (unsigned)                medium
``exif``               ``Software`` naming a generator (medium); ``Make``/``Model``   medium /
                       of a camera (weak)                                          weak
=====================  ==========================================================  ==========

Rules of the suggestion, in order:

1. Only signals of medium strength or more count. Camera EXIF alone is weak: editors and
   generators copy it, so it is reported but suggests nothing, and absence of signals
   is never evidence of a camera capture: nothing found means ``None``.
2. A manifest whose signature or hashes fail is a claim, not evidence (strength ``none``).
3. If any counted signal says a trained model was involved, the strongest such signal
   decides, even over a valid manifest that says otherwise: a signature proves who made a
   claim, not that it is true, and a generator's watermark or settings in the pixels and
   metadata are the very case of an AI image disclosed as a capture. Declaring too much is
   the safer mistake. Otherwise the strongest signal decides.
4. Every counted signal that disagrees about AI involvement is listed in ``conflicts``.

Bad input stays a per-file error (``BadInputError``: missing, unreadable, empty); damage
inside the file (a malformed manifest, truncated XMP, huge or binary text chunks) is listed in
``problems`` and the rest is still read.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .atomic import read_file_bytes
from .c2pa_formats import reader_media_types, sidecar_path_for, sniff_media_type
from .embedded_metadata import ai_software_name, read_embedded_metadata
from .errors import BadInputError
from .iptc import DIGITAL_SOURCE_TYPES, parse_source_type, short_source_type
from .soft_binding import soft_bindings_in
from .watermarks import MIN_SIDE_PIXELS, decode_known_watermarks

if TYPE_CHECKING:
    from .c2pa_verify import ChainLink

__all__ = [
    "AI_SOURCE_TYPES",
    "CAPTURE_SOURCE_TYPES",
    "ORIGIN_SCHEMA",
    "Conflict",
    "OriginReport",
    "OriginSignal",
    "Strength",
    "consistency_conflicts",
    "inspect_origin",
]

ORIGIN_SCHEMA = "provenance.origin/1"

Strength = Literal["signed", "strong", "medium", "weak", "none"]
_RANK: dict[str, int] = {"signed": 4, "strong": 3, "medium": 2, "weak": 1, "none": 0}
#: Strength a signal needs to count towards the suggestion or a consistency warning.
MIN_EVIDENCE: Strength = "medium"

#: Types that say a trained model (generative AI) made or shaped the content.
AI_SOURCE_TYPES = frozenset(DIGITAL_SOURCE_TYPES[n] for n in (
    "trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia"))
#: Types that say no generative AI was involved: captures and human work.
CAPTURE_SOURCE_TYPES = frozenset(DIGITAL_SOURCE_TYPES[n] for n in (
    "digitalCapture", "computationalCapture", "negativeFilm", "positiveFilm", "print",
    "minorHumanEdits", "humanEdits", "compositeCapture", "screenCapture", "virtualRecording",
    "digitalCreation"))
_TRAINED = DIGITAL_SOURCE_TYPES["trainedAlgorithmicMedia"]
_CAPTURE = DIGITAL_SOURCE_TYPES["digitalCapture"]
#: Pixels above which the watermark decoder is not run (time grows with area).
WATERMARK_MAX_PIXELS = 40_000_000


@dataclass
class OriginSignal:
    """One thing the file says about its origin.

    ``source_type`` is the IPTC URI this item implies (``None`` when it implies none);
    ``strength`` how far it can be relied on; ``found_in`` where in the file (or beside
    it) it was found; ``details`` the raw facts.
    """

    signal: str
    found_in: str
    summary: str
    source_type: str | None
    strength: Strength
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"signal": self.signal, "found_in": self.found_in, "summary": self.summary,
                "source_type": self.source_type, "strength": self.strength,
                "details": self.details}


@dataclass(frozen=True)
class Conflict:
    """Two signals (or a declaration and a signal) that disagree about the origin."""

    message: str
    source_types: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"message": self.message, "source_types": list(self.source_types)}


@dataclass
class OriginReport:
    """Everything ``inspect_origin`` found in one file, and the suggestion it ends with."""

    path: str
    media_type: str
    signals: list[OriginSignal]
    suggested_source_type: str | None
    evidence: list[str]
    conflicts: list[Conflict]
    problems: list[str]
    c2pa: dict[str, Any] | None
    elapsed_s: float

    @property
    def suggestion(self) -> str:
        """The suggested short IPTC name, or ``unknown``."""
        return short_source_type(self.suggested_source_type) if self.suggested_source_type \
            else "unknown"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``schema`` ``provenance.origin/1``)."""
        return {"schema": ORIGIN_SCHEMA, "path": self.path, "media_type": self.media_type,
                "suggested_source_type": self.suggested_source_type,
                "suggestion": self.suggestion, "evidence": list(self.evidence),
                "conflicts": [c.to_dict() for c in self.conflicts],
                "signals": [s.to_dict() for s in self.signals], "c2pa": self.c2pa,
                "problems": list(self.problems), "elapsed_s": round(self.elapsed_s, 4)}


def inspect_origin(
    source: Path | str | bytes,
    *,
    name: str | None = None,
    trust_anchors: list[Path] | None = None,
    sidecar: Path | None = None,
    watermarks: bool = True,
) -> OriginReport:
    """Everything ``source`` (a path, or a file's bytes) says about its origin.

    Args:
        name: how to call bytes in messages (default ``<bytes>``).
        trust_anchors: CA certificates (PEM) the C2PA signer must chain to for ``trusted``.
        sidecar: a detached manifest to read instead of ``<file>.c2pa``.
        watermarks: decode invisible watermarks (the slowest step, ~30 ms per megapixel).

    Raises:
        BadInputError: the file is missing, unreadable or empty, or a trust anchor is bad.
    """
    started = time.perf_counter()
    path: Path | None = None
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        label = name or "<bytes>"
    else:
        path = Path(source)
        label = name or str(path)
        if not path.is_file():
            raise BadInputError("no such file (or not a regular file)", label)
        data = read_file_bytes(path, "input")
    if not data:
        raise BadInputError("the file is empty", label)
    # The C2PA reader (cryptography, the SDK) is imported only for a file that has a manifest to read or
    # anchors to load: most checked drafts have neither, and a pre-commit hook pays every import.
    trust_pem = None
    if trust_anchors:
        from .c2pa_verify import load_trust_anchors
        trust_pem = load_trust_anchors(trust_anchors)
    media_type = sniff_media_type(path or Path(label), data)
    signals: list[OriginSignal] = []
    problems: list[str] = []

    c2pa_info = _c2pa_signals(data, media_type, path, sidecar, trust_pem, label, signals,
                              problems)
    if media_type.startswith("image/"):
        metadata = read_embedded_metadata(data, label)
        problems.extend(metadata.problems)
        for item in metadata.digital_source_types:
            try:
                uri = parse_source_type(item.value)
            except BadInputError:
                problems.append(f"{label}: {item.location}: {item.value!r} is not in the IPTC "
                                "digital source type vocabulary")
                continue
            signals.append(OriginSignal(
                "xmp", item.location, f"XMP Iptc4xmpExt:DigitalSourceType = "
                f"{short_source_type(uri)} (unsigned: anyone can write it)", uri, "medium",
                {"value": item.value}))
        for settings in metadata.generators:
            model = f", model {settings.model}" if settings.model else ""
            signals.append(OriginSignal(
                "generator-settings", settings.location,
                f"{settings.generator} generation settings in {settings.key!r}{model}",
                _TRAINED, "medium", settings.to_dict()))
        for item in metadata.items:
            if item.key in ("Software", "xmp:CreatorTool") and ai_software_name(item.value):
                signals.append(OriginSignal(
                    "exif" if item.kind == "exif" else "xmp", item.location,
                    f"{item.key} names a generator: {item.value}", _TRAINED, "medium",
                    {"key": item.key, "value": item.value}))
        make, model_item = metadata.exif("Make"), metadata.exif("Model")
        if make or model_item:
            camera = " ".join(i.value for i in (make, model_item) if i)
            signals.append(OriginSignal(
                "exif", "EXIF IFD0 Make/Model", f"camera EXIF: {camera} (weak: unsigned, and "
                "copied by editors and generators)", _CAPTURE, "weak",
                {"make": make.value if make else None,
                 "model": model_item.value if model_item else None}))
        if watermarks:
            _watermark_signals(data, label, signals, problems)

    suggested, evidence, conflicts = _suggest(signals)
    return OriginReport(path=label, media_type=media_type, signals=signals,
                        suggested_source_type=suggested, evidence=evidence, conflicts=conflicts,
                        problems=problems, c2pa=c2pa_info,
                        elapsed_s=time.perf_counter() - started)


# ---------------------------------------------------------------------------------------
# C2PA


def _c2pa_signals(data: bytes, media_type: str, path: Path | None, sidecar: Path | None,
                  trust_pem: str | None, label: str, signals: list[OriginSignal],
                  problems: list[str]) -> dict[str, Any] | None:
    attempts: list[tuple[bytes | None, str]] = []
    if sidecar is not None:
        attempts.append((read_file_bytes(Path(sidecar), "sidecar"), f"sidecar {sidecar}"))
    else:
        if media_type in reader_media_types():
            attempts.append((None, "embedded C2PA manifest store (JUMBF)"))
        if path is not None and sidecar_path_for(path).is_file():
            candidate = sidecar_path_for(path)
            attempts.append((read_file_bytes(candidate, "sidecar"), f"sidecar {candidate}"))
    if attempts:
        from .c2pa_verify import (
            INTACT_STATUSES,
            claim_generator_name,
            manifest_actions,
            manifest_chain,
            read_store,
        )
    for manifest_data, where in attempts:
        outcome = read_store(media_type, data, manifest_data, trust_pem)
        if outcome.status == "no-manifest":
            continue
        info: dict[str, Any] = {"status": outcome.status, "found_in": where,
                                "failure_codes": outcome.failure_codes}
        if outcome.store is None:
            # Malformed or remote: the file claims a manifest that cannot be read.
            problems.append(f"{label}: {where}: C2PA manifest is {outcome.status}: "
                            f"{outcome.error}")
            info["error"] = outcome.error
            info["remote_url"] = outcome.remote_url
            signals.append(OriginSignal("c2pa", where, f"C2PA manifest {outcome.status}; not "
                                        "read", None, "none", dict(info)))
            return info
        store = outcome.store
        active_label = store.get("active_manifest")
        active = (store.get("manifests") or {}).get(active_label) or {}
        actions = manifest_actions(active)
        chain: list[ChainLink] = manifest_chain(store, outcome.status,
                                                anchors_given=bool(trust_pem))
        info.update({
            "validation_state": store.get("validation_state"),
            "active_manifest": active_label,
            "claim_generator": claim_generator_name(active),
            "title": active.get("title"),
            "signer": (active.get("signature_info") or {}).get("common_name"),
            "actions": actions,
            "ingredients": [{"title": i.get("title"), "relationship": i.get("relationship"),
                             "active_manifest": i.get("active_manifest")}
                            for i in active.get("ingredients") or [] if isinstance(i, dict)],
            "soft_bindings": soft_bindings_in(active),
            "chain": [link.to_dict() for link in chain],
        })
        intact = outcome.status in INTACT_STATUSES
        declared = list(dict.fromkeys(a["digitalSourceType"] for a in actions
                                      if a["digitalSourceType"]))
        valid_types = []
        for uri in declared:
            try:
                valid_types.append(parse_source_type(uri))
            except BadInputError:
                problems.append(f"{label}: {where}: action digitalSourceType {uri!r} is not "
                                "in the IPTC vocabulary")
        # The active manifest's latest declaration is its answer; an ingredient's AI type
        # still counts, since content made from AI output stays AI-involved.
        chain_ai = sorted({t for link in chain[1:] for t in link.source_types
                           if link.status in INTACT_STATUSES and t in AI_SOURCE_TYPES})
        strength: Strength = "signed" if intact else "none"
        state = f"{outcome.status}" + ("" if intact else ": a claim, NOT verified")
        if valid_types:
            signals.append(OriginSignal(
                "c2pa", where, f"C2PA manifest ({state}) by {info['claim_generator'] or '?'} "
                f"declares {', '.join(short_source_type(t) for t in valid_types)}",
                valid_types[-1], strength, {"actions": actions, "status": outcome.status}))
        else:
            signals.append(OriginSignal(
                "c2pa", where, f"C2PA manifest ({state}) by {info['claim_generator'] or '?'} "
                "declares no digital source type", None, strength,
                {"actions": actions, "status": outcome.status}))
        for uri in chain_ai:
            if uri not in valid_types:
                signals.append(OriginSignal(
                    "c2pa", f"{where}, ingredient chain",
                    f"an earlier manifest in the chain declares {short_source_type(uri)}",
                    uri, strength, {"chain": [link.label for link in chain]}))
        return info
    return None


# ---------------------------------------------------------------------------------------
# Watermarks


def _watermark_signals(data: bytes, label: str, signals: list[OriginSignal],
                       problems: list[str]) -> None:
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
            if width * height < MIN_SIDE_PIXELS:
                return  # the scheme is not defined below 256 x 256 pixels
            if width * height > WATERMARK_MAX_PIXELS:
                problems.append(f"{label}: {width}x{height} image is over "
                                f"{WATERMARK_MAX_PIXELS} pixels; watermarks not decoded")
                return
            rgb = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError) as exc:
        problems.append(f"{label}: pixels unreadable, watermarks not decoded ({exc})")
        return
    for match in decode_known_watermarks(rgb):
        signals.append(OriginSignal(
            "watermark", f"pixels ({match.method}, {match.channel_order})",
            f"invisible watermark of {match.generator}: payload {match.payload_hex}, "
            f"{match.bit_errors}/{match.length} bits differ", _TRAINED, "strong",
            match.to_dict()))


# ---------------------------------------------------------------------------------------
# Suggestion and consistency


def _suggest(signals: list[OriginSignal]) -> tuple[str | None, list[str], list[Conflict]]:
    counted = [s for s in signals if s.source_type and _RANK[s.strength] >= _RANK[MIN_EVIDENCE]]
    evidence: list[str] = []
    conflicts: list[Conflict] = []
    weak = [s for s in signals if s.source_type and 0 < _RANK[s.strength] < _RANK[MIN_EVIDENCE]]
    if not counted:
        for s in weak:
            evidence.append(f"not enough on its own: {s.summary} [{s.found_in}]")
        return None, evidence, conflicts
    ai = [s for s in counted if s.source_type in AI_SOURCE_TYPES]
    pool = ai or counted  # rule 3: AI evidence decides whenever there is any
    chosen = max(pool, key=lambda s: _RANK[s.strength])  # first of the strongest
    suggested = chosen.source_type
    for s in counted:
        if s.source_type == suggested:
            evidence.append(f"{s.strength}: {s.summary} [{s.found_in}]")
    for s in counted:
        if s.source_type != suggested and _disagree(s.source_type, suggested):
            conflicts.append(Conflict(
                f"{s.signal} ({s.strength}, {s.found_in}) says "
                f"{short_source_type(s.source_type or '')}, but the suggestion is "
                f"{short_source_type(suggested or '')}",
                (s.source_type or "", suggested or "")))
    for s in weak:
        if _disagree(s.source_type, suggested):
            conflicts.append(Conflict(
                f"{s.signal} (weak, {s.found_in}) suggests "
                f"{short_source_type(s.source_type or '')}", (s.source_type or "", suggested or "")))
    return suggested, evidence, conflicts


def _disagree(a: str | None, b: str | None) -> bool:
    """Whether two source types contradict each other about generative AI involvement."""
    if not a or not b or a == b:
        return False
    return (a in AI_SOURCE_TYPES and b in CAPTURE_SOURCE_TYPES) or \
        (a in CAPTURE_SOURCE_TYPES and b in AI_SOURCE_TYPES)


def consistency_conflicts(declared: str, report: OriginReport) -> list[Conflict]:
    """Where a declared source type contradicts what the file carries.

    Only signals of medium strength or more count (a camera EXIF tag does not make an AI
    disclosure wrong), and only contradictions about generative AI: declaring a capture or
    human work for content with AI evidence, or AI for content whose own valid manifest
    says capture. Types that say neither (``algorithmicMedia``, ``composite``, ...) are
    never contradicted.

    Raises:
        BadInputError: ``declared`` is not in the IPTC vocabulary.
    """
    uri = parse_source_type(declared)
    out = []
    for s in report.signals:
        # Declaring AI where unsigned metadata says capture errs on the safe side; only a
        # valid signed manifest that says capture makes an AI declaration contradictory.
        needed = "signed" if uri in AI_SOURCE_TYPES else MIN_EVIDENCE
        if s.source_type and _RANK[s.strength] >= _RANK[needed] and \
                _disagree(uri, s.source_type):
            out.append(Conflict(
                f"declared {short_source_type(uri)}, but {s.summary} [{s.found_in}]",
                (uri, s.source_type)))
    return out

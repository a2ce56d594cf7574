"""C2PA soft binding by ISCC content code (``io.iscc.v0``), computed offline with ``iscc-core``.

A soft binding lets a resolver find a manifest again after the embedded copy was stripped:
anyone can recompute the code from the content alone and look it up. ``io.iscc.v0`` is the
identifier the C2PA soft-binding algorithm list (github.com/c2pa-org/softbinding-algorithm-list)
registers for the ISCC (ISO 24138); it is the open, general-purpose fingerprint on that
list and needs no service or model.

Input contract
--------------
* Images (anything Pillow decodes): ISCC Content-Code Image, 64 bits, from iscc-sdk's
  normalisation: EXIF orientation applied, transparency composited on white, grey scale,
  32 x 32 bicubic. Text: ISCC Content-Code Text, 64 bits, of the decoded text (iscc-core
  collapses case, whitespace and punctuation itself).
* The assertion is ``{"alg": "io.iscc.v0", "blocks": [{"scope": {}, "value": "ISCC:..."}]}``;
  an empty scope means "the whole asset". The value is the canonical ISCC string: the
  c2pa-rs reader types block values as text.
* Distances are Hamming distances between the 64-bit bodies of two codes of the same kind
  (image with image, text with text); other pairs have no distance.
"""

from __future__ import annotations

import io
import re
from dataclasses import asdict, dataclass
from typing import Any

from .errors import BadInputError, MissingComponentError

__all__ = [
    "ISCC_ALG",
    "ISCC_NEAR_BITS",
    "SOFT_BINDING_LABEL",
    "IsccCode",
    "iscc_content_code",
    "iscc_distance",
    "parse_iscc",
    "soft_binding_assertion",
    "soft_bindings_in",
]

SOFT_BINDING_LABEL = "c2pa.soft-binding"
#: The registered identifier on the C2PA soft-binding algorithm list.
ISCC_ALG = "io.iscc.v0"
#: Hamming distance (of 64 bits) up to which two image or text content codes are taken to be
#: the same content. Measured in bench/inspect_eval.py (re-encoded, resized, stripped copies
#: versus unrelated photos); see bench/RESULTS.md.
ISCC_NEAR_BITS = 8
_MAX_PIXELS = 64_000_000
_LABEL = re.compile(r"c2pa\.soft-binding(\.v\d+)?(__\d+)?")


@dataclass(frozen=True)
class IsccCode:
    """An ISCC content code: the canonical string, its kind (``image``/``text``), its body."""

    code: str
    kind: str
    body: bytes

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (body as hex)."""
        data = asdict(self)
        data["body"] = self.body.hex()
        return data


def _iscc() -> Any:
    try:
        import iscc_core
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise MissingComponentError(
            "iscc-core is not installed; install it with `pip install iscc-core`") from exc
    return iscc_core


def parse_iscc(code: str) -> IsccCode | None:
    """Decode an ISCC content-code string; ``None`` when it is not an image or text code."""
    iscc_core = _iscc()
    try:
        main_type, sub_type, _version, _length, body = iscc_core.iscc_decode(code)
    except (ValueError, KeyError, TypeError):
        return None
    # MainType CONTENT is 2; SubType TEXT 0, IMAGE 1.
    if main_type != 2 or sub_type not in (0, 1):
        return None
    canonical = code if code.startswith("ISCC:") else f"ISCC:{code}"
    return IsccCode(code=canonical, kind="image" if sub_type == 1 else "text", body=bytes(body))


def iscc_content_code(data: bytes, media_type: str, name: str = "<bytes>") -> IsccCode:
    """The ISCC content code of a file's bytes: Image for ``image/*``, Text for ``text/*``.

    Raises:
        BadInputError: the media type has no content code here, or the content cannot be
            decoded (not an image, over 64 MP, not UTF-8 text).
    """
    iscc_core = _iscc()
    if media_type.startswith("image/"):
        pixels = _normalised_pixels(data, name)
        result = iscc_core.gen_image_code_v0(pixels, bits=64)
    elif media_type.startswith("text/"):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise BadInputError(f"text is not UTF-8 ({exc}); no ISCC text code", name) from exc
        result = iscc_core.gen_text_code_v0(text, bits=64)
    else:
        raise BadInputError(f"no ISCC content code for {media_type}", name)
    parsed = parse_iscc(result["iscc"])
    assert parsed is not None  # iscc-core just produced it
    return parsed


def _normalised_pixels(data: bytes, name: str) -> list[int]:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.size[0] * im.size[1] > _MAX_PIXELS:
                raise BadInputError(f"image is {im.size[0]}x{im.size[1]} pixels, over the "
                                    f"{_MAX_PIXELS}-pixel limit", name)
            im.draft("RGB", (256, 256))  # JPEG: decode at reduced size, 32 x 32 is the goal
            img = ImageOps.exif_transpose(im)
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img = Image.alpha_composite(background, rgba)
            grey = img.convert("L").resize((32, 32), Image.Resampling.BICUBIC)
            return [int(v) for v in grey.tobytes()]  # row-major 8-bit grey, as iscc-sdk
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError) as exc:
        raise BadInputError(f"cannot decode the image for an ISCC code ({exc})", name) from exc


def iscc_distance(a: IsccCode | str, b: IsccCode | str) -> int | None:
    """Hamming distance between two content codes of the same kind and length, else None."""
    ca = parse_iscc(a) if isinstance(a, str) else a
    cb = parse_iscc(b) if isinstance(b, str) else b
    if ca is None or cb is None or ca.kind != cb.kind or len(ca.body) != len(cb.body):
        return None
    return int.from_bytes(ca.body, "big").__xor__(int.from_bytes(cb.body, "big")).bit_count()


def soft_binding_assertion(code: IsccCode) -> dict[str, Any]:
    """The ``c2pa.soft-binding`` assertion (label and data) for a content code."""
    return {"label": SOFT_BINDING_LABEL,
            "data": {"alg": ISCC_ALG, "blocks": [{"scope": {}, "value": code.code}]}}


def soft_bindings_in(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The soft bindings a manifest (SDK JSON) declares, each ``{label, alg, values}``."""
    out = []
    for assertion in manifest.get("assertions") or []:
        label = str(assertion.get("label", ""))
        data = assertion.get("data")
        if _LABEL.fullmatch(label) and isinstance(data, dict):
            values = [b.get("value") for b in data.get("blocks") or [] if isinstance(b, dict)]
            out.append({"label": label, "alg": data.get("alg"),
                        "values": [v if isinstance(v, str) else repr(v) for v in values]})
    return out

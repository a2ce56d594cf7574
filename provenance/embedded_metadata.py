"""Read what an image file's own metadata says about its origin, without decoding pixels.

Input contract
--------------
``read_embedded_metadata(data, name)`` takes the file's bytes (JPEG, PNG, WebP; anything
else gives an empty result) and returns every origin-relevant item with where it was found:

* XMP (JPEG APP1, PNG ``iTXt XML:com.adobe.xmp``, WebP ``XMP `` chunk):
  ``Iptc4xmpExt:DigitalSourceType`` and ``xmp:CreatorTool``;
* EXIF (through Pillow): ``Software``, ``Make``, ``Model``, ``ImageDescription`` and the Exif
  IFD's ``UserComment`` (where Stable Diffusion web UIs put their settings in JPEG/WebP);
* text metadata: PNG ``tEXt``/``zTXt``/``iTXt`` chunks and JPEG ``COM`` segments, and which
  known generator wrote them (Stable Diffusion web UI ``parameters``, ComfyUI
  ``prompt``/``workflow``, InvokeAI, NovelAI, Midjourney).

Bad metadata never raises: a truncated segment, a malformed XMP packet, a text chunk over
``MAX_TEXT_BYTES`` (before or after decompression) or one holding binary data becomes a
``problem`` string naming what and where, and reading goes on with the rest.
"""

from __future__ import annotations

import io
import json
import re
import struct
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any
from xml.etree import ElementTree

from .xmp import IPTC_EXT_NS

__all__ = [
    "MAX_TEXT_BYTES",
    "EmbeddedMetadata",
    "GeneratorSettings",
    "MetadataItem",
    "read_embedded_metadata",
]

#: Text metadata over this size (raw or decompressed) is reported, not read: generator
#: settings are kilobytes (a ComfyUI workflow tens of them), never megabytes.
MAX_TEXT_BYTES = 1_000_000
#: How much of a value a report repeats.
PREVIEW_CHARS = 300

_JPEG_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
_PNG_XMP_KEYWORD = "XML:com.adobe.xmp"
_XMP_NS = "http://ns.adobe.com/xap/1.0/"
_RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"

# EXIF tags (TIFF 6 / Exif 2.3).
_EXIF_TAGS = {0x0131: "Software", 0x010F: "Make", 0x0110: "Model", 0x010E: "ImageDescription",
              0x013B: "Artist"}
_EXIF_IFD = 0x8769
_USER_COMMENT = 0x9286

# Substrings of EXIF Software / XMP CreatorTool that name an image generator (lower case).
_AI_SOFTWARE = ("novelai", "midjourney", "dall-e", "dall·e", "stable diffusion", "comfyui",
                "invokeai", "firefly", "leonardo.ai", "imagen", "flux", "automatic1111",
                "fooocus", "dreamstudio")


@dataclass(frozen=True)
class MetadataItem:
    """One metadata value: ``kind`` (xmp, exif, text), its ``key``, a preview of its
    ``value``, and ``location``: where in the file it was found."""

    kind: str
    key: str
    value: str
    location: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class GeneratorSettings:
    """Generation settings a known generator left in text metadata."""

    generator: str
    key: str
    location: str
    model: str | None
    preview: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass
class EmbeddedMetadata:
    """Everything ``read_embedded_metadata`` found, and what it could not read."""

    digital_source_types: list[MetadataItem] = field(default_factory=list)
    items: list[MetadataItem] = field(default_factory=list)
    generators: list[GeneratorSettings] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def exif(self, key: str) -> MetadataItem | None:
        """The EXIF item named ``key``, if present."""
        return next((i for i in self.items if i.kind == "exif" and i.key == key), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"digital_source_types": [i.to_dict() for i in self.digital_source_types],
                "items": [i.to_dict() for i in self.items],
                "generators": [g.to_dict() for g in self.generators],
                "problems": list(self.problems)}


def ai_software_name(value: str) -> bool:
    """Whether a Software / CreatorTool value names a known image generator."""
    low = value.lower()
    return any(name in low for name in _AI_SOFTWARE)


def _preview(text: str) -> str:
    text = text.strip()
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + "…"


def read_embedded_metadata(data: bytes, name: str = "<bytes>") -> EmbeddedMetadata:
    """Origin-relevant metadata of an image file's bytes (see the module docstring).

    ``name`` is used in problem messages only. Never raises for bad metadata.
    """
    out = EmbeddedMetadata()
    texts: list[tuple[str, str, str]] = []  # (key, text, location)
    xmps: list[tuple[bytes, str]] = []
    try:
        if data.startswith(b"\xff\xd8"):
            _walk_jpeg(data, name, xmps, texts, out.problems)
        elif data.startswith(b"\x89PNG\r\n\x1a\n"):
            _walk_png(data, name, xmps, texts, out.problems)
        elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            _walk_webp(data, name, xmps, out.problems)
        else:
            return out
    except (struct.error, IndexError, ValueError) as exc:  # defensive: walkers check bounds
        out.problems.append(f"{name}: metadata structure unreadable ({exc})")
    for packet, location in xmps:
        _read_xmp(packet, location, name, out)
    _read_exif(data, name, out, texts)
    for key, text, location in texts:
        out.items.append(MetadataItem("text", key, _preview(text), location))
        settings = _recognise_generator(key, text, location)
        if settings is not None:
            out.generators.append(settings)
    return out


# ---------------------------------------------------------------------------------------
# Containers


def _walk_jpeg(data: bytes, name: str, xmps: list, texts: list, problems: list[str]) -> None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            problems.append(f"{name}: JPEG marker expected at byte {pos}; metadata after it "
                            "was not read")
            return
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length field
            pos += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end of image: metadata ends
            return
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        end = pos + 2 + length
        if length < 2 or end > len(data):
            problems.append(f"{name}: JPEG segment 0x{marker:02X} at byte {pos} is truncated "
                            f"(declares {length} bytes, {len(data) - pos - 2} left)")
            return
        payload = data[pos + 4:end]
        if marker == 0xE1 and payload.startswith(_JPEG_XMP_HEADER):
            xmps.append((payload[len(_JPEG_XMP_HEADER):], f"JPEG APP1 XMP segment at byte {pos}"))
        elif marker == 0xFE:
            text = _text_or_problem(payload, "utf-8", f"JPEG COM segment at byte {pos}", name,
                                    problems)
            if text is not None:
                texts.append(("COM", text, f"JPEG COM segment at byte {pos}"))
        pos = end


def _walk_png(data: bytes, name: str, xmps: list, texts: list, problems: list[str]) -> None:
    pos = 8
    while pos + 8 <= len(data):
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        kind = data[pos + 4:pos + 8]
        end = pos + 12 + length
        if end > len(data):
            problems.append(f"{name}: PNG chunk {kind.decode('latin-1')!r} at byte {pos} is "
                            f"truncated (declares {length} bytes, {len(data) - pos - 12} left)")
            return
        body = data[pos + 8:pos + 8 + length]
        where = f"PNG {kind.decode('latin-1')} chunk at byte {pos}"
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            _png_text(kind, body, where, name, xmps, texts, problems)
        elif kind == b"IEND":
            return
        pos = end


def _png_text(kind: bytes, body: bytes, where: str, name: str, xmps: list, texts: list,
              problems: list[str]) -> None:
    keyword_raw, sep, rest = body.partition(b"\x00")
    keyword = keyword_raw.decode("latin-1")
    if not sep or not 1 <= len(keyword_raw) <= 79:
        problems.append(f"{name}: {where} has no valid keyword; skipped")
        return
    where = f"{where} ({keyword!r})"
    encoding = "latin-1"
    compressed = kind == b"zTXt"
    if kind == b"zTXt":
        rest = rest[1:]  # compression method byte
    elif kind == b"iTXt":
        if len(rest) < 2:
            problems.append(f"{name}: {where} is truncated; skipped")
            return
        compressed = rest[0] == 1
        fields = rest[2:].split(b"\x00", 2)
        if len(fields) < 3:
            problems.append(f"{name}: {where} is truncated; skipped")
            return
        rest = fields[2]
        encoding = "utf-8"
    if len(rest) > MAX_TEXT_BYTES:
        problems.append(f"{name}: {where} holds {len(rest)} bytes, over the "
                        f"{MAX_TEXT_BYTES}-byte limit; not read")
        return
    if compressed:
        inflater = zlib.decompressobj()
        try:
            # max_length caps the output: a small chunk can inflate to gigabytes.
            rest = inflater.decompress(rest, MAX_TEXT_BYTES + 1)
        except zlib.error as exc:
            problems.append(f"{name}: {where} does not decompress ({exc}); skipped")
            return
        if len(rest) > MAX_TEXT_BYTES or inflater.unconsumed_tail:
            problems.append(f"{name}: {where} decompresses to over {MAX_TEXT_BYTES} bytes; "
                            "not read")
            return
    if keyword == _PNG_XMP_KEYWORD:
        xmps.append((rest, where))
        return
    text = _text_or_problem(rest, encoding, where, name, problems)
    if text is not None:
        texts.append((keyword, text, where))


def _text_or_problem(raw: bytes, encoding: str, where: str, name: str,
                     problems: list[str]) -> str | None:
    if len(raw) > MAX_TEXT_BYTES:
        problems.append(f"{name}: {where} holds {len(raw)} bytes, over the {MAX_TEXT_BYTES}-byte "
                        "limit; not read")
        return None
    if b"\x00" in raw:
        problems.append(f"{name}: {where} holds binary data, not text; skipped")
        return None
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        problems.append(f"{name}: {where} is not valid {encoding}; skipped")
        return None


def _walk_webp(data: bytes, name: str, xmps: list, problems: list[str]) -> None:
    pos = 12
    end = min(len(data), 8 + struct.unpack("<I", data[4:8])[0])
    while pos + 8 <= end:
        kind = data[pos:pos + 4]
        size = struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if pos + 8 + size > len(data):
            problems.append(f"{name}: WebP chunk {kind.decode('latin-1')!r} at byte {pos} is "
                            "truncated")
            return
        if kind == b"XMP ":
            xmps.append((data[pos + 8:pos + 8 + size], f"WebP XMP chunk at byte {pos}"))
        pos += 8 + size + (size & 1)


# ---------------------------------------------------------------------------------------
# XMP


_DST_ELEMENT = re.compile(
    r"<Iptc4xmpExt:DigitalSourceType(?:\s+rdf:resource=\"([^\"]*)\")?\s*/?>([^<]*)", re.DOTALL)
_DST_ATTRIBUTE = re.compile(r'Iptc4xmpExt:DigitalSourceType\s*=\s*"([^"]*)"')


def _read_xmp(packet: bytes, location: str, name: str, out: EmbeddedMetadata) -> None:
    if len(packet) > MAX_TEXT_BYTES:
        out.problems.append(f"{name}: {location}: XMP packet of {len(packet)} bytes is over the "
                            f"{MAX_TEXT_BYTES}-byte limit; not read")
        return
    text = packet.decode("utf-8", errors="replace")
    body = re.sub(r"<\?xpacket[^>]*\?>", "", text).strip().lstrip("\ufeff")
    values: list[str] = []
    creator_tools: list[str] = []
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        # A truncated packet still often carries the property; report it as read from a
        # malformed packet rather than drop it.
        out.problems.append(f"{name}: {location}: XMP packet is malformed ({exc}); "
                            "values below were read from its text")
        for m in _DST_ELEMENT.finditer(text):
            values.append((m.group(1) or m.group(2)).strip())
        values.extend(m.group(1).strip() for m in _DST_ATTRIBUTE.finditer(text))
        location += " (malformed packet)"
    else:
        tag = f"{{{IPTC_EXT_NS}}}DigitalSourceType"
        for element in root.iter():
            if element.tag == tag:
                values.append((element.get(f"{{{_RDF_NS}}}resource") or element.text or "").strip())
            if tag in element.attrib:
                values.append(element.attrib[tag].strip())
            if element.tag == f"{{{_XMP_NS}}}CreatorTool" and (element.text or "").strip():
                creator_tools.append((element.text or "").strip())
            if f"{{{_XMP_NS}}}CreatorTool" in element.attrib:
                creator_tools.append(element.attrib[f"{{{_XMP_NS}}}CreatorTool"].strip())
    for value in values:
        if value:
            out.digital_source_types.append(
                MetadataItem("xmp", "Iptc4xmpExt:DigitalSourceType", value, location))
    for tool in creator_tools:
        out.items.append(MetadataItem("xmp", "xmp:CreatorTool", _preview(tool), location))


# ---------------------------------------------------------------------------------------
# EXIF


def _read_exif(data: bytes, name: str, out: EmbeddedMetadata, texts: list) -> None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:  # lazy: reads headers, not pixels
            exif = im.getexif()
            ifd0 = {tag: exif.get(tag) for tag in _EXIF_TAGS if exif.get(tag) is not None}
            exif_ifd = exif.get_ifd(_EXIF_IFD) if _EXIF_IFD in exif else {}
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error) as exc:
        out.problems.append(f"{name}: EXIF unreadable ({exc})")
        return
    except Image.DecompressionBombError:
        return  # pixels are not read here; the size is reported by whoever decodes them
    for tag, value in ifd0.items():
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        value = str(value).strip("\x00 ").strip()
        if value:
            out.items.append(MetadataItem("exif", _EXIF_TAGS[tag], _preview(value),
                                          f"EXIF IFD0 {_EXIF_TAGS[tag]} (0x{tag:04X})"))
            if _EXIF_TAGS[tag] == "ImageDescription":
                texts.append(("ImageDescription", value, "EXIF IFD0 ImageDescription"))
    comment = exif_ifd.get(_USER_COMMENT)
    if comment:
        text = _user_comment(comment)
        if text:
            texts.append(("UserComment", text, "EXIF Exif IFD UserComment (0x9286)"))


def _user_comment(value: Any) -> str | None:
    """Decode EXIF UserComment: an 8-byte character-code prefix, then the text."""
    if isinstance(value, str):
        return value.strip("\x00 ") or None
    if not isinstance(value, bytes) or len(value) > MAX_TEXT_BYTES:
        return None
    prefix, body = value[:8], value[8:]
    if prefix.startswith(b"UNICODE"):
        # The standard says UCS-2 in the file's byte order; writers disagree, so pick the
        # order whose text has NULs in the high bytes of ASCII characters.
        big = body[0::2].count(0) >= body[1::2].count(0)
        return body.decode("utf-16-be" if big else "utf-16-le", errors="replace").strip("\x00 ")
    if prefix.startswith(b"ASCII") or prefix == b"\x00" * 8:
        return body.decode("utf-8", errors="replace").strip("\x00 ") or None
    return None


# ---------------------------------------------------------------------------------------
# Generators


_A1111_MARKERS = ("Steps:", "Sampler:", "CFG scale:", "Seed:")


def _recognise_generator(key: str, text: str, location: str) -> GeneratorSettings | None:
    """Which known generator wrote this text metadata, if any."""
    low_key = key.lower()
    if low_key in ("parameters", "usercomment") and sum(m in text for m in _A1111_MARKERS) >= 2:
        found = re.search(r"\bModel: ([^,\n]+)", text)
        return GeneratorSettings("Stable Diffusion web UI (AUTOMATIC1111/Forge/SD.Next)", key,
                                 location, found.group(1).strip() if found else None,
                                 _preview(text))
    if low_key in ("prompt", "workflow"):
        parsed = _json(text)
        nodes = parsed.values() if low_key == "prompt" and isinstance(parsed, dict) else \
            parsed.get("nodes", []) if isinstance(parsed, dict) else []
        if any(isinstance(n, dict) and ("class_type" in n or "type" in n) for n in nodes):
            model = _comfy_checkpoint(parsed) if low_key == "prompt" else None
            return GeneratorSettings("ComfyUI", key, location, model, _preview(text))
    if low_key in ("invokeai_metadata", "invokeai_graph", "sd-metadata", "dream"):
        parsed = _json(text)
        model = None
        if isinstance(parsed, dict):
            m = parsed.get("model")
            model = m.get("name") or m.get("model_name") if isinstance(m, dict) else \
                (str(m) if m else None)
        return GeneratorSettings("InvokeAI", key, location, model, _preview(text))
    if low_key == "comment":
        parsed = _json(text)
        if isinstance(parsed, dict) and {"steps", "sampler"} <= set(parsed) and (
                "n_samples" in parsed or "uc" in parsed or "noise_schedule" in parsed):
            return GeneratorSettings("NovelAI", key, location, None, _preview(text))
    if low_key in ("description", "imagedescription") and "Job ID:" in text:
        return GeneratorSettings("Midjourney", key, location, None, _preview(text))
    return None


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _comfy_checkpoint(prompt: dict) -> str | None:
    for node in prompt.values():
        if isinstance(node, dict) and "Checkpoint" in str(node.get("class_type", "")):
            inputs = node.get("inputs") or {}
            if isinstance(inputs, dict) and inputs.get("ckpt_name"):
                return str(inputs["ckpt_name"])
    return None

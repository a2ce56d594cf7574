"""Loading inputs into :class:`Content`: media sniffed from the bytes, text extracted, image decoded once.

Input contract: a filesystem path, raw ``bytes``, or a ``str`` that *is* the text (not a path).
Text: UTF-8 (with or without BOM) or UTF-16 with BOM; ``.html``/``.htm`` or an HTML prologue is reduced
to its visible text. Images: JPEG, PNG, WebP, GIF (first frame), BMP, TIFF, EXIF orientation applied,
transparent pixels composited on white, decoded at most at ``MAX_SIDE`` px on the long side (JPEG uses the
decoder's ``draft`` mode so large photos are never fully decoded). Anything else is a
:class:`~provenance.errors.BadInputError` naming the file and the problem.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import warnings
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import Literal

from PIL import Image, ImageOps

from .errors import BadInputError
from .files import read_bounded

Media = Literal["text", "image"]
Source = str | bytes | Path

#: Long side, in pixels, of the decoded image that every image signal sees (PDQ's reference
#: implementation downsamples to 64x64 anyway; 512 keeps its quality metric stable and decoding fast).
MAX_SIDE = 512
#: Refuse images over this many pixels before decoding them (decompression bombs).
MAX_IMAGE_PIXELS = 64_000_000
#: Refuse text inputs larger than this (a draft, not a corpus dump).
MAX_TEXT_BYTES = 20_000_000
#: Refuse image files larger than this before reading them (an uncompressed 64 MP RGBA image is 256 MB).
MAX_IMAGE_BYTES = 256_000_000

_IMAGE_MAGIC = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)


def input_limit(head: bytes) -> tuple[int, str]:
    """``(byte limit, what)`` for an input that starts with ``head``: images may be larger than texts."""
    return (MAX_IMAGE_BYTES, "image") if sniff_image(head) else (MAX_TEXT_BYTES, "text")


def sniff_image(data: bytes) -> str | None:
    """Return the image format of ``data`` from its magic bytes, or ``None``."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    for magic, fmt in _IMAGE_MAGIC:
        if data.startswith(magic):
            return fmt
    return None


@dataclass
class Content:
    """One input, decoded once and shared by every signal."""

    name: str
    media: Media
    data: bytes
    sha256: str
    text: str | None = None
    image: Image.Image | None = None
    image_format: str | None = None
    #: Size of the original image before thumbnailing (width, height).
    original_size: tuple[int, int] | None = None
    meta: dict = field(default_factory=dict)


#: Elements whose content is not visible text.
_SKIP = frozenset({"script", "style", "noscript", "template", "head", "svg"})
#: Elements that start a new line of text.
_BLOCK = frozenset({"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table",
                    "section", "article", "header", "footer", "blockquote", "pre", "title", "td", "th"})
#: Elements whose content is raw text up to their end tag (no markup inside), as in HTML itself.
_RAW_TEXT_END = {"script": re.compile(r"</script\s*>", re.IGNORECASE),
                 "style": re.compile(r"</style\s*>", re.IGNORECASE)}
# One token of markup. Every alternative either ends at the first '>' or fails at the next '<', so the
# scan from one '<' never passes the next '<' and the whole document is read in linear time. (Python
# 3.11's html.parser rescans to the end of the document for each '<a' that has no '>': 4 MB of them
# takes hours.) An unclosed comment runs to the end of the document, as in browsers.
_MARKUP = re.compile(r"""
    <!--.*?(?:-->|\Z)
  | <(/?)([A-Za-z][^\s/<>]*)((?:[^<>"']|"[^"<]*"|'[^'<]*')*)>
  | <[!?][^<>]*>
""", re.DOTALL | re.VERBOSE)


def html_to_text(html: str) -> str:
    """Visible text of an HTML document: scripts, styles and the head dropped, blocks on new lines.

    Linear time in the length of ``html`` (see ``_MARKUP``); a '<' that starts no tag is text.
    """
    parts: list[str] = []
    skip = 0
    pos = 0
    n = len(html)
    while pos < n:
        m = _MARKUP.search(html, pos)
        if m is None:
            if not skip:
                parts.append(unescape(html[pos:]))
            break
        if not skip and m.start() > pos:
            parts.append(unescape(html[pos:m.start()]))
        pos = m.end()
        name = m.group(2)
        if name is None:  # comment, doctype, processing instruction
            continue
        tag, closing = name.lower(), m.group(1) == "/"
        self_closing = m.group(3).rstrip().endswith("/")
        if not closing and tag in _RAW_TEXT_END and not self_closing:
            end = _RAW_TEXT_END[tag].search(html, pos)
            pos = end.end() if end else n  # the content is dropped: both are in _SKIP
            continue
        if tag in _SKIP:
            if closing:
                skip = max(0, skip - 1)
            elif not self_closing:
                skip += 1
        elif tag in _BLOCK:
            parts.append("\n")
    lines = (" ".join(line.split()) for line in "".join(parts).splitlines())
    return "\n".join(line for line in lines if line)


def _decode_text(data: bytes, name: str) -> str:
    if len(data) > MAX_TEXT_BYTES:
        raise BadInputError(f"text is {len(data)} bytes, over the {MAX_TEXT_BYTES}-byte limit", name)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise BadInputError(f"invalid UTF-16 text ({exc.reason} at byte {exc.start})", name) from None
    if b"\x00" in data[:8192]:
        raise BadInputError("binary data of an unsupported type (not a known image format, not text)", name)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInputError(
            f"not UTF-8 text (invalid byte at offset {exc.start}) and not a supported image; "
            "re-save it as UTF-8", name) from None


def _looks_like_html(name: str, text: str) -> bool:
    if name.lower().endswith((".html", ".htm", ".xhtml")):
        return True
    head = text.lstrip()[:100].lower()
    return head.startswith(("<!doctype html", "<html"))


def _decode_image(data: bytes, fmt: str, name: str) -> tuple[Image.Image, tuple[int, int]]:
    try:
        with warnings.catch_warnings():
            # Pillow only *warns* between MAX_IMAGE_PIXELS and twice that; treat it as the error it is.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img: Image.Image = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > MAX_IMAGE_PIXELS:
                raise BadInputError(
                    f"image is {w}x{h} = {w * h} pixels, over the {MAX_IMAGE_PIXELS}-pixel limit "
                    "(possible decompression bomb)", name)
            original_size = (w, h)
            if fmt == "jpeg":
                # Decode at a reduced DCT scale: much faster for big photos, same result after thumbnailing.
                img.draft("RGB", (MAX_SIDE, MAX_SIDE))
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)
            img = ImageOps.exif_transpose(img)
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                base = Image.new("RGB", rgba.size, (255, 255, 255))
                base.paste(rgba, mask=rgba.getchannel("A"))
                img = base
            else:
                img = img.convert("RGB")
            if max(img.size) > MAX_SIDE:
                img.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
            img.load()
            return img, original_size
    except BadInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadInputError(f"refused as a possible decompression bomb: {exc}", name) from None
    except Image.UnidentifiedImageError:
        # Pillow's message names its buffer ("<_io.BytesIO object at 0x...>"), which helps nobody.
        raise BadInputError(f"corrupt {fmt.upper()} image: its header cannot be read (damaged or not really "
                            f"{fmt.upper()})", name) from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError, ZeroDivisionError) as exc:
        # struct.error/IndexError/ZeroDivisionError: Pillow plugins raise them on crafted headers.
        raise BadInputError(f"corrupt or truncated {fmt.upper()} image: {_plain(exc)}", name) from None


def _plain(exc: BaseException) -> str:
    """An exception's message without object reprs (``<... object at 0x...>``)."""
    return re.sub(r"<[\w.]+ object at 0x[0-9a-fA-F]+>", "the data", str(exc)) or type(exc).__name__


def source_path(source: Source, name: str | None = None) -> Path | None:
    """The file :func:`load_content` reads for ``source``, or ``None`` when ``source`` is the content
    itself (bytes, or a string that is text rather than a file name)."""
    if isinstance(source, Path) or (isinstance(source, str) and name is None and _is_path_like(source)):
        return Path(source)
    return None


def load_content(source: Source, name: str | None = None) -> Content:
    """Load ``source`` (a path, raw bytes, or the text itself) into a :class:`Content`.

    ``name`` labels the input in reports (defaults to the path, ``<bytes>`` or ``<text>``).
    Raises :class:`BadInputError` for unreadable, unsupported or corrupt input.
    """
    path = source_path(source, name)
    if path is not None:
        label = name or str(source)
        # Issue 11: stat, then a bounded read; the limit depends on the first bytes (image or text).
        data = read_bounded(path, input_limit, label=label)
    elif isinstance(source, bytes):
        data, label = source, name or "<bytes>"
    elif isinstance(source, str):
        label = name or "<text>"
        data = source.encode("utf-8", "surrogatepass")
        if len(data) > MAX_TEXT_BYTES:
            raise BadInputError(f"text is {len(data)} bytes, over the {MAX_TEXT_BYTES}-byte limit", label)
        return _text_content(label, data, source)
    else:
        raise TypeError(f"cannot load content from {type(source).__name__}; pass a path, bytes or str")
    return content_from_bytes(data, label)


_FILE_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".xhtml", ".jpg", ".jpeg", ".png", ".webp",
                  ".gif", ".bmp", ".tif", ".tiff")


def _is_path_like(s: str) -> bool:
    # A str names a file when that file exists. One that merely looks like a file name (one word with
    # a known suffix, or a path) is treated as a path too, so a mistyped file name fails loudly with
    # "no such file" instead of being checked as a one-word text.
    if "\n" in s or len(s) > 4096:
        return False
    try:
        if Path(s).exists():
            return True
    except OSError:
        return False
    return not any(c.isspace() for c in s) and (s.lower().endswith(_FILE_SUFFIXES) or "/" in s)


def content_from_bytes(data: bytes, label: str) -> Content:
    """Sniff and decode ``data`` (read from ``label``) into a :class:`Content`."""
    if not data:
        raise BadInputError("empty file", label)
    fmt = sniff_image(data)
    if fmt is not None:
        img, original_size = _decode_image(data, fmt, label)
        return Content(name=label, media="image", data=data, sha256=hashlib.sha256(data).hexdigest(),
                       image=img, image_format=fmt, original_size=original_size)
    text = _decode_text(data, label)
    if _looks_like_html(label, text):
        text = html_to_text(text)
    return _text_content(label, data, text)


def _text_content(label: str, data: bytes, text: str) -> Content:
    if not text.strip():
        raise BadInputError("contains no text", label)
    return Content(name=label, media="text", data=data, sha256=hashlib.sha256(data).hexdigest(), text=text)

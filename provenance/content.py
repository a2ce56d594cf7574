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
import warnings
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Literal

from PIL import Image, ImageOps

from .errors import BadInputError

Media = Literal["text", "image"]
Source = str | bytes | Path

#: Long side, in pixels, of the decoded image that every image signal sees (PDQ's reference
#: implementation downsamples to 64x64 anyway; 512 keeps its quality metric stable and decoding fast).
MAX_SIDE = 512
#: Refuse images over this many pixels before decoding them (decompression bombs).
MAX_IMAGE_PIXELS = 64_000_000
#: Refuse text inputs larger than this (a draft, not a corpus dump).
MAX_TEXT_BYTES = 20_000_000

_IMAGE_MAGIC = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)


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


class _VisibleText(HTMLParser):
    _SKIP = {"script", "style", "noscript", "template", "head", "svg"}
    _BLOCK = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table",
              "section", "article", "header", "footer", "blockquote", "pre", "title", "td", "th"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Visible text of an HTML document: scripts, styles and the head dropped, blocks on new lines."""
    parser = _VisibleText()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    text = "\n".join(line for line in lines if line)
    return text


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
    return head.startswith("<!doctype html") or head.startswith("<html")


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
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise BadInputError(f"corrupt or truncated {fmt.upper()} image: {exc}", name) from None


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
        try:
            if path.is_dir():
                raise BadInputError("is a directory (use --recursive to add folders)", label)
            data = path.read_bytes()
        except FileNotFoundError:
            raise BadInputError("no such file", label) from None
        except PermissionError:
            raise BadInputError("permission denied", label) from None
        except OSError as exc:
            raise BadInputError(f"cannot read: {exc.strerror or exc}", label) from None
    elif isinstance(source, bytes):
        data, label = source, name or "<bytes>"
    elif isinstance(source, str):
        label = name or "<text>"
        text = source
        return _text_content(label, text.encode("utf-8"), text)
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

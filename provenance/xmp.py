"""XMP byte editing: set ``Iptc4xmpExt:DigitalSourceType`` in JPEG, PNG and WebP files
without re-encoding them.

Written before signing so that the C2PA data hash covers it; platforms that read XMP but
not C2PA still see the disclosure.
"""

from __future__ import annotations

import re
import struct
import zlib
from xml.etree import ElementTree
from xml.sax.saxutils import escape

__all__ = ["IPTC_EXT_NS", "with_xmp"]

IPTC_EXT_NS = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
_JPEG_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
_PNG_XMP_KEYWORD = b"XML:com.adobe.xmp"


def _xmp_description(uri: str) -> str:
    return (
        f'<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="{IPTC_EXT_NS}">'
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
        r"(<Iptc4xmpExt:DigitalSourceType>)(.*?)(</Iptc4xmpExt:DigitalSourceType>)", re.DOTALL)
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


def with_xmp(content: bytes, media_type: str, uri: str) -> tuple[bytes, bool]:
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

import io
import struct
import zlib

import pytest
from PIL import Image

from provenance.content import html_to_text, load_content
from provenance.errors import BadInputError
from provenance.samples import sample_photo


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims huge dimensions (a decompression-bomb shape) with a tiny payload."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 10)) + \
        chunk(b"IEND", b"")


def test_text_and_html(tmp_path):
    p = tmp_path / "page.html"
    p.write_text("<html><head><title>T</title><script>var x=1;</script></head>"
                 "<body><p>Hello <b>world</b></p><style>p{}</style><div>Bye &amp; thanks</div></body></html>")
    c = load_content(p)
    assert c.media == "text"
    assert c.text == "Hello world\nBye & thanks"
    assert html_to_text("<p>a</p><p>b</p>") == "a\nb"


def test_str_is_text_and_bytes_are_sniffed():
    assert load_content("just some words").media == "text"
    buf = io.BytesIO()
    sample_photo(1).save(buf, "PNG")
    c = load_content(buf.getvalue())
    assert c.media == "image" and c.image_format == "png"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"])
def test_image_formats_decode_to_rgb_thumbnails(tmp_path, fmt):
    p = tmp_path / f"x.{fmt.lower()}"
    sample_photo(2, (900, 600)).save(p, fmt)
    c = load_content(p)
    assert c.media == "image" and c.image.mode == "RGB"
    assert max(c.image.size) <= 512 and c.original_size == (900, 600)


def test_exif_orientation_is_applied(tmp_path):
    img = sample_photo(3, (400, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    p = tmp_path / "rot.jpg"
    img.save(p, "JPEG", exif=exif)
    assert load_content(p).image.size == (200, 400)


def test_decompression_bomb_refused(tmp_path):
    p = tmp_path / "bomb.png"
    p.write_bytes(png_header_only(20000, 20000))
    with pytest.raises(BadInputError, match=r"bomb\.png: .*decompression bomb"):
        load_content(p)


@pytest.mark.parametrize("data, message", [
    (b"", "empty file"),
    (b"\xff\xd8\xff\xe0garbage", "corrupt or truncated JPEG"),
    (b"caf\xe9 latin-1 text", "not UTF-8"),
    (b"\x00\x01\x02binary", "binary data"),
    (b"   \n\t ", "contains no text"),
])
def test_bad_inputs_name_file_and_problem(tmp_path, data, message):
    p = tmp_path / "bad.bin"
    p.write_bytes(data)
    with pytest.raises(BadInputError, match=message) as info:
        load_content(p)
    assert str(p) in str(info.value)


def test_mistyped_file_name_is_an_error_not_a_text(tmp_path):
    with pytest.raises(BadInputError, match="no such file"):
        load_content(str(tmp_path / "draft.md"))
    with pytest.raises(BadInputError, match="no such file"):
        load_content("drfat.md")
    assert load_content("drfat.md", name="<text>").text == "drfat.md"
    assert load_content("one-word").media == "text"


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(BadInputError, match="no such file"):
        load_content(tmp_path / "nope.txt")
    with pytest.raises(BadInputError, match="is a directory"):
        load_content(tmp_path)

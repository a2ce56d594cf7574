"""Seeded image transform families for measuring copy detection (``provenance eval`` and ``bench/``).

Input contract: an RGB ``PIL.Image`` and a ``random.Random``; output: the transformed RGB image and a
short description of the parameters drawn. Pure Pillow + numpy, so ``provenance eval`` needs nothing
beyond the core's dependencies. Every family draws its parameters from the ``rng`` it is given, so a
seed reproduces the same copies. The benchmark adds Meta's ``augly`` overlays and screenshot framing on
top of these (``bench/transforms.py``).

The families follow the copy-detection literature (DISC21 / AugLy augmentations): the edits people make
when they re-post an image: recompression, rescaling, cropping, rotation, mirroring, colour grading,
greyscale, blur, noise, captions, padding, screenshot framing and perspective.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

Transform = Callable[[Image.Image, random.Random], tuple[Image.Image, str]]

#: Quality used to encode every transformed copy (except the ``jpeg`` family, which draws its own).
ENCODE_QUALITY = 90


def jpeg(img: Image.Image, rng: random.Random) -> tuple[Image.Image, str]:
    q = rng.randint(10, 50)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=q)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), f"quality={q}"


def resize(img: Image.Image, rng: random.Random) -> tuple[Image.Image, str]:
    f = rng.uniform(0.2, 0.7)
    w, h = img.size
    return img.resize((max(8, round(w * f)), max(8, round(h * f))), Image.Resampling.BILINEAR), f"scale={f:.2f}"


def crop(img: Image.Image, rng: random.Random) -> tuple[Image.Image, str]:
    """Remove 5-40 % of the area, keeping a window placed at random."""
    frac = rng.uniform(0.05, 0.40)
    keep = (1 - frac) ** 0.5
    w, h = img.size
    cw, ch = max(8, round(w * keep)), max(8, round(h * keep))
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    return img.crop((x, y, x + cw, y + ch)), f"removed={frac:.2f}"


def rotate_right_angle(img: Image.Image, rng: random.Random) -> tuple[Image.Image, str]:
    angle = rng.choice((90, 180, 270))
    return img.rotate(angle, expand=True), f"angle={angle}"


def rotate_small(img: Image.Image, rng: random.Random) -> tuple[Image.Image, str]:
    angle = rng.uniform(3, 20) * rng.choice((-1, 1))
    return img.rotate(angle, expand=True, resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0)), \
        f"angle={angle:.1f}"


def mirror(img: Image.Image, rng: random.Random) -> tuple[Image.Image, str]:
    return ImageOps.mirror(img), "horizontal"


def colour(img: Image.Image, rng: random.Random) -> tuple[Image.Image, str]:
    b, c, s = rng.uniform(0.6, 1.4), rng.uniform(0.6, 1.4), rng.uniform(0.3, 1.7)
    img = ImageEnhance.Brightness(img).enhance(b)
    img = ImageEnhance.Contrast(img).enhance(c)
    img = ImageEnhance.Color(img).enhance(s)
    return img, f"brightness={b:.2f} contrast={c:.2f} saturation={s:.2f}"


def grayscale(img: Image.Image, rng: random.Random) -> tuple[Image.Image, str]:
    return img.convert("L").convert("RGB"), ""


def blur(img: Image.Image, rng: random.Random) -> tuple[Image.Image, str]:
    r = rng.uniform(1.0, 4.0)
    return img.filter(ImageFilter.GaussianBlur(r)), f"radius={r:.1f}"


def noise(img: Image.Image, rng: random.Random) -> tuple[Image.Image, str]:
    sigma = rng.uniform(8, 30)
    gen = np.random.default_rng(rng.getrandbits(32))
    arr = np.asarray(img, dtype=np.float32) + gen.normal(0, sigma, (img.height, img.width, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)), f"sigma={sigma:.0f}"


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def text_overlay(img: Image.Image, rng: random.Random) -> tuple[Image.Image, str]:
    """A caption of random words across the image, meme-style (white with a dark outline)."""
    img = img.copy()
    w, h = img.size
    words = ["SALE", "new", "look", "omg", "2024", "repost", "LOL", "best", "deal", "#ootd", "wow"]
    text = " ".join(rng.choice(words) for _ in range(rng.randint(2, 4)))
    size = max(10, round(h * rng.uniform(0.08, 0.16)))
    draw = ImageDraw.Draw(img)
    font = _font(size)
    x, y = rng.randint(0, max(1, w // 4)), rng.randint(0, max(1, h - size - 2))
    draw.text((x, y), text, fill=(255, 255, 255), font=font, stroke_width=max(1, size // 12),
              stroke_fill=(0, 0, 0))
    return img, f"text={text!r} size={size}"


def pad(img: Image.Image, rng: random.Random) -> tuple[Image.Image, str]:
    """Letterbox: pad to a 16:9 or 1:1 or 9:16 frame with a flat colour."""
    w, h = img.size
    ratio = rng.choice((16 / 9, 1.0, 9 / 16))
    extra = rng.uniform(0.05, 0.25)
    fw = max(w, round(h * ratio)) * (1 + extra)
    fh = max(h, round(w / ratio)) * (1 + extra)
    fw, fh = round(fw), round(fh)
    fill = rng.choice(((0, 0, 0), (255, 255, 255), (rng.randrange(256), rng.randrange(256), rng.randrange(256))))
    canvas = Image.new("RGB", (fw, fh), fill)
    canvas.paste(img, ((fw - w) // 2, (fh - h) // 2))
    return canvas, f"frame={fw}x{fh} fill={fill}"


def screenshot_frame(img: Image.Image, rng: random.Random) -> tuple[Image.Image, str]:
    """A phone-screenshot-like frame: status bar, app header, caption area and margins around it."""
    w, h = img.size
    scale = rng.uniform(0.6, 0.9)
    inner = img.resize((max(8, round(w * scale)), max(8, round(h * scale))), Image.Resampling.BILINEAR)
    bar, header, footer = round(h * 0.05), round(h * rng.uniform(0.08, 0.15)), round(h * rng.uniform(0.15, 0.3))
    margin = round(w * rng.uniform(0.0, 0.06))
    fw, fh = inner.width + 2 * margin, bar + header + inner.height + footer
    bg = rng.choice(((255, 255, 255), (18, 18, 18)))
    fg = (0, 0, 0) if bg[0] > 128 else (230, 230, 230)
    canvas = Image.new("RGB", (fw, fh), bg)
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, fw, bar), fill=(40, 40, 40))
    font = _font(max(8, header // 3))
    draw.text((margin + 4, bar + header // 4), "user_" + str(rng.randint(100, 999)), fill=fg, font=font)
    canvas.paste(inner, (margin, bar + header))
    draw.text((margin + 4, bar + header + inner.height + 6), "liked by friends and others", fill=fg, font=font)
    return canvas, f"scale={scale:.2f}"


def _perspective_coeffs(src: list[tuple[float, float]], dst: list[tuple[float, float]]) -> list[float]:
    """Coefficients for ``Image.transform(PERSPECTIVE)`` mapping output points ``dst`` to input ``src``."""
    rows = []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    a = np.array(rows, dtype=np.float64)
    b = np.array([c for p in src for c in p], dtype=np.float64)
    return list(np.linalg.solve(a, b))


def perspective(img: Image.Image, rng: random.Random) -> tuple[Image.Image, str]:
    """Move each corner inwards by up to ``s`` of the side: a photo of the image taken at an angle."""
    w, h = img.size
    s = rng.uniform(0.05, 0.2)
    src: list[tuple[float, float]] = [(0, 0), (w, 0), (w, h), (0, h)]
    dst = [(rng.uniform(0, s) * w, rng.uniform(0, s) * h), (w - rng.uniform(0, s) * w, rng.uniform(0, s) * h),
           (w - rng.uniform(0, s) * w, h - rng.uniform(0, s) * h), (rng.uniform(0, s) * w, h - rng.uniform(0, s) * h)]
    coeffs = _perspective_coeffs(src, dst)
    return img.transform((w, h), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR,
                         fillcolor=(0, 0, 0)), f"strength={s:.2f}"


#: The Pillow-only families, by name (stable: reports and RESULTS.md use these names).
FAMILIES: dict[str, Transform] = {
    "jpeg": jpeg,
    "resize": resize,
    "crop": crop,
    "rotate-90s": rotate_right_angle,
    "rotate-small": rotate_small,
    "mirror": mirror,
    "colour": colour,
    "grayscale": grayscale,
    "blur": blur,
    "noise": noise,
    "text-overlay": text_overlay,
    "pad": pad,
    "screenshot": screenshot_frame,
    "perspective": perspective,
}


def encode(img: Image.Image, family: str = "") -> bytes:
    """The bytes of a transformed copy as it would be shared: JPEG (the ``jpeg`` family is already
    recompressed, so it is stored losslessly to keep its drawn quality the only loss)."""
    buf = io.BytesIO()
    if family == "jpeg":
        img.save(buf, "PNG")
    else:
        img.convert("RGB").save(buf, "JPEG", quality=ENCODE_QUALITY)
    return buf.getvalue()


def make_copy(img: Image.Image, family: str, rng: random.Random,
              families: dict[str, Transform] | None = None) -> tuple[bytes, str]:
    """Apply ``family`` to ``img`` and return the encoded copy and its parameters."""
    fn = (families or FAMILIES)[family]
    out, params = fn(img.convert("RGB"), rng)
    return encode(out, family), params


# ---------------------------------------------------------------------------------------------------
# Text edits: what people do to a passage they reuse without quoting it. Each takes the passage and a
# ``random.Random`` and returns the edited passage (never empty).

_TEXT_HOMOGLYPHS = {"a": "\u0430", "e": "\u0435", "o": "\u043e", "p": "\u0440", "c": "\u0441", "x": "\u0445",
                    "y": "\u0443", "i": "\u0456", "A": "\u0410", "E": "\u0415", "O": "\u041e", "T": "\u0422"}


def text_verbatim(text: str, rng: random.Random) -> str:
    return text


def text_typos(text: str, rng: random.Random, rate: float = 0.12) -> str:
    """Swap, drop or double one letter in about ``rate`` of the words."""
    words = text.split(" ")
    for i, w in enumerate(words):
        if len(w) > 3 and rng.random() < rate:
            j = rng.randrange(1, len(w) - 1)
            op = rng.randrange(3)
            words[i] = (w[:j] + w[j + 1] + w[j] + w[j + 2:] if op == 0 else
                        w[:j] + w[j + 1:] if op == 1 else w[:j] + w[j] + w[j:])
    return " ".join(words)


def text_homoglyphs(text: str, rng: random.Random, rate: float = 0.3) -> str:
    """Replace about ``rate`` of the replaceable Latin letters with look-alike Cyrillic ones."""
    return "".join(_TEXT_HOMOGLYPHS[c] if c in _TEXT_HOMOGLYPHS and rng.random() < rate else c for c in text)


def text_zero_width(text: str, rng: random.Random, rate: float = 0.3) -> str:
    """Insert zero-width spaces/joiners inside about ``rate`` of the words."""
    words = text.split(" ")
    for i, w in enumerate(words):
        if len(w) > 2 and rng.random() < rate:
            j = rng.randrange(1, len(w))
            words[i] = w[:j] + rng.choice(("\u200b", "\u200c", "\u200d", "\u2060")) + w[j:]
    return " ".join(words)


def text_word_drops(text: str, rng: random.Random, rate: float = 0.1) -> str:
    """Drop about ``rate`` of the words."""
    words = text.split(" ")
    kept = [w for w in words if rng.random() >= rate]
    return " ".join(kept or words[:1])


def text_reorder(text: str, rng: random.Random) -> str:
    """Shuffle the passage's sentences (a different order, when there are two or more)."""
    from .textnorm import sentence_spans
    sents = [text[s:e].strip() for s, e in sentence_spans(text) if text[s:e].strip()]
    if len(sents) < 2:
        return text
    order = list(range(len(sents)))
    while order == sorted(order):
        rng.shuffle(order)
    return " ".join(sents[i] for i in order)


#: Text edit families, by name. Paraphrase is not here: it needs human rewrites (the benchmark takes
#: them from the PAN corpus).
TEXT_FAMILIES: dict[str, Callable[[str, random.Random], str]] = {
    "verbatim": text_verbatim,
    "typos": text_typos,
    "homoglyphs": text_homoglyphs,
    "zero-width": text_zero_width,
    "word-drops": text_word_drops,
    "sentence-reorder": text_reorder,
}

"""Generated flat pictures: simple shapes, flags, box diagrams, bar charts and badges.

The flattest kind of picture a checker meets, where whole-image hashes carry the least information (PDQ's
quality gate skips many of them) and border trimming reduces a picture to one plain shape. Each design
is drawn from a seed, on a 256-px canvas, in a few flat colours; designs of one style are siblings (hard
negatives for one another), and every design has two or more elements at random places, so two designs
are not one another's colour change or crop. Written to ``bench/out/shapes/`` (git-ignored).

``python -m bench.shapes_set`` writes them; ``paths(n)`` returns the first ``n`` (building them if needed).
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .common import OUT, log

ROOT = OUT / "shapes"
SIDE = 256
STYLES = ("shapes", "flag", "diagram", "chart", "badge")
PALETTE = [(255, 255, 255), (0, 0, 0), (206, 17, 38), (0, 56, 168), (0, 122, 61), (252, 209, 22),
           (255, 130, 0), (120, 40, 140), (90, 90, 90), (0, 160, 220), (240, 240, 235), (30, 30, 60)]


def _colours(rng: random.Random, n: int) -> list[tuple[int, int, int]]:
    return rng.sample(PALETTE, n)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    for name in ("DejaVuSans-Bold.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default()


def _polygon(cx: float, cy: float, r: float, n: int, star: bool, turn: float) -> list[tuple[float, float]]:
    pts = []
    for k in range(2 * n if star else n):
        rad = r if (not star or k % 2 == 0) else r * 0.45
        a = turn + math.pi * 2 * k / (2 * n if star else n)
        pts.append((cx + rad * math.cos(a), cy + rad * math.sin(a)))
    return pts


def _shapes(d: ImageDraw.ImageDraw, rng: random.Random, cols: list[tuple[int, int, int]]) -> None:
    for k in range(rng.randint(2, 4)):
        r = rng.uniform(18, 60)
        cx, cy = rng.uniform(r, SIDE - r), rng.uniform(r, SIDE - r)
        kind = rng.choice(("ellipse", "rect", "poly", "star", "ring"))
        c = cols[1 + k % (len(cols) - 1)]
        if kind == "ellipse":
            d.ellipse((cx - r, cy - r * rng.uniform(0.5, 1), cx + r, cy + r * rng.uniform(0.5, 1)), fill=c)
        elif kind == "rect":
            d.rectangle((cx - r, cy - r * rng.uniform(0.3, 1), cx + r, cy + r * rng.uniform(0.3, 1)), fill=c)
        elif kind == "ring":
            d.ellipse((cx - r, cy - r, cx + r, cy + r), outline=c, width=rng.randint(4, 12))
        else:
            d.polygon(_polygon(cx, cy, r, rng.randint(3, 6), kind == "star", rng.uniform(0, math.pi)), fill=c)


def _flag(d: ImageDraw.ImageDraw, rng: random.Random, cols: list[tuple[int, int, int]]) -> None:
    n = rng.randint(2, 4)
    weights = [rng.uniform(0.5, 1.5) for _ in range(n)]
    vertical = rng.random() < 0.5
    pos = 0.0
    for k, w in enumerate(weights):
        a, b = pos, pos + w / sum(weights) * SIDE
        d.rectangle((a, 0, b, SIDE) if vertical else (0, a, SIDE, b), fill=cols[k])
        pos = b
    extra = rng.choice(("disc", "cross", "canton", "star", "triangle"))
    c = cols[n] if len(cols) > n else cols[0]
    if extra == "disc":
        r = rng.uniform(25, 60)
        cx, cy = rng.uniform(70, 186), rng.uniform(70, 186)
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=c)
    elif extra == "cross":
        x, y, t = rng.uniform(60, 130), rng.uniform(80, 170), rng.uniform(14, 30)
        d.rectangle((x - t / 2, 0, x + t / 2, SIDE), fill=c)
        d.rectangle((0, y - t / 2, SIDE, y + t / 2), fill=c)
    elif extra == "canton":
        d.rectangle((0, 0, rng.uniform(80, 130), rng.uniform(70, 128)), fill=c)
    elif extra == "star":
        d.polygon(_polygon(rng.uniform(50, 200), rng.uniform(50, 200), rng.uniform(20, 45), 5, True, -math.pi / 2),
                  fill=c)
    else:
        d.polygon([(0, 0), (rng.uniform(90, 160), SIDE / 2), (0, SIDE)], fill=c)


def _diagram(d: ImageDraw.ImageDraw, rng: random.Random, cols: list[tuple[int, int, int]]) -> None:
    font = _font(14)
    boxes = []
    for _ in range(rng.randint(3, 5)):
        w, h = rng.uniform(50, 80), rng.uniform(26, 40)
        x, y = rng.uniform(5, SIDE - w - 5), rng.uniform(5, SIDE - h - 5)
        boxes.append((x, y, w, h))
    for (x1, y1, w1, h1), (x2, y2, w2, h2) in zip(boxes, boxes[1:]):
        d.line((x1 + w1 / 2, y1 + h1 / 2, x2 + w2 / 2, y2 + h2 / 2), fill=cols[1], width=3)
    for k, (x, y, w, h) in enumerate(boxes):
        d.rectangle((x, y, x + w, y + h), fill=cols[2 + k % 2], outline=cols[1], width=2)
        d.text((x + 6, y + h / 2 - 8), rng.choice(("in", "out", "db", "api", "log", "ui", "io", "fn")), font=font,
               fill=cols[1])


def _chart(d: ImageDraw.ImageDraw, rng: random.Random, cols: list[tuple[int, int, int]]) -> None:
    n = rng.randint(3, 7)
    d.line((30, 20, 30, 230, 240, 230), fill=cols[1], width=3)
    w = 200 / n
    for k in range(n):
        h = rng.uniform(20, 200)
        d.rectangle((36 + k * w, 228 - h, 36 + (k + 0.7) * w, 228), fill=cols[2 + k % (len(cols) - 2)])


def _badge(d: ImageDraw.ImageDraw, rng: random.Random, cols: list[tuple[int, int, int]]) -> None:
    r = rng.uniform(70, 115)
    cx, cy = rng.uniform(r, SIDE - r), rng.uniform(r, SIDE - r)
    d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=cols[1])
    text = rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ23456789") + rng.choice(("", "", "1", "2", "+"))
    font = _font(int(r * 0.9))
    box = d.textbbox((0, 0), text, font=font)
    d.text((cx - (box[2] - box[0]) / 2 - box[0], cy - (box[3] - box[1]) / 2 - box[1]), text, font=font, fill=cols[2])
    if rng.random() < 0.5:
        d.rectangle((rng.uniform(0, 200), rng.uniform(0, 230), SIDE, SIDE), outline=cols[3], width=6)


DRAW = {"shapes": _shapes, "flag": _flag, "diagram": _diagram, "chart": _chart, "badge": _badge}


def draw(k: int) -> tuple[str, Image.Image]:
    """Design ``k``: its style and picture (deterministic)."""
    rng = random.Random(10_000 + k)
    style = STYLES[k % len(STYLES)]
    cols = _colours(rng, 5)
    img = Image.new("RGB", (SIDE, SIDE), cols[0])
    DRAW[style](ImageDraw.Draw(img), rng, cols)
    return style, img


def paths(n: int) -> list[tuple[str, Path]]:
    """The first ``n`` designs as ``(style, png path)``, drawn on first use."""
    ROOT.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(n):
        style, p = STYLES[k % len(STYLES)], ROOT / f"{k:04d}.png"
        if not p.exists():
            draw(k)[1].save(p)
        out.append((style, p))
    return out


if __name__ == "__main__":
    log(f"shapes: {len(paths(600))} designs in {ROOT}")

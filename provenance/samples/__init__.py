"""The bundled demo corpus: public-domain texts and generated pictures, with drafts that exercise
every verdict. Used by ``provenance demo`` (the README's first command) and by tests.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ..report import Report

if TYPE_CHECKING:
    from ..checker import Index

#: Prior content (public domain): Darwin 1859, Lincoln 1863, Austen 1813.
SOURCES: dict[str, str] = {
    "darwin-entangled-bank.txt": (
        "It is interesting to contemplate an entangled bank, clothed with many plants of many kinds, "
        "with birds singing on the bushes, with various insects flitting about, and with worms crawling "
        "through the damp earth, and to reflect that these elaborately constructed forms, so different "
        "from each other, and dependent on each other in so complex a manner, have all been produced by "
        "laws acting around us. These laws, taken in the highest sense, being Growth with Reproduction; "
        "Inheritance which is almost implied by reproduction; Variability from the indirect and direct "
        "action of the external conditions of life, and from use and disuse."),
    "lincoln-gettysburg.txt": (
        "Four score and seven years ago our fathers brought forth on this continent, a new nation, "
        "conceived in Liberty, and dedicated to the proposition that all men are created equal. Now we "
        "are engaged in a great civil war, testing whether that nation, or any nation so conceived and so "
        "dedicated, can long endure. We are met on a great battle-field of that war. We have come to "
        "dedicate a portion of that field, as a final resting place for those who here gave their lives "
        "that that nation might live."),
    "austen-pride-and-prejudice.txt": (
        "It is a truth universally acknowledged, that a single man in possession of a good fortune, must "
        "be in want of a wife. However little known the feelings or views of such a man may be on his "
        "first entering a neighbourhood, this truth is so well fixed in the minds of the surrounding "
        "families, that he is considered the rightful property of some one or other of their daughters."),
}

#: Drafts to check: a lightly edited copy (typos, a Cyrillic 'а', a zero-width space), a paraphrase,
#: and an original.
DRAFTS: dict[str, str] = {
    "draft-copied.md": (
        "# Notes from the garden\n\nWhile weeding today I kept thinking: it is interesting to contemplate "
        "an entangled bank, clothed with mаny plants of many kinds, with birds singing on the bushes, with "
        "varous insects flitting about, and with worms crawling through the damp ea\u200brth, and to "
        "reflect that these elaborately constructed forms have all been produced by laws acting around us."),
    "draft-paraphrase.md": (
        "It is a fact everyone accepts that a wealthy bachelor must surely be looking for a wife. When such "
        "a man moves into a neighbourhood, the local families, whatever his own views, regard him as the "
        "rightful property of one of their daughters."),
    "draft-original.md": (
        "Sourdough needs patience more than skill. Feed the starter the night before, mix the dough in "
        "the morning, fold it every half hour, and let the cold fridge do the slow work of flavour."),
}


def sample_photo(seed: int, size: tuple[int, int] = (480, 360)) -> Image.Image:
    """A deterministic photo-like picture (smooth colour field plus shapes): rich enough for PDQ."""
    rng = np.random.default_rng(seed)
    w, h = size
    low = rng.random((6, 8, 3))
    field = Image.fromarray((low * 255).astype(np.uint8)).resize((w, h), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(field)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 40))
        x1, y1 = x0 + int(rng.integers(20, 160)), y0 + int(rng.integers(20, 120))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    return field.filter(ImageFilter.GaussianBlur(1.5))


def _jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def build_demo(index: Index, workdir: Path) -> list[Report]:
    """Add the sample sources to ``index`` and return the reports for the sample drafts."""
    workdir = Path(workdir)
    src_dir, draft_dir = workdir / "sources", workdir / "drafts"
    src_dir.mkdir(parents=True, exist_ok=True)
    draft_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in SOURCES.items():
        (src_dir / name).write_text(text, encoding="utf-8")
        paths.append(src_dir / name)
    photo = sample_photo(7)
    (src_dir / "photo.jpg").write_bytes(_jpeg(photo))
    paths.append(src_dir / "photo.jpg")
    index.add(paths, source="demo-archive")
    drafts = []
    for name, text in DRAFTS.items():
        (draft_dir / name).write_text(text, encoding="utf-8")
        drafts.append(draft_dir / name)
    (draft_dir / "photo-rotated-recompressed.jpg").write_bytes(
        _jpeg(photo.transpose(Image.Transpose.ROTATE_90).resize((270, 360)), quality=40))
    (draft_dir / "photo-unrelated.jpg").write_bytes(_jpeg(sample_photo(8)))
    drafts += [draft_dir / "photo-rotated-recompressed.jpg", draft_dir / "photo-unrelated.jpg"]
    return [index.check(p, str(p.relative_to(workdir))) for p in drafts]

"""Benchmark-only transform families: Meta's ``augly`` text/emoji overlays and screenshot framing,
on top of the Pillow-only families in :mod:`provenance.transforms`.

augly is a benchmark dependency (``bench/requirements.txt``), never a dependency of the package.
If it is missing, the benchmark falls back to the Pillow families only and says so in RESULTS.md.
"""

from __future__ import annotations

import random

import numpy as np
from PIL import Image

from provenance.transforms import FAMILIES, Transform

if not hasattr(np, "float"):  # augly 1.0.0 still uses np.float (removed in numpy 1.24)
    np.float = float  # type: ignore[attr-defined]

try:
    import augly.image as imaugs
    AUGLY = True
except ImportError:  # pragma: no cover - optional in the bench environment
    imaugs = None
    AUGLY = False


def augly_text(img: Image.Image, rng: random.Random) -> tuple[Image.Image, str]:
    n = rng.randint(5, 15)
    out = imaugs.overlay_text(img, text=[[rng.randrange(1000) for _ in range(n)]],
                              font_size=rng.uniform(0.1, 0.3), opacity=rng.uniform(0.7, 1.0),
                              color=(rng.randrange(256), rng.randrange(256), rng.randrange(256)),
                              x_pos=rng.uniform(0, 0.4), y_pos=rng.uniform(0, 0.7))
    return out.convert("RGB"), f"chars={n}"


def augly_emoji(img: Image.Image, rng: random.Random) -> tuple[Image.Image, str]:
    size = rng.uniform(0.15, 0.4)
    out = imaugs.overlay_emoji(img, emoji_size=size, opacity=rng.uniform(0.8, 1.0),
                               x_pos=rng.uniform(0, 0.6), y_pos=rng.uniform(0, 0.6))
    return out.convert("RGB"), f"size={size:.2f}"


def augly_screenshot(img: Image.Image, rng: random.Random) -> tuple[Image.Image, str]:
    import os

    import augly.utils as utils
    template = rng.choice(("mobile.png", "web.png"))
    out = imaugs.overlay_onto_screenshot(
        img, template_filepath=os.path.join(utils.SCREENSHOT_TEMPLATES_DIR, template), crop_src_to_fit=False)
    return out.convert("RGB"), f"template={template}"


def families() -> dict[str, Transform]:
    """Every family the image benchmark runs: Pillow ones plus augly ones when augly is installed."""
    fams: dict[str, Transform] = dict(FAMILIES)
    if AUGLY:
        fams.update({"augly-text": augly_text, "augly-emoji": augly_emoji,
                     "augly-screenshot": augly_screenshot})
    return fams

# augly.meme_format is left out: augly 1.0.0 calls FreeTypeFont.getsize_multiline, removed in Pillow 10.

"""Shared fixtures: the real MiniLM model (loaded once per session) and small generated content."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from provenance import Index
from provenance.samples import sample_photo


def _find_shared() -> Path:
    # ../shared beside the checkout; a git worktree sits one level deeper (wt/<name>), so
    # look upwards instead of counting parents.
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared" / "data").is_dir():
            return parent / "shared"
    return Path(__file__).resolve().parents[2] / "shared"


SHARED = _find_shared()
DATA = SHARED / "data"


def jpeg_bytes(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> dict[str, Path]:
    """Three distinct generated photos saved as JPEG/PNG."""
    d = tmp_path_factory.mktemp("photos")
    out = {}
    for i, seed in enumerate((11, 12, 13)):
        p = d / f"photo{i}.jpg"
        p.write_bytes(jpeg_bytes(sample_photo(seed)))
        out[f"photo{i}"] = p
    return out


@pytest.fixture()
def index(tmp_path) -> Index:
    idx = Index.open(tmp_path / "idx", create=True)
    yield idx
    idx.close()

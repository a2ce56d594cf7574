"""A colour-layout hash: where the image is light, dark, warm and cool, on an 8 x 8 grid (192 bits).

An example of a signal that lives outside provenance-checker. It subclasses the product's binary-hash
base, so storage, search (FAISS Hamming) and verification come with it; the module only says how to
fingerprint. The distribution's ``pyproject.toml`` registers it under the ``provenance.signals``
entry-point group; nothing in the product changes.

Input contract: ``Content`` with ``media == "image"`` and ``image`` a decoded RGB ``PIL.Image``.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from provenance.content import Content
from provenance.signals.base import Fingerprint, bits_to_bytes
from provenance.signals.image import HashSignal


class ColourLayoutSignal(HashSignal):
    """Per channel of YCbCr, one bit per cell of an 8 x 8 grid: is the cell above the channel's median?

    Cheap and robust to re-encoding and resizing; not to crops or rotations (it is a second opinion).
    """

    name = "colour-layout"
    version = 1
    bits = 192
    #: 20 of 192 bits: re-encoded and resized copies stay well inside; it only adds evidence here.
    threshold = 20
    search_radius = 20
    threshold_source = "example plugin: 20 of 192 bits"

    def fingerprint(self, content: Content) -> list[Fingerprint]:
        """The 192-bit colour layout of the whole image."""
        assert content.image is not None
        grid = np.asarray(content.image.convert("YCbCr").resize((8, 8), Image.Resampling.BOX), dtype=np.float32)
        bits = np.concatenate([(grid[:, :, c] > np.median(grid[:, :, c])).ravel() for c in range(3)])
        return [Fingerprint(bits_to_bytes(bits))]

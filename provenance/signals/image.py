"""Perceptual image signals: Meta's PDQ (256 bits) and pHash (64 bits, via ``imagehash``).

Input contract: ``Content`` with ``media == "image"`` and ``image`` an RGB ``PIL.Image`` no larger than
``content.MAX_SIDE`` on its long side, EXIF orientation already applied.
"""

from __future__ import annotations

import imagehash
import numpy as np
from PIL import Image

from ..content import Content
from .base import Fingerprint, Signal, SignalSkipped, bits_to_bytes

#: The eight dihedral transforms, in the order ``pdqhash.compute_dihedral`` returns them (Meta's
#: rotate90 … flipX, flipY, flipPlus1, flipMinus1), named for what they do to the query image: Meta's
#: flipX mirrors about the horizontal axis (top-bottom), flipY about the vertical one (left-right).
#: A match reports the transform that, applied to the query, reproduced the indexed image.
DIHEDRAL = ("identity", "rotate-90", "rotate-180", "rotate-270", "mirror-top-bottom", "mirror-left-right",
            "transpose", "transverse")

# The same transforms in Pillow's terms (checked against pdqhash by tests/test_signals.py).
_PIL_DIHEDRAL = (
    None, Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270,
    Image.Transpose.FLIP_TOP_BOTTOM, Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.TRANSPOSE,
    Image.Transpose.TRANSVERSE,
)


class PDQSignal(Signal):
    """Meta's PDQ perceptual hash: 256 bits, Hamming distance, dihedral-invariant queries."""

    name = "pdq"
    version = 1
    media = frozenset({"image"})
    index_kind = "binary"
    dim = 256
    #: Meta's recommended operating point for PDQ (ThreatExchange ``PdqSignal``: distance <= 31 of 256).
    threshold = 31
    threshold_source = "Meta ThreatExchange PDQ default (<= 31 of 256 bits)"
    #: Below this quality PDQ hashes of flat or tiny images collide; Meta's guidance drops them.
    min_quality = 50

    def __init__(self) -> None:
        try:
            import pdqhash  # noqa: F401  (a native extension; fail here with a clear message)
        except ImportError as exc:  # pragma: no cover - pdqhash is a hard dependency
            from ..errors import MissingComponentError
            raise MissingComponentError(f"pdqhash is not installed ({exc}); pip install pdqhash") from exc

    @staticmethod
    def _pixels(content: Content) -> np.ndarray:
        assert content.image is not None
        return np.asarray(content.image, dtype=np.uint8)

    def _gate(self, quality: int) -> None:
        if quality < self.min_quality:
            raise SignalSkipped(f"PDQ quality {quality} < {self.min_quality} (flat or featureless image)")

    def fingerprint(self, content: Content) -> list[Fingerprint]:
        import pdqhash
        bits, quality = pdqhash.compute(self._pixels(content))
        self._gate(int(quality))
        return [Fingerprint(bits_to_bytes(bits), quality=int(quality))]

    def query_variants(self, content: Content) -> list[tuple[str, list[Fingerprint]]]:
        import pdqhash
        hashes, quality = pdqhash.compute_dihedral(self._pixels(content))
        self._gate(int(quality))
        return [(name, [Fingerprint(bits_to_bytes(h), quality=int(quality))])
                for name, h in zip(DIHEDRAL, hashes)]


class PHashSignal(Signal):
    """DCT perceptual hash (``imagehash.phash``): 64 bits; cheap, and works where PDQ quality is low."""

    name = "phash"
    version = 1
    media = frozenset({"image"})
    index_kind = "binary"
    dim = 64
    threshold = 8
    threshold_source = ("provisional: imagehash pHash copy-detection practice (<= 8 of 64 bits); "
                        "see bench/RESULTS.md for the measured false-match rate")

    @staticmethod
    def _small(content: Content) -> Image.Image:
        assert content.image is not None
        # imagehash.phash first reduces to 32x32 greyscale; doing it once here lets the eight dihedral
        # query variants transpose a 32x32 image instead of the full one.
        return content.image.convert("L").resize((32, 32), Image.Resampling.LANCZOS)

    @staticmethod
    def _hash(img: Image.Image) -> bytes:
        return bits_to_bytes(imagehash.phash(img).hash.flatten())

    def fingerprint(self, content: Content) -> list[Fingerprint]:
        return [Fingerprint(self._hash(self._small(content)))]

    def query_variants(self, content: Content) -> list[tuple[str, list[Fingerprint]]]:
        small = self._small(content)
        return [(name, [Fingerprint(self._hash(small if t is None else small.transpose(t)))])
                for name, t in zip(DIHEDRAL, _PIL_DIHEDRAL)]

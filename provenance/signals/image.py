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
    threshold_source = ("Meta ThreatExchange PDQ default (<= 31 of 256 bits); measured on clothing-small: "
                        "0/999 non-indexed photos within 43 bits of any of 1,650 indexed ones")
    #: PDQ distance at which PDQ, though not matching itself, corroborates a loose pHash match. On
    #: clothing-small 0.1 % of non-indexed photos came this close to some indexed photo (bench/RESULTS.md).
    corroborating_distance = 48
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
    #: pHash alone: 64 bits collide easily on look-alike photos (plain backgrounds). Measured on
    #: clothing-small, nearest-indexed-photo distance of non-indexed photos: <=3: 0/999, <=4: 0.2 %,
    #: <=6: 1.1 %, <=8: 5.4 %. So alone it decides only at <= 3 ...
    threshold = 3
    #: ... and up to 8 (what text overlays and heavy re-encoding need) only when PDQ corroborates
    #: (PDQ distance <= PDQSignal.corroborating_distance) or cannot speak (quality gate).
    corroborated_threshold = 8
    threshold_source = ("measured: <= 3 of 64 bits alone (0/999 false matches on clothing-small), <= 8 when "
                        "PDQ is within 48 bits or skipped (bench/RESULTS.md)")

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


def phash_threshold(pdq_distance: int | None) -> tuple[int, str]:
    """The pHash threshold that applies to a pair, and why, given the pair's PDQ distance.

    ``pdq_distance`` is ``None`` when PDQ cannot speak (an image below its quality gate).
    """
    if pdq_distance is None:
        return PHashSignal.corroborated_threshold, "PDQ unavailable"
    if pdq_distance <= PDQSignal.corroborating_distance:
        return PHashSignal.corroborated_threshold, f"corroborated by PDQ <= {PDQSignal.corroborating_distance}"
    return PHashSignal.threshold, "alone"

"""Invisible watermarks that open image generators embed and that decode without model weights.

Input contract
--------------
``decode_known_watermarks(rgb)`` takes an RGB ``uint8`` array (H x W x 3) of at least
256 x 256 pixels (smaller images are skipped, as the reference package refuses them) and
returns the known generator payloads it finds.

The scheme is the ``invisible-watermark`` package's ``dwtDct`` method (ShieldMnt), as the
Stable Diffusion reference scripts and ``diffusers`` use it. Decoding it here instead of
importing that package: it declares the GUI build of OpenCV (which wants libGL) and an
unpinned torch, neither of which a checker should pull in. The scheme, reimplemented with
PyWavelets and OpenCV-headless and tested bit for bit against the package's own decoder:

1. convert the image, taken as BGR, to YUV (OpenCV's ``COLOR_BGR2YUV``);
2. for the U channel only (the scales are ``[0, 36, 36]`` but only channels 0 and 1 are
   visited, and channel 0 has scale 0), take a one-level Haar DWT of the area cropped to a
   multiple of 4 and walk the approximation band in 4 x 4 blocks, row by row;
3. in each block, the coefficient of largest magnitude other than the first carries one
   bit: ``|value| mod 36 > 18`` reads as 1; block ``n`` carries bit ``n mod length``;
4. each bit is the majority over all blocks that carry it.

Payload length is not stored in the image, so each known payload is decoded at its own
length and compared bit by bit. A match allows a few flipped bits (the package's own
encoder and decoder already disagree on 2-3 of 48 bits for some pictures) but not many:
48 random bits agree with a given payload in at least 42 places with probability ~5e-8.
The scheme itself is fragile: JPEG re-encoding at quality 85, or resizing, erases it
(measured in bench/inspect_eval.py), so a missing watermark says nothing.

Two channel orders are tried: the reference scripts hand the encoder BGR (the package's
convention), while ``diffusers`` hands it RGB arrays, so there the "U" channel is computed
from swapped red and blue.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = [
    "KNOWN_WATERMARKS",
    "MIN_SIDE_PIXELS",
    "KnownWatermark",
    "WatermarkMatch",
    "decode_dwt_dct_bits",
    "decode_known_watermarks",
]

#: The reference package refuses images with fewer pixels than 256 x 256.
MIN_SIDE_PIXELS = 256 * 256
_SCALE = 36.0
_BLOCK = 4


@dataclass(frozen=True)
class KnownWatermark:
    """A payload a generator is published to embed, with where that is documented."""

    name: str
    generator: str
    bits: tuple[int, ...]
    reference: str
    max_bit_errors: int

    @property
    def payload_hex(self) -> str:
        """The payload as hex (bits packed most significant first)."""
        return np.packbits(np.array(self.bits, dtype=np.uint8)).tobytes().hex()


def _bits_of_int(value: int, length: int) -> tuple[int, ...]:
    return tuple(int(b) for b in format(value, f"0{length}b"))


def _bits_of_bytes(data: bytes) -> tuple[int, ...]:
    return tuple(int(b) for b in np.unpackbits(np.frombuffer(data, dtype=np.uint8)))


#: Payloads of the open generators that embed a dwtDct watermark. ``max_bit_errors`` is
#: about 1/8 of the length (1/10 for the 32-bit one): room for the scheme's own round-trip
#: errors, still far from chance agreement.
KNOWN_WATERMARKS: tuple[KnownWatermark, ...] = (
    KnownWatermark(
        name="sdxl",
        generator="Stable Diffusion XL (Stability AI generative-models, diffusers)",
        bits=_bits_of_int(0b101100111110110010010000011110111011000110011110, 48),
        reference="diffusers pipelines/stable_diffusion_xl/watermark.py WATERMARK_MESSAGE; "
                  "Stability-AI/generative-models sgm/inference/helpers.py",
        max_bit_errors=6,
    ),
    KnownWatermark(
        name="stability-video",
        generator="Stability AI generative-models (Stable Video Diffusion, SV3D scripts)",
        bits=_bits_of_int(0b001010101111111010000111100111001111010100101110, 48),
        reference="Stability-AI/generative-models scripts/util/detection, "
                  "scripts/sampling WATERMARK_MESSAGE",
        max_bit_errors=6,
    ),
    KnownWatermark(
        name="sd2",
        generator="Stable Diffusion 2 (Stability-AI/stablediffusion scripts)",
        bits=_bits_of_bytes(b"SDV2"),
        reference='Stability-AI/stablediffusion scripts/txt2img.py: wm = "SDV2"',
        max_bit_errors=3,
    ),
    KnownWatermark(
        name="sd1",
        generator="Stable Diffusion 1 (CompVis/stable-diffusion scripts)",
        bits=_bits_of_bytes(b"StableDiffusionV1"),
        reference='CompVis/stable-diffusion scripts/txt2img.py: wm = "StableDiffusionV1"',
        max_bit_errors=17,
    ),
)


@dataclass(frozen=True)
class WatermarkMatch:
    """A known payload found in an image."""

    name: str
    generator: str
    method: str
    channel_order: str
    payload_hex: str
    decoded_hex: str
    bit_errors: int
    length: int
    reference: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _block_scores(bgr: np.ndarray) -> np.ndarray:
    """One 0/1 score per 4 x 4 block of the U channel's Haar approximation band, in the
    package's order (rows of blocks, then columns)."""
    import cv2  # opencv-python-headless; imported here so importing the module stays cheap
    import pywt

    rows, cols = bgr.shape[0] // 4 * 4, bgr.shape[1] // 4 * 4
    yuv = cv2.cvtColor(np.ascontiguousarray(bgr), cv2.COLOR_BGR2YUV)
    approx, _ = pywt.dwt2(yuv[:rows, :cols, 1], "haar")
    br, bc = approx.shape[0] // _BLOCK, approx.shape[1] // _BLOCK
    blocks = approx[:br * _BLOCK, :bc * _BLOCK].reshape(br, _BLOCK, bc, _BLOCK)
    blocks = blocks.transpose(0, 2, 1, 3).reshape(br * bc, _BLOCK * _BLOCK)
    # The package skips the first coefficient and takes the first maximum (np.argmax).
    position = np.argmax(np.abs(blocks[:, 1:]), axis=1) + 1
    values = np.abs(blocks[np.arange(len(blocks)), position])
    return (np.mod(values, _SCALE) > 0.5 * _SCALE).astype(np.float64)


def decode_dwt_dct_bits(bgr: np.ndarray, length: int) -> np.ndarray:
    """Decode ``length`` bits from a BGR ``uint8`` image with the ``dwtDct`` scheme.

    Raises:
        ValueError: the image is not H x W x 3, is smaller than 256 x 256 pixels, or
            ``length`` is not positive.
    """
    return _bits_from_scores(_checked_scores(bgr), length)


def _checked_scores(bgr: np.ndarray) -> np.ndarray:
    if bgr.ndim != 3 or bgr.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 image, got shape {bgr.shape}")
    if bgr.shape[0] * bgr.shape[1] < MIN_SIDE_PIXELS:
        raise ValueError("image too small for the dwtDct watermark (needs 256 x 256 pixels)")
    return _block_scores(bgr)


def _bits_from_scores(scores: np.ndarray, length: int) -> np.ndarray:
    if length <= 0:
        raise ValueError("length must be positive")
    sums = np.bincount(np.arange(len(scores)) % length, weights=scores, minlength=length)
    counts = np.bincount(np.arange(len(scores)) % length, minlength=length)
    # The package's rule: mean * 255 > 127.
    return (sums / np.maximum(counts, 1) * 255 > 127).astype(np.uint8)


def decode_known_watermarks(rgb: np.ndarray) -> list[WatermarkMatch]:
    """The known generator watermarks present in an RGB ``uint8`` image (possibly none).

    Images under 256 x 256 pixels give ``[]``: the scheme is not defined for them.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] * rgb.shape[1] < MIN_SIDE_PIXELS:
        return []
    found: list[WatermarkMatch] = []
    orders = (("bgr", rgb[:, :, ::-1]), ("rgb-as-bgr (diffusers)", rgb))
    for order, image in orders:
        scores = _block_scores(image)
        for known in KNOWN_WATERMARKS:
            if any(f.name == known.name for f in found):
                continue
            bits = _bits_from_scores(scores, len(known.bits))
            errors = int(np.count_nonzero(bits != np.array(known.bits, dtype=np.uint8)))
            if errors <= known.max_bit_errors:
                found.append(WatermarkMatch(
                    name=known.name, generator=known.generator, method="invisible-watermark dwtDct",
                    channel_order=order, payload_hex=known.payload_hex,
                    decoded_hex=np.packbits(bits).tobytes().hex(), bit_errors=errors,
                    length=len(known.bits), reference=known.reference))
    return found

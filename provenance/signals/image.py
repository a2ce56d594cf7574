"""Perceptual image signals: Meta's PDQ (256 bits) and pHash (64 bits, via ``imagehash``).

Input contract: ``Content`` with ``media == "image"`` and ``image`` an RGB ``PIL.Image`` no larger than
``content.MAX_SIDE`` on its long side, EXIF orientation already applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import imagehash
import numpy as np
from PIL import Image

from ..content import Content
from ..report import Evidence, Observation, Relaxation
from .base import Fingerprint, Signal, SignalIndex, SignalSkipped, Store, Variants, bits_to_bytes, hamming

if TYPE_CHECKING:
    from ..indexes.catalog import ItemRow

#: Neighbours fetched per query variant before verification.
SEARCH_K = 16

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


#: Prefixes of variant names computed on the border-trimmed image and on the content block.
TRIMMED = "trimmed+"
BLOCK = "block+"
#: Prefix of the query variant computed on the rectified picture (:func:`rectify`).
RECTIFIED = "rectified+"
#: Variants a query has and a stored picture never does (``audit --add`` stores from query variants).
QUERY_ONLY = (RECTIFIED,)


def trim_uniform_border(img: Image.Image, tol: int = 16, min_share: float = 0.97,
                        max_rounds: int = 3) -> Image.Image | None:
    """``img`` without flat borders (letterboxing, padding, a plain frame), or ``None`` if it has none.

    A border row or column is one where at least ``min_share`` of the pixels are within ``tol`` (per
    channel, allowing for JPEG noise) of the border colour, the median of the perimeter. Repeated up to
    ``max_rounds`` times so padding around an image that has a plain background of its own comes off in
    both layers, the same way for the original and the copy. Refuses to keep less than 30 % of a side.
    """
    arr = np.asarray(img, dtype=np.int16)
    h, w = arr.shape[:2]
    top, bottom, left, right = 0, h, 0, w
    for _ in range(max_rounds):
        sub = arr[top:bottom, left:right]
        if sub.shape[0] < 3 or sub.shape[1] < 3:
            return None
        edges = (sub[0], sub[-1], sub[:, 0], sub[:, -1])
        colour = np.median(np.concatenate(edges), axis=0)
        # Cheap exit for the common case: no outermost row or column is border-coloured.
        if max((np.abs(e - colour).max(axis=1) <= tol).mean() for e in edges) < min_share:
            break
        close = np.abs(sub - colour).max(axis=2) <= tol
        rows = np.flatnonzero(close.mean(axis=1) < min_share)
        cols = np.flatnonzero(close.mean(axis=0) < min_share)
        if len(rows) == 0 or len(cols) == 0:
            return None  # all border: a flat image
        t, b, lft, r = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        if (t, b, lft, r) == (0, sub.shape[0], 0, sub.shape[1]):
            break
        top, bottom, left, right = top + t, top + b, left + lft, left + r
    if (bottom - top, right - left) == (h, w):
        return None
    # Ignore slivers (JPEG edge noise) and refuse to reduce the picture to a fragment.
    if max(top, h - bottom, left, w - right) < max(2, 0.01 * max(h, w)):
        return None
    if bottom - top < 0.3 * h or right - left < 0.3 * w:
        return None
    return img.crop((left, top, right, bottom))


def _flat_lines(planes: np.ndarray, axis: int, tol: int, min_share: float) -> np.ndarray:
    """For each row (``axis=1``) or column (``axis=0``) of a (3, h, w) image: is it one colour, ±``tol``?"""
    close = None
    for plane in planes:  # channel by channel: reducing over a length-3 last axis is slow in numpy
        # The line's colour is its mean: for a flat line (>= 97 % one colour) the mean is within a few
        # levels of that colour, and a line that is not flat fails the share test whatever colour is taken.
        colour = plane.mean(axis=axis, keepdims=True, dtype=np.float32).astype(np.int16)
        ok = np.abs(plane - colour) <= tol
        close = ok if close is None else close & ok
    assert close is not None
    return close.mean(axis=axis) >= min_share


def _longest_run(mask: np.ndarray) -> tuple[int, int]:
    """``[start, end)`` of the longest run of True values (``(0, 0)`` if none)."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    if len(edges) == 0:
        return 0, 0
    starts, ends = edges[::2], edges[1::2]
    k = int(np.argmax(ends - starts))
    return int(starts[k]), int(ends[k])


def content_block(img: Image.Image, tol: int = 16, min_share: float = 0.97,
                  min_keep: float = 0.3) -> Image.Image | None:
    """The largest block of non-flat rows and columns: a picture framed by a screenshot (status bar,
    caption text, margins), or ``None`` when that is the whole image.

    Rows that are one colour (each its own) separate blocks; text lines are short blocks, the picture
    is the tallest. Within it, flat columns (margins) are dropped the same way.
    """
    planes = np.asarray(img, dtype=np.int16).transpose(2, 0, 1).copy()  # contiguous channel planes
    h, w = planes.shape[1:]
    top, bottom = _longest_run(~_flat_lines(planes, 1, tol, min_share))
    if bottom - top < min_keep * h:
        return None
    left, right = _longest_run(~_flat_lines(planes[:, top:bottom], 0, tol, min_share))
    if right - left < min_keep * w or (top, bottom, left, right) == (0, h, 0, w):
        return None
    return img.crop((left, top, right, bottom))


def rectify(img: Image.Image, tol: int = 24, min_tilt: float = 1.5, min_area: float = 0.3,
            hull_fit: float = 0.08) -> Image.Image | None:
    """The picture inside a tilted quadrilateral on a one-colour ground, warped back to a rectangle: what
    rotating a picture with its canvas expanded, or putting it in perspective, does (the corners fill
    with one colour), undone. ``None`` unless all four corners are one colour (±``tol``), the other pixels'
    convex hull is a quadrilateral (its area within ``hull_fit`` of the hull's) covering at least
    ``min_area`` of the image, and one of its sides is at least ``min_tilt`` degrees off the axes (an
    upright picture on a plain ground is the border trim's).

    Why: PDQ of a 3-20 degree rotation of a picture lands ~114 bits from the original's, unrelated. Offline
    on 40 icons and 40 photos each (``bench/localfeat_eval.py`` families): the rectified copy's PDQ is within
    31 bits of the original's for 32-38/40 rotated icons, 21-33/40 icons in perspective and every rotated
    photo; 31 of 400 upright icons and 4 of 200 photos produce the variant at all.
    """
    import cv2

    w, h = img.size
    if h < 16 or w < 16:
        return None
    # Most pictures fail here, before any whole-image work.
    corners = np.array([img.getpixel(xy) for xy in ((0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1))],
                       dtype=np.int16).reshape(4, -1)
    if np.abs(corners - corners[0]).max() > tol:
        return None
    rgb = np.asarray(img.convert("RGB"))
    fill = corners.mean(axis=0)[:3] if corners.shape[1] >= 3 else np.repeat(corners.mean(), 3)
    # cv2.inRange, not a numpy max over the 3 channels: that reduction took most of the time.
    low, high = (np.clip(fill + d, 0, 255).astype(np.uint8) for d in (-tol, tol))
    content = cv2.inRange(rgb, low, high) == 0
    # The hull of each row's first and last content pixel is the hull of them all, at 2 points a row.
    rows = np.flatnonzero(content.any(axis=1))
    if len(rows) < 8:
        return None
    first = content[rows].argmax(axis=1)
    last = w - 1 - content[rows][:, ::-1].argmax(axis=1)
    points = np.concatenate([np.stack([first, rows], axis=1), np.stack([last, rows], axis=1)]).astype(np.int32)
    hull = cv2.convexHull(points.reshape(-1, 1, 2))
    perimeter = cv2.arcLength(hull, True)
    quad = next((q.reshape(4, 2).astype(np.float32) for eps in (0.01, 0.02, 0.03, 0.05, 0.08)
                 if len(q := cv2.approxPolyDP(hull, eps * perimeter, True)) == 4), None)
    if quad is None:
        return None
    quad_area, hull_area = cv2.contourArea(quad), cv2.contourArea(hull)
    if quad_area < min_area * h * w or abs(hull_area - quad_area) > hull_fit * quad_area:
        return None
    total, diff = quad.sum(axis=1), np.diff(quad, axis=1).ravel()
    tl, tr, br, bl = quad[np.argmin(total)], quad[np.argmin(diff)], quad[np.argmax(total)], quad[np.argmax(diff)]
    ordered = np.stack([tl, tr, br, bl])
    sides = np.roll(ordered, -1, axis=0) - ordered
    off_axis = np.degrees(np.arctan2(sides[:, 1], sides[:, 0])) % 90
    if np.minimum(off_axis, 90 - off_axis).max() < min_tilt:
        return None
    width = int(round((np.linalg.norm(tr - tl) + np.linalg.norm(br - bl)) / 2))
    height = int(round((np.linalg.norm(bl - tl) + np.linalg.norm(br - tr)) / 2))
    if width < 16 or height < 16:
        return None
    target = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], dtype=np.float32)
    warped = cv2.warpPerspective(rgb, cv2.getPerspectiveTransform(ordered, target), (width, height),
                                 flags=cv2.INTER_LINEAR)
    return Image.fromarray(warped)


def _derived(content: Content) -> list[tuple[str, Image.Image]]:
    """The extra images both signals hash besides the whole one: border-trimmed and content block.

    Cached on the content so ``fingerprint`` and ``query_variants`` of both signals share the work.
    """
    if "derived" not in content.meta:
        assert content.image is not None
        out: list[tuple[str, Image.Image]] = []
        trimmed = trim_uniform_border(content.image)
        if trimmed is not None:
            out.append((TRIMMED, trimmed))
        block = content_block(content.image)
        if block is not None and (trimmed is None or block.size != trimmed.size):
            out.append((BLOCK, block))
        content.meta["derived"] = out
    return content.meta["derived"]


@dataclass(frozen=True)
class HashEvidence(Evidence):
    """The closest pair of hashes between the query's variants and the item's stored hashes."""

    distance: int
    bits: int
    #: The transform that, applied to the query, reproduced the indexed image (``rotate-90``,
    #: ``trimmed+identity`` ...).
    transform: str
    #: The closest distance of the query's whole-image hashes (no trimmed or block variant): the same
    #: as ``distance`` unless a derived variant was closer; ``None`` when the whole image has no hash.
    whole_distance: int | None = None

    def summary(self) -> str:
        """e.g. ``12/256 bits apart, query transform rotate-90``."""
        return f"{self.distance}/{self.bits} bits apart, query transform {self.transform}"

    def standalone(self) -> tuple[float, str] | None:
        """The whole image's distance when a derived variant (trimmed, content block) was closer: the
        derived image of a flat picture is often one plain shape, whose hash collides with any other's,
        so such a match needs a second signal to stand (measured: bench/flat_rules.py)."""
        if "+" not in self.transform:
            return None
        return float(self.bits if self.whole_distance is None else self.whole_distance), "whole image only"


class HashIndex(SignalIndex[list[tuple[str, bytes]]]):
    """A binary hash in a FAISS Hamming index: k-NN of every query variant within the signal's search
    radius, then the reference Hamming distance against the item's stored hashes."""

    signal: HashSignal

    def prepare(self, content: Content, variants: Variants | None) -> list[tuple[str, bytes]]:
        if variants is None:
            variants = self.signal.query_variants(content)
        return [(name, fps[0].value_bytes()) for name, fps in variants if fps]

    def candidates(self, query: list[tuple[str, bytes]]) -> list[int]:
        s = self.signal
        queries = np.frombuffer(b"".join(v for _, v in query), dtype=np.uint8).reshape(len(query), -1)
        dist, ids = self.store.vectors(s).search(queries, SEARCH_K)
        hits = {int(i): float(d) for row_d, row_i in zip(dist, ids) for d, i in zip(row_d, row_i)
                if i >= 0 and d <= s.search_radius}
        owners = self.store.catalog.fingerprint_owners(hits)
        best: dict[int, float] = {}
        for fid, (item_id, _, _) in owners.items():
            best[item_id] = min(best.get(item_id, 1e9), hits[fid])
        return sorted(best, key=best.__getitem__)

    def verify(self, query: list[tuple[str, bytes]], content: Content, item: ItemRow) -> Observation | None:
        stored = self.store.catalog.item_fingerprints(item.id, self.signal.name)
        if not stored:
            return None
        dists = [(hamming(v, fp), t) for t, v in query for fp in stored]
        d, transform = min(dists)
        whole = min((dd for dd, t in dists if "+" not in t), default=None)
        bits = self.signal.dim
        return self.observation(d, 1.0 - d / bits, HashEvidence(d, bits, transform, whole))


class HashSignal(Signal):
    """Common ground of the perceptual image hashes: worker-computed, Hamming distance, stored as the
    hash of the image and of its derived images (``identity`` variants)."""

    media = frozenset({"image"})
    index_kind = "binary"
    compute = "worker"
    lower_is_closer = True
    bits: ClassVar[int]
    #: Candidates are searched up to this distance (at least the loosest threshold that can apply).
    search_radius: ClassVar[float]

    @property
    def dim(self) -> int:
        return self.bits

    def stored_from_variants(self, variants: Variants) -> list[Fingerprint]:
        return [f for name, fps in variants
                if name.rpartition("+")[2] == "identity" and not name.startswith(QUERY_ONLY) for f in fps]

    def index(self, store: Store) -> HashIndex:
        return HashIndex(self, store)


class PDQSignal(HashSignal):
    """Meta's PDQ perceptual hash: 256 bits, Hamming distance, dihedral-invariant queries."""

    name = "pdq"
    #: 2: also hashes the border-trimmed image; 3: and the content block (screenshot framing).
    version = 3
    bits = 256
    #: Meta's recommended operating point for PDQ (ThreatExchange ``PdqSignal``: distance <= 31 of 256).
    threshold = 31
    threshold_source = ("Meta ThreatExchange PDQ default (<= 31 of 256 bits); measured on clothing-small: "
                        "0/999 non-indexed photos within 43 bits of any of 1,650 indexed ones")
    #: PDQ distance at which PDQ, though not matching itself, corroborates a loose pHash match. On
    #: clothing-small 0.1 % of non-indexed photos came this close to some indexed photo (bench/RESULTS.md).
    corroborating_distance = 48
    search_radius = corroborating_distance  # near misses up to here are shown
    #: Calibrated score: unrelated pictures' hashes differ in about half their bits; identical ones in none.
    score_anchors = (128.0, 0.0)
    #: Calibration sees only what the search sees: up to the search radius.
    calibration_grid = tuple(float(t) for t in range(0, corroborating_distance + 1))
    #: Below this quality PDQ hashes of flat or tiny images collide; Meta's guidance drops them.
    min_quality = 50

    def __init__(self) -> None:
        try:
            import pdqhash  # noqa: F401  (a native extension; fail here with a clear message)
        except ImportError as exc:  # pragma: no cover - pdqhash is a hard dependency
            from ..errors import MissingComponentError
            raise MissingComponentError(f"pdqhash is not installed ({exc}); pip install pdqhash") from exc

    def _gate(self, quality: int) -> None:
        if quality < self.min_quality:
            raise SignalSkipped(f"PDQ quality {quality} < {self.min_quality} (flat or featureless image)")

    @staticmethod
    def _images(content: Content, query: bool = False) -> list[tuple[str, Image.Image]]:
        """The whole image and its derived images; for a query also the rectified picture (:func:`rectify`),
        which is never stored: an indexed picture is taken as upright, a copy may be tilted."""
        assert content.image is not None
        rectified = rectify(content.image) if query else None
        return [("", content.image)] + _derived(content) + ([(RECTIFIED, rectified)] if rectified else [])

    def _hashes(self, content: Content, dihedral: bool) -> list[tuple[str, Fingerprint]]:
        """Named PDQ hashes of the whole image and its derived images (all 8 dihedral ones, and the
        rectified picture, for a query)."""
        import pdqhash
        out = []
        for prefix, img in self._images(content, query=dihedral):
            pixels = np.asarray(img, dtype=np.uint8)
            names: tuple[str, ...]
            if dihedral:
                hashes, quality = pdqhash.compute_dihedral(pixels)
                names = DIHEDRAL
            else:
                bits, quality = pdqhash.compute(pixels)
                hashes, names = [bits], DIHEDRAL[:1]
            if prefix == "":
                self._gate(int(quality))  # the whole image decides whether PDQ speaks at all
            elif quality < self.min_quality:
                continue
            out += [(prefix + name, Fingerprint(bits_to_bytes(h), quality=int(quality)))
                    for name, h in zip(names, hashes)]
        return out

    def fingerprint(self, content: Content) -> list[Fingerprint]:
        """The PDQ hash of the image (Meta-compatible), plus those of its trimmed and block versions."""
        return [f for _, f in self._hashes(content, dihedral=False)]

    def query_variants(self, content: Content) -> list[tuple[str, list[Fingerprint]]]:
        return [(name, [f]) for name, f in self._hashes(content, dihedral=True)]


class PHashSignal(HashSignal):
    """DCT perceptual hash (``imagehash.phash``): 64 bits; cheap, and works where PDQ quality is low."""

    name = "phash"
    #: 2: also hashes the border-trimmed image; 3: and the content block (screenshot framing).
    version = 3
    bits = 64
    #: pHash decides alone only when PDQ has nothing to say about the pair (its quality gate skipped
    #: either image) and only on the whole image: 64 bits collide easily on look-alike photos (plain
    #: backgrounds; clothing-small, nearest-indexed-photo distance of non-indexed photos: <=3: 0/999,
    #: <=4: 0.2 %, <=6: 1.1 %, <=8: 5.4 %) and on flat designs, whose trimmed or content-block variant
    #: is often one plain shape ...
    threshold = 3
    #: ... up to 8 (what text overlays and heavy re-encoding need) when PDQ corroborates (within
    #: PDQSignal.corroborating_distance); when PDQ saw the pair and is farther, PDQ overrules pHash
    #: (measured on generated flat designs, icons and photos: bench/flat_rules.py).
    corroborated_threshold = 8
    relaxation = Relaxation(corroborated_threshold, "pdq", PDQSignal.corroborating_distance, alone=False)
    search_radius = corroborated_threshold
    score_anchors = (32.0, 0.0)  # half of the 64 bits for unrelated pictures, none for identical ones
    calibration_grid = tuple(float(t) for t in range(0, corroborated_threshold + 1))
    threshold_source = ("measured: <= 8 of 64 bits when PDQ is within 48 bits; <= 3 of the whole image when "
                        "PDQ cannot speak; never against PDQ (bench/RESULTS.md, bench/flat_rules.py)")

    @staticmethod
    def _smalls(content: Content) -> list[tuple[str, Image.Image]]:
        # imagehash.phash first reduces to 32x32 greyscale; doing it once here lets the eight dihedral
        # query variants transpose a 32x32 image instead of the full one.
        assert content.image is not None
        images = [("", content.image)] + _derived(content)
        return [(p, img.convert("L").resize((32, 32), Image.Resampling.LANCZOS)) for p, img in images]

    @staticmethod
    def _hash(img: Image.Image) -> bytes:
        return bits_to_bytes(imagehash.phash(img).hash.flatten())

    def fingerprint(self, content: Content) -> list[Fingerprint]:
        """The pHash of the image, plus those of its trimmed and block versions."""
        return [Fingerprint(self._hash(small)) for _, small in self._smalls(content)]

    def query_variants(self, content: Content) -> list[tuple[str, list[Fingerprint]]]:
        return [(prefix + name, [Fingerprint(self._hash(small if t is None else small.transpose(t)))])
                for prefix, small in self._smalls(content) for name, t in zip(DIHEDRAL, _PIL_DIHEDRAL)]

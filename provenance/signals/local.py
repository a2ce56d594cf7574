"""Local image features: crops, small rotations, perspective and overlays that global hashes cannot see.

Input contract: ``Content`` with ``media == "image"`` and ``image`` a decoded RGB ``PIL.Image``.
Fingerprint: one blob per image (:class:`provenance.localfeatures.Features`: at most 500 grid-spread ORB
keypoints with descriptors, coordinates in the original image's pixels, and a 64-px thumbnail for the pixel
check). Queried with the plain and the mirrored extraction (ORB is not mirror-invariant).

Search: a FAISS binary descriptor index (:class:`provenance.localfeatures.DescriptorIndex`: the 256 strongest
descriptors of each image, flat, then binary IVF from ~256 images) votes for candidate images; each of the
best few is verified with a MAGSAC homography plus sanity checks (scale, shear, convexity) and a pixel
comparison of the verified overlap, which is what separates a copy from a picture that only shares a frame
or background. The descriptor index is a snapshot under ``faiss/`` bound to the catalog
(:mod:`provenance.indexes.descriptors`): loaded on first search, caught up with rows newer than its
watermark on every search, saved when the index is flushed (after ``add``, ``rebuild``, on close), so a
cold ``check`` no longer re-reads every indexed image's features.
"""

from __future__ import annotations

import base64
import dataclasses
import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..content import Content
from ..indexes.descriptors import DescriptorSnapshot
from ..localfeatures import (
    PARTIAL_QUERY_COVERAGE,
    SCORE_THRESHOLD,
    DescriptorIndex,
    Features,
    Verification,
    extract,
    extract_query,
    for_index,
    verify_query,
    verify_region,
)
from ..report import Evidence, ImageRegions, Observation
from .base import Fingerprint, Signal, SignalIndex, SignalSkipped, Store, Variants

if TYPE_CHECKING:
    from ..indexes.catalog import ItemRow

#: Candidate images verified geometrically per check (the expensive step).
VERIFY_TOP = 4


@dataclass(frozen=True)
class LocalEvidence(Evidence):
    """The verified correspondence: which region of each image matches, under which transform."""

    verification: Verification
    #: The indexed image's stored greyscale thumbnail (a few KB of pixels, kept with the features for the
    #: pixel check); only :meth:`image_regions` uses it, so the JSON stays the verification's fields.
    reference_pixels: np.ndarray | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The verification's fields: polygons in both images, homography, scale, rotation, scores."""
        return self.verification.to_dict()

    def summary(self) -> str:
        """e.g. ``142 inliers; 63% of the indexed image, scale 1.25, rotated 8°``."""
        v = self.verification
        mirror = ", mirrored" if v.mirrored else ""
        part = f"partial ({v.query_coverage:.0%} of this image), " if v.level == "partial" else ""
        return (f"{part}{v.inliers} matching keypoints; {v.reference_coverage:.0%} of the indexed image in view, "
                f"scale {v.scale:.2f}, rotated {v.rotation_degrees:.0f}°{mirror}, pixel score {v.score:.3f}")

    def image_regions(self) -> ImageRegions | None:
        """The overlap and matched-keypoint polygons in both images, and the transform in words."""
        v = self.verification
        if not (v.query_size[0] and v.reference_size[0] and v.query_polygon and v.reference_polygon):
            return None  # evidence from before the sizes were recorded: nothing to scale the polygons by
        return ImageRegions(v.query_size, v.reference_size, tuple(v.query_polygon), tuple(v.reference_polygon),
                            tuple(v.matched_query_polygon), tuple(v.matched_reference_polygon),
                            transform_words(v), _jpeg_base64(self.reference_pixels))


def _jpeg_base64(pixels: np.ndarray | None) -> str | None:
    """Greyscale pixels as a base64 JPEG (encoded on demand: most evidence is never drawn)."""
    if pixels is None or pixels.ndim != 2 or 0 in pixels.shape:
        return None
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8), "L").save(buf, "JPEG", quality=80)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def transform_words(v: Verification) -> str:
    """How the indexed image became the checked one, for a person: e.g. ``mirrored left to right, rotated
    8° counter-clockwise, scaled to 0.80×; the checked image shows 63% of the indexed one``."""
    parts = ["mirrored left to right"] if v.mirrored else []
    # The homography maps reference pixels to query pixels in image coordinates (y down), so a positive
    # angle turns the picture clockwise on screen.
    deg = round(abs(v.rotation_degrees))
    if deg >= 1:
        parts.append(f"rotated {deg}° {'clockwise' if v.rotation_degrees > 0 else 'counter-clockwise'}")
    # ``v.scale`` is in working pixels (both images resized to one side first); a person means pixels
    # of the files, which the original-pixel homography gives (its linear part's determinant).
    h = v.homography
    scale = abs(h[0][0] * h[1][1] - h[0][1] * h[1][0]) ** 0.5 if h else v.scale
    if abs(scale - 1) >= 0.05:
        parts.append(f"scaled to {scale:.2f}×")
    head = ", ".join(parts) if parts else "same orientation and scale"
    return f"{head}; the checked image shows {v.reference_coverage:.0%} of the indexed one"


@dataclass
class LocalQuery:
    plain: Features
    mirrored: Features


class LocalFeatureIndex(SignalIndex[LocalQuery]):
    """Descriptor votes from a FAISS binary index (a snapshot caught up with the catalog), then geometric
    and pixel verification."""

    signal: LocalFeatureSignal

    def __init__(self, signal: Signal, store: Store) -> None:
        super().__init__(signal, store)
        #: Loaded on first search (:meth:`_snapshot`); image ids are catalog fingerprint rows.
        self._loaded: DescriptorSnapshot | None = None

    def _new_snapshot(self) -> DescriptorSnapshot:
        return DescriptorSnapshot(self.store.path / "faiss", self.signal.name, self.signal.version)

    def _snapshot(self) -> DescriptorSnapshot:
        """The descriptor index, loaded once per process and caught up with the catalog on every call
        (another process may have added since: one indexed SELECT when nothing is new)."""
        if self._loaded is None:
            self._loaded = self._new_snapshot()
            self._loaded.load(self.store.catalog)
        else:
            self._loaded.catch_up(self.store.catalog)
        return self._loaded

    @property
    def descriptors(self) -> DescriptorIndex:
        """The caught-up descriptor index."""
        return self._snapshot().index

    def flush(self) -> None:
        """Save the snapshot when it lacks catalog rows. A process that never searched (``add``) loads
        it only when the catalog has rows newer than the file's watermark, then catches up and saves."""
        catalog = self.store.catalog
        if self._loaded is None:
            newest = catalog.max_fingerprint_id(self.signal.name)
            on_disk = DescriptorSnapshot.snapshot_last_row(self._new_snapshot().path, catalog.catalog_id)
            if newest == 0 or (on_disk is not None and on_disk >= newest):
                return
        snap = self._snapshot()
        if snap.dirty:
            snap.save_quietly()

    def rebuild(self) -> int:
        """Rebuild the snapshot from the catalog's live rows and save it; returns its image count."""
        snap = self._new_snapshot()
        snap.rebuild_from(self.store.catalog)
        snap.save()
        self._loaded = snap
        return len(np.unique(snap.index.image_ids))

    def prepare(self, content: Content, variants: Variants | None) -> LocalQuery:
        if variants is None:
            variants = self.signal.query_variants(content)
        by_name = {name: Features.from_bytes(fps[0].value_bytes()) for name, fps in variants if fps}
        return LocalQuery(by_name["identity"], by_name["mirror-left-right"])

    def candidates(self, query: LocalQuery) -> list[int]:
        votes = self.descriptors.candidates((query.plain, query.mirrored), k_images=VERIFY_TOP)
        owners = self.store.catalog.fingerprint_owners(row for row, _ in votes)  # live items only
        return list(dict.fromkeys(owners[row][0] for row, _ in votes if row in owners))

    def verify(self, query: LocalQuery, content: Content, item: ItemRow) -> Observation | None:
        stored = self.store.catalog.item_fingerprints(item.id, self.signal.name)
        if not stored:
            return None
        best: Verification | None = None
        best_ref: Features | None = None
        for blob in stored:
            try:
                ref = Features.from_bytes(blob)
            except ValueError:
                continue
            v = verify_query((query.plain, query.mirrored), ref)
            if v is not None and (best is None or v.score > best.score):
                best, best_ref = v, ref
        if best is None or best_ref is None:
            return None
        if best.score < SCORE_THRESHOLD and best.query_coverage < PARTIAL_QUERY_COVERAGE and content.image is not None:
            # The indexed picture may be one part of this draft (a collage): look again at that region on
            # its own (``verify_region``). Needs the pixels, so ``audit`` (cached features) does not.
            again = verify_region(content.image, best_ref, best)
            if again is not None and again.score > best.score:
                best = again
        obs = self.observation(best.score, best.score, LocalEvidence(best, best_ref.thumb))
        if best.level == "partial":
            # Only a region of one picture appears in the other: a weaker verdict than a whole copy. Another
            # signal that sees the whole picture (PDQ on a plain crop) still decides near-duplicate.
            obs = dataclasses.replace(obs, verdict_on_match="partial")
        return obs


class LocalFeatureSignal(Signal):
    """ORB keypoints with MAGSAC and pixel verification (see the module docstring)."""

    name = "local-features"
    version = 1
    media = frozenset({"image"})
    index_kind = "catalog"
    compute = "worker"
    #: Held-out calibration in bench/localfeat_eval.py: <= 0.5 % false matches on non-indexed photos and
    #: same-frame composites (0/300 photos; recall with PDQ+pHash: 0.85 mild / 0.67 strong copies).
    threshold = SCORE_THRESHOLD
    #: ``provenance eval`` tries these (the score is a share of agreeing pixels; copies sit near 1).
    calibration_grid = tuple(round(0.95 + 0.001 * i, 3) for i in range(51))
    #: Calibrated score: 0.95, the bottom of the calibration grid (verified pictures that differ over a
    #: twentieth of the compared pixels), and identical pixels.
    score_anchors = (0.95, 1.0)
    threshold_source = ("measured: pixel agreement of the verified overlap >= 0.993, chosen on held-out "
                        "photos and same-frame composites (bench/localfeat_eval.py)")

    def fingerprint(self, content: Content) -> list[Fingerprint]:
        """One blob: the image's bounded ORB features and its ``THUMB_SIDE`` thumbnail (the plain
        extraction only: the mirrored one is for queries)."""
        if content.image is None:
            raise SignalSkipped("no decoded image")
        features = extract(content.image)
        if len(features.descriptors) == 0:
            raise SignalSkipped("no keypoints (a flat or featureless image)")
        return [Fingerprint(features.to_bytes())]

    def stored_from_variants(self, variants: Variants) -> list[Fingerprint]:
        """What ``fingerprint`` stores, from a query's plain extraction: its thumbnail reduced to the stored
        size (within a grey level of extracting it at that size)."""
        return [Fingerprint(for_index(Features.from_bytes(f.value_bytes())).to_bytes())
                for f in super().stored_from_variants(variants)]

    def query_variants(self, content: Content) -> Variants:
        """The plain extraction (stored with its thumbnail reduced: ``stored_from_variants``) and the
        mirrored one."""
        if content.image is None:
            raise SignalSkipped("no decoded image")
        plain, mirrored = extract_query(content.image)
        if len(plain.descriptors) == 0:
            raise SignalSkipped("no keypoints (a flat or featureless image)")
        return [("identity", [Fingerprint(plain.to_bytes())]),
                ("mirror-left-right", [Fingerprint(mirrored.to_bytes())])]

    def index(self, store: Store) -> LocalFeatureIndex:
        return LocalFeatureIndex(self, store)

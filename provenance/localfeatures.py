"""Local image features with geometric verification: finds crops, small rotations, perspective, overlays
and pictures pasted into other pictures, and says which region of each image corresponds.

Input contract: an RGB or greyscale ``PIL.Image`` (EXIF orientation already applied). Output: ORB
keypoints (coordinates in the *original* image's pixels) and 256-bit binary descriptors, a FAISS binary
index over the descriptors of many images, and a geometric verification of one query against one
candidate that returns the transform, the matched region as a polygon in both images and a score.

Independent of the catalog and of the signal interface: a signal adapter stores ``Features.to_bytes()``
per image, keeps a ``DescriptorIndex`` of their descriptors, asks it for ``candidates`` and calls
``verify`` on the few best. Nothing here pickles.

Why ORB: binary descriptors (32 bytes) are small and FAISS searches them by Hamming distance; SIFT is
more repeatable under strong scale changes but costs 4x the bytes (RootSIFT was not measured here). ORB is not mirror
invariant, so a query is also extracted from its mirror image (``extract(..., mirrored=True)``).

What separates a copy from a picture that merely shares a part (the same background, frame or template
around a different subject) is not the number of matches: a shared frame gives hundreds of consistent
ones, and keypoints say nothing where two graphics differ in a flat glyph. It is whether the *pixels* of
the overlapping region agree: ``verify`` warps the query's thumbnail onto the reference's 64-px greyscale
thumbnail with the fitted homography, z-normalises both (so colour, brightness and contrast edits do not
count), tolerates one pixel of misregistration, and takes the share of pixels that agree inside the hull
of the supporting keypoints and over the whole overlap; the score is the lower of the two, damped when few
inliers back it. Measured in ``bench/localfeat_eval.py`` (bench/RESULTS.md): a copy agrees on > 99 % of
the compared pixels unless an overlay covers it; the remaining look-alikes differ by a small emblem.
Keypoint agreement (``agreement``, ``cells_agreeing``) is kept as evidence.
"""

from __future__ import annotations

import dataclasses
import io
import json
import struct
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from .faiss_threads import one_thread

#: Version of the feature bytes: bump when extraction or the byte layout changes.
VERSION = 1
#: Images are extracted at this long side (small ones upscaled, large ones reduced): keeps keypoint
#: scales comparable across sizes and the time per image bounded.
WORK_SIDE = 512
#: Long side of the greyscale thumbnail stored with an indexed image, and of a query's.
THUMB_SIDE = 64
QUERY_THUMB_SIDE = 256
#: At most this many keypoints per image (what the index stores and verification uses).
MAX_KEYPOINTS = 500
#: Grid for spreading keypoints over the image (so one textured corner cannot take the whole budget).
GRID = 4
#: Descriptors per image that go into the candidate index (bytes in memory per indexed image: 32 each).
INDEX_PER_IMAGE = 256
#: Descriptors (about 256 images) from which candidates come from a binary IVF index instead of a flat,
#: exact one. A flat search costs every query descriptor a comparison with every indexed one: at 1,000
#: photos it took 1.6 s per check against IVF's 0.2 s, and the IVF index found the true image among the
#: top 4 candidates for the same 223 of 225 transformed copies (crop, rotations, perspective, overlay,
#: blur, resize, padding, screenshots, noise).
IVF_FROM = 65_536
#: The IVF index is trained again on all its codes each time it has grown this many times over.
RETRAIN_GROWTH = 4
#: ORB descriptors within this Hamming distance (of 256 bits) count as a vote in the candidate search.
VOTE_DISTANCE = 64
#: Indexed neighbours each query descriptor looks at in the candidate search.
VOTE_NEIGHBOURS = 16
#: A query descriptor votes for the images among its neighbours within this many bits of its nearest one,
#: and its one vote is split evenly between them. Why: pictures from one template (an icon theme's folders,
#: one clip-art set) share most descriptors, so a plain count lets a dozen siblings outvote the copied
#: picture on the parts they share; split, a shared descriptor adds little to any of them and the
#: descriptors only the original has decide. Measured on 2,880 copies in 9 families (bench/RESULTS.md,
#: "Candidate search"): the original among the 4 candidates 0.790 -> 0.829 (graphics 0.676 -> 0.715,
#: photos 0.904 -> 0.943); margins 4-12 bits and 8-64 neighbours were within 0.01 of one another.
VOTE_MARGIN = 8
#: False: every image among a descriptor's neighbours gets a whole vote (the search before the split; with
#: 4 neighbours and a 64-bit margin it is exactly that search, which ``bench/localfeat_focus.py`` compares).
VOTE_SPLIT = True
#: From this many indexed descriptors (~10,000 images) a query searches only the ``LARGE_PER_QUERY``
#: strongest (grid-spread) descriptors of each of its feature sets, in ``LARGE_NPROBE`` IVF lists. Why: the
#: search grows with the index (``bench/localfeat_speed.py`` side by side, 100k images: 425 ms per check
#: with every query descriptor in 16 lists, 275 ms with 250 in 8; goal 300 ms), and the strongest
#: descriptors find the image as often: candidates 33/40 vs 32/40 there, and over 3,040 real copies in 19
#: families local recall 0.691 / 0.554 (mild / strong) vs 0.691 / 0.550 with every descriptor
#: (bench/RESULTS.md).
LARGE_FROM = 2_500_000
LARGE_PER_QUERY = 250
LARGE_NPROBE = 8
_MAGIC = b"PLF1"


@dataclass
class Features:
    """ORB keypoints and descriptors of one image.

    ``points`` are (x, y) in the original image's pixel coordinates, float32 (n, 2); ``descriptors`` uint8
    (n, 32). When ``mirrored`` is true the descriptors were computed on the left-right mirror image but
    ``points`` are still in the *unmirrored* image's coordinates, so a homography fitted to them has a
    negative determinant for a mirrored copy.
    """

    points: np.ndarray
    descriptors: np.ndarray
    width: int
    height: int
    mirrored: bool = False
    #: Extraction scale: working pixels per original pixel.
    scale: float = 1.0
    #: A small greyscale copy of the whole (unmirrored) image, uint8 (h, w): lets verification compare the
    #: overlapping region pixel by pixel, which keypoints cannot do where the pictures are flat.
    thumb: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.points)

    def to_bytes(self) -> bytes:
        """A compact, pickle-free serialisation: header, int16-rounded coordinates (x8), descriptors."""
        n = len(self.points)
        # Coordinates stored as fixed point (1/8 pixel) uint16 keep 2 bytes each and sub-pixel accuracy
        # for images up to 8191 px, far beyond the sizes content loading decodes to.
        pts = np.clip(np.round(self.points * 8), 0, 65535).astype("<u2")
        head = struct.pack("<4sBBHHHf", _MAGIC, VERSION, int(self.mirrored), n, self.width, self.height,
                           self.scale)
        th = np.zeros((0, 0), np.uint8) if self.thumb is None else np.ascontiguousarray(self.thumb, np.uint8)
        return (head + pts.tobytes() + np.ascontiguousarray(self.descriptors, dtype=np.uint8).tobytes()
                + struct.pack("<HH", *th.shape) + th.tobytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> Features:
        """Inverse of :meth:`to_bytes`; raises ``ValueError`` on bytes of another kind or version."""
        size = struct.calcsize("<4sBBHHHf")
        if len(data) < size:
            raise ValueError("local features: truncated bytes")
        magic, version, mirrored, n, w, h, scale = struct.unpack_from("<4sBBHHHf", data)
        if magic != _MAGIC or version != VERSION:
            raise ValueError(f"local features: not version {VERSION} feature bytes (magic {magic!r} v{version})")
        off = size + n * 36
        if len(data) < off + 4:
            raise ValueError("local features: length does not match the keypoint count")
        th, tw = struct.unpack_from("<HH", data, off)
        if len(data) != off + 4 + th * tw:
            raise ValueError("local features: length does not match the keypoint count and thumbnail")
        pts = np.frombuffer(data, dtype="<u2", count=2 * n, offset=size).astype(np.float32).reshape(n, 2) / 8
        desc = np.frombuffer(data, dtype=np.uint8, count=32 * n, offset=size + 4 * n).reshape(n, 32).copy()
        thumb = np.frombuffer(data, np.uint8, th * tw, off + 4).reshape(th, tw).copy() if th * tw else None
        return cls(pts, desc, w, h, bool(mirrored), float(scale), thumb)


def _gray_work(img: Image.Image, mirrored: bool) -> tuple[np.ndarray, float]:
    """Greyscale at ``WORK_SIDE`` on the long side, and the scale from original to working pixels."""
    gray = img.convert("L")
    if mirrored:
        gray = ImageOps.mirror(gray)
    w, h = gray.size
    s = WORK_SIDE / max(w, h)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    if size != (w, h):
        # Upscaling small images (icons, thumbnails) matters: ORB's FAST detector and 31-px patches find
        # nothing on a 64-px icon.
        gray = gray.resize(size, Image.Resampling.BICUBIC if s > 1 else Image.Resampling.BOX)
    return np.asarray(gray, dtype=np.uint8), s


def _select(kps: list, n_max: int, width: int, height: int) -> list[int]:
    """Indices of at most ``n_max`` keypoints: the strongest per grid cell first, then the strongest left.

    Spreading the budget over a grid keeps a crop or an overlay from removing most of an image's
    keypoints at once.
    """
    if len(kps) <= n_max:
        return list(range(len(kps)))
    resp = np.array([k.response for k in kps], dtype=np.float32)
    xy = np.array([k.pt for k in kps], dtype=np.float32)
    cx = np.minimum((xy[:, 0] * GRID / max(width, 1)).astype(int), GRID - 1)
    cy = np.minimum((xy[:, 1] * GRID / max(height, 1)).astype(int), GRID - 1)
    cell = cy * GRID + cx
    order = np.argsort(-resp, kind="stable")
    quota = n_max // (2 * GRID * GRID)  # half the budget spread evenly, half to the strongest overall
    taken: list[int] = []
    used = np.zeros(GRID * GRID, dtype=int)
    chosen = np.zeros(len(kps), dtype=bool)
    for i in order:
        if used[cell[i]] < quota:
            used[cell[i]] += 1
            chosen[i] = True
            taken.append(int(i))
    for i in order:
        if len(taken) >= n_max:
            break
        if not chosen[i]:
            taken.append(int(i))
    return taken[:n_max]


def _thumb(img: Image.Image, side: int) -> np.ndarray:
    g = img.convert("L")
    f = side / max(g.size)
    return np.asarray(g.resize((max(1, round(g.width * f)), max(1, round(g.height * f))), Image.Resampling.BOX),
                      dtype=np.uint8)


def _shrink(thumb: np.ndarray, side: int) -> np.ndarray:
    """``thumb`` reduced (box filter) to ``side`` pixels on its long side; as it is when not longer."""
    return thumb if max(thumb.shape) <= side else _thumb(Image.fromarray(thumb), side)


def for_index(features: Features) -> Features:
    """``features`` as an index stores them: with the thumbnail at ``THUMB_SIDE`` (a query's is larger;
    the pixel check was calibrated on ``THUMB_SIDE`` references, and it keeps a stored image to ~20 KB)."""
    if features.thumb is None:
        return features
    return dataclasses.replace(features, thumb=_shrink(features.thumb, THUMB_SIDE))


def extract(img: Image.Image, mirrored: bool = False, max_keypoints: int = MAX_KEYPOINTS,
            thumb_side: int = THUMB_SIDE) -> Features:
    """ORB features of ``img`` (or of its left-right mirror image when ``mirrored``).

    At most ``max_keypoints`` keypoints, spread over a 4x4 grid; coordinates in ``img``'s own pixels.
    A flat image yields few or no keypoints (``len(features) == 0`` is possible, not an error).
    ``thumb_side``: long side of the stored greyscale thumbnail (0: none).
    """
    import cv2
    if max_keypoints < 1:
        raise ValueError(f"max_keypoints must be >= 1, got {max_keypoints}")
    gray, s = _gray_work(img, mirrored)
    h, w = gray.shape
    # A low FAST threshold so low-contrast graphics still give keypoints; the grid/response selection
    # below then keeps the count bounded. Pad so corners near the border get a full patch.
    pad = 16
    padded = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    # ORB_create is missing from OpenCV's type stubs.
    orb = cv2.ORB_create(nfeatures=max_keypoints * 3, scaleFactor=1.2,  # type: ignore[attr-defined]
                         nlevels=8, edgeThreshold=15, patchSize=31, fastThreshold=10)
    kps, desc = orb.detectAndCompute(padded, None)
    if desc is None or not kps:
        return Features(np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8), img.width, img.height,
                        mirrored, s, _thumb(img, thumb_side) if thumb_side else None)
    keep = _select(kps, max_keypoints, w + 2 * pad, h + 2 * pad)
    xy = np.array([kps[i].pt for i in keep], dtype=np.float32) - pad
    xy = np.clip(xy, 0, [w - 1, h - 1])
    if mirrored:
        xy[:, 0] = (w - 1) - xy[:, 0]  # back to the unmirrored image's coordinates
    pts = xy / s
    return Features(pts.astype(np.float32), desc[keep].astype(np.uint8), img.width, img.height, mirrored, s,
                    _thumb(img, thumb_side) if thumb_side else None)


def extract_query(img: Image.Image, max_keypoints: int = MAX_KEYPOINTS) -> tuple[Features, Features]:
    """The two extractions a query is searched with: as it is, and mirrored (ORB is not mirror-invariant).

    The query's thumbnail is larger than an indexed one: the indexed picture may fill only a part of the
    query (a screenshot, a collage), and that part must still cover the reference's thumbnail grid.
    """
    plain = extract(img, False, max_keypoints, QUERY_THUMB_SIDE)
    mirrored = extract(img, True, max_keypoints, 0)
    mirrored.thumb = plain.thumb  # thumbnails are of the unmirrored image either way
    return plain, mirrored


# ---------------------------------------------------------------------------------------------------
# Candidate search


class DescriptorIndex:
    """Descriptors of many images in a FAISS binary index; candidates by descriptor votes.

    Flat (exact) while small; from ``ivf_from`` descriptors on it is rebuilt as a binary IVF index whose
    query cost grows with ``nprobe`` lists rather than with the number of images, and trained again on all
    its codes each time it has grown ``RETRAIN_GROWTH``-fold, so lists stay ~``sqrt(n)`` long. Row ``i`` of the index
    is descriptor ``i``; ``image_ids[i]`` is the image it came from. Removing an image is the caller's
    business (filter ``candidates`` by the catalog's removed flag; rebuild from the catalog to compact).
    """

    def __init__(self, ivf_from: int = IVF_FROM, nprobe: int = 16, per_image: int = INDEX_PER_IMAGE) -> None:
        import faiss
        if per_image < 1:
            raise ValueError(f"per_image must be >= 1, got {per_image}")
        self._faiss = faiss
        self.ivf_from = ivf_from
        self.nprobe = nprobe
        #: Descriptors of an image that go into the index (the first ones: the grid-spread strongest).
        #: Verification still uses all the stored ones; the index only has to *find* the image.
        self.per_image = per_image
        self.index: Any = faiss.IndexBinaryFlat(256)
        self._ids: list[np.ndarray] = []
        self._image_ids: np.ndarray | None = None
        self._pending: list[np.ndarray] = []  # descriptors kept until the IVF index is trained
        self.trained_on = 0  # descriptors the IVF lists were trained on (0 while flat)

    @property
    def kind(self) -> str:
        return "ivf" if isinstance(self.index, self._faiss.IndexBinaryIVF) else "flat"

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @property
    def image_ids(self) -> np.ndarray:
        if self._image_ids is None or len(self._image_ids) != self.ntotal:
            self._image_ids = np.concatenate(self._ids) if self._ids else np.zeros(0, np.int64)
            self._ids = [self._image_ids]
        return self._image_ids

    def add(self, image_id: int, features: Features) -> None:
        """Add the descriptors of one image (``image_id`` is the caller's id, e.g. a catalog row)."""
        if len(features) == 0:
            return
        desc = np.ascontiguousarray(features.descriptors[:self.per_image], dtype=np.uint8)
        self.index.add(desc)
        self._ids.append(np.full(len(desc), image_id, dtype=np.int64))
        if self.kind == "flat":
            self._pending.append(desc)
        self.settle()

    def settle(self) -> bool:
        """Switch to IVF, or train the IVF lists again, where the index's size calls for it (``ivf_from``,
        ``RETRAIN_GROWTH``). True when the index changed (a snapshot of it is then out of date)."""
        if self.kind == "flat":
            if self.ntotal < self.ivf_from or not self._pending:
                return False
            self._to_ivf(np.concatenate(self._pending))
        elif self.ntotal >= RETRAIN_GROWTH * self.trained_on:
            self._to_ivf(self._ivf_codes())
        else:
            return False
        return True

    def _ivf_codes(self) -> np.ndarray:
        """Every code of the IVF index in row order, read from its inverted lists (whose ids are the rows)."""
        faiss, inv = self._faiss, self.index.invlists
        out = np.empty((self.ntotal, 32), dtype=np.uint8)
        for lst in range(inv.nlist):
            n = inv.list_size(lst)
            if n:
                rows = faiss.rev_swig_ptr(inv.get_ids(lst), n)
                out[rows] = faiss.rev_swig_ptr(inv.get_codes(lst), n * 32).reshape(n, 32)
        return out

    def _to_ivf(self, allc: np.ndarray) -> None:
        """Rebuild as binary IVF over ``allc`` (every code, row order): nlist ~ 2 sqrt(n), trained on a
        sample of them."""
        faiss = self._faiss
        # Training is k-means in float space (FAISS binary IVF): bounded lists and iterations keep it to
        # seconds; the lists only have to be roughly balanced, not optimal.
        nlist = int(min(16384, max(256, 2 * np.sqrt(len(allc)))))
        quantizer = faiss.IndexBinaryFlat(256)
        ivf = faiss.IndexBinaryIVF(quantizer, 256, nlist)
        ivf.cp.niter = 6
        rng = np.random.default_rng(0)
        sample = allc[rng.choice(len(allc), size=min(len(allc), 16 * nlist), replace=False)]
        with one_thread():
            ivf.train(sample)
            ivf.add(allc)
        ivf.nprobe = self.nprobe
        ivf.own_fields = True
        quantizer.this.disown()
        self.index = ivf
        self._pending = []
        self.trained_on = len(allc)

    def candidates(self, query: Features | tuple[Features, ...], k_images: int = 8,
                   k_neighbours: int | None = None, max_distance: int = VOTE_DISTANCE,
                   per_query: int | None = None, margin: int | None = None,
                   nprobe: int | None = None) -> list[tuple[int, float]]:
        """The ``k_images`` images with the most votes, as ``(image_id, votes)``, most votes first.

        Each query descriptor has one vote, split evenly between the images among its ``k_neighbours``
        nearest indexed descriptors (``VOTE_NEIGHBOURS``) that lie within ``max_distance`` bits and within
        ``margin`` bits of its nearest one (``VOTE_MARGIN``; see there why). Several feature sets (the
        plain and mirrored query) vote separately and an image keeps the larger total. ``per_query`` limits
        the descriptors of each feature set that are searched (the first ones: grid-spread strongest) and
        ``nprobe`` the IVF lists searched, trading recall for time; by default both follow the index's size
        (``LARGE_FROM``).
        """
        k = VOTE_NEIGHBOURS if k_neighbours is None else k_neighbours
        margin = VOTE_MARGIN if margin is None else margin
        large = self.ntotal >= LARGE_FROM
        if per_query is None and large:
            per_query = LARGE_PER_QUERY
        if self.kind == "ivf":
            self.index.nprobe = nprobe or (LARGE_NPROBE if large else self.nprobe)
        queries = query if isinstance(query, tuple) else (query,)
        best: dict[int, float] = {}
        for q in queries:
            if len(q) == 0 or self.ntotal == 0:
                continue
            with one_thread():
                dist, rows = self.index.search(np.ascontiguousarray(q.descriptors[:per_query]), k)
            ok = (rows >= 0) & (dist <= max_distance) & (dist <= dist[:, :1] + margin)
            img = np.where(ok, self.image_ids[np.where(rows >= 0, rows, 0)], -1)
            # One (query descriptor, image) pair per image, however many of its neighbours that image
            # holds; pairs as one int64 key each (a 1-D unique is much cheaper than a row-wise one).
            hit = img >= 0
            if not hit.any():
                continue
            ids, code = np.unique(img[hit], return_inverse=True)
            desc_no = np.nonzero(hit)[0].astype(np.int64)
            keys = np.unique(desc_no * len(ids) + code.ravel())
            owner, image = keys // len(ids), keys % len(ids)
            share = 1.0 / np.bincount(owner)[owner] if VOTE_SPLIT else np.ones(len(keys))
            votes = np.bincount(image, weights=share, minlength=len(ids))
            for i, v in zip(ids.tolist(), votes.tolist()):
                best[i] = max(best.get(i, 0.0), v)
        return sorted(best.items(), key=lambda t: (-t[1], t[0]))[:k_images]

    def to_bytes(self) -> bytes:
        """FAISS's own serialisation of the index plus the id map; no pickle."""
        faiss = self._faiss
        blob = faiss.serialize_index_binary(self.index).tobytes()
        ids = self.image_ids.astype("<i8").tobytes()
        # While flat, the descriptors kept for IVF training are exactly the flat index's codes: they are
        # not written twice (half the bytes to read, hash and copy when a snapshot is loaded).
        shared = self.kind == "flat" and sum(len(p) for p in self._pending) == self.ntotal
        pending = np.concatenate(self._pending).tobytes() if self._pending and not shared else b""
        meta = json.dumps({"version": VERSION, "ivf_from": self.ivf_from, "trained_on": self.trained_on,
                           "nprobe": self.nprobe,
                           "per_image": self.per_image, "pending_from_index": shared,
                           "n_ids": self.ntotal, "n_pending": len(pending) // 32, "n_index": len(blob)}).encode()
        return _MAGIC + struct.pack("<I", len(meta)) + meta + ids + pending + blob

    @classmethod
    def from_bytes(cls, data: bytes | memoryview) -> DescriptorIndex:
        """Read :meth:`to_bytes`'s output (a memoryview is read without copying it first)."""
        if bytes(data[:4]) != _MAGIC:
            raise ValueError("descriptor index: not descriptor-index bytes")
        (n_meta,) = struct.unpack_from("<I", data, 4)
        meta = json.loads(bytes(data[8:8 + n_meta]))
        if meta.get("version") != VERSION:
            raise ValueError(f"descriptor index: version {meta.get('version')}, expected {VERSION}; rebuild it")
        # min(): snapshots written while IVF started at a million descriptors switch at today's bound
        # (the caller's ``settle()``).
        out = cls(ivf_from=min(meta["ivf_from"], IVF_FROM), nprobe=meta["nprobe"], per_image=meta["per_image"])
        off = 8 + n_meta
        ids = np.frombuffer(data, dtype="<i8", count=meta["n_ids"], offset=off).astype(np.int64)
        off += 8 * meta["n_ids"]
        if meta["n_pending"]:
            out._pending = [np.frombuffer(data, np.uint8, 32 * meta["n_pending"], off).reshape(-1, 32).copy()]
        off += 32 * meta["n_pending"]
        blob = np.frombuffer(data, dtype=np.uint8, count=meta["n_index"], offset=off)
        out.index = out._faiss.deserialize_index_binary(blob.copy())
        if isinstance(out.index, out._faiss.IndexBinaryIVF):
            out.index.nprobe = out.nprobe
        if meta.get("pending_from_index") and out.kind == "flat" and out.ntotal:
            codes = out._faiss.vector_to_array(out._faiss.downcast_IndexBinary(out.index).xb)
            out._pending = [codes.reshape(-1, 32)]
        out._ids = [ids]
        out._image_ids = ids
        if out.kind == "ivf":
            out.trained_on = int(meta.get("trained_on") or out.ntotal)
        return out


# ---------------------------------------------------------------------------------------------------
# Geometric verification

#: Lowe's ratio test for binary descriptors (best / second-best distance).
RATIO = 0.85
#: Fewer MAGSAC inliers than this: no verified match.
MIN_INLIERS = 10
#: Allowed scale change between the two images (per side, in working pixels).
SCALE_RANGE = (1 / 6, 6.0)
#: Largest ratio of the affine part's singular values (shear / anisotropic stretch).
MAX_ANISOTROPY = 3.0
#: Pixel radius (in the query's working pixels) within which a projected reference keypoint must land on
#: a query keypoint with a similar descriptor to count as agreeing.
AGREE_RADIUS = 6.0
AGREE_DISTANCE = 80
#: The default decision on ``Verification.score``: ``bench/localfeat_eval.py``'s calibration for <= 0.5 %
#: false matches on non-indexed photos and same-frame composites (halves: 0.993 / 0.989; all: 0.993; 300
#: photos + 60 composites, so 0.5 % is ~2 pictures: a coarse estimate). Sibling icons that differ by a small
#: emblem still pass it (5 % of them); see bench/RESULTS.md.
SCORE_THRESHOLD = 0.993
#: Pixel comparison: tolerances (|z-score difference| per thumbnail pixel) recorded for calibration, and
#: the one the score uses.
PHOTO_TOLERANCES = (0.7, 1.0, 1.5)
PHOTO_TOLERANCE = 1.0
#: Fill left by a crop that was then rotated (or put in perspective) inside its own frame is not compared
#: (``_fill_mask``): at most this share of the overlap (0 turns the exclusion off), where the query is flat
#: within ``FILL_FLATNESS`` grey levels (JPEG ringing included).
MAX_FILL_SHARE = 0.45
FILL_FLATNESS = 12.0
#: ... and only when the query's frame is turned at least this much (degrees) against the reference.
MIN_FILL_TILT = 1.0
#: ``partial`` (only a region of one picture appears in the other) when the verified overlap covers less
#: than ``PARTIAL_QUERY_COVERAGE`` of the query (the indexed picture is one part of the draft: a collage,
#: a screenshot of a post among its UI) or less than ``PARTIAL_COVERAGE`` of the indexed picture (a small
#: crop of it). Geometric shares of the frames, not of agreeing pixels: an overlay on a whole copy must
#: not make it partial. Measured in bench/partial_eval.py (bench/RESULTS.md, "Partial matches"):
#: rotations with an expanded canvas keep >= 0.6 of the query, crops that keep >= 60 % stay above 0.5.
PARTIAL_QUERY_COVERAGE = 0.5
PARTIAL_COVERAGE = 0.3


@dataclass
class Verification:
    """A geometrically verified correspondence between a query and an indexed (reference) image.

    ``homography`` maps reference pixels to query pixels (3x3, row-major). Polygons are lists of (x, y)
    in each image's own pixel coordinates: ``query_polygon`` / ``reference_polygon`` are the region where
    the two frames overlap under the transform (the same region in both); the ``matched_*`` ones the hull
    of the keypoints that support the match. ``level`` is ``partial`` when the overlap is less than
    ``PARTIAL_QUERY_COVERAGE`` of the query or less than ``PARTIAL_COVERAGE`` of the reference (only a
    region of one picture appears in the other); a passing match reports it as its verdict.
    """

    inliers: int
    matches: int
    homography: list[list[float]]
    query_polygon: list[tuple[float, float]]
    reference_polygon: list[tuple[float, float]]
    #: Share of each image's area inside the other image's frame under the transform (the overlap).
    query_coverage: float
    reference_coverage: float
    scale: float
    rotation_degrees: float
    mirrored: bool
    #: Share of the reference keypoints inside the region whose projection finds an agreeing query keypoint.
    agreement: float
    #: Share of the region's 3x3 cells (with enough keypoints) that agree (>= half the cell's average).
    cells_agreeing: float
    score: float
    #: Share of the reference's keypoint hull covered by the hull of the matched keypoints. Small when only
    #: a part appears, but also for low-texture photos whose keypoints bunch on a logo (so not the level).
    content_coverage: float = 1.0
    #: The hull of the matched keypoints (inliers + agreeing) in both images: where the evidence lies.
    matched_query_polygon: list[tuple[float, float]] = field(default_factory=list)
    matched_reference_polygon: list[tuple[float, float]] = field(default_factory=list)
    level: str = "near-duplicate"
    details: dict[str, float] = field(default_factory=dict)
    #: ``(width, height)`` of the images the polygons' coordinates refer to (the decoded, EXIF-upright
    #: images the features were extracted from), so a report can scale them onto a thumbnail.
    query_size: tuple[int, int] = (0, 0)
    reference_size: tuple[int, int] = (0, 0)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["query_polygon"] = [[round(x, 1), round(y, 1)] for x, y in self.query_polygon]
        d["reference_polygon"] = [[round(x, 1), round(y, 1)] for x, y in self.reference_polygon]
        for k in ("matched_query_polygon", "matched_reference_polygon"):
            d[k] = [[round(x, 1), round(y, 1)] for x, y in getattr(self, k)]
        d["homography"] = [[round(v, 6) for v in row] for row in self.homography]
        d["query_size"], d["reference_size"] = list(self.query_size), list(self.reference_size)
        return d


def _work(points: np.ndarray, f: Features) -> np.ndarray:
    return points * f.scale


def _polygon_area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def _is_convex(quad: np.ndarray) -> bool:
    cross = []
    for i in range(4):
        a, b, c = quad[i], quad[(i + 1) % 4], quad[(i + 2) % 4]
        cross.append((b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0]))
    return all(c > 0 for c in cross) or all(c < 0 for c in cross)


_POPCOUNT = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(1).astype(np.uint16)


def _inside_convex(pts: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Which of ``pts`` lie inside (or on) the convex polygon ``poly`` (either orientation)."""
    edge = np.roll(poly, -1, axis=0) - poly
    rel = pts[:, None, :] - poly[None, :, :]
    cross = edge[None, :, 0] * rel[:, :, 1] - edge[None, :, 1] * rel[:, :, 0]
    return (cross >= -1e-6).all(1) | (cross <= 1e-6).all(1)


def _project(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = np.c_[pts, np.ones(len(pts))] @ h.T
    w = p[:, 2:3]
    w = np.where(np.abs(w) < 1e-9, 1e-9, w)
    return p[:, :2] / w


def _rect(w: float, h: float) -> np.ndarray:
    return np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)


def verify(query: Features, reference: Features, min_inliers: int = MIN_INLIERS) -> Verification | None:
    """Match ``query`` against ``reference``: ratio test, MAGSAC homography, sanity checks, region.

    Returns ``None`` when there is no plausible geometric correspondence: too few ratio-test matches or
    inliers, a degenerate or implausible transform (scale outside ``SCALE_RANGE``, strong shear, a
    projected quad that is not convex, a determinant whose sign disagrees with ``query.mirrored``).
    The caller compares ``score`` with ``SCORE_THRESHOLD``.
    """
    import cv2
    if len(query) < min_inliers or len(reference) < min_inliers:
        return None
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    knn = matcher.knnMatch(query.descriptors, reference.descriptors, k=2)
    good = [m[0] for m in knn if len(m) == 2 and m[0].distance < RATIO * m[1].distance and m[0].distance <= 80]
    if len(good) < min_inliers:
        return None
    # Fit in working pixels (both images at WORK_SIDE) so the reprojection threshold means the same
    # thing for a 64-px icon and a 4,000-px photo.
    q_pts = _work(query.points[[m.queryIdx for m in good]], query).astype(np.float64)
    r_pts = _work(reference.points[[m.trainIdx for m in good]], reference).astype(np.float64)
    qw, qh = query.width * query.scale, query.height * query.scale
    # USAC's sample checks reject orientation-reversing models, so a mirrored query is fitted in its
    # mirrored frame (where the copy is an ordinary homography) and the mirror composed on afterwards.
    flip = np.array([[-1.0, 0.0, round(qw) - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) if query.mirrored \
        else np.eye(3)
    q_fit = _project(flip, q_pts) if query.mirrored else q_pts
    h_fit, mask = cv2.findHomography(r_pts, q_fit, cv2.USAC_MAGSAC, 5.0, maxIters=2000, confidence=0.999)
    if h_fit is None or mask is None:
        return None
    inl = mask.ravel().astype(bool)
    n_in = int(inl.sum())
    if n_in < min_inliers:
        return None
    h_fit = h_fit / h_fit[2, 2]
    a = h_fit[:2, :2]
    det = float(np.linalg.det(a))
    if det <= 0:
        return None  # a reflection inside the fitted frame is a degenerate fit, not a copy
    sv = np.linalg.svd(a, compute_uv=False)
    scale = float(np.sqrt(det))
    if not (SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]) or sv[0] / max(sv[1], 1e-9) > MAX_ANISOTROPY:
        return None
    rw, rh = reference.width * reference.scale, reference.height * reference.scale
    if not _is_convex(_project(h_fit, _rect(rw, rh))):
        return None
    h_work = flip @ h_fit
    h_work = h_work / h_work[2, 2]
    ref_quad_in_q = _project(h_work, _rect(rw, rh))
    # The matched region: the reference's frame projected into the query, clipped to the query's frame.
    area, inter = cv2.intersectConvexConvex(ref_quad_in_q.astype(np.float32), _rect(qw, qh).astype(np.float32))
    if inter is None or area <= 0:
        return None
    q_poly_w = inter.reshape(-1, 2).astype(np.float64)
    try:
        h_inv = np.linalg.inv(h_work)
    except np.linalg.LinAlgError:
        return None
    r_poly_w = _project(h_inv, q_poly_w)
    q_cov = float(area / (qw * qh))
    r_cov = float(min(1.0, _polygon_area(r_poly_w) / (rw * rh)))

    agreement, cells, agreeing = _agreement(query, reference, h_work, r_poly_w)
    # What was matched: the hull of the inliers and of the reference keypoints that agree, in reference
    # pixels, and its image in the query. Tighter than the frame overlap (a crop pasted into a collage
    # covers one cell of the collage, not everything the reference frame would).
    r_all = _work(reference.points, reference).astype(np.float64)
    matched = np.vstack([r_pts[inl], r_all[agreeing]]) if agreeing.any() else r_pts[inl]
    m_hull = cv2.convexHull(matched.astype(np.float32).reshape(-1, 1, 2)).reshape(-1, 2).astype(np.float64)
    all_hull = cv2.convexHull(r_all.astype(np.float32).reshape(-1, 1, 2)).reshape(-1, 2).astype(np.float64)
    content_cov = float(min(1.0, _polygon_area(m_hull) / max(_polygon_area(all_hull), 1e-9)))
    q_hull = _project(h_work, m_hull)
    # Inlier spread: the inliers' hull against the region (reference side); a part shared by two
    # pictures puts all inliers in one corner of a large region.
    hull = cv2.convexHull(r_pts[inl].astype(np.float32).reshape(-1, 1, 2)).reshape(-1, 2)
    spread = float(min(1.0, _polygon_area(hull.astype(np.float64)) / max(_polygon_area(r_poly_w), 1e-9)))
    # Score: agreement inside the region, damped when few inliers back it (a chance fit of 10 points
    # is not 10 points' worth of evidence).
    support = min(1.0, n_in / 40.0)
    score = float(agreement * cells * (0.5 + 0.5 * support))
    # Rotation of the fitted (unmirrored) transform: what turned the reference into the query, after
    # the mirror when there is one.
    rot = float(np.degrees(np.arctan2(a[1, 0], a[0, 0])))

    # Back to original pixels: H_orig = S_q^-1 H_work S_r.
    s_q = np.diag([query.scale, query.scale, 1.0])
    s_r = np.diag([reference.scale, reference.scale, 1.0])
    h_orig = np.linalg.inv(s_q) @ h_work @ s_r
    h_orig = h_orig / h_orig[2, 2]
    photo = _photometric(query, reference, h_orig, m_hull / reference.scale)
    if photo is not None:
        # Pixels decide where they can: the share of pixels that agree, inside the keypoints' hull and
        # over the whole overlap, whichever is lower. The hull alone can be a small plain patch two
        # photos share (a wall, a label); the overlap alone includes a collage's other cells.
        score = float(min(photo[PHOTO_TOLERANCE], photo["overlap"]) * (0.75 + 0.25 * support))
    return Verification(
        inliers=n_in, matches=len(good), homography=h_orig.tolist(),
        query_polygon=[(float(x), float(y)) for x, y in q_poly_w / query.scale],
        reference_polygon=[(float(x), float(y)) for x, y in r_poly_w / reference.scale],
        matched_query_polygon=[(float(x), float(y)) for x, y in q_hull / query.scale],
        matched_reference_polygon=[(float(x), float(y)) for x, y in m_hull / reference.scale],
        query_coverage=q_cov, reference_coverage=r_cov, scale=scale, rotation_degrees=rot,
        mirrored=query.mirrored, agreement=agreement, cells_agreeing=cells, score=score,
        content_coverage=content_cov,
        query_size=(query.width, query.height), reference_size=(reference.width, reference.height),
        level="partial" if q_cov < PARTIAL_QUERY_COVERAGE or r_cov < PARTIAL_COVERAGE else "near-duplicate",
        details={**({} if photo is None else {f"photo@{k}": v for k, v in photo.items()}),
                 "keypoint_score": float(agreement * cells * (0.5 + 0.5 * support)), "spread": spread,
                 "det": det * (-1 if query.mirrored else 1), "anisotropy": float(sv[0] / max(sv[1], 1e-9))},
    )


def _agreement(query: Features, reference: Features, h_work: np.ndarray,
               r_poly_w: np.ndarray) -> tuple[float, float, np.ndarray]:
    """How much of the matched region agrees beyond the inliers (see the module docstring).

    Every reference keypoint inside the region is projected into the query; it agrees when some query
    keypoint within ``AGREE_RADIUS`` working pixels has a descriptor within ``AGREE_DISTANCE`` bits.
    Returns (share of agreeing keypoints, share of 3x3 region cells whose agreement is at least half the
    overall one, mask of the agreeing reference keypoints). Cells with fewer than 3 keypoints are not
    counted either way (flat areas say nothing).
    """
    r_w = _work(reference.points, reference).astype(np.float64)
    inside = _inside_convex(r_w, r_poly_w)
    agreeing_mask = np.zeros(len(r_w), dtype=bool)
    if inside.sum() < 3:
        return 0.0, 0.0, agreeing_mask
    idx = np.flatnonzero(inside)
    proj = _project(h_work, r_w[idx])
    q_w = _work(query.points, query).astype(np.float64)
    # All pairs within the radius (at most 500 x 500 distances: cheaper in numpy than a tree in Python).
    d2 = ((proj[:, None, :] - q_w[None, :, :]) ** 2).sum(-1)
    ri, qi = np.nonzero(d2 <= AGREE_RADIUS ** 2)
    ok = np.zeros(len(idx), dtype=bool)
    if len(ri):
        ham = _POPCOUNT[np.bitwise_xor(reference.descriptors[idx[ri]], query.descriptors[qi])].sum(1)
        ok[np.unique(ri[ham <= AGREE_DISTANCE])] = True
    share = float(ok.mean())
    # Cells over the region's bounding box in reference coordinates.
    pts = r_w[idx]
    x0, y0 = pts.min(0)
    x1, y1 = pts.max(0)
    cx = np.minimum(((pts[:, 0] - x0) / max(x1 - x0, 1e-9) * 3).astype(int), 2)
    cy = np.minimum(((pts[:, 1] - y0) / max(y1 - y0, 1e-9) * 3).astype(int), 2)
    counted = agreeing = 0
    for c in range(9):
        m = (cy * 3 + cx) == c
        if m.sum() < 3:
            continue
        counted += 1
        agreeing += int(ok[m].mean() >= 0.5 * share)
    agreeing_mask[idx[ok]] = True
    return share, (agreeing / counted if counted else 0.0), agreeing_mask


def _photometric(query: Features, reference: Features, h_orig: np.ndarray,
                 hull: np.ndarray | None = None) -> dict[str | float, float] | None:
    """Pixel agreement of the overlap: the query's thumbnail warped onto the reference's, both normalised
    (zero mean, unit variance over the overlap, so brightness/contrast/greyscale edits do not count) and
    lightly blurred (resampling, JPEG). Returns, for each tolerance in ``PHOTO_TOLERANCES`` (z units), the
    share of the overlap's pixels within it (and ``"valid"``: the share of the reference thumbnail inside
    the overlap), or ``None`` when either side has no thumbnail or the overlap is too small to judge.
    """
    import cv2
    rt, qt = reference.thumb, query.thumb
    if rt is None or qt is None or rt.size == 0 or qt.size == 0:
        return None
    # Indexes written before ``for_index`` existed stored the query-sized thumbnail: judged on that finer
    # grid, the tolerances below (one pixel of misregistration, the fill's 2-px rim) mean something else.
    rt = _shrink(rt, THUMB_SIDE)
    rh, rw = rt.shape
    qh, qw = qt.shape
    d_r = np.diag([rw / reference.width, rh / reference.height, 1.0])
    d_q = np.diag([qw / query.width, qh / query.height, 1.0])
    m = d_q @ h_orig @ np.linalg.inv(d_r)  # reference thumbnail pixels -> query thumbnail pixels
    s = float(np.sqrt(abs(np.linalg.det(m[:2, :2]) / m[2, 2] ** 2)))
    src: Any = qt.astype(np.float32)
    if s > 1.5:  # the query is finer than the reference grid: low-pass it first (no aliasing)
        src = cv2.GaussianBlur(src, (0, 0), 0.5 * s)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpPerspective(src, m, (rw, rh), flags=flags, borderValue=0)
    valid = cv2.warpPerspective(np.ones_like(src), m, (rw, rh), flags=flags, borderValue=0) > 0.99
    if valid.mean() < 0.05:
        return None
    fill = _fill_mask(warped, valid, _tilt_degrees(m, qw, qh))
    frame = valid  # the query's frame on the reference grid; what is compared leaves the fill out
    valid = valid & ~fill
    ref = cv2.GaussianBlur(rt.astype(np.float32), (0, 0), 1.0)
    warped = cv2.GaussianBlur(warped, (0, 0), 1.0)
    region = valid
    if hull is not None and len(hull) >= 3:
        # Judge the pixels where the keypoints say the pictures correspond (their hull, eroded by a pixel
        # because the fill of a rotation or the cut of a crop runs along its edges): a crop pasted into a
        # collage is compared with the crop, not with its neighbours.
        mask: Any = np.zeros((rh, rw), np.uint8)
        pts = np.round(hull * [rw / reference.width, rh / reference.height]).astype(np.int32)
        cv2.fillConvexPoly(mask, pts, 1)
        mask = cv2.erode(mask, np.ones((3, 3), np.uint8)) > 0
        if (mask & valid).sum() >= 0.02 * rh * rw:
            region = mask & valid

    def agree(where: np.ndarray) -> np.ndarray:
        # z-scores over ``where``; a floor on the spread keeps a flat picture's JPEG noise from being blown
        # up into differences. Returns |difference| on ``where``.
        a = (ref - ref[where].mean()) / max(float(ref[where].std()), 8.0)
        b = (warped - warped[where].mean()) / max(float(warped[where].std()), 8.0)
        # Tolerate a one-pixel misregistration (1.5 % of the side): a homography fitted to keypoints
        # is that far off near sharp edges after a rotation or a perspective change, and a different
        # glyph or emblem differs over more than one pixel.
        padded = cv2.copyMakeBorder(b, 1, 1, 1, 1, cv2.BORDER_REPLICATE)
        return np.min([np.abs(a - padded[1 + dy:1 + dy + rh, 1 + dx:1 + dx + rw])
                       for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0)

    diff = agree(region)
    # The share of the region whose pixels differ, at each tolerance: a copy differs only where an overlay
    # covers it; a sibling (another glyph in the same template) differs where the glyph is.
    out: dict[str | float, float] = {t: float(1.0 - (diff[region] > t).mean()) for t in PHOTO_TOLERANCES}
    out["valid"] = float(frame.mean())
    out["fill"] = float(fill.sum() / max(frame.sum(), 1))
    # How much of the reference appears in the query: overlap pixels that agree, over the whole thumbnail.
    out["matched"] = float((valid & (diff <= PHOTO_TOLERANCE)).mean())
    # Over the whole overlap, without its one-pixel rim (the crop cut, blended by resampling).
    inner = cv2.erode(valid.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    inner = inner if inner.sum() >= 0.02 * rh * rw else valid
    whole = agree(inner)[inner]
    out["overlap"] = float(1.0 - (whole > PHOTO_TOLERANCE).mean())
    return out


def _tilt_degrees(m: np.ndarray, qw: int, qh: int) -> float:
    """How far the query's frame edges are turned against the reference grid (0-45 degrees): the
    direction of the query's top edge mapped onto the grid by the inverse of ``m`` (reference grid ->
    query pixels)."""
    ends = _project(np.linalg.inv(m), np.array([[0.0, qh / 2], [float(qw), qh / 2]]))
    angle = float(np.degrees(np.arctan2(*(ends[1] - ends[0])[::-1]))) % 90.0
    return min(angle, 90.0 - angle)


def _fill_mask(warped: np.ndarray, valid: np.ndarray, tilt: float) -> np.ndarray:
    """Reference-grid pixels where the query shows the fill of a crop rotated inside its own frame.

    Such a copy (crop, then rotate or put in perspective with the canvas expanded) has flat corners over
    reference pixels the crop cut away, and they disagree with the reference over several per cent of the
    overlap. Comparing only inside the keypoints' hull lets flat-background look-alikes through (a flat
    query background and fill look alike to a pixel check), so the fill is recognised by its geometry
    instead. On the reference grid the crop is an axis-aligned rectangle; the fill beyond each of its
    sides is the part of the query's frame (``valid``) past a line parallel to the grid's edge, and:
    flat in the query (one colour, the same for every side); a triangle or trapezoid, because the
    query's frame crosses the grid at the rotation angle (a band of constant width, what a look-alike
    with a flat margin gives, is not fill); and ended by the crop's straight edge, where the query stops
    being the fill colour along most of the line (an icon's flat background ends at the glyph's outline
    instead). One side must show all of that (a strip at least two pixels deep); once it has, the other
    sides' flat strips of the same colour are fill too, whatever the picture next to them (a dark photo
    does not end black fill with a visible edge), and so is an outermost row blended towards that colour
    (a corner the grid clips to under a pixel). ``warped``: the query thumbnail on the reference
    grid, not blurred; ``tilt``: how far the query's frame is turned against the grid (degrees).
    Returns a boolean mask (all false when nothing qualifies), widened by two pixels across the cut
    because resampling blends the fill into the crop's edge.
    """
    fill = np.zeros_like(valid)
    sides = []
    for k in range(4):  # each side of the grid in turn, rotated to be the left one
        v, q = np.rot90(valid, k), np.rot90(warped, k)
        cut = 0
        for c in range(1, int(0.35 * v.shape[1])):
            strip = q[:, :c][v[:, :c]]
            if strip.size and float(strip.max() - strip.min()) > FILL_FLATNESS:
                break
            cut = c
        per_row = v[:, :cut].sum(1)
        edge = v[:, cut + 1:cut + 3].all(1)  # just past the cut (beyond the column resampling blends)
        if cut < 1 or per_row.sum() < 3 or not edge.any():
            if v[:, 0].sum() >= 3:  # a fill corner the grid clips to under a pixel: only its blend shows
                sides.append((k, 0, float(np.median(q[:, 0][v[:, 0]])), False))
            continue
        colour = float(np.median(q[:, :cut][v[:, :cut]]))
        crossed = float((np.abs(q[:, cut + 1:cut + 3][edge] - colour) > FILL_FLATNESS).all(1).mean())
        # Tapered: the frame's edge crosses the strip at an angle (the homography's, not a one-pixel step
        # of a frame that sits on the grid a fraction of a pixel off), so its rows hold fewer frame pixels
        # the further along the edge.
        rows = per_row[per_row > 0]
        tapered = tilt >= MIN_FILL_TILT and rows.sum() <= 0.9 * rows.max() * len(rows)
        sides.append((k, cut, colour, cut >= 2 and tapered and crossed >= 0.6))
    anchors = [colour for _, _, colour, strong in sides if strong]
    if not anchors:
        return fill
    for k, cut, colour, _ in sides:
        if abs(colour - anchors[0]) > (FILL_FLATNESS if cut else 2 * FILL_FLATNESS):
            continue  # one rotation fills every corner with one colour
        v = np.rot90(valid, k)
        strip_mask = np.zeros_like(v)
        strip_mask[:, :cut + 2] = v[:, :cut + 2]
        fill |= np.rot90(strip_mask, -k)
    if fill.sum() > MAX_FILL_SHARE * valid.sum():
        return np.zeros_like(valid)
    return fill


def verify_query(query: tuple[Features, Features], reference: Features) -> Verification | None:
    """Best of the plain and the mirrored query against one reference (highest score); the mirrored one is
    tried only when the plain one does not already reach ``SCORE_THRESHOLD``."""
    results = []
    for q in query:
        v = verify(q, reference)
        if v is not None:
            results.append(v)
            if v.score >= SCORE_THRESHOLD:
                break  # already a match; the mirrored fit can only agree (and costs as much again)
    return max(results, key=lambda v: v.score) if results else None


def verify_region(image: Image.Image, reference: Features, first: Verification) -> Verification | None:
    """Verify ``reference`` again against the region of the query ``image`` where ``first`` found it,
    extracted on its own; the result is in the whole query's pixels (polygons, homography, coverage).

    For a picture that is one part of a larger draft (a collage, a screenshot of a post): the draft's
    keypoint budget and working resolution are spread over all of it, so the part gets few keypoints and
    the match too few inliers to carry the score. The region alone is an ordinary query, held to the same
    threshold. ``None`` when the region is too small or does not verify.
    """
    w, h = image.size
    qp = np.asarray(first.query_polygon, dtype=np.float64)
    if len(qp) < 3:
        return None
    pad = 0.02 * max(w, h)
    x0, y0 = (int(max(0, np.floor(v - pad))) for v in qp.min(0))
    x1, y1 = int(min(w, np.ceil(qp[:, 0].max() + pad))), int(min(h, np.ceil(qp[:, 1].max() + pad)))
    if x1 - x0 < 32 or y1 - y0 < 32 or (x1 - x0) * (y1 - y0) >= 0.9 * w * h:
        return None  # too small to extract, or (nearly) the whole query again
    v = verify_query(extract_query(image.crop((x0, y0, x1, y1))), reference)
    if v is None:
        return None
    t = np.array([[1.0, 0.0, x0], [0.0, 1.0, y0], [0.0, 0.0, 1.0]])
    hom = t @ np.asarray(v.homography)
    q_poly = [(x + x0, y + y0) for x, y in v.query_polygon]
    q_cov = float(min(1.0, _polygon_area(np.asarray(q_poly)) / (w * h)))
    level = "partial" if q_cov < PARTIAL_QUERY_COVERAGE or v.reference_coverage < PARTIAL_COVERAGE \
        else "near-duplicate"
    return dataclasses.replace(
        v, homography=(hom / hom[2, 2]).tolist(), query_polygon=q_poly, query_coverage=q_cov, level=level,
        query_size=(w, h),
        matched_query_polygon=[(x + x0, y + y0) for x, y in v.matched_query_polygon],
        details={**v.details, "region_x0": float(x0), "region_y0": float(y0), "region_x1": float(x1),
                 "region_y1": float(y1)})


def features_from_image_bytes(data: bytes, mirrored: bool = False) -> Features:
    """Convenience for benchmarks and tests: decode, apply EXIF orientation, extract."""
    with Image.open(io.BytesIO(data)) as im:
        return extract(ImageOps.exif_transpose(im).convert("RGB"), mirrored)

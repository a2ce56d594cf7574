"""Local features with geometric verification: real OpenCV ORB, MAGSAC and FAISS on generated pictures."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from PIL import Image, ImageDraw

from provenance import localfeatures as lf


def scene(seed: int, size: tuple[int, int] = (480, 360)) -> Image.Image:
    """A busy synthetic picture: overlapping shapes of random colours on a smooth gradient."""
    rng = random.Random(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    gx, gy = (xx * 255 / w), (yy * 255 / h)
    if rng.random() < 0.5:  # the gradient's direction varies too, so two scenes differ everywhere
        gx, gy = 255 - gy, gx
    base = np.stack([gx, gy, np.full((h, w), rng.randrange(256))], -1)
    img = Image.fromarray(base.astype(np.uint8))
    d = ImageDraw.Draw(img)
    for _ in range(60):
        x0, y0 = rng.randrange(w), rng.randrange(h)
        x1, y1 = x0 + rng.randrange(10, 90), y0 + rng.randrange(10, 90)
        col = tuple(rng.randrange(256) for _ in range(3))
        shape = rng.randrange(3)
        if shape == 0:
            d.rectangle((x0, y0, x1, y1), fill=col)
        elif shape == 1:
            d.ellipse((x0, y0, x1, y1), fill=col, outline=(0, 0, 0))
        else:
            d.line((x0, y0, x1, y1), fill=col, width=rng.randrange(2, 6))
    return img


def framed(seed_inside: int, frame_seed: int = 99) -> Image.Image:
    """A picture inside a wide, busy frame (the same clip-art frame around different pictures)."""
    outer = scene(frame_seed, (480, 480))
    inner = scene(seed_inside, (300, 300))
    outer.paste(inner, (90, 90))
    return outer


def test_crop_rotated_is_verified_with_a_polygon_that_maps_back() -> None:
    img = scene(1)
    w, h = img.size
    # Keep the middle 70 % of the area (84 % of each side), then rotate 8 degrees with a black fill.
    k = 0.7 ** 0.5
    box = (round(w * (1 - k) / 2), round(h * (1 - k) / 2), round(w * (1 + k) / 2), round(h * (1 + k) / 2))
    copy = img.crop(box).rotate(8, expand=True, resample=Image.Resampling.BILINEAR)
    ref = lf.extract(img)
    v = lf.verify_query(lf.extract_query(copy), ref)
    # Verified geometrically, and called a copy: the black corners the rotation added over reference
    # pixels the crop cut away are recognised as fill and not compared (next test).
    assert v is not None and v.inliers >= 100 and v.score >= lf.SCORE_THRESHOLD
    assert not v.mirrored
    assert abs(abs(v.rotation_degrees) - 8) < 1.5
    assert 0.9 < v.scale < 1.1
    # The homography maps reference pixels where the rotation put them (ground truth from the crop box
    # and Pillow's counter-clockwise rotation about the centre of the expanded canvas).
    t = np.radians(8)
    cw, ch = box[2] - box[0], box[3] - box[1]
    ew, eh = copy.size
    hm = np.array(v.homography)
    for x, y in [(box[0] + 10, box[1] + 10), (box[2] - 10, box[1] + 10), (box[2] - 10, box[3] - 10),
                 ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)]:
        dx, dy = x - box[0] - cw / 2, y - box[1] - ch / 2
        truth = (ew / 2 + dx * np.cos(t) + dy * np.sin(t), eh / 2 - dx * np.sin(t) + dy * np.cos(t))
        p = hm @ np.array([x, y, 1.0])
        assert np.hypot(*(p[:2] / p[2] - truth)) < 3
    # The polygons: the query's frame (black corners included) and its pre-image in the reference,
    # which contains the crop box and stays inside the reference.
    rp, qp = np.array(v.reference_polygon), np.array(v.query_polygon)
    assert (rp.min(0) <= np.array(box[:2]) + 3).all() and (rp.max(0) >= np.array(box[2:]) - 3).all()
    assert (rp.min(0) >= -1).all() and (rp.max(0) <= np.array(img.size) + 1).all()
    assert (qp.min(0) >= -1).all() and (qp.max(0) <= np.array(copy.size) + 1).all()
    assert v.reference_coverage >= 0.7
    assert v.level == "near-duplicate"


def _jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


@pytest.mark.parametrize(("fill", "degrees"), [((0, 0, 0), 5), ((255, 255, 255), -7)])
def test_fill_corners_of_a_cropped_rotated_copy_are_not_compared(fill: tuple[int, int, int], degrees: int) -> None:
    """A crop rotated inside its own expanded frame, shrunk and re-encoded: its flat corners lie over
    reference pixels the crop cut away. Compared, they disagree with the reference over 3-5 % of the
    overlap (no match); recognised as fill by their geometry, they are left out and the copy matches."""
    img = scene(21, (640, 480))
    w, h = img.size
    copy = img.crop((int(0.15 * w), int(0.1 * h), int(0.85 * w), int(0.88 * h))).rotate(
        degrees, expand=True, resample=Image.Resampling.BILINEAR, fillcolor=fill)
    copy = _jpeg(copy.resize((copy.width // 2, copy.height // 2)), 35)
    v = lf.verify_query(lf.extract_query(copy), lf.extract(img))
    assert v is not None and abs(abs(v.rotation_degrees) - abs(degrees)) < 1.5
    assert 0.1 < v.details["photo@fill"] <= lf.MAX_FILL_SHARE
    assert v.score >= lf.SCORE_THRESHOLD


def test_a_flat_background_look_alike_is_not_excused_as_fill() -> None:
    """The same drawing on a flat background, where the indexed picture has an emblem in the margin and
    the query only background. Inside the keypoints' hull every pixel agrees (comparing only there
    would call it a copy); the flat margin is not fill (the query's frame covers the reference, so it
    is a band, not a corner cut at an angle), so the emblem's pixels still count and it does not match,
    rotated with black corners or not."""
    def icon(emblem: bool) -> Image.Image:
        im = Image.new("RGB", (256, 256), (225, 225, 225))
        im.paste(scene(5, (150, 150)), (70, 60))
        if emblem:
            d = ImageDraw.Draw(im)
            d.ellipse((12, 190, 52, 230), fill=(30, 60, 200))
            d.rectangle((20, 200, 44, 220), fill=(240, 200, 20))
        return im
    ref = lf.extract(icon(True))
    for degrees in (0, 6):
        query = icon(False).rotate(degrees, expand=True, resample=Image.Resampling.BILINEAR) if degrees \
            else icon(False)
        v = lf.verify_query(lf.extract_query(query), ref)
        assert v is not None and v.inliers >= 40
        assert v.details["photo@1.0"] == 1.0  # the hull alone agrees everywhere ...
        assert v.details["photo@fill"] == 0.0  # ... and nothing is excused as fill
        assert v.score < lf.SCORE_THRESHOLD


def test_rotated_and_recropped_copy_is_a_match() -> None:
    """Rotated by 8 degrees and cropped inside the rotated picture (no fill corners): called a copy."""
    img = scene(1)
    rot = img.rotate(8, resample=Image.Resampling.BILINEAR)  # same size; corners filled ...
    w, h = rot.size
    copy = rot.crop((round(w * 0.2), round(h * 0.2), round(w * 0.8), round(h * 0.8)))  # ... and cut away
    v = lf.verify_query(lf.extract_query(copy), lf.extract(img))
    assert v is not None and v.score >= lf.SCORE_THRESHOLD
    assert abs(abs(v.rotation_degrees) - 8) < 1.5


def test_mirrored_copy_matches_through_the_flip_query() -> None:
    img = scene(2)
    ref = lf.extract(img)
    plain, mirrored = lf.extract_query(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    v = lf.verify(mirrored, ref)
    assert v is not None and v.mirrored and v.score >= lf.SCORE_THRESHOLD
    assert v.inliers >= 100
    best = lf.verify_query((plain, mirrored), ref)
    assert best is not None and best.mirrored


def test_a_different_picture_in_the_same_frame_is_not_a_copy() -> None:
    ref = lf.extract(framed(10))
    same = lf.verify_query(lf.extract_query(framed(10).resize((400, 400))), ref)
    other = lf.verify_query(lf.extract_query(framed(11)), ref)
    assert same is not None and same.score >= lf.SCORE_THRESHOLD
    # The frame alone gives plenty of geometrically consistent matches ...
    frame_only = lf.verify(lf.extract(framed(11)), ref)
    assert frame_only is None or frame_only.inliers >= lf.MIN_INLIERS
    # ... but the middle of the region disagrees, so it is not called a copy.
    assert other is None or other.score < lf.SCORE_THRESHOLD


def test_unrelated_pictures_do_not_verify() -> None:
    v = lf.verify_query(lf.extract_query(scene(3)), lf.extract(scene(4)))
    assert v is None or v.score < lf.SCORE_THRESHOLD


def test_partial_when_a_small_region_of_the_reference_is_pasted_into_a_collage() -> None:
    img = scene(5, (640, 480))
    part = img.crop((320, 240, 560, 420))  # 14 % of the picture
    collage = scene(6, (640, 480))
    collage.paste(part, (40, 40))
    v = lf.verify_query(lf.extract_query(collage), lf.extract(img))
    assert v is not None and v.level == "partial"
    assert v.reference_coverage < 0.4  # the frame overlap: the pasted part plus what lies beyond it
    assert v.content_coverage < 0.5


def test_descriptor_count_is_bounded_and_small_images_are_upscaled() -> None:
    big = lf.extract(scene(7, (1600, 1200)))
    assert 0 < len(big) <= lf.MAX_KEYPOINTS
    assert lf.extract(scene(7), max_keypoints=50).descriptors.shape == (50, 32)
    icon = lf.extract(scene(8, (48, 48)))
    assert len(icon) >= 20  # a 48-px icon still gives keypoints once upscaled
    assert icon.points.max() < 48 and icon.points.min() >= 0  # in the icon's own pixels
    flat = lf.extract(Image.new("RGB", (200, 200), (120, 130, 140)))
    assert len(flat) == 0


def test_features_and_index_round_trip_without_pickle() -> None:
    feats = [lf.extract(scene(s)) for s in range(20, 26)]
    f2 = lf.Features.from_bytes(feats[0].to_bytes())
    assert np.array_equal(f2.descriptors, feats[0].descriptors)
    assert f2.thumb is not None and np.array_equal(f2.thumb, feats[0].thumb)
    assert max(f2.thumb.shape) == lf.THUMB_SIDE
    assert np.abs(f2.points - feats[0].points).max() <= 1 / 16
    with pytest.raises(ValueError):
        lf.Features.from_bytes(b"nope" + feats[0].to_bytes()[4:])

    for ivf_from in (10**9, 1000):  # flat, and IVF once past 1,000 descriptors
        idx = lf.DescriptorIndex(ivf_from=ivf_from)
        for i, f in enumerate(feats):
            idx.add(100 + i, f)
        assert idx.kind == ("flat" if ivf_from > 10**6 else "ivf")
        assert idx.ntotal <= len(feats) * lf.INDEX_PER_IMAGE  # the index holds a bounded share per image
        query = lf.extract_query(scene(23).rotate(5))
        top = idx.candidates(query, k_images=3)
        assert top[0][0] == 103
        back = lf.DescriptorIndex.from_bytes(idx.to_bytes())
        assert back.kind == idx.kind and back.ntotal == idx.ntotal
        assert back.candidates(query, k_images=3) == top

    # A flat index read back keeps growing into the same IVF index as one that never left memory (the
    # training descriptors are not stored twice: they are the flat index's own codes).
    small = lf.DescriptorIndex(ivf_from=1200)
    for i, f in enumerate(feats[:3]):
        small.add(100 + i, f)
    back = lf.DescriptorIndex.from_bytes(memoryview(small.to_bytes()))
    assert len(small.to_bytes()) < 3 * lf.INDEX_PER_IMAGE * (32 + 8) + 4096
    for i, f in enumerate(feats[3:], start=3):
        small.add(100 + i, f)
        back.add(100 + i, f)
    assert back.kind == small.kind == "ivf" and back.ntotal == small.ntotal
    assert back.candidates(query, k_images=3) == small.candidates(query, k_images=3)


def test_a_cropped_rotated_copy_is_found_through_the_index(tmp_path) -> None:
    """End to end: PDQ and pHash miss a 65 % crop rotated 6 degrees; the local-features signal finds it,
    with the matched region in both images and the transform in the evidence."""
    from provenance import Index

    original = scene(11, (640, 480))
    src = tmp_path / "original.png"
    original.save(src)
    w, h = original.size
    copy = original.crop((int(0.2 * w), int(0.15 * h), int(0.85 * w), int(0.8 * h))).rotate(
        6, resample=Image.Resampling.BICUBIC, expand=False)
    copy = copy.crop((20, 20, copy.width - 20, copy.height - 20))
    dst = tmp_path / "copy.jpg"
    copy.save(dst, quality=85)
    with Index.open(tmp_path / "idx", create=True) as idx:
        idx.add([src])
        report = idx.check(dst, origin=False)
        assert report.verdict == "near-duplicate"
        m = report.matches[0]
        assert m.signal == "local-features"
        ev = m.evidence["local-features"]
        assert ev["passed"] and abs(abs(ev["rotation_degrees"]) - 6) < 2 and not ev["mirrored"]
        assert len(ev["query_polygon"]) >= 4 and len(ev["reference_polygon"]) >= 4
        assert not m.evidence["pdq"]["passed"]
        other = tmp_path / "other.png"
        scene(12, (640, 480)).save(other)
        assert idx.check(other, origin=False).verdict == "original"


def test_ivf_lists_are_trained_again_as_the_index_grows() -> None:
    feats = [lf.extract(scene(s)) for s in range(60, 74)]
    idx = lf.DescriptorIndex(ivf_from=600)
    for i, f in enumerate(feats[:3]):
        idx.add(i, f)
    assert idx.kind == "ivf" and idx.trained_on == idx.ntotal  # switched at 600 descriptors
    first = idx.trained_on
    for i, f in enumerate(feats[3:], start=3):
        idx.add(i, f)
    assert idx.trained_on >= lf.RETRAIN_GROWTH * first  # trained again once it had grown 4-fold
    # The retraining read every code back from the inverted lists, in row order.
    assert np.array_equal(idx._ivf_codes(), np.concatenate([f.descriptors[:lf.INDEX_PER_IMAGE] for f in feats]))
    assert idx.candidates(lf.extract_query(scene(70).rotate(5)), k_images=3)[0][0] == 10
    back = lf.DescriptorIndex.from_bytes(idx.to_bytes())
    assert back.trained_on == idx.trained_on and back.kind == "ivf"


def test_a_shared_template_does_not_outvote_the_copied_picture(monkeypatch: pytest.MonkeyPatch) -> None:
    """Siblings from one template (the same busy frame around different small pictures) share most
    descriptors. Each query descriptor's vote is split between the images it is equally close to, so the
    descriptors only the copied picture has decide which image is verified first; with a whole vote per
    image (the former search) the siblings that come first in the index outvote it."""
    def sibling(seed: int) -> Image.Image:
        outer = scene(99, (480, 480))
        outer.paste(scene(seed, (140, 140)), (170, 170))
        return outer

    idx = lf.DescriptorIndex()
    for s in range(16):
        idx.add(s, lf.extract(sibling(s)))
    queries = [lf.extract_query(sibling(s).rotate(10, resample=Image.Resampling.BICUBIC, expand=True)
                                .resize((300, 300))) for s in range(16)]
    first = sum(idx.candidates(q, k_images=4)[0][0] == s for s, q in enumerate(queries))
    assert first >= 15
    monkeypatch.setattr(lf, "VOTE_SPLIT", False)  # the former search: whole votes, 4 neighbours, no margin
    former = sum(idx.candidates(q, k_images=4, k_neighbours=4, margin=lf.VOTE_DISTANCE)[0][0] == s
                 for s, q in enumerate(queries))
    assert former < first


def test_the_index_judges_with_the_thumbnail_size_the_threshold_was_calibrated_on(tmp_path) -> None:
    """The pixel check's tolerances and its threshold were calibrated on 64-px reference thumbnails. The
    index stores that size (not the query's 256-px one), and a reference stored at the query's size by an
    older index is reduced before it is judged: a strong combo copy (60 % crop, 6 degrees, half size, JPEG
    30) scored 0.89 against a 256-px reference, under the threshold, and 1.0 against a 64-px one."""
    from provenance import Index

    original = scene(31, (640, 480))
    w, h = original.size
    k = 0.6 ** 0.5
    box = (round(w * (1 - k) / 2), round(h * (1 - k) / 2), round(w * (1 + k) / 2), round(h * (1 + k) / 2))
    copy = original.crop(box).rotate(6, expand=True, resample=Image.Resampling.BICUBIC)
    copy = copy.resize((copy.width // 2, copy.height // 2))
    buf = io.BytesIO()
    copy.save(buf, "JPEG", quality=30)
    (tmp_path / "copy.jpg").write_bytes(buf.getvalue())
    original.save(tmp_path / "original.png")
    with Index.open(tmp_path / "idx", create=True) as idx:
        item = idx.add([tmp_path / "original.png"])[0].id
        assert item is not None
        stored = lf.Features.from_bytes(idx.catalog.item_fingerprints(item, "local-features")[0])
        assert max(stored.thumb.shape) == lf.THUMB_SIDE
        report = idx.check(tmp_path / "copy.jpg", origin=False)
        assert report.verdict == "near-duplicate"
        assert report.matches[0].evidence["local-features"]["score"] >= lf.SCORE_THRESHOLD

    query = lf.extract_query(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    older = lf.extract(original, thumb_side=lf.QUERY_THUMB_SIDE)  # what an older index stored
    judged = lf.verify_query(query, older)
    assert judged is not None and judged.score >= lf.SCORE_THRESHOLD
    assert lf.for_index(older).thumb.shape == stored.thumb.shape


def test_a_large_index_searches_the_strongest_query_descriptors_in_fewer_lists(monkeypatch) -> None:
    feats = [lf.extract(scene(s)) for s in range(80, 90)]
    idx = lf.DescriptorIndex(ivf_from=1000)
    for i, f in enumerate(feats):
        idx.add(i, f)
    query = lf.extract_query(scene(84).rotate(5))
    full = idx.candidates(query, k_images=3)
    assert full[0][0] == 4 and idx.index.nprobe == idx.nprobe and full[0][1] > 60
    monkeypatch.setattr(lf, "LARGE_FROM", idx.ntotal)  # this index now counts as large
    monkeypatch.setattr(lf, "LARGE_PER_QUERY", 60)
    top = idx.candidates(query, k_images=3)
    assert idx.index.nprobe == lf.LARGE_NPROBE
    assert top[0][0] == 4 and top[0][1] <= 60  # one vote per searched descriptor at most

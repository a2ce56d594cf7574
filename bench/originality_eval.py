"""Measurements for the originality core (issue 2), on ../shared/data.

1. Images: index clothing-small minus 200 held-out photos; check 7 transforms of 200 indexed photos and
   the 200 held-out (never indexed) photos. Recall per transform, false-match rate on held-out photos,
   plus the PDQ/pHash distance distributions that calibrate the pHash threshold.
2. Clough & Stevenson: index the 5 sources plus a haystack; verdict counts per category.
3. add throughput and check latency (medians).

Run: python bench/originality_eval.py [--out bench/out/originality.json]
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

from provenance import Index
from provenance.content import load_content
from provenance.signals import hamming

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def jpeg(img: Image.Image, q: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=q)
    return buf.getvalue()


def overlay(img: Image.Image) -> Image.Image:
    out = img.copy()
    d = ImageDraw.Draw(out)
    w, h = out.size
    d.rectangle((0, int(h * 0.8), w, h), fill=(0, 0, 0))
    d.text((10, int(h * 0.83)), "SALE -50% follow @shop for more", fill=(255, 255, 255))
    return out


TRANSFORMS = {
    "jpeg-q30": lambda im: jpeg(im, 30),
    "half-size": lambda im: jpeg(im.resize((im.width // 2, im.height // 2))),
    "crop-10%": lambda im: jpeg(im.crop((int(im.width * .05), int(im.height * .05),
                                         int(im.width * .95), int(im.height * .95)))),
    "rotate-90": lambda im: jpeg(im.transpose(Image.Transpose.ROTATE_90)),
    "mirror": lambda im: jpeg(im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
    "brightness+30%": lambda im: jpeg(ImageEnhance.Brightness(im).enhance(1.3)),
    "text-overlay": lambda im: jpeg(overlay(im)),
}


def images(results: dict, tmp: Path) -> None:
    photos = sorted((DATA / "images" / "clothing-small").rglob("*.jpg"))
    rng = random.Random(2026)
    held_out = set(rng.sample(range(len(photos)), 200))
    indexed = [p for i, p in enumerate(photos) if i not in held_out]
    queries = rng.sample(indexed, 200)
    idx = Index.open(tmp / "img", create=True)
    t0 = time.perf_counter()
    idx.add(indexed, source="clothing")
    idx.flush()
    add_s = time.perf_counter() - t0
    results["images_indexed"] = len(indexed)
    results["add_images_per_s"] = len(indexed) / add_s
    per = {}
    lat = []
    dists = defaultdict(list)  # transform -> (pdq, phash) distance to the true original
    for name, fn in TRANSFORMS.items():
        hit = 0
        for p in queries:
            with Image.open(p) as im:
                data = fn(im.convert("RGB"))
            t = time.perf_counter()
            rep = idx.check(data, f"{p.name}:{name}")
            lat.append(time.perf_counter() - t)
            ok = any(m.path == str(p) for m in rep.matches if m.verdict in ("exact", "near-duplicate"))
            hit += ok
            orig = idx.catalog.find_sha256(load_content(p).sha256)
            c = load_content(data)
            for sig in (idx.signal("pdq"), idx.signal("phash")):
                try:
                    q = [v[0].value for _, v in sig.query_variants(c)]
                    stored = idx.catalog.item_fingerprints(orig.id, sig.name)
                    dists[(name, sig.name)].append(min(hamming(a, b) for a in q for b in stored))
                except Exception:
                    dists[(name, sig.name)].append(None)
        per[name] = hit / len(queries)
    results["image_recall"] = per
    false = 0
    nearest = defaultdict(list)
    for i in sorted(held_out):
        rep = idx.check(photos[i])
        false += rep.verdict != "original"
        c = load_content(photos[i])
        for sig in (idx.signal("pdq"), idx.signal("phash")):
            try:
                q = np.frombuffer(b"".join(v[0].value for _, v in sig.query_variants(c)), dtype=np.uint8)
                d, _ = idx.vectors(sig).search(q.reshape(8, -1), 1)
                nearest[sig.name].append(int(d.min()))
            except Exception:
                pass
    results["image_false_match_rate"] = false / len(held_out)
    results["image_check_latency_ms_median"] = 1000 * statistics.median(lat)
    results["phash_nearest_nonmatch_quantiles"] = np.percentile(nearest["phash"], [0, 1, 5, 50]).tolist()
    results["pdq_nearest_nonmatch_quantiles"] = np.percentile(nearest["pdq"], [0, 1, 5, 50]).tolist()
    results["true_pair_distance_medians"] = {
        f"{t}/{s}": float(np.median([d for d in v if d is not None])) if any(d is not None for d in v) else None
        for (t, s), v in dists.items()}
    results["true_pair_phash_recall_at"] = {
        str(th): {t: float(np.mean([d is not None and d <= th for d in dists[(t, "phash")]])) for t in TRANSFORMS}
        for th in (4, 6, 8, 10, 12)}
    idx.close()


def texts(results: dict, tmp: Path) -> None:
    rows = [json.loads(line) for line in (DATA / "text" / "clough_stevenson.jsonl").open()]
    hay = [json.loads(line) for line in (DATA / "text" / "gensim_lee_news.jsonl").open()]
    idx = Index.open(tmp / "txt", create=True)
    sources = [r for r in rows if r["category"] == "orig"]
    t0 = time.perf_counter()
    idx.add([r["text"].encode() for r in sources] + [h["text"].encode() for h in hay], source="cs")
    idx.flush()
    results["add_texts_per_s"] = (len(sources) + len(hay)) / (time.perf_counter() - t0)
    src_id = {}
    for r in sources:
        src_id[r["task"]] = idx.catalog.find_sha256(load_content(r["text"]).sha256).id
    table: dict[str, Counter] = defaultdict(Counter)
    lat = []
    for r in rows:
        if r["category"] == "orig":
            continue
        t = time.perf_counter()
        rep = idx.check(r["text"])
        lat.append(time.perf_counter() - t)
        verdict = rep.verdict
        right_source = any(m.id == src_id[r["task"]] for m in rep.matches)
        table[r["category"]][verdict if (verdict == "original" or right_source) else "wrong-source"] += 1
    results["clough_stevenson"] = {k: dict(v) for k, v in table.items()}
    results["text_check_latency_ms_median"] = 1000 * statistics.median(lat)
    # A 1,000-word draft (the first 1,000 words of a Brown sample, not indexed): check latency.
    brown = json.loads((DATA / "text" / "nltk_brown.jsonl").open().readline())["text"]
    long = " ".join(brown.split()[:1000])
    lat = []
    for _ in range(5):
        t = time.perf_counter()
        idx.check(long)
        lat.append(time.perf_counter() - t)
    results["check_1000_word_draft_ms_median"] = 1000 * statistics.median(lat)
    idx.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/out/originality.json")
    ap.add_argument("--only", choices=["images", "text"])
    args = ap.parse_args()
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "text"):
            texts(results, Path(tmp))
            print(json.dumps(results, indent=1), flush=True)
        if args.only in (None, "images"):
            images(results, Path(tmp))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    json.dump(results, sys.stdout, indent=1)


if __name__ == "__main__":
    main()

"""Speed and scale, with side-by-side baselines measured in the same run.

* ``add`` throughput: images/s through ``Index.add`` (decode, PDQ, pHash, catalog) vs ``imagehash.phash``
  alone and vs ``imagededup``'s PHash encoder; passages/s through ``Index.add`` on text vs a plain
  ``SentenceTransformer.encode`` of the same passages and vs datasketch MinHash of the same documents.
* ``check`` latency at index sizes 10k / 100k / 1M: the real check on a real (small) index gives the fixed
  cost (decode, hashing, embedding, catalog verification); the part that grows with the index, the FAISS
  search, is timed on the core's own :class:`VectorIndex` filled with synthetic fingerprints (random
  256-bit / 64-bit hashes, random unit 384-d vectors). Baselines at the same sizes: numpy brute-force
  Hamming over 64-bit pHashes, and a datasketch MinHash LSH query.
* Memory per item: bytes per fingerprint in FAISS (measured from process RSS) and catalog bytes per item.

The machine is shared: every figure is a median of repeats, and the tables give ratios to the baselines
measured in the same run, which are more stable than the absolute times.
"""

from __future__ import annotations

import gc
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from provenance.checker import Index
from provenance.content import load_content
from provenance.indexes.vectors import VectorIndex
from provenance.signals import PDQSignal
from provenance.signals.image import SEARCH_K
from provenance.signals.text import passage_spans

from .common import image_paths, log, read_jsonl, save_json, table

#: Largest index the MinHash LSH baseline is built for: its pure-Python inserts take minutes and
#: gigabytes beyond this on the benchmark machine.
LSH_MAX = 100_000


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _median_time(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _text_1000_words() -> str:
    docs = read_jsonl("nltk_brown.jsonl")
    words = docs[7]["text"].split()
    return " ".join(words[:1000])


def bench_add(tmp: Path, n_images: int, n_docs: int) -> dict[str, Any]:
    import imagehash
    from PIL import Image

    paths = image_paths()[-n_images:]
    out: dict[str, Any] = {}
    # Warm the page cache so both sides read from memory.
    for p in paths:
        p.read_bytes()
    log(f"speed: add {len(paths)} images (product vs imagehash vs imagededup)")
    idx = Index.open(tmp / "add-img", create=True)
    t = time.perf_counter()
    idx.add(paths)
    idx.flush()
    out["product_images_s"] = len(paths) / (time.perf_counter() - t)
    out["catalog_bytes_per_image"] = (tmp / "add-img" / "catalog.sqlite").stat().st_size / len(paths)
    idx.close()
    t = time.perf_counter()
    for p in paths:
        with Image.open(p) as im:
            imagehash.phash(im)
    out["imagehash_images_s"] = len(paths) / (time.perf_counter() - t)
    try:
        from imagededup.methods import PHash
        ph = PHash(verbose=False)
        t = time.perf_counter()
        for p in paths:
            ph.encode_image(image_file=str(p))
        out["imagededup_images_s"] = len(paths) / (time.perf_counter() - t)
    except Exception as exc:  # imagededup is optional (bench/requirements.txt)
        out["imagededup_error"] = f"{type(exc).__name__}: {exc}"

    docs = [d["text"] for d in read_jsonl("gensim_lee_news.jsonl")[:n_docs]]
    passages = [d[s:e] for d in docs for s, e in passage_spans(d)]
    log(f"speed: add {len(docs)} documents / {len(passages)} passages (product vs encode vs MinHash)")
    idx = Index.open(tmp / "add-text", create=True)
    idx.signal("text-embed").encode(["warm up"])
    t = time.perf_counter()
    idx.add(docs)
    idx.flush()
    dt = time.perf_counter() - t
    out["product_passages_s"] = len(passages) / dt
    out["product_docs_s"] = len(docs) / dt
    out["catalog_bytes_per_doc"] = (tmp / "add-text" / "catalog.sqlite").stat().st_size / len(docs)
    out["n_passages"], out["n_docs"] = len(passages), len(docs)
    model = __import__("provenance.encoders", fromlist=["load_model"]).load_model(idx.signal("text-embed").model_path)
    idx.close()
    t = time.perf_counter()
    model.encode(passages, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
    out["st_encode_passages_s"] = len(passages) / (time.perf_counter() - t)
    try:
        from datasketch import MinHash
        t = time.perf_counter()
        for d in docs:
            m = MinHash(num_perm=128)
            words = d.lower().split()
            m.update_batch([" ".join(words[i:i + 5]).encode() for i in range(max(1, len(words) - 4))])
        out["minhash_docs_s"] = len(docs) / (time.perf_counter() - t)
    except ImportError as exc:
        out["minhash_error"] = str(exc)
    return out


def bench_scale(tmp: Path, sizes: list[int], repeat: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {"sizes": sizes, "rows": []}

    # Fixed costs: the real check on a small real index (decode + hash + verification; embedding).
    idx = Index.open(tmp / "fixed", create=True)
    img_paths = image_paths()[:50]
    idx.add(img_paths[:40])
    docs = [d["text"] for d in read_jsonl("gensim_lee_news.jsonl")[:40]]
    idx.add(docs)
    draft = _text_1000_words()
    query_img = img_paths[45].read_bytes()
    idx.check(query_img)
    idx.check(draft)
    out["check_image_small_ms"] = _median_time(lambda: idx.check(query_img), repeat) * 1000
    out["check_text_small_ms"] = _median_time(lambda: idx.check(draft), max(3, repeat // 3)) * 1000
    n_draft_passages = len(passage_spans(draft))
    out["draft_passages"] = n_draft_passages
    content = load_content(query_img)
    pdq_q = np.stack([np.frombuffer(f[0].value, dtype=np.uint8) for _, f in PDQSignal().query_variants(content)])
    draft_q = idx.signal("text-embed").encode([draft[s:e] for s, e in passage_spans(draft)])
    idx.close()

    for n in sizes:
        row: dict[str, Any] = {"n": n}
        log(f"speed: scale {n:,}")
        gc.collect()
        # PDQ: the core's binary flat index, 8 dihedral queries per check.
        rss0 = _rss_mb()
        vi = VectorIndex(tmp / "scale", "pdq", 1, "", "binary", 256)
        vi.index.add_with_ids(rng.integers(0, 256, (n, 32), dtype=np.uint8), np.arange(1, n + 1, dtype=np.int64))
        row["pdq_bytes_per_item"] = (_rss_mb() - rss0) * 2**20 / n
        row["pdq_search_ms"] = _median_time(lambda: vi.search(pdq_q, SEARCH_K), repeat) * 1000
        vi = None  # free it before the next size
        # Baseline: imagehash-style 64-bit pHash, numpy brute force (one query, popcount of XOR).
        ph = rng.integers(0, 2**63, n, dtype=np.uint64)
        q = np.uint64(rng.integers(0, 2**63))
        popcount = getattr(np, "bitwise_count", None)

        def brute() -> None:
            x = np.bitwise_xor(ph, q)
            d = popcount(x) if popcount else np.unpackbits(x.view(np.uint8)).reshape(n, 64).sum(1)
            np.argpartition(d, SEARCH_K)[:SEARCH_K]

        row["phash_brute_ms"] = _median_time(brute, repeat) * 1000
        ph = None  # free it before the next size
        gc.collect()
        # Text: 384-d float flat inner-product, one query per draft passage.
        rss0 = _rss_mb()
        tv = VectorIndex(tmp / "scale", "text-embed", 1, "", "float", 384)
        chunk = 100_000
        for i in range(0, n, chunk):
            m = min(chunk, n - i)
            v = rng.standard_normal((m, 384), dtype=np.float32)
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            tv.index.add_with_ids(v, np.arange(i + 1, i + m + 1, dtype=np.int64))
        row["embed_bytes_per_item"] = (_rss_mb() - rss0) * 2**20 / n
        row["embed_search_ms"] = _median_time(lambda: tv.search(draft_q, SEARCH_K), max(3, repeat // 3)) * 1000
        tv = None  # free it before the next size
        gc.collect()
        # Baseline: datasketch MinHash LSH (threshold 0.5, 128 permutations), one query.
        try:
            from datasketch import MinHash, MinHashLSH
            if n > LSH_MAX:
                raise ImportError("skipped")
            n_lsh = n
            lsh = MinHashLSH(threshold=0.5, num_perm=128)
            t = time.perf_counter()
            hv = rng.integers(0, 2**32 - 1, (n_lsh, 128), dtype=np.uint64)
            scheme = MinHash(num_perm=128).scheme  # datasketch >= 2 wants it named for given hash values
            with lsh.insertion_session() as s:
                for i in range(n_lsh):
                    s.insert(i, MinHash(num_perm=128, hashvalues=hv[i], scheme=scheme))
            row["lsh_build_s"] = time.perf_counter() - t
            qm = MinHash(num_perm=128, hashvalues=hv[n_lsh // 2], scheme=scheme)
            row["lsh_query_ms"] = _median_time(lambda: lsh.query(qm), repeat) * 1000
            lsh = hv = None  # free them before the next size
        except ImportError:
            pass
        gc.collect()
        row["check_image_ms_est"] = out["check_image_small_ms"] + row["pdq_search_ms"]
        row["check_text_ms_est"] = out["check_text_small_ms"] + row["embed_search_ms"]
        out["rows"].append(row)
        log(f"  {row}")
    out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def run(quick: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-speed-") as d:
        tmp = Path(d)
        add = bench_add(tmp, 60 if quick else 300, 40 if quick else 150)
        scale = bench_scale(tmp, [10_000, 100_000] if quick else [10_000, 100_000, 1_000_000],
                            5 if quick else 15)
    raw = {"add": add, "scale": scale}
    save_json("speed.json", raw)
    return summarise(raw)


def summarise(raw: dict[str, Any]) -> dict[str, Any]:
    a, s = raw["add"], raw["scale"]
    add_rows = [["images: provenance add (decode + PDQ + pHash + catalog)", a["product_images_s"], 1.0],
                ["images: imagehash.phash only", a["imagehash_images_s"], a["imagehash_images_s"] / a["product_images_s"]]]
    if "imagededup_images_s" in a:
        add_rows.append(["images: imagededup PHash.encode_image", a["imagededup_images_s"],
                         a["imagededup_images_s"] / a["product_images_s"]])
    add_rows += [["text passages: provenance add (shingles + embed + catalog)", a["product_passages_s"], 1.0],
                 ["text passages: plain SentenceTransformer.encode", a["st_encode_passages_s"],
                  a["st_encode_passages_s"] / a["product_passages_s"]]]
    if "minhash_docs_s" in a:
        add_rows += [["text documents: provenance add", a["product_docs_s"], 1.0],
                     ["text documents: datasketch MinHash(128) of 5-word shingles", a["minhash_docs_s"],
                      a["minhash_docs_s"] / a["product_docs_s"]]]
    scale_rows = []
    for r in s["rows"]:
        scale_rows.append([f"{r['n']:,}", r["pdq_search_ms"], r["phash_brute_ms"],
                           r["pdq_search_ms"] / r["phash_brute_ms"], r["check_image_ms_est"],
                           r["embed_search_ms"], r.get("lsh_query_ms", float("nan")),
                           r["check_text_ms_est"]])
    md = [
        "## Speed and scale",
        "",
        "2-core machine: medians of repeats; ratios are baseline ÷ product throughput in the same run "
        "(>1 = the baseline is faster, because it does less). FAISS searches of a few ms are at the mercy of "
        "anything else running (OpenMP threads waiting for a core); compare within a row.",
        "",
        table(["add", "items/s", "baseline ÷ product"], add_rows),
        "",
        (f"imagededup could not be measured: `{a['imagededup_error'][:160]}`.\n\n" if "imagededup_error" in a else "")
        + f"Catalog size: {a['catalog_bytes_per_image']:,.0f} bytes per image; {a['catalog_bytes_per_doc']:,.0f} "
        f"bytes per text document ({a['n_passages'] / a['n_docs']:.1f} passages per ABC news item).",
        "",
        f"Fixed cost of one `check` on a small real index: image {s['check_image_small_ms']:.0f} ms "
        f"(decode, 8 dihedral PDQ + pHash variants, verification); 1,000-word draft "
        f"{s['check_text_small_ms']:.0f} ms ({s['draft_passages']} passages embedded, shingle alignment).",
        "",
        "Search cost as the index grows (core `VectorIndex`, *exact flat* FAISS indexes for every size, synthetic "
        "fingerprints; the product itself moves float indexes to HNSW at 200k vectors, see below; "
        "`check est.` = fixed cost + search). Baselines: 64-bit pHash brute force in numpy (1 query) and "
        "datasketch MinHash LSH (1 query, 128 perms, threshold 0.5; built only up to "
        f"{LSH_MAX:,} items, nan = not built):",
        "",
        table(["items", "PDQ search ms (8 queries)", "pHash brute ms", "PDQ ÷ brute", "image check est. ms",
               f"embed search ms ({s['draft_passages']} queries)", "MinHash LSH query ms", "text check est. ms"],
              scale_rows),
        "",
        "Memory per item in FAISS (flat indexes store every code plus an 8-byte id and an id-map entry): "
        "PDQ 32 B code + 8 B id per image (pHash 8 + 8), text-embed 1,536 B + 8 B per *passage* "
        f"(~{a['n_passages'] / a['n_docs']:.0f} passages per short news item, ~40 per 1,000 words). "
        f"Measured RSS growth when 1M synthetic passages were added: "
        f"{s['rows'][-1]['embed_bytes_per_item']:,.0f} B/passage at {s['rows'][-1]['n']:,} items "
        "(RSS deltas for the smaller binary index are swallowed by memory freed earlier in the run and read 0). "
        "At 1M passages the float index alone is 1.5 GB, and an exact search of a 1,000-word draft "
        "(one query per passage) is the dominant cost: see the last row. That is why the product's float "
        "indexes grow into HNSW32 (efSearch 128) at 200k vectors: measured separately on 200k clustered "
        "384-d vectors, 38 queries took 32 ms vs 999 ms flat (31×), and near-copies (cosine ~0.93) stayed "
        "in the top 16 for 200/200 queries (indexes/vectors.py).",
        "",
        f"Peak RSS of the speed run: {s['max_rss_mb']:,.0f} MB.",
        "",
    ]
    return {"markdown": "\n".join(md), "raw": raw}


if __name__ == "__main__":
    import sys
    print(run(quick="--quick" in sys.argv)["markdown"])

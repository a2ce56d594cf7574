"""A focused, local-features-only run of ``bench/localfeat_eval.py``: the same index, the same copies
(same seeds) for a chosen subset of families, and every negative; each candidate verified twice: "before"
with some settings of ``provenance.localfeatures`` changed (``--before NAME=VALUE,...``, e.g. a change
turned off) and "after" as the module stands, so one run gives before/after numbers; ``--verify-top N``
verifies the top N candidates after instead of ``localfeat_eval.K_VERIFY`` (4, as the product);
``--thumb-nn K`` adds, after, the K indexed pictures whose whole-image thumbnails are nearest
(:func:`thumb_vector`), a second candidate source for what the keypoint votes miss. The product (PDQ + pHash) is not run: its hits are read from a saved full run
(``--product``), so the union can still be reported. Thresholds are calibrated on one half of the
photo + frame negatives and applied to the other, exactly as ``localfeat_eval.summarise`` does.

Run: ``python -m bench.localfeat_focus --families rotate-small,combo --before MAX_FILL_SHARE=0 [--workers 2]
[--product bench/out/localfeat_before.json]``. Writes ``bench/out/localfeat_focus.json`` and prints a
Markdown summary with, for each copy the local signal misses, why (no candidate, geometry rejected, pixel
score below the threshold).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from provenance import localfeatures as lf

from . import localfeat_eval as E
from .common import OUT, log, save_json, table

_W: dict[str, Any] = {}


def _row(cid: int, votes: float, v: lf.Verification | None) -> list:
    """One candidate in ``localfeat_eval._query``'s row layout (so its scoring functions apply)."""
    return [cid, votes] + ([] if v is None else [
        round(v.score, 4), v.inliers, round(v.agreement, 4), round(v.cells_agreeing, 3),
        round(v.details["spread"], 3), round(v.query_coverage, 3), round(v.reference_coverage, 3),
        v.level, v.mirrored, round(v.scale, 3), round(v.rotation_degrees, 1),
        round(v.details.get("keypoint_score", -1), 4), v.details.get("photo@0.7", -1),
        v.details.get("photo@1.0", -1), v.details.get("photo@1.5", -1), v.details.get("photo@valid", 0),
        round(v.content_coverage, 3), v.details.get("photo@matched", -1), v.details.get("photo@overlap", -1),
        v.details.get("photo@fill", 0.0)])


def thumb_vector(thumb: np.ndarray | None) -> np.ndarray:
    """A whole-image descriptor from the stored greyscale thumbnail: 16x16 box-filtered, zero mean, unit
    length (cosine = correlation). Survives small rotations and re-encoding, not crops."""
    if thumb is None or thumb.size == 0:
        return np.zeros(256, np.float32)
    v = np.asarray(Image.fromarray(thumb).resize((16, 16), Image.Resampling.BOX), np.float32).ravel()
    v -= v.mean()
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def _query(task: tuple[bytes, str, str, str, int | None, str]) -> dict[str, Any]:
    from provenance.content import load_content
    data, family, strength, kind, true_id, label = task
    q = lf.extract_query(load_content(data, label).image)
    out: dict[str, list] = {}
    for name, settings in (("before", _W["before"]), ("after", _W["after"])):
        for k, val in settings.items():
            setattr(lf, k, type(getattr(lf, k))(val))
        # The candidate search reads its settings (VOTE_*) at call time, so it is before/after too.
        cands = _W["desc"].candidates(q, k_images=_W["verify_top"] if name == "after" else E.K_VERIFY)
        if name == "after" and _W["thumb_nn"]:
            # Also the indexed pictures whose whole-image thumbnails are nearest (see thumb_vector).
            sims = _W["thumbs"] @ thumb_vector(q[0].thumb)
            have = {cid for cid, _ in cands}
            cands += [(int(_W["thumb_ids"][i]), 0.0) for i in np.argsort(-sims)[:_W["thumb_nn"]]
                      if int(_W["thumb_ids"][i]) not in have]
        out[name] = [_row(cid, votes, lf.verify_query(q, _W["feats"][cid])) for cid, votes in cands]
    return {"family": family, "strength": strength, "kind": kind, "true": true_id, "label": label,
            "half": E._half(label.split(":")[0]), **out}


def run(families: list[str], before: dict[str, float], workers: int, verify_top: int = E.K_VERIFY,
        thumb_nn: int = 0) -> dict[str, Any]:
    import faiss

    from provenance.content import load_content
    faiss.omp_set_num_threads(1)
    sets = E.build_sets(40, 400, 300, 60)
    fams = E.families()
    desc = lf.DescriptorIndex(ivf_from=100_000)
    feats: dict[int, lf.Features] = {}
    ids: dict[str, int] = {}
    seen: set[str] = set()
    items = [(str(p), p.read_bytes()) for _, p in sets["orig"] + sets["dist"]]
    items += [(f"frame-{k}", E._png(im)) for k, im in enumerate(sets["frames_idx"])]
    log(f"focus: extracting {len(items)} indexed items")
    for label, data in items:
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:  # the product index skips exact duplicates; so does this one
            continue
        seen.add(digest)
        ids[label] = len(feats) + 1
        f = lf.extract(load_content(data, label).image)
        desc.add(ids[label], f)
        feats[ids[label]] = f
    tasks = E.query_tasks(sets, fams, ids, only=families)
    after = {k: float(getattr(lf, k)) for k in before}
    thumb_ids = np.array(sorted(feats))
    _W.update(desc=desc, feats=feats, before=before, after=after, verify_top=verify_top, thumb_nn=thumb_nn,
              thumb_ids=thumb_ids, thumbs=np.stack([thumb_vector(feats[i].thumb) for i in thumb_ids]))
    log(f"focus: {len(tasks)} queries on {workers} workers")
    with mp.get_context("fork").Pool(workers) as pool:
        rows = []
        for k, row in enumerate(pool.imap_unordered(_query, tasks, chunksize=8)):
            rows.append(row)
            if k % 250 == 0:
                log(f"  {k}/{len(tasks)}")
    raw = {"families": families, "before": before, "after": after, "verify_top": verify_top, "thumb_nn": thumb_nn,
           "queries": rows}
    save_json("localfeat_focus.json", raw)
    return raw


def summarise(raw: dict[str, Any], product: dict[str, Any] | None = None) -> str:
    """Recall per family and strength, false matches per negative set, before and after, held-out
    thresholds; misses by cause; the negatives still matched after."""
    prod_hit: dict[str, bool] = {}
    dupes: set[str] = set()
    if product:
        for q in product["queries"]:
            prod_hit[q["label"]] = any(m["id"] == q["true"] for m in q["prod"]) if q["true"] is not None \
                else bool(q["prod"])
            if q["true"] is None and any(m["pdq"] is not None and m["pdq"] <= E.DUPLICATE_PDQ for m in q["prod"]):
                dupes.add(q["label"])
    qs = raw["queries"]
    copies = [q for q in qs if q["true"] is not None]
    negs = [q for q in qs if q["true"] is None and q["label"] not in dupes]
    cal = [q for q in negs if q["kind"] in ("photo", "frame")]
    md: list[str] = []
    fam_rows: dict[tuple[str, str], list] = {}
    neg_rows: dict[str, list] = {}
    causes: dict[tuple[str, str, str], Counter] = {}
    fooled: dict[str, list[str]] = {}
    ths = {}
    for variant in ("before", "after"):
        def score(c: list) -> float:
            return E.local_score(c)
        th = {h: E._calibrate([], [{"local": q[variant]} for q in cal if q["half"] == h], score) for h in (0, 1)}
        ths[variant] = th

        def hit(q: dict, variant: str = variant, th: dict = th) -> tuple[bool, bool]:
            t = th[1 - q["half"]]
            return (any(score(c) >= t and c[0] == q["true"] for c in q[variant]),
                    any(score(c) >= t and c[0] != q["true"] for c in q[variant]))
        for fam in raw["families"] + ["all"]:
            for st in ("mild", "strong"):
                cs = [q for q in copies if (fam == "all" or q["family"] == fam) and q["strength"] == st]
                if not cs:
                    continue
                r = fam_rows.setdefault((fam, st), [fam, st, len(cs)])
                r.append(sum(hit(q)[0] for q in cs) / len(cs))
                if product:
                    r.append(sum(hit(q)[0] or prod_hit.get(q["label"], False) for q in cs) / len(cs))
        for kind in ("photo", "graphic", "frame", "all"):
            ns = [q for q in negs if kind == "all" or q["kind"] == kind]
            r = neg_rows.setdefault(kind, [kind, len(ns)])
            r.append(sum(hit(q)[1] for q in ns))
            if kind != "all":
                fooled.setdefault(variant, []).extend(
                    f"{q['label'].split('/img/')[-1]} ({E.local_best({'local': q[variant]}, score)[0]:.3f})"
                    for q in ns if hit(q)[1])
        for q in copies:
            rows = [c for c in q[variant] if c[0] == q["true"]]
            t = th[1 - q["half"]]
            if not rows:
                cause = "no candidate"
            elif len(rows[0]) <= 2:
                cause = "geometry rejected"
            elif score(rows[0]) >= t:
                cause = "found"
            elif rows[0][3] < 39 and min(rows[0][15], rows[0][20]) >= t:
                cause = "pixels pass, < 39 inliers"
            else:
                cause = "pixels below threshold"
            causes.setdefault((q["family"], q["strength"], variant), Counter())[cause] += 1
    head = ["family", "strength", "n"] + (["local before", "union before", "local after", "union after"]
                                          if product else ["local before", "local after"])
    md += [f"Thresholds (half 0 / 1): before {ths['before'][0]:.4f} / {ths['before'][1]:.4f}, "
           f"after {ths['after'][0]:.4f} / {ths['after'][1]:.4f}.", "",
           table(head, list(fam_rows.values())), "",
           table(["negatives", "n", "local before", "local after"], list(neg_rows.values())), ""]
    cause_names = ["found", "no candidate", "geometry rejected", "pixels pass, < 39 inliers", "pixels below threshold"]
    md += [table(["family", "strength", "variant"] + cause_names,
                 [[*k, *(c.get(n, 0) for n in cause_names)] for k, c in sorted(causes.items())]), ""]
    for variant in ("before", "after"):
        md += [f"Negatives matched ({variant}): " + ("; ".join(fooled.get(variant, [])) or "none"), ""]
    return "\n".join(md)


def main(argv: list[str]) -> None:
    def opt(name: str, default: str) -> str:
        return argv[argv.index(name) + 1] if name in argv else default
    product_path = Path(opt("--product", str(OUT / "localfeat.json")))
    product = json.loads(product_path.read_text()) if product_path.exists() else None
    if "--summary" in argv:
        raw = json.loads((OUT / "localfeat_focus.json").read_text())
    else:
        before = {}
        for kv in opt("--before", "").split(","):
            if kv:
                k, v = kv.split("=")
                before[k] = float(v)
        raw = run(opt("--families", "rotate-small,combo").split(","), before, int(opt("--workers", "2")),
                  int(opt("--verify-top", str(E.K_VERIFY))), int(opt("--thumb-nn", "0")))
    print(summarise(raw, product))


if __name__ == "__main__":
    main(sys.argv[1:])

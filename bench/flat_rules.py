"""What accompanies a perceptual-hash match on flat pictures: the evidence to decide hash rules by.

The same index, copies (same seeds) and negatives as ``bench/localfeat_eval.py``, plus generated flat designs
(``bench/shapes_set.py``), checked through the whole product (``Index.observe``: every signal). For every
(query, item) pair the raw row keeps each signal's value before the cross-signal rules, the hashes'
transforms and whole-image distances, and whether the product's resolved observation passed, plus the
query's PDQ quality. ``summarise`` replays variants of the hash rules over the raw distances (the former
rules, the shipped ones, the steps between) and reports recall per kind and strength and false matches per
negative kind, side by side. Tried here and dropped: vetoing a hash match when the local signal's pixel
check of the same pair disagrees; true copies of flat pictures score 0.7-0.9 on it (sharp edges
misregistered by a pixel), so every bar that removed sibling icons removed more copies.

Run: ``python -m bench.flat_rules [--workers 2] [--families a,b] [--summary] [--write]`` (writes ``bench/out/flat_rules.json``
and, with ``--write``, the ``flat_rules`` section of bench/RESULTS.md).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import localfeat_eval as E
from . import shapes_set
from .common import OUT, log, machine, save_json, table

RAW = "flat_rules.json"
_W: dict[str, Any] = {}


def _init(index_path: str) -> None:
    import faiss

    from provenance import Index
    faiss.omp_set_num_threads(1)
    _W["idx"] = Index.open(Path(index_path))


def _pair(raw: list[Any], resolved: list[Any]) -> dict[str, Any]:
    """One (query, item) pair: each signal's raw value (before the cross-signal rules), the hash
    transforms and the whole-image distance, and whether the product's resolved observation passed."""
    row: dict[str, Any] = {}
    for o, r in zip(raw, resolved):
        ev = o.evidence.to_dict() if o.evidence is not None else {}
        row[o.signal] = {"value": round(float(o.value), 4), "passed": bool(r.passed), "rule": r.rule,
                         "transform": ev.get("transform"), "whole": ev.get("whole_distance")}
    return row


def _query(task: E.Task) -> dict[str, Any]:
    import pdqhash

    from provenance.content import load_content
    from provenance.report import resolve
    data, family, strength, kind, true_id, label = task
    content = load_content(data, label)
    _, quality = pdqhash.compute(np.asarray(content.image, dtype=np.uint8))
    seen = _W["idx"].observe(content)
    pairs = [{"id": item_id, **_pair(obs, resolve(obs))} for item_id, obs in seen.observations.items()]
    return {"family": family, "strength": strength, "kind": kind, "true": true_id, "label": label,
            "quality": int(quality), "pairs": pairs}


def run(workers: int = 2, only: list[str] | None = None) -> dict[str, Any]:
    from provenance import Index
    sets = E.build_sets(40, 400, 300, 60)
    # Generated flat designs (bench/shapes_set.py) as a third kind, after the others so the photo and
    # graphics copies keep localfeat_eval's seeds.
    shapes = [("shape", p) for _, p in shapes_set.paths(440)]
    sets["orig"] += shapes[:40]
    sets["dist"] += shapes[40:240]
    sets["neg"] += shapes[240:]
    fams = E.families()
    tmp = tempfile.TemporaryDirectory(prefix="bench-flat-")
    idx = Index.open(Path(tmp.name) / "index", create=True)
    items = [(kind, p.read_bytes(), str(p)) for kind, p in sets["orig"] + sets["dist"]]
    items += [("frame", E._png(im), f"frame-{k}") for k, im in enumerate(sets["frames_idx"])]
    log(f"flat_rules: indexing {len(items)} items")
    ids: dict[str, int] = {}
    for kind, data, label in items:
        r = idx.add([data], source=kind)[0]
        if r.id is not None:
            ids[label] = r.id
    idx.close()
    tasks = E.query_tasks(sets, fams, ids, only=only)
    log(f"flat_rules: {len(tasks)} queries on {workers} workers")
    t0 = time.perf_counter()
    rows = []
    with mp.get_context("fork").Pool(workers, _init, (str(Path(tmp.name) / "index"),)) as pool:
        for k, row in enumerate(pool.imap_unordered(_query, tasks, chunksize=8)):
            rows.append(row)
            if k % 250 == 0:
                log(f"  {k}/{len(tasks)}")
    tmp.cleanup()
    raw = {"queries": rows, "families": only or list(fams), "n_indexed": len(ids), "wall_s": time.perf_counter() - t0, "machine": machine(),
           "duplicates_pdq": E.DUPLICATE_PDQ}
    save_json(RAW, raw)
    return summarise(raw)


# ---------------------------------------------------------------------------------------------------
# Rule variants replayed over the saved pairs' raw values. Each says whether one pair matches.

Rule = Callable[[dict[str, Any]], bool]


def _derived(transform: str | None) -> bool:
    return "+" in (transform or "")


def hash_rule(unavailable: float = 3, whole_only: bool = True, overrule: bool = True) -> Rule:
    """PDQ <= 31, else pHash: <= 8 when PDQ is within 48; when PDQ has no observation of the pair,
    ``unavailable`` (on the whole image only if ``whole_only``); when PDQ is farther, <= 3 unless PDQ
    ``overrule``s it. Local features and SHA-256 pass as the product decided them."""
    def rule(p: dict[str, Any]) -> bool:
        if any(p[k]["passed"] for k in ("sha256", "local-features") if k in p):
            return True
        pdq, ph = p.get("pdq"), p.get("phash")
        if pdq is not None and pdq["value"] <= 31:
            return True
        if ph is None:
            return False
        if pdq is None:
            whole = ph["whole"] if ph["whole"] is not None else 64
            return (whole if whole_only and _derived(ph["transform"]) else ph["value"]) <= unavailable
        if pdq["value"] <= 48:
            return bool(ph["value"] <= 8)
        return not overrule and ph["value"] <= 3
    return rule


VARIANTS: dict[str, Rule] = {
    "former: pHash <= 8 when PDQ cannot speak, <= 3 alone": hash_rule(8, whole_only=False, overrule=False),
    "pHash <= 3 when PDQ cannot speak": hash_rule(3, whole_only=False, overrule=False),
    "... and on the whole image only": hash_rule(3, overrule=False),
    "... and PDQ overrules pHash (shipped)": hash_rule(3),
    "pHash never without PDQ": hash_rule(-1),
    "product as run": lambda p: any(v["passed"] for v in p.values() if isinstance(v, dict)),
}


def summarise(raw: dict[str, Any]) -> dict[str, Any]:
    rows = raw["queries"]
    kinds = ("photo", "graphic", "shape")

    # Negatives that are duplicates in the data (PDQ <= 10 to an indexed item) are left out, as in localfeat.
    def dup(q: dict[str, Any]) -> bool:
        return any(p.get("pdq") and p["pdq"]["value"] <= raw["duplicates_pdq"] for p in q["pairs"])

    copies = [q for q in rows if q["true"] is not None]
    negs = [q for q in rows if q["true"] is None and not dup(q)]
    head = ["rule"] + [f"{k} {s}" for k in kinds for s in ("mild", "strong")] + \
           [f"false {k}" for k in ("photo", "graphic", "frame", "shape")]
    out = []
    for name, rule in VARIANTS.items():
        line: list[Any] = [name]
        for kind in kinds:
            for s in ("mild", "strong"):
                sub = [q for q in copies if q["kind"] == kind and q["strength"] == s]
                found = [any(p["id"] == q["true"] and rule(p) for p in q["pairs"]) for q in sub]
                line.append(f"{np.mean(found):.3f}" if sub else "-")
        for kind in ("photo", "graphic", "frame", "shape"):
            sub = [q for q in negs if q["kind"] == kind]
            line.append(f"{sum(any(rule(p) for p in q['pairs']) for q in sub)}/{len(sub)}")
        out.append(line)
    former, now = VARIANTS["former: pHash <= 8 when PDQ cannot speak, <= 3 alone"], VARIANTS["... and PDQ overrules pHash (shipped)"]
    fam_rows = []
    for fam in raw["families"]:
        for s in ("mild", "strong"):
            line = [fam, s]
            for kind in kinds:
                sub = [q for q in copies if q["family"] == fam and q["strength"] == s and q["kind"] == kind]
                f, w = ([np.mean([any(p["id"] == q["true"] and r(p) for p in q["pairs"]) for q in sub]) for r in (former, now)]
                        if sub else (float("nan"), float("nan")))
                line.append(f"{f:.2f} / {w:.2f}")
            fam_rows.append(line)
    n = {k: sum(q["kind"] == k for q in copies) for k in kinds}
    md = ("## Hash rules on flat pictures (`python -m bench.flat_rules`)\n\n"
          f"One product run (`Index.observe`, every signal) over {len(rows)} queries: copies of 40 photos, 40 "
          f"icons/clip art and 40 generated flat designs (`bench/shapes_set.py`: shapes, flags, box diagrams, bar "
          f"charts, badges) in {len(raw['families'])} families x 2 strengths ({n['photo']} / {n['graphic']} / "
          f"{n['shape']}), and non-indexed negatives: photos, sibling icons, same-frame composites, other "
          f"generated designs; {raw['n_indexed']} items indexed (the localfeat_eval set plus 240 designs). Each row replays "
          f"one hash rule over the same raw distances (local features and SHA-256 as run); recall = the "
          f"original is matched. {raw['machine']}; {raw['wall_s']:.0f} s.\n\n" + table(head, out)
          + "\n\nRecall by family, former / shipped hash rules:\n\n"
          + table(["family", "strength", *kinds], fam_rows))
    return {"markdown": md}


if __name__ == "__main__":
    if "--summary" in sys.argv:
        md = summarise(json.loads((OUT / RAW).read_text()))["markdown"]
    else:
        w = int(sys.argv[sys.argv.index("--workers") + 1]) if "--workers" in sys.argv else 2
        only = sys.argv[sys.argv.index("--families") + 1].split(",") if "--families" in sys.argv else None
        md = run(workers=w, only=only)["markdown"]
    print(md)
    if "--write" in sys.argv:
        E.write_section(md, "flat_rules")

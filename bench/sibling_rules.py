"""Sibling rules for the image hashes, measured offline on a saved ``localfeat_eval`` run (not shipped).

Flat graphics come in families (one icon template with another emblem, one arrow in eight directions) whose
members are 12-44 PDQ bits apart, and most of the sibling negatives ``bench/localfeat_eval.py`` reports as
false matches are pHash matches that PDQ "corroborates" at 26-48 bits. Two rules that use the index itself
as the background, each applied to the saved product matches of every query:

- ``adaptive bar``: PDQ corroborates a pHash match (and lets pHash <= 3 stand) only up to one bit less than
  the distance from the indexed picture to its nearest other indexed picture that PDQ would not match with
  it (> 31 bits; nearer ones are the same picture stored twice or a derivative of it);
- ``ambiguous``: a match decided by a pHash rule is dropped when the query is, within 4 bits, as close to
  another matched picture that is not a duplicate of it (> 10 bits apart).

Run after ``python -m bench.localfeat_eval``: ``python -m bench.sibling_rules`` (rebuilds the same index to
read each indexed picture's stored PDQ hashes; a few minutes). Prints recall per kind and strength, false
matches per kind of negative, and copies that also matched a wrong item.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from provenance import Index
from provenance.signals.image import PDQSignal

from .common import OUT, log
from .localfeat_eval import DUPLICATE_PDQ, RAW, _product_match, build_sets, indexed_items

#: Neighbours PDQ itself would match are the same picture (or a derivative), not siblings.
SIBLING_FROM = PDQSignal.threshold
AMBIGUITY_MARGIN = 4


def stored_pdq(raw: dict[str, Any]) -> dict[int, np.ndarray]:
    """The stored PDQ hashes (packed bytes) of every indexed picture, by the item ids of the saved run."""
    sets = build_sets(raw["n_orig"], raw["n_dist"], raw["n_neg"], raw["n_frames"])
    out: dict[int, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp, Index.open(Path(tmp) / "index", create=True) as idx:
        for _, data, _ in indexed_items(sets):
            r = idx.add([data], source="bench")[0]
            rows = idx.catalog.item_fingerprints(r.id, PDQSignal.name) if r.id is not None else []
            if rows and r.id not in out:  # flat pictures below PDQ's quality gate have none
                out[r.id] = np.array([np.frombuffer(v, np.uint8) for v in rows], dtype=np.uint8)
    return out


def pairwise(hashes: dict[int, np.ndarray]) -> tuple[dict[int, int], np.ndarray]:
    """Item id -> row, and the least PDQ distance between any two stored hashes of each pair of items."""
    ids = sorted(hashes)
    pos = {i: k for k, i in enumerate(ids)}
    flat = np.vstack([hashes[i] for i in ids])
    owner = np.concatenate([[pos[i]] * len(hashes[i]) for i in ids])
    popcount = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(1)
    m = np.full((len(ids), len(ids)), 10_000)
    for row, who in zip(flat, owner):
        d = popcount[flat ^ row].sum(1)
        np.minimum.at(m[who], owner, d)
    np.fill_diagonal(m, 10_000)
    return pos, m


def evaluate(raw: dict[str, Any], pos: dict[int, int], m: np.ndarray, adaptive: bool, ambiguous: bool,
             ambiguous_pdq: bool = False) -> dict:
    """Recall, false matches and wrong-item matches of the product's hash rules with the chosen rules
    (``ambiguous_pdq``: the ambiguity rule drops PDQ-decided matches too)."""
    def bar(item: int) -> float:
        if item not in pos:
            return PDQSignal.corroborating_distance
        others = m[pos[item]][m[pos[item]] > SIBLING_FROM]
        return min(PDQSignal.corroborating_distance, int(others.min()) - 1) if len(others) \
            else PDQSignal.corroborating_distance

    qs = raw["queries"]
    dupes = {q["label"] for q in qs if q["true"] is None
             and any(x["pdq"] is not None and x["pdq"] <= DUPLICATE_PDQ for x in q["prod"])}
    recall: dict[str, list[bool]] = defaultdict(list)
    false, negs = Counter(), Counter()
    wrong = 0
    for q in qs:
        if q["true"] is None and q["label"] in dupes:
            continue
        kept = [(x, x["signal"] not in ("pdq", "phash") or (x["pdq"] is not None and x["pdq"] <= PDQSignal.threshold))
                for x in _product_match(q, corroborating=bar if adaptive else None)]
        if ambiguous:
            kept = [(x, by_pdq) for x, by_pdq in kept if (by_pdq and not ambiguous_pdq) or x["pdq"] is None or not any(
                o["id"] != x["id"] and o["pdq"] is not None and x["id"] in pos and o["id"] in pos
                and m[pos[x["id"]], pos[o["id"]]] > DUPLICATE_PDQ
                and o["pdq"] <= x["pdq"] + AMBIGUITY_MARGIN for o, _ in kept)]
        ids = {x["id"] for x, _ in kept}
        if q["true"] is None:
            negs[q["kind"]] += 1
            false[q["kind"]] += bool(ids)
        else:
            recall[f"{q['kind']} {q['strength']}"].append(q["true"] in ids)
            recall[f"all {q['strength']}"].append(q["true"] in ids)
            wrong += bool(ids - {q["true"]})
    return {"recall": {k: round(float(np.mean(v)), 3) for k, v in sorted(recall.items())},
            "false": {k: f"{false[k]}/{negs[k]}" for k in negs}, "wrong item": wrong}


def main() -> None:
    raw = json.loads((OUT / RAW).read_text())
    log("sibling_rules: rebuilding the index of the saved run")
    pos, m = pairwise(stored_pdq(raw))
    for adaptive, ambiguous in ((False, False), (True, False), (False, True), (True, True)):
        name = " + ".join(n for n, on in (("adaptive bar", adaptive), ("ambiguous", ambiguous)) if on) or "as shipped"
        print(name, json.dumps(evaluate(raw, pos, m, adaptive, ambiguous)))
    print("ambiguous, PDQ's matches too", json.dumps(evaluate(raw, pos, m, False, True, ambiguous_pdq=True)))


if __name__ == "__main__":
    main()

"""Boilerplate and quoting: shared formulas must not make near-duplicates; quotations do not fail the gate.

An index holds ``n_shared`` real documents that all end with the same 15-word sign-off plus ``n_plain``
documents without it. Then, against that index:

* ``clean + sign-off``: documents never indexed, each ending with the sign-off (should be original);
* ``copy + sign-off``: a never-indexed host with a 40-90-word passage of an indexed document planted in it,
  plus the sign-off (must still be found as near-duplicate of that document);
* ``copied tail``: the last sentences of an indexed document *with* its sign-off (copied text that runs
  into boilerplate), planted in a host (must be found);
* ``blockquote``: a passage of an indexed document as a Markdown ``>`` blockquote in a host (should not
  fail the gate: verdict counted stays below near-duplicate);
* ``quote + copy``: a host quoting one sentence of an indexed document and copying the next 40+ words
  verbatim (must fail).

Run: ``python -m bench.boilerplate [--quick] [--label before|after]``; prints a Markdown table and writes
``bench/out/boilerplate-<label>.json``.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from provenance import Index
from provenance.textnorm import sentence_spans, tokenize

from .common import head, log, read_jsonl, save_json
from .text import _passage  # planted passages chosen exactly as the text benchmark chooses them

#: The shared line: 15 words, like a reviewer's standing disclaimer.
SIGN_OFF = "Views expressed here are my own and do not reflect those of any employer or client."


def _plant(host: str, passage: str) -> str:
    sents = sentence_spans(host)
    cut = sents[len(sents) // 2][0] if len(sents) > 1 else len(host)
    return host[:cut] + "\n\n" + passage + "\n\n" + host[cut:]


def run(quick: bool = False) -> dict[str, Any]:
    """Build the index, check every family, return per-family verdict counts."""
    n_shared, n_plain, n_per = (40, 40, 15) if quick else (120, 120, 40)
    rng = random.Random(7)
    docs = read_jsonl("gensim_lee_news.jsonl") + read_jsonl("nltk_movie_reviews.jsonl")
    rng.shuffle(docs)
    docs = [head(d["text"], 200) for d in docs if len(d["text"].split()) >= 100]
    shared = [d + "\n\n" + SIGN_OFF + "\n" for d in docs[:n_shared]]
    plain = docs[n_shared:n_shared + n_plain]
    hosts = docs[n_shared + n_plain:]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        idx = Index(Path(tmp) / "idx", create=True)
        t0 = time.perf_counter()
        ids = [r.id for r in idx.add(shared, source="blog")]
        idx.add(plain, source="news")
        log(f"boilerplate: indexed {n_shared} + {n_plain} documents in {time.perf_counter() - t0:.0f} s")
        hi = 0

        def host() -> str:
            nonlocal hi
            hi += 1
            return hosts[hi % len(hosts)]

        def check(family: str, draft: str, true_id: int | None) -> None:
            rep = idx.check_text(draft)
            m = next((m for m in rep.matches if m.id == true_id), None) if true_id is not None else None
            shingle = [o for mm in rep.matches + rep.near_misses for o in mm.observations
                       if o.signal == "text-shingle"]
            rows.append({"family": family, "verdict": rep.verdict,
                         "found": None if true_id is None else (m is not None and m.verdict != "original"),
                         "found_verdict": m.verdict if m is not None else "original",
                         "quoted": sum(1 for mm in rep.matches if getattr(mm, "quoted", None)),
                         "boilerplate": any(o.to_dict().get("boilerplate") for o in shingle),
                         "counted": [(mm.id, mm.verdict, mm.signal) for mm in rep.matches
                                     if getattr(mm, "counts", True)]})

        for _ in range(n_per):
            check("clean + sign-off", host() + "\n\n" + SIGN_OFF + "\n", None)
        for _ in range(n_per):
            j = rng.randrange(n_shared)
            span = _passage(shared[j], rng)
            if span is None:
                continue
            check("copy + sign-off", _plant(host(), shared[j][span[0]:span[1]]) + "\n\n" + SIGN_OFF, ids[j])
        for _ in range(n_per):
            j = rng.randrange(n_shared)
            sents = sentence_spans(docs[j])
            tail = docs[j][sents[-3][0]:] if len(sents) >= 3 else docs[j]
            check("copied tail", _plant(host(), tail + "\n\n" + SIGN_OFF), ids[j])
        for _ in range(n_per):
            j = rng.randrange(n_shared)
            span = _passage(shared[j], rng)
            if span is None:
                continue
            quote = "\n".join("> " + line for line in shared[j][span[0]:span[1]].splitlines())
            check("blockquote", _plant(host(), quote), ids[j])
        for _ in range(n_per):
            j = rng.randrange(n_shared)
            sents = sentence_spans(docs[j])
            if len(sents) < 5:
                continue
            first = docs[j][sents[1][0]:sents[1][1]]
            rest = docs[j][sents[2][0]:sents[4][1]]
            if len(tokenize(rest)) < 30:
                continue
            check("quote + copy", _plant(host(), f"As the author put it, “{first}” {rest}"), ids[j])
        idx.close()
    return {"n_shared": n_shared, "n_plain": n_plain, "rows": rows}


def markdown(res: dict[str, Any], label: str) -> str:
    """One table: per family, how many drafts, verdict counts, the true source found, boilerplate/quoted."""
    fams: dict[str, list[dict[str, Any]]] = {}
    for r in res["rows"]:
        fams.setdefault(r["family"], []).append(r)
    out = [f"**{label}** ({res['n_shared']} indexed documents share the sign-off, {res['n_plain']} do not)", "",
           "| drafts | n | near-duplicate or stronger | paraphrase | original | true source found "
           "(near-dup) | boilerplate evidence | quoted matches |",
           "|---|---|---|---|---|---|---|---|"]
    for fam, rows in fams.items():
        v = Counter(r["verdict"] for r in rows)
        strong = v["exact"] + v["near-duplicate"]
        found = [r for r in rows if r["found"] is not None]
        near = sum(1 for r in found if r["found_verdict"] in ("exact", "near-duplicate"))
        out.append(f"| {fam} | {len(rows)} | {strong} | {v['paraphrase']} | {v['original']} | "
                   + (f"{near}/{len(found)}" if found else "-")
                   + f" | {sum(r['boilerplate'] for r in rows)} | {sum(r['quoted'] > 0 for r in rows)} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    """Command line: ``--quick`` (small sizes) and ``--label`` (names the JSON output)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--label", default="after")
    args = ap.parse_args(argv)
    res = run(quick=args.quick)
    save_json(f"boilerplate-{args.label}.json", res)
    print(markdown(res, args.label))


if __name__ == "__main__":
    main(sys.argv[1:])

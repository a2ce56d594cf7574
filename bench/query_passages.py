"""How a checked draft's passages are embedded: the stored form against cheaper query forms, side by side.

``python -m bench.query_passages [--quick] [--write]``; writes the ``query_passages`` section of
``bench/RESULTS.md`` and ``bench/out/query_passages.json``.

Indexed passages overlap by half and go through MiniLM in fp32 (the stored form). A check embeds the
draft's passages too, and that is most of a warm text check (bench/RESULTS.md, "Text check speed"). Ways
to make it cheaper, each set on the signal classes:

* ``EmbedSignal.query_precision = "int8"``: MiniLM through the int8 graph for the draft only (vectors
  compared with stored fp32 ones; cosine drift up to ~0.03, bench/RESULTS.md "Text encoder speed"), and
  ``query_exact_from``: the passages whose nearest stored passage reaches that cosine embedded again in
  fp32, so int8 only screens;
* ``query_refine_at`` (:meth:`provenance.signals.text.PassageSignal.query_fingerprint`): every other
  overlapping draft passage first (they tile the text: half the passages), the ones between only beside a
  first-pass passage whose nearest stored passage reaches that cosine. Tiling alone loses the draft window
  wholly inside a short copied block; refining puts it back where the draft resembles something indexed.

Every form is run end to end through the product (``Index.check_content``) on the same two indexes:
``bench/reword.py``'s test split (reworded English positives, same-topic and clean negatives) and
``bench/translation.py``'s drafts (translated blocks planted in de/fr/es/it manual pages, same-topic
negatives in those languages and in English). Plus the warm check of a 1,000-word draft (median of
rounds, forms in turn) and the draft encoding alone.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from provenance.checker import Index
from provenance.content import load_content
from provenance.signals import EmbedSignal, XlingualSignal
from provenance.signals.text import nearest_cosine

from . import reword, translation
from .common import log, machine, save_json, table, wilson_hi
from .manpages import ensure_manpages, load_pages
from .sections import section_cli
from .text_speed import _draft_1000, query_form

#: name -> (MiniLM query precision, MiniLM ``query_refine_at``, USE ``query_refine_at``, MiniLM
#: ``query_exact_from``, USE skipped where every stored and draft passage is in one language); refine
#: ``None`` = every overlapping passage, 2.0 = every other passage only (no cosine reaches it). The first is
#: the stored form; the last is what ships.
FORMS: dict[str, tuple[str, float | None, float | None, float | None, bool]] = {
    "stored form (fp32, overlapping)": ("fp32", None, None, None, False),
    "MiniLM int8": ("int8", None, None, None, False),
    "MiniLM int8, both tiled": ("int8", 2.0, 2.0, None, False),
    "MiniLM int8, both refined at 0.45 / 0.40": ("int8", 0.45, 0.40, None, False),
    "as above, MiniLM fp32 again from 0.55": ("int8", 0.45, 0.40, 0.55, False),
    "shipped: as above, USE skipped where one language": ("int8", 0.45, 0.40, 0.55, True),
}


def run(quick: bool = False) -> dict[str, Any]:
    t0 = time.perf_counter()
    r_indexed, r_drafts = reword.build(quick)
    reword.measure(r_indexed, r_drafts)  # the shingle runs that leave verbatim-sharing negatives out
    pages = load_pages(ensure_manpages())
    t_sources, t_drafts = translation.build(pages, *((15, 25) if quick else (40, 60)))
    draft_1000 = _draft_1000()
    res: dict[str, Any] = {"reword": {}, "translation": {}, "warm_ms": {}, "encode_ms": {}}
    with tempfile.TemporaryDirectory(prefix="bench-qp-") as tmp:
        r_idx, r_ids = reword.product_index(Path(tmp) / "reword", r_indexed)
        t_idx = Index.open(Path(tmp) / "translation", create=True)
        t_ids = [r.id for r in t_idx.add([t for _, t in t_sources], source="manpages")]
        draft_path = Path(tmp) / "draft.txt"
        draft_path.write_text(draft_1000)
        try:
            for name, form in FORMS.items():
                with query_form(*form):
                    log(f"query_passages: {name}")
                    res["reword"][name] = reword.product_counts(r_idx, r_ids, r_drafts)
                    res["translation"][name] = translation.product_counts(t_idx, t_ids, t_drafts)
            # Speed: the forms take turns round by round, every model loaded first.
            times: dict[str, list[float]] = {n: [] for n in FORMS}
            enc: dict[str, list[float]] = {n: [] for n in FORMS}
            content = load_content(draft_path)
            for rnd in range(-1, 3 if quick else 7):
                for name, form in FORMS.items():
                    with query_form(*form):
                        t = time.perf_counter()
                        r_idx.check(draft_path)
                        dt = time.perf_counter() - t
                        t = time.perf_counter()
                        for s in r_idx.signals:
                            if (isinstance(s, (EmbedSignal, XlingualSignal))
                                    and r_idx.adapter(s).nothing_to_find(content) is None):
                                s.query_fingerprint(content, nearest_cosine(r_idx, s))
                        de = time.perf_counter() - t
                    if rnd >= 0:  # round -1 loads every model
                        times[name].append(dt)
                        enc[name].append(de)
            res["warm_ms"] = {n: statistics.median(v) * 1000 for n, v in times.items()}
            res["encode_ms"] = {n: statistics.median(v) * 1000 for n, v in enc.items()}
            res["warm_runs_ms"] = {n: [round(x * 1000) for x in v] for n, v in times.items()}
        finally:
            r_idx.close()
            t_idx.close()
    res["seconds"] = time.perf_counter() - t0
    save_json("query_passages.json", res)
    return res


def _rate(k: int, n: int) -> str:
    return f"{k / n:.3f} ({k}/{n})" if n else "–"


def summarise(res: dict[str, Any], quick: bool) -> str:
    forms = list(FORMS)
    rw, tr = res["reword"], res["translation"]
    rows = []
    for name in forms:
        r = rw[name]
        neg = [r[f] for f in reword.NEGATIVE_SETS if f in r]
        t = tr[name]
        rows.append([name, res["warm_ms"][name], res["encode_ms"][name],
                     *(_rate(r[f]["found"], r[f]["n"]) if f in r else "–" for f in reword.POSITIVE_SETS),
                     _rate(sum(x["false"] for x in neg), sum(x["n"] for x in neg)),
                     _rate(sum(x["found"] for x in t.values()), sum(x["pos"] for x in t.values())),
                     _rate(sum(x["wrong"] for x in t.values()), sum(x["pos"] for x in t.values())),
                     _rate(sum(x["false"] for x in t.values()), sum(x["neg"] for x in t.values()))])
    langs = sorted({lang for t in tr.values() for lang in t})
    lrows = [[name, *(_rate(tr[name][lang]["found"], tr[name][lang]["pos"]) + " / " +
                      _rate(tr[name][lang]["false"], tr[name][lang]["neg"]) for lang in langs)] for name in forms]
    frows = []
    for fam in (*reword.POSITIVE_SETS, *reword.REFERENCE_SETS, *reword.NEGATIVE_SETS):
        if fam not in rw[forms[0]]:
            continue
        key = "false" if fam in reword.NEGATIVE_SETS else "found"
        frows.append([fam, rw[forms[0]][fam]["n"], *(_rate(rw[n][fam][key], rw[n][fam]["n"]) for n in forms)])
    neg_n = sum(rw[forms[0]][f]["n"] for f in reword.NEGATIVE_SETS if f in rw[forms[0]])
    return "\n".join([
        "## Query passages: the stored form against cheaper draft-side forms (end to end)",
        "",
        "Every form through `Index.check_content` on the same indexes: `bench/reword.py`'s test split and "
        "`bench/translation.py`'s drafts (see `bench/query_passages.py`). Warm check: a 1,000-word draft against "
        "the reword index, every model loaded, forms in turn round by round (median); encode: the draft's "
        f"MiniLM + USE query passages alone. False matches: {neg_n} reword negatives (95 % upper bound of 0/n: "
        f"{wilson_hi(0, neg_n):.3f}).",
        "",
        table(["draft passages", "warm check ms", "encode ms", *(f"{f} found" for f in reword.POSITIVE_SETS),
               "reword negatives false", "translated found", "wrong page", "translation negatives false"], rows),
        "",
        "Per family (found for positives, false for negatives):",
        "",
        table(["set", "drafts", *forms], frows),
        "",
        "Per language, translated blocks found / negatives falsely matched:",
        "",
        table(["draft passages", *langs], lrows),
        "",
        f"_{'quick' if quick else 'full'} run {time.strftime('%Y-%m-%d %H:%M')}, {res['seconds']:.0f} s; "
        f"{machine()}; warm runs ms: " + "; ".join(f"{n}: {v}" for n, v in res["warm_runs_ms"].items()) + "_",
    ])


def main() -> None:
    section_cli("query_passages", __doc__ or "", run, summarise)


if __name__ == "__main__":
    main()

"""``python -m bench [--quick] [--only images|text|speed]``: regenerate ``bench/RESULTS.md``.

Raw per-query results go to ``bench/out/*.json`` (git-ignored). ``--quick`` uses small samples (a few
minutes on an idle 2-core machine); the full run uses larger ones. Sections not run keep their previous
text in RESULTS.md (kept between ``<!-- section:NAME -->`` markers).
"""

from __future__ import annotations

import argparse
import json
import re
import time

from .common import OUT, ROOT, log, machine

SECTIONS = ("images", "text", "speed")
RESULTS = ROOT / "RESULTS.md"


def _load_sections() -> dict[str, str]:
    if not RESULTS.exists():
        return {}
    text = RESULTS.read_text()
    return {m.group(1): m.group(2).strip() for m in
            re.finditer(r"<!-- section:(\w+) -->\n(.*?)<!-- /section:\1 -->", text, re.S)}


def _thresholds(summaries: dict[str, dict]) -> str:
    from provenance.signals import EmbedSignal, PDQSignal, PHashSignal, ShingleSignal
    rows = []
    if "images" in summaries:
        r = summaries["images"]["recommend"]
        rows.append(f"| pdq | ≤ {PDQSignal.threshold} | ≤ {r['pdq']['t']} | FMR {r['pdq']['fmr']:.4f}, "
                    f"recall {r['pdq']['recall']:.3f} (all copies) |")
        rows.append(f"| phash | ≤ {PHashSignal.threshold} | ≤ {r['phash']['t']} | FMR {r['phash']['fmr']:.4f}, "
                    f"recall {r['phash']['recall']:.3f} |")
    if "text" in summaries:
        r = summaries["text"]["recommend"]
        rows.append(f"| text-shingle | ≥ {ShingleSignal.threshold} words | lowest with FMR ≤ 0.1 %: "
                    f"{r['shingle']['t']} | FMR {r['shingle']['fmr']:.4f}, recall {r['shingle']['recall']:.3f} |")
        # The shipped bar is on the paraphrase score (bench/reword.py); this curve is raw cosine alone.
        rows.append(f"| text-embed | paraphrase score ≥ {EmbedSignal.threshold} (see Reworded copies) | cosine "
                    f"alone ≥ {r['embed']['t']:.2f} | FMR {r['embed']['fmr']:.4f}, recall {r['embed']['recall']:.3f} "
                    "(all plants) |")
    if not rows:
        return ""
    return "\n".join(["| signal | current default | measured (FMR ≤ 0.1 %) | evidence |", "|---|---|---|---|"] + rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small samples (a few minutes)")
    ap.add_argument("--only", choices=SECTIONS, action="append", help="run only this part (repeatable)")
    ap.add_argument("--reuse", action="store_true",
                    help="re-summarise the raw JSON in bench/out instead of re-running the queries")
    args = ap.parse_args(argv)
    todo = args.only or list(SECTIONS)
    sections = _load_sections()
    summaries: dict[str, dict] = {}
    started = time.time()
    for name in todo:
        t = time.time()
        if args.reuse and name == "speed":
            from . import speed as mod  # type: ignore[no-redef]
            s = mod.summarise(json.loads((OUT / "speed.json").read_text()))
            summaries[name] = s
            old = re.search(r"\n(_[^\n]*_)\s*$", sections.get(name, ""))
            sections[name] = s["markdown"] + "\n" + (old.group(1) if old else "_Re-summarised from bench/out._") + "\n"
            continue
        if args.reuse and name in ("images", "text"):
            if name == "images":
                from . import images as mod
                raw = json.loads((OUT / "images.json").read_text())
                s = mod.summarise(raw)
            else:
                from . import text as mod  # type: ignore[no-redef]
                s = mod.summarise(*(json.loads((OUT / f"text_{k}.json").read_text())
                                    for k in ("pan", "planted", "clough")))
            summaries[name] = s
            old = re.search(r"\n(_[^\n]*_)\s*$", sections.get(name, ""))
            sections[name] = s["markdown"] + "\n" + (old.group(1) if old else "_Re-summarised from bench/out._") + "\n"
            continue
        if name == "images":
            from . import images as mod
        elif name == "text":
            from . import text as mod  # type: ignore[no-redef]
        else:
            from . import speed as mod  # type: ignore[no-redef]
        s = mod.run(quick=args.quick)
        summaries[name] = s
        sections[name] = (s["markdown"] + f"\n_{'quick' if args.quick else 'full'} run, "
                          f"{time.strftime('%Y-%m-%d %H:%M')}, {time.time() - t:.0f} s; {machine()}._\n")
        log(f"{name} done in {time.time() - t:.0f} s")
    OUT.mkdir(parents=True, exist_ok=True)
    for name, summ in summaries.items():
        if "recommend" in summ:
            (OUT / f"recommend_{name}.json").write_text(json.dumps(summ["recommend"], default=float))
    recs = {n: {"recommend": json.loads((OUT / f"recommend_{n}.json").read_text())}
            for n in ("images", "text") if (OUT / f"recommend_{n}.json").exists()}
    thr = _thresholds(recs)
    # Re-read the file: a section written meanwhile (by hand or another run) is kept unless rerun here.
    sections = {**_load_sections(), **{k: v for k, v in sections.items() if k in summaries}}
    if thr:
        sections["thresholds"] = ("## Threshold calibration (target: ≤ 0.1 % false matches on non-copies)\n\n"
                                  + thr + "\n")
    parts = ["# provenance-checker benchmark results", "",
             "Regenerate with `python -m bench` (full) or `python -m bench --quick`; raw per-query data in "
             "`bench/out/`. Data: `../shared/data` (see its README). Every number below was produced by the "
             "code in `bench/` on the machine named under each section.", ""]
    # "recommendations" is written by hand from the tables and kept as is by every run.
    # Sections written by standalone benchmarks (bench.sections.write_section) follow, kept as they are.
    extra = tuple(n for n in sections if n not in ("thresholds", "recommendations") + SECTIONS)
    for name in ("thresholds", "recommendations") + SECTIONS + extra:
        if name in sections:
            parts += [f"<!-- section:{name} -->", sections[name].strip(), f"<!-- /section:{name} -->", ""]
    RESULTS.write_text("\n".join(parts))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "summary.json").write_text(json.dumps(
        {k: {kk: vv for kk, vv in v.items() if kk not in ("markdown", "raw")} for k, v in summaries.items()},
        indent=1, default=float))
    log(f"wrote {RESULTS} in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()

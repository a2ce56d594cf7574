"""Work budget of ``provenance check`` on long and hostile texts (issue 11, item 6).

Each case is one ``provenance check`` process with a wall-clock limit; the table gives its wall time,
its peak resident memory (from ``wait4``, so it is the check's own peak) and its exit code. Cases:

- ``prose-<size>``: ordinary prose (US inaugural and State of the Union addresses, not in the index)
  cut to 10 KB .. 10 MB: check time must grow linearly with length and stay in seconds;
- ``one-letter-words``: 4 MB of two million one-letter words;
- ``single-line-19mb``: a 19 MB text with no line break (prose joined with spaces);
- ``nested-divs``: 50,000 nested ``<div>`` elements around a sentence;
- ``huge-1gb``: a 1 GB file (refused by size; the peak memory shows whether it was read first).

The index holds 20 Brown corpus samples (built once under ``--work``).

    python -m bench.long_text --work /tmp/lt                      # every case, 120 s limit each
    python -m bench.long_text --work /tmp/lt --only prose --sizes 10k,100k,1m --limit 60
    python -m bench.long_text --work /tmp/lt --provenance /path/to/other/venv/bin/provenance
    python -m bench.long_text --work /tmp/lt --in-process            # check time only, model warm
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .common import TEXT

SIZES = {"10k": 10_000, "100k": 100_000, "500k": 500_000, "1m": 1_000_000, "2m": 2_000_000,
         "5m": 5_000_000, "10m": 10_000_000}


def _prose(n_bytes: int) -> str:
    with open(TEXT / "nltk_speeches.jsonl", encoding="utf-8") as f:
        speeches = [json.loads(line)["text"] for line in f]
    text = "\n\n".join(speeches)
    while len(text) < n_bytes:  # 2.9 MB of speeches; longer cases repeat them
        text += "\n\n" + text
    return text[:n_bytes]


def build_index(work: Path, provenance: str) -> Path:
    """The shared index: 20 Brown corpus samples (built once)."""
    idx = work / "idx"
    if (idx / "catalog.sqlite").exists():
        return idx
    src = work / "brown"
    src.mkdir(parents=True, exist_ok=True)
    with open(TEXT / "nltk_brown.jsonl", encoding="utf-8") as f:
        for i, line in zip(range(20), f):
            (src / f"brown{i:02d}.txt").write_text(json.loads(line)["text"], encoding="utf-8")
    subprocess.run([provenance, "add", "--index", str(idx), "--recursive", "-q", str(src)], check=True,
                   stdout=subprocess.DEVNULL)
    return idx


def make_inputs(work: Path, only: str | None, sizes: list[str]) -> dict[str, Path]:
    """Write the case files (kept between runs)."""
    d = work / "inputs"
    d.mkdir(parents=True, exist_ok=True)
    cases: dict[str, Path] = {}
    if only in (None, "prose"):
        for s in sizes:
            p = d / f"prose-{s}.txt"
            if not p.exists():
                p.write_text(_prose(SIZES[s]), encoding="utf-8")
            cases[f"prose-{s}"] = p
    if only in (None, "hostile"):
        p = d / "one-letter-words.txt"
        if not p.exists():
            rng = random.Random(11)
            p.write_text(" ".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(2_000_000)))
        cases["one-letter-words"] = p
        p = d / "single-line-19mb.txt"
        if not p.exists():
            p.write_text(" ".join(_prose(19_000_000).split()), encoding="utf-8")
        cases["single-line-19mb"] = p
        p = d / "nested-divs.html"
        if not p.exists():
            p.write_text("<!DOCTYPE html><html><body>" + "<div>" * 50_000 + "A sentence deep inside fifty "
                         "thousand nested elements." + "</div>" * 50_000 + "</body></html>")
        cases["nested-divs"] = p
        p = d / "huge-1gb.txt"
        if not p.exists():
            with open(p, "wb") as f:
                block = b"lorem ipsum dolor sit amet " * 40_000
                f.writelines(block for _ in range(1_000_000_000 // len(block) + 1))
        cases["huge-1gb"] = p
    return cases


def run_case(provenance: str, idx: Path, path: Path, limit: float) -> dict[str, Any]:
    """One ``provenance check`` with a time limit: wall seconds, peak RSS (MB), exit code."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([provenance, "check", "--index", str(idx), "--json", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    out: dict[str, Any] = {}
    try:
        stdout, stderr = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        stdout, stderr = proc.communicate()
        out["timed_out"] = True
    # communicate() reaped the child; its rusage is in RUSAGE_CHILDREN, which is a maximum over all
    # children, so each case runs in a fresh helper process (see main) to read its own peak.
    import resource
    out.update(seconds=round(time.perf_counter() - t0, 2), exit=proc.returncode,
               peak_mb=round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1))
    try:
        doc = json.loads(stdout)
        rep = doc["reports"][0]
        out["verdict"] = rep["verdict"]
        out["skipped"] = rep.get("skipped", [])
    except (ValueError, KeyError, IndexError):
        out["stderr_tail"] = stderr.decode(errors="replace")[-300:]
    return out


def run_in_process(idx: Path, cases: dict[str, Path]) -> list[dict[str, Any]]:
    """Time ``Index.check`` per case in this process with the model already loaded (no start-up cost)."""
    import resource

    from provenance import Index
    from provenance.errors import BadInputError

    rows = []
    with Index.open(idx) as index:
        index.signal("text-embed").encode(["warm up"])  # type: ignore[attr-defined]
        for name, path in cases.items():
            t0 = time.perf_counter()
            try:
                rep = index.check(path)
                verdict, skipped = rep.verdict, len(rep.skipped)
            except BadInputError as exc:
                verdict, skipped = f"bad input: {exc}"[:80], 0
            rows.append({"case": name, "bytes": path.stat().st_size, "seconds": round(time.perf_counter() - t0, 2),
                         "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                         "verdict": verdict, "skipped": skipped})
            print(f"{name:<20} {rows[-1]['bytes']:>12,} B  {rows[-1]['seconds']:>8} s  peak so far "
                  f"{rows[-1]['peak_mb']:>8} MB  {verdict}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/provenance-long-text"))
    ap.add_argument("--provenance", default=shutil.which("provenance") or "provenance")
    ap.add_argument("--only", choices=["prose", "hostile"], default=None)
    ap.add_argument("--sizes", default="10k,100k,1m,10m")
    ap.add_argument("--limit", type=float, default=120.0, help="seconds per case before it is killed")
    ap.add_argument("--in-process", action="store_true",
                    help="time Index.check in this process, model loaded once (no start-up in the numbers)")
    ap.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case in this process
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    idx = build_index(args.work, args.provenance)
    if args.case:
        print(json.dumps(run_case(args.provenance, idx, Path(args.case), args.limit)))
        return
    cases = make_inputs(args.work, args.only, args.sizes.split(","))
    if args.in_process:
        rows = run_in_process(idx, cases)
        (args.work / "long_text_in_process.json").write_text(json.dumps(rows, indent=1))
        return
    rows = []
    for name, path in cases.items():
        # A fresh helper per case so RUSAGE_CHILDREN's maximum is this case's own peak.
        r = subprocess.run([sys.executable, "-m", "bench.long_text", "--work", str(args.work), "--provenance",
                            args.provenance, "--limit", str(args.limit), "--case", str(path)],
                           capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent, check=False)
        res = json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else {"error": r.stderr[-300:]}
        res["case"], res["bytes"] = name, path.stat().st_size
        rows.append(res)
        print(f"{name:<20} {res['bytes']:>12,} B  {res.get('seconds', '-'):>8} s  "
              f"{res.get('peak_mb', '-'):>8} MB  exit {res.get('exit')}  "
              f"{'TIMED OUT ' if res.get('timed_out') else ''}{res.get('verdict', res.get('stderr_tail', ''))}",
              flush=True)
        for s in res.get("skipped", []):
            print(f"    skipped {s.get('signal')}: {s.get('reason')}", flush=True)
    out = args.work / "long_text.json"
    out.write_text(json.dumps(rows, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

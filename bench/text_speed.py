"""Text encoder speed: MiniLM through ONNX Runtime (fp32, int8) side by side with plain sentence-transformers
on the same passages, and USE multilingual for scale.

``python -m bench.text_speed [--quick]`` writes the ``text_speed`` section of ``bench/RESULTS.md``.

* add: passages/s encoding the same news passages (``passage_spans`` of the Lee corpus), batch as the
  signal batches them; the encoder is warmed first, so this is steady-state throughput.
* warm check: one 1,000-word draft (Brown corpus) cut into passages and encoded, model already loaded.
* cold: a fresh interpreter that imports what it needs, loads the model and encodes that draft's passages,
  interpreter start included (``python -c``), as a pre-commit hook pays it on every commit. Also a cold
  ``provenance check`` of the draft against a small index, which (until the signal is rewired) still goes
  through sentence-transformers, and a bare ``import provenance`` for the floor.

Every figure is the median of several runs. Cold runs use the exported ONNX graph already in the cache (the
export itself is a one-time cost, reported separately).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from provenance.encoders import (
    OnnxMiniLMEncoder,
    SentenceTransformerEncoder,
    UseMultilingualEncoder,
    default_model_path,
    export_onnx,
)
from provenance.signals.text import passage_spans

from .common import OUT, log, machine, read_jsonl, table
from .sections import write_section


def _median(fn: Callable[[], Any], repeat: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


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
from provenance.signals.text import passage_spans
text = open(sys.argv[1]).read()
OnnxMiniLMEncoder().encode([text[a:b] for a, b in passage_spans(text)])
"""
COLD_ST = """
import sys
from provenance.encoders import SentenceTransformerEncoder
from provenance.signals.text import passage_spans
text = open(sys.argv[1]).read()
SentenceTransformerEncoder().encode([text[a:b] for a, b in passage_spans(text)])
"""
COLD_USE = """
import sys
from provenance.encoders import UseMultilingualEncoder
from provenance.signals.text import passage_spans
text = open(sys.argv[1]).read()
UseMultilingualEncoder().encode([text[a:b] for a, b in passage_spans(text)])
"""


def _cold(args: list[str], repeat: int, env: dict[str, str]) -> tuple[float, list[float]]:
    def once() -> None:
        # Exit 1 is a verdict (a match), not a failure.
        rc = subprocess.run(args, check=False, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL).returncode
        if rc not in (0, 1):
            raise RuntimeError(f"{' '.join(args[:3])}... exited {rc}")
    once()  # page cache warm, as on a machine that committed a minute ago
    return _median(once, repeat)


def run(quick: bool = False) -> dict[str, Any]:
    t0 = time.time()
    n_add, rep_add, rep_warm, rep_cold = (96, 3, 3, 3) if quick else (192, 3, 5, 5)
    passages = _passages(n_add)
    draft = _draft_1000()
    draft_passages = [draft[a:b] for a, b in passage_spans(draft)]
    raw: dict[str, Any] = {"passages": len(passages), "draft_passages": len(draft_passages),
                           "mean_words": float(np.mean([len(p.split()) for p in passages]))}

    # One-time export cost (into a throwaway cache, so the user cache stays as it is).
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        export_onnx(default_model_path(), Path(tmp) / "m.onnx")
        raw["export_s"] = time.perf_counter() - t

    encoders = {"sentence-transformers (torch fp32)": SentenceTransformerEncoder(),
                "ONNX Runtime fp32": OnnxMiniLMEncoder(),
                "ONNX Runtime int8 (dynamic, per-channel, MatMul)": OnnxMiniLMEncoder(precision="int8"),
                "USE multilingual v3 (numpy)": UseMultilingualEncoder()}
    vectors: dict[str, np.ndarray] = {}
    rows: dict[str, dict[str, Any]] = {}
    for name, enc in encoders.items():
        enc.encode(passages[:8])  # load (and export / quantise once) outside the timing
        add_s, add_all = _median(lambda enc=enc, name=name: vectors.__setitem__(name, enc.encode(passages)),
                                 rep_add)
        warm_s, warm_all = _median(lambda enc=enc: enc.encode(draft_passages), rep_warm)
        rows[name] = {"add_per_s": len(passages) / add_s, "add_runs_s": add_all,
                      "warm_ms": warm_s * 1000, "warm_runs_s": warm_all}
        log(f"{name}: add {rows[name]['add_per_s']:.1f} passages/s, warm 1,000 words {warm_s * 1000:.0f} ms")
    ref = vectors["sentence-transformers (torch fp32)"]
    for name, v in vectors.items():
        if v.shape == ref.shape:
            cos = np.einsum("ij,ij->i", v, ref)
            rows[name]["max_abs_diff"] = float(np.abs(v - ref).max())
            rows[name]["min_cosine"] = float(cos.min())

    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    with tempfile.TemporaryDirectory() as tmp:
        draft_path = Path(tmp) / "draft.md"
        draft_path.write_text(draft)
        cold: dict[str, tuple[float, list[float]]] = {}
        cold["python -c 'import provenance'"] = _cold([sys.executable, "-c", "import provenance"], rep_cold, env)
        cold["ONNX fp32: import, load, encode the draft"] = _cold(
            [sys.executable, "-c", COLD_ONNX, str(draft_path)], rep_cold, env)
        cold["sentence-transformers: import, load, encode the draft"] = _cold(
            [sys.executable, "-c", COLD_ST, str(draft_path)], rep_cold, env)
        cold["USE multilingual: import, load, encode the draft"] = _cold(
            [sys.executable, "-c", COLD_USE, str(draft_path)], rep_cold, env)
        # The whole command as a hook runs it, against a small index of news items.
        idx = Path(tmp) / "idx"
        cli = [sys.executable, "-m", "provenance.cli.main"]
        docs = [d["text"] for d in read_jsonl("gensim_lee_news.jsonl")[:20]]
        for k, d in enumerate(docs):
            (Path(tmp) / f"n{k}.txt").write_text(d)
        subprocess.run([*cli, "add", "--index", str(idx), "--quiet", *(str(Path(tmp) / f"n{k}.txt")
                                                                        for k in range(len(docs)))],
                       check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cold["provenance check draft.md (current code: sentence-transformers)"] = _cold(
            [*cli, "check", "--index", str(idx), "--quiet", str(draft_path)], rep_cold, env)
    raw["rows"], raw["cold"] = rows, {k: {"median_s": v[0], "runs_s": v[1]} for k, v in cold.items()}
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
          "of several runs; the machine was shared with other jobs (load average 6–11 on 2 cores during the "
          "runs), so absolute times are pessimistic and the ratios are the figures to read. One-time ONNX export "
          f"with torch: {raw['export_s']:.1f} s."), "",
          table(["encoder", "add passages/s", "× sentence-transformers", "warm 1,000-word encode ms",
                 "max |Δ| vs s-t", "min cosine vs s-t"],
                [[name, r["add_per_s"], r["add_per_s"] / st["add_per_s"], r["warm_ms"],
                  f"{r['max_abs_diff']:.1e}" if "max_abs_diff" in r else "–",
                  f"{r['min_cosine']:.4f}" if "min_cosine" in r else "–"] for name, r in rows.items()]), "",
          "Cold (fresh interpreter per run, interpreter start included, files in the page cache):", "",
          table(["command", "median s", "runs s"],
                [[k, v["median_s"], ", ".join(f"{x:.2f}" for x in v["runs_s"])] for k, v in raw["cold"].items()]),
          "", (f"_{'quick' if quick else 'full'} run, {time.strftime('%Y-%m-%d %H:%M')}, {raw['seconds']:.0f} s; "
          f"{machine()}; torch threads = onnxruntime threads = cores._")]
    return {"markdown": "\n".join(md)}


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.text_speed", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer passages and repeats")
    args = ap.parse_args()
    s = run(quick=args.quick)
    write_section("text_speed", s["markdown"])
    log("wrote the text_speed section of bench/RESULTS.md")


if __name__ == "__main__":
    main()

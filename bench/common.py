"""Shared helpers for the benchmark: data locations, timing, tables, popcount."""

from __future__ import annotations

import json
import math
import os
import platform
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out"
#: The shared development data (read-only; never copied into the repository).
DATA = Path(os.environ.get("PROVENANCE_BENCH_DATA", ROOT.parent.parent / "shared" / "data"))
if not DATA.exists():
    DATA = Path("/work/shared/data")
IMAGES = DATA / "images" / "clothing-small"
TEXT = DATA / "text"
SEED = 20240501


def image_paths() -> list[Path]:
    """Every clothing photo, in a seeded random order (the same on every machine)."""
    paths = sorted(IMAGES.rglob("*.jpg"))
    random.Random(SEED).shuffle(paths)
    return paths


def read_jsonl(name: str) -> list[dict[str, Any]]:
    with open(TEXT / name, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def save_json(name: str, obj: Any) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    p = OUT / name
    p.write_text(json.dumps(obj, indent=1, default=float))
    return p


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def machine() -> str:
    return f"{platform.platform()}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3f}" if abs(v) < 100 else f"{v:,.0f}"
        return str(v)
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


_POP = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint16)


def hamming_matrix(q: np.ndarray, r: np.ndarray, chunk: int = 64) -> np.ndarray:
    """Pairwise Hamming distances between rows of packed-bit arrays ``q`` (nq, B) and ``r`` (nr, B)."""
    out = np.empty((len(q), len(r)), dtype=np.uint16)
    for i in range(0, len(q), chunk):
        x = np.bitwise_xor(q[i:i + chunk, None, :], r[None, :, :])
        out[i:i + chunk] = _POP[x].sum(axis=2, dtype=np.uint16)
    return out


def micro_ap(preds: list[tuple[float, bool]], n_positive: int) -> float:
    """DISC21 micro average precision: every (query, reference, score) prediction pooled, sorted by
    score (higher = more confident), precision summed at each correct prediction over all positives."""
    if n_positive == 0:
        return float("nan")
    preds = sorted(preds, key=lambda p: -p[0])
    hits, ap = 0, 0.0
    for rank, (_, ok) in enumerate(preds, 1):
        if ok:
            hits += 1
            ap += hits / rank
    return ap / n_positive


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Area under the ROC curve (probability a random positive outscores a random negative)."""
    scores = np.concatenate([pos, neg])
    ranks = scores.argsort().argsort().astype(np.float64) + 1
    # average ranks for ties
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    r = np.empty_like(ranks)
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        r[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((r[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def head(text: str, words: int) -> str:
    """``text`` up to the end of the sentence that reaches ``words`` words (all of it if shorter)."""
    from provenance.textnorm import sentence_spans

    out = 0
    for s, e in sentence_spans(text):
        out += len(text[s:e].split())
        if out >= words:
            return text[:e]
    return text


def wilson_hi(k: int, n: int, z: float = 1.96) -> float:
    """Upper end of the 95 % Wilson score interval of ``k`` in ``n`` (NaN for ``n == 0``)."""
    if n == 0:
        return float("nan")
    p = k / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre + half) / (1 + z * z / n)

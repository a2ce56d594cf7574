"""Calibrate on your own archive: how well do the current thresholds find copies of *your* files?

Input contract: a folder of images and/or texts (walked recursively; unreadable files are skipped).
A seeded sample is split in two: *originals* are indexed in a temporary index (the user's own index is
never touched), *held-out* files are never indexed and are checked as non-copies. Every original gets one
transformed copy per family (:mod:`provenance.transforms`; texts: a passage of the original, edited and
set inside a held-out text). Reported per family: recall at the current thresholds and the median raw
signal value; for held-out files: the false-match rate; per signal: the threshold this sample suggests
(the loosest with a false-match rate on held-out files at or below the target) with its recall.

Small archives give coarse suggestions: with 20 held-out files one false match is already 5 %.
"""

from __future__ import annotations

import random
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .checker import Index
from .content import Content, load_content
from .errors import BadInputError
from .files import iter_files
from .textnorm import sentence_spans, tokenize
from .transforms import FAMILIES, TEXT_FAMILIES, make_copy

#: Default target for suggested thresholds: at most this share of held-out (non-copy) files may match.
TARGET_FMR = 0.001


@dataclass
class FamilyResult:
    """Recall of one transform family at the current thresholds."""

    media: str
    family: str
    n: int
    recall: float
    #: Median raw value of ``value_signal`` against the true original.
    median_value: float | None
    #: The signal whose value ``median_value`` is (the first calibrated signal for the media).
    value_signal: str = ""


@dataclass
class Suggestion:
    """A threshold for one signal, with what it would do on this sample."""

    signal: str
    current: float
    suggested: float
    #: ``<=`` for distances, ``>=`` for similarities and lengths.
    direction: str
    false_match_rate: float
    recall: float
    recall_at_current: float
    false_match_rate_at_current: float
    #: Why the suggestion is the current value (e.g. too few held-out files), or ''.
    note: str = ""


@dataclass
class EvalResult:
    """Everything ``provenance eval`` measured."""

    directory: str
    seed: int
    originals: dict[str, int] = field(default_factory=dict)
    held_out: dict[str, int] = field(default_factory=dict)
    families: list[FamilyResult] = field(default_factory=list)
    false_match_rate: dict[str, float] = field(default_factory=dict)
    suggestions: list[Suggestion] = field(default_factory=list)
    skipped_files: int = 0
    target_fmr: float = TARGET_FMR
    #: Copies the check did not find: ``{"file", "family", "values"}`` (each calibrated signal's value
    #: against the true original), so a miss can be explained.
    misses: list[dict[str, Any]] = field(default_factory=list)
    #: Held-out files the check matched: ``{"file", "verdict", "item", "signal", "value", "threshold"}``.
    false_matches: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"schema": "provenance.eval/1", **asdict(self)}


def suggest_threshold(signal: str, current: float, lower_is_closer: bool, true_vals: list[float],
             neg_vals: list[float], grid: list[float], target: float) -> Suggestion | None:
    if not true_vals or not neg_vals:
        return None

    def rates(t: float) -> tuple[float, float]:
        if lower_is_closer:
            return (float(np.mean([v <= t for v in neg_vals])), float(np.mean([v <= t for v in true_vals])))
        return (float(np.mean([v >= t for v in neg_vals])), float(np.mean([v >= t for v in true_vals])))

    fmr_c, rec_c = rates(current)
    direction = "<=" if lower_is_closer else ">="
    if len(neg_vals) * target < 1:
        # Zero false matches among 50 files says nothing about a 0.1 % rate: loosening on such a sample
        # would only fit noise, so keep the default and say how many files would be needed.
        need = int(np.ceil(1 / target))
        return Suggestion(signal, current, current, direction, fmr_c, rec_c, rec_c, fmr_c,
                          note=f"{len(neg_vals)} held-out files cannot resolve a {target:g} false-match rate "
                               f"(need >= {need}); keeping the default")
    ok = [t for t in grid if rates(t)[0] <= target]
    if not ok:  # nothing meets the target: the strictest value on the grid
        best = min(grid) if lower_is_closer else max(grid)
    else:
        best = max(ok) if lower_is_closer else min(ok)
    fmr, rec = rates(best)
    return Suggestion(signal, current, best, direction, fmr, rec, rec_c, fmr_c)


def _values(idx: Index, content: Content, true_id: int | None, pre: Any) -> dict[str, float]:
    """Per calibrated signal: its value against the true item (copies), or its closest value against any
    indexed item (held-out files; a signal that finds nothing counts as the farthest value)."""
    seen = idx.observe(content, precomputed=pre, only=[true_id] if true_id is not None else None)
    out: dict[str, float] = {}
    for s in idx.signals:
        if not s.calibration_grid or not s.accepts(content.media):
            continue
        vals = [o.value for obs in seen.observations.values() for o in obs if o.signal == s.name]
        if vals:
            out[s.name] = min(vals) if s.lower_is_closer else max(vals)
        elif true_id is None:
            out[s.name] = float("inf") if s.lower_is_closer else float("-inf")
    return out


def _text_copy(original: str, host: str | None, family: str, rng: random.Random) -> str:
    """A passage (about 40-90 words of whole sentences) of ``original``, edited by ``family``, set in the
    middle of ``host`` when there is one."""
    sents = sentence_spans(original)
    start = rng.randrange(len(sents)) if sents else 0
    words, j = 0, start
    while j < len(sents) and words < 40:
        words += len(tokenize(original[sents[j][0]:sents[j][1]]))
        j += 1
    passage = original[sents[start][0]:sents[j - 1][1]] if sents else original
    edited = TEXT_FAMILIES[family](passage, rng)
    if not host:
        return edited
    hs = sentence_spans(host)
    cut = hs[len(hs) // 2][0] if len(hs) > 1 else len(host)
    return host[:cut] + edited + " " + host[cut:]


def evaluate(directory: Path | str, *, sample: int = 50, seed: int = 0, target_fmr: float = TARGET_FMR,
             workdir: Path | str | None = None, on_progress: Callable[[str], None] | None = None) -> EvalResult:
    """Measure copy detection on a sample of ``directory`` at the current thresholds (see module doc).

    ``sample`` caps both the originals and the held-out files per media type.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise BadInputError(f"{directory}: not a folder; give the folder of your archive")
    if sample < 1:
        raise BadInputError(f"--sample must be at least 1, got {sample}")
    say = on_progress or (lambda _m: None)
    result = EvalResult(directory=str(directory), seed=seed, target_fmr=target_fmr)
    files = sorted(iter_files([directory], recursive=True))
    rng = random.Random(seed)
    rng.shuffle(files)
    by_media: dict[str, list[Content]] = {"image": [], "text": []}
    for p in files:
        if all(len(v) >= 2 * sample for v in by_media.values()):
            break
        try:
            c = load_content(p)
        except BadInputError:
            result.skipped_files += 1
            continue
        if len(by_media[c.media]) < 2 * sample:
            by_media[c.media].append(c)
    if sum(len(v) for v in by_media.values()) < 2:
        raise BadInputError(f"{directory}: need at least two readable images or texts to evaluate")

    true_vals: dict[str, list[float]] = {}
    neg_vals: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="provenance-eval-") as tmp:
        idx = Index.open(Path(workdir or tmp) / "eval-index", create=True)
        try:
            for media, items in by_media.items():
                if len(items) < 2:
                    continue
                n_held = len(items) // 2
                held, originals = items[:n_held], items[n_held:]
                result.originals[media], result.held_out[media] = len(originals), len(held)
                say(f"indexing {len(originals)} {media} originals")
                added = idx.add_contents(originals, source="eval")
                fams = list(FAMILIES) if media == "image" else list(TEXT_FAMILIES)
                key = next((s.name for s in idx.signals if s.calibration_grid and s.accepts(media)), "")
                per_family: dict[str, list[tuple[bool, float | None]]] = {f: [] for f in fams}
                say(f"checking {len(originals)} x {len(fams)} transformed {media} copies")
                for k, (orig, res) in enumerate(zip(originals, added)):
                    say(f"  {media} copies of original {k + 1}/{len(originals)}")
                    for fam in fams:
                        frng = random.Random(rng.getrandbits(32))
                        if media == "image":
                            assert orig.image is not None
                            data, _ = make_copy(orig.image, fam, frng)
                            copy = load_content(data, f"{orig.name}:{fam}")
                        else:
                            assert orig.text is not None
                            host = held[k % len(held)].text if held else None
                            copy = load_content(_text_copy(orig.text, host, fam, frng))
                        pre = idx.precompute(copy)
                        rep = idx.check_content(copy, precomputed=pre)
                        vals = _values(idx, copy, res.id, pre)
                        for s, v in vals.items():
                            true_vals.setdefault(s, []).append(v)
                        found = any(m.id == res.id for m in rep.matches)
                        per_family[fam].append((found, vals.get(key)))
                        if not found:
                            result.misses.append({"file": orig.name, "family": fam,
                                                  "values": {s: round(v, 4) for s, v in vals.items()}})
                for fam, rows in per_family.items():
                    vs = [v for _, v in rows if v is not None]
                    result.families.append(FamilyResult(media, fam, len(rows),
                                                        float(np.mean([ok for ok, _ in rows])) if rows else 0.0,
                                                        float(statistics.median(vs)) if vs else None, key))
                say(f"checking {len(held)} held-out {media} files")
                matched = 0
                for c in held:
                    pre = idx.precompute(c)
                    rep = idx.check_content(c, precomputed=pre)
                    matched += rep.verdict != "original"
                    if rep.matches:
                        m = rep.matches[0]
                        deciding = next(o for o in m.observations if o.signal == m.signal)
                        result.false_matches.append({"file": c.name, "verdict": m.verdict, "item": m.path,
                                                     "signal": m.signal, "value": round(deciding.value, 4),
                                                     "threshold": m.threshold, "score": round(m.score, 4)})
                    for name, v in _values(idx, c, None, pre).items():
                        neg_vals.setdefault(name, []).append(v)
                result.false_match_rate[media] = matched / len(held) if held else 0.0
        finally:
            idx.close()

    for sig in idx.signals:
        if sig.name in true_vals:
            sug = suggest_threshold(sig.name, sig.threshold, sig.lower_is_closer, true_vals[sig.name],
                           neg_vals.get(sig.name, []), list(sig.calibration_grid), target_fmr)
            if sug:
                result.suggestions.append(sug)
    return result

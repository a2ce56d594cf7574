"""Locating reused text: chain shared word n-grams of a draft and a source into aligned regions.

Input contract: the n-gram hashes of both texts (one per start position, see
:func:`provenance.signals.text.shingle_hashes`). Output: regions in word positions of both texts.
Pure functions, no I/O.

Work budget (issue 11): an n-gram found more than :data:`MAX_GRAM_OCCURRENCES` times in the source is
boilerplate or a repeated run ("a a a a a ...", a table of numbers) and is not used to chain regions, so
each draft position considers at most that many source positions and at most ``max_gap + 1`` times that
many open regions: the time is linear in the length of the draft plus the source.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Region:
    """A run of shared n-grams: draft words ``[d_start, d_end)`` ↔ source words ``[s_start, s_end)``."""

    d_start: int
    d_end: int
    s_start: int
    s_end: int
    grams: int

    @property
    def words(self) -> int:
        """Length of the region in draft words."""
        return self.d_end - self.d_start


#: A source n-gram seen more often than this is not used for chaining (see the module docstring).
MAX_GRAM_OCCURRENCES = 8


def align(draft: np.ndarray, source: np.ndarray, n: int, max_gap: int) -> list[Region]:
    """Chain n-grams shared by ``draft`` and ``source`` into monotone regions, longest first.

    Consecutive shared n-grams join one region when both texts advance by 1..``max_gap`` positions,
    so an edit (which destroys the ``n`` n-grams overlapping it) does not split a copied passage.
    Reordered sentences become separate regions. N-grams repeated more than ``MAX_GRAM_OCCURRENCES``
    times in the source are skipped, which bounds the work per draft position.
    """
    where: dict[int, list[int]] = {}
    for j, h in enumerate(source.tolist()):
        where.setdefault(h, []).append(j)
    where = {h: js for h, js in where.items() if len(js) <= MAX_GRAM_OCCURRENCES}
    if not where:
        return []
    # Only draft positions whose n-gram the source has can start or extend a region: find them in C, so
    # checking one long draft against many candidates does not walk the whole draft in Python each time.
    keys = np.sort(np.fromiter(where.keys(), dtype=np.int64, count=len(where)))
    draft = np.asarray(draft, dtype=np.int64)
    at = np.minimum(np.searchsorted(keys, draft), len(keys) - 1)  # O(n log m): no sort of the draft
    hits = np.flatnonzero(keys[at] == draft)
    # Each region: [d_first, d_last, s_first, s_last, grams]
    regions: list[list[int]] = []
    open_regions: list[list[int]] = []
    for i, h in zip(hits.tolist(), draft[hits].tolist()):
        js = where[h]
        still_open = [r for r in open_regions if i - r[1] <= max_gap]
        used: set[int] = set()
        for j in js:
            best, best_cost = None, None
            for k, r in enumerate(still_open):
                di, dj = i - r[1], j - r[3]
                if k in used or di < 1 or not 1 <= dj <= max_gap:
                    continue
                cost = di + dj + abs(di - dj)
                if best_cost is None or cost < best_cost:
                    best, best_cost = k, cost
            if best is None:
                r = [i, i, j, j, 1]
                regions.append(r)
                still_open.append(r)
                used.add(len(still_open) - 1)
            else:
                r = still_open[best]
                r[1], r[3], r[4] = i, j, r[4] + 1
                used.add(best)
        open_regions = still_open
    out = [Region(r[0], r[1] + n, r[2], r[3] + n, r[4]) for r in regions]
    out.sort(key=lambda r: (-r.words, r.d_start))
    return out


def winnow_positions(hashes: np.ndarray, window: int) -> list[int]:
    """Same positions as :func:`provenance.signals.text.winnow`, vectorised (issue 11).

    The loop version calls ``argmin`` once per window from Python (about 8 s for two million words);
    here all windows are one ``sliding_window_view`` and one ``argmin``. The rightmost minimum of
    consecutive windows never moves left, so "differs from the last pick" is "differs from the previous
    window's pick".
    """
    h = np.asarray(hashes)
    if len(h) <= window:
        return [len(h) - 1 - int(np.argmin(h[::-1]))] if len(h) else []
    windows = np.lib.stride_tricks.sliding_window_view(h, window)[:, ::-1]
    picks = np.arange(len(windows)) + window - 1 - np.argmin(windows, axis=1)
    keep = np.ones(len(picks), dtype=bool)
    keep[1:] = picks[1:] != picks[:-1]
    return picks[keep].tolist()


def covered(regions: list[Region], total: int) -> float:
    """Share of ``total`` draft words inside at least one of ``regions``."""
    if total <= 0:
        return 0.0
    mask = np.zeros(total, dtype=bool)
    for r in regions:
        mask[r.d_start:min(r.d_end, total)] = True
    return float(mask.mean())

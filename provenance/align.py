"""Locating reused text: chain shared word n-grams of a draft and a source into aligned regions.

Input contract: the n-gram hashes of both texts (one per start position, see
:func:`provenance.signals.text.shingle_hashes`). Output: regions in word positions of both texts.
Pure functions, no I/O.
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


def align(draft: np.ndarray, source: np.ndarray, n: int, max_gap: int) -> list[Region]:
    """Chain n-grams shared by ``draft`` and ``source`` into monotone regions, longest first.

    Consecutive shared n-grams join one region when both texts advance by 1..``max_gap`` positions,
    so an edit (which destroys the ``n`` n-grams overlapping it) does not split a copied passage.
    Reordered sentences become separate regions.
    """
    where: dict[int, list[int]] = {}
    for j, h in enumerate(source.tolist()):
        where.setdefault(h, []).append(j)
    # Each region: [d_first, d_last, s_first, s_last, grams]
    regions: list[list[int]] = []
    open_regions: list[list[int]] = []
    for i, h in enumerate(draft.tolist()):
        js = where.get(h)
        if not js:
            continue
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


def covered(regions: list[Region], total: int) -> float:
    """Share of ``total`` draft words inside at least one of ``regions``."""
    if total <= 0:
        return 0.0
    mask = np.zeros(total, dtype=bool)
    for r in regions:
        mask[r.d_start:min(r.d_end, total)] = True
    return float(mask.mean())

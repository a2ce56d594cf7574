"""CSV export of an audit: one row per audited file."""

from __future__ import annotations

import csv
from pathlib import Path

from .audit import AuditResult
from .report import verdict_rank

CSV_COLUMNS = ("path", "media", "verdict", "archive_verdict", "index_verdict", "cluster", "representative",
               "best_match", "best_match_signal", "size", "sha256", "width", "height", "fingerprints", "error")


def write_csv(result: AuditResult, path: Path | str) -> None:
    """One row per audited file (``CSV_COLUMNS``); the best match is the archive copy or indexed item."""
    reps = {c.id: result.items[c.representative].path for c in result.clusters}
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_COLUMNS)
        for i in range(len(result.items)):
            d = result.item_dict(i)
            best, signal = "", ""
            if d.get("index_matches") and d["index_verdict"] != "original" and \
                    verdict_rank(d["index_verdict"]) <= verdict_rank(d["archive_verdict"]):
                m = d["index_matches"][0]
                best, signal = f"index:{m['id']}:{m['path']}", m["signal"]
            elif d.get("archive_matches"):
                m = d["archive_matches"][0]
                best, signal = m["path"], m["signal"]
            w.writerow([d["path"], d["media"] or "", d["verdict"], d.get("archive_verdict") or "",
                        d.get("index_verdict") or "", d["cluster"] or "",
                        reps.get(d["cluster"], "") if d["cluster"] else "", best, signal, d["size"] or "",
                        d["sha256"] or "", d.get("width") or "", d.get("height") or "", d["fingerprints"],
                        d.get("error") or ""])

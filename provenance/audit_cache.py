"""The audit's state file: a fingerprint cache per file and the log of audit runs (SQLite, WAL).

An unchanged file (same path, size and mtime) is not even read on the next run; a changed path whose bytes
hash to a cached sha256 (moved, touched) reuses that entry's fingerprints; a run that was killed is seen
as interrupted and resumed from what the batches already committed.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .errors import ProvenanceIndexError


class AuditState:
    """SQLite (WAL) cache of per-file fingerprints and the log of audit runs."""

    def __init__(self, path: Path, signature: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript("""
                CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
                CREATE TABLE IF NOT EXISTS files (
                    path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, sha256 TEXT,
                    record TEXT NOT NULL);
                CREATE INDEX IF NOT EXISTS files_sha ON files(sha256);
                CREATE TABLE IF NOT EXISTS runs (
                    id INTEGER PRIMARY KEY, started REAL, finished REAL, status TEXT, roots TEXT);
            """)
        except sqlite3.DatabaseError as exc:
            raise ProvenanceIndexError(f"{self.path}: audit state is unreadable ({exc}); delete it to start "
                                       "afresh (only cached fingerprints are lost)") from exc
        row = self.db.execute("SELECT value FROM meta WHERE key='signature'").fetchone()
        if row is None or row[0] != signature:
            # Fingerprints from other signal versions or another model cannot be compared: start over.
            self.db.execute("DELETE FROM files")
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('signature', ?)", (signature,))
        self.db.commit()

    def interrupted_run(self) -> int | None:
        """Id of the last run if it never finished (killed or interrupted), else ``None``."""
        row = self.db.execute("SELECT id, status FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        return row[0] if row and row[1] != "complete" else None

    def start_run(self, roots: Sequence[str]) -> int:
        """Log the start of a run (it stays ``running`` if the process is killed)."""
        cur = self.db.execute("INSERT INTO runs (started, status, roots) VALUES (?, 'running', ?)",
                              (time.time(), json.dumps(list(roots))))
        self.db.commit()
        assert cur.lastrowid is not None
        return int(cur.lastrowid)

    def finish_run(self, run_id: int, status: str) -> None:
        """Log how a run ended (``complete`` or ``interrupted``)."""
        self.db.execute("UPDATE runs SET finished=?, status=? WHERE id=?", (time.time(), status, run_id))
        self.db.commit()

    def lookup(self, path: str, size: int, mtime_ns: int) -> dict[str, Any] | None:
        """The cached record of an unchanged file."""
        row = self.db.execute("SELECT record FROM files WHERE path=? AND size=? AND mtime_ns=?",
                              (path, size, mtime_ns)).fetchone()
        return json.loads(row[0]) if row else None

    def lookup_sha(self, sha256: str) -> dict[str, Any] | None:
        """A cached record of a file with these bytes (any path), if one was fingerprinted."""
        row = self.db.execute("SELECT record FROM files WHERE sha256=? AND record NOT LIKE '%\"error\"%' "
                              "LIMIT 1", (sha256,)).fetchone()
        return json.loads(row[0]) if row else None

    def store(self, records: Iterable[dict[str, Any]]) -> None:
        """Write one batch in one transaction."""
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO files (path, size, mtime_ns, sha256, record) VALUES (?,?,?,?,?)",
                [(r["path"], r.get("size"), r.get("mtime_ns"), r.get("sha256"), json.dumps(r)) for r in records])

    def close(self) -> None:
        """Close the database."""
        self.db.close()

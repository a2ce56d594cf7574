"""The SQLite catalog: items, their texts, and every fingerprint. The source of truth.

Write-ahead logging and one transaction per added item make a killed process harmless: an item is
either fully present (row, text, fingerprints) or absent. FAISS indexes are rebuilt from here.

Each catalog gets a random ``catalog_id`` when it is created; FAISS snapshots record it so that a snapshot
is never trusted by another catalog (one re-created after ``catalog.sqlite`` was deleted reuses row ids).
The catalog holds the full text of indexed drafts, so it is created readable by its owner only (0600;
SQLite gives its ``-wal`` and ``-shm`` files the database's mode).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ProvenanceIndexError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sha256 TEXT NOT NULL UNIQUE,
    text_key TEXT,
    path TEXT,
    source TEXT,
    media TEXT NOT NULL,
    size INTEGER NOT NULL,
    added_at REAL NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    removed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS items_text_key ON items(text_key) WHERE text_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS texts (item_id INTEGER PRIMARY KEY REFERENCES items(id), body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fingerprints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id INTEGER NOT NULL REFERENCES items(id),
    signal TEXT NOT NULL,
    start INTEGER,
    end INTEGER,
    value BLOB NOT NULL,
    label TEXT
);
CREATE INDEX IF NOT EXISTS fingerprints_signal ON fingerprints(signal, id);
CREATE INDEX IF NOT EXISTS fingerprints_item ON fingerprints(item_id);
CREATE TABLE IF NOT EXISTS shingles (
    hash INTEGER NOT NULL,
    item_id INTEGER NOT NULL REFERENCES items(id),
    pos INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS shingles_hash ON shingles(hash);
CREATE INDEX IF NOT EXISTS shingles_item ON shingles(item_id);
CREATE TABLE IF NOT EXISTS signals (name TEXT PRIMARY KEY, version INTEGER NOT NULL, model TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS shingle_df (hash INTEGER PRIMARY KEY, docs INTEGER NOT NULL);
"""
#: Made after ``fingerprints.label`` exists (catalogs older than the column get it when opened).
_LABEL_INDEX = "CREATE INDEX IF NOT EXISTS fingerprints_label ON fingerprints(signal, label)"
#: One stored fingerprint: (signal, start, end, value, label). ``label`` is a short tag its signal gives it,
#: or ``None`` (``text-xlingual``: the passage's language, so a check can tell when a cross-lingual search
#: has nothing to find).
FingerprintRow = tuple[str, int | None, int | None, bytes, str | None]
#: ``meta`` key set once ``shingle_df`` holds the document frequency of every stored shingle (catalogs made
#: before it existed are back-filled when opened).
_SHINGLE_DF_META = "shingle_df"


@dataclass(frozen=True)
class ItemRow:
    """One catalog item."""

    id: int
    sha256: str
    path: str | None
    source: str | None
    media: str
    size: int
    added_at: float
    metadata: dict[str, Any]
    removed: bool
    #: Hash of the normalised words (text items), for exact-text identity.
    text_key: str | None = None


@dataclass
class NewItem:
    """Everything written for one item in its single transaction."""

    sha256: str
    path: str | None
    source: str | None
    media: str
    size: int
    metadata: dict[str, Any]
    text: str | None = None
    text_key: str | None = None
    fingerprints: list[FingerprintRow] = field(default_factory=list)
    #: (hash, word position) rows for the shingle postings.
    shingles: list[tuple[int, int]] = field(default_factory=list)


def _row(r: sqlite3.Row) -> ItemRow:
    return ItemRow(r["id"], r["sha256"], r["path"], r["source"], r["media"], r["size"], r["added_at"],
                   json.loads(r["metadata"]), bool(r["removed"]), r["text_key"])


class Catalog:
    """SQLite catalog at ``path`` (created when ``create`` is true)."""

    def __init__(self, path: Path, *, create: bool = False) -> None:
        self.path = Path(path)
        if not self.path.exists() and not create:
            raise ProvenanceIndexError(
                f"{self.path}: no catalog here; create one with `provenance init` (or add with --index)")
        if create and not self.path.exists():
            # A -wal/-shm left by a deleted catalog would be replayed into the new one: remove them first.
            for suffix in ("-wal", "-shm", "-journal"):
                try:
                    os.unlink(f"{self.path}{suffix}")
                except FileNotFoundError:
                    pass
            create_private_file(self.path)
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves so one item is one transaction.
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable against a killed process in WAL mode (only a power cut can drop the
            # last commits), and much faster than FULL for many small transactions.
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.executescript(_SCHEMA)
            if "label" not in {r[1] for r in self.db.execute("PRAGMA table_info(fingerprints)")}:
                # Catalogs made before labels: their rows stay unlabelled (NULL: not known) until
                # `provenance rebuild` labels them.
                self.db.execute("ALTER TABLE fingerprints ADD COLUMN label TEXT")
            self.db.execute(_LABEL_INDEX)
            version = self.get_meta("schema_version")
            if version is None:
                self.set_meta("schema_version", str(SCHEMA_VERSION))
                self.set_meta("created_at", str(time.time()))
            elif version != str(SCHEMA_VERSION):
                raise ProvenanceIndexError(
                    f"{self.path}: catalog schema {version!r}, this version reads {SCHEMA_VERSION}; "
                    "upgrade provenance-checker or re-create the index")
            if self.get_meta("catalog_id") is None:
                # INSERT OR IGNORE: two processes opening an older catalog at once agree on one id.
                self.db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('catalog_id', ?)",
                                (uuid.uuid4().hex,))
            self.catalog_id: str = str(self.get_meta("catalog_id"))
            if self.get_meta(_SHINGLE_DF_META) is None:
                self.rebuild_shingle_df()
        except sqlite3.DatabaseError as exc:
            raise ProvenanceIndexError(
                f"{self.path}: not a readable catalog ({exc}); restore it from a backup, or move it away and "
                "create a new index with `provenance init`") from exc

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    # -- meta -------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        """A value from the ``meta`` table."""
        r = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return r[0] if r else None

    def set_meta(self, key: str, value: str) -> None:
        """Set a value in the ``meta`` table."""
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def known_signals(self) -> dict[str, tuple[int, str]]:
        """``name -> (version, model)`` of every signal whose fingerprints all items carry."""
        return {r["name"]: (int(r["version"]), r["model"]) for r in self.db.execute("SELECT * FROM signals")}

    def record_signal(self, name: str, version: int, model: str) -> None:
        """Note that every item now carries ``name``'s fingerprints (new index, or after a back-fill)."""
        self.db.execute("INSERT OR REPLACE INTO signals(name, version, model) VALUES (?, ?, ?)",
                        (name, version, model))

    def has_items(self) -> bool:
        """Whether any item (live or removed) was ever added."""
        return self.db.execute("SELECT 1 FROM items LIMIT 1").fetchone() is not None

    # -- items ------------------------------------------------------------------------------------
    def find_sha256(self, sha256: str, *, include_removed: bool = False) -> ItemRow | None:
        """The item with these exact bytes, if any."""
        sql = "SELECT * FROM items WHERE sha256=?" + ("" if include_removed else " AND removed=0")
        r = self.db.execute(sql, (sha256,)).fetchone()
        return _row(r) if r else None

    def find_text_key(self, text_key: str) -> list[ItemRow]:
        """Live items whose normalised text is identical."""
        rows = self.db.execute("SELECT * FROM items WHERE text_key=? AND removed=0", (text_key,))
        return [_row(r) for r in rows]

    def add_item(self, item: NewItem) -> tuple[int, bool]:
        """Insert ``item`` atomically. Returns ``(id, created)``; same bytes again returns the old id.

        A removed item added again is revived with fresh fingerprints (new row ids, so derived
        indexes pick them up).
        """
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            old = db.execute("SELECT id, removed FROM items WHERE sha256=?", (item.sha256,)).fetchone()
            if old is not None and not old["removed"]:
                db.execute("COMMIT")
                return int(old["id"]), False
            if old is not None:
                item_id = int(old["id"])
                self._delete_fingerprints(item_id)
                db.execute("UPDATE items SET removed=0, path=?, source=?, added_at=?, metadata=? WHERE id=?",
                           (item.path, item.source, time.time(), json.dumps(item.metadata), item_id))
            else:
                cur = db.execute(
                    "INSERT INTO items(sha256, text_key, path, source, media, size, added_at, metadata) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (item.sha256, item.text_key, item.path, item.source, item.media, item.size, time.time(),
                     json.dumps(item.metadata)))
                assert cur.lastrowid is not None
                item_id = int(cur.lastrowid)
            if item.text is not None:
                db.execute("INSERT OR REPLACE INTO texts(item_id, body) VALUES (?, ?)", (item_id, item.text))
            self._insert_fingerprints(item_id, item.fingerprints)
            db.executemany("INSERT INTO shingles(hash, item_id, pos) VALUES (?, ?, ?)",
                           [(h, item_id, p) for h, p in item.shingles])
            if item.shingles:
                self._count_shingles(item_id, +1)
            db.execute("COMMIT")
            return item_id, True
        except BaseException:
            # BaseException: a KeyboardInterrupt mid-item must not leave the transaction open.
            db.execute("ROLLBACK")
            raise

    def _insert_fingerprints(self, item_id: int, rows: Sequence[FingerprintRow]) -> None:
        self.db.executemany("INSERT INTO fingerprints(item_id, signal, start, end, value, label) "
                            "VALUES (?, ?, ?, ?, ?, ?)", [(item_id, *r) for r in rows])

    def _delete_fingerprints(self, item_id: int) -> None:
        self.db.execute("DELETE FROM fingerprints WHERE item_id=?", (item_id,))
        self._delete_shingles(item_id)

    def _delete_shingles(self, item_id: int) -> None:
        """Drop an item's shingle postings and its share of the document frequencies (inside the
        caller's transaction, so postings and frequencies never disagree)."""
        self._count_shingles(item_id, -1)
        self.db.execute("DELETE FROM shingles WHERE item_id=?", (item_id,))

    def _count_shingles(self, item_id: int, delta: int) -> None:
        """Add ``delta`` to the document frequency of each distinct shingle the item holds."""
        if delta > 0:
            # "WHERE true": SQLite's upsert after a SELECT needs a WHERE to parse the ON CONFLICT.
            self.db.execute("INSERT INTO shingle_df(hash, docs) SELECT DISTINCT hash, 1 FROM shingles "
                            "WHERE item_id=? AND true ON CONFLICT(hash) DO UPDATE SET docs = docs + 1",
                            (item_id,))
        else:
            self.db.execute("UPDATE shingle_df SET docs = docs - 1 WHERE hash IN "
                            "(SELECT hash FROM shingles WHERE item_id=?)", (item_id,))
            self.db.execute("DELETE FROM shingle_df WHERE docs <= 0 AND hash IN "
                            "(SELECT hash FROM shingles WHERE item_id=?)", (item_id,))

    def rebuild_shingle_df(self) -> int:
        """Recount the document frequency of every stored shingle from the postings (one transaction).

        Run when a catalog made before the counts existed is opened, and by ``provenance rebuild``.
        Returns the number of distinct shingles.
        """
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM shingle_df")
            db.execute("INSERT INTO shingle_df(hash, docs) SELECT hash, count(DISTINCT item_id) FROM shingles "
                       "GROUP BY hash")
            self.set_meta(_SHINGLE_DF_META, "1")
            n = int(db.execute("SELECT count(*) FROM shingle_df").fetchone()[0])
            db.execute("COMMIT")
            return n
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def remove_item(self, item_id: int) -> ItemRow | None:
        """Mark an item removed (it never matches again). Returns it, or ``None`` if unknown/removed."""
        item = self.get_item(item_id)
        if item is None or item.removed:
            return None
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("UPDATE items SET removed=1 WHERE id=?", (item_id,))
            # Shingles are looked up in SQLite directly, so drop them (and their document frequencies);
            # vectors stay (filtered on read).
            self._delete_shingles(item_id)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return item

    def get_item(self, item_id: int) -> ItemRow | None:
        """The item with this id (removed or not)."""
        r = self.db.execute("SELECT * FROM items WHERE id=?", (item_id,)).fetchone()
        return _row(r) if r else None

    def get_items(self, ids: Iterable[int]) -> dict[int, ItemRow]:
        """Live (not removed) items by id."""
        out: dict[int, ItemRow] = {}
        for chunk in _chunks(sorted(set(ids)), 900):
            q = ",".join("?" * len(chunk))
            for r in self.db.execute(f"SELECT * FROM items WHERE removed=0 AND id IN ({q})", chunk):
                out[int(r["id"])] = _row(r)
        return out

    def iter_items(self, *, include_removed: bool = False) -> Iterator[ItemRow]:
        """Every item, oldest first."""
        sql = "SELECT * FROM items" + ("" if include_removed else " WHERE removed=0") + " ORDER BY id"
        for r in self.db.execute(sql):
            yield _row(r)

    def text_of(self, item_id: int) -> str | None:
        """The stored text of a text item."""
        r = self.db.execute("SELECT body FROM texts WHERE item_id=?", (item_id,)).fetchone()
        return r[0] if r else None

    def removed_ids(self) -> set[int]:
        """Ids of removed items."""
        return {int(r[0]) for r in self.db.execute("SELECT id FROM items WHERE removed=1")}

    # -- fingerprints -----------------------------------------------------------------------------
    def fingerprint_rows(self, signal: str, after_id: int = 0) -> Iterator[tuple[int, bytes]]:
        """``(row id, value)`` of ``signal``'s fingerprints with row id > ``after_id``, in id order."""
        cur = self.db.execute("SELECT id, value FROM fingerprints WHERE signal=? AND id>? ORDER BY id",
                              (signal, after_id))
        while True:
            rows = cur.fetchmany(4096)
            if not rows:
                return
            for r in rows:
                yield int(r[0]), bytes(r[1])

    def item_fingerprints(self, item_id: int, signal: str) -> list[bytes]:
        """The stored values of one item's fingerprints for ``signal``."""
        rows = self.db.execute("SELECT value FROM fingerprints WHERE item_id=? AND signal=? ORDER BY id",
                               (item_id, signal))
        return [bytes(r[0]) for r in rows]

    def item_fingerprint_rows(self, item_id: int, signal: str) -> list[tuple[int | None, int | None, bytes]]:
        """``(start, end, value)`` of one item's fingerprints for ``signal``, in row order."""
        rows = self.db.execute("SELECT start, end, value FROM fingerprints WHERE item_id=? AND signal=? "
                               "ORDER BY id", (item_id, signal))
        return [(r[0], r[1], bytes(r[2])) for r in rows]

    def add_fingerprints(self, item_id: int, fingerprints: Sequence[FingerprintRow],
                         shingles: Sequence[tuple[int, int]] = ()) -> None:
        """Add fingerprints of a signal installed after ``item_id`` was added (one transaction)."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            self._insert_fingerprints(item_id, fingerprints)
            db.executemany("INSERT INTO shingles(hash, item_id, pos) VALUES (?, ?, ?)",
                           [(h, item_id, p) for h, p in shingles])
            if shingles:
                # Only this call's postings are new (a back-fill gives an item its shingles once).
                self._count_shingles(item_id, +1)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def fingerprint_ids_of(self, item_id: int) -> dict[str, list[int]]:
        """``signal -> fingerprint row ids`` of one item."""
        out: dict[str, list[int]] = {}
        for r in self.db.execute("SELECT signal, id FROM fingerprints WHERE item_id=?", (item_id,)):
            out.setdefault(r[0], []).append(int(r[1]))
        return out

    def fingerprint_values(self, signal: str, ids: Iterable[int]) -> dict[int, bytes]:
        """``row id -> value`` of the given ``signal`` fingerprint rows that exist."""
        out: dict[int, bytes] = {}
        for chunk in _chunks(sorted(set(ids)), 900):
            q = ",".join("?" * len(chunk))
            for r in self.db.execute(f"SELECT id, value FROM fingerprints WHERE signal=? AND id IN ({q})",
                                     [signal, *chunk]):
                out[int(r[0])] = bytes(r[1])
        return out

    def removed_fingerprint_ids(self, signal: str) -> list[int]:
        """Row ids of ``signal``'s fingerprints that belong to removed items."""
        rows = self.db.execute("SELECT f.id FROM fingerprints f JOIN items i ON i.id=f.item_id "
                               "WHERE i.removed=1 AND f.signal=?", (signal,))
        return [int(r[0]) for r in rows]

    def max_fingerprint_id(self, signal: str) -> int:
        """The newest row id of ``signal``'s fingerprints (0 if none)."""
        r = self.db.execute("SELECT max(id) FROM fingerprints WHERE signal=?", (signal,)).fetchone()
        return int(r[0] or 0)

    def fingerprint_labels(self, signal: str) -> set[str | None]:
        """Every distinct label of ``signal``'s fingerprints, ``None`` among them when some row has none.

        Removed items' rows count too (they are filtered on read, not deleted), so the set may be larger
        than the live items', never smaller. One index seek per label, whatever the number of rows.
        """
        db = self.db
        labels: set[str | None] = set()
        if db.execute("SELECT 1 FROM fingerprints WHERE signal=? AND label IS NULL LIMIT 1", (signal,)).fetchone():
            labels.add(None)
        label = db.execute("SELECT min(label) FROM fingerprints WHERE signal=? AND label IS NOT NULL",
                           (signal,)).fetchone()[0]
        while label is not None:
            labels.add(str(label))
            label = db.execute("SELECT min(label) FROM fingerprints WHERE signal=? AND label > ?",
                               (signal, label)).fetchone()[0]
        return labels

    def unlabelled_fingerprints(self, signal: str) -> list[tuple[int, int, int | None, int | None]]:
        """``(fingerprint id, item id, start, end)`` of ``signal``'s rows without a label."""
        rows = self.db.execute("SELECT id, item_id, start, end FROM fingerprints WHERE signal=? AND label IS NULL "
                               "ORDER BY id", (signal,))
        return [(int(r[0]), int(r[1]), r[2], r[3]) for r in rows]

    def set_fingerprint_labels(self, labels: Sequence[tuple[int, str]]) -> None:
        """Label fingerprints by row id (one transaction)."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("UPDATE fingerprints SET label=? WHERE id=?", [(lab, i) for i, lab in labels])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def fingerprint_owners(self, ids: Iterable[int]) -> dict[int, tuple[int, int | None, int | None]]:
        """``fingerprint id -> (item id, start, end)`` for live items only."""
        out: dict[int, tuple[int, int | None, int | None]] = {}
        for chunk in _chunks(sorted(set(ids)), 900):
            q = ",".join("?" * len(chunk))
            sql = (f"SELECT f.id, f.item_id, f.start, f.end FROM fingerprints f JOIN items i ON i.id=f.item_id "
                   f"WHERE i.removed=0 AND f.id IN ({q})")
            for r in self.db.execute(sql, chunk):
                out[int(r[0])] = (int(r[1]), r[2], r[3])
        return out

    def shingle_hits(self, hashes: Iterable[int]) -> dict[int, int]:
        """``item id -> number of the given shingle hashes it holds`` (live items only)."""
        counts: dict[int, int] = {}
        for chunk in _chunks(sorted(set(hashes)), 900):
            q = ",".join("?" * len(chunk))
            for r in self.db.execute(f"SELECT item_id, count(*) FROM shingles WHERE hash IN ({q}) "
                                     "GROUP BY item_id", chunk):
                counts[int(r[0])] = counts.get(int(r[0]), 0) + int(r[1])
        return counts

    def shingle_document_frequency(self, hashes: Iterable[int], at_least: int = 1) -> dict[int, int]:
        """``hash -> number of live items holding it`` for those of ``hashes`` held by ``at_least`` items."""
        out: dict[int, int] = {}
        for chunk in _chunks(sorted(set(hashes)), 900):
            q = ",".join("?" * len(chunk))
            for r in self.db.execute(f"SELECT hash, docs FROM shingle_df WHERE docs >= ? AND hash IN ({q})",
                                     [at_least, *chunk]):
                out[int(r[0])] = int(r[1])
        return out

    def text_item_count(self) -> int:
        """Number of live text items (what a shingle's document frequency is relative to)."""
        return int(self.db.execute("SELECT count(*) FROM items WHERE removed=0 AND media='text'").fetchone()[0])

    def counts(self) -> dict[str, int]:
        """Item counts by media, plus removed and fingerprint totals."""
        out = {"items": 0, "removed": 0}
        for r in self.db.execute("SELECT media, removed, count(*) FROM items GROUP BY media, removed"):
            if r[1]:
                out["removed"] += r[2]
            else:
                out["items"] += r[2]
                out[f"{r[0]}_items"] = out.get(f"{r[0]}_items", 0) + r[2]
        # Live items only: a removed item's vectors stay in the table until a rebuild, but do not count.
        for r in self.db.execute("SELECT f.signal, count(*) FROM fingerprints f JOIN items i ON i.id=f.item_id "
                                 "WHERE i.removed=0 GROUP BY f.signal"):
            out[f"fingerprints.{r[0]}"] = r[1]
        out["fingerprints.text-shingle"] = self.db.execute("SELECT count(*) FROM shingles").fetchone()[0]
        return out


def create_private_file(path: Path, mode: int = 0o600) -> None:
    """Create ``path`` empty with ``mode`` (owner only by default) unless it exists.

    ``O_EXCL`` never opens a file (or symlink) planted in its place; an existing file is left as it is.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    except FileExistsError:
        return
    os.close(fd)


def _chunks(seq: Sequence[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(seq), size):
        yield list(seq[i:i + size])

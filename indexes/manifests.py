"""Soft bindings: which catalog items carry a disclosure manifest, and where that manifest is.

A C2PA manifest lives in the file's metadata (or a sidecar); stripping metadata, re-encoding or
resizing loses it. The catalog already fingerprints content robustly (PDQ/pHash for images,
shingles and embeddings for text), so a disclosure is recorded here against the catalog item of
the disclosed content: finding the item again by fingerprint finds the manifest again.

The table lives in the catalog's own SQLite database (``catalog.sqlite``) so that it is backed
up, copied and locked together with the items it points at. It is created on first use with
``CREATE TABLE IF NOT EXISTS``; the catalog schema itself is untouched. Rows are never updated:
disclosing the same content again adds a row, and the newest row is the current disclosure.

Each row also keeps the ISCC content code of the ``c2pa.soft-binding`` assertion signed into the
manifest (schema version 2), so a stripped copy is found by that code too, the way any other
resolver of the registered ``io.iscc.v0`` binding would find it. Version 1 tables gain the
column on first open (``ALTER TABLE ... ADD COLUMN``, older rows have none).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import ProvenanceIndexError

#: Version of the ``disclosures`` table, recorded in the catalog's ``meta`` table.
DISCLOSURES_SCHEMA_VERSION = 2
_META_KEY = "disclosures_schema_version"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS disclosures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id INTEGER NOT NULL REFERENCES items(id),
    manifest_label TEXT,
    output_path TEXT NOT NULL,
    manifest_path TEXT,
    output_sha256 TEXT NOT NULL,
    embedded INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    source_type TEXT NOT NULL,
    generator TEXT,
    signer TEXT NOT NULL,
    signer_cert_sha256 TEXT,
    originality TEXT,
    disclosed_at REAL NOT NULL,
    iscc TEXT
);
CREATE INDEX IF NOT EXISTS disclosures_item ON disclosures(item_id);
CREATE INDEX IF NOT EXISTS disclosures_sha256 ON disclosures(output_sha256);
"""
# Applied after the migration, since a version 1 table has no iscc column to index.
_ISCC_INDEX = "CREATE INDEX IF NOT EXISTS disclosures_iscc ON disclosures(iscc)"


@dataclass(frozen=True)
class DisclosureRow:
    """One recorded disclosure.

    ``output_path`` is the file that carries the manifest (embedded) or is covered by it
    (sidecar, then ``manifest_path`` is the sidecar). ``signer_cert_sha256`` is the SHA-256 of
    the leaf certificate (DER), which identifies the signer more firmly than its name.
    ``originality`` is the originality assertion that went into the manifest, if any;
    ``iscc`` the ISCC content code of its ``c2pa.soft-binding`` assertion, if any.
    """

    id: int
    item_id: int
    manifest_label: str | None
    output_path: str
    manifest_path: str | None
    output_sha256: str
    embedded: bool
    media_type: str
    source_type: str
    generator: str | None
    signer: str
    signer_cert_sha256: str | None
    originality: dict[str, Any] | None
    disclosed_at: float
    iscc: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _row(r: sqlite3.Row) -> DisclosureRow:
    return DisclosureRow(
        id=int(r["id"]), item_id=int(r["item_id"]), manifest_label=r["manifest_label"],
        output_path=r["output_path"], manifest_path=r["manifest_path"],
        output_sha256=r["output_sha256"], embedded=bool(r["embedded"]), media_type=r["media_type"],
        source_type=r["source_type"], generator=r["generator"], signer=r["signer"],
        signer_cert_sha256=r["signer_cert_sha256"],
        originality=json.loads(r["originality"]) if r["originality"] else None,
        disclosed_at=float(r["disclosed_at"]), iscc=r["iscc"])


class DisclosureStore:
    """The ``disclosures`` table in an open catalog connection (``Index.catalog.db``).

    The connection is the catalog's: it runs in autocommit mode (``isolation_level=None``), so
    each ``record`` is one transaction, committed when it returns.
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        try:
            self.db.executescript(_SCHEMA)
            found = self.db.execute("SELECT value FROM meta WHERE key=?", (_META_KEY,)).fetchone()
            if found is not None and int(found[0]) > DISCLOSURES_SCHEMA_VERSION:
                raise ProvenanceIndexError(
                    f"the catalog's disclosures table is version {found[0]}, this version reads "
                    f"up to {DISCLOSURES_SCHEMA_VERSION}; upgrade provenance-checker")
            if found is None or int(found[0]) < DISCLOSURES_SCHEMA_VERSION:
                self._migrate()
            self.db.execute(_ISCC_INDEX)
        except sqlite3.DatabaseError as exc:
            raise ProvenanceIndexError(f"cannot create or read the disclosures table ({exc})") from exc

    def _migrate(self) -> None:
        """Bring a version 1 table (no ``iscc`` column) to the current version, in one
        transaction, so a crash leaves either the old table or the new one."""
        columns = {r[1] for r in self.db.execute("PRAGMA table_info(disclosures)")}
        self.db.execute("BEGIN IMMEDIATE")
        try:
            if "iscc" not in columns:
                self.db.execute("ALTER TABLE disclosures ADD COLUMN iscc TEXT")
            self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                            (_META_KEY, str(DISCLOSURES_SCHEMA_VERSION)))
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def record(self, *, item_id: int, manifest_label: str | None, output_path: str,
               manifest_path: str | None, output_sha256: str, embedded: bool, media_type: str,
               source_type: str, generator: str | None, signer: str,
               signer_cert_sha256: str | None, originality: dict[str, Any] | None,
               disclosed_at: float | None = None, iscc: str | None = None) -> DisclosureRow:
        """Insert one disclosure of catalog item ``item_id`` and return it."""
        when = time.time() if disclosed_at is None else disclosed_at
        try:
            cur = self.db.execute(
                "INSERT INTO disclosures(item_id, manifest_label, output_path, manifest_path, "
                "output_sha256, embedded, media_type, source_type, generator, signer, "
                "signer_cert_sha256, originality, disclosed_at, iscc) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (item_id, manifest_label, output_path, manifest_path, output_sha256, int(embedded),
                 media_type, source_type, generator, signer, signer_cert_sha256,
                 json.dumps(originality) if originality is not None else None, when, iscc))
        except sqlite3.DatabaseError as exc:
            raise ProvenanceIndexError(f"cannot record the disclosure of {output_path} ({exc})") from exc
        found = self.get(cur.lastrowid) if cur.lastrowid is not None else None
        if found is None:  # pragma: no cover - an INSERT that succeeded always has a row id
            raise ProvenanceIndexError(f"the disclosure of {output_path} was not stored")
        return found

    def get(self, disclosure_id: int) -> DisclosureRow | None:
        """The disclosure with this id, if any."""
        r = self.db.execute("SELECT * FROM disclosures WHERE id=?", (disclosure_id,)).fetchone()
        return _row(r) if r else None

    def for_items(self, item_ids: Iterable[int]) -> dict[int, list[DisclosureRow]]:
        """``item id -> its disclosures, newest first`` for the given items (absent when none)."""
        ids = sorted({int(i) for i in item_ids})
        out: dict[int, list[DisclosureRow]] = {}
        for start in range(0, len(ids), 900):  # SQLite's default bound-parameter limit is 999
            chunk = ids[start:start + 900]
            q = ",".join("?" * len(chunk))
            for r in self.db.execute(
                    f"SELECT * FROM disclosures WHERE item_id IN ({q}) "
                    "ORDER BY disclosed_at DESC, id DESC", chunk):
                out.setdefault(int(r["item_id"]), []).append(_row(r))
        return out

    def by_sha256(self, sha256: str) -> list[DisclosureRow]:
        """Disclosures whose output file had exactly these bytes, newest first."""
        rows = self.db.execute(
            "SELECT * FROM disclosures WHERE output_sha256=? ORDER BY disclosed_at DESC, id DESC",
            (sha256,))
        return [_row(r) for r in rows]

    def with_iscc(self) -> list[DisclosureRow]:
        """Every disclosure that recorded an ISCC content code, newest first.

        A linear scan: the Hamming comparison happens in the caller, which knows the code
        format. Fine for the tens of thousands of disclosures a local index holds.
        """
        rows = self.db.execute("SELECT * FROM disclosures WHERE iscc IS NOT NULL "
                               "ORDER BY disclosed_at DESC, id DESC")
        return [_row(r) for r in rows]

    def count(self) -> int:
        """How many disclosures are recorded."""
        return int(self.db.execute("SELECT count(*) FROM disclosures").fetchone()[0])

"""FAISS indexes derived from the catalog, saved as snapshots that catch up on open.

A snapshot is one file::

    MAGIC | u64 header length | JSON header | FAISS index (serialised by FAISS) | SHA-256 of all before it

The header records what the snapshot was built from: signal, version, model, factory, dimension, the
``catalog_id`` written into the catalog at ``init`` (so a snapshot never serves another catalog, e.g.
after ``catalog.sqlite`` was deleted and re-created), the last catalog fingerprint row it holds and its
vector count. No pickle. Opening verifies all of it before FAISS reads a byte: the trailing checksum
(any flipped or missing byte), the header against this installation and this catalog, the count against
the data FAISS read, the highest id against ``last_row``, and a few stored vectors against the catalog's
own values. Any mismatch or damage means the snapshot is not this catalog's: since it is derived data it
is rebuilt from the catalog, with one line on stderr (:data:`notice`). FAISS exceptions never escape.

It is written to a ``tempfile`` in the same folder (``O_EXCL``, mode 0600, random name) and renamed over
the old one, so a kill leaves either snapshot; temporary files left by killed processes are removed on the
next open. Since the catalog is the source of truth an old snapshot only means more catching up.
FAISS ids are catalog fingerprint row ids (``IndexIDMap2`` / ``IndexBinaryIDMap2``).

Index kinds grow with size: binary hashes stay in an exact flat index (a Hamming scan of 10^6 PDQ hashes
is ~100 ms for 8 queries); float vectors move from an exact flat index to HNSW once there are
``HNSW_MIN_VECTORS`` of them, because a flat inner-product scan of 10^6 passages costs seconds per draft.
The factory string in use is recorded in the snapshot header.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np

from ..errors import ProvenanceIndexError
from ..faiss_threads import blas_from, one_thread
from .catalog import Catalog

#: Format 2: bound to a catalog id, with a trailing SHA-256. Format 1 files (no binding) are rebuilt.
MAGIC = b"PROVENANCE-FAISS/2\n"
_DIGEST = 32
#: Stored vectors compared with the catalog on every open (the highest id and evenly spaced others):
#: cheap (one indexed SELECT) and catches a snapshot paired with the wrong rows.
SPOT_CHECKS = 8


def _stderr_notice(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


#: Called with one line when a snapshot is rebuilt on open. The CLI keeps the default (stderr);
#: library callers may replace it (e.g. with a logger).
notice: Callable[[str], None] = _stderr_notice


class SnapshotMismatch(Exception):
    """A snapshot that cannot serve this catalog (damaged, stale, or another catalog's); rebuilt."""

Kind = Literal["binary", "float"]


#: Float vectors switch from exact flat search to HNSW at this count (see the module docstring).
HNSW_MIN_VECTORS = 200_000
#: HNSW graph degree and search breadth. Measured on 200k clustered synthetic 384-d unit vectors (2 cores):
#: build 93 s; 38 queries 32 ms vs 999 ms flat (31x); a near-copy (cosine ~0.93) is in the top 16 for
#: 200/200 queries at efSearch 64, 128 and 256. Recall of the full top 10 among near-ties is lower (0.65),
#: which matters little here: a match must clear cosine 0.80. tests/test_vectors.py checks agreement.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128


def _factories(kind: Kind, dim: int) -> tuple[str, ...]:
    """Factory strings this version can read for ``kind``, smallest-index kind first."""
    if kind == "binary":
        return (f"IDMap2,BFlat{dim}",)
    return (f"IDMap2,Flat,IP{dim}", f"IDMap2,HNSW{HNSW_M},Flat,IP{dim}")


def _new_index(kind: Kind, dim: int, factory: str) -> Any:
    if kind == "binary":
        return faiss.IndexBinaryIDMap2(faiss.IndexBinaryFlat(dim))
    if ",HNSW" in factory:
        hnsw = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        hnsw.hnsw.efSearch = HNSW_EF_SEARCH
        return faiss.IndexIDMap2(hnsw)
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def _read_header(head: bytes, read: Callable[[int], bytes], magic: bytes = MAGIC) -> dict:
    """Parse ``magic | u64 length`` (``head``) and the JSON header that ``read(length)`` returns."""
    if not head.startswith(magic) or len(head) < len(magic) + 8:
        raise ValueError("not a snapshot of this format")
    (hlen,) = struct.unpack(">Q", head[len(magic):len(magic) + 8])
    if hlen > 1 << 20:  # a header is a few hundred bytes; a huge length is damage, not a header
        raise ValueError(f"header length {hlen} is implausible")
    header = json.loads(read(hlen))
    if not isinstance(header, dict):
        raise TypeError("header is not a JSON object")
    return header


def snapshot_header(path: Path, magic: bytes = MAGIC) -> dict:
    """The JSON header of the snapshot at ``path``, read without the rest (no checksum: loading checks it).
    Raises ``OSError``, ``ValueError``, ``TypeError`` or ``struct.error`` for a missing or foreign file."""
    with open(path, "rb") as f:
        return _read_header(f.read(len(magic) + 8), f.read, magic)


def read_snapshot(path: Path, magic: bytes, bad_magic: Callable[[bytes], str]) -> tuple[dict, memoryview]:
    """Read and verify a snapshot file (``magic | u64 header length | JSON header | payload | SHA-256``):
    returns its header and payload. Raises :class:`SnapshotMismatch` when it is unreadable, of another
    format (``bad_magic(raw)`` says which), truncated, damaged or has no readable header."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SnapshotMismatch(f"unreadable ({exc.strerror or exc})") from None
    if not raw.startswith(magic):
        raise SnapshotMismatch(bad_magic(raw))
    if len(raw) < len(magic) + 8 + _DIGEST:
        raise SnapshotMismatch(f"truncated ({len(raw)} bytes)")
    body, digest = memoryview(raw)[:-_DIGEST], raw[-_DIGEST:]
    if hashlib.sha256(body).digest() != digest:
        raise SnapshotMismatch("damaged (checksum mismatch: truncated or altered bytes)")
    pos = len(magic) + 8
    try:
        header = _read_header(raw[:pos], lambda n: raw[pos:pos + n], magic)
    except (ValueError, TypeError, struct.error) as exc:
        raise SnapshotMismatch(f"unreadable header ({exc})") from None
    (hlen,) = struct.unpack(">Q", raw[len(magic):pos])
    return header, body[pos + hlen:]


def write_snapshot(path: Path, magic: bytes, header: dict, payload: bytes | memoryview) -> None:
    """Write a snapshot file (the layout :func:`read_snapshot` reads) atomically: a private temporary file
    in the same folder, fsynced, renamed over the old one, so a kill leaves the old or the new file."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    head_json = json.dumps(header).encode()
    head = magic + struct.pack(">Q", len(head_json)) + head_json
    digest = hashlib.sha256(head)
    digest.update(payload)
    # mkstemp: O_CREAT|O_EXCL (never follows or reuses a planted file), mode 0600, unpredictable name.
    # The pid in the name lets the next open tell a killed writer's leftover from a live one's.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(head)
            f.write(payload)
            f.write(digest.digest())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with _suppress_oserror():
            os.unlink(tmp)
        raise


_TEMP_NAME = re.compile(r"^\.[\w.-]+\.faiss\.(\d+)\.[\w.-]*tmp$")


def remove_stale_temporary_files(directory: Path) -> int:
    """Delete snapshot temporary files whose writing process is gone (killed mid-save).

    A live writer's file is kept: its name carries its pid. Returns how many were removed.
    """
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return 0
    for entry in entries:
        m = _TEMP_NAME.match(entry.name)
        if not m or _pid_alive(int(m.group(1))):
            continue
        with _suppress_oserror():
            os.unlink(entry.path)
            removed += 1
    return removed


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class _suppress_oserror:
    def __enter__(self) -> None:
        return None

    def __exit__(self, et: object, ev: object, tb: object) -> bool:
        return isinstance(ev, OSError)


class VectorIndex:
    """The FAISS index of one signal, kept in step with the catalog."""

    def __init__(self, directory: Path, signal: str, version: int, model: str, kind: Kind, dim: int) -> None:
        self.path = Path(directory) / f"{signal}.faiss"
        self.signal, self.version, self.model, self.kind, self.dim = signal, version, model, kind, dim
        self.factory = _factories(kind, dim)[0]
        self.index = _new_index(kind, dim, self.factory)
        self.last_row = 0
        self.dirty = False
        #: The catalog this index holds rows of (set by :meth:`load` / :meth:`rebuild_from`).
        self.catalog_id: str | None = None

    # -- persistence ------------------------------------------------------------------------------
    def header(self) -> dict:
        """What the snapshot records about itself."""
        return {"signal": self.signal, "version": self.version, "model": self.model, "kind": self.kind,
                "dim": self.dim, "factory": self.factory, "catalog_id": self.catalog_id,
                "last_row": self.last_row, "count": int(self.index.ntotal)}

    @staticmethod
    def snapshot_last_row(directory: Path, signal: str, catalog_id: str | None = None) -> int | None:
        """The last catalog row recorded in a snapshot's header (``None``: no usable snapshot).

        Reads the header only (no checksum: that is :meth:`load`'s job). With ``catalog_id``, a snapshot
        of another catalog counts as none.
        """
        try:
            header = snapshot_header(Path(directory) / f"{signal}.faiss")
            if catalog_id is not None and header.get("catalog_id") != catalog_id:
                return None
            return int(header["last_row"])
        except (OSError, ValueError, KeyError, TypeError, struct.error):
            return None

    def load(self, catalog: Catalog) -> None:
        """Load the snapshot if there is one, then catch up with ``catalog``.

        A snapshot that is damaged, stale or another catalog's is rebuilt from ``catalog`` (one line
        through :data:`notice`). Raises :class:`ProvenanceIndexError` only when the catalog itself cannot
        be read back into an index.
        """
        remove_stale_temporary_files(self.path.parent)
        self.catalog_id = catalog.catalog_id
        if self.path.exists():
            try:
                self._load_snapshot(catalog)
            except SnapshotMismatch as why:
                self.rebuild_from(catalog)
                self._save_quietly()
                notice(f"note: {self.path}: {why}; rebuilt it from the catalog ({len(self)} vectors)")
                return
        self.catch_up(catalog)

    def _load_snapshot(self, catalog: Catalog) -> None:
        header, payload = read_snapshot(self.path, MAGIC, lambda raw: (
            "an older snapshot format, not bound to its catalog" if raw.startswith(b"PROVENANCE-FAISS/")
            else "not a snapshot file (bad magic)"))
        mine = {k: getattr(self, k) for k in ("signal", "version", "model", "kind", "dim")}
        theirs = {k: header.get(k) for k in mine}
        if mine != theirs or header.get("factory") not in _factories(self.kind, self.dim):
            raise SnapshotMismatch(f"built with {theirs}, this installation uses {mine}")
        if header.get("catalog_id") != catalog.catalog_id:
            raise SnapshotMismatch(f"built for catalog {header.get('catalog_id')}, not for this catalog "
                                   f"({catalog.catalog_id}; was catalog.sqlite replaced?)")
        try:
            last_row, count = int(header["last_row"]), int(header["count"])
        except (KeyError, TypeError, ValueError):
            raise SnapshotMismatch("header lacks last_row/count") from None
        if last_row > catalog.max_fingerprint_id(self.signal):
            raise SnapshotMismatch(f"holds rows up to {last_row}, the catalog only up to "
                                   f"{catalog.max_fingerprint_id(self.signal)}")
        blob = np.frombuffer(payload, dtype=np.uint8)
        reader = faiss.deserialize_index_binary if self.kind == "binary" else faiss.deserialize_index
        try:
            index: Any = reader(blob)  # an IDMap2 around a flat or HNSW index (FAISS stubs say less)
            if index.d != self.dim:
                raise SnapshotMismatch(f"FAISS data of dimension {index.d}, expected {self.dim}")
            ids = faiss.vector_to_array(index.id_map).astype(np.int64)
        except SnapshotMismatch:
            raise
        except Exception as exc:  # noqa: BLE001 - FAISS raises RuntimeError (and others) on bad data
            raise SnapshotMismatch(f"FAISS cannot read its data ({type(exc).__name__})") from None
        if int(index.ntotal) != count or len(ids) != count:
            raise SnapshotMismatch(f"header says {count} vectors, the data holds {int(index.ntotal)}")
        if count and (int(ids.max()) > last_row or int(ids.min()) < 1):
            raise SnapshotMismatch(f"holds row ids {int(ids.min())}..{int(ids.max())} outside 1..{last_row} "
                                   "recorded in its header")
        if count and len(np.unique(ids)) != count:
            raise SnapshotMismatch("holds a row id twice")
        self._spot_check(index, ids, catalog)
        self.index = index
        self.factory = header["factory"]
        if ",HNSW" in self.factory:
            hnsw: Any = faiss.downcast_index(self.index.index)
            hnsw.hnsw.efSearch = HNSW_EF_SEARCH
        self.last_row = last_row

    def _spot_check(self, index: Any, ids: np.ndarray, catalog: Catalog) -> None:
        """Compare the highest id's vector and a few evenly spaced others with the catalog's values."""
        if not len(ids):
            return
        picks = sorted({int(ids.argmax()), *np.linspace(0, len(ids) - 1, SPOT_CHECKS - 1).astype(int).tolist()})
        wanted = [int(ids[i]) for i in picks]
        stored = catalog.fingerprint_values(self.signal, wanted)
        for row_id in wanted:
            value = stored.get(row_id)
            if value is None:
                # Fingerprints of a removed item revived later are deleted from the catalog; a snapshot
                # still holding one is stale, not wrong, but rebuilding it is cheap and correct.
                raise SnapshotMismatch(f"holds row {row_id}, which the catalog does not have")
            try:
                got = index.reconstruct(row_id)
            except Exception as exc:  # noqa: BLE001 - an id the IDMap cannot find raises in FAISS
                raise SnapshotMismatch(f"cannot read back row {row_id} ({type(exc).__name__})") from None
            if np.asarray(got).tobytes() != value:
                raise SnapshotMismatch(f"row {row_id} differs from the catalog's value (another catalog's "
                                       "snapshot?)")

    def rebuild_from(self, catalog: Catalog) -> None:
        """Replace the in-memory index with one built from every live fingerprint in ``catalog``."""
        self.catalog_id = catalog.catalog_id
        self.factory = _factories(self.kind, self.dim)[0]
        self.index = _new_index(self.kind, self.dim, self.factory)
        self.last_row = 0
        self.catch_up(catalog)
        self.remove(catalog.removed_fingerprint_ids(self.signal))
        self.dirty = True

    def _save_quietly(self) -> None:
        """Save after a rebuild on open; a read-only folder only means rebuilding again next time."""
        try:
            self.save()
        except OSError as exc:
            notice(f"note: {self.path}: rebuilt in memory but cannot write it ({exc.strerror or exc})")

    def save(self) -> None:
        """Write the snapshot atomically (private temporary file, fsync, rename)."""
        if not self.dirty and self.path.exists():
            return
        writer = faiss.serialize_index_binary if self.kind == "binary" else faiss.serialize_index
        write_snapshot(self.path, MAGIC, self.header(), writer(self.index).data)
        self.dirty = False

    # -- contents ---------------------------------------------------------------------------------
    def catch_up(self, catalog: Catalog) -> int:
        """Add the catalog's fingerprints newer than the snapshot. Returns how many were added."""
        if self.catalog_id is None:
            self.catalog_id = catalog.catalog_id
        added = 0
        ids: list[int] = []
        vals: list[bytes] = []
        for row_id, value in catalog.fingerprint_rows(self.signal, self.last_row):
            ids.append(row_id)
            vals.append(value)
            if len(ids) >= 8192:
                added += self._add(ids, vals)
                ids, vals = [], []
        if ids:
            added += self._add(ids, vals)
        return added

    def _add(self, ids: list[int], values: list[bytes]) -> int:
        dtype = np.uint8 if self.kind == "binary" else np.float32
        width = self.dim // 8 if self.kind == "binary" else self.dim
        size = width * np.dtype(dtype).itemsize
        for row_id, value in zip(ids, values):
            if len(value) != size:
                # The catalog is the source of truth, so a wrong-sized value is damage there, not here.
                raise ProvenanceIndexError(
                    f"{self.path.parent.parent / 'catalog.sqlite'}: fingerprint row {row_id} ({self.signal}) "
                    f"has {len(value)} bytes, expected {size}: the catalog is damaged; restore it from a "
                    "backup, or create a new index and add the content again")
        mat = np.frombuffer(b"".join(values), dtype=dtype).reshape(len(values), width)
        self.index.add_with_ids(np.ascontiguousarray(mat), np.asarray(ids, dtype=np.int64))
        self.last_row = max(self.last_row, ids[-1])
        self.dirty = True
        if self.kind == "float" and ",HNSW" not in self.factory and self.index.ntotal >= HNSW_MIN_VECTORS:
            self._grow_to_hnsw()
        return len(ids)

    def _grow_to_hnsw(self) -> None:
        """Move every vector of the flat index into an HNSW index (same ids)."""
        flat = faiss.downcast_index(self.index.index)
        ids = faiss.vector_to_array(self.index.id_map).astype(np.int64)
        vectors = flat.reconstruct_n(0, flat.ntotal)
        self.factory = _factories(self.kind, self.dim)[1]
        grown = _new_index(self.kind, self.dim, self.factory)
        grown.add_with_ids(vectors, ids)
        self.index = grown

    def remove(self, row_ids: list[int]) -> None:
        """Drop fingerprints (of a removed item) from the in-memory index.

        HNSW cannot delete; there removed items stay in the graph and are filtered out on every
        search by the catalog join (``Catalog.fingerprint_owners``), which is the rule anyway.
        """
        if row_ids and ",HNSW" not in self.factory:
            self.index.remove_ids(np.asarray(row_ids, dtype=np.int64))
            self.dirty = True

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(distances or similarities, row ids)`` of the ``k`` nearest per query row (-1 = none)."""
        if self.index.ntotal == 0 or len(queries) == 0:
            return (np.zeros((len(queries), 0)), np.full((len(queries), 0), -1, dtype=np.int64))
        with one_thread(), blas_from():
            return self.index.search(np.ascontiguousarray(queries), min(k, int(self.index.ntotal)))

    def __len__(self) -> int:
        return int(self.index.ntotal)

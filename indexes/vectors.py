"""FAISS indexes derived from the catalog, saved as snapshots that catch up on open.

A snapshot is one file: a magic line, a JSON header (signal, version, model, factory, dimension and the
last catalog fingerprint row it holds) and the FAISS index serialised by FAISS itself. No pickle.
It is written to a temporary file and renamed over the old one, so a kill leaves either snapshot, and
since the catalog is the source of truth an old snapshot only means more catching up on the next open.
FAISS ids are catalog fingerprint row ids (``IndexIDMap2`` / ``IndexBinaryIDMap2``).

Index kinds grow with size: binary hashes stay in an exact flat index (a Hamming scan of 10^6 PDQ hashes
is ~100 ms for 8 queries); float vectors move from an exact flat index to HNSW once there are
``HNSW_MIN_VECTORS`` of them, because a flat inner-product scan of 10^6 passages costs seconds per draft.
The factory string in use is recorded in the snapshot header.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np

from ..errors import ProvenanceIndexError
from .catalog import Catalog

MAGIC = b"PROVENANCE-FAISS/1\n"

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


class VectorIndex:
    """The FAISS index of one signal, kept in step with the catalog."""

    def __init__(self, directory: Path, signal: str, version: int, model: str, kind: Kind, dim: int) -> None:
        self.path = Path(directory) / f"{signal}.faiss"
        self.signal, self.version, self.model, self.kind, self.dim = signal, version, model, kind, dim
        self.factory = _factories(kind, dim)[0]
        self.index = _new_index(kind, dim, self.factory)
        self.last_row = 0
        self.dirty = False

    # -- persistence ------------------------------------------------------------------------------
    def header(self) -> dict:
        """What the snapshot records about itself."""
        return {"signal": self.signal, "version": self.version, "model": self.model, "kind": self.kind,
                "dim": self.dim, "factory": self.factory, "last_row": self.last_row,
                "count": int(self.index.ntotal)}

    @staticmethod
    def snapshot_last_row(directory: Path, signal: str) -> int | None:
        """The last catalog row recorded in a snapshot's header (``None``: no readable snapshot)."""
        try:
            with open(Path(directory) / f"{signal}.faiss", "rb") as f:
                head = f.read(len(MAGIC) + 8)
                if not head.startswith(MAGIC):
                    return None
                (hlen,) = struct.unpack(">Q", head[len(MAGIC):])
                return int(json.loads(f.read(hlen))["last_row"])
        except (OSError, ValueError, KeyError, struct.error):
            return None

    def load(self, catalog: Catalog) -> None:
        """Load the snapshot if there is one, then catch up with ``catalog``."""
        if self.path.exists():
            try:
                raw = self.path.read_bytes()
                if not raw.startswith(MAGIC):
                    raise ValueError("bad magic")
                (hlen,) = struct.unpack(">Q", raw[len(MAGIC):len(MAGIC) + 8])
                start = len(MAGIC) + 8
                header = json.loads(raw[start:start + hlen])
                blob = np.frombuffer(raw[start + hlen:], dtype=np.uint8)
            except (OSError, ValueError, struct.error) as exc:
                raise ProvenanceIndexError(
                    f"{self.path}: unreadable index snapshot ({exc}); rebuild it from the catalog with "
                    f"`provenance rebuild --index {self.path.parent.parent}`") from exc
            mine = {k: getattr(self, k) for k in ("signal", "version", "model", "kind", "dim")}
            theirs = {k: header.get(k) for k in mine}
            if mine != theirs or header.get("factory") not in _factories(self.kind, self.dim):
                raise ProvenanceIndexError(
                    f"{self.path}: built with {theirs}, this installation needs {mine}; rebuild it with "
                    f"`provenance rebuild --index {self.path.parent.parent}`")
            reader = faiss.deserialize_index_binary if self.kind == "binary" else faiss.deserialize_index
            self.index = reader(blob)
            self.factory = header["factory"]
            if ",HNSW" in self.factory:
                hnsw: Any = faiss.downcast_index(self.index.index)
                hnsw.hnsw.efSearch = HNSW_EF_SEARCH
            self.last_row = int(header["last_row"])
            if self.last_row > catalog.max_fingerprint_id(self.signal):
                raise ProvenanceIndexError(
                    f"{self.path}: holds rows the catalog does not (the catalog was replaced?); rebuild "
                    f"with `provenance rebuild --index {self.path.parent.parent}`")
        self.catch_up(catalog)

    def save(self) -> None:
        """Write the snapshot atomically (temporary file, fsync, rename)."""
        if not self.dirty and self.path.exists():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        writer = faiss.serialize_index_binary if self.kind == "binary" else faiss.serialize_index
        blob = writer(self.index)
        header = json.dumps(self.header()).encode()
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            f.write(MAGIC + struct.pack(">Q", len(header)) + header)
            f.write(blob.data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self.dirty = False

    # -- contents ---------------------------------------------------------------------------------
    def catch_up(self, catalog: Catalog) -> int:
        """Add the catalog's fingerprints newer than the snapshot. Returns how many were added."""
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
        return self.index.search(np.ascontiguousarray(queries), min(k, int(self.index.ntotal)))

    def __len__(self) -> int:
        return int(self.index.ntotal)

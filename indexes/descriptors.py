"""The local-features descriptor index, saved as a snapshot bound to its catalog.

Without a snapshot every process rebuilt the FAISS binary descriptor index
(:class:`provenance.localfeatures.DescriptorIndex`) from all of the catalog's local-feature rows before
its first search: a cold ``check`` of one image read and parsed every indexed image's feature blob. The
snapshot follows the rules of the FAISS vector snapshots (:mod:`provenance.indexes.vectors`)::

    MAGIC | u64 header length | JSON header | DescriptorIndex.to_bytes() | SHA-256 of all before it

The header records the signal, its version, the descriptors kept per image, the ``catalog_id`` and the
``last_row`` watermark (the newest catalog fingerprint row it holds). Opening checks the checksum, the
header against this installation and catalog, the ids against ``last_row``, and a few images' stored
descriptors against the catalog's blobs; any mismatch or damage rebuilds it from the catalog with one
line through :data:`provenance.indexes.vectors.notice`. Rows newer than ``last_row`` (added by another
process) are caught up. Removed items stay in it and are filtered by ``Catalog.fingerprint_owners`` on
every search, as before; ``rebuild`` compacts them away.

Written to a private temporary file in the same folder and renamed over the old one (a kill leaves the
old or the new snapshot, never half of one); leftovers of killed writers are removed on the next open.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ..localfeatures import INDEX_PER_IMAGE, DescriptorIndex, Features
from . import vectors
from .catalog import Catalog
from .vectors import SnapshotMismatch, remove_stale_temporary_files

MAGIC = b"PROVENANCE-DESCRIPTORS/1\n"
#: Images whose stored descriptors are compared with the catalog's blobs on open (the newest and evenly
#: spaced others): catches a snapshot paired with the wrong rows for one indexed SELECT.
SPOT_CHECKS = 8


class DescriptorSnapshot:
    """A :class:`DescriptorIndex` of one signal's catalog rows, loaded from and saved to one file."""

    def __init__(self, directory: Path, signal: str, version: int) -> None:
        # ``.faiss`` so that remove_stale_temporary_files recognises this file's temporary names too.
        self.path = Path(directory) / f"{signal}.descriptors.faiss"
        self.signal, self.version = signal, version
        self.index = DescriptorIndex()
        #: The newest catalog fingerprint row held (the watermark for catching up).
        self.last_row = 0
        #: Rows held that the file on disk lacks.
        self.dirty = False
        self.catalog_id: str | None = None
        #: Catalog rows read (parsed) by this object: what the snapshot saves a cold process.
        self.rows_read = 0

    # -- header -------------------------------------------------------------------------------------
    def header(self) -> dict[str, object]:
        """What the snapshot records about itself."""
        return {"signal": self.signal, "version": self.version, "per_image": self.index.per_image,
                "catalog_id": self.catalog_id, "last_row": self.last_row, "descriptors": self.index.ntotal}

    @staticmethod
    def snapshot_last_row(path: Path, catalog_id: str) -> int | None:
        """``last_row`` from the header of the file at ``path`` (``None``: none, unreadable or another
        catalog's). Reads the header only; :meth:`load` checks the rest."""
        try:
            header = vectors.snapshot_header(path, MAGIC)
            if header.get("catalog_id") != catalog_id:
                return None
            return int(header["last_row"])
        except (OSError, ValueError, KeyError, TypeError, struct.error):
            return None

    # -- loading ------------------------------------------------------------------------------------
    def load(self, catalog: Catalog) -> None:
        """Load the snapshot if there is one, then catch up with ``catalog``; rebuild a bad one."""
        remove_stale_temporary_files(self.path.parent)
        self.catalog_id = catalog.catalog_id
        if self.path.exists():
            try:
                self._load_snapshot(catalog)
            except SnapshotMismatch as why:
                self.rebuild_from(catalog)
                self.save_quietly()
                vectors.notice(f"note: {self.path}: {why}; rebuilt it from the catalog "
                               f"({self.index.ntotal} descriptors)")
                return
        self.catch_up(catalog)

    def _load_snapshot(self, catalog: Catalog) -> None:
        header, payload = vectors.read_snapshot(self.path, MAGIC, lambda _raw: "not a descriptor snapshot (bad magic)")
        try:
            last_row = int(header["last_row"])
        except (ValueError, TypeError, KeyError) as exc:
            raise SnapshotMismatch(f"unreadable header ({exc})") from None
        mine = {"signal": self.signal, "version": self.version, "per_image": INDEX_PER_IMAGE}
        theirs = {k: header.get(k) for k in mine}
        if mine != theirs:
            raise SnapshotMismatch(f"built with {theirs}, this installation uses {mine}")
        if header.get("catalog_id") != catalog.catalog_id:
            raise SnapshotMismatch(f"built for catalog {header.get('catalog_id')}, not for this catalog "
                                   f"({catalog.catalog_id}; was catalog.sqlite replaced?)")
        newest = catalog.max_fingerprint_id(self.signal)
        if last_row > newest:
            raise SnapshotMismatch(f"holds rows up to {last_row}, the catalog only up to {newest}")
        try:
            index = DescriptorIndex.from_bytes(payload)
        except Exception as exc:  # noqa: BLE001 - FAISS raises RuntimeError (and others) on bad data
            raise SnapshotMismatch(f"its index cannot be read ({type(exc).__name__}: {exc})") from None
        if index.ntotal != header.get("descriptors"):
            raise SnapshotMismatch(f"header says {header.get('descriptors')} descriptors, the data holds "
                                   f"{index.ntotal}")
        ids = index.image_ids
        if len(ids) and (int(ids[0]) < 1 or int(ids[-1]) > last_row or bool(np.any(np.diff(ids) < 0))):
            raise SnapshotMismatch(f"holds image ids outside 1..{last_row} or out of row order")
        self._spot_check(index, catalog)
        self.index, self.last_row = index, last_row
        if index.settle():  # a flat snapshot past today's IVF bound: switch once, and write it back
            self.dirty = True

    def _spot_check(self, index: DescriptorIndex, catalog: Catalog) -> None:
        """Compare a few images' indexed descriptors with the catalog's feature blobs."""
        ids = index.image_ids
        if not len(ids):
            return
        unique = np.unique(ids)
        picks = sorted({int(unique[-1]), *unique[np.linspace(0, len(unique) - 1, SPOT_CHECKS - 1).astype(int)]
                        .tolist()})
        stored = catalog.fingerprint_values(self.signal, picks)
        flat = index.kind == "flat"  # an IVF index cannot read a row back without a direct map
        for row_id in picks:
            value = stored.get(row_id)
            if value is None:
                # Fingerprints of a removed item revived later are deleted from the catalog: stale, and
                # rebuilding compacts them away.
                raise SnapshotMismatch(f"holds row {row_id}, which the catalog does not have")
            try:
                want = Features.from_bytes(value).descriptors[:index.per_image]
            except ValueError:
                continue  # a damaged blob in the catalog was never indexed; nothing to compare
            lo, hi = np.searchsorted(ids, row_id, "left"), np.searchsorted(ids, row_id, "right")
            if hi - lo != len(want):
                raise SnapshotMismatch(f"row {row_id} has {hi - lo} descriptors, the catalog's blob {len(want)}")
            if flat and np.asarray(index.index.reconstruct_n(int(lo), int(hi - lo))).tobytes() != want.tobytes():
                raise SnapshotMismatch(f"row {row_id} differs from the catalog's value (another catalog's "
                                       "snapshot?)")

    # -- contents -----------------------------------------------------------------------------------
    def catch_up(self, catalog: Catalog) -> int:
        """Add the catalog's rows newer than ``last_row``. Returns how many were read."""
        if self.catalog_id is None:
            self.catalog_id = catalog.catalog_id
        n = 0
        for row_id, value in catalog.fingerprint_rows(self.signal, self.last_row):
            try:
                self.index.add(row_id, Features.from_bytes(value))
            except ValueError:
                pass  # a damaged blob: that item cannot be found by this signal; the others still are
            self.last_row = row_id
            n += 1
        self.rows_read += n
        if n:
            self.dirty = True
        return n

    def rebuild_from(self, catalog: Catalog) -> None:
        """Replace the in-memory index with one of the catalog's live rows (removed items left out)."""
        self.catalog_id = catalog.catalog_id
        self.index = DescriptorIndex()
        self.last_row = 0
        removed = set(catalog.removed_fingerprint_ids(self.signal))
        n = 0
        for row_id, value in catalog.fingerprint_rows(self.signal, 0):
            n += 1
            self.last_row = row_id
            if row_id in removed:
                continue
            try:
                self.index.add(row_id, Features.from_bytes(value))
            except ValueError:
                pass
        self.rows_read += n
        self.dirty = True

    # -- saving -------------------------------------------------------------------------------------
    def save_quietly(self) -> None:
        """:meth:`save`; a folder that cannot be written only means rebuilding again next time."""
        try:
            self.save()
        except OSError as exc:
            vectors.notice(f"note: {self.path}: rebuilt in memory but cannot write it ({exc.strerror or exc})")

    def save(self) -> None:
        """Write the snapshot atomically (private temporary file, fsync, rename) when it changed."""
        if not self.dirty and self.path.exists():
            return
        vectors.write_snapshot(self.path, MAGIC, self.header(), self.index.to_bytes())
        self.dirty = False

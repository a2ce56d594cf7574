"""Auditing a folder: which items copy each other, which copy something in the index, which are original.

Input contract: paths to files and folders (walked recursively with :func:`provenance.files.iter_files`).
Every file is sniffed by content (:func:`provenance.content.content_from_bytes`); what cannot be read is
recorded with the reason and skipped, never fatal.

Pipeline, and why each step looks the way it does:

1. *Stat and cache lookup.* A per-file cache (SQLite, WAL) keyed by path, size, mtime and sha256 holds the
   fingerprints of every file seen before. An unchanged file (same path, size and mtime) is not even read;
   a changed path whose bytes hash to a cached sha256 (moved, touched) reuses that entry's fingerprints.
2. *Fingerprinting* of the rest in worker processes (decode + sha256 + PDQ/pHash with their dihedral query
   variants + a thumbnail), because decoding and hashing are CPU bound and Python threads would not
   scale. The workers never import torch (forking a process with torch loaded can deadlock); text
   embeddings are computed in batches in the main process while the workers decode.
3. *Commit per batch*, so a kill loses at most the batch in flight and the next run resumes from the cache.
4. *Clustering* inside the archive without comparing all pairs in Python: temporary FAISS binary indexes
   over the PDQ and pHash hashes are searched with the dihedral variants (as ``check`` does), texts go
   through shingle postings (then exact alignment) and a FAISS inner-product index of passage embeddings.
   Passing pairs become edges; union-find turns them into connected groups.
5. *Index matches* through :meth:`Index.check_content` with the cached fingerprints passed in, so the
   signals, thresholds, evidence and verdicts are exactly those of ``provenance check``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .content import MAX_SIDE, Content, content_from_bytes
from .errors import BadInputError, ProvenanceIndexError
from .files import iter_files
from .report import VERDICTS, Observation, decide, verdict_rank
from .signals import BUILTIN
from .signals.base import Fingerprint, SignalSkipped
from .signals.image import BLOCK, DIHEDRAL, TRIMMED, PDQSignal, PHashSignal, phash_threshold
from .workers import worker_pool  # issue 11 (hardening)

#: Version of the ``--json`` document; bump on incompatible changes.
AUDIT_SCHEMA = "provenance.audit/1"
#: Version of the cache layout and of what a worker computes (bump to invalidate every cached entry).
CACHE_VERSION = 1
#: Long side of the thumbnails kept for the HTML report.
THUMB_SIDE = 160
#: Files committed to the state per transaction: small enough that a kill loses little, large enough
#: that the commit cost is amortised and text embeddings are batched.
BATCH_FILES = 64
#: Neighbours fetched per query in the in-archive searches (as ``index.SEARCH_K``); union-find makes
#: larger groups connected through their members anyway.
ARCHIVE_K = 16
#: Text candidates aligned per text item (ranked by shared shingles), as in ``check``.
MAX_TEXT_CANDIDATES = 20


# ---------------------------------------------------------------------------------------------------
# Worker side: no torch, no FAISS, only decode and hash.


def fingerprint_file(path: str) -> dict[str, Any]:
    """Read, sniff, decode and fingerprint one file (runs in a worker process).

    Returns a plain dict (cheap to pickle) with ``sha256``, ``media`` and, for images, the PDQ and pHash
    dihedral variants, PDQ quality and a JPEG thumbnail; for texts the extracted text. On failure the
    dict carries ``error`` instead.
    """
    out: dict[str, Any] = {"path": path}
    try:
        st = os.stat(path)
        out.update(size=st.st_size, mtime_ns=st.st_mtime_ns)
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        out["error"] = f"cannot read: {exc.strerror or exc}"
        return out
    out["sha256"] = hashlib.sha256(data).hexdigest()
    try:
        content = content_from_bytes(data, path)
    except BadInputError as exc:
        out["error"] = str(exc).removeprefix(f"{path}: ")
        return out
    except Exception as exc:  # a decoder bug on one file must not stop the audit
        out["error"] = f"cannot decode: {type(exc).__name__}: {exc}"
        return out
    out["media"] = content.media
    if content.media == "text":
        out["text"] = content.text
        return out
    out.update(image_format=content.image_format, width=content.original_size[0],
               height=content.original_size[1])
    out["variants"] = _image_variants(content)
    out["thumb"] = base64.b64encode(_thumbnail(content)).decode("ascii")
    return out


def _image_variants(content: Content) -> dict[str, Any]:
    variants: dict[str, Any] = {}
    for signal in (_PDQ, _PHASH):
        try:
            v = signal.query_variants(content)
            # Hex, so the record is plain JSON in the state file and the ``--json`` document.
            variants[signal.name] = {"hashes": [fps[0].value.hex() for _, fps in v], "names": [t for t, _ in v],
                                     "quality": v[0][1][0].quality}
        except SignalSkipped as exc:
            variants[signal.name] = {"skipped": str(exc)}
    return variants


def _thumbnail(content: Content) -> bytes:
    from PIL import Image
    assert content.image is not None
    img = content.image.copy()
    img.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=70)
    return buf.getvalue()


_PDQ = PDQSignal()
_PHASH = PHashSignal()


def _fingerprint_chunk(paths: Sequence[str]) -> list[dict[str, Any]]:
    return [fingerprint_file(p) for p in paths]


# ---------------------------------------------------------------------------------------------------
# The state file: fingerprint cache and run log.


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
                    record TEXT NOT NULL, embed BLOB);
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
        cur = self.db.execute("INSERT INTO runs (started, status, roots) VALUES (?, 'running', ?)",
                              (time.time(), json.dumps(list(roots))))
        self.db.commit()
        return int(cur.lastrowid)

    def finish_run(self, run_id: int, status: str) -> None:
        self.db.execute("UPDATE runs SET finished=?, status=? WHERE id=?", (time.time(), status, run_id))
        self.db.commit()

    def lookup(self, path: str, size: int, mtime_ns: int) -> tuple[dict, bytes | None] | None:
        row = self.db.execute("SELECT record, embed FROM files WHERE path=? AND size=? AND mtime_ns=?",
                              (path, size, mtime_ns)).fetchone()
        return (json.loads(row[0]), row[1]) if row else None

    def lookup_sha(self, sha256: str) -> tuple[dict, bytes | None] | None:
        row = self.db.execute("SELECT record, embed FROM files WHERE sha256=? AND record NOT LIKE '%\"error\"%' "
                              "LIMIT 1", (sha256,)).fetchone()
        return (json.loads(row[0]), row[1]) if row else None

    def store(self, records: Iterable[tuple[dict, bytes | None]]) -> None:
        """Write one batch in one transaction."""
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO files (path, size, mtime_ns, sha256, record, embed) VALUES (?,?,?,?,?,?)",
                [(r["path"], r.get("size"), r.get("mtime_ns"), r.get("sha256"), json.dumps(r), e)
                 for r, e in records])

    def close(self) -> None:
        self.db.close()


def _signature(model_id: str) -> str:
    return json.dumps({"cache": CACHE_VERSION, "max_side": MAX_SIDE, "thumb": THUMB_SIDE,
                       "pdq": PDQSignal.version, "phash": PHashSignal.version, "embed_model": model_id})


# ---------------------------------------------------------------------------------------------------
# Results


@dataclass
class AuditItem:
    """One audited file: its cached record, and what the audit concluded."""

    path: str
    record: dict[str, Any]
    embed: np.ndarray | None = None
    #: Where the fingerprints came from: ``computed``, ``cached`` (unchanged file) or ``cached-sha256``.
    origin: str = "computed"
    cluster: int | None = None
    archive_matches: list[dict[str, Any]] = field(default_factory=list)
    index_report: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return "error" not in self.record

    @property
    def media(self) -> str | None:
        return self.record.get("media")

    @property
    def archive_verdict(self) -> str:
        return min((m["verdict"] for m in self.archive_matches), key=verdict_rank, default="original")

    @property
    def index_verdict(self) -> str:
        return self.index_report["verdict"] if self.index_report else "original"

    @property
    def verdict(self) -> str:
        if not self.ok:
            return "error"
        return min(self.archive_verdict, self.index_verdict, key=verdict_rank)


@dataclass
class Cluster:
    """A connected group of near-duplicates inside the archive."""

    id: int
    members: list[int]
    representative: int
    verdict: str
    edges: list[dict[str, Any]]


@dataclass
class AuditResult:
    """Everything one audit found, ready to render as JSON, CSV or HTML."""

    items: list[AuditItem]
    clusters: list[Cluster]
    counters: dict[str, Any]
    walk_errors: list[dict[str, str]]
    index_path: str | None

    def summary(self) -> dict[str, Any]:
        verdicts = {v: 0 for v in (*VERDICTS, "error")}
        for it in self.items:
            verdicts[it.verdict] += 1
        return {
            "files": len(self.items),
            "images": sum(1 for i in self.items if i.media == "image"),
            "texts": sum(1 for i in self.items if i.media == "text"),
            "errors": sum(1 for i in self.items if not i.ok) + len(self.walk_errors),
            "clusters": len(self.clusters),
            "clustered_items": sum(len(c.members) for c in self.clusters),
            "matched_in_index": sum(1 for i in self.items if i.index_verdict != "original"),
            "original": verdicts["original"],
            "verdicts": verdicts,
            **self.counters,
        }

    def item_dict(self, i: int) -> dict[str, Any]:
        it = self.items[i]
        rec = it.record
        d: dict[str, Any] = {
            "id": i, "path": it.path, "size": rec.get("size"), "mtime_ns": rec.get("mtime_ns"),
            "sha256": rec.get("sha256"), "media": it.media, "verdict": it.verdict,
            "archive_verdict": it.archive_verdict if it.ok else None,
            "index_verdict": it.index_verdict if it.ok else None,
            "cluster": it.cluster, "fingerprints": it.origin,
        }
        if not it.ok:
            d["error"] = rec["error"]
            return d
        if it.media == "image":
            d.update(width=rec.get("width"), height=rec.get("height"), format=rec.get("image_format"))
            skipped = {k: v["skipped"] for k, v in rec.get("variants", {}).items() if "skipped" in v}
            if skipped:
                d["skipped"] = skipped
        d["archive_matches"] = it.archive_matches
        d["index_matches"] = it.index_report["matches"] if it.index_report else []
        return d

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` document (``provenance.audit/1``)."""
        return {
            "schema": AUDIT_SCHEMA,
            "index": self.index_path,
            "summary": self.summary(),
            "clusters": [{"id": c.id, "size": len(c.members), "verdict": c.verdict,
                          "representative": self.items[c.representative].path,
                          "members": [self.items[m].path for m in c.members],
                          "edges": [{**e, "a": self.items[e["a"]].path, "b": self.items[e["b"]].path}
                                    for e in c.edges]}
                         for c in self.clusters],
            "items": [self.item_dict(i) for i in range(len(self.items))],
            "walk_errors": self.walk_errors,
        }


# ---------------------------------------------------------------------------------------------------
# The audit


ProgressFn = Callable[[int, int, dict[str, int]], None]


def audit(roots: Sequence[Path], *, state_path: Path, index=None, add: bool = False,
          source: str | None = None, exclude: Sequence[str] = (), workers: int = 2,
          progress: ProgressFn | None = None, embed_signal=None) -> AuditResult:
    """Audit the files under ``roots``.

    ``index`` is an open :class:`~provenance.index.Index` to match against (``None``: in-archive only);
    with ``add`` the audited items are added to it afterwards (labelled ``source``). ``progress`` is
    called as ``progress(done, total, counters)`` after each batch. ``KeyboardInterrupt`` propagates
    after the batches done so far are committed; the next run resumes from them.
    """
    from .signals.text import EmbedSignal

    embed = embed_signal or (index.embed if index is not None else EmbedSignal())
    state = AuditState(state_path, _signature(embed.model_id()))
    walk_errors: list[dict[str, str]] = []
    counters = {"fingerprinted": 0, "reused": 0, "reused_by_sha256": 0, "embedded_texts": 0,
                "resumed": False, "added_to_index": 0}
    if state.interrupted_run() is not None:
        counters["resumed"] = True
    run_id = state.start_run([str(r) for r in roots])
    t0 = time.perf_counter()
    try:
        paths = [str(p) for p in iter_files(roots, recursive=True, exclude=exclude,
                                            on_error=lambda p, why: walk_errors.append({"path": str(p),
                                                                                        "error": why}))]
        # Deduplicate paths named twice (overlapping roots) while keeping walk order, and never audit
        # the tool's own files: the state database (and its WAL) and the index folder.
        own = {str(Path(str(state_path) + suffix).resolve()) for suffix in ("", "-wal", "-shm", "-journal")}
        index_dir = Path(index.path).resolve() if index is not None else None
        paths = [p for p in dict.fromkeys(paths) if str(Path(p).resolve()) not in own
                 and (index_dir is None or index_dir not in Path(p).resolve().parents)]
        items = _collect(paths, state, embed, counters, workers, progress)
        counters["fingerprint_seconds"] = round(time.perf_counter() - t0, 3)
        t1 = time.perf_counter()
        clusters = _cluster(items, embed)
        counters["cluster_seconds"] = round(time.perf_counter() - t1, 3)
        if index is not None:
            t2 = time.perf_counter()
            _match_index(items, index)
            if add:
                counters["added_to_index"] = _add_to_index(items, index, source)
            counters["index_seconds"] = round(time.perf_counter() - t2, 3)
        counters["seconds"] = round(time.perf_counter() - t0, 3)
        state.finish_run(run_id, "complete")
    except BaseException:
        state.finish_run(run_id, "interrupted")
        raise
    finally:
        state.close()
    return AuditResult(items, clusters, counters, walk_errors, str(index.path) if index is not None else None)


def _collect(paths: list[str], state: AuditState, embed, counters: dict, workers: int,
             progress: ProgressFn | None) -> list[AuditItem]:
    items: list[AuditItem | None] = [None] * len(paths)
    todo: list[int] = []
    done = 0
    for i, p in enumerate(paths):
        try:
            st = os.stat(p)
        except OSError as exc:
            items[i] = AuditItem(p, {"path": p, "error": f"cannot stat: {exc.strerror or exc}"})
            continue
        hit = state.lookup(p, st.st_size, st.st_mtime_ns)
        if hit is not None:
            items[i] = AuditItem(p, hit[0], _vec(hit[1]), origin="cached")
            counters["reused"] += 1
        else:
            todo.append(i)
    done = len(paths) - len(todo)
    if progress:
        progress(done, len(paths), counters)
    if not todo:
        return items  # type: ignore[return-value]

    pending: list[tuple[int, dict]] = []

    def flush() -> None:
        nonlocal done
        _embed_batch([(i, r) for i, r in pending if r.get("media") == "text" and "embed" not in r], embed,
                     items, counters)
        state.store((items[i].record, _blob(items[i].embed)) for i, _ in pending)  # type: ignore[union-attr]
        done += len(pending)
        pending.clear()
        if progress:
            progress(done, len(paths), counters)

    def accept(i: int, rec: dict) -> None:
        if "error" not in rec and "sha256" in rec:
            cached = state.lookup_sha(rec["sha256"])
            if cached is not None:
                # Same bytes under another path or mtime: reuse the fingerprints, keep this file's stat.
                keep = {k: rec[k] for k in ("path", "size", "mtime_ns")}
                rec = {**cached[0], **keep}
                items[i] = AuditItem(paths[i], rec, _vec(cached[1]), origin="cached-sha256")
                counters["reused_by_sha256"] += 1
                pending.append((i, {**rec, "embed": True}))
                return
        items[i] = AuditItem(paths[i], rec)
        if "error" not in rec:
            counters["fingerprinted"] += 1
        pending.append((i, rec))

    chunk = 8
    chunks = [todo[k:k + chunk] for k in range(0, len(todo), chunk)]
    if workers <= 1 or len(todo) < 2 * chunk:
        for c in chunks:
            for i, rec in zip(c, _fingerprint_chunk([paths[i] for i in c])):
                accept(i, rec)
            if len(pending) >= BATCH_FILES:
                flush()
    else:
        # forkserver: workers start from a clean process that has not imported torch (fork after torch
        # is loaded can deadlock in its thread pools).
        with worker_pool(workers) as pool:  # issue 11 (hardening): workers exit when this process dies
            try:
                for c, recs in zip(chunks, pool.map(_fingerprint_chunk, [[paths[i] for i in c] for c in chunks])):
                    for i, rec in zip(c, recs):
                        accept(i, rec)
                    if len(pending) >= BATCH_FILES:
                        flush()
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    if pending:
        flush()
    return items  # type: ignore[return-value]


def _vec(blob: bytes | None) -> np.ndarray | None:
    return None if blob is None else np.frombuffer(blob, dtype=np.float32).reshape(-1, 384).copy()


def _blob(vec: np.ndarray | None) -> bytes | None:
    return None if vec is None else np.ascontiguousarray(vec, dtype=np.float32).tobytes()


def _embed_batch(batch: list[tuple[int, dict]], embed, items: list, counters: dict) -> None:
    if not batch:
        return
    contents = [Content(name=r["path"], media="text", data=b"", sha256=r["sha256"], text=r["text"])
                for _, r in batch]
    for (i, r), out in zip(batch, embed.fingerprint_many(contents)):
        if isinstance(out, SignalSkipped):
            r["embed_skipped"] = str(out)
            continue
        r["embed_spans"] = [[f.start, f.end] for f in out]
        items[i].embed = np.stack([f.value for f in out]).astype(np.float32)
        counters["embedded_texts"] += 1


# ---------------------------------------------------------------------------------------------------
# Clustering inside the archive


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


class _Edges:
    """Pairs of archive items that some signal connects, with that signal's evidence."""

    def __init__(self) -> None:
        self.by_pair: dict[tuple[int, int], dict[str, Any]] = {}

    def get(self, a: int, b: int) -> dict[str, Any]:
        key = (min(a, b), max(a, b))
        if key not in self.by_pair:
            self.by_pair[key] = {"a": key[0], "b": key[1], "signals": {}}
        return self.by_pair[key]


#: Variant names of the hashes ``add`` stores (the rest are query-only transforms).
STORED_VARIANTS = ("identity", TRIMMED + "identity", BLOCK + "identity")


def _named(v: dict[str, Any]) -> list[tuple[str, str]]:
    """``(variant name, hex hash)`` pairs of one signal's cached variants (old caches: 8 dihedral)."""
    return list(zip(v.get("names", DIHEDRAL), v["hashes"]))


def _hex_bytes(values: Sequence[str]) -> bytes:
    return b"".join(bytes.fromhex(v) for v in values)


def _cluster(items: list[AuditItem], embed) -> list[Cluster]:
    edges = _Edges()
    edge = edges.get

    # Exact: identical bytes.
    by_sha: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        if it.ok:
            by_sha.setdefault(it.record["sha256"], []).append(i)
    for group in by_sha.values():
        for j in group[1:]:
            edge(group[0], j)["signals"]["sha256"] = {"basis": "identical bytes"}

    _image_edges(items, edges)
    _text_edges(items, edge, embed)

    uf = _UnionFind(len(items))
    for (a, b), e in edges.by_pair.items():
        e["verdict"] = _edge_verdict(e)
        if e["verdict"] != "original":
            uf.union(a, b)
            for x, y in ((a, b), (b, a)):
                items[x].archive_matches.append({"path": items[y].path, "id": y, "verdict": e["verdict"],
                                                 "evidence": e["signals"]})
    groups: dict[int, list[int]] = {}
    for i in range(len(items)):
        groups.setdefault(uf.find(i), []).append(i)
    clusters: list[Cluster] = []
    for members in sorted((g for g in groups.values() if len(g) > 1), key=lambda g: (-len(g), g[0])):
        cid = len(clusters) + 1
        member_set = set(members)
        cedges = [e for (a, b), e in edges.by_pair.items() if a in member_set and e["verdict"] != "original"]
        for m in members:
            items[m].cluster = cid
            items[m].archive_matches.sort(key=lambda mm: (verdict_rank(mm["verdict"]), mm["path"]))
        clusters.append(Cluster(cid, members, _representative(items, members),
                                min((e["verdict"] for e in cedges), key=verdict_rank), cedges))
    return clusters


def _representative(items: list[AuditItem], members: list[int]) -> int:
    """The copy to keep: the largest (pixels for images, bytes otherwise), then the oldest, then by path."""
    def key(i: int) -> tuple:
        r = items[i].record
        pixels = (r.get("width") or 0) * (r.get("height") or 0)
        return (-pixels, -(r.get("size") or 0), r.get("mtime_ns") or 0, items[i].path)
    return min(members, key=key)


def _edge_verdict(e: dict[str, Any]) -> str:
    """The verdict for one archive pair, through the same ``decide`` as ``check``.

    Each signal's evidence already says whether it passed its threshold (sha256 evidence exists only
    for identical content), so the observation is that pass/fail.
    """
    return decide([Observation(name, 1.0 if name == "sha256" or ev.get("passed") else 0.0, 1.0, False,
                               "exact" if name == "sha256" else BUILTIN[name].verdict_on_match)
                   for name, ev in e["signals"].items()])


def _image_edges(items: list[AuditItem], edges: _Edges) -> None:
    import faiss

    edge = edges.get
    idx_images = [i for i, it in enumerate(items) if it.ok and it.media == "image"]
    for signal in (_PDQ, _PHASH):
        have = [i for i in idx_images if "hashes" in items[i].record["variants"][signal.name]]
        if len(have) < 2:
            continue
        nbytes = signal.dim // 8
        # Stored side: each item's untransformed hashes (the whole image, and its trimmed version if it has
        # flat borders); query side: every variant. Owners map rows back to items.
        base_owner, base_hex, q_owner, q_name, q_hex = [], [], [], [], []
        for i in have:
            for t, h in _named(items[i].record["variants"][signal.name]):
                q_owner.append(i)
                q_name.append(t)
                q_hex.append(h)
                if t in STORED_VARIANTS:
                    base_owner.append(i)
                    base_hex.append(h)
        base = np.frombuffer(_hex_bytes(base_hex), dtype=np.uint8).reshape(len(base_hex), nbytes)
        # Identical stored hashes (re-encoded duplicates, or thousands of blank images) become one row:
        # otherwise every query would return every copy and the pairs would grow with the square of the
        # group. A group's members are joined to its first member instead (same clusters).
        uniq, inverse = np.unique(base, axis=0, return_inverse=True)
        groups: list[list[int]] = [[] for _ in range(len(uniq))]
        for row, u in enumerate(inverse.reshape(-1).tolist()):
            if base_owner[row] not in groups[u]:
                groups[u].append(base_owner[row])
        best: dict[tuple[int, int], tuple[int, str]] = {}
        for members in groups:
            for m in members[1:]:
                best[(min(members[0], m), max(members[0], m))] = (0, "identity")
        # Flat binary search is exact and, at archive sizes up to ~10^5, faster than building a
        # multi-hash index; either way no Python loop over pairs.
        fi = faiss.IndexBinaryFlat(signal.dim)
        fi.add(np.ascontiguousarray(uniq))
        queries = np.frombuffer(_hex_bytes(q_hex), dtype=np.uint8).reshape(len(q_hex), nbytes)
        # Range search (every neighbour within the threshold; FAISS's bound is strict, hence + 1): an order
        # of magnitude faster than k-NN on binary codes here, and clusters need all neighbours anyway.
        radius = getattr(signal, "corroborated_threshold", signal.threshold)
        lims, dist, nbr = fi.range_search(queries, radius + 1)
        qs = np.repeat(np.arange(len(queries)), np.diff(lims.astype(np.int64)))
        q_owner_arr = np.asarray(q_owner)
        for q, d, a, u in zip(qs.tolist(), dist.tolist(), q_owner_arr[qs].tolist(), nbr.tolist()):
            b = groups[u][0] if groups[u][0] != a or len(groups[u]) == 1 else groups[u][1]
            if a == b:
                continue
            key = (min(a, b), max(a, b))
            if key not in best or d < best[key][0]:
                best[key] = (d, q_name[q])
        for (a, b), (d, transform) in best.items():
            e = edge(a, b)
            e["signals"][signal.name] = {"distance": d, "threshold": signal.threshold, "bits": signal.dim,
                                         "transform": transform, "passed": d <= signal.threshold}
    # Evidence shows every image signal's distance for every edge, like ``check``.
    from .signals.base import hamming
    image_set = set(idx_images)
    for e in [e for (a, b), e in edges.by_pair.items() if a in image_set and b in image_set]:
        for signal in (_PDQ, _PHASH):
            if signal.name in e["signals"]:
                continue
            va = items[e["a"]].record["variants"][signal.name]
            vb = items[e["b"]].record["variants"][signal.name]
            if "hashes" not in va or "hashes" not in vb:
                continue
            stored_b = [bytes.fromhex(h) for t, h in _named(vb) if t in STORED_VARIANTS]
            d, t = min((hamming(bytes.fromhex(h), hb), name) for name, h in _named(va) for hb in stored_b)
            e["signals"][signal.name] = {"distance": d, "threshold": signal.threshold, "bits": signal.dim,
                                         "transform": t, "passed": d <= signal.threshold}
        # pHash's threshold depends on PDQ's verdict on the same pair, exactly as in ``check``.
        ph = e["signals"].get(_PHASH.name)
        if ph is not None:
            ph["threshold"], ph["rule"] = phash_threshold(e["signals"].get(_PDQ.name, {}).get("distance"))
            ph["passed"] = ph["distance"] <= ph["threshold"]


def _text_edges(items: list[AuditItem], edge, embed) -> None:
    from .align import Region, align, covered
    from .index import text_key
    from .signals.text import ShingleSignal, shingle_hashes, winnow
    from .textnorm import snippet, tokenize

    texts = [i for i, it in enumerate(items) if it.ok and it.media == "text"]
    if len(texts) < 2:
        return
    s = ShingleSignal()
    # Normalised-text identity, as ``check`` treats it.
    by_key: dict[str, list[int]] = {}
    tokens, hashes = {}, {}
    for i in texts:
        tokens[i] = tokenize(items[i].record["text"])
        hashes[i] = shingle_hashes(tokens[i], s.n)
        by_key.setdefault(text_key(items[i].record["text"]), []).append(i)
    for group in by_key.values():
        for j in group[1:]:
            edge(group[0], j)["signals"]["sha256"] = {
                "basis": "identical text after Unicode/case/space normalisation"}
    # Shingle postings of the winnowed (stored) hashes; each item queries with all its n-grams.
    postings: dict[int, set[int]] = {}
    for i in texts:
        for p in winnow(hashes[i], s.window):
            postings.setdefault(int(hashes[i][p]), set()).add(i)
    for a in texts:
        shared: dict[int, int] = {}
        for h in set(int(x) for x in hashes[a]):
            for b in postings.get(h, ()):
                if b > a:
                    shared[b] = shared.get(b, 0) + 1
        for b, _ in sorted(shared.items(), key=lambda kv: -kv[1])[:MAX_TEXT_CANDIDATES]:
            regions = align(hashes[a], hashes[b], s.n, s.max_gap)
            if not regions:
                continue
            strong = [r for r in regions if r.words >= s.threshold]
            if not strong:
                continue
            ta, tb = items[a].record["text"], items[b].record["text"]
            dt, st = tokens[a], tokens[b]
            regs = []
            for r in strong[:10]:
                d0, d1 = dt.starts[r.d_start], dt.ends[min(r.d_end, len(dt)) - 1]
                s0, s1 = st.starts[r.s_start], st.ends[min(r.s_end, len(st)) - 1]
                regs.append({"words": r.words, "a": {"start": d0, "end": d1, "snippet": snippet(ta, d0, d1)},
                             "b": {"start": s0, "end": s1, "snippet": snippet(tb, s0, s1)}})
            edge(a, b)["signals"][s.name] = {
                "longest_run_words": regions[0].words, "threshold_words": s.threshold, "passed": True,
                "a_coverage": round(covered(strong, len(dt)), 4),
                "b_coverage": round(covered([Region(r.s_start, r.s_end, 0, 0, 0) for r in strong], len(st)), 4),
                "regions": regs}
    # Paraphrase: passage embeddings in one inner-product index.
    import faiss
    owners: list[tuple[int, int]] = []
    vecs = []
    for i in texts:
        if items[i].embed is not None:
            vecs.append(items[i].embed)
            owners.extend((i, p) for p in range(len(items[i].embed)))
    if not vecs:
        return
    allv = np.ascontiguousarray(np.concatenate(vecs), dtype=np.float32)
    fi = faiss.IndexFlatIP(allv.shape[1])
    fi.add(allv)
    sims, nbr = fi.search(allv, min(ARCHIVE_K, len(allv)))
    best: dict[tuple[int, int], tuple[float, int, int]] = {}
    for q, (row_s, row_n) in enumerate(zip(sims, nbr)):
        a, pa = owners[q]
        for sim, j in zip(row_s, row_n):
            if j < 0 or sim < embed.threshold:
                continue
            b, pb = owners[j]
            if a == b:
                continue
            key = (min(a, b), max(a, b))
            pair = (float(sim), pa, pb) if a < b else (float(sim), pb, pa)
            if key not in best or sim > best[key][0]:
                best[key] = pair
    for (a, b), (sim, pa, pb) in best.items():
        sa, sb = items[a].record["embed_spans"][pa], items[b].record["embed_spans"][pb]
        ta, tb = items[a].record["text"], items[b].record["text"]
        # Same rule as ``check``: cosine and shared content words (EmbedSignal docstring).
        if not embed.supports_paraphrase(sim, ta[sa[0]:sa[1]], tb[sb[0]:sb[1]]):
            continue
        edge(a, b)["signals"][embed.name] = {
            "max_cosine": round(sim, 4), "threshold": embed.threshold, "passed": True,
            "passages": [{"score": round(sim, 4),
                          "a": {"start": sa[0], "end": sa[1], "snippet": snippet(ta, sa[0], sa[1])},
                          "b": {"start": sb[0], "end": sb[1], "snippet": snippet(tb, sb[0], sb[1])}}]}


# ---------------------------------------------------------------------------------------------------
# The index


def _precomputed(it: AuditItem) -> dict[str, Any]:
    """The cached fingerprints in the shape :meth:`Index.check_content` accepts."""
    pre: dict[str, Any] = {}
    if it.media == "image":
        for name, v in it.record["variants"].items():
            if "skipped" in v:
                pre[name] = SignalSkipped(v["skipped"])
            else:
                q = v.get("quality")
                pre[name] = [(t, [Fingerprint(bytes.fromhex(h), quality=q)]) for t, h in _named(v)]
    elif it.media == "text":
        if it.embed is None:
            pre["text-embed"] = SignalSkipped(it.record.get("embed_skipped", "no words to embed"))
        else:
            pre["text-embed"] = [("identity", [Fingerprint(v, s, e) for v, (s, e)
                                               in zip(it.embed, it.record["embed_spans"])])]
    return pre


def _content(it: AuditItem) -> Content:
    r = it.record
    return Content(name=it.path, media=r["media"], data=b"", sha256=r["sha256"], text=r.get("text"),
                   image_format=r.get("image_format"),
                   original_size=(r["width"], r["height"]) if r.get("width") else None)


def _match_index(items: list[AuditItem], index) -> None:
    for it in items:
        if it.ok:
            it.index_report = index.check_content(_content(it), precomputed=_precomputed(it)).to_dict()


def _add_to_index(items: list[AuditItem], index, source: str | None) -> int:
    from .signals.text import ShingleSignal
    shingle = ShingleSignal()
    added = 0
    for it in items:
        if not it.ok:
            continue
        fps: dict[str, list[Fingerprint]] = {}
        skipped: dict[str, str] = {}
        for name, pre in _precomputed(it).items():
            if isinstance(pre, SignalSkipped):
                skipped[name] = str(pre)
            else:
                # The untransformed variants (whole image, and trimmed if any) are what ``add`` stores.
                fps[name] = [f for t, fl in pre if t in STORED_VARIANTS for f in fl]
        if it.media == "text":
            try:
                fps[shingle.name] = shingle.fingerprint(_content(it))
            except SignalSkipped as exc:
                skipped[shingle.name] = str(exc)
        res = index.add_fingerprinted(_content(it), fps, skipped, source=source, size=it.record.get("size"))
        added += res.status == "added"
    return added


CSV_COLUMNS = ("path", "media", "verdict", "archive_verdict", "index_verdict", "cluster", "representative",
               "best_match", "best_match_signal", "size", "sha256", "width", "height", "fingerprints", "error")


def write_csv(result: AuditResult, path: Path | str) -> None:
    """One row per audited file (``CSV_COLUMNS``); the best match is the archive copy or indexed item."""
    import csv

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
                best, signal = m["path"], ",".join(k for k, v in m["evidence"].items()
                                                    if k == "sha256" or v.get("passed"))
            w.writerow([d["path"], d["media"] or "", d["verdict"], d.get("archive_verdict") or "",
                        d.get("index_verdict") or "", d["cluster"] or "",
                        reps.get(d["cluster"], "") if d["cluster"] else "", best, signal, d["size"] or "",
                        d["sha256"] or "", d.get("width") or "", d.get("height") or "", d["fingerprints"],
                        d.get("error") or ""])


__all__ = ["CSV_COLUMNS", "write_csv", "AUDIT_SCHEMA", "AuditItem", "AuditResult", "AuditState", "Cluster", "audit", "fingerprint_file"]

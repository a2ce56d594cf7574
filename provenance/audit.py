"""Auditing a folder: which items copy each other, which copy something in the index, which are original.

Input contract: paths to files and folders (walked recursively with :func:`provenance.files.iter_files`).
Every file is sniffed by content; what cannot be read is recorded with the reason and skipped, never fatal.

Pipeline, and why each step looks the way it does:

1. *Stat and cache lookup* (:mod:`provenance.audit_cache`): unchanged files are not even read; moved or
   touched files whose bytes are cached reuse their fingerprints.
2. *Fingerprinting* of the rest: worker signals in worker processes (:mod:`provenance.audit_workers`),
   model signals in batches in the main process while the workers decode.
3. *Commit per batch*, so a kill loses at most the batch in flight and the next run resumes from the cache.
4. *Clustering* inside the archive through the signal interface's self-join: the archive's items go into
   a temporary index and each is checked against the others (:meth:`Index.self_join`), so archive pairs
   are found and judged exactly as ``check`` finds and judges them; files with identical bytes are one
   item there and are joined to it by a check restricted to that item. Union-find turns pairs into groups.
5. *Index matches* through :meth:`Index.check_content` with the cached fingerprints passed in.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .audit_cache import AuditState
from .audit_workers import THUMB_SIDE, fingerprint_chunk, variants_from_json, variants_to_json
from .content import MAX_SIDE, Content
from .files import iter_files
from .report import VERDICTS, Match, Report, verdict_rank
from .signals import Fingerprint, Signal, SignalSkipped, load_signals
from .workers import worker_pool

if TYPE_CHECKING:
    from .checker import Index, Precomputed

#: Version of the ``--json`` document; bump on incompatible changes.
AUDIT_SCHEMA = "provenance.audit/1"
#: Version of the cache layout and of what a worker computes (bump to invalidate every cached entry).
CACHE_VERSION = 2
#: Files committed to the state per transaction: small enough that a kill loses little, large enough
#: that the commit cost is amortised and model signals are batched.
BATCH_FILES = 64

ProgressFn = Callable[[int, int, dict[str, Any]], None]


@dataclass
class Edge:
    """A pair of archive items that the self-join found: ``match`` is item ``b`` as seen from ``a``."""

    a: int
    b: int
    match: Match

    @property
    def verdict(self) -> str:
        return self.match.verdict


@dataclass
class AuditItem:
    """One audited file: its cached record, and what the audit concluded."""

    path: str
    record: dict[str, Any]
    #: Where the fingerprints came from: ``computed``, ``cached`` (unchanged file) or ``cached-sha256``.
    origin: str = "computed"
    cluster: int | None = None
    edges: list[Edge] = field(default_factory=list)
    index_report: Report | None = None

    @property
    def ok(self) -> bool:
        return "error" not in self.record

    @property
    def media(self) -> str | None:
        return self.record.get("media")

    @property
    def archive_verdict(self) -> str:
        return min((e.verdict for e in self.edges), key=verdict_rank, default="original")

    @property
    def index_verdict(self) -> str:
        return self.index_report.verdict if self.index_report else "original"

    @property
    def verdict(self) -> str:
        if not self.ok:
            return "error"
        return min(self.archive_verdict, self.index_verdict, key=verdict_rank)

    def content(self) -> Content:
        """The item as :class:`Content` without its bytes or pixels (what the cache holds)."""
        r = self.record
        return Content(name=self.path, media=r["media"], data=b"", sha256=r["sha256"], text=r.get("text"),
                       image_format=r.get("image_format"),
                       original_size=(r["width"], r["height"]) if r.get("width") else None)

    def precomputed(self) -> Precomputed:
        """The cached query variants in the shape :meth:`Index.check_content` accepts."""
        out: dict[str, Any] = {}
        for name, v in self.record.get("signals", {}).items():
            out[name] = SignalSkipped(v["skipped"]) if "skipped" in v else variants_from_json(v["variants"])
        return out

    def stored(self, signals: Sequence[Signal]) -> tuple[dict[str, list[Fingerprint]], dict[str, str]]:
        """What ``add`` would store for this item, and the signals that skipped it: cached signals from
        their query variants, inline ones computed from the cached text."""
        pre = self.precomputed()
        fps: dict[str, list[Fingerprint]] = {}
        skipped: dict[str, str] = {}
        content = self.content()
        for s in signals:
            if not s.accepts(content.media):
                continue
            got = pre.get(s.name)
            try:
                if isinstance(got, SignalSkipped):
                    raise got
                fps[s.name] = s.stored_from_variants(got) if got is not None else s.fingerprint(content)
            except SignalSkipped as exc:
                skipped[s.name] = str(exc)
        return fps, skipped


@dataclass
class Cluster:
    """A connected group of near-duplicates inside the archive."""

    id: int
    members: list[int]
    representative: int
    verdict: str
    edges: list[Edge]


@dataclass
class AuditResult:
    """Everything one audit found, ready to render as JSON, CSV or HTML."""

    items: list[AuditItem]
    clusters: list[Cluster]
    counters: dict[str, Any]
    walk_errors: list[dict[str, str]]
    index_path: str | None

    def summary(self) -> dict[str, Any]:
        """Counts for the JSON export (the HTML page words them itself).

        ``errors`` counts every file that could not be audited: items that failed to read or decode and
        paths the walk skipped (``walk_errors``); ``verdicts["error"]`` counts only the former, as
        ``verdicts`` counts ``items``. The HTML page lists the skipped paths as rows too, so its filter
        counts and its summary agree."""
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

    def edge_dict(self, e: Edge) -> dict[str, Any]:
        """One archive pair, JSON-ready (``evidence`` is ``a``'s view: draft ``a``, source ``b``)."""
        return {"a": self.items[e.a].path, "b": self.items[e.b].path, "verdict": e.verdict,
                "signal": e.match.signal, "score": round(e.match.score, 4), "evidence": e.match.evidence}

    def item_dict(self, i: int) -> dict[str, Any]:
        """One item, JSON-ready."""
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
        skipped = {k: v["skipped"] for k, v in rec.get("signals", {}).items() if "skipped" in v}
        if skipped:
            d["skipped"] = skipped
        d["archive_matches"] = [
            {"path": self.items[other].path, "id": other, "verdict": e.verdict, "signal": e.match.signal,
             "evidence": e.match.evidence}
            for e in it.edges for other in (e.b if e.a == i else e.a,)]
        d["index_matches"] = [m.to_dict() for m in it.index_report.matches] if it.index_report else []
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
                          "edges": [self.edge_dict(e) for e in c.edges]}
                         for c in self.clusters],
            "items": [self.item_dict(i) for i in range(len(self.items))],
            "walk_errors": self.walk_errors,
        }


def _signature(signals: Sequence[Signal]) -> str:
    cached = {s.name: [s.version, s.model_id()] for s in signals if s.compute != "inline"}
    return json.dumps({"cache": CACHE_VERSION, "max_side": MAX_SIDE, "thumb": THUMB_SIDE, "signals": cached},
                      sort_keys=True)


def audit(roots: Sequence[Path], *, state_path: Path, index: Index | None = None, add: bool = False,
          source: str | None = None, exclude: Sequence[str] = (), workers: int = 2,
          progress: ProgressFn | None = None, signals: Sequence[Signal] | None = None,
          follow_links: bool = False) -> AuditResult:
    """Audit the files under ``roots``.

    ``index`` is an open :class:`~provenance.checker.Index` to match against (``None``: in-archive only);
    with ``add`` the audited items are added to it afterwards (labelled ``source``). ``signals`` default to
    the index's (or every installed signal). ``progress`` is called as ``progress(done, total, counters)``
    after each batch. Symbolic links are not followed unless ``follow_links``. ``KeyboardInterrupt``
    propagates after the batches done so far are committed; the next run resumes from them.
    """
    sigs = list(signals) if signals is not None else (index.signals if index is not None else load_signals())
    state = AuditState(state_path, _signature(sigs))
    walk_errors: list[dict[str, str]] = []
    counters: dict[str, Any] = {"fingerprinted": 0, "batch_fingerprinted": 0, "reused": 0,
                                "reused_by_sha256": 0, "resumed": False, "added_to_index": 0}
    if state.interrupted_run() is not None:
        counters["resumed"] = True
    run_id = state.start_run([str(r) for r in roots])
    t0 = time.perf_counter()
    try:
        paths = [str(p) for p in iter_files(roots, recursive=True, exclude=exclude, follow_links=follow_links,
                                            on_error=lambda p, why: walk_errors.append({"path": str(p),
                                                                                        "error": why}))]
        # Deduplicate paths named twice (overlapping roots) while keeping walk order, and never audit
        # the tool's own files: the state database (and its WAL) and the index folder.
        own = {str(Path(str(state_path) + suffix).resolve()) for suffix in ("", "-wal", "-shm", "-journal")}
        index_dir = Path(index.path).resolve() if index is not None else None
        paths = [p for p in dict.fromkeys(paths) if str(Path(p).resolve()) not in own
                 and (index_dir is None or index_dir not in Path(p).resolve().parents)]
        items = _collect(paths, state, sigs, counters, workers, progress, follow_links)
        counters["fingerprint_seconds"] = round(time.perf_counter() - t0, 3)
        t1 = time.perf_counter()
        clusters = _cluster(items, sigs)
        counters["cluster_seconds"] = round(time.perf_counter() - t1, 3)
        if index is not None:
            t2 = time.perf_counter()
            for it in items:
                if it.ok:
                    it.index_report = index.check_content(it.content(), precomputed=it.precomputed())
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


def _collect(paths: list[str], state: AuditState, signals: Sequence[Signal], counters: dict[str, Any],
             workers: int, progress: ProgressFn | None, follow_links: bool) -> list[AuditItem]:
    items: list[AuditItem | None] = [None] * len(paths)
    todo: list[int] = []
    for i, p in enumerate(paths):
        try:
            st = os.stat(p)
        except OSError as exc:
            items[i] = AuditItem(p, {"path": p, "error": f"cannot stat: {exc.strerror or exc}"})
            continue
        hit = state.lookup(p, st.st_size, st.st_mtime_ns)
        if hit is not None:
            items[i] = AuditItem(p, hit, origin="cached")
            counters["reused"] += 1
        else:
            todo.append(i)
    done = len(paths) - len(todo)
    if progress:
        progress(done, len(paths), counters)
    if not todo:
        return [it for it in items if it is not None]

    batch_signals = [s for s in signals if s.compute == "batch"]
    pending: list[int] = []

    def flush() -> None:
        nonlocal done
        counters["batch_fingerprinted"] += _batch_fingerprint([items[i] for i in pending],  # type: ignore[misc]
                                                              batch_signals)
        state.store(items[i].record for i in pending)  # type: ignore[union-attr]
        done += len(pending)
        pending.clear()
        if progress:
            progress(done, len(paths), counters)

    def accept(i: int, rec: dict[str, Any]) -> None:
        if "error" not in rec and "sha256" in rec:
            cached = state.lookup_sha(rec["sha256"])
            if cached is not None:
                # Same bytes under another path or mtime: reuse the fingerprints, keep this file's stat.
                items[i] = AuditItem(paths[i], {**cached, **{k: rec[k] for k in ("path", "size", "mtime_ns")}},
                                     origin="cached-sha256")
                counters["reused_by_sha256"] += 1
                pending.append(i)
                return
        items[i] = AuditItem(paths[i], rec)
        if "error" not in rec:
            counters["fingerprinted"] += 1
        pending.append(i)

    chunk = 8
    chunks = [todo[k:k + chunk] for k in range(0, len(todo), chunk)]
    if workers <= 1 or len(todo) < 2 * chunk:
        for c in chunks:
            for i, rec in zip(c, fingerprint_chunk([paths[i] for i in c], follow_links)):
                accept(i, rec)
            if len(pending) >= BATCH_FILES:
                flush()
    else:
        # forkserver: workers start from a clean process that has not imported torch (fork after torch
        # is loaded can deadlock in its thread pools).
        with worker_pool(workers) as pool:  # issue 11 (hardening): workers exit when this process dies
            try:
                for c, recs in zip(chunks, pool.map(fingerprint_chunk, [[paths[i] for i in c] for c in chunks],
                                                 [follow_links] * len(chunks))):
                    for i, rec in zip(c, recs):
                        accept(i, rec)
                    if len(pending) >= BATCH_FILES:
                        flush()
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    if pending:
        flush()
    return [it for it in items if it is not None]


def _batch_fingerprint(batch: list[AuditItem], signals: Sequence[Signal]) -> int:
    """Model signals, once per batch for every item that does not have them cached yet; their query is
    what they store (the ``identity`` variant). Returns how many items needed them."""
    done: set[int] = set()
    for s in signals:
        todo = [it for it in batch if it.ok and s.accepts(it.media or "")
                and s.name not in it.record.setdefault("signals", {})]
        if not todo:
            continue
        for it, out in zip(todo, s.fingerprint_many([it.content() for it in todo])):
            it.record["signals"][s.name] = ({"skipped": str(out)} if isinstance(out, SignalSkipped)
                                            else {"variants": variants_to_json([("identity", out)])})
            done.add(id(it))
    return len(done)


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


def _cluster(items: list[AuditItem], signals: Sequence[Signal]) -> list[Cluster]:
    from .checker import Index

    edges: dict[tuple[int, int], Edge] = {}
    uf = _UnionFind(len(items))
    with tempfile.TemporaryDirectory(prefix="provenance-audit-") as tmp:
        archive = Index(Path(tmp) / "archive", create=True, signals=signals)
        try:
            by_item: dict[int, list[int]] = {}  # temporary item id -> archive positions with those bytes
            for i, it in enumerate(items):
                if not it.ok:
                    continue
                fps, skipped = it.stored(signals)
                added = archive.add_fingerprinted(it.content(), fps, skipped, size=it.record.get("size"))
                assert added.id is not None
                by_item.setdefault(added.id, []).append(i)

            def keep(a: int, b: int, m: Match) -> None:
                # Only edges that join two groups are kept (a spanning forest): a group of n copies
                # shows n - 1 pairs with their evidence, not up to n * k, so thousands of identical
                # blank images stay linear in the report too.
                if uf.find(a) != uf.find(b):
                    uf.union(a, b)
                    edges[(min(a, b), max(a, b))] = Edge(a, b, m)

            # Identical bytes: one temporary item; each further copy is checked against that item only.
            for item_id, members in by_item.items():
                for j in members[1:]:
                    rep = archive.check_content(items[j].content(), precomputed=items[j].precomputed(),
                                                only=[item_id])
                    for m in rep.matches:
                        keep(j, members[0], m)
            queries = ((item_id, items[ms[0]].content(), items[ms[0]].precomputed())
                       for item_id, ms in by_item.items())
            for item_id, m in archive.self_join(queries):
                keep(by_item[item_id][0], by_item[m.id][0], m)
        finally:
            archive.catalog.close()

    for e in edges.values():
        items[e.a].edges.append(e)
        items[e.b].edges.append(e)
    groups: dict[int, list[int]] = {}
    for i in range(len(items)):
        groups.setdefault(uf.find(i), []).append(i)
    clusters: list[Cluster] = []
    for members in sorted((g for g in groups.values() if len(g) > 1), key=lambda g: (-len(g), g[0])):
        cid = len(clusters) + 1
        member_set = set(members)
        cedges = [e for (a, _), e in edges.items() if a in member_set]
        for i in members:
            items[i].cluster = cid
            items[i].edges.sort(key=_edge_order(items, i))
        clusters.append(Cluster(cid, members, _representative(items, members),
                                min((e.verdict for e in cedges), key=verdict_rank), cedges))
    return clusters


def _edge_order(items: list[AuditItem], i: int) -> Callable[[Edge], tuple[int, str]]:
    """Sort key for item ``i``'s edges: strongest verdict first, then the other item's path."""
    return lambda e: (verdict_rank(e.verdict), items[e.b if e.a == i else e.a].path)


def _representative(items: list[AuditItem], members: list[int]) -> int:
    """The copy to keep: the largest (pixels for images, bytes otherwise), then the oldest, then by path."""
    def key(i: int) -> tuple[int, int, int, str]:
        r = items[i].record
        pixels = (r.get("width") or 0) * (r.get("height") or 0)
        return (-pixels, -(r.get("size") or 0), r.get("mtime_ns") or 0, items[i].path)
    return min(members, key=key)


def _add_to_index(items: list[AuditItem], index: Index, source: str | None) -> int:
    added = 0
    for it in items:
        if it.ok:
            fps, skipped = it.stored(index.signals)
            res = index.add_fingerprinted(it.content(), fps, skipped, source=source, size=it.record.get("size"))
            added += res.status == "added"
    return added


__all__ = ["AUDIT_SCHEMA", "AuditItem", "AuditResult", "AuditState", "Cluster", "Edge", "audit"]

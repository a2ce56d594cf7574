"""The originality index: add content, check drafts and images against it, remove items.

An index is a directory: ``catalog.sqlite`` (source of truth) and ``faiss/<signal>.faiss`` snapshots.
Everything the CLI does goes through :class:`Index`, and :class:`Index` goes through the signal interface
(:mod:`provenance.signals.base`) for everything signal-specific: it never names a signal.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .content import Content, Source, load_content, source_path
from .errors import BadInputError, ProvenanceIndexError, UnknownItemError
from .indexes.catalog import Catalog, ItemRow, NewItem
from .indexes.vectors import VectorIndex
from .limits import budget_notes
from .quotes import quoted_regions, spans_are_quoted
from .report import MAX_NEAR_MISSES, Match, Observation, Report, Verdict, match_from, verdict_rank
from .signals import Fingerprint, Signal, SignalIndex, SignalSkipped, Variants, load_signals
from .signals.exact import text_key
from .textnorm import content_tokens

#: Environment variable naming the index directory when ``--index`` is not given.
INDEX_ENV = "PROVENANCE_INDEX"
#: Directory used when neither ``--index`` nor ``PROVENANCE_INDEX`` is set (relative to the working
#: directory, like ``.git``): one index per project folder.
DEFAULT_INDEX_DIR = ".provenance"
#: Most matches listed per report.
MAX_MATCHES = 10
#: Source label of items recorded by ``provenance disclose``: the user's own content. An exact match with
#: one is the disclosed content itself and does not count against it (it stays findable by ``lookup``).
OWN_DISCLOSURE_SOURCE = "disclosed"

#: Per signal name: cached query variants (what ``audit`` computed in its workers), or why it skipped.
Precomputed = Mapping[str, Variants | SignalSkipped]
#: Told each stage of a check as it starts (``"text-embed: fingerprinting 12,000 words"``).
Progress = Callable[[str], None]


def default_index_path() -> Path:
    """``$PROVENANCE_INDEX`` if set, else ``./.provenance``."""
    return Path(os.environ.get(INDEX_ENV) or DEFAULT_INDEX_DIR)


@dataclass
class AddResult:
    """What happened to one input of :meth:`Index.add`."""

    name: str
    status: str  # "added", "exists" or "error"
    id: int | None = None
    media: str | None = None
    error: str | None = None
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass
class Observed:
    """Everything one check observed: per candidate item, every signal's observation."""

    items: dict[int, ItemRow]
    observations: dict[int, list[Observation]]
    skipped: list[dict[str, str]]


def _load_quietly(load: Callable[[], None], signal: str) -> None:
    """Run a signal's warm-up (``Index._warm_up``); a failure is reported by the signal's own load."""
    try:
        load()
    except Exception as exc:  # noqa: BLE001  (reported when the signal loads for its fingerprint)
        logging.getLogger(__name__).debug("warming up %s failed: %s", signal, exc)


class Index:
    """An originality index on disk.

    >>> with Index.open("my-index", create=True) as idx:      # doctest: +SKIP
    ...     idx.add(["old-post.md", "photo.jpg"], source="blog")
    ...     report = idx.check("draft.md")
    ...     report.verdict
    'near-duplicate'
    """

    def __init__(self, path: Path | str, *, create: bool = False, model_path: Path | str | None = None,
                 signals: Sequence[Signal] | None = None) -> None:
        self.path = Path(path)
        if create:
            # 0700: the catalog holds the full text of every indexed draft.
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        elif not (self.path / "catalog.sqlite").exists():
            raise ProvenanceIndexError(
                f"{self.path}: no index here; create it with `provenance init --index {self.path}`")
        self.catalog = Catalog(self.path / "catalog.sqlite", create=create)
        self.signals: list[Signal] = list(signals) if signals is not None else \
            load_signals({"model_path": model_path})
        #: Signals installed after items were added: those items lack their fingerprints until
        #: :meth:`rebuild` back-fills them.
        self.pending: list[str] = self._register_signals()
        self._adapters: dict[str, SignalIndex[Any]] = {}
        self._vectors: dict[str, VectorIndex] = {}

    def _register_signals(self) -> list[str]:
        known = self.catalog.known_signals()
        has_items = self.catalog.has_items()
        pending = []
        for s in self.signals:
            mine = (s.version, s.model_id())
            if s.name in known:
                if known[s.name] != mine:
                    v, m = known[s.name]
                    raise ProvenanceIndexError(
                        f"{self.path}: the catalog's {s.name} fingerprints were made by version {v} model "
                        f"{m or '-'}, this installation makes version {mine[0]} model {mine[1] or '-'}; "
                        "install the version that made this index, or build a new index and add the "
                        "content to it again")
            elif has_items and s.stores_fingerprints:
                pending.append(s.name)
            else:
                self.catalog.record_signal(s.name, *mine)
        return pending

    @classmethod
    def open(cls, path: Path | str | None = None, *, create: bool = False,
             model_path: Path | str | None = None) -> Index:
        """Open the index at ``path`` (default: :func:`default_index_path`), creating it if asked."""
        return cls(path if path is not None else default_index_path(), create=create, model_path=model_path)

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Save index snapshots and close the catalog."""
        self.flush()
        self.catalog.close()

    def signal(self, name: str) -> Signal:
        """The installed signal called ``name``."""
        for s in self.signals:
            if s.name == name:
                return s
        raise ProvenanceIndexError(f"{self.path}: no signal named {name!r} is installed "
                                   f"(installed: {', '.join(s.name for s in self.signals)})")

    def adapter(self, signal: Signal) -> SignalIndex[Any]:
        """``signal``'s adapter over this index (made once)."""
        if signal.name not in self._adapters:
            self._adapters[signal.name] = signal.index(self)
        return self._adapters[signal.name]

    def flush(self) -> None:
        """Bring every FAISS snapshot up to date with the catalog and write it.

        Snapshots this process never loaded are only loaded when the catalog has rows they lack, so a
        ``check`` of one image does not read the (large) embedding snapshot just to close.
        """
        for s in self._vector_signals():
            vi = self._vectors.get(s.name)
            if vi is None:
                on_disk = VectorIndex.snapshot_last_row(self.path / "faiss", s.name, self.catalog.catalog_id)
                if on_disk is not None and on_disk >= self.catalog.max_fingerprint_id(s.name):
                    continue
                if on_disk is None and self.catalog.max_fingerprint_id(s.name) == 0:
                    continue
                vi = self.vectors(s)
            vi.save()
        for adapter in list(self._adapters.values()):
            adapter.flush()  # snapshots kept by adapters themselves (local-features descriptors)

    def _vector_signals(self) -> list[Signal]:
        return [s for s in self.signals if s.index_kind in ("binary", "float")]

    def _new_vectors(self, signal: Signal) -> VectorIndex:
        kind = signal.index_kind
        assert kind != "catalog", f"{signal.name} keeps no FAISS index"
        return VectorIndex(self.path / "faiss", signal.name, signal.version, signal.model_id(), kind, signal.dim)

    def vectors(self, signal: Signal) -> VectorIndex:
        """The FAISS index of ``signal``, loaded and caught up with the catalog."""
        vi = self._vectors.get(signal.name)
        if vi is None:
            vi = self._new_vectors(signal)
            vi.load(self.catalog)
            self._vectors[signal.name] = vi
        else:
            vi.catch_up(self.catalog)  # another process may have added since
        return vi

    def rebuild(self) -> dict[str, Any]:
        """Back-fill signals installed after items were added, recount the shingles' document
        frequencies, then rebuild every FAISS index from the catalog (after an upgrade, a new signal or
        a damaged snapshot)."""
        out: dict[str, Any] = {}
        if self.pending:
            out["backfilled"] = self._backfill()
        # Shingle document frequencies are derived from the postings too: recount them.
        out["shingle_df"] = self.catalog.rebuild_shingle_df()
        # Rows written before their signal labelled them (see SignalIndex.labels).
        if labelled := {s.name: k for s in self.signals if (k := self.adapter(s).label_stored())}:
            out["labelled"] = labelled
        for s in self._vector_signals():
            vi = self._new_vectors(s)
            vi.rebuild_from(self.catalog)  # live fingerprints only
            vi.save()
            self._vectors[s.name] = vi
            out[s.name] = len(vi)
        for s in self.signals:
            if s.index_kind == "catalog" and (n := self.adapter(s).rebuild()) is not None:
                out[s.name] = n
        return out

    def _backfill(self) -> dict[str, Any]:
        """Fingerprint existing items with the pending signals: texts from the catalog, images from their
        recorded path when the file is still there (the catalog keeps no pixels)."""
        signals = [self.signal(n) for n in self.pending]
        done, missing = 0, []
        for item in list(self.catalog.iter_items()):
            content = self._stored_content(item)
            if content is None:
                missing.append(item.path or f"item {item.id}")
                continue
            # The text goes along for the adapters' labels (add_fingerprints writes fingerprints only).
            new = NewItem(item.sha256, item.path, item.source, item.media, item.size, {}, text=content.text)
            for s in signals:
                if not s.accepts(content.media):
                    continue
                try:
                    self.adapter(s).store_fingerprints(s.fingerprint(content), new)
                except SignalSkipped:
                    continue
            self.catalog.add_fingerprints(item.id, new.fingerprints, new.shingles)
            done += 1
        if not missing:
            for s in signals:
                self.catalog.record_signal(s.name, s.version, s.model_id())
            self.pending = []
        return {"signals": [s.name for s in signals], "items": done, "unavailable": missing}

    def _stored_content(self, item: ItemRow) -> Content | None:
        text = self.catalog.text_of(item.id)
        if text is not None:
            return load_content(text, item.path or f"item {item.id}")
        if item.path and Path(item.path).is_file():
            try:
                c = load_content(Path(item.path), item.path)
            except BadInputError:
                return None
            return c if c.sha256 == item.sha256 else None
        return None

    # -- adding -----------------------------------------------------------------------------------
    def add(self, sources: Iterable[Source] | Source, *, source: str | None = None,
            batch_size: int = 32, on_result: Callable[[AddResult], None] | None = None) -> list[AddResult]:
        """Add files, bytes or texts. Each input is one item; the same bytes twice stay one item.

        A bad input becomes an ``AddResult`` with ``status="error"`` and the rest go on. ``source``
        labels where the items came from (shown in matches). ``on_result`` is called per input.
        """
        if isinstance(sources, (str, bytes, Path)):
            sources = [sources]
        results: list[AddResult | None] = []  # in input order; pending slots are filled per batch
        pending: list[tuple[int, Content]] = []

        def emit(slot: int, r: AddResult) -> None:
            results[slot] = r
            if on_result:
                on_result(r)

        def flush() -> None:
            for (slot, _), r in zip(pending, self.add_contents([c for _, c in pending], source=source)):
                emit(slot, r)
            pending.clear()

        for src in sources:
            results.append(None)
            name = str(src) if isinstance(src, Path) else None
            try:
                pending.append((len(results) - 1, load_content(src, name)))
            except BadInputError as exc:
                emit(len(results) - 1, AddResult(name=exc.path or _label(src), status="error", error=str(exc)))
                continue
            if len(pending) >= batch_size:
                flush()
        flush()
        return [r for r in results if r is not None]

    def add_contents(self, contents: Sequence[Content], *, source: str | None = None) -> list[AddResult]:
        """Add already loaded contents (fingerprinting them in one batch per signal)."""
        results: list[AddResult | None] = [None] * len(contents)
        todo: list[int] = []
        for i, c in enumerate(contents):
            old = self.catalog.find_sha256(c.sha256)
            if old is not None:
                results[i] = AddResult(c.name, "exists", old.id, old.media)
            else:
                todo.append(i)
        fps: dict[int, dict[str, list[Fingerprint]]] = {i: {} for i in todo}
        skipped: dict[int, dict[str, str]] = {i: {} for i in todo}
        for signal in self.signals:
            idx = [i for i in todo if signal.accepts(contents[i].media)]
            if not idx:
                continue
            for i, out in zip(idx, signal.fingerprint_many([contents[i] for i in idx])):
                if isinstance(out, SignalSkipped):
                    skipped[i][signal.name] = str(out)
                else:
                    fps[i][signal.name] = out
        for i in todo:
            results[i] = self.add_fingerprinted(contents[i], fps[i], skipped[i], source=source)
        return [r for r in results if r is not None]

    def add_fingerprinted(self, content: Content, fingerprints: Mapping[str, Sequence[Fingerprint]],
                          skipped: Mapping[str, str], *, source: str | None = None,
                          size: int | None = None) -> AddResult:
        """Add one item whose fingerprints were computed (and cached) elsewhere, e.g. by ``audit``.

        ``fingerprints`` maps a signal name to what its ``fingerprint`` returned; ``content.image`` may
        be ``None`` and ``content.data`` empty (pass ``size``). Same storage as :meth:`add_contents`.
        """
        meta: dict[str, Any] = {"skipped": dict(skipped)} if skipped else {}
        if content.media == "image" and content.original_size:
            meta.update(format=content.image_format, width=content.original_size[0],
                        height=content.original_size[1])
        item = NewItem(sha256=content.sha256, path=content.name, source=source, media=content.media,
                       size=size if size is not None else len(content.data), metadata=meta, text=content.text,
                       text_key=text_key(content_tokens(content)) if content.text is not None else None)
        for s in self.signals:
            if s.name in fingerprints:
                self.adapter(s).store_fingerprints(fingerprints[s.name], item)
        # add_item itself returns the existing id for bytes already present (one transaction, no race).
        item_id, created = self.catalog.add_item(item)
        return AddResult(content.name, "added" if created else "exists", item_id, content.media,
                         skipped=dict(skipped) if created else {})

    # -- removing ---------------------------------------------------------------------------------
    def remove(self, item_id: int) -> ItemRow:
        """Remove an item so it never matches again (:class:`UnknownItemError` if no live item has
        this id)."""
        item = self.catalog.remove_item(item_id)
        if item is None:
            raise UnknownItemError(f"{self.path}: no live item with id {item_id}; list the ids with "
                                   f"`provenance items --index {self.path}`")
        ids = self.catalog.fingerprint_ids_of(item_id)
        for s in self._vector_signals():
            if ids.get(s.name):
                self.vectors(s).remove(ids[s.name])
        return item

    # -- checking ---------------------------------------------------------------------------------
    def check(self, source: Source, name: str | None = None, *, origin: bool = True,
              allow_sources: Iterable[str] = (), progress: Progress | None = None) -> Report:
        """Check one file, bytes or text against the index and return its :class:`Report`.

        With ``origin`` (the default) a file's or bytes' own provenance is read too (C2PA manifest,
        IPTC source type, generator settings, watermarks: :func:`provenance.origin.inspect_origin`) and
        reported under ``provenance``; damage there is listed in it, never fatal to the check.
        ``progress`` is told each stage as it starts (for a status line on long inputs).
        """
        say = progress or _silent
        say("reading")
        content = load_content(source, name)
        report = self.check_content(content, allow_sources=allow_sources, progress=progress)
        path = source_path(source, name)
        if origin and (path is not None or isinstance(source, bytes)):
            from .origin import inspect_origin
            say("reading what the file says about its origin")
            where: Path | bytes = path if path is not None else content.data
            try:
                report.origin = inspect_origin(where, name=content.name)
            except BadInputError as exc:
                report.skipped.append({"signal": "provenance", "reason": str(exc)})
        return report

    def check_text(self, text: str, name: str = "<text>") -> Report:
        """Check ``text`` itself (never read as a file name)."""
        return self.check_content(load_content(text, name))

    def check_many(self, sources: Iterable[Source]) -> Iterator[Report | BadInputError]:
        """Check several inputs; a bad one yields its :class:`BadInputError` and the rest go on."""
        for src in sources:
            try:
                yield self.check(src, str(src) if isinstance(src, Path) else None)
            except BadInputError as exc:
                yield exc

    def precompute(self, content: Content) -> Precomputed:
        """Query variants of the signals worth computing once (models, decoded images), for callers
        that check or observe the same content several times."""
        out: dict[str, Variants | SignalSkipped] = {}
        for s in self.signals:
            if s.compute != "inline" and s.accepts(content.media):
                try:
                    out[s.name] = s.query_variants(content)
                except SignalSkipped as exc:
                    out[s.name] = exc
        return out

    def _warm_up(self, content: Content, pre: Precomputed, idle: Iterable[str] = ()) -> list[threading.Thread]:
        """Start loading, each on its own thread, the models of the signals that will fingerprint
        ``content`` (:meth:`Signal.warm_up`). Why: a cold text check loads MiniLM and USE; most of that
        (ONNX Runtime's session, sentencepiece, reading weights) runs outside the GIL, so the two load side
        by side on two cores: a cold 150-word check 1.19 -> 0.97 s (bench/RESULTS.md, "Text check speed").
        A failed load is left to the signal's own call, which reports it. Signals named in ``idle`` have
        nothing to find here and are not loaded."""
        threads = []
        for s in self.signals:
            if (s.accepts(content.media) and s.name not in pre and s.name not in idle
                    and (load := s.warm_up()) is not None):
                t = threading.Thread(target=_load_quietly, args=(load, s.name), name=f"load-{s.name}",
                                     daemon=True)
                t.start()
                threads.append(t)
        return threads

    def observe(self, content: Content, *, precomputed: Precomputed | None = None,
                only: Iterable[int] | None = None, progress: Progress | None = None) -> Observed:
        """Every installed signal's observations of ``content`` against the items it finds.

        Each signal that accepts the content prepares its query (from ``precomputed`` variants when
        given), proposes candidates, and every candidate of the same media is verified by every such
        signal, so the evidence shows all signals' values, not only the one that found the item. With
        ``only``, those items are verified whether or not a search finds them (calibration). ``progress``
        is told each stage as it starts.
        """
        say = progress or _silent
        pre = precomputed or {}
        # What each text's work budget cut (words too long, beyond the word or passage caps).
        skipped: list[dict[str, str]] = (budget_notes(content.text, tokens=content_tokens(content))
                                         if content.text is not None else [])
        # Asked first, so that a signal with nothing to find neither loads its model nor fingerprints.
        idle = {s.name: why for s in self.signals if s.accepts(content.media) and s.name not in pre
                and (why := self.adapter(s).nothing_to_find(content)) is not None}
        loading = self._warm_up(content, pre, idle)
        queries: list[tuple[SignalIndex[Any], Any]] = []
        for s in self.signals:
            if not s.accepts(content.media):
                continue
            if s.name in idle:
                skipped.append({"signal": s.name, "reason": idle[s.name]})
                continue
            if s.name in self.pending:
                skipped.append({"signal": s.name, "reason": (
                    f"installed after items were added; older items are not searched until "
                    f"`provenance rebuild --index {self.path}` back-fills them")})
            cached = pre.get(s.name)
            try:
                if isinstance(cached, SignalSkipped):
                    raise cached
                adapter = self.adapter(s)
                if cached is None:
                    say(f"{s.name}: fingerprinting {_size(content)}")
                queries.append((adapter, adapter.prepare(content, cached)))
            except SignalSkipped as exc:
                skipped.append({"signal": s.name, "reason": str(exc)})
        for t in loading:  # done by now unless its signal skipped this content; none outlives the call
            t.join()
        wanted: dict[int, None] = dict.fromkeys(only) if only is not None else {}
        if only is None:
            for adapter, q in queries:
                say(f"{adapter.signal.name}: searching")
                wanted.update(dict.fromkeys(adapter.candidates(q)))
        items = {i: row for i, row in self.catalog.get_items(wanted).items() if row.media == content.media}
        observations: dict[int, list[Observation]] = {}
        for n, (item_id, row) in enumerate(items.items(), 1):
            say(f"verifying candidate {n} of {len(items)}")
            obs = [o for adapter, q in queries if (o := adapter.verify(q, content, row)) is not None]
            if obs:
                observations[item_id] = obs
        return Observed(items, observations, skipped)

    def check_content(self, content: Content, *, precomputed: Precomputed | None = None,
                      exclude: Iterable[int] = (), only: Iterable[int] | None = None,
                      allow_sources: Iterable[str] = (), progress: Progress | None = None) -> Report:
        """Check already loaded content (``precomputed`` and ``only``: see :meth:`observe`; ``exclude``:
        item ids left out, e.g. the item itself in a self-join).

        Matches against ``allow_sources`` (the user's own archive, a licensed source) and exact matches
        against the user's own disclosures stay in the report, marked ``allowed`` with the reason, and do
        not count towards the verdict. So do matches whose every matched draft span lies inside a
        quotation the draft marks (Markdown blockquote, attributed or short quotation: :mod:`.quotes`),
        marked ``quoted``; a span with a copied run outside the quotation still counts. ``progress``: see
        :meth:`observe`.
        """
        allowed_sources = set(allow_sources)
        seen = self.observe(content, precomputed=precomputed, only=only, progress=progress)
        if content.text is not None:
            _mark_quoted(content, seen.observations)
        skip = set(exclude)
        matches: list[Match] = []
        near: list[Match] = []
        for item_id, obs in seen.observations.items():
            if item_id in skip:
                continue
            row = seen.items[item_id]
            m = match_from(item_id, row.path, row.source, row.media, obs)
            if row.source in allowed_sources:
                m.allowed = f"source {row.source!r} is allowed"
            elif row.source == OWN_DISCLOSURE_SOURCE and m.verdict == "exact":
                m.allowed = "your own disclosed content (provenance disclose)"
            (near if m.verdict == "original" else matches).append(m)
        matches.sort(key=lambda m: (not m.counts, verdict_rank(m.verdict), -m.score, m.id))
        near.sort(key=lambda m: (-m.score, m.id))
        matches = matches[:MAX_MATCHES]
        counted = [m for m in matches if m.counts]
        verdict: Verdict = counted[0].verdict if counted else "original"
        score = max((m.score for m in counted if m.verdict == verdict), default=0.0)
        return Report(path=content.name, media=content.media, verdict=verdict, score=score,
                      sha256=content.sha256, matches=matches, skipped=seen.skipped,
                      near_misses=near[:MAX_NEAR_MISSES])

    def self_join(self, queries: Iterable[tuple[int, Content, Precomputed]]) -> Iterator[tuple[int, Match]]:
        """Pairs inside this index: each ``(item id, content, precomputed)`` checked against the others.

        This is the self-join ``audit`` clusters with; it goes through the same adapters, verification
        and :func:`~provenance.report.decide` as ``check``, so an archive pair and a checked draft are
        judged by one rule. Yields ``(item id, match)`` for every passing pair (both directions).
        """
        for item_id, content, pre in queries:
            for m in self.check_content(content, precomputed=pre, exclude=(item_id,)).matches:
                yield item_id, m

    # -- information ------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """Counts, signals with their thresholds, and signals waiting for a back-fill."""
        return {
            "index": str(self.path),
            "counts": self.catalog.counts(),
            "signals": [{**s.describe(), "pending_backfill": s.name in self.pending} for s in self.signals],
        }

    def items(self) -> Iterator[ItemRow]:
        """Every live item."""
        return self.catalog.iter_items()

    def find_by_fingerprint(self, signal: str, value: bytes, max_results: int = 10, *,
                            max_distance: float | None = None) -> list[tuple[int, float]]:
        """Live items nearest to one raw fingerprint of a binary signal: ``[(item id, distance), ...]``.

        ``value`` is the fingerprint as stored (``dim / 8`` bytes, most significant bit first), e.g. a
        soft-binding value a client computed itself. No query variants and no threshold of the signal's
        own: nearest first, at most ``max_results`` items, each at its closest stored fingerprint, none
        farther than ``max_distance`` when given (dropping far rows before the catalog lookup is what
        keeps a lookup cheap). Items added by other processes are found (the FAISS index catches up
        with the catalog) and removed items are not (the catalog join drops them).

        Raises:
            BadInputError: an unknown or non-binary signal, or a value of the wrong length.
        """
        sig = next((s for s in self.signals if s.name == signal and s.index_kind == "binary"), None)
        if sig is None:
            names = ", ".join(s.name for s in self.signals if s.index_kind == "binary")
            raise BadInputError(f"no binary signal named {signal!r} (binary signals: {names})")
        if len(value) * 8 != sig.dim:
            raise BadInputError(f"a {signal} fingerprint is {sig.dim // 8} bytes, not {len(value)}")
        # Each item holds several fingerprints (whole image, trimmed, content block) and removed items
        # stay in FAISS until a rebuild, so ask for more rows than items wanted.
        dist, ids = self.vectors(sig).search(np.frombuffer(value, dtype=np.uint8).reshape(1, -1),
                                             max(16, 4 * max_results))
        rows = [(float(d), int(i)) for d, i in zip(dist[0], ids[0])
                if i >= 0 and (max_distance is None or d <= max_distance)]
        owners = self.catalog.fingerprint_owners(i for _, i in rows)
        best: dict[int, float] = {}
        for d, fid in rows:
            owner = owners.get(fid)
            if owner is not None and d < best.get(owner[0], float("inf")):
                best[owner[0]] = d
        return sorted(best.items(), key=lambda kv: (kv[1], kv[0]))[:max_results]


def _silent(stage: str) -> None:
    return None


def _size(content: Content) -> str:
    """``1,234 words`` or ``4000x3000 px``: what a stage message says it is working on."""
    if content.text is not None:
        return f"{len(content_tokens(content)):,} words"
    if content.image is not None:
        return "{}x{} px".format(*content.original_size) if content.original_size else "the image"
    return "the content"


def _mark_quoted(content: Content, observations: dict[int, list[Observation]]) -> None:
    """Mark, in place, each observation whose evidence has draft spans all inside the draft's quotations."""
    assert content.text is not None
    regions = quoted_regions(content.text)
    if not regions:
        return
    tokens = content_tokens(content)
    for obs in observations.values():
        for k, o in enumerate(obs):
            if o.evidence is None:
                continue
            spans = [(d.start, d.end) for d, _ in o.evidence.span_pairs()]
            if spans_are_quoted(tokens, regions, spans, exact=o.evidence.exact_spans):
                obs[k] = dataclasses.replace(o, quoted=True)


def _label(src: Source) -> str:
    if isinstance(src, bytes):
        return "<bytes>"
    if isinstance(src, str) and ("\n" in src or len(src) > 200):
        return "<text>"
    return str(src)

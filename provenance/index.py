"""The originality index: add content, check drafts and images against it, remove items.

An index is a directory: ``catalog.sqlite`` (source of truth) and ``faiss/<signal>.faiss`` snapshots.
Everything the CLI does goes through :class:`Index`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from .align import Region, align, covered
from .content import Content, Source, load_content
from .errors import BadInputError, ProvenanceIndexError
from .indexes.catalog import Catalog, ItemRow, NewItem
from .indexes.vectors import VectorIndex
from .limits import budget_notes  # issue 11 (hardening)
from .report import Match, Observation, Report, decide, verdict_rank
from .signals import EmbedSignal, Fingerprint, PDQSignal, PHashSignal, ShingleSignal, Signal, SignalSkipped
from .signals.image import phash_threshold
from .signals.text import content_overlap, shingle_hashes
from .textnorm import snippet, tokenize

#: Environment variable naming the index directory when ``--index`` is not given.
INDEX_ENV = "PROVENANCE_INDEX"
#: Directory used when neither ``--index`` nor ``PROVENANCE_INDEX`` is set (relative to the working
#: directory, like ``.git``): one index per project folder.
DEFAULT_INDEX_DIR = ".provenance"

#: Neighbours fetched per query vector before verification; filtered by threshold afterwards.
SEARCH_K = 16
#: Most source items aligned word-by-word per text check (ranked by shared shingles).
MAX_TEXT_CANDIDATES = 20
#: Most matches listed per report.
MAX_MATCHES = 10


def default_index_path() -> Path:
    """``$PROVENANCE_INDEX`` if set, else ``./.provenance``."""
    return Path(os.environ.get(INDEX_ENV) or DEFAULT_INDEX_DIR)


def text_key(text: str) -> str:
    """Hash of the normalised word sequence: equal for texts that differ only in spacing, case,
    Unicode form, zero-width characters or homoglyphs."""
    return hashlib.sha256(" ".join(tokenize(text).words).encode()).hexdigest()


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
class _Candidate:
    """Per indexed item, everything a check learned about it."""

    item: ItemRow
    observations: list[Observation] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    score: float = 0.0


class _Candidates:
    """The indexed items one check has found so far, created on first mention (live items only)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.by_id: dict[int, _Candidate] = {}

    def get(self, item_id: int) -> _Candidate | None:
        if item_id not in self.by_id:
            row = self.catalog.get_items([item_id]).get(item_id)
            if row is None:
                return None
            self.by_id[item_id] = _Candidate(row)
        return self.by_id[item_id]

    def __contains__(self, item_id: int) -> bool:
        return item_id in self.by_id

    def values(self) -> list[_Candidate]:
        return list(self.by_id.values())


class Index:
    """An originality index on disk.

    >>> with Index.open("my-index", create=True) as idx:      # doctest: +SKIP
    ...     idx.add(["old-post.md", "photo.jpg"], source="blog")
    ...     report = idx.check("draft.md")
    ...     report.verdict
    'near-duplicate'
    """

    def __init__(self, path: Path | str, *, create: bool = False, model_path: Path | str | None = None) -> None:
        self.path = Path(path)
        if create:
            self.path.mkdir(parents=True, exist_ok=True)
        elif not (self.path / "catalog.sqlite").exists():
            raise ProvenanceIndexError(
                f"{self.path}: no index here; create it with `provenance init --index {self.path}`")
        self.catalog = Catalog(self.path / "catalog.sqlite", create=create)
        self.pdq = PDQSignal()
        self.phash = PHashSignal()
        self.shingle = ShingleSignal()
        self.embed = EmbedSignal(model_path)
        self.signals: list[Signal] = [self.pdq, self.phash, self.shingle, self.embed]
        self.catalog.check_signals([(s.name, s.version, s.model_id()) for s in self.signals], self.path)
        self._vectors: dict[str, VectorIndex] = {}

    @classmethod
    def open(cls, path: Path | str | None = None, *, create: bool = False,
             model_path: Path | str | None = None) -> "Index":
        """Open the index at ``path`` (default: :func:`default_index_path`), creating it if asked."""
        return cls(path if path is not None else default_index_path(), create=create, model_path=model_path)

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Save index snapshots and close the catalog."""
        self.flush()
        self.catalog.close()

    def flush(self) -> None:
        """Bring every FAISS snapshot up to date with the catalog and write it.

        Snapshots this process never loaded are only loaded when the catalog has rows they lack, so a
        ``check`` of one image does not read the (large) embedding snapshot just to close.
        """
        for s in self._vector_signals():
            vi = self._vectors.get(s.name)
            if vi is None:
                on_disk = VectorIndex.snapshot_last_row(self.path / "faiss", s.name)
                if on_disk is not None and on_disk >= self.catalog.max_fingerprint_id(s.name):
                    continue
                vi = self.vectors(s)
            vi.save()

    def _vector_signals(self) -> list[Signal]:
        return [s for s in self.signals if s.index_kind in ("binary", "float")]

    def vectors(self, signal: Signal) -> VectorIndex:
        """The FAISS index of ``signal``, loaded and caught up with the catalog."""
        vi = self._vectors.get(signal.name)
        if vi is None:
            vi = VectorIndex(self.path / "faiss", signal.name, signal.version, signal.model_id(),
                             signal.index_kind, signal.dim)  # type: ignore[arg-type]
            vi.load(self.catalog)
            self._vectors[signal.name] = vi
        else:
            vi.catch_up(self.catalog)  # another process may have added since
        return vi

    def rebuild(self) -> dict[str, int]:
        """Rebuild every FAISS index from the catalog (after an upgrade or a damaged snapshot)."""
        counts = {}
        removed = self.catalog.removed_ids()
        for s in self._vector_signals():
            vi = VectorIndex(self.path / "faiss", s.name, s.version, s.model_id(), s.index_kind, s.dim)  # type: ignore[arg-type]
            vi.catch_up(self.catalog)
            for item_id in removed:
                vi.remove(self.catalog.fingerprint_ids_of(item_id).get(s.name, []))
            vi.dirty = True
            vi.save()
            self._vectors[s.name] = vi
            counts[s.name] = len(vi)
        return counts

    # -- adding -----------------------------------------------------------------------------------
    def add(self, sources: Iterable[Source] | Source, *, source: str | None = None,
            batch_size: int = 32, on_result: Callable[[AddResult], None] | None = None) -> list[AddResult]:
        """Add files, bytes or texts. Each input is one item; the same bytes twice stay one item.

        A bad input becomes an ``AddResult`` with ``status="error"`` and the rest go on. ``source``
        labels where the items came from (shown in matches). ``on_result`` is called per input.
        """
        if isinstance(sources, (str, bytes, Path)):
            sources = [sources]
        results: list[AddResult] = []  # in input order; slots of pending inputs are filled per batch
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
            results.append(None)  # type: ignore[arg-type]
            name = str(src) if isinstance(src, Path) else None
            try:
                pending.append((len(results) - 1, load_content(src, name)))
            except BadInputError as exc:
                emit(len(results) - 1, AddResult(name=exc.path or _label(src), status="error", error=str(exc)))
                continue
            if len(pending) >= batch_size:
                flush()
        flush()
        return results

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
        fps: dict[int, dict[str, list]] = {i: {} for i in todo}
        skipped: dict[int, dict[str, str]] = {i: {} for i in todo}
        for signal in self.signals:
            idx = [i for i in todo if signal.accepts(contents[i])]
            if not idx:
                continue
            for i, out in zip(idx, signal.fingerprint_many([contents[i] for i in idx])):
                if isinstance(out, SignalSkipped):
                    skipped[i][signal.name] = str(out)
                else:
                    fps[i][signal.name] = out
        for i in todo:
            results[i] = self.add_fingerprinted(contents[i], fps[i], skipped[i], source=source)
        return results  # type: ignore[return-value]

    def add_fingerprinted(self, content: Content, fingerprints: Mapping[str, list[Fingerprint]],
                          skipped: Mapping[str, str], *, source: str | None = None,
                          size: int | None = None) -> AddResult:
        """Add one item whose fingerprints were computed (and cached) elsewhere, e.g. by ``audit``.

        ``fingerprints`` maps a signal name to what its ``fingerprint`` returned; ``content.image`` may
        be ``None`` and ``content.data`` empty (pass ``size``). Same storage as :meth:`add_contents`.
        """
        rows, shingles = [], []
        for name, items in fingerprints.items():
            if name == self.shingle.name:
                shingles = [(int.from_bytes(f.value, "big", signed=True), f.position) for f in items]
                continue
            for f in items:
                value = f.value.tobytes() if isinstance(f.value, np.ndarray) else f.value
                rows.append((name, f.start, f.end, value))
        meta: dict[str, Any] = {"skipped": dict(skipped)} if skipped else {}
        if content.media == "image" and content.original_size:
            meta.update(format=content.image_format, width=content.original_size[0],
                        height=content.original_size[1])
        item = NewItem(sha256=content.sha256, path=content.name, source=source, media=content.media,
                       size=size if size is not None else len(content.data), metadata=meta, text=content.text,
                       text_key=text_key(content.text) if content.text else None,
                       fingerprints=rows, shingles=shingles)
        # add_item itself returns the existing id for bytes already present (one transaction, no race).
        item_id, created = self.catalog.add_item(item)
        return AddResult(content.name, "added" if created else "exists", item_id, content.media,
                         skipped=dict(skipped) if created else {})

    # -- removing ---------------------------------------------------------------------------------
    def remove(self, item_id: int) -> ItemRow:
        """Remove an item so it never matches again. Raises if it does not exist or is already gone."""
        item = self.catalog.remove_item(item_id)
        if item is None:
            raise ProvenanceIndexError(f"{self.path}: no live item with id {item_id} (see `provenance info`)")
        ids = self.catalog.fingerprint_ids_of(item_id)
        for s in self._vector_signals():
            if ids.get(s.name):
                self.vectors(s).remove(ids[s.name])
        return item

    # -- checking ---------------------------------------------------------------------------------
    def check(self, source: Source, name: str | None = None) -> Report:
        """Check one file, bytes or text against the index and return its :class:`Report`."""
        return self.check_content(load_content(source, name))

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

    def check_content(self, content: Content, *, precomputed: Mapping[str, Any] | None = None) -> Report:
        """Check already loaded content.

        ``precomputed`` maps a signal name to its ``query_variants`` output (or a ``SignalSkipped``),
        so callers that cached fingerprints (``provenance audit``) need neither the decoded image nor
        a second embedding pass.
        """
        cands = _Candidates(self.catalog)
        pre = precomputed or {}
        skipped: list[dict[str, str]] = []

        exact = self.catalog.find_sha256(content.sha256)
        if exact is not None:
            c = cands.get(exact.id)
            c.observations.append(Observation("sha256", 0, 0, True, "exact"))
            c.evidence["sha256"] = {"basis": "identical bytes", "sha256": content.sha256}
        if content.media == "text":
            assert content.text is not None
            for row in self.catalog.find_text_key(text_key(content.text)):
                c = cands.get(row.id)
                if not any(o.signal == "sha256" for o in c.observations):
                    c.observations.append(Observation("sha256", 0, 0, True, "exact"))
                    c.evidence["sha256"] = {"basis": "identical text after Unicode/case/space normalisation"}
            self._check_shingles(content, cands, skipped)
            self._check_embed(content, cands, skipped, pre)
            skipped.extend(budget_notes(content.text))  # issue 11 (hardening): what the work budget cut
        else:
            self._check_image(content, cands, skipped, pre)
        return self._report(content, cands, skipped)

    def _check_image(self, content: Content, cands: _Candidates, skipped: list,
                     pre: Mapping[str, Any]) -> None:
        variants: dict[str, list[tuple[str, bytes]]] = {}
        for s in (self.pdq, self.phash):
            try:
                variants[s.name] = [(t, fps[0].value) for t, fps in self._query_variants(s, content, pre)]
            except SignalSkipped as exc:
                skipped.append({"signal": s.name, "reason": str(exc)})
                continue
            vi = self.vectors(s)
            queries = np.frombuffer(b"".join(v for _, v in variants[s.name]), dtype=np.uint8)
            dist, ids = vi.search(queries.reshape(len(variants[s.name]), -1), SEARCH_K)
            radius = getattr(s, "corroborated_threshold", s.threshold)
            hits = {int(i) for row_d, row_i in zip(dist, ids) for d, i in zip(row_d, row_i)
                    if i >= 0 and d <= radius}
            for item_id, _, _ in self.catalog.fingerprint_owners(hits).values():
                cands.get(item_id)
        # Verify every candidate with the reference distance of every image signal: the evidence then
        # shows all per-signal distances, not only the one that found the item.
        for c in cands.values():
            if c.item.media != "image":
                continue
            best: dict[str, tuple[int, str]] = {}
            for s in (self.pdq, self.phash):
                stored = self.catalog.item_fingerprints(c.item.id, s.name)
                if s.name in variants and stored:
                    best[s.name] = min((int(s.distance(v, fp)), t) for t, v in variants[s.name] for fp in stored)
            for s in (self.pdq, self.phash):
                if s.name not in best:
                    continue
                d, transform = best[s.name]
                threshold, rule = s.threshold, "alone"
                if s is self.phash:
                    threshold, rule = phash_threshold(best.get(self.pdq.name, (None,))[0])
                c.observations.append(Observation(s.name, d, threshold, True, s.verdict_on_match))
                c.evidence[s.name] = {"distance": d, "threshold": threshold, "bits": s.dim,
                                      "transform": transform, "passed": d <= threshold}
                if s is self.phash:
                    c.evidence[s.name]["rule"] = rule

    def longest_runs(self, content: Content) -> dict[int, int]:
        """``item id -> longest aligned shingle run (words)`` for every indexed text sharing a shingle
        with ``content``: the raw value behind the text-shingle verdict (used by calibration)."""
        cands = _Candidates(self.catalog)
        self._check_shingles(content, cands, [])
        return {c.item.id: int(o.value) for c in cands.values() for o in c.observations
                if o.signal == self.shingle.name}

    @staticmethod
    def _query_variants(s: Signal, content: Content,
                        pre: Mapping[str, Any]) -> list[tuple[str, list[Fingerprint]]]:
        cached = pre.get(s.name)
        if cached is None:
            return s.query_variants(content)
        if isinstance(cached, SignalSkipped):
            raise cached
        return cached

    def _check_shingles(self, content: Content, cands: _Candidates, skipped: list) -> None:
        s = self.shingle
        try:
            draft_tokens, draft_hashes = s.grams(content)
        except SignalSkipped as exc:
            skipped.append({"signal": s.name, "reason": str(exc)})
            return
        assert content.text is not None
        hits = self.catalog.shingle_hits(int(h) for h in draft_hashes)
        ranked = sorted(hits.items(), key=lambda kv: -kv[1])[:MAX_TEXT_CANDIDATES]
        for item_id, _ in ranked:
            source_text = self.catalog.text_of(item_id)
            c = cands.get(item_id)
            if source_text is None or c is None:
                continue
            src_tokens = tokenize(source_text)
            regions = align(draft_hashes, shingle_hashes(src_tokens, s.n), s.n, s.max_gap)
            if not regions:
                continue
            longest = regions[0].words
            c.observations.append(Observation(s.name, longest, s.threshold, False, s.verdict_on_match))
            strong = [r for r in regions if r.words >= s.threshold]
            coverage = covered(strong, len(draft_tokens))
            c.score = max(c.score, coverage)
            c.evidence[s.name] = {
                "longest_run_words": longest,
                "threshold_words": s.threshold,
                "draft_coverage": round(coverage, 4),
                "source_coverage": round(covered(
                    [Region(r.s_start, r.s_end, 0, 0, 0) for r in strong], len(src_tokens)), 4),
                "regions": [_region_evidence(r, content.text, draft_tokens, source_text, src_tokens)
                            for r in (strong or regions[:1])[:10]],
            }

    def _check_embed(self, content: Content, cands: _Candidates, skipped: list,
                     pre: Mapping[str, Any]) -> None:
        s = self.embed
        cached = pre.get(s.name)
        if cached is None:
            out = s.fingerprint_many([content])[0]
        else:
            out = cached if isinstance(cached, SignalSkipped) else cached[0][1]
        if isinstance(out, SignalSkipped):
            skipped.append({"signal": s.name, "reason": str(out)})
            return
        vi = self.vectors(s)
        queries = np.stack([f.value for f in out])
        sims, ids = vi.search(queries, SEARCH_K)
        best: dict[int, list[tuple[float, int, int | None, int | None]]] = {}
        flat = {int(i) for row in ids for i in row if i >= 0}
        owners = self.catalog.fingerprint_owners(flat)
        for qi, (row_s, row_i) in enumerate(zip(sims, ids)):
            for sim, fid in zip(row_s, row_i):
                if fid < 0 or int(fid) not in owners:
                    continue
                item_id, start, end = owners[int(fid)]
                best.setdefault(item_id, []).append((float(sim), qi, start, end))
        assert content.text is not None
        for item_id, pairs in best.items():
            pairs.sort(key=lambda p: -p[0])
            if pairs[0][0] < s.threshold and item_id not in cands:
                continue  # not a paraphrase and not otherwise matched: not worth reporting
            c = cands.get(item_id)
            if c is None:
                continue
            source_text = self.catalog.text_of(item_id) or ""
            shown, seen, supported = [], set(), 0.0
            for sim, qi, start, end in pairs:
                if (qi, start) in seen or (shown and sim < s.threshold):
                    continue
                seen.add((qi, start))
                d0, d1 = out[qi].start, out[qi].end
                draft_passage, source_passage = content.text[d0:d1], source_text[start or 0:end or 0]
                overlap = content_overlap(draft_passage, source_passage)
                if s.supports_paraphrase(sim, draft_passage, source_passage):
                    supported = max(supported, sim)
                shown.append({"score": round(sim, 4), "content_overlap": round(overlap, 3),
                              "draft": {"start": d0, "end": d1, "snippet": snippet(content.text, d0, d1)},
                              "source": {"start": start, "end": end,
                                         "snippet": snippet(source_text, start or 0, end or 0)}})
                if len(shown) >= 5:
                    break
            # The observation is the best cosine among pairs that also share content words, so the
            # verdict follows supports_paraphrase(); the evidence still shows the raw best cosine.
            c.observations.append(Observation(s.name, supported, s.threshold, False, s.verdict_on_match))
            c.evidence[s.name] = {"max_cosine": round(pairs[0][0], 4), "supported_cosine": round(supported, 4),
                                  "threshold": s.threshold, "min_content_overlap": s.min_content_overlap,
                                  "passages": shown}

    def _report(self, content: Content, cands: _Candidates, skipped: list) -> Report:
        matches: list[Match] = []
        for c in cands.values():
            verdict = decide(c.observations)
            if verdict == "original":
                continue
            decisive = next(o for o in c.observations if o.passed and o.verdict_on_match == verdict)
            if decisive.signal == "sha256":
                score, distance = 1.0, 0.0
            elif decisive.lower_is_closer:
                bits = c.evidence[decisive.signal]["bits"]
                score, distance = 1.0 - decisive.value / bits, decisive.value
            elif decisive.signal == self.shingle.name:
                score, distance = c.score, None
            else:
                score, distance = decisive.value, None
            matches.append(Match(id=c.item.id, path=c.item.path, source=c.item.source, media=c.item.media,
                                 verdict=verdict, signal=decisive.signal, distance=distance,
                                 score=round(float(score), 4), threshold=decisive.threshold,
                                 evidence=c.evidence))
        matches.sort(key=lambda m: (verdict_rank(m.verdict), -m.score, m.id))
        matches = matches[:MAX_MATCHES]
        verdict = matches[0].verdict if matches else "original"
        score = max((m.score for m in matches if m.verdict == verdict), default=0.0)
        return Report(path=content.name, media=content.media, verdict=verdict, score=score,
                      sha256=content.sha256, matches=matches, skipped=skipped)

    # -- information ------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """Counts, signals with their thresholds, and snapshot state."""
        return {
            "index": str(self.path),
            "counts": self.catalog.counts(),
            "signals": [{"name": s.name, "version": s.version, "media": sorted(s.media),
                         "index": s.index_kind, "model": s.model_id() or None, "threshold": s.threshold,
                         "threshold_source": s.threshold_source} for s in self.signals],
        }

    def items(self) -> Iterator[ItemRow]:
        """Every live item."""
        return self.catalog.iter_items()


def _label(src: Source) -> str:
    if isinstance(src, bytes):
        return "<bytes>"
    if isinstance(src, str) and ("\n" in src or len(src) > 200):
        return "<text>"
    return str(src)


def _region_evidence(r: Region, draft: str, dt, source: str, st) -> dict[str, Any]:
    d0, d1 = dt.starts[r.d_start], dt.ends[min(r.d_end, len(dt)) - 1]
    s0, s1 = st.starts[r.s_start], st.ends[min(r.s_end, len(st)) - 1]
    return {"words": r.words,
            "draft": {"start": d0, "end": d1, "snippet": snippet(draft, d0, d1)},
            "source": {"start": s0, "end": s1, "snippet": snippet(source, s0, s1)}}

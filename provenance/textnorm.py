"""Text normalisation that keeps a map back to the original characters.

Input contract: any ``str``. Output: folded tokens, each with the ``[start, end)`` character span it
came from in the *original* string, so evidence can quote the draft exactly as the user wrote it.

Folding, applied per character so offsets survive:
- NFKC (full-width letters, ligatures, mathematical alphanumerics become plain letters);
- case folding;
- zero-width and other format characters (Unicode category ``Cf``: ZWSP, ZWJ, soft hyphen, BOM) dropped,
  so ``pla\u200bgiarism`` still reads as one word;
- homoglyphs: Cyrillic and Greek letters that render like Latin ones folded to the Latin letter
  (a subset of Unicode's confusables.txt covering the look-alikes used to dodge text matching);
- combining marks dropped after NFKD-style decomposition of accented letters (``café`` ~ ``cafe``).

Work budget (issue 11): tokenising is linear in the text and bounded. A run of word characters longer
than :data:`MAX_WORD_CHARS` is cut into pieces of that length (no language has such words; a base64 blob
or a run of one letter is not one word), and at most :data:`MAX_WORDS` words are returned: callers that
need to say what was cut compare ``Tokens.truncated``. The folded text is built with ``str.translate`` and
offsets with numpy, so a 20 MB text costs seconds, not minutes and gigabytes.
"""

from __future__ import annotations

import re
import unicodedata
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .content import Content

#: Longest word kept whole; longer runs of word characters are cut into pieces of this length.
#: 100 is also where the embedding model's WordPiece tokenizer gives up on a word (``[UNK]``).
MAX_WORD_CHARS = 100
#: Most words tokenised per text (about 12 MB of English): the shingle signal and alignment see these.
MAX_WORDS = 2_000_000

# Single-character confusables (from Unicode confusables.txt, the "MA" table restricted to Cyrillic
# and Greek letters whose glyph is indistinguishable from a Latin letter in common fonts).
_HOMOGLYPHS = {
    # Cyrillic lower case
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d",
    "ԛ": "q", "ԝ": "w", "һ": "h", "ӏ": "l", "ɡ": "g",
    # Greek lower case
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "γ": "y", "ϲ": "c", "ϳ": "j",
    # Latin look-alikes outside ASCII
    "ı": "i", "ȷ": "j", "ℓ": "l", "ſ": "s",
}

# Capitals are folded before case folding: Greek capital Eta looks like "H", its lower case like "n".
_HOMOGLYPHS_UPPER = {
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T",
    "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J", "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I",
    "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
}

_WORD = re.compile(rf"\w{{1,{MAX_WORD_CHARS}}}", re.UNICODE)


@lru_cache(maxsize=65536)
def fold_char(ch: str) -> str:
    """Fold one character to its matching form ('' when it should vanish)."""
    if unicodedata.category(ch) == "Cf":
        return ""
    out = []
    for c in unicodedata.normalize("NFKC", ch):
        c = _HOMOGLYPHS_UPPER.get(c, c).casefold()
        c = _HOMOGLYPHS.get(c, c)
        # Strip accents: decompose and keep base characters only.
        for d in unicodedata.normalize("NFD", c):
            if not unicodedata.combining(d):
                out.append(_HOMOGLYPHS.get(d, d))
    return "".join(out)


@dataclass(frozen=True)
class Tokens:
    """Folded words of a text with their spans in the original text."""

    words: list[str]
    starts: Sequence[int]
    ends: Sequence[int]
    #: True when the text had more than the ``max_words`` asked for (the rest was not tokenised).
    truncated: bool = False

    def __len__(self) -> int:
        return len(self.words)


def _fold(text: str) -> tuple[str, np.ndarray | None]:
    """The folded text and, when lengths changed, ``origin[i]`` = index in ``text`` of folded char ``i``.

    ``None`` means the identity (every character folded to exactly one): no offset array is needed.
    """
    if text.isascii():
        return text.lower(), None
    table: dict[int, str] = {}
    irregular: list[str] = []
    for ch in set(text):
        f = ch.lower() if ch.isascii() else fold_char(ch)
        table[ord(ch)] = f
        if len(f) != 1:
            irregular.append(ch)
    folded = text.translate(table)
    if not irregular:
        return folded, None
    # Only a few distinct characters vanish (format characters) or expand (ligatures, NFKC): find them
    # with one regex pass, then repeat each original index by its folded length.
    lengths = np.ones(len(text), dtype=np.int32)
    pattern = re.compile("[" + "".join(re.escape(c) for c in irregular) + "]")
    pos = [m.start() for m in pattern.finditer(text)]
    if pos:
        idx = np.asarray(pos, dtype=np.int64)
        lengths[idx] = np.fromiter((len(table[ord(text[i])]) for i in pos), dtype=np.int32, count=len(pos))
    return folded, np.repeat(np.arange(len(text), dtype=np.int64), lengths)


_WORD_CHAR = re.compile(r"\w", re.UNICODE)


def _word_runs(folded: str) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, ends)`` of the words :data:`_WORD` finds in ``folded``, computed with numpy.

    A per-match Python loop costs about a microsecond a word (seconds for a long text); here the word
    characters are classified once per distinct character and the runs found with ``np.diff``.
    """
    if folded.isascii():
        codes = np.frombuffer(folded.encode("ascii"), dtype=np.uint8)
        table = np.zeros(256, dtype=bool)
        for c in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_":
            table[c] = True
        is_word = table[codes]
    else:
        codes32 = np.frombuffer(folded.encode("utf-32-le"), dtype=np.uint32)
        # A lookup table over code points (at most 1.1 MB) filled for the few distinct characters.
        lookup = np.zeros(int(codes32.max()) + 1, dtype=bool)
        for ch in set(folded):
            if _WORD_CHAR.match(ch):
                lookup[ord(ch)] = True
        is_word = lookup[codes32]
    edges = np.diff(np.concatenate(([False], is_word, [False])).astype(np.int8))
    run_starts = np.flatnonzero(edges == 1)
    run_ends = np.flatnonzero(edges == -1)
    # Runs longer than MAX_WORD_CHARS are cut into pieces, exactly as the bounded regex does.
    pieces = (run_ends - run_starts + MAX_WORD_CHARS - 1) // MAX_WORD_CHARS
    if len(pieces) and int(pieces.max()) > 1:
        first = np.repeat(run_starts, pieces)
        k = np.arange(len(first)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
        starts = first + k * MAX_WORD_CHARS
        ends = np.minimum(starts + MAX_WORD_CHARS, np.repeat(run_ends, pieces))
        return starts, ends
    return run_starts, run_ends


def content_tokens(content: Content) -> Tokens:
    """``tokenize(content.text)``, once per :class:`~provenance.content.Content`: the exact-text key, the
    shingles and the work-budget note of one check all need the same words, and folding is the costly part."""
    tokens = content.meta.get("tokens")
    if tokens is None:
        assert content.text is not None
        tokens = content.meta["tokens"] = tokenize(content.text)
    return tokens


def tokenize(text: str, max_words: int = MAX_WORDS) -> Tokens:
    """Split ``text`` into folded words, each mapped back to its original ``[start, end)`` span.

    At most ``max_words`` words (``Tokens.truncated`` says whether there were more).
    """
    # Read a prefix that probably holds max_words words (8 characters a word), doubling it if not: a
    # 20 MB text is not folded and classified in full when only its first MAX_WORDS words are used.
    # A word cut at the prefix's end is always past max_words (more than max_words words were found).
    limit = max(1 << 16, max_words * 8)
    while True:
        prefix = text if limit >= len(text) else text[:limit]
        folded, origin = _fold(prefix)
        starts, ends = _word_runs(folded)
        if len(prefix) == len(text) or len(starts) > max_words:
            break
        limit *= 2
    truncated = len(starts) > max_words
    if truncated:
        starts, ends = starts[:max_words], ends[:max_words]
    words = _WORD.findall(folded, 0, int(ends[-1])) if len(ends) else []
    if len(words) != len(starts):  # cannot happen: both use the definition of \w; be safe, not fast
        spans = [m.span() for m in _WORD.finditer(folded)][:max_words]
        words = [folded[a:b] for a, b in spans]
        starts = np.asarray([a for a, _ in spans], dtype=np.int64)
        ends = np.asarray([b for _, b in spans], dtype=np.int64)
    if origin is not None and len(starts):
        starts, ends = origin[starts], origin[ends - 1] + 1
    return Tokens(words, _int_array(starts), _int_array(ends), truncated)


def _int_array(values: np.ndarray) -> array:
    # array('q') indexes like a list of ints at an eighth of the memory of one.
    out = array("q")
    out.frombytes(np.ascontiguousarray(values, dtype=np.int64).tobytes())
    return out


#: Han ideographs and kana: scripts written without spaces, where a whole clause is one ``\w`` run.
NO_SPACE_CHAR = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
#: Words each such character counts for where text is measured in words (passage sizes, a quotation's
#: length): about two characters make a word, so a Chinese or Japanese passage holds about as much as an
#: English one. Counted as runs, a 300-character Chinese text of four paragraphs was 19 "words" and one
#: passage, and its English source's translation could not form a run of two (USE pair cosines 0.65-0.83
#: paragraph by paragraph, 0.62-0.69 as one).
NO_SPACE_WORDS_PER_CHAR = 0.5


def word_count(text: str) -> float:
    """Words of ``text`` as a reader counts them: separated by white space, except that each Han or kana
    character counts :data:`NO_SPACE_WORDS_PER_CHAR` (those scripts write no spaces)."""
    no_space = len(NO_SPACE_CHAR.findall(text))
    if not no_space:
        return float(len(text.split()))
    return len(NO_SPACE_CHAR.sub(" ", text).split()) + no_space * NO_SPACE_WORDS_PER_CHAR


# Chinese and Japanese write no space after a full stop, so their stops end a sentence on their own.
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+|(?<=[。！？])[」』”’)）\]]*\s*|\n\s*\n")


def iter_sentence_spans(text: str) -> Iterator[tuple[int, int]]:
    """Yield ``[start, end)`` spans of sentences (and paragraph breaks), whitespace trimmed, lazily."""
    pos = 0
    for m in _SENTENCE_END.finditer(text):
        span = _trim(text, pos, m.start())
        if span:
            yield span
        pos = m.end()
    span = _trim(text, pos, len(text))
    if span:
        yield span


def _trim(text: str, s: int, e: int) -> tuple[int, int] | None:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return (s, e) if e > s else None


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Return ``[start, end)`` spans of sentences (and paragraph breaks), whitespace trimmed."""
    return list(iter_sentence_spans(text))


def snippet(text: str, start: int, end: int, limit: int = 160) -> str:
    """A short, single-line excerpt of ``text[start:end]`` for evidence (elided in the middle)."""
    s = " ".join(text[start:end].split())
    if len(s) <= limit:
        return s
    half = (limit - 1) // 2
    return s[:half].rstrip() + "…" + s[-half:].lstrip()

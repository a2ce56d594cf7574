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
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

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

_WORD = re.compile(r"\w+", re.UNICODE)


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
    starts: list[int]
    ends: list[int]

    def __len__(self) -> int:
        return len(self.words)


def tokenize(text: str) -> Tokens:
    """Split ``text`` into folded words, each mapped back to its original ``[start, end)`` span."""
    folded_chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        if ch.isascii():
            # Fast path: ASCII needs only lower-casing.
            folded_chars.append(ch.lower())
            origin.append(i)
            continue
        f = fold_char(ch)
        for c in f:
            folded_chars.append(c)
            origin.append(i)
    folded = "".join(folded_chars)
    words: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for m in _WORD.finditer(folded):
        words.append(m.group())
        starts.append(origin[m.start()])
        ends.append(origin[m.end() - 1] + 1)
    return Tokens(words, starts, ends)


_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])[\"'”’)\]]*\s+|\n\s*\n")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Return ``[start, end)`` spans of sentences (and paragraph breaks), whitespace trimmed."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for m in _SENTENCE_END.finditer(text):
        spans.append((pos, m.start()))
        pos = m.end()
    spans.append((pos, len(text)))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return out


def snippet(text: str, start: int, end: int, limit: int = 160) -> str:
    """A short, single-line excerpt of ``text[start:end]`` for evidence (elided in the middle)."""
    s = " ".join(text[start:end].split())
    if len(s) <= limit:
        return s
    half = (limit - 1) // 2
    return s[:half].rstrip() + "…" + s[-half:].lstrip()

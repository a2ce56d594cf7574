"""Quoted regions of a text draft: what the writer marked as someone else's words.

Input contract: the draft as the user wrote it (``Content.text``); regions are character ranges
``[start, end)`` of that text, the quoted words without their quotation marks.

The rule (README, "Quoting"):

* a Markdown blockquote (lines starting with ``>``, up to three spaces of indent) is quoted, whatever
  its length: the markup itself says "these are someone else's words";
* text between quotation marks (straight ``"…"``, typographic ``“…”``, ``„…“``, ``„…”``, ``«…»``,
  ``»…«``, ``‚…‘``, ``‘…’``, ``「…」``, ``『…』``) inside one paragraph is quoted when an attribution
  stands next to it: after the closing mark a dash and a name (``— Ada Lovelace``), a citation
  (``(Lovelace, 1843)``) or a speech verb (``said``, ``wrote``, ``according to`` …, and the same in
  German, French, Spanish, Italian, Portuguese and Dutch); before the opening mark a speech verb or
  ``according to X``, ``as X put it`` …;
* an unattributed quotation counts when it is short, at most :data:`MAX_UNATTRIBUTED_WORDS` words
  (:func:`provenance.textnorm.word_count`: a Chinese or Japanese character is half a word; a short
  quotation reads as one without a name); a longer passage between bare quotation marks is not
  taken as a quotation (a pasted page in quotation marks is still a pasted page).

A signal's evidence is quoted (:func:`spans_are_quoted`) when its draft spans lie inside quotations. Exact
spans (the aligned words of copied runs): each has fewer than :data:`QUOTE_SLACK_WORDS` words outside
quotations, so a draft that quotes one line and copies the rest still fails. Passage spans (an
embedding's whole passages, of which only part may have matched): one of them is at least half quoted and
every one touches a quotation, since overlapping passages around a quotation all resemble its source,
while a passage that touches no quotation matched something else.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence

from .textnorm import Tokens, word_count

#: A quotation without an attribution counts when it has at most this many words.
MAX_UNATTRIBUTED_WORDS = 50
#: A draft span still counts as quoted with fewer than this many of its words outside quotations: the
#: shortest run the shingle signal treats as copied (12 words), so anything copied outside a quotation
#: that could fail on its own keeps the match counting.
QUOTE_SLACK_WORDS = 12
#: Longest quotation looked for between a pair of marks (characters), so an unmatched mark costs little.
MAX_QUOTE_CHARS = 20_000
#: How far from a quotation mark an attribution is looked for (characters).
ATTRIBUTION_WINDOW = 80

Region = tuple[int, int]

_BLOCKQUOTE = re.compile(r"^ {0,3}>[ \t]?(.*)$", re.MULTILINE)
#: Opening mark -> closing marks it pairs with.
_PAIRS: dict[str, str] = {"“": "”", "„": "“”", "«": "»", "»": "«", "‚": "‘’", "‘": "’", '"': '"', "「": "」",
                          "『": "』"}
_SPEECH = (r"said|says|say|wrote|writes|write|told|tells|noted|notes|argued|argues|asked|asks|added|adds|"
           r"explained|explains|observed|observes|remarked|remarks|declared|declares|replied|replies|"
           r"put it|puts it|insisted|insists|warned|warns|recalled|recalls|stated|states|claimed|claims|"
           # The same in the other languages whose translations are searched: German, French, Spanish,
           # Italian, Portuguese, Dutch (not "dit", "dice": words of Dutch and English too).
           r"sagte|sagt|schrieb|schreibt|erklärte|betonte|meinte|a dit|écrit|a écrit|déclare|a déclaré|"
           r"affirme|dijo|escribió|escribe|afirmó|declaró|disse|scrisse|scrive|ha detto|ha scritto|"
           r"affermò|diz|escreveu|escreve|afirmou|declarou|zei|zegt|schreef|schrijft")
#: "according to X" in those languages.
_ACCORDING = r"according to|laut|zufolge|selon|según|secondo|segundo|volgens"
_AFTER = re.compile(
    r"^[\s,.;:!?)\]]*(?:[—–―]|--|-\s)\s*\S"                     # — Name
    r"|^[\s,.;:!?]*\((?:[^()\n]{0,60}\d{4}[a-z]?|[^()\n]{0,60}p\.\s*\d+)\)"  # (Author, 2019) / (p. 12)
    rf"|^[\s,.;:!?]*(?:\w+\s+){{0,4}}(?:{_SPEECH})\b"            # ", said the minister"
    rf"|^[\s,.;:!?]*(?:{_ACCORDING})\b", re.IGNORECASE)
_BEFORE = re.compile(
    rf"(?:\b(?:{_SPEECH})\b|\b(?:{_ACCORDING})\b[^.\n]*|\bas\s+\S+(?:\s+\S+){{0,3}}\s+(?:put|puts|wrote|writes|"
    r"said|says)\s+it\b|\bin the words of\b[^.\n]*)[\s,:—–-]*$", re.IGNORECASE)


def quoted_regions(text: str) -> list[Region]:
    """Character ranges of ``text`` that the writer quoted (see the module docstring), merged and sorted."""
    regions: list[Region] = []
    for m in _BLOCKQUOTE.finditer(text):
        if m.group(1).strip():
            regions.append((m.start(1), m.end(1)))
    regions.extend(_quotation_marks(text))
    return _merge(regions)


def _quotation_marks(text: str) -> list[Region]:
    out: list[Region] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        closers = _PAIRS.get(ch)
        if closers is None or (ch == "‘" and _apostrophe(text, i)):
            i += 1
            continue
        end = _closing(text, i + 1, closers)
        if end is None:
            i += 1
            continue
        body = text[i + 1:end]
        if body.strip() and _counts(text, i, end, body):
            out.append((i + 1, end))
        i = end + 1
    return out


def _closing(text: str, start: int, closers: str) -> int | None:
    """Index of the closing mark for a quotation opened before ``start``, within the paragraph."""
    limit = min(len(text), start + MAX_QUOTE_CHARS)
    para = text.find("\n\n", start, limit)
    if para != -1:
        limit = para
    for j in range(start, limit):
        if text[j] in closers and not (text[j] == "’" and _apostrophe(text, j)):
            return j
    return None


def _apostrophe(text: str, i: int) -> bool:
    """A ``‘``/``’`` between two letters (``don’t``) is an apostrophe, not a quotation mark."""
    return 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()


def _counts(text: str, start: int, end: int, body: str) -> bool:
    after = text[end + 1:end + 1 + ATTRIBUTION_WINDOW]
    before = text[max(0, start - ATTRIBUTION_WINDOW):start]
    if _AFTER.search(after) or _BEFORE.search(before):
        return True
    # Counted as a reader counts (Chinese and Japanese characters half a word each): split on white space,
    # a pasted Chinese page between quotation marks would be one "word", a short quotation.
    return word_count(body) <= MAX_UNATTRIBUTED_WORDS


def _merge(regions: list[Region]) -> list[Region]:
    out: list[Region] = []
    for s, e in sorted(regions):
        if out and s <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def words_outside(tokens: Tokens, regions: Sequence[Region], start: int, end: int) -> tuple[int, int]:
    """``(words of the span, of which outside every region)`` for the draft span ``[start, end)``;
    ``regions`` as :func:`quoted_regions` returns them (sorted, disjoint)."""
    lo = bisect.bisect_left(tokens.starts, start)
    hi = bisect.bisect_right(tokens.ends, end, lo=lo)
    starts = [s for s, _ in regions]
    outside = 0
    for k in range(lo, hi):
        ws, we = tokens.starts[k], tokens.ends[k]
        r = bisect.bisect_right(starts, ws) - 1
        if r < 0 or we > regions[r][1]:
            outside += 1
    return hi - lo, outside


def span_is_quoted(tokens: Tokens, regions: Sequence[Region], start: int, end: int, *,
                   exact: bool = True) -> bool:
    """Whether the draft span ``[start, end)`` lies inside quotations: it has words, and fewer than
    :data:`QUOTE_SLACK_WORDS` of them outside ``regions`` (or, for a passage span, ``exact=False``, at
    most half of them)."""
    if not regions:
        return False
    words, outside = words_outside(tokens, regions, start, end)
    if not words:
        return False
    return outside < QUOTE_SLACK_WORDS or (not exact and 2 * outside <= words)


def spans_are_quoted(tokens: Tokens, regions: Sequence[Region], spans: Sequence[tuple[int, int]], *,
                     exact: bool = True) -> bool:
    """Whether evidence with these draft ``spans`` is quoted (the rule in the module docstring);
    ``exact``: the spans are the matched words themselves, not passages around them."""
    if not regions or not spans:
        return False
    if exact:
        return all(span_is_quoted(tokens, regions, s, e) for s, e in spans)
    counts = [words_outside(tokens, regions, s, e) for s, e in spans]
    return all(words > outside for words, outside in counts) and \
        any(span_is_quoted(tokens, regions, s, e, exact=False) for s, e in spans)

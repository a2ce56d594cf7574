"""The work budget of one text check (issue 11), and what it cut, for the report's ``skipped`` list.

Every stage of a text check is bounded, so a check of any input under the size limit finishes in seconds
and bounded memory, and its time grows linearly with the text up to the caps (``bench/long_text.py``):

========================  ==========================================  ================================
stage                     bound                                       where
========================  ==========================================  ================================
reading                   ``stat``, then at most the limit is read    ``files.read_bounded``
HTML                      linear tokenizer (no rescans)               ``content.html_to_text``
word                      ``MAX_WORD_CHARS`` characters               ``textnorm.tokenize``
document (shingles)       ``MAX_WORDS`` words                         ``textnorm.tokenize``
passage                   ``max_words`` words, ``MAX_PASSAGE_CHARS``  ``signals.text.passage_spans``
document (embeddings)     ``MAX_PASSAGES`` passages                   ``signals.text.passage_spans``
alignment                 n-grams repeated > ``MAX_GRAM_OCCURRENCES``  ``align.align``
                          times in a source are not chained
========================  ==========================================  ================================

:func:`budget_notes` says what was checked and what was cut, in the shape of the report's ``skipped``
entries (``{"signal", "reason"}``). It costs nothing for texts far below the caps.
"""

from __future__ import annotations

from .align import MAX_GRAM_OCCURRENCES
from .signals.text import MAX_PASSAGE_CHARS, MAX_PASSAGES, passage_cut, passage_spans
from .textnorm import MAX_WORD_CHARS, MAX_WORDS, Tokens, tokenize

__all__ = ["MAX_GRAM_OCCURRENCES", "MAX_PASSAGES", "MAX_PASSAGE_CHARS", "MAX_WORDS", "MAX_WORD_CHARS",
           "budget_notes"]


def budget_notes(text: str, *, tokens: Tokens | None = None, shingle_signal: str = "text-shingle",
                 embed_signal: str = "text-embed") -> list[dict[str, str]]:
    """``skipped`` entries for the parts of ``text`` the work budget left unchecked (``[]`` if none).

    Pass the check's own ``tokenize(text)`` as ``tokens`` to avoid tokenising a long text twice.
    """
    notes: list[dict[str, str]] = []
    # Each word is at least one character and each passage at least one word, so short texts are
    # answered without tokenising anything.
    if len(text) > MAX_WORDS:
        tokens = tokens if tokens is not None else tokenize(text)
        if tokens.truncated and len(tokens):
            end = tokens.ends[-1]
            notes.append({"signal": shingle_signal, "reason": (
                f"checked the first {MAX_WORDS:,} words (characters 0-{end:,} of {len(text):,}); the rest "
                f"was not checked for copied passages (limit {MAX_WORDS:,} words per document)")})
    if len(text) > MAX_PASSAGES:
        spans = passage_spans(text)
        cut = passage_cut(text, spans)
        if cut is not None:
            notes.append({"signal": embed_signal, "reason": (
                f"embedded the first {len(spans)} passages (characters 0-{cut:,} of {len(text):,}); the "
                f"rest was not checked for paraphrase (limit {MAX_PASSAGES} passages per document)")})
    return notes

"""Passage-level evidence for embedding signals: aligned runs of passages, and a cheap language guess.

Input contract of :func:`aligned_runs`: a similarity matrix ``sim`` (draft passages x source passages of
*one* source item, inner products of unit vectors), and each side's passages as ``[start, end)`` character
spans in document order (as :func:`provenance.signals.text.passage_spans` makes them: about 48 words,
overlapping by half). Output: monotone runs of passage pairs, best first, each with its character span on
both sides and a score.

Why runs: across languages no words are shared, so the content-word gate that keeps same-topic English
texts apart cannot work. What a translation keeps, and a text written independently on the same topic does
not, is *order*: consecutive draft passages match consecutive source passages, as consecutive shingles do
for a verbatim copy (:mod:`provenance.align`). A run of two or more passages in order, each pair above a
cosine bar, is the cross-lingual gate; a lone passage (a draft too short to have two) must clear a higher bar.

Input contract of :func:`guess_language`: any ``str``. Output: an ISO 639-1 code, or ``"und"`` when the text
is too short or too mixed to tell. Latin-script languages are told apart by their function words (a profile
of about 40 per language); other scripts by the script itself.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from .textnorm import tokenize

Span = tuple[int, int]


@dataclass(frozen=True)
class AlignedRun:
    """Draft passages matched, in order, to source passages of one source item."""

    #: ``(draft passage, source passage, cosine)`` in draft order.
    pairs: tuple[tuple[int, int, float], ...]
    #: Character span in the draft covering every draft passage of the run.
    draft_span: Span
    #: Character span in the source covering every source passage of the run.
    source_span: Span
    #: Mean cosine over the pairs.
    score: float
    #: Lowest cosine over the pairs.
    min_score: float
    #: Distinct draft / source passages in the run.
    draft_passages: int = field(default=0)
    source_passages: int = field(default=0)

    @property
    def length(self) -> int:
        """Passages on the shorter side: a run is only as long as the side that advanced least."""
        return min(self.draft_passages, self.source_passages)


@dataclass(frozen=True)
class RunGate:
    """When an :class:`AlignedRun` is evidence of a copy.

    A run passes with ``min_passages`` or more passages on both sides, every pair at ``cell_threshold`` or
    above (runs are only built from such pairs) and a mean at ``run_threshold`` or above, or at
    ``shortest_run_threshold`` for a run of exactly ``min_passages`` (passages overlap by half, so the
    shortest run holds the least text: two passages are one and a half passages' worth); a draft or source
    too short to give ``min_passages`` passages passes with one pair at ``single_threshold``.
    """

    cell_threshold: float
    run_threshold: float
    single_threshold: float
    min_passages: int = 2
    #: ``None``: ``run_threshold`` for every length.
    shortest_run_threshold: float | None = None

    def __post_init__(self) -> None:
        if not -1.0 <= self.cell_threshold <= self.run_threshold <= 1.0:
            raise ValueError("need -1 <= cell_threshold <= run_threshold <= 1, got "
                             f"{self.cell_threshold} and {self.run_threshold}")
        if self.shortest_run_threshold is not None and not self.run_threshold <= self.shortest_run_threshold <= 1.0:
            raise ValueError("need run_threshold <= shortest_run_threshold <= 1, got "
                             f"{self.run_threshold} and {self.shortest_run_threshold}")
        if self.min_passages < 1:
            raise ValueError(f"min_passages must be >= 1, not {self.min_passages}")

    def bar(self, length: int) -> float:
        """The mean a run of ``length`` passages needs (under ``min_passages``: the single pair's bar, which
        only a text too short for a longer run may pass on)."""
        if length < self.min_passages:
            return self.single_threshold
        if length == self.min_passages and self.shortest_run_threshold is not None:
            return self.shortest_run_threshold
        return self.run_threshold

    def passes(self, run: AlignedRun, draft_total: int, source_total: int) -> bool:
        """Whether ``run`` is evidence, given how many passages the draft and the source have in all."""
        if run.min_score < self.cell_threshold:
            return False
        if run.length >= self.min_passages:
            return run.score >= self.bar(run.length)
        # Only a text that cannot hold a longer run may pass on a single pair.
        short = min(draft_total, source_total) < self.min_passages
        return short and run.score >= self.single_threshold


def aligned_runs(sim: np.ndarray, draft_spans: list[Span], source_spans: list[Span], *,
                 cell_threshold: float, max_gap: int = 1, limit: int = 8) -> list[AlignedRun]:
    """Monotone chains of passage pairs with cosine >= ``cell_threshold``, best (highest summed cosine) first.

    A pair ``(i, j)`` follows ``(i', j')`` in a chain when both sides advance (``i' < i``, ``j' < j``) and
    neither skips more than ``max_gap`` passages, as :func:`provenance.align.align` chains shingles. The
    skip absorbs length drift (a French translation runs ~15 % longer than its English source, so its
    passages slowly fall behind). Both sides must advance: passages overlap by half, so a neighbour's
    cosine is high too, and a chain allowed to stand still would zig-zag through neighbours to add up
    cosines. Runs are disjoint in draft passages; at most ``limit`` are returned.
    """
    sim = np.asarray(sim, dtype=np.float32)
    n_d, n_s = len(draft_spans), len(source_spans)
    if sim.shape != (n_d, n_s):
        raise ValueError(f"sim has shape {sim.shape}, expected ({n_d}, {n_s}) from the spans")
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0, not {max_gap}")
    cells = [(int(i), int(j)) for i, j in zip(*np.nonzero(sim >= cell_threshold))]  # row-major order
    if not cells:
        return []
    reach = max_gap + 1
    best: dict[tuple[int, int], float] = {}
    back: dict[tuple[int, int], tuple[int, int] | None] = {}
    # Row-major order visits every predecessor (i' < i, j' < j) before its successor.
    for i, j in cells:
        s = float(sim[i, j])
        top, prev = s, None
        for pi in range(max(0, i - reach), i):
            for pj in range(max(0, j - reach), j):
                if (pi, pj) not in best:
                    continue
                if best[(pi, pj)] + s > top:
                    top, prev = best[(pi, pj)] + s, (pi, pj)
        best[(i, j)], back[(i, j)] = top, prev

    runs: list[AlignedRun] = []
    used_rows: set[int] = set()
    for end in sorted(best, key=lambda c: (-best[c], c)):
        if len(runs) >= limit:
            break
        chain: list[tuple[int, int]] = []
        cur: tuple[int, int] | None = end
        while cur is not None:
            chain.append(cur)
            cur = back[cur]
        chain.reverse()
        # Trim the part of the chain that overlaps an earlier (better) run, keeping the tail after it.
        keep: list[tuple[int, int]] = []
        for c in chain:
            if c[0] in used_rows:
                keep = []
            else:
                keep.append(c)
        if not keep:
            continue
        used_rows.update(i for i, _ in keep)
        scores = [float(sim[i, j]) for i, j in keep]
        d_idx = sorted({i for i, _ in keep})
        s_idx = sorted({j for _, j in keep})
        runs.append(AlignedRun(
            pairs=tuple((i, j, round(float(sim[i, j]), 6)) for i, j in keep),
            draft_span=(draft_spans[d_idx[0]][0], draft_spans[d_idx[-1]][1]),
            source_span=(source_spans[s_idx[0]][0], source_spans[s_idx[-1]][1]),
            score=float(np.mean(scores)), min_score=float(min(scores)),
            draft_passages=len(d_idx), source_passages=len(s_idx)))
    runs.sort(key=lambda r: (-r.length, -r.score))
    return runs


@dataclass(frozen=True)
class SentenceAlignment:
    """The best in-order chain of sentence pairs between two passages (see :func:`sentence_alignment`)."""

    #: Sentences on the shorter side of the chain.
    length: int
    #: Lowest cosine of the chain's pairs.
    min_score: float
    #: Mean cosine of the chain's pairs.
    score: float
    #: Lowest margin of a pair over every other pair in its row and column: how clearly each draft sentence
    #: has one source sentence as its counterpart.
    margin: float


def sentence_alignment(sim: np.ndarray, *, cell_threshold: float) -> SentenceAlignment:
    """How one-to-one, and in order, the sentences of two passages correspond.

    ``sim``: cosines of the draft passage's sentences (rows) with the source passage's (columns). Chains are
    :func:`aligned_runs` of pairs >= ``cell_threshold``; the best has the most sentences, then the largest
    lowest margin. A reworded passage keeps its source's sentences in order, each matching its counterpart
    far better than any other sentence; a passage written independently on the same topic resembles every
    sentence of the other a little (high cosines everywhere, small margins). ``length`` is 0 when no pair
    reaches the threshold.
    """
    sim = np.asarray(sim, dtype=np.float32)
    n_d, n_s = sim.shape
    best = SentenceAlignment(0, 0.0, 0.0, -1.0)
    if not n_d or not n_s:
        return best
    spans_d: list[Span] = [(0, 0)] * n_d
    spans_s: list[Span] = [(0, 0)] * n_s
    for run in aligned_runs(sim, spans_d, spans_s, cell_threshold=cell_threshold):
        margins = []
        for i, j, c in run.pairs:
            others = np.concatenate([np.delete(sim[i], j), np.delete(sim[:, j], i)])
            margins.append(c - (float(others.max()) if others.size else 0.0))
        found = SentenceAlignment(run.length, run.min_score, run.score, float(min(margins)))
        if (found.length, found.margin) > (best.length, best.margin):
            best = found
    return best


# ---------------------------------------------------------------------------------------------------
# Language guess

# Frequent function words, written as textnorm folds them (lower case, accents stripped). Words shared
# by several languages ("a", "de", "en", "la") still help: the profile as a whole decides.
_PROFILES: dict[str, frozenset[str]] = {lang: frozenset(words.split()) for lang, words in {
    "en": "the of and to in is that for it as with was on be by are this from or which an not have "
          "has but at can if when their they its will these there been other all more than into only "
          "see use used may must should does one another each any also such where after before then "
          "returns function following both same how what who would",
    "de": "der die das und ist nicht ein eine zu den von mit sich des auf fur im dem werden wird auch "
          "als an oder bei aus wenn nach einer eines einem sind kann uber wie nur noch diese dieser "
          "siehe zuruck wurde durch zum zur dass sie es kein keine muss sollte gibt alle beim unter",
    "fr": "le la les et des est un une du en que qui dans pour pas sur au par ce il sont avec ou plus "
          "cette ne se sa son aux leurs peut lorsque etre si elle ces comme mais voir renvoie fonction "
          "dont ont sont aussi tous toutes lors sans",
    "es": "el la los las de y que en un una es por con para del se no al lo como mas su sus este esta "
          "pero si cuando son puede ser entre sobre tambien hay desde estos vease devuelve funcion "
          "estas todos otro otra sin",
    "it": "il la di che e un una per non del della con sono dei nel le da al si gli lo come questo "
          "questa piu anche ma se quando essere viene puo alla delle nella vedere restituisce funzione "
          "degli sul sulla tutti",
    "pt": "o a os as de e que em um uma para com nao do da dos das no na por se ao mais como ser pelo "
          "pela este esta quando pode sao tambem seu sua veja retorna funcao",
    "nl": "de het een en van is dat op in te niet met voor zijn er aan door als bij om ook dan maar "
          "wordt worden deze dit kan naar uit wanneer zie functie geeft",
    "pl": "i w nie na sie z do jest to ze co jak lub oraz przez dla tak od po byc gdy jesli ten ta "
          "tego jego moze sa jako tylko przy zobacz funkcja",
    "sv": "och att det som en ar av for med till den pa har inte om ett de kan vid eller fran nar "
          "sig ocksa denna detta under se funktion",
    # Added for languages the Debian translations hold beyond the first nine (bench/RESULTS.md,
    # "Translated copies in held-out languages"): before them Czech text was guessed Polish, Danish
    # Swedish, and Turkish, Romanian, Hungarian, Finnish and Indonesian text undetermined. Words another
    # profile has ("de", "el", "es", "se") are left out: sharing them cost Spanish 2 points against
    # Portuguese. Danish still reads as Swedish or undetermined more often than not, and Norwegian as
    # Swedish (a Norwegian profile added nothing).
    "da": "og ikke af efter sig blev bliver kun hvad nogle mig dig findes angiver hvis skal vil eller "
          "er til",
    "cs": "je jsou nebo pro ale jen byt pri uz jeho ktery ktera ktere kdyz pokud muze neni tento tato "
          "toto take vsechny jejich nez podle bude mezi soubor",
    "ro": "cu pe sunt pentru sau din mai lui ale unei unui daca acest aceasta poate fost dupa intr prin "
          "cand acesta fie care nu",
    "hu": "az hogy nem egy csak van mint ez azt vagy kell lehet mar volt lesz ami ahol akkor sem pedig "
          "eseten amely ezt nincs alapertelmezett",
    "fi": "ja ei etta kun tai joka jos niin mutta ovat myos vain kanssa sen sita tama taman voi ole "
          "kuin eli jotka mika mita oletus tiedosto",
    "tr": "ve bir bu icin ile olarak cok daha gibi ama her kadar sonra once ise veya degil var yok ki "
          "olan sadece eger bunu tum diger ayni gore tarafindan sekilde dosya",
    "id": "yang dan ini itu dengan untuk tidak dari dalam akan pada ke atau juga ada oleh adalah dapat "
          "bisa jika sudah karena saat secara berkas",
}.items()}
# A word in several profiles ("de", "la", "en") says less: it counts 1/k for each of its k languages.
_WEIGHT: dict[str, float] = {}
for _prof in _PROFILES.values():
    for _w in _prof:
        _WEIGHT[_w] = _WEIGHT.get(_w, 0.0) + 1.0
_WEIGHT = {w: 1.0 / k for w, k in _WEIGHT.items()}

# Scripts that name their language well enough for evidence (first letter's Unicode name prefix).
_SCRIPTS = {"CYRILLIC": "ru", "GREEK": "el", "ARABIC": "ar", "HEBREW": "he", "HANGUL": "ko", "THAI": "th",
            "HIRAGANA": "ja", "KATAKANA": "ja", "CJK": "zh", "DEVANAGARI": "hi"}


@lru_cache(maxsize=8192)
def _script(ch: str) -> str:
    """The first word of a letter's Unicode name (``LATIN``, ``CYRILLIC``, ``CJK``, ...)."""
    name = unicodedata.name(ch, "")
    return name.split(" ", 1)[0] if name else "OTHER"


def _script_counts(chars: Counter[str]) -> Counter[str]:
    """Letters per script, from the counts of each character (``Counter(text)``, counted in C): each
    distinct letter is named once. A check guesses the language of every passage window, and naming every
    character took most of that time."""
    counts: Counter[str] = Counter()
    for ch, n in chars.items():
        if ch.isalpha():
            counts[_script(ch)] += n
    return counts


# Letters of the Arabic script only Urdu, or Persian and Urdu, write (Persian and Urdu also write their own
# yeh and keheh, U+06CC and U+06A9, where Arabic writes U+064A and U+0643); a text without them is Arabic.
_ARABIC_SCRIPT_MARKS = (("ur", "ٹڈڑںے"), ("fa", "پچژگکی"))


def _arabic_script_language(chars: Counter[str], letters: int) -> str:
    """Urdu or Persian where their own letters make up at least 1 % of the ``letters`` in ``chars`` (Persian
    writes U+06CC in most words: ~5 % of the letters of the Debian Handbook's Persian translation), else
    Arabic."""
    for lang, marks in _ARABIC_SCRIPT_MARKS:
        if sum(chars[ch] for ch in marks) >= 0.01 * letters:
            return lang
    return "ar"


# Cyrillic letters only some of its languages write; a Cyrillic text without them is taken for Russian.
_CYRILLIC_MARKS = (("uk", "іїєґ"), ("mk", "ѓќѕ"), ("sr", "ђћ"), ("sr", "јљњџ"))


def _cyrillic_language(chars: Counter[str], letters: int) -> str:
    """Ukrainian, Macedonian or Serbian where their own letters (either case) make up at least 0.5 % of the
    ``letters`` in ``chars`` (the counts of each character), else Russian (measured on Debian's Russian,
    Ukrainian and Serbian manual pages: bench/RESULTS.md, "Translated copies in held-out languages")."""
    for lang, marks in _CYRILLIC_MARKS:
        if sum(chars[ch] for ch in marks + marks.upper()) >= 0.005 * letters:
            return lang
    return "ru"


def _vietnamese(chars: Counter[str], letters: int) -> bool:
    """Whether at least 2 % of the ``letters`` in ``chars`` (and three or more) are ones only Vietnamese writes
    among Latin-script languages: the horned o and u, and the vowels with two marks (Latin Extended
    Additional, U+1EA0-U+1EF9). Vietnamese words are one syllable each and share no function words with
    the profiles, which guessed it Spanish or undetermined."""
    own = sum(n for ch, n in chars.items() if ch in "ơưƠƯ" or "\u1ea0" <= ch <= "\u1ef9")
    return own >= 3 and own >= 0.02 * letters


def guess_language(text: str, *, min_hits: float = 1.5) -> str:
    """ISO 639-1 code of the language ``text`` is mostly written in, or ``"und"`` if it cannot tell.

    A non-Latin script that covers half the letters decides at once (kana anywhere makes Han text Japanese).
    Latin text is scored by how many of its words are in each language's function-word profile; the winner
    needs ``min_hits`` such words and a clear lead (1.25x) over the runner-up, else ``"und"``.
    """
    chars = Counter(text[:2000])
    scripts = _script_counts(chars)
    total = sum(scripts.values())
    if not total:
        return "und"
    # Count letters per language a script implies; kana anywhere makes Han text Japanese.
    by_lang: Counter[str] = Counter()
    kana = scripts["HIRAGANA"] + scripts["KATAKANA"] + scripts["KATAKANA-HIRAGANA"]
    for script, n in scripts.items():
        if (script == "CJK" and kana) or script.startswith(("HIRAGANA", "KATAKANA")):
            by_lang["ja"] += n
        elif script in _SCRIPTS:
            by_lang[_SCRIPTS[script]] += n
    if by_lang:
        lang, n = by_lang.most_common(1)[0]
        if n >= 0.5 * total:
            if lang == "ru":
                return _cyrillic_language(chars, total)
            return _arabic_script_language(chars, total) if lang == "ar" else lang
    if _vietnamese(chars, total):
        return "vi"
    words = tokenize(text[:5000]).words
    # One-letter words are left out: in formulas and option lists they are variables, not articles.
    words = [w for w in words if len(w) > 1]
    hits = {lang: sum(_WEIGHT[w] for w in words if w in prof) for lang, prof in _PROFILES.items()}
    ranked = sorted(hits.items(), key=lambda kv: -kv[1])
    (lang, top), (_, second) = ranked[0], ranked[1]
    if top < min_hits or top < 1.5 * second:
        return "und"
    return lang

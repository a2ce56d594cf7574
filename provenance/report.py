"""Reports: the verdict for one input, with matches and the evidence a person can check.

Signals say what they measured as :class:`Observation` objects, each carrying typed :class:`Evidence`.
``decide`` is the one place where observations become a verdict, and the one place where rules that
combine signals live (a signal may declare a looser threshold that applies only when another signal
corroborates: :class:`Relaxation`). It is pure and table-tested.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

Verdict = Literal["exact", "near-duplicate", "partial", "paraphrase", "original"]

#: Strongest first. ``--fail-on V`` fails for V and anything stronger. ``partial`` (an image of which
#: only a region appears in the other: a picture pasted into a collage, a screenshot of a post, a small
#: crop) sits below ``near-duplicate`` because the rest of the picture is new, and above ``paraphrase``
#: because what does appear is the same pixels, literal reuse rather than reworded text; so
#: ``--fail-on paraphrase`` still fails a partial copy, and the default ``near-duplicate`` does not.
VERDICTS: tuple[Verdict, ...] = ("exact", "near-duplicate", "partial", "paraphrase", "original")
#: Report schema. ``/1`` plus additive fields only: ``near_misses`` and ``provenance`` (what the input
#: says about its own origin) on reports, ``value``, ``rule`` and ``passed`` in every signal's evidence;
#: ``quoted`` on matches and observations, ``boilerplate`` in shingle evidence, ``evidence`` on near misses,
#: ``score`` (calibrated) in every signal's evidence; and one additive verdict value, ``partial``.
SCHEMA = "provenance.report/1"
#: Most near misses listed on a report.
MAX_NEAR_MISSES = 3


def verdict_rank(v: str) -> int:
    """0 for the strongest verdict (``exact``) up to 4 for ``original``."""
    return list[str](VERDICTS).index(v)


@dataclass(frozen=True)
class Span:
    """A character range of a text, with a short snippet of it."""

    start: int
    end: int
    snippet: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"start": self.start, "end": self.end, "snippet": self.snippet}


class Evidence:
    """What a signal saw on one (input, indexed item) pair, in a form a person can check.

    Subclasses are dataclasses owned by their signal; renderers (table, JSON, CSV, HTML) use only these
    methods, never the signal's name.
    """

    #: Whether the draft spans of :meth:`span_pairs` are the matched words themselves (aligned runs), or
    #: the passages that contain what matched (embeddings): ``check`` judges a quotation by them
    #: (:func:`provenance.quotes.span_is_quoted`).
    exact_spans: ClassVar[bool] = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the fields of the dataclass, nested spans as dicts)."""
        return _jsonable(dataclasses.asdict(self))  # type: ignore[call-overload]

    def summary(self) -> str:
        """One line for tables and logs."""
        raise NotImplementedError

    def details(self) -> list[str]:
        """Further lines a table may show under the summary (e.g. the copied passages)."""
        return []

    def span_pairs(self) -> list[tuple[Span, Span]]:
        """``(draft span, source span)`` pairs for text evidence (what the HTML report highlights)."""
        return []

    def identical_bytes(self) -> bool:
        """Whether this evidence says the two contents are the same bytes (renderers then show one line
        instead of the content twice)."""
        return False

    def image_regions(self) -> ImageRegions | None:
        """The corresponding regions of two images, for evidence that locates them (the HTML report
        draws them over the thumbnails); ``None`` for evidence that does not."""
        return None

    def standalone(self) -> tuple[float, str] | None:
        """The value this evidence supports without another signal's help, and what that counts, when it
        differs from the observation's value (e.g. a hash distance measured on the whole image, where the
        closest pair was a border-trimmed variant); ``None`` when the value stands on its own. A
        :class:`Relaxation` whose corroborator cannot speak judges this value."""
        return None


@dataclass(frozen=True)
class ImageRegions:
    """Where two images correspond: polygons in each image's own pixel coordinates, and the transform.

    ``query_*`` are in the checked (draft) image, ``reference_*`` in the indexed one; ``*_size`` are the
    ``(width, height)`` those coordinates refer to (the decoded image, which a thumbnail scales), so a
    renderer can map a polygon onto any picture of the image. ``region`` is where the two frames overlap
    under the transform, ``matched`` the hull of the keypoints that support the match.
    """

    query_size: tuple[int, int]
    reference_size: tuple[int, int]
    query_region: tuple[tuple[float, float], ...]
    reference_region: tuple[tuple[float, float], ...]
    query_matched: tuple[tuple[float, float], ...]
    reference_matched: tuple[tuple[float, float], ...]
    #: The transform from the indexed image to the checked one, in words (``scaled 0.80×, rotated 8° ...``).
    transform: str
    #: A small picture of the indexed image (base64 JPEG) when the evidence holds one: the report shows
    #: it where the indexed image itself is not at hand (an index match; the archive has its own).
    reference_thumbnail: str | None = None


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, float):
        return round(v, 4)
    return v


@dataclass(frozen=True)
class Relaxation:
    """How another signal's observation of the same pair moves this signal's bar.

    * Corroborated: ``corroborator`` observed the pair within ``within`` (in the direction of its own
      threshold): the looser ``threshold`` applies.
    * Contradicted: it observed the pair and is farther than ``within``: the signal's own threshold
      applies, or, with ``alone=False``, the observation cannot pass (the corroborator overrules it).
    * Unavailable: it has no observation of the pair (it could not speak, e.g. an image below PDQ's
      quality gate): the signal's own threshold applies to what its evidence shows on its own
      (:meth:`Evidence.standalone`), never the looser one, since what silenced the corroborator (a flat
      picture) makes this signal's closeness least informative too.
    """

    threshold: float
    corroborator: str
    within: float
    alone: bool = True


@dataclass(frozen=True)
class Observation:
    """One signal's best value on one (input, indexed item) pair."""

    signal: str
    value: float
    threshold: float
    #: True for distances (Hamming bits), False for similarities and lengths (higher is closer).
    lower_is_closer: bool
    #: What a passing value says about the pair.
    verdict_on_match: Verdict
    #: The signal's own closeness in [0, 1] (1 = identical; e.g. the share of the draft covered): evidence,
    #: not comparable across signals. Ranking and reports use :attr:`confidence`.
    score: float = 0.0
    evidence: Evidence | None = None
    relaxation: Relaxation | None = None
    #: Which threshold rule applied (set by :func:`resolve`).
    rule: str = ""
    #: ``(chance, identity)``: the signal's value typical of unrelated content and of identical content
    #: (see :attr:`confidence`); ``None`` derives them from the threshold.
    anchors: tuple[float, float] | None = None
    #: Every draft span of the evidence lies inside a quotation the draft marks (set by ``check``,
    #: :mod:`provenance.quotes`): reported, but it does not count towards the verdict.
    quoted: bool = False
    #: Another signal's observation of the pair overrules this one (a :class:`Relaxation` with
    #: ``alone=False`` whose corroborator disagrees; set by :func:`resolve`): it cannot pass.
    overruled: bool = False

    @property
    def passed(self) -> bool:
        """Whether the value passes this observation's threshold (never when it is overruled)."""
        if self.overruled:
            return False
        return self.value <= self.threshold if self.lower_is_closer else self.value >= self.threshold

    @property
    def confidence(self) -> float:
        """The calibrated score: one scale for every signal, 0.5 exactly at the threshold as applied.

        Every signal's threshold is calibrated for the same small false-match budget on content that is
        not a copy, so the threshold is where the signals agree on what a number means: there the score is
        0.5 for all of them. Above it the score rises linearly to 1 at the identity value; below it, it
        falls linearly to 0 at the value typical of unrelated content (the ``anchors``). A score >= 0.5
        passes, whichever signal produced it, and scores rank across signals by how far past its own bar
        each value is. It is not a probability.
        """
        if self.overruled:
            return 0.0  # a stronger signal says the pair is unrelated
        chance, identity = self.anchors if self.anchors is not None else (
            (2.0 * self.threshold, 0.0) if self.lower_is_closer else (0.0, max(1.0, self.threshold)))
        t, v = self.threshold, self.value
        if self.passed:
            return 1.0 if identity == t else 0.5 + 0.5 * _clamp((v - t) / (identity - t))
        return 0.0 if chance == t else 0.5 * _clamp((v - chance) / (t - chance))

    def to_dict(self) -> dict[str, Any]:
        """The evidence's fields plus the value, threshold, rule, whether it passed and the calibrated score."""
        out = self.evidence.to_dict() if self.evidence is not None else {}
        out.update(value=round(self.value, 4), threshold=self.threshold, passed=self.passed,
                   score=round(self.confidence, 4))
        if self.rule:
            out["rule"] = self.rule
        if self.quoted:
            out["quoted"] = True
        if self.overruled:
            out["overruled"] = True
        return out

    def summary(self) -> str:
        """One line: the evidence's summary, then how the value compares with the threshold."""
        op = "<=" if self.lower_is_closer else ">="
        head = self.evidence.summary() if self.evidence is not None else f"{self.value:g}"
        verdict = "passes" if self.passed else "does not count" if self.overruled else "below the bar"
        quoted = ", inside a quotation" if self.quoted else ""
        return f"{head} ({verdict}: {op} {self.threshold:g}{', ' + self.rule if self.rule else ''}{quoted})"


def _clamp(x: float) -> float:
    return 0.0 if x < 0 else 1.0 if x > 1 else x


def resolve(observations: Sequence[Observation]) -> list[Observation]:
    """The observations with every :class:`Relaxation` settled: the bar each applies (looser when its
    corroborator agrees, its own when that cannot speak, none when it overrules), and ``rule`` says which."""
    by_signal = {o.signal: o for o in observations}
    out = []
    for o in observations:
        r = o.relaxation
        if r is None:
            out.append(o)
            continue
        other = by_signal.get(r.corroborator)
        if other is None:
            own = o.evidence.standalone() if o.evidence is not None else None
            if own is None:
                out.append(dataclasses.replace(o, rule=f"{r.corroborator} unavailable"))
            else:
                out.append(dataclasses.replace(o, value=own[0], rule=f"{r.corroborator} unavailable: {own[1]}"))
        elif (other.value <= r.within) if other.lower_is_closer else (other.value >= r.within):
            op = "<=" if other.lower_is_closer else ">="
            out.append(dataclasses.replace(o, threshold=r.threshold,
                                           rule=f"corroborated by {r.corroborator} {op} {r.within:g}"))
        elif r.alone:
            out.append(dataclasses.replace(o, rule="alone"))
        else:
            op = ">" if other.lower_is_closer else "<"
            out.append(dataclasses.replace(o, overruled=True,
                                           rule=f"overruled by {r.corroborator} {op} {r.within:g}"))
    return out


def decide(observations: Sequence[Observation]) -> Verdict:
    """The verdict for one (input, indexed item) pair: the strongest verdict of any passing signal, after
    :func:`resolve` has settled the rules that combine signals."""
    return decisive(resolve(observations))[0]


def decisive(resolved: Sequence[Observation], *,
             include_quoted: bool = False) -> tuple[Verdict, Observation | None]:
    """The verdict of already resolved observations and the observation that decided it (the closest
    passing one of the strongest verdict). Quoted observations do not count unless ``include_quoted``."""
    passing = [o for o in resolved if o.passed and (include_quoted or not o.quoted)]
    if not passing:
        return "original", None
    best = min(passing, key=lambda o: (verdict_rank(o.verdict_on_match), -o.confidence))
    return best.verdict_on_match, best


@dataclass
class Match:
    """An indexed item and what every signal observed about it."""

    id: int
    path: str | None
    source: str | None
    media: str
    verdict: Verdict
    #: The signal that decided the verdict (for a near miss: the closest signal).
    signal: str
    #: Hamming distance (distance signals) or ``None``.
    distance: float | None
    #: Calibrated score of the deciding observation (:attr:`Observation.confidence`: 0.5 at its threshold).
    score: float
    threshold: float
    observations: list[Observation] = field(default_factory=list)
    #: Why this match does not count against the input (an allowed source, the user's own disclosure),
    #: or ``None`` when it counts.
    allowed: str | None = None
    #: Why this match does not count because the draft quotes what matched (every passing observation's
    #: draft spans lie inside quotations), or ``None``.
    quoted: str | None = None

    @property
    def counts(self) -> bool:
        """Whether this match counts towards the verdict (neither allowed nor quoted)."""
        return self.allowed is None and self.quoted is None

    @property
    def evidence(self) -> dict[str, dict[str, Any]]:
        """Every signal's evidence, JSON-ready, by signal name."""
        return {o.signal: o.to_dict() for o in self.observations}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"id": self.id, "path": self.path, "source": self.source, "media": self.media,
                "verdict": self.verdict, "signal": self.signal, "distance": self.distance,
                "score": round(self.score, 4), "threshold": self.threshold, "evidence": self.evidence,
                **({"allowed": self.allowed} if self.allowed else {}),
                **({"quoted": self.quoted} if self.quoted else {})}

    def lines(self) -> list[str]:
        """What a table shows for this match: every observation's summary, then the details of the
        deciding one."""
        out = [f"{o.signal}: {o.summary()}" for o in self.observations]
        deciding = next((o for o in self.observations if o.signal == self.signal), None)
        if deciding is not None and deciding.evidence is not None:
            out += deciding.evidence.details()
        return out


def match_from(item_id: int, path: str | None, source: str | None, media: str,
               observations: Sequence[Observation]) -> Match:
    """A :class:`Match` (verdict ``original`` for a near miss) from one pair's observations.

    When only quoted observations pass, the match keeps the verdict they support (so the report says
    what was quoted) and is marked ``quoted``: it does not count towards the input's verdict.
    """
    resolved = resolve(observations)
    verdict, best = decisive(resolved)
    quoted = None
    if best is None:
        verdict, best = decisive(resolved, include_quoted=True)
        if best is not None:
            quoted = "the draft quotes the matched text (every matched span lies inside a quotation)"
    if best is None:  # a near miss: report the observation closest to its own threshold
        best = max(resolved, key=lambda o: o.confidence)
    return Match(id=item_id, path=path, source=source, media=media, verdict=verdict, signal=best.signal,
                 distance=best.value if best.lower_is_closer else None, score=best.confidence,
                 threshold=best.threshold, observations=list(resolved), quoted=quoted)


@dataclass
class Report:
    """The verdict on one input."""

    path: str
    media: str
    verdict: Verdict
    score: float
    sha256: str
    matches: list[Match] = field(default_factory=list)
    #: Signals that said nothing about this input, with the reason.
    skipped: list[dict[str, str]] = field(default_factory=list)
    #: The closest candidates that did not pass any threshold (so an ``original`` can be judged).
    near_misses: list[Match] = field(default_factory=list)
    #: What the input itself says about its origin (``provenance.origin.OriginReport``), when read.
    origin: Any = None

    def fails(self, fail_on: str) -> bool:
        """Whether this report should fail a gate set at ``fail_on`` (a verdict, or ``never``)."""
        if fail_on == "never":
            return False
        return verdict_rank(self.verdict) <= verdict_rank(fail_on)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``provenance.report/1``)."""
        return {
            "path": self.path,
            "media": self.media,
            "verdict": self.verdict,
            "score": round(self.score, 4),
            "sha256": self.sha256,
            "matches": [m.to_dict() for m in self.matches],
            "near_misses": [_near_miss(m) for m in self.near_misses],
            "skipped": self.skipped,
            **({"provenance": self.origin.to_dict()} if self.origin is not None else {}),
        }


def _near_miss(m: Match) -> dict[str, Any]:
    o = next(o for o in m.observations if o.signal == m.signal)
    # Every signal's evidence too: what kept the pair below the bar may be another signal's (a shared
    # formula marked boilerplate by the shingles while the embeddings came closest).
    return {"id": m.id, "path": m.path, "source": m.source, "signal": o.signal, "value": round(o.value, 4),
            "threshold": o.threshold, "summary": o.summary(), "evidence": m.evidence}


def reports_document(reports: Sequence[Report]) -> dict[str, Any]:
    """The ``--json`` document for several reports."""
    return {"schema": SCHEMA, "reports": [r.to_dict() for r in reports]}

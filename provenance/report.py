"""Reports: the verdict for one input, with matches and the evidence a person can check.

``decide`` is the one place where signal observations become a verdict; it is pure and table-tested.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Sequence

Verdict = Literal["exact", "near-duplicate", "paraphrase", "original"]

#: Strongest first. ``--fail-on V`` fails for V and anything stronger.
VERDICTS: tuple[Verdict, ...] = ("exact", "near-duplicate", "paraphrase", "original")
SCHEMA = "provenance.report/1"


def verdict_rank(v: str) -> int:
    """0 for the strongest verdict (``exact``) up to 3 for ``original``."""
    return VERDICTS.index(v)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Observation:
    """One signal's best value against one indexed item."""

    signal: str
    value: float
    threshold: float
    #: True for distances (Hamming bits), False for similarities and lengths (higher is closer).
    lower_is_closer: bool
    #: What a passing value says about the pair.
    verdict_on_match: str

    @property
    def passed(self) -> bool:
        return self.value <= self.threshold if self.lower_is_closer else self.value >= self.threshold


def decide(observations: Sequence[Observation]) -> Verdict:
    """The verdict for one (input, indexed item) pair: the strongest verdict of any passing signal."""
    best: Verdict = "original"
    for obs in observations:
        if obs.passed and verdict_rank(obs.verdict_on_match) < verdict_rank(best):
            best = obs.verdict_on_match  # type: ignore[assignment]
    return best


@dataclass
class Match:
    """A matched indexed item and why it matched."""

    id: int
    path: str | None
    source: str | None
    media: str
    verdict: Verdict
    #: The signal that decided the verdict.
    signal: str
    #: Hamming distance (binary signals) or ``None``.
    distance: float | None
    #: Similarity in [0, 1] (cosine, or share of the draft's words in copied regions).
    score: float
    threshold: float
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


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
            "skipped": self.skipped,
        }


def reports_document(reports: Sequence[Report]) -> dict[str, Any]:
    """The ``--json`` document for several reports."""
    return {"schema": SCHEMA, "reports": [r.to_dict() for r in reports]}

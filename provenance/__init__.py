"""provenance-checker: local-first originality checks and AI-disclosure manifests.

    import provenance
    idx = provenance.open_index("my-index", create=True)
    idx.add(["old-post.md", "photo.jpg"], source="blog")
    report = idx.check("draft.md")          # a path; or idx.check(b"...") / idx.check_text("...")
    print(report.verdict, report.matches[0].evidence if report.matches else None)
    idx.close()
"""

from __future__ import annotations

from pathlib import Path

from .checker import AddResult, Index, default_index_path
from .content import Content, load_content
from .errors import (
    BadInputError,
    ManifestError,
    MissingComponentError,
    ProvenanceError,
    ProvenanceIndexError,
    UnknownItemError,
)
from .report import SCHEMA, VERDICTS, Evidence, Match, Observation, Report, decide, reports_document
from .signals import Signal, SignalIndex, SignalSkipped

__version__ = "0.1.0"


def open_index(path: Path | str | None = None, *, create: bool = False) -> Index:
    """Open (or with ``create=True`` create) the index at ``path`` (default: ``$PROVENANCE_INDEX`` or
    ``./.provenance``)."""
    return Index.open(path, create=create)


def check(source: Path | str | bytes, *, index: Path | str | None = None) -> Report:
    """One-shot check of a file path, bytes, or text against the index at ``index``."""
    with Index.open(index) as idx:
        return idx.check(source)


__all__ = [
    "AddResult", "BadInputError", "Content", "Evidence", "Index", "ManifestError", "Match",
    "MissingComponentError", "Observation", "ProvenanceError", "ProvenanceIndexError", "Report", "SCHEMA",
    "Signal", "SignalIndex", "SignalSkipped", "UnknownItemError", "VERDICTS", "check", "decide",
    "default_index_path", "load_content", "open_index", "reports_document",
]

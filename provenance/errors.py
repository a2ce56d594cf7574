"""One exception base for the whole library, with typed subclasses.

Only the CLI maps these to exit codes; library callers catch the class they care about.
Messages name the file, the problem and, where there is one, the fix.
"""

from __future__ import annotations


class ProvenanceError(Exception):
    """Base class of every error this library raises on purpose."""


class BadInputError(ProvenanceError):
    """An input file or value cannot be used (unreadable, unsupported, corrupt, too large)."""

    def __init__(self, message: str, path: str | None = None) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class ProvenanceIndexError(ProvenanceError):
    """The catalog or a FAISS index is missing, corrupt, locked or built with other settings.

    Named so it does not shadow the builtin ``IndexError``.
    """


class MissingComponentError(ProvenanceError):
    """An optional component (model weights, native library) is not installed."""


class ManifestError(ProvenanceError):
    """A disclosure manifest cannot be built, signed, embedded or read."""


class UnknownItemError(ProvenanceError):
    """No live item has the id the caller gave (a usage error: list ids with ``provenance items``)."""

"""Every exit code of the ``provenance`` command, in one place (the README lists the same table).

Only the CLI knows exit codes; the library raises typed exceptions (:mod:`provenance.errors`), mapped here.
"""

from __future__ import annotations

from ..errors import (
    BadInputError,
    ManifestError,
    MissingComponentError,
    ProvenanceError,
    ProvenanceIndexError,
    UnknownItemError,
)

EXIT_OK = 0
#: A verdict at or above ``--fail-on``.
EXIT_MATCH = 1
#: Wrong usage: a bad option, or an item id that does not exist.
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_INDEX = 4
EXIT_MISSING = 5
EXIT_MANIFEST = 6
#: ``provenance lookup``: no recorded disclosure matches.
EXIT_NOT_FOUND = 10
#: An unexpected exception (a bug): never 1, which means "match found".
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130

#: ``provenance verify`` exit codes, one per status (documented in its help).
VERIFY_EXIT_CODES: dict[str, int] = {
    "trusted": 0,
    "valid": 0,
    "no-manifest": 10,
    "untrusted": 11,
    "tampered": 12,
    "invalid-signature": 13,
    "malformed": 14,
    "unreachable": 15,
}

#: Library exceptions and their exit codes, most specific first.
EXCEPTION_EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (UnknownItemError, EXIT_USAGE),
    (BadInputError, EXIT_BAD_INPUT),
    (ProvenanceIndexError, EXIT_INDEX),
    (MissingComponentError, EXIT_MISSING),
    (ManifestError, EXIT_MANIFEST),
    (ProvenanceError, EXIT_BAD_INPUT),
)


def exit_code_for(exc: BaseException) -> int:
    """The exit code for a library exception (the first matching entry of the table)."""
    return next(code for cls, code in EXCEPTION_EXIT_CODES if isinstance(exc, cls))

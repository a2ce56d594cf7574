"""Exact identity: the same bytes (SHA-256), or for text the same words after normalisation.

Input contract: any ``Content``. Nothing is stored beyond the catalog's own ``sha256`` and ``text_key``
columns, which every item has; the adapter looks them up.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..content import Content
from ..report import Evidence, Observation
from ..textnorm import Tokens, content_tokens, tokenize
from .base import Fingerprint, Signal, SignalIndex, Variants

if TYPE_CHECKING:
    from ..indexes.catalog import ItemRow


def text_key(text: str | Tokens) -> str:
    """Hash of the normalised word sequence: equal for texts that differ only in spacing, case,
    Unicode form, zero-width characters or homoglyphs (pass the tokens when they are already made)."""
    tokens = tokenize(text) if isinstance(text, str) else text
    return hashlib.sha256(" ".join(tokens.words).encode()).hexdigest()


@dataclass(frozen=True)
class ExactEvidence(Evidence):
    """Why two contents are the same."""

    basis: str
    sha256: str | None = None

    def summary(self) -> str:
        """e.g. ``identical bytes``."""
        return self.basis

    def identical_bytes(self) -> bool:
        """True when the SHA-256 of the bytes matched (not only the normalised text)."""
        return self.sha256 is not None


@dataclass(frozen=True)
class ExactQuery:
    sha256: str
    text_key: str | None


class ExactIndex(SignalIndex[ExactQuery]):
    """Looks up the catalog's ``sha256`` and ``text_key`` columns."""

    def store_fingerprints(self, fingerprints: Any, item: Any) -> None:
        """Nothing to store: every catalog row already has its sha256 and text key."""

    def prepare(self, content: Content, variants: Variants | None) -> ExactQuery:
        return ExactQuery(content.sha256, text_key(content_tokens(content)) if content.text is not None else None)

    def candidates(self, query: ExactQuery) -> list[int]:
        cat = self.store.catalog
        found = cat.find_sha256(query.sha256)
        ids = [found.id] if found is not None else []
        if query.text_key is not None:
            ids += [r.id for r in cat.find_text_key(query.text_key)]
        return ids

    def verify(self, query: ExactQuery, content: Content, item: ItemRow) -> Observation | None:
        if item.sha256 == query.sha256:
            ev = ExactEvidence("identical bytes", query.sha256)
        elif query.text_key is not None and item.text_key == query.text_key:
            ev = ExactEvidence("identical text after Unicode/case/space normalisation")
        else:
            return None
        return self.observation(1.0, 1.0, ev)


class ExactSignal(Signal):
    """Identical bytes, or identical normalised text."""

    name = "sha256"
    version = 1
    media = frozenset({"text", "image"})
    index_kind = "catalog"
    stores_fingerprints = False
    threshold = 1.0
    threshold_source = "exact"
    verdict_on_match = "exact"

    def fingerprint(self, content: Content) -> list[Fingerprint]:
        """Nothing beyond the item row (see the module docstring)."""
        return []

    def index(self, store: Any) -> ExactIndex:
        return ExactIndex(self, store)

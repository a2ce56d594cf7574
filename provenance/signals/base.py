"""The signal interface: one small class per fingerprinting method.

A signal turns :class:`~provenance.content.Content` into fingerprints, says which index kind stores
them (``binary`` Hamming, ``float`` inner product, or ``catalog`` for exact lookups in SQLite), and
gives a reference ``distance`` that the index search must agree with (the tests check it).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Literal, Sequence

import numpy as np

from ..content import Content

IndexKind = Literal["binary", "float", "catalog"]


@dataclass
class Fingerprint:
    """One fingerprint of one item: a hash or vector, and the text span it covers (``None`` for images)."""

    value: bytes | np.ndarray
    start: int | None = None
    end: int | None = None
    #: Signal-specific quality in [0, 100] where the signal has one (PDQ).
    quality: int | None = None
    #: Word position of a text shingle (for alignment); ``None`` elsewhere.
    position: int | None = None


class SignalSkipped(Exception):
    """Raised by ``fingerprint`` when the signal cannot say anything useful about this content."""


class Signal(ABC):
    """Base class of every signal. Subclasses set the class attributes and implement ``fingerprint``."""

    #: Stable identifier stored in the catalog.
    name: ClassVar[str]
    #: Bump when the fingerprint bytes for the same input change.
    version: ClassVar[int]
    media: ClassVar[frozenset[str]]
    index_kind: ClassVar[IndexKind]
    #: Bits (binary) or floats (float) per fingerprint; 0 for catalog signals.
    dim: ClassVar[int] = 0
    #: Match threshold: a maximum distance (binary) or a minimum similarity (float).
    threshold: ClassVar[float]
    #: Where the default threshold comes from (shown in ``provenance info`` and reports).
    threshold_source: ClassVar[str] = ""
    #: The verdict a passing match of this signal supports (see :func:`provenance.report.decide`).
    verdict_on_match: ClassVar[str] = "near-duplicate"

    def model_id(self) -> str:
        """Identity of whatever beyond the code shapes the fingerprints (a model); '' if none."""
        return ""

    def accepts(self, content: Content) -> bool:
        """Whether this signal handles ``content``'s media."""
        return content.media in self.media

    @abstractmethod
    def fingerprint(self, content: Content) -> list[Fingerprint]:
        """Fingerprints to store for ``content`` (raise :class:`SignalSkipped` with a reason)."""

    def fingerprint_many(self, contents: Sequence[Content]) -> list[list[Fingerprint] | SignalSkipped]:
        """Fingerprint several contents; signals with batched models override this."""
        out: list[list[Fingerprint] | SignalSkipped] = []
        for c in contents:
            try:
                out.append(self.fingerprint(c))
            except SignalSkipped as exc:
                out.append(exc)
        return out

    def query_variants(self, content: Content) -> list[tuple[str, list[Fingerprint]]]:
        """Fingerprints to *search* with, labelled by the transform they undo (default: as stored)."""
        return [("identity", self.fingerprint(content))]

    def distance(self, a: bytes | np.ndarray, b: bytes | np.ndarray) -> float:
        """Reference distance (binary: Hamming bits) or similarity (float: inner product)."""
        if self.index_kind == "binary":
            return hamming(bytes(a), bytes(b))
        return float(np.dot(np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)))

    def is_match(self, score: float) -> bool:
        """Whether a distance (binary) or similarity (float) passes this signal's threshold."""
        return score <= self.threshold if self.index_kind == "binary" else score >= self.threshold


def hamming(a: bytes, b: bytes) -> int:
    """Number of differing bits between two equal-length byte strings."""
    if len(a) != len(b):
        raise ValueError(f"hash lengths differ: {len(a)} vs {len(b)} bytes")
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


def bits_to_bytes(bits: np.ndarray) -> bytes:
    """Pack a 0/1 array, most significant bit first, into bytes."""
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes()

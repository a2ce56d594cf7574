"""The signal contract: everything needed to find one kind of copy, in one place.

A :class:`Signal` turns :class:`~provenance.content.Content` into fingerprints (what ``add`` stores) and
query variants (what ``check`` searches with, labelled by the transform they undo). Its
:meth:`Signal.index` returns a :class:`SignalIndex`, the adapter that knows how this signal's fingerprints
are stored in an index, how candidates are found for a query, and how one candidate is verified with the
signal's reference distance into an :class:`~provenance.report.Observation` carrying typed evidence.
This is python-threatexchange's ``SignalType`` / ``SignalTypeIndex`` split.

``Index.check``, ``audit`` and ``eval`` loop over the registered signals through this interface and never
name one; rules that combine signals live in :func:`provenance.report.decide`.
"""

from __future__ import annotations

import base64
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Protocol, TypeVar

import numpy as np

from ..content import Content
from ..report import Observation, Relaxation, Verdict

if TYPE_CHECKING:
    from pathlib import Path

    from ..indexes.catalog import Catalog, ItemRow, NewItem
    from ..indexes.vectors import VectorIndex

#: Where a signal's fingerprints live: ``binary`` (FAISS Hamming), ``float`` (FAISS inner product), or
#: ``catalog`` (SQLite tables only: exact keys, shingle postings).
IndexKind = Literal["binary", "float", "catalog"]
#: Where ``audit`` computes a signal: ``worker`` (worker processes, cached: decoded-image signals),
#: ``batch`` (the main process in batches, cached: model signals), ``inline`` (cheap, from the content).
Compute = Literal["worker", "batch", "inline"]
#: Query variants: ``(transform name, fingerprints)`` pairs.
Variants = list[tuple[str, list["Fingerprint"]]]


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

    def value_bytes(self) -> bytes:
        """The value as stored in the catalog (float vectors as little-endian float32)."""
        if isinstance(self.value, np.ndarray):
            return np.ascontiguousarray(self.value, dtype=np.float32).tobytes()
        return bytes(self.value)

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form for caches (bytes as base64, vectors flagged)."""
        out: dict[str, Any] = {"v": base64.b64encode(self.value_bytes()).decode("ascii")}
        if isinstance(self.value, np.ndarray):
            out["f32"] = True
        for k in ("start", "end", "quality", "position"):
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Fingerprint:
        """Inverse of :meth:`to_json`."""
        raw = base64.b64decode(d["v"])
        value: bytes | np.ndarray = np.frombuffer(raw, dtype=np.float32).copy() if d.get("f32") else raw
        return cls(value, d.get("start"), d.get("end"), d.get("quality"), d.get("position"))


class SignalSkipped(Exception):
    """Raised by ``fingerprint`` when the signal cannot say anything useful about this content."""


class Store(Protocol):
    """What an adapter may use of an index: the catalog and the FAISS index of a signal."""

    catalog: Catalog
    #: The index directory; adapters keep derived snapshots under ``path / "faiss"``.
    path: Path

    def vectors(self, signal: Signal) -> VectorIndex:
        """The FAISS index of ``signal``, caught up with the catalog."""
        ...


Q = TypeVar("Q")


class SignalIndex(ABC, Generic[Q]):
    """How one signal is stored in, searched in and verified against one index.

    ``prepare`` turns query variants into the adapter's own query object (``Q``); ``candidates`` finds
    indexed items worth verifying; ``verify`` measures one item with the signal's reference distance.
    The self-join that ``audit`` needs is the same search run with each archive item as the query
    (:meth:`provenance.checker.Index.self_join`), so archive pairs follow exactly ``check``'s rules.
    """

    def __init__(self, signal: Signal, store: Store) -> None:
        self.signal = signal
        self.store = store

    def store_fingerprints(self, fingerprints: Sequence[Fingerprint], item: NewItem) -> None:
        """Put an item's fingerprints into its catalog row set (default: the ``fingerprints`` table, each
        row with its :meth:`labels` entry)."""
        labels = self.labels(fingerprints, item.text)
        item.fingerprints.extend((self.signal.name, f.start, f.end, f.value_bytes(), label)
                                 for f, label in zip(fingerprints, labels))

    def labels(self, fingerprints: Sequence[Fingerprint], text: str | None) -> list[str | None]:
        """A short tag stored with each of one item's ``fingerprints`` (its text is ``text``, ``None`` for
        images), for :meth:`nothing_to_find` to read back without the vectors; default: none."""
        return [None] * len(fingerprints)

    def label_stored(self) -> int:
        """Label the stored fingerprints written before this signal labelled them (``provenance rebuild``);
        returns how many were labelled. Default: nothing to label."""
        return 0

    def nothing_to_find(self, content: Content) -> str | None:
        """Why nothing this index holds could become this signal's evidence for ``content``, asked before
        the signal's model loads or the content is fingerprinted; ``None`` (default) to search."""
        return None

    @abstractmethod
    def prepare(self, content: Content, variants: Variants | None) -> Q:
        """The query for ``content``, from cached query variants when given (``audit`` passes them), else
        computed from the content. Raise ``SignalSkipped`` to stay silent."""

    @abstractmethod
    def candidates(self, query: Q) -> list[int]:
        """Ids of indexed items worth verifying, best first (removed items may appear; they are dropped)."""

    @abstractmethod
    def verify(self, query: Q, content: Content, item: ItemRow) -> Observation | None:
        """This signal's observation of (query, item), or ``None`` when it has nothing to say."""

    def flush(self) -> None:
        """Save what the adapter derives from the catalog (called by ``Index.flush``); default: nothing."""

    def rebuild(self) -> int | None:
        """Rebuild what the adapter derives from the catalog; ``None`` when it keeps nothing (default)."""
        return None

    def observation(self, value: float, score: float, evidence: Any) -> Observation:
        """An observation with this signal's threshold, direction, verdict and relaxation."""
        s = self.signal
        return Observation(s.name, float(value), s.threshold, s.lower_is_closer, s.verdict_on_match,
                           score=float(score), evidence=evidence, relaxation=s.relaxation,
                           anchors=s.score_anchors)


class Signal(ABC):
    """Base class of every signal. Subclasses set the class attributes and implement ``fingerprint``
    and ``index``."""

    #: Stable identifier stored in the catalog.
    name: ClassVar[str]
    #: Bump when the fingerprint bytes for the same input change.
    version: ClassVar[int]
    media: ClassVar[frozenset[str]]
    index_kind: ClassVar[IndexKind]
    compute: ClassVar[Compute] = "inline"
    #: False for signals that need nothing stored per item (exact identity reads the item row itself).
    stores_fingerprints: ClassVar[bool] = True
    #: What the index's :meth:`SignalIndex.labels` tag each stored fingerprint with (e.g. ``"language"``);
    #: ``None``: no labels. ``provenance doctor`` reports rows written before the labels existed.
    fingerprint_label: ClassVar[str | None] = None
    #: Match threshold: a maximum distance (``lower_is_closer``) or a minimum value.
    threshold: ClassVar[float]
    lower_is_closer: ClassVar[bool] = False
    #: Where the default threshold comes from (shown in ``provenance info`` and reports).
    threshold_source: ClassVar[str] = ""
    #: The verdict a passing match of this signal supports (see :func:`provenance.report.decide`).
    verdict_on_match: ClassVar[Verdict] = "near-duplicate"
    #: A looser threshold that applies when another signal corroborates (see ``report.Relaxation``).
    relaxation: ClassVar[Relaxation | None] = None
    #: ``(chance, identity)`` values for the calibrated score (``Observation.confidence``): the value typical
    #: of the closest unrelated item, and of an identical one. ``None``: derived from the threshold.
    score_anchors: ClassVar[tuple[float, float] | None] = None
    #: Values ``provenance eval`` tries when it suggests a threshold for this signal.
    calibration_grid: ClassVar[tuple[float, ...]] = ()

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Signal:
        """Build the signal from index options (e.g. ``model_path``); the default ignores them."""
        return cls()

    @property
    def dim(self) -> int:
        """Bits (binary) or floats (float) per fingerprint; 0 for catalog signals."""
        return 0

    def model_id(self) -> str:
        """Identity of whatever beyond the code shapes the fingerprints (a model); '' if none."""
        return ""

    def accepts(self, media: str) -> bool:
        """Whether this signal handles content of ``media`` (``text`` or ``image``)."""
        return media in self.media

    @abstractmethod
    def fingerprint(self, content: Content) -> list[Fingerprint]:
        """Fingerprints to store for ``content`` (raise :class:`SignalSkipped` with a reason)."""

    def warm_up(self) -> Callable[[], None] | None:
        """A function that loads what this signal's first fingerprint would load (a model), or None when
        nothing is left to load (the default). The checker runs it on a background thread while other
        signals work, so a cold check loads its models side by side rather than one after the other."""
        return None

    def fingerprint_many(self, contents: Sequence[Content]) -> list[list[Fingerprint] | SignalSkipped]:
        """Fingerprint several contents; signals with batched models override this."""
        out: list[list[Fingerprint] | SignalSkipped] = []
        for c in contents:
            try:
                out.append(self.fingerprint(c))
            except SignalSkipped as exc:
                out.append(exc)
        return out

    def query_variants(self, content: Content) -> Variants:
        """Fingerprints to *search* with, labelled by the transform they undo (default: as stored)."""
        return [("identity", self.fingerprint(content))]

    def stored_from_variants(self, variants: Variants) -> list[Fingerprint]:
        """The fingerprints ``fingerprint`` would store, taken from cached query variants (so ``audit
        --add`` needs no second decode). Default: the ``identity`` variant."""
        return [f for name, fps in variants if name == "identity" for f in fps]

    @abstractmethod
    def index(self, store: Store) -> SignalIndex[Any]:
        """This signal's adapter over ``store``."""

    def distance(self, a: bytes | np.ndarray, b: bytes | np.ndarray) -> float:
        """Reference distance (binary: Hamming bits) or similarity (float: inner product)."""
        if self.index_kind == "binary":
            return hamming(bytes(a), bytes(b))
        return float(np.dot(np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)))

    def describe(self) -> dict[str, Any]:
        """What ``provenance info`` shows about this signal."""
        return {"name": self.name, "version": self.version, "media": sorted(self.media),
                "index": self.index_kind, "dim": self.dim if self.index_kind != "catalog" else None,
                "model": self.model_id() or None, "threshold": self.threshold,
                "threshold_source": self.threshold_source, "verdict_on_match": self.verdict_on_match,
                "score_anchors": list(self.score_anchors) if self.score_anchors is not None else None}


def hamming(a: bytes, b: bytes) -> int:
    """Number of differing bits between two equal-length byte strings."""
    if len(a) != len(b):
        raise ValueError(f"hash lengths differ: {len(a)} vs {len(b)} bytes")
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


def bits_to_bytes(bits: np.ndarray) -> bytes:
    """Pack a 0/1 array, most significant bit first, into bytes."""
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes()

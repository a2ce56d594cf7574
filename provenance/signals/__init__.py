"""The signal registry: the built-in signals plus any registered under the ``provenance.signals``
entry-point group (each entry point names a :class:`Signal` subclass).

Adding a built-in signal is one module and one line in ``BUILTIN``; a plugin is one module and one
entry point in its own distribution (see ``examples/``).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from ..errors import MissingComponentError
from .base import Fingerprint, Signal, SignalIndex, SignalSkipped, Variants, hamming
from .embedding import EmbedSignal
from .exact import ExactSignal
from .image import DIHEDRAL, PDQSignal, PHashSignal
from .local import LocalFeatureSignal
from .multilingual import XlingualSignal
from .text import ShingleSignal

#: Built-in signals, in the order reports list them.
BUILTIN: tuple[type[Signal], ...] = (ExactSignal, PDQSignal, PHashSignal, LocalFeatureSignal, ShingleSignal,
                                     EmbedSignal, XlingualSignal)

#: Entry-point group through which other distributions register signals.
ENTRY_POINT_GROUP = "provenance.signals"


def available() -> dict[str, type[Signal]]:
    """Every known signal class by name: built-ins first, then entry points (which cannot shadow them)."""
    found: dict[str, type[Signal]] = {cls.name: cls for cls in BUILTIN}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in found:
            continue
        try:
            cls = ep.load()
        except Exception as exc:  # a broken plugin must not take the product down
            print(f"warning: signal plugin {ep.name} ({ep.value}) cannot be loaded: {exc}", file=sys.stderr)
            continue
        if not (isinstance(cls, type) and issubclass(cls, Signal)):
            print(f"warning: entry point {ep.name} ({ep.value}) is not a provenance Signal subclass",
                  file=sys.stderr)
            continue
        found[ep.name] = cls
    return found


def load_signals(options: Mapping[str, Any] | None = None) -> list[Signal]:
    """One instance of every available signal, built with ``options`` (e.g. ``model_path``)."""
    opts = dict(options or {})
    out = []
    for name, cls in available().items():
        try:
            out.append(cls.from_options(opts))
        except MissingComponentError:
            raise
        except Exception as exc:
            raise MissingComponentError(f"signal {name} cannot start: {type(exc).__name__}: {exc}") from exc
    return out


__all__ = ["BUILTIN", "DIHEDRAL", "ENTRY_POINT_GROUP", "EmbedSignal", "ExactSignal", "Fingerprint",
           "LocalFeatureSignal", "PDQSignal", "PHashSignal", "ShingleSignal", "Signal", "SignalIndex",
           "SignalSkipped", "Variants",
           "XlingualSignal", "available", "hamming", "load_signals"]

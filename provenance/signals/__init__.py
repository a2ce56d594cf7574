"""Signal registry: the built-in signals plus any registered under the ``provenance.signals``
entry-point group (each entry point names a :class:`Signal` subclass)."""

from __future__ import annotations

from importlib.metadata import entry_points

from .base import Fingerprint, Signal, SignalSkipped, hamming
from .image import DIHEDRAL, PDQSignal, PHashSignal
from .text import EmbedSignal, ShingleSignal

BUILTIN: dict[str, type[Signal]] = {
    cls.name: cls for cls in (PDQSignal, PHashSignal, ShingleSignal, EmbedSignal)
}


def available() -> dict[str, type[Signal]]:
    """Every known signal class by name: built-ins first, then entry points (which cannot shadow them)."""
    found = dict(BUILTIN)
    for ep in entry_points(group="provenance.signals"):
        if ep.name not in found:
            found[ep.name] = ep.load()
    return found


__all__ = ["BUILTIN", "DIHEDRAL", "EmbedSignal", "Fingerprint", "PDQSignal", "PHashSignal", "ShingleSignal",
           "Signal", "SignalSkipped", "available", "hamming"]

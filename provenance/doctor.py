"""``provenance doctor``: what this installation can do and whether an index is healthy.

What a user reaches for first when something is off: which signals are installed and how long each takes
to load its model and fingerprint a probe, which optional engines and external readers are present, and
the state of the index (catalog integrity, snapshots behind the catalog, signals waiting for a back-fill,
free disk space). Read-only: it never writes into the index, and probes are made in memory.
"""

from __future__ import annotations

import io
import os
import platform
import shutil
import sqlite3
import subprocess
import time
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from .content import Content, content_from_bytes
from .errors import MissingComponentError, ProvenanceError
from .indexes.catalog import Catalog
from .indexes.vectors import VectorIndex
from .signals import Signal, SignalSkipped, load_signals

Status = Literal["ok", "warn", "fail", "absent"]
#: How a problem in each area maps to an exit code in the CLI (worst area wins).
Area = Literal["runtime", "signal", "engine", "reader", "index"]

#: Below this much free space at the index, adding a large archive can fail half-way.
LOW_DISK_BYTES = 1 << 30

#: Optional Python distributions: what each enables (install hint in the detail).
OPTIONAL_PACKAGES: tuple[tuple[str, str], ...] = (
    ("fastapi", "provenance serve (pip install 'provenance-checker[serve]')"),
    ("uvicorn", "provenance serve (pip install 'provenance-checker[serve]')"),
    ("uvloop", "faster provenance serve event loop"),
    ("httptools", "faster provenance serve HTTP parser"),
    ("invisible-watermark", "live cross-check of the watermark decoder (tests only)"),
)

#: External programs: what each is used for.
READERS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("exiftool", ("-ver",), "independent reader of the XMP/IPTC that disclose writes (tests)"),
    ("chromium", ("--version",), "renders the audit HTML report in the tests"),
)


@dataclass
class Finding:
    """One line of the diagnosis."""

    area: Area
    name: str
    status: Status
    detail: str
    #: Wall time of the probe (model load plus first fingerprint), when one ran.
    seconds: float | None = None


@dataclass
class Diagnosis:
    """Every finding, in the order they were made."""

    findings: list[Finding] = field(default_factory=list)

    def add(self, area: Area, name: str, status: Status, detail: str, seconds: float | None = None) -> Finding:
        """Record a finding and return it."""
        f = Finding(area, name, status, detail, None if seconds is None else round(seconds, 3))
        self.findings.append(f)
        return f

    def failed(self, area: Area | None = None) -> list[Finding]:
        """Findings that mean something does not work (in ``area`` when given)."""
        return [f for f in self.findings if f.status == "fail" and (area is None or f.area == area)]

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``ok`` is false when anything failed."""
        return {"ok": not self.failed(), "findings": [asdict(f) for f in self.findings]}


def _dist_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _probe_image() -> Content:
    """A textured 320x240 picture (noise plus gradients: every image signal, PDQ's quality gate included,
    has something to say about it)."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:240, 0:320]
    base = np.stack([x * 0.8, y, (x + y) * 0.4], axis=-1) + rng.normal(0, 40, (240, 320, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(buf, "PNG")
    return content_from_bytes(buf.getvalue(), "doctor-probe.png")


_PROBE_TEXT = ("The harbour was quiet before dawn. Fishing boats rocked against the pier while gulls waited on "
               "the roofs of the sheds, and the first lights came on in the bakery across the square. ") * 3


def _probe_signal(d: Diagnosis, s: Signal, probes: dict[str, Content]) -> None:
    """Fingerprint a probe with ``s`` (which loads its model) and time it."""
    media = sorted(s.media)[0]
    content = probes[media]
    t0 = time.perf_counter()
    try:
        fps = s.fingerprint(content)
        model = s.model_id()
    except SignalSkipped as exc:
        d.add("signal", s.name, "warn", f"skipped its {media} probe: {exc}", time.perf_counter() - t0)
        return
    except MissingComponentError as exc:
        d.add("signal", s.name, "fail", str(exc), time.perf_counter() - t0)
        return
    except Exception as exc:  # a plugin's bug must show up here, not end the diagnosis
        d.add("signal", s.name, "fail", f"{type(exc).__name__}: {exc}", time.perf_counter() - t0)
        return
    took = time.perf_counter() - t0
    what = f"{'/'.join(sorted(s.media))}, {s.index_kind} index, threshold {s.threshold:g}"
    if model:
        what += f", model {model}"
        if s.index_kind != "catalog":
            what += f" ({s.dim} dims)"
    d.add("signal", s.name, "ok", f"{what}; {len(fps)} fingerprint(s) of the probe, load + first use "
          f"{took:.2f} s", took)


def diagnose_installation(d: Diagnosis, *, load_models: bool = True) -> list[Signal]:
    """Runtime, signals (each probed unless ``load_models`` is false), optional packages and readers."""
    d.add("runtime", "provenance-checker", "ok",
          f"{_dist_version('provenance-checker') or 'source tree'} on Python {platform.python_version()} "
          f"({platform.system()} {platform.machine()}, {_cpu_count()} CPUs)")
    try:
        signals = load_signals()
    except ProvenanceError as exc:
        d.add("signal", "registry", "fail", str(exc))
        return []
    probes = {"text": content_from_bytes(_PROBE_TEXT.encode(), "doctor-probe.txt"), "image": _probe_image()}
    for s in signals:
        if load_models:
            _probe_signal(d, s, probes)
        else:
            d.add("signal", s.name, "ok", f"{'/'.join(sorted(s.media))}, {s.index_kind} index (not probed)")
    for dist, enables in OPTIONAL_PACKAGES:
        v = _dist_version(dist)
        d.add("engine", dist, "ok" if v else "absent", f"{v}: {enables}" if v else f"not installed: {enables}")
    for prog, args, use in READERS:
        d.add("reader", prog, *_reader(prog, args, use))
    return signals


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _reader(prog: str, args: tuple[str, ...], use: str) -> tuple[Status, str]:
    exe = shutil.which(prog) or (shutil.which("chromium-browser") if prog == "chromium" else None)
    if exe is None:
        return "absent", f"not found on PATH: {use}"
    try:
        out = subprocess.run([exe, *args], capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return "warn", f"{exe} is there but did not run ({exc}): {use}"
    return "ok", f"{exe} {out.splitlines()[0] if out else ''}".rstrip() + f": {use}"


def diagnose_index(d: Diagnosis, path: Path, signals: list[Signal]) -> None:
    """The index at ``path``: catalog integrity, counts, signals, snapshots and disk space (read-only)."""
    if not (path / "catalog.sqlite").exists():
        d.add("index", str(path), "absent", f"no index here; create it with `provenance init --index {path}`")
        return
    try:
        integrity = _quick_check(path / "catalog.sqlite")
        catalog = Catalog(path / "catalog.sqlite")
    except (sqlite3.Error, ProvenanceError) as exc:
        d.add("index", "catalog", "fail", f"{path / 'catalog.sqlite'}: cannot be opened: {exc}")
        return
    try:
        if integrity != "ok":
            d.add("index", "catalog", "fail", f"{path / 'catalog.sqlite'}: SQLite integrity check says: "
                  f"{integrity}; restore it from a backup (snapshots can be rebuilt, the catalog cannot)")
        counts = catalog.counts()
        d.add("index", "catalog", "ok" if integrity == "ok" else "fail",
              f"{path}: {counts.get('items', 0)} items ({counts.get('text_items', 0)} text, "
              f"{counts.get('image_items', 0)} image), {counts.get('removed', 0)} removed")
        known = catalog.known_signals()
        has_items = catalog.has_items()
        for s in signals:
            _index_signal(d, path, catalog, s, known.get(s.name), has_items)
    finally:
        catalog.close()
    free = shutil.disk_usage(path).free
    d.add("index", "disk", "ok" if free >= LOW_DISK_BYTES else "warn",
          f"{free / (1 << 30):.1f} GiB free at {path}")


def _quick_check(db: Path) -> str:
    # Read-only URI: a diagnosis must not create, migrate or lock-upgrade anything.
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return "; ".join(str(r[0]) for r in conn.execute("PRAGMA quick_check").fetchall())
    finally:
        conn.close()


def _index_signal(d: Diagnosis, path: Path, catalog: Catalog, s: Signal, recorded: tuple[int, str] | None,
                  has_items: bool) -> None:
    name = f"{s.name} in index"
    if recorded is None:
        if has_items and s.stores_fingerprints:
            d.add("index", name, "warn", f"installed after items were added: older items are not searched "
                  f"by it until `provenance rebuild --index {path}` back-fills them")
        return
    mine = (s.version, s.model_id())
    if recorded != mine:
        d.add("index", name, "fail", f"made by version {recorded[0]} model {recorded[1] or '-'}, this "
              f"installation makes version {mine[0]} model {mine[1] or '-'}: checks refuse this index")
        return
    if s.fingerprint_label and None in catalog.fingerprint_labels(s.name):
        d.add("index", f"{s.name} labels", "warn", f"some stored fingerprints have no {s.fingerprint_label} "
              f"(written by an older version), so checks cannot skip this signal where it has nothing to "
              f"find; `provenance rebuild --index {path}` labels them")
    if s.index_kind not in ("binary", "float"):
        return
    rows = catalog.max_fingerprint_id(s.name)
    on_disk = VectorIndex.snapshot_last_row(path / "faiss", s.name, catalog.catalog_id)
    if on_disk is None:
        status: Status = "ok" if rows == 0 else "warn"
        d.add("index", name, status, "no snapshot yet" if rows == 0 else
              f"FAISS snapshot missing or another catalog's: the next use rebuilds it from the catalog "
              f"(or run `provenance rebuild --index {path}`)")
    elif on_disk < rows:
        d.add("index", name, "ok", f"snapshot behind the catalog (row {on_disk} of {rows}): caught up on use")
    else:
        d.add("index", name, "ok", "FAISS snapshot up to date with the catalog")


def diagnose(index_path: Path | None, *, load_models: bool = True) -> Diagnosis:
    """The whole diagnosis: installation, then the index at ``index_path`` when given."""
    d = Diagnosis()
    signals = diagnose_installation(d, load_models=load_models)
    if index_path is not None:
        diagnose_index(d, Path(index_path), signals)
    return d



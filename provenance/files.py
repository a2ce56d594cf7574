"""Walking the paths a user names: files as given, folders (with ``recursive``) walked in sorted order.

Symlink loops and unreadable folders are reported through ``on_error`` and skipped, never fatal.
Hidden folders (``.git``, ``.provenance``) are not descended into.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path


def iter_files(paths: Iterable[Path], *, recursive: bool = False, exclude: Iterable[str] = (),
               on_error: Callable[[Path, str], None] | None = None) -> Iterator[Path]:
    """Yield the files named by ``paths``; folders are walked only when ``recursive`` is true."""
    patterns = list(exclude)

    def excluded(p: Path) -> bool:
        return any(fnmatch.fnmatch(p.name, pat) or fnmatch.fnmatch(str(p), pat) for pat in patterns)

    def report(p: Path, why: str) -> None:
        if on_error:
            on_error(p, why)

    for root in paths:
        if root.is_dir():
            if not recursive:
                report(root, "is a directory (use --recursive to walk it)")
                continue
            seen: set[tuple[int, int]] = set()
            yield from _walk(root, seen, excluded, report)
        elif root.exists():
            if not excluded(root):
                yield root
        else:
            report(root, "no such file")


def _walk(folder: Path, seen: set[tuple[int, int]], excluded: Callable[[Path], bool],
          report: Callable[[Path, str], None]) -> Iterator[Path]:
    try:
        st = folder.stat()
    except OSError as exc:
        report(folder, f"cannot read folder: {exc.strerror or exc}")
        return
    key = (st.st_dev, st.st_ino)
    if key in seen:
        report(folder, "symlink loop (folder already visited), skipped")
        return
    seen.add(key)
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        report(folder, f"cannot list folder: {exc.strerror or exc}")
        return
    for entry in entries:
        path = Path(entry.path)
        if excluded(path):
            continue
        try:
            is_dir = entry.is_dir()  # follows symlinks; loops are caught by ``seen``
            is_file = entry.is_file()
        except OSError as exc:
            report(path, f"cannot stat: {exc.strerror or exc}")
            continue
        if is_dir:
            if not entry.name.startswith("."):
                yield from _walk(path, seen, excluded, report)
        elif is_file:
            yield path
        elif entry.is_symlink():
            report(path, "broken symlink")

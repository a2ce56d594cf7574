"""Walking the paths a user names, and reading files with a size limit.

Files named directly are used as given (a symlink named on the command line is followed: the user chose
it). Folders (with ``recursive``) are walked in sorted order *without leaving them*: a symbolic link met
during the walk, to a file or a folder, is reported through ``on_error`` and skipped unless
``follow_links`` is true, so a link to ``~/.ssh/id_ed25519`` planted in an archive never puts a private key
into a report (issue 11). With ``follow_links``, symlink loops are reported and skipped, never fatal.
Unreadable folders are reported and skipped. Hidden folders (``.git``, ``.provenance``) are not descended
into.

:func:`read_bounded` opens first, checks the size with ``fstat`` and then reads at most the limit, so a
1 GB file is refused after reading nothing, and a device or pipe that never ends after reading the limit.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import BadInputError

#: Bytes read to choose a size limit (enough for every image magic number).
HEAD_BYTES = 16

#: The message for a symbolic link the walk does not follow.
SYMLINK_SKIPPED = "symbolic link, not followed (it may lead outside the folder; use --follow-links)"


def iter_files(paths: Iterable[Path], *, recursive: bool = False, exclude: Iterable[str] = (),
               on_error: Callable[[Path, str], None] | None = None,
               follow_links: bool = False) -> Iterator[Path]:
    """Yield the files named by ``paths``; folders are walked only when ``recursive`` is true.

    Symbolic links inside walked folders are skipped (and reported) unless ``follow_links``.
    """
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
            yield from _walk(root, seen, excluded, report, follow_links)
        elif root.exists():
            if not excluded(root):
                yield root
        elif root.is_symlink():
            report(root, "broken symlink")
        else:
            report(root, "no such file")


def _walk(folder: Path, seen: set[tuple[int, int]], excluded: Callable[[Path], bool],
          report: Callable[[Path, str], None], follow_links: bool) -> Iterator[Path]:
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
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        report(folder, f"cannot list folder: {exc.strerror or exc}")
        return
    for entry in entries:
        path = Path(entry.path)
        if excluded(path):
            continue
        try:
            is_link = entry.is_symlink()
            if is_link and not follow_links:
                report(path, SYMLINK_SKIPPED)
                continue
            is_dir = entry.is_dir()  # follows symlinks only when follow_links; loops are caught by ``seen``
            is_file = entry.is_file()
        except OSError as exc:
            report(path, f"cannot stat: {exc.strerror or exc}")
            continue
        if is_dir:
            if not entry.name.startswith("."):
                yield from _walk(path, seen, excluded, report, follow_links)
        elif is_file:
            yield path
        elif is_link:
            report(path, "broken symlink")


def read_bounded(path: Path | str, max_bytes: int | Callable[[bytes], tuple[int, str]], *,
                 label: str | None = None, follow_links: bool = True) -> bytes:
    """Read ``path`` whole, refusing it (:class:`BadInputError`) when it is larger than the limit.

    ``max_bytes`` is the limit, or a function of the first :data:`HEAD_BYTES` bytes returning
    ``(limit, what)`` (e.g. a larger limit for images than for text). The size is checked with ``fstat``
    before reading; at most ``limit + 1`` bytes are ever read (for pipes and devices too).
    ``follow_links=False`` refuses a symbolic link (``O_NOFOLLOW``).
    """
    label = label or str(path)
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
    if not follow_links:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise BadInputError("no such file", label) from None
    except PermissionError:
        raise BadInputError("permission denied", label) from None
    except IsADirectoryError:
        raise BadInputError("is a directory (use --recursive to walk folders)", label) from None
    except OSError as exc:
        if not follow_links and os.path.islink(path):
            raise BadInputError(SYMLINK_SKIPPED, label) from None
        raise BadInputError(f"cannot read: {exc.strerror or exc}", label) from None
    try:
        is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
    except OSError:
        is_dir = False
    if is_dir:
        os.close(fd)
        raise BadInputError("is a directory (use --recursive to walk folders)", label)
    with os.fdopen(fd, "rb") as fh:
        return _read_open(fh, max_bytes, label)


def create_private_file(path: Path | str, mode: int = 0o600) -> bool:
    """Create ``path`` empty with ``mode`` (owner only) unless it exists; ``True`` if created.

    ``O_EXCL`` never opens a file or symlink planted in its place. An existing file keeps its mode.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def read_stream_bounded(stream: BinaryIO, max_bytes: int, label: str = "<stdin>") -> bytes:
    """Read a stream (stdin) to its end, refusing it once it passes ``max_bytes``."""
    return _read_open(stream, max_bytes, label)


def _read_open(fh: BinaryIO, max_bytes: int | Callable[[bytes], tuple[int, str]], label: str) -> bytes:
    try:
        st = os.fstat(fh.fileno())
        regular = stat.S_ISREG(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            raise BadInputError("is a directory (use --recursive to walk folders)", label)
    except (OSError, ValueError, AttributeError):  # a stream without a file descriptor (tests, pipes)
        regular, st = False, None
    try:
        head = fh.read(HEAD_BYTES) if callable(max_bytes) else b""
        limit, what = max_bytes(head) if callable(max_bytes) else (max_bytes, "this input")
        if regular and st is not None and st.st_size > limit:
            raise BadInputError(f"{what} is {st.st_size} bytes, over the {limit}-byte limit; check an excerpt "
                                "or split it", label)
        rest = fh.read(limit + 1 - len(head))
    except OSError as exc:
        raise BadInputError(f"cannot read: {exc.strerror or exc}", label) from None
    data = head + rest
    if len(data) > limit:
        raise BadInputError(f"{what} is over the {limit}-byte limit; check an excerpt or split it", label)
    return data

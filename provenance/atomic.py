"""Reading inputs and writing outputs so that a crash never leaves half a file.

Signed copies, sidecars and private keys are all written through ``atomic_write_bytes``: a
temporary file in the destination directory, fsync, ``os.replace``, fsync of the directory.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from provenance.errors import BadInputError, ManifestError

__all__ = ["atomic_write_bytes", "file_mode", "read_file_bytes"]


def read_file_bytes(path: Path, what: str) -> bytes:
    """The bytes of ``path``; a missing or unreadable file is a ``BadInputError`` naming ``what``."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise BadInputError(f"{what} file not found", str(path)) from exc
    except OSError as exc:
        raise BadInputError(f"cannot read {what} file: {exc.strerror or exc}", str(path)) from exc


def file_mode(path: Path) -> int:
    """The permission bits of ``path`` (0644 when it cannot be read), for copies of it."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o644


def atomic_write_bytes(destination: Path, data: bytes, *, mode: int) -> None:
    """Write ``data`` to ``destination`` so readers see the old file or the new, never half.

    The temporary file is created with ``mode`` already applied (os.open), so a private key
    is never readable by others, not even for the instant before a chmod.
    """
    destination = Path(destination)
    directory = destination.parent if str(destination.parent) else Path(".")
    if not directory.is_dir():
        raise BadInputError("output directory does not exist", str(directory))
    fd = -1
    temp_path = ""
    try:
        for _ in range(100):
            temp_path = os.path.join(
                directory, f".{destination.name}.{os.urandom(6).hex()}.tmp")
            try:
                fd = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - 100 random collisions
            raise ManifestError(f"{destination}: could not create a temporary file")
        os.fchmod(fd, mode)  # umask may have narrowed it; never widened beyond `mode`
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(temp_path, destination)
        temp_path = ""
        _fsync_directory(directory)
    except OSError as exc:
        raise BadInputError(f"cannot write file: {exc.strerror or exc}", str(destination)) \
            from exc
    finally:
        if fd >= 0:
            os.close(fd)
        if temp_path and os.path.exists(temp_path):
            os.unlink(temp_path)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not every platform/filesystem allows it.
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)

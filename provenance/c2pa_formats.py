"""What the C2PA SDK can embed into or read from, how we sniff a file's media type, and
where a detached (sidecar) manifest lives.

Also the one place that imports ``c2pa`` with a clear error when its native library is
missing, and the offline settings every reader and builder uses.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from provenance.errors import MissingComponentError

try:  # c2pa-python ships a native library; say how to get it rather than fail obscurely.
    import c2pa
except ImportError as exc:  # pragma: no cover - exercised only without the dependency
    raise MissingComponentError(
        "c2pa-python is not installed; install it with `pip install c2pa-python==0.38.1`"
    ) from exc

__all__ = [
    "OFFLINE_VERIFY_SETTINGS",
    "SIDECAR_SUFFIX",
    "builder_media_types",
    "c2pa",
    "reader_media_types",
    "sidecar_path_for",
    "sniff_media_type",
]

SIDECAR_SUFFIX = ".c2pa"

# Settings for every reader and builder: local-first means no network, ever. Remote
# manifest fetching would otherwise make verify() block on DNS/HTTP for an unknown time.
OFFLINE_VERIFY_SETTINGS: dict[str, Any] = {
    "remote_manifest_fetch": False,
    "ocsp_fetch": False,
}


def sidecar_path_for(path: Path) -> Path:
    """The sidecar manifest path for ``path``: the full name plus ``.c2pa``
    (``draft.md`` → ``draft.md.c2pa``), so ``a.md`` and ``a.txt`` never share one."""
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


_SUPPORTED_CACHE: dict[str, frozenset[str]] = {}


def builder_media_types() -> frozenset[str]:
    """Media types the SDK can embed a manifest into."""
    if "builder" not in _SUPPORTED_CACHE:
        _SUPPORTED_CACHE["builder"] = frozenset(
            t for t in c2pa.Builder.get_supported_mime_types() if "/" in t)
    return _SUPPORTED_CACHE["builder"]


def reader_media_types() -> frozenset[str]:
    """Media types the SDK can read an embedded manifest from."""
    if "reader" not in _SUPPORTED_CACHE:
        _SUPPORTED_CACHE["reader"] = frozenset(
            t for t in c2pa.Reader.get_supported_mime_types() if "/" in t)
    return _SUPPORTED_CACHE["reader"]


_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"%PDF-", "application/pdf"),
)


def sniff_media_type(path: Path, content: bytes) -> str:
    """Sniff the common formats from their bytes (extensions lie), else trust the name."""
    for magic, media in _MAGIC:
        if content.startswith(magic):
            return media
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    guessed = mimetypes.guess_type(path.name)[0]
    if guessed is None and path.suffix.lower() in (".md", ".markdown"):
        guessed = "text/markdown"  # not in every platform's mimetypes table
    return guessed or "application/octet-stream"

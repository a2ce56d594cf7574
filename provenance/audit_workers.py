"""The audit's worker side: read, sniff, decode and fingerprint one file, in a worker process.

Workers compute the signals whose ``compute`` is ``worker`` (those that need the decoded image), because
decoding and hashing are CPU bound and Python threads would not scale. They never import torch (forking a
process with torch loaded can deadlock); model signals run in batches in the main process.
What a worker returns is a plain dict (cheap to pickle, stored as JSON in the audit cache).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
from collections.abc import Sequence
from typing import Any

from .content import Content, content_from_bytes, input_limit
from .errors import BadInputError
from .files import read_bounded
from .signals import Signal, SignalSkipped, Variants, available
from .signals.base import Fingerprint

#: Long side of the thumbnails kept for the HTML report.
THUMB_SIDE = 160

_WORKER_SIGNALS: list[Signal] | None = None


def worker_signals() -> list[Signal]:
    """The installed signals that audit workers compute (made once per process)."""
    global _WORKER_SIGNALS
    if _WORKER_SIGNALS is None:
        _WORKER_SIGNALS = [cls.from_options({}) for cls in available().values() if cls.compute == "worker"]
    return _WORKER_SIGNALS


def variants_to_json(variants: Variants) -> list[Any]:
    """Query variants as plain JSON (see :meth:`Fingerprint.to_json`)."""
    return [[name, [f.to_json() for f in fps]] for name, fps in variants]


def variants_from_json(data: Sequence[Any]) -> Variants:
    """Inverse of :func:`variants_to_json`."""
    return [(name, [Fingerprint.from_json(f) for f in fps]) for name, fps in data]


def signal_record(signal: Signal, content: Content) -> dict[str, Any]:
    """``{"variants": ...}`` or ``{"skipped": reason}`` for one signal on one content."""
    try:
        return {"variants": variants_to_json(signal.query_variants(content))}
    except SignalSkipped as exc:
        return {"skipped": str(exc)}


def fingerprint_file(path: str, follow_links: bool = False) -> dict[str, Any]:
    """Read, sniff, decode and fingerprint one file (runs in a worker process).

    Returns ``sha256``, ``media``, ``size``, ``mtime_ns``; for images the format, size, a JPEG thumbnail
    and every worker signal's query variants under ``signals``; for texts the extracted text. On failure
    the dict carries ``error`` instead.
    """
    out: dict[str, Any] = {"path": path}
    try:
        st = os.stat(path)
        out.update(size=st.st_size, mtime_ns=st.st_mtime_ns)
        # Bounded read that never follows a link swapped in after the walk (the walk decided on links).
        data = read_bounded(path, input_limit, follow_links=follow_links)
    except OSError as exc:
        out["error"] = f"cannot read: {exc.strerror or exc}"
        return out
    except BadInputError as exc:
        out["error"] = str(exc).removeprefix(f"{path}: ")
        return out
    out["sha256"] = hashlib.sha256(data).hexdigest()
    try:
        content = content_from_bytes(data, path)
    except BadInputError as exc:
        out["error"] = str(exc).removeprefix(f"{path}: ")
        return out
    except Exception as exc:  # a decoder bug on one file must not stop the audit
        out["error"] = f"cannot decode: {type(exc).__name__}: {exc}"
        return out
    out["media"] = content.media
    if content.text is not None:
        out["text"] = content.text
    if content.original_size is not None:
        out.update(image_format=content.image_format, width=content.original_size[0],
                   height=content.original_size[1])
    out["signals"] = {s.name: signal_record(s, content) for s in worker_signals() if s.accepts(content.media)}
    if content.image is not None:
        out["thumb"] = base64.b64encode(_thumbnail(content)).decode("ascii")
    return out


def fingerprint_chunk(paths: Sequence[str], follow_links: bool = False) -> list[dict[str, Any]]:
    """:func:`fingerprint_file` for several paths (one task per chunk amortises the pickling)."""
    return [fingerprint_file(p, follow_links) for p in paths]


def _thumbnail(content: Content) -> bytes:
    from PIL import Image
    assert content.image is not None
    img = content.image.copy()
    img.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=70)
    return buf.getvalue()

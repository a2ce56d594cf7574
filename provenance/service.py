"""``provenance serve``: the index as a local HTTP service (FastAPI on uvicorn).

Other programs call this instead of importing the library or paying interpreter and model start-up on
every CLI call. Routes (all but ``/healthz`` need ``Authorization: Bearer <token>``):

* ``GET /healthz``: liveness, no authentication.
* ``GET /v1/info``: the index's signals, thresholds and counts (``provenance info --json``), plus the
  service's limits and soft-binding algorithms.
* ``POST /v1/check``: check uploaded text or images (multipart ``file`` parts, a raw ``text/*`` or
  ``image/*`` body, or JSON ``{"text": ...}``); answers the ``provenance.report/1`` document of
  ``provenance check --json`` plus the gate's outcome (``fail_on``, ``allowed_sources``, ``failed``).
* The C2PA Soft Binding Resolution API 1.x (C2PA specification, "Soft Binding Resolution API"), under
  ``/v1`` as its OpenAPI document's server URL has it: ``GET``/``POST /v1/matches/byBinding``,
  ``POST /v1/matches/byContent``, ``GET /v1/manifests/{manifestId}`` and
  ``GET /v1/services/supportedAlgorithms``. ``byReference`` is left out on purpose: it would make this
  service fetch URLs that strangers choose. A ``manifestId`` is the label of a manifest that
  ``provenance disclose`` signed and recorded in the index (``urn:c2pa:...``).
* ``GET /docs`` and ``GET /openapi.json``: the OpenAPI description (authenticated too).

Soft-binding algorithms: PDQ and pHash are *not* in C2PA's soft-binding algorithm list
(https://github.com/c2pa-org/softbinding-algorithm-list), so they are named under this project's own
prefix (``org.provenance-checker.*``, as its originality assertion is) and the algorithm list says they
are unregistered. No registered algorithm is implemented.

Concurrency: the ``Index`` (one SQLite connection, FAISS indexes) is not thread-safe, so every call that
touches it runs in one dedicated worker thread, off the event loop; image decoding of uploads runs in the
default executor first, so a bad or heavy upload is rejected without holding the index. Freshness comes
from the index itself: each search catches its FAISS index up with catalog rows that other processes
(``provenance add``) committed, and removed items are dropped by the catalog join.

FastAPI is imported here only; the library and the rest of the CLI do not need it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import hashlib
import hmac
import json
import logging
import os
import secrets
import struct
import time
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any, TypeVar

from .checker import Index
from .content import Content, content_from_bytes, load_content, sniff_image
from .errors import (
    BadInputError,
    ManifestError,
    MissingComponentError,
    ProvenanceError,
    ProvenanceIndexError,
)
from .indexes.manifests import DisclosureRow, DisclosureStore
from .report import VERDICTS, Report, reports_document, verdict_rank

try:
    from fastapi import FastAPI, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.exceptions import HTTPException as StarletteHTTPException
except ImportError as exc:  # pragma: no cover - exercised only without the extra installed
    raise MissingComponentError(
        f"the service needs FastAPI and uvicorn ({exc}); install them with "
        "pip install 'provenance-checker[serve]'") from exc

__all__ = [
    "ALGORITHMS",
    "DEFAULT_MAX_UPLOAD_BYTES",
    "TOKEN_ENV",
    "TOKEN_FILE",
    "SoftBindingAlgorithm",
    "active_manifest_only",
    "create_app",
    "extract_manifest_store",
    "load_token",
    "write_new_token",
]

log = logging.getLogger("provenance.service")

#: Environment variable holding the API token (takes precedence over the token file).
TOKEN_ENV = "PROVENANCE_SERVE_TOKEN"
#: Default token file, inside the index directory.
TOKEN_FILE = "serve.token"
#: Shortest token accepted: 128 bits of a random URL-safe token are 22 characters.
MIN_TOKEN_CHARS = 22
#: Largest request body accepted (an upload): room for a 64-megapixel JPEG, the decoder's own limit.
DEFAULT_MAX_UPLOAD_BYTES = 32 * 1024 * 1024
#: Most files in one ``/v1/check`` multipart request.
MAX_FILES_PER_CHECK = 32
#: ``maxResults`` is capped here: an unbounded answer size is a cheap way to load the service.
MAX_RESULTS_CAP = 100
#: Media type of a C2PA manifest store (JUMBF), as the Soft Binding Resolution API serves it.
C2PA_MEDIA_TYPE = "application/c2pa"
#: Weakest verdict whose matches link an asset to a manifest: a paraphrase is new wording, and
#: pointing it at someone's manifest would overclaim (the same rule as ``provenance lookup``).
MANIFEST_MIN_VERDICT = "near-duplicate"
#: The prefix under which this project names its own (unregistered) algorithms and assertions.
OWN_PREFIX = "org.provenance-checker"
SOFT_BINDING_REGISTRY = "https://github.com/c2pa-org/softbinding-algorithm-list"

_FAIL_ON = (*VERDICTS[:-1], "never")
_T = TypeVar("_T")
#: The ``maxResults`` query parameter of the Soft Binding Resolution routes.
MaxResults = Annotated[int, Query(alias="maxResults", ge=1, description=(
    f"Most manifest identifiers returned (values over {MAX_RESULTS_CAP} are capped)."))]


@dataclass(frozen=True)
class SoftBindingAlgorithm:
    """A fingerprint this service resolves as a C2PA soft binding.

    ``signal`` is the index signal whose stored fingerprints the binding value is compared with;
    ``threshold`` the largest Hamming distance that counts as a match for a bare value (no query
    variants and no second signal to corroborate it, so pHash keeps its stand-alone threshold).
    """

    alg: str
    signal: str
    bits: int
    threshold: int
    description: str

    def to_dict(self) -> dict[str, Any]:
        """The entry in ``/services/supportedAlgorithms`` (``alg`` plus what a client needs to use it)."""
        return {
            "alg": self.alg,
            "registered": False,
            "note": f"not in the C2PA soft-binding algorithm list ({SOFT_BINDING_REGISTRY}); a name of "
                    f"this service's own ({OWN_PREFIX}.*)",
            "description": self.description,
            "mediaTypes": ["image"],
            "valueBytes": self.bits // 8,
            "matchThreshold": self.threshold,
        }


ALGORITHMS: tuple[SoftBindingAlgorithm, ...] = (
    SoftBindingAlgorithm(
        f"{OWN_PREFIX}.pdq.1", "pdq", 256, 31,
        "Meta's PDQ perceptual hash: value = base64 of the 32 bytes of the 256 bits of "
        "pdqhash.compute(), most significant bit first, of the image decoded at <= 512 px on its long "
        "side; matches at Hamming distance <= 31 (Meta's operating point)."),
    SoftBindingAlgorithm(
        f"{OWN_PREFIX}.phash.1", "phash", 64, 3,
        "DCT perceptual hash (imagehash.phash, 8x8): value = base64 of its 8 bytes, most significant "
        "bit first; matches at Hamming distance <= 3 (looser distances collide on look-alike photos)."),
)
_BY_ALG = {a.alg: a for a in ALGORITHMS}


# ---------------------------------------------------------------------------------------------------------
# Errors and their HTTP answers


class UploadTooLargeError(BadInputError):
    """The request body is over the service's upload limit (HTTP 413)."""


class UnsupportedMediaError(BadInputError):
    """The upload is of a media type the service does not take (HTTP 415)."""


class NotFoundError(ProvenanceError):
    """No such manifest (HTTP 404)."""


def _status_of(exc: ProvenanceError) -> int:
    """The HTTP status for a library error, most specific class first."""
    for cls, status in ((UploadTooLargeError, 413), (UnsupportedMediaError, 415), (BadInputError, 400),
                        (NotFoundError, 404), (ProvenanceIndexError, 503), (MissingComponentError, 503)):
        if isinstance(exc, cls):
            return status
    return 500  # ManifestError and anything unforeseen: our fault, not the client's


def problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An RFC 9457 problem document: the same message the CLI prints after ``error:``."""
    return JSONResponse(
        {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail},
        status_code=status, media_type="application/problem+json", headers=headers)


# ---------------------------------------------------------------------------------------------------------
# Tokens


def _default_token_file(index_path: Path) -> Path:
    return Path(index_path) / TOKEN_FILE


def write_new_token(path: Path) -> str:
    """Write a fresh random token to ``path`` (mode 0600, replacing any old one) and return it."""
    path = Path(path)
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # Created 0600 from the start (not chmod-ed after), so the token is never readable by others; a stale
    # temporary file goes first, as O_CREAT would keep its old mode.
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    os.replace(tmp, path)
    return token


def load_token(index_path: Path, token_file: Path | None = None) -> str:
    """The API token: ``$PROVENANCE_SERVE_TOKEN`` if set, else the token file.

    Raises:
        BadInputError: no token anywhere, a token that is too short, or a token file that other users
            can read (the fix is named in the message).
    """
    env = os.environ.get(TOKEN_ENV, "").strip()
    if env:
        if len(env) < MIN_TOKEN_CHARS:
            raise BadInputError(f"${TOKEN_ENV} is {len(env)} characters; use at least {MIN_TOKEN_CHARS} "
                                "random ones (e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")
        return env
    path = Path(token_file) if token_file else _default_token_file(index_path)
    if not path.is_file():
        raise BadInputError(f"no API token: create one with `provenance serve --index {index_path} "
                            f"--new-token` or set ${TOKEN_ENV}", str(path))
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise BadInputError(f"the token file is open to other users (mode {mode:o}); "
                            f"`chmod 600 {path}` or make a new one with --new-token", str(path))
    token = path.read_text(encoding="utf-8").strip()
    if len(token) < MIN_TOKEN_CHARS:
        raise BadInputError(f"the token is {len(token)} characters, under {MIN_TOKEN_CHARS}; make a new "
                            "one with --new-token", str(path))
    return token


# ---------------------------------------------------------------------------------------------------------
# Manifest stores inside image files (JUMBF), for GET /manifests/{manifestId}

_C2PA_STORE_UUID_PREFIX = b"c2pa"  # the first four bytes of the manifest store's JUMBF type UUID


def _is_store(box: bytes) -> bool:
    """A JUMBF superbox whose description box has the C2PA manifest-store type."""
    return len(box) >= 32 and box[4:8] == b"jumb" and box[12:16] == b"jumd" and \
        box[16:20] == _C2PA_STORE_UUID_PREFIX


def _jpeg_store(data: bytes) -> bytes | None:
    # APP11 (0xFFEB) segments: "JP", box instance (2 bytes), packet sequence (4 bytes), then the JUMBF box;
    # packets after the first repeat the box header (LBox, TBox and, for LBox == 1, XLBox), which goes.
    boxes: dict[int, bytearray] = {}
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if marker in (0xDA, 0xD9):  # image data (C2PA segments come before it) or the end
            break
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        segment = data[pos + 4:pos + 2 + length]
        if marker == 0xEB and segment[:2] == b"JP" and len(segment) >= 16:
            instance = struct.unpack(">H", segment[2:4])[0]
            box = segment[8:]
            if instance not in boxes:
                boxes[instance] = bytearray(box)
            else:
                header = 16 if struct.unpack(">I", box[:4])[0] == 1 else 8
                boxes[instance] += box[header:]
        pos += 2 + length
    return next((bytes(b) for b in boxes.values() if _is_store(bytes(b))), None)


def _png_store(data: bytes) -> bytes | None:
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"caBX":
            return data[pos + 8:pos + 8 + length]
        if kind == b"IEND":
            break
        pos += 12 + length
    return None


def _webp_store(data: bytes) -> bytes | None:
    pos = 12
    while pos + 8 <= len(data):
        kind, length = struct.unpack("<4sI", data[pos:pos + 8])
        if kind == b"C2PA":
            return data[pos + 8:pos + 8 + length]
        pos += 8 + length + (length & 1)
    return None


def _tiff_store(data: bytes) -> bytes | None:
    # The C2PA tag (0xCD41, type UNDEFINED) in the first IFD of a classic TIFF; BigTIFF is not unpacked.
    order = "<" if data[:2] == b"II" else ">"
    version, ifd = struct.unpack(order + "HI", data[2:8])
    if version != 42:
        return None
    (count,) = struct.unpack(order + "H", data[ifd:ifd + 2])
    for k in range(count):
        tag, _, length, offset = struct.unpack(order + "HHII", data[ifd + 2 + 12 * k:ifd + 14 + 12 * k])
        if tag == 0xCD41:
            return data[offset:offset + length] if length > 4 else None
    return None


def _gif_colour_table(packed: int) -> int:
    return 3 * (2 << (packed & 7)) if packed & 0x80 else 0


def _gif_store(data: bytes) -> bytes | None:
    # An application extension whose first sub-block is "C2PA_GIF" plus a 3-byte code; the JUMBF box is
    # the rest of its sub-blocks, concatenated.
    pos = 13 + _gif_colour_table(data[10])
    while pos < len(data):
        kind = data[pos]
        if kind == 0x21:  # extension: label, then sub-blocks
            label, pos = data[pos + 1], pos + 2
            blocks = []
            while data[pos]:
                blocks.append(data[pos + 1:pos + 1 + data[pos]])
                pos += 1 + data[pos]
            pos += 1
            if label == 0xFF and blocks and blocks[0][:8] == b"C2PA_GIF":
                return b"".join(blocks[1:])
        elif kind == 0x2C:  # image: descriptor, local colour table, LZW code size, sub-blocks
            pos += 10 + _gif_colour_table(data[pos + 9]) + 1
            while data[pos]:
                pos += 1 + data[pos]
            pos += 1
        else:  # the trailer (0x3B) or something that is not GIF
            return None
    return None


def extract_manifest_store(asset: bytes) -> bytes | None:
    """The C2PA manifest store (JUMBF bytes, ``application/c2pa``) embedded in a JPEG, PNG, WebP, GIF or
    TIFF file, or ``None`` when there is none (or the format is not one of these).

    The C2PA SDK reads a store but does not hand its bytes out, so the containers of the images that
    ``provenance disclose`` embeds into and the index can fingerprint are unpacked here: JPEG APP11
    segments, the PNG ``caBX`` chunk, the WebP ``C2PA`` chunk, the GIF ``C2PA_GIF`` application extension
    and the TIFF tag 0xCD41.
    """
    readers = {"jpeg": _jpeg_store, "png": _png_store, "webp": _webp_store, "gif": _gif_store,
               "tiff": _tiff_store}
    reader = readers.get(sniff_image(asset) or "")
    if reader is None:
        return None
    try:
        store = reader(asset)
    except (struct.error, IndexError):  # a truncated container: treated as having no store
        return None
    if store is None or not _is_store(store):
        return None
    (declared,) = struct.unpack(">I", store[:4])
    if declared == 0:  # JUMBF's "to the end of the container"
        return store
    return store[:declared] if 8 <= declared <= len(store) else None  # shorter than it says: truncated


def _boxes(payload: bytes) -> Iterable[bytes]:
    """The JUMBF boxes laid end to end in ``payload``."""
    pos = 0
    while pos + 8 <= len(payload):
        (size,) = struct.unpack(">I", payload[pos:pos + 4])
        if size == 1:
            (size,) = struct.unpack(">Q", payload[pos + 8:pos + 16])
        elif size == 0:
            size = len(payload) - pos
        if size < 8:
            raise ManifestError("malformed JUMBF box in the stored manifest")
        yield payload[pos:pos + size]
        pos += size


def active_manifest_only(store: bytes) -> bytes:
    """A manifest store holding only the active (last) manifest of ``store``."""
    children = list(_boxes(store[8:]))
    description, manifests = children[0], [b for b in children[1:] if b[4:8] == b"jumb"]
    if not manifests:
        raise ManifestError("the stored manifest store holds no manifest")
    body = description + manifests[-1]
    return struct.pack(">I", 8 + len(body)) + b"jumb" + body


# ---------------------------------------------------------------------------------------------------------
# The index, behind one thread


class IndexWorker:
    """The open index and the one thread that ever touches it.

    SQLite connections and the FAISS wrappers are not safe to use from several threads at once, and the
    event loop must never block on a search, so every index call is queued to this thread.
    """

    def __init__(self, index_path: Path, model_path: Path | None = None) -> None:
        import faiss

        # One query at a time: FAISS's OpenMP threads only add start-up and contention per search
        # (measured on a loaded 2-core machine: a PDQ search of 2,000 hashes took ~70 ms with the default
        # threads, 0.05 ms with one). OpenMP keeps the setting per thread, so it is made on the worker.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="provenance-index",
                                        initializer=faiss.omp_set_num_threads, initargs=(1,))
        try:
            self.index: Index = self._pool.submit(Index.open, index_path, model_path=model_path).result()
            self.disclosures = self._pool.submit(DisclosureStore, self.index.catalog.db).result()
        except BaseException:
            self._pool.shutdown(wait=False)
            raise

    async def run(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """``fn(*args, **kwargs)`` on the index thread, awaited without blocking the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        """Save the FAISS snapshots, close the catalog and stop the thread."""
        try:
            self._pool.submit(self.index.close).result()
        finally:
            self._pool.shutdown(wait=True)

    # -- work done on the index thread ------------------------------------------------------------------
    def by_binding(self, algorithm: SoftBindingAlgorithm, value: bytes, max_results: int) -> list[dict]:
        """Soft Binding Resolution matches for one fingerprint value."""
        # Near copies that were only `add`-ed (no manifest) can crowd the nearest items; look further.
        nearest = self.index.find_by_fingerprint(algorithm.signal, value, 2 * max_results,
                                                 max_distance=algorithm.threshold)
        return self._manifest_matches([(item, 1.0 - d / algorithm.bits) for item, d in nearest], max_results)

    def by_content(self, content: Content, algorithm: SoftBindingAlgorithm | None,
                   max_results: int) -> list[dict]:
        """Soft Binding Resolution matches for an uploaded asset, found with every signal of a check."""
        report = self.index.check_content(content)
        kept = [m for m in report.matches if verdict_rank(m.verdict) <= verdict_rank(MANIFEST_MIN_VERDICT)]
        if algorithm is not None:  # only what that fingerprint alone says
            kept = [m for m in kept if m.evidence.get(algorithm.signal, {}).get("passed")]
            return self._manifest_matches(
                [(m.id, 1.0 - m.evidence[algorithm.signal]["distance"] / algorithm.bits) for m in kept],
                max_results)
        return self._manifest_matches([(m.id, m.score) for m in kept], max_results)

    def _manifest_matches(self, scored: list[tuple[int, float]], max_results: int) -> list[dict]:
        """``[{manifestId, similarityScore}]`` for the disclosures of the scored items, best first.

        Every recorded disclosure of an item is a manifest for that content; newest first within an item.
        """
        by_item = self.disclosures.for_items(item for item, _ in scored)
        out: list[dict] = []
        seen: set[str] = set()
        for item, score in sorted(scored, key=lambda s: -s[1]):
            for row in by_item.get(item, []):
                if row.manifest_label and row.manifest_label not in seen:
                    seen.add(row.manifest_label)
                    out.append({"manifestId": row.manifest_label,
                                "similarityScore": max(0, min(100, round(100 * score)))})
        return out[:max_results]

    def manifest(self, manifest_id: str, active_only: bool) -> bytes:
        """The stored manifest store (or only its active manifest) recorded under ``manifest_id``."""
        found = self.index.catalog.db.execute(
            "SELECT id FROM disclosures WHERE manifest_label=? ORDER BY id DESC LIMIT 1",
            (manifest_id,)).fetchone()
        row: DisclosureRow | None = self.disclosures.get(int(found[0])) if found else None
        if row is None:
            raise NotFoundError(f"no manifest {manifest_id!r} is recorded in this index")
        store = _read_recorded_store(row)
        # A later disclosure of the same file replaces its sidecar (or embedded store): then the
        # manifest this id names is no longer there, and another one must not be served in its place.
        if manifest_id.encode() not in store:
            raise NotFoundError(f"manifest {manifest_id!r} was recorded, but the file that carried it "
                                "now holds another manifest")
        return active_manifest_only(store) if active_only else store

    def info(self) -> dict[str, Any]:
        """``provenance info --json`` plus the number of recorded disclosures."""
        data = self.index.info()
        data["counts"]["disclosures"] = self.disclosures.count()
        return data


def _read_recorded_store(row: DisclosureRow) -> bytes:
    """The manifest store of a recorded disclosure, read from the file that carries it."""
    gone = NotFoundError(f"manifest {row.manifest_label!r} was recorded, but the file that carried it "
                         "is gone or has changed since")
    try:
        if not row.embedded:
            assert row.manifest_path is not None  # sidecar disclosures always record their sidecar
            return Path(row.manifest_path).read_bytes()
        asset = Path(row.output_path).read_bytes()
    except OSError:
        raise gone from None
    if hashlib.sha256(asset).hexdigest() != row.output_sha256:
        raise gone  # overwritten (often by a later disclosure): the store there is another one
    store = extract_manifest_store(asset)
    if store is None:
        raise ManifestError(f"{row.output_path}: recorded as carrying manifest {row.manifest_label!r}, "
                            "but no C2PA manifest store was found in it")
    return store


# ---------------------------------------------------------------------------------------------------------
# Request parsing


def _algorithm(alg: str) -> SoftBindingAlgorithm:
    found = _BY_ALG.get(alg)
    if found is None:
        raise BadInputError(f"alg {alg!r} is not supported here; supported: {', '.join(_BY_ALG)} "
                            "(see /v1/services/supportedAlgorithms)")
    return found


def _binding_value(algorithm: SoftBindingAlgorithm, value: str) -> bytes:
    # A '+' in a query string that the client did not percent-encode arrives as a space.
    text = value.strip().replace(" ", "+")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_" if "-" in text or "_" in text
                               else None, validate=True)
    except (binascii.Error, ValueError):
        raise BadInputError("value is not base64") from None
    if len(raw) != algorithm.bits // 8:
        raise BadInputError(f"value decodes to {len(raw)} bytes; {algorithm.alg} values are "
                            f"{algorithm.bits // 8} bytes ({algorithm.bits} bits)")
    return raw


def _upload_name(name: str | None, fallback: str) -> str:
    """A label for an upload in reports: the file name the client gave, never a path on this host."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    return base[:200] if base else fallback


def _decode_upload(data: bytes, name: str, content_type: str) -> Content:
    """Decode an upload as the CLI would (same limits and messages); ``content_type`` only says whether
    an image was promised, so a non-image sent as ``image/*`` is refused as unsupported media."""
    if content_type.startswith("image/") and data and sniff_image(data) is None:
        raise UnsupportedMediaError("not a supported image format (JPEG, PNG, WebP, GIF, BMP, TIFF)", name)
    return content_from_bytes(data, name)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _origin(data: bytes, label: str) -> Any:
    """:func:`provenance.origin.inspect_origin` of an upload, or ``None`` when it cannot be read as a file."""
    from .origin import inspect_origin
    try:
        return inspect_origin(data, name=label)
    except BadInputError:
        return None


def _fails(report: Report, fail_on: str, allowed: set[str]) -> bool:
    """``Report.fails`` with matches against allowed sources (your own archive) and quoted matches not
    counting."""
    if fail_on == "never":
        return False
    return any(verdict_rank(m.verdict) <= verdict_rank(fail_on) and m.source not in allowed and m.counts
               for m in report.matches)


# ---------------------------------------------------------------------------------------------------------
# ASGI guard: token and body size, before any route runs


class _Guard:
    """Bearer-token check (everything but ``/healthz``) and the upload size limit.

    A plain ASGI middleware: cheaper per request than Starlette's ``BaseHTTPMiddleware``, and it refuses
    strangers and oversized bodies before a byte of the body is read.
    """

    def __init__(self, app: Callable, *, token: str, max_body: int) -> None:
        self.app, self.max_body = app, max_body
        self._token = token.encode()

    def _authorized(self, header: bytes) -> bool:
        scheme, _, credentials = header.partition(b" ")
        # The scheme name is case-insensitive (RFC 9110); the token is compared in constant time.
        return scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(), self._token)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        # Behind a proxy with --root-path, uvicorn puts the prefix in front of the path; routes see it without.
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        if path != "/healthz" and not self._authorized(headers.get(b"authorization", b"")):
            why = "a valid bearer token is needed (Authorization: Bearer <token>)" \
                if b"authorization" in headers else "missing Authorization: Bearer <token> header"
            await problem(401, why, {"WWW-Authenticate": "Bearer"})(scope, receive, send)
            return
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await problem(413, f"the request body is {int(declared)} bytes, over this service's "
                               f"{self.max_body}-byte upload limit")(scope, receive, send)
            return
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:  # a chunked body with no Content-Length
                    raise UploadTooLargeError(f"the request body is over this service's {self.max_body}-byte "
                                              "upload limit")
            return message

        await self.app(scope, limited, send)


# ---------------------------------------------------------------------------------------------------------
# The application


_RAW_ASSET: dict[str, Any] = {"content": {"image/*": {"schema": {"type": "string", "format": "binary"}},
                          "text/*": {"schema": {"type": "string"}}}, "required": True}
_MATCHES_SCHEMA = {"type": "object", "properties": {"matches": {"type": "array", "items": {
    "type": "object", "required": ["manifestId"], "properties": {
        "manifestId": {"type": "string"}, "endpoint": {"type": "string"},
        "similarityScore": {"type": "integer", "minimum": 0, "maximum": 100}}}}}}
_MATCHES_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {"schema": _MATCHES_SCHEMA}}},
    400: {"description": "Invalid query or body"}}


def create_app(index_path: Path, *, token: str, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
               model_path: Path | None = None) -> FastAPI:
    """The service for the index at ``index_path``, answering requests that carry ``token``.

    The index is opened here (so a missing or damaged index fails before the port is bound) and closed,
    snapshots saved, when the application shuts down.

    Raises:
        ProvenanceIndexError: no index at ``index_path``, or one built with other settings.
        BadInputError: a token shorter than ``MIN_TOKEN_CHARS``.
    """
    if len(token) < MIN_TOKEN_CHARS:
        raise BadInputError(f"the API token must be at least {MIN_TOKEN_CHARS} characters")
    worker = IndexWorker(Path(index_path), model_path)
    started = time.time()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        worker.close()

    from . import __version__

    app = FastAPI(
        title="provenance-checker service", version=__version__, lifespan=lifespan,
        docs_url=None, redoc_url=None, openapi_url=None,  # served below, behind the token
        description="Originality checks and the C2PA Soft Binding Resolution API (1.x) over a local "
                    "index. Every route but /healthz needs `Authorization: Bearer <token>`.")
    app.state.worker = worker

    @app.exception_handler(ProvenanceError)
    async def _library_error(_: Request, exc: ProvenanceError) -> JSONResponse:
        status = _status_of(exc)
        if status >= 500:
            log.error("%s: %s", type(exc).__name__, exc)
        return problem(status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = ["{}: {}".format(".".join(str(p) for p in e.get("loc", ())[1:]) or "request", e.get("msg"))
                 for e in exc.errors()]
        return problem(400, "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return problem(500, "internal error; the server log has the details")

    # -- service -------------------------------------------------------------------------------------
    @app.get("/healthz", tags=["service"], summary="Liveness (no authentication)")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "uptime_s": round(time.time() - started, 1)}

    @app.get("/v1/info", tags=["service"], summary="The index's signals, thresholds and counts")
    async def info() -> dict[str, Any]:
        data = await worker.run(worker.info)
        data["service"] = {"version": __version__, "max_upload_bytes": max_upload_bytes,
                           "soft_binding_algorithms": [a.to_dict() for a in ALGORITHMS],
                           "by_content_signals": [s.name for s in worker.index.signals],
                           "manifest_min_verdict": MANIFEST_MIN_VERDICT}
        return data

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=request.scope.get("root_path", "") + "/openapi.json",
                                   title=app.title + " - docs")

    # -- originality check ---------------------------------------------------------------------------
    @app.post("/v1/check", tags=["check"], summary="Check text or images against the index",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "multipart/form-data": {"schema": {"type": "object", "properties": {
                      "file": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
                  "application/json": {"schema": {"type": "object", "required": ["text"], "properties": {
                      "text": {"type": "string"}, "name": {"type": "string"}}}},
                  **_RAW_ASSET["content"]}}})
    async def check(
        request: Request,
        fail_on: Annotated[str, Query(pattern="^(" + "|".join(_FAIL_ON) + ")$", description=(
            "The weakest verdict that fails the gate (as `check --fail-on`)."))] = "near-duplicate",
        allow_source: Annotated[list[str] | None, Query(description=(
            "Source labels whose matches do not fail the gate (content you may reuse); repeatable."))] = None,
        name: Annotated[str | None, Query(description="Label of a raw-body upload in the report.")] = None,
    ) -> JSONResponse:
        """Answers `provenance check --json`'s `provenance.report/1` document, plus `fail_on`,
        `allowed_sources` and `failed` (what the CLI's exit code 1 says). A bad input among several
        files is listed under `errors` and the rest are checked; when every input is bad the answer is
        that input's error."""
        inputs = await _check_inputs(request, name)
        allowed = set(allow_source or ())
        loop = asyncio.get_running_loop()
        reports: list[Report] = []
        errors: list[dict[str, str]] = []
        first_error: BadInputError | None = None
        for label, payload, ctype in inputs:
            try:
                if isinstance(payload, str):
                    reports.append(await worker.run(worker.index.check_content, load_content(payload, label),
                                                    allow_sources=allowed))
                    continue
                content = await loop.run_in_executor(None, _decode_upload, payload, label, ctype)
                report = await worker.run(worker.index.check_content, content, allow_sources=allowed)
                # What the upload says about its own origin, as `check` reports it (off the index worker).
                report.origin = await loop.run_in_executor(None, _origin, payload, label)
                reports.append(report)
            except BadInputError as exc:
                first_error = first_error or exc
                errors.append({"name": label, "error": str(exc)})
        if not reports and first_error is not None:
            raise first_error
        doc = reports_document(reports)
        doc.update(fail_on=fail_on, allowed_sources=sorted(allowed),
                   failed=any(_fails(r, fail_on, allowed) for r in reports))
        if errors:
            doc["errors"] = errors
        return JSONResponse(doc)

    # -- C2PA Soft Binding Resolution API --------------------------------------------------------------

    @app.get("/v1/matches/byBinding", tags=["soft binding resolution"], operation_id="queryByBinding",
             summary="Manifest ids for a soft-binding value", responses=_MATCHES_RESPONSE)
    async def by_binding_get(
        alg: Annotated[str, Query(description="An algorithm from /v1/services/supportedAlgorithms.")],
        value: Annotated[str, Query(description="The binding value, base64.")],
        max_results: MaxResults = 10,
    ) -> JSONResponse:
        algorithm = _algorithm(alg)
        raw = _binding_value(algorithm, value)
        return JSONResponse({"matches": await worker.run(worker.by_binding, algorithm, raw,
                                                         min(max_results, MAX_RESULTS_CAP))})

    @app.post("/v1/matches/byBinding", tags=["soft binding resolution"], operation_id="queryByLargeBinding",
              summary="Manifest ids for a soft-binding value (JSON body)", responses=_MATCHES_RESPONSE,
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                  "type": "object", "required": ["alg", "value"],
                  "properties": {"alg": {"type": "string"}, "value": {"type": "string"}}}}}}})
    async def by_binding_post(request: Request, max_results: MaxResults = 10) -> JSONResponse:
        query = _json_object(await request.body())
        alg, value = query.get("alg"), query.get("value")
        if not isinstance(alg, str) or not isinstance(value, str):
            raise BadInputError('the body must be a JSON object {"alg": "...", "value": "<base64>"}')
        return await by_binding_get(alg, value, max_results)

    @app.post("/v1/matches/byContent", tags=["soft binding resolution"], operation_id="uploadFile",
              summary="Manifest ids for an uploaded asset (fingerprinted here)",
              responses={**_MATCHES_RESPONSE, 415: {"description": "Invalid asset type"}},
              openapi_extra={"requestBody": _RAW_ASSET})
    async def by_content(
        request: Request,
        alg: Annotated[str | None, Query(description=(
            "Only this algorithm's matches (default: every signal of a check, text included)."))] = None,
        max_results: MaxResults = 10,
        hint_alg: Annotated[str | None, Query(alias="hintAlg", description="Accepted and ignored.")] = None,
        hint_value: Annotated[str | None, Query(alias="hintValue", description="Accepted and ignored.")] = None,
    ) -> JSONResponse:
        algorithm = _algorithm(alg) if alg else None
        ctype = _media_type(request)
        if not (ctype.startswith(("image/", "text/")) or ctype == "application/octet-stream"):
            raise UnsupportedMediaError(f"Content-Type {ctype or '(none)'} is not taken here; send the asset "
                                        "as image/*, text/* or application/octet-stream")
        data = await request.body()
        label = _upload_name(request.headers.get("x-filename"), "<upload>")
        content = await asyncio.get_running_loop().run_in_executor(None, _decode_upload, data, label, ctype)
        return JSONResponse({"matches": await worker.run(worker.by_content, content, algorithm,
                                                         min(max_results, MAX_RESULTS_CAP))})

    @app.get("/v1/manifests/{manifestId:path}", tags=["soft binding resolution"],
             operation_id="getManifestById", summary="The manifest store recorded under a manifest id",
             response_class=Response,
             responses={200: {"content": {C2PA_MEDIA_TYPE: {}}}, 404: {"description": "Not found"}})
    async def get_manifest(
        manifestId: str,  # the parameter's name in the C2PA OpenAPI document
        return_active: Annotated[bool, Query(alias="returnActiveManifest", description=(
            "Only the active manifest, not the whole store."))] = False,
    ) -> Response:
        data = await worker.run(worker.manifest, manifestId, return_active)
        return Response(data, media_type=C2PA_MEDIA_TYPE)

    @app.get("/v1/services/supportedAlgorithms", tags=["soft binding resolution"],
             operation_id="getSupportedBindings", summary="Soft-binding algorithms this service resolves")
    async def supported_algorithms() -> dict[str, Any]:
        return {"watermarks": [], "fingerprints": [a.to_dict() for a in ALGORITHMS]}

    def custom_openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"}}
            schema["security"] = [{"bearer": []}]
            schema["paths"]["/healthz"]["get"]["security"] = []
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = custom_openapi  # type: ignore[method-assign]
    # Inside the routes' exception handling: an over-long chunked body, raised while a route reads it,
    # still reaches the ProvenanceError handler as a 413.
    app.add_middleware(_Guard, token=token, max_body=max_upload_bytes)
    return app


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInputError(f"the body is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BadInputError("the body must be a JSON object")
    return data


async def _check_inputs(request: Request, name: str | None) -> list[tuple[str, bytes | str, str]]:
    """``(label, bytes or text, content type)`` per input of a ``/v1/check`` request."""
    ctype = _media_type(request)
    if ctype == "multipart/form-data":
        # Starlette answers malformed multipart (and too many parts) with a 400 HTTPException itself.
        form = await request.form(max_files=MAX_FILES_PER_CHECK, max_fields=MAX_FILES_PER_CHECK + 8)
        out: list[tuple[str, bytes | str, str]] = []
        for i, (field, part) in enumerate(form.multi_items()):
            if isinstance(part, str):
                if field == "text":
                    out.append((f"<text {i + 1}>", part, "text/plain"))
                continue
            label = _upload_name(part.filename, f"<upload {i + 1}>")
            out.append((label, await part.read(), (part.content_type or "").lower()))
        await form.close()
        if not out:
            raise BadInputError('the multipart body has no "file" part (and no "text" field)')
        return out
    if ctype == "application/json":
        data = _json_object(await request.body())
        text = data.get("text")
        if not isinstance(text, str):
            raise BadInputError('the JSON body needs a "text" string')
        given = data.get("name")
        return [(_upload_name(given if isinstance(given, str) else None, "<text>"), text, "text/plain")]
    if ctype.startswith(("image/", "text/")) or ctype == "application/octet-stream":
        return [(_upload_name(name, "<upload>"), await request.body(), ctype)]
    raise UnsupportedMediaError(f"Content-Type {ctype or '(none)'} is not taken here; send multipart/form-data, "
                                "application/json, image/*, text/* or application/octet-stream")



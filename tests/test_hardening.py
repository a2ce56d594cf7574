"""Hostile and damaged inputs (issue 11): snapshots bound to their catalog, damage detected and rebuilt,
private files, bounded reads, symlinks, bounded text work, workers that die with their parent.

Everything here runs the real catalog, real FAISS and real processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from provenance import Index
from provenance.indexes.catalog import Catalog, NewItem
from provenance.indexes.vectors import MAGIC, VectorIndex
from provenance.samples import sample_photo

from .conftest import jpeg_bytes

PROVENANCE = [sys.executable, "-m", "provenance.cli.main"]


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*PROVENANCE, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def _photo(seed: int) -> bytes:
    return jpeg_bytes(sample_photo(seed))


def _resized(data: bytes, factor: float = 0.6) -> bytes:
    import io
    img = Image.open(io.BytesIO(data))
    return jpeg_bytes(img.resize((int(img.width * factor), int(img.height * factor))), quality=80)


def _write_photos(folder: Path, seeds: range) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for s in seeds:
        p = folder / f"p{s}.jpg"
        p.write_bytes(_photo(s))
        out.append(p)
    return out


def _rewrite_snapshot(path: Path, edit) -> None:
    """Change a snapshot's header with ``edit(header)`` and write it back with a *valid* checksum:
    what a deliberate edit (or a bug elsewhere) would produce, so only the semantic checks can catch it."""
    raw = path.read_bytes()
    (n,) = struct.unpack(">Q", raw[len(MAGIC):len(MAGIC) + 8])
    header = json.loads(raw[len(MAGIC) + 8:len(MAGIC) + 8 + n])
    edit(header)
    h = json.dumps(header).encode()
    body = MAGIC + struct.pack(">Q", len(h)) + h + raw[len(MAGIC) + 8 + n:-32]
    path.write_bytes(body + hashlib.sha256(body).digest())


# ---------------------------------------------------------------------------------------------------
# 1. Snapshots are bound to their catalog


def test_recreated_catalog_never_trusts_the_old_snapshot(tmp_path):
    """The issue's case: delete catalog.sqlite, keep adding until the new row ids pass the old snapshot's
    last row; resized copies of the newly added images must still be found."""
    idx_dir = tmp_path / "idx"
    old = _write_photos(tmp_path / "old", range(100, 106))
    with Index.open(idx_dir, create=True) as idx:
        idx.add(old)
    old_last = VectorIndex.snapshot_last_row(idx_dir / "faiss", "pdq")
    assert old_last is not None and old_last > 0
    for suffix in ("", "-wal", "-shm"):
        Path(f"{idx_dir / 'catalog.sqlite'}{suffix}").unlink(missing_ok=True)
    new = _write_photos(tmp_path / "new", range(200, 210))
    with Index.open(idx_dir, create=True) as idx:
        idx.add(new)
        assert idx.catalog.max_fingerprint_id("pdq") > old_last  # the dangerous situation
    with Index.open(idx_dir) as idx:
        verdicts = [idx.check(_resized(p.read_bytes())).verdict for p in new]
        assert verdicts == ["near-duplicate"] * len(new)
        # ...and the old catalog's images are not "found" through the old snapshot's vectors.
        assert {idx.check(_resized(p.read_bytes())).verdict for p in old} == {"original"}


def test_lowered_last_row_in_a_valid_header_is_detected(tmp_path, capsys):
    idx_dir = tmp_path / "idx"
    with Index.open(idx_dir, create=True) as idx:
        idx.add(_write_photos(tmp_path / "a", range(300, 306)))
    snap = idx_dir / "faiss" / "pdq.faiss"
    _rewrite_snapshot(snap, lambda h: h.update(last_row=h["last_row"] // 2))
    capsys.readouterr()
    with Index.open(idx_dir) as idx:
        vi = idx.vectors(idx.pdq)
        # Without the check, catching up from the lowered row would add half of the vectors twice.
        assert len(vi) == len(list(idx.catalog.fingerprint_rows("pdq"))) == 6
        assert vi.last_row == idx.catalog.max_fingerprint_id("pdq")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "outside" in err[0] and "rebuilt it from the catalog" in err[0]


def test_header_count_is_compared_with_the_data(tmp_path, capsys):
    idx_dir = tmp_path / "idx"
    with Index.open(idx_dir, create=True) as idx:
        idx.add(_write_photos(tmp_path / "a", range(310, 313)))
    _rewrite_snapshot(idx_dir / "faiss" / "phash.faiss", lambda h: h.update(count=h["count"] + 5))
    with Index.open(idx_dir) as idx:
        assert len(idx.vectors(idx.phash)) == len(list(idx.catalog.fingerprint_rows("phash"))) == 3
    assert "header says" in capsys.readouterr().err


def test_snapshot_with_vectors_unlike_the_catalog_is_rebuilt(tmp_path, capsys):
    """Same catalog id, same row ids, different vectors (e.g. a snapshot copied from another index whose
    id was forged): the spot check against the catalog's own values catches it."""
    cat = Catalog(tmp_path / "c.sqlite", create=True)
    rng = np.random.default_rng(0)
    for i in range(30):
        cat.add_item(NewItem(sha256=f"x{i}", path=None, source=None, media="image", size=1, metadata={},
                             fingerprints=[("bits", None, None, rng.integers(0, 256, 8, dtype=np.uint8).tobytes())]))
    vi = VectorIndex(tmp_path / "faiss", "bits", 1, "", "binary", 64)
    vi.load(cat)
    vi.save()
    other = Catalog(tmp_path / "d.sqlite", create=True)
    for i in range(30):
        other.add_item(NewItem(sha256=f"y{i}", path=None, source=None, media="image", size=1, metadata={},
                               fingerprints=[("bits", None, None, rng.integers(0, 256, 8, dtype=np.uint8).tobytes())]))
    other.db.execute("UPDATE meta SET value=? WHERE key='catalog_id'", (cat.catalog_id,))
    other.catalog_id = cat.catalog_id
    again = VectorIndex(tmp_path / "faiss", "bits", 1, "", "binary", 64)
    again.load(other)
    assert "differs from the catalog" in capsys.readouterr().err
    stored = other.fingerprint_values("bits", [30])[30]
    _, ids = again.search(np.frombuffer(stored, dtype=np.uint8).reshape(1, 8), 1)
    assert ids[0][0] == 30


# ---------------------------------------------------------------------------------------------------
# 2. Damaged snapshots: detected on open, rebuilt, never a traceback or exit 1


def _damage(path: Path, how: str) -> None:
    raw = bytearray(path.read_bytes())
    (n,) = struct.unpack(">Q", raw[len(MAGIC):len(MAGIC) + 8])
    data_start = len(MAGIC) + 8 + n
    if how == "truncate-half":
        del raw[len(raw) // 2:]
    elif how == "flip-data-start":
        raw[data_start] ^= 0xFF
    elif how == "flip-data-middle":
        raw[(data_start + len(raw)) // 2] ^= 0x01
    elif how == "flip-header":
        raw[len(MAGIC) + 8 + 2] ^= 0x20
    elif how == "empty":
        raw = bytearray()
    elif how == "old-format":
        raw = bytearray(b"PROVENANCE-FAISS/1\n" + bytes(raw[len(MAGIC):]))
    path.write_bytes(bytes(raw))


@pytest.fixture(scope="module")
def photo_index(tmp_path_factory) -> tuple[Path, list[Path]]:
    d = tmp_path_factory.mktemp("damage")
    photos = _write_photos(d / "photos", range(400, 404))
    with Index.open(d / "idx", create=True) as idx:
        idx.add(photos)
    return d / "idx", photos


@pytest.mark.parametrize("how", ["truncate-half", "flip-data-start", "flip-data-middle", "flip-header", "empty",
                                 "old-format"])
def test_damaged_snapshot_is_rebuilt_by_check(tmp_path, photo_index, how):
    src, photos = photo_index
    idx_dir = tmp_path / "idx"
    import shutil
    shutil.copytree(src, idx_dir)
    _damage(idx_dir / "faiss" / "pdq.faiss", how)
    copy = tmp_path / "copy.jpg"
    copy.write_bytes(_resized(photos[0].read_bytes()))
    r = run_cli("check", "--index", str(idx_dir), "--json", str(copy))
    assert "Traceback" not in r.stderr
    assert r.returncode == 1, r.stderr  # the copy is found: exit 1 means "match", as documented
    assert json.loads(r.stdout)["reports"][0]["verdict"] == "near-duplicate"
    notes = [line for line in r.stderr.splitlines() if "pdq.faiss" in line]
    assert len(notes) == 1 and "rebuilt it from the catalog" in notes[0]
    # The rebuilt snapshot was written: the next check is silent.
    again = run_cli("check", "--index", str(idx_dir), "--json", str(copy))
    assert again.returncode == 1 and "pdq.faiss" not in again.stderr


# ---------------------------------------------------------------------------------------------------
# 7. Private files and temporary files


def test_catalog_and_snapshots_are_private_and_stale_temporaries_are_removed(tmp_path):
    idx_dir = tmp_path / "idx"
    with Index.open(idx_dir, create=True) as idx:
        idx.add(["A private draft that nobody else on this machine should read, with enough words to embed."])
    for p in [idx_dir / "catalog.sqlite", *sorted((idx_dir / "faiss").iterdir())]:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    for suffix in ("-wal", "-shm"):
        p = Path(f"{idx_dir / 'catalog.sqlite'}{suffix}")
        if p.exists():
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    # A temporary snapshot left by a killed writer (pid gone) is removed; a live writer's is kept.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = idx_dir / "faiss" / f".text-embed.faiss.{dead.pid}.abc123.tmp"
    live = idx_dir / "faiss" / f".text-embed.faiss.{os.getpid()}.def456.tmp"
    stale.write_bytes(b"x")
    live.write_bytes(b"x")
    with Index.open(idx_dir) as idx:
        idx.check("Some other text to make the check load the embedding snapshot, several words long.")
    assert not stale.exists() and live.exists()


# ---------------------------------------------------------------------------------------------------
# 3. Killed audits leave no process behind


def marked_processes(marker: str) -> list[int]:
    """Pids of live processes whose environment carries ``marker`` (children inherit it, orphans too)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if marker.encode() in (d / "environ").read_bytes():
                state = (d / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":  # a zombie holds no memory; it only waits for its parent to reap it
                    out.append(int(d.name))
        except OSError:
            continue
    return out


def kill_audit_and_count_survivors(python: str, archive: Path, tmp_path: Path, marker: str) -> tuple[int, list[int]]:
    import signal
    import time
    env = {**os.environ, "PROVENANCE_KILL_TEST": marker}
    proc = subprocess.Popen([python, "-m", "provenance.cli.main", "audit", "--index", str(tmp_path / "noidx"),
                             "--state", str(tmp_path / "state.sqlite"), "--workers", "2", "-q", str(archive)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    seen = 0
    while time.monotonic() < deadline:  # wait for the forkserver and both workers to be up
        seen = len(marked_processes(marker))
        if seen >= 4 or proc.poll() is not None:
            break
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and marked_processes(marker):
        time.sleep(0.25)
    return seen, marked_processes(marker)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_audit_leaves_no_process(tmp_path):
    import uuid
    archive = tmp_path / "archive"
    archive.mkdir()
    for i in range(300):  # enough work that the pool is busy when the kill comes
        (archive / f"img{i:03d}.png").write_bytes(jpeg_bytes(sample_photo(1000 + i, (320, 240))))
    marker = uuid.uuid4().hex
    seen, survivors = kill_audit_and_count_survivors(sys.executable, archive, tmp_path, marker)
    for pid in survivors:  # clean up before failing, so one failure does not leak into other tests
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    assert seen >= 4, "the audit never started its worker pool"
    assert survivors == [], f"{len(survivors)} processes outlived the killed audit"

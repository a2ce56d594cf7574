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
    return subprocess.run([*PROVENANCE, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout,
                          check=False)


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
        vi = idx.vectors(idx.signal("pdq"))
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
        assert len(idx.vectors(idx.signal("phash"))) == len(list(idx.catalog.fingerprint_rows("phash"))) == 3
    assert "header says" in capsys.readouterr().err


def random_bits(rng: np.random.Generator) -> bytes:
    return rng.integers(0, 256, 8, dtype=np.uint8).tobytes()


def test_snapshot_with_vectors_unlike_the_catalog_is_rebuilt(tmp_path, capsys):
    """Same catalog id, same row ids, different vectors (e.g. a snapshot copied from another index whose
    id was forged): the spot check against the catalog's own values catches it."""
    cat = Catalog(tmp_path / "c.sqlite", create=True)
    rng = np.random.default_rng(0)
    for i in range(30):
        cat.add_item(NewItem(sha256=f"x{i}", path=None, source=None, media="image", size=1, metadata={},
                             fingerprints=[("bits", None, None, random_bits(rng), None)]))
    vi = VectorIndex(tmp_path / "faiss", "bits", 1, "", "binary", 64)
    vi.load(cat)
    vi.save()
    other = Catalog(tmp_path / "d.sqlite", create=True)
    for i in range(30):
        other.add_item(NewItem(sha256=f"y{i}", path=None, source=None, media="image", size=1, metadata={},
                               fingerprints=[("bits", None, None, random_bits(rng), None)]))
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


# ---------------------------------------------------------------------------------------------------
# 4. The HTML report runs no script it did not write; 5. the walk stays inside the roots; 7. 0600 files


class _Tags:
    """Every start tag of a page with its attributes (the stdlib parser, as a browser would tokenise)."""

    def __init__(self, page: str) -> None:
        from html.parser import HTMLParser

        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        outer = self

        class P(HTMLParser):
            in_script = False

            def handle_starttag(self, tag, attrs):
                outer.tags.append((tag, dict(attrs)))
                self.in_script = tag == "script"

            def handle_endtag(self, tag):
                self.in_script = False

            def handle_data(self, data):
                if self.in_script:
                    outer.scripts.append(data)

        p = P(convert_charrefs=True)
        p.feed(page)
        p.close()


@pytest.fixture(scope="module")
def hostile_audit(tmp_path_factory):
    """An archive with a bidi-named file, symlinks to a private key outside it, and a tampered state file."""
    root = tmp_path_factory.mktemp("hostile")
    secret = root / "outside" / "id_ed25519"
    secret.parent.mkdir()
    secret.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"
                      "-----END OPENSSH PRIVATE KEY-----\n")
    archive = root / "archive"
    (archive / "sub").mkdir(parents=True)
    (archive / "photo.jpg").write_bytes(_photo(501))
    (archive / "copy.jpg").write_bytes(_resized(_photo(501)))
    (archive / "report\u202etxt.exe\u202c.txt").write_text("A text whose name hides its real extension with a "
                                                            "right-to-left override character in it.")
    os.symlink(secret, archive / "notes.txt")
    os.symlink(secret.parent, archive / "sub" / "keys")
    state = root / "state.sqlite"
    out = {k: root / f"report.{k}" for k in ("json", "csv", "html")}
    args = ["audit", str(archive), "--index", str(root / "noidx"), "--state", str(state), "-q",
            "--json", str(out["json"]), "--csv", str(out["csv"]), "--html", str(out["html"])]
    first = run_cli(*args)
    assert first.returncode == 3, first.stderr  # the skipped symlinks are reported
    # Tamper with the cached thumbnail the way the issue did: an attribute break-out and a script.
    import sqlite3
    db = sqlite3.connect(state)
    path, record = db.execute("SELECT path, record FROM files WHERE path LIKE '%photo.jpg'").fetchone()
    rec = json.loads(record)
    rec["thumb"] = 'x" onerror="alert(document.domain)" data-x="'
    rec["text"] = "<script>alert(2)</script>"
    db.execute("UPDATE files SET record=? WHERE path=?", (json.dumps(rec), path))
    db.commit()
    db.close()
    second = run_cli(*args)
    return {"root": root, "first": first, "second": second, "state": state, **out}


def test_report_csp_allows_only_its_own_hashed_script(hostile_audit):
    import base64
    page = hostile_audit["html"].read_text(encoding="utf-8")
    tags = _Tags(page)
    csp = next(a["content"] for t, a in tags.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "default-src 'none'" in csp
    assert len(tags.scripts) == 1
    digest = base64.b64encode(hashlib.sha256(tags.scripts[0].encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp


def test_tampered_state_never_becomes_markup(hostile_audit):
    page = hostile_audit["html"].read_text(encoding="utf-8")
    tags = _Tags(page)
    assert not [(t, a) for t, a in tags.tags for k in a if k.startswith("on")]  # no event handler anywhere
    assert [t for t, _ in tags.tags].count("script") == 1
    for t, a in tags.tags:
        if t == "img":
            assert a["src"].startswith("data:image/jpeg;base64,") and '"' not in a["src"]
    assert "alert(document.domain)" not in page  # the tampered thumbnail was refused outright
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page  # the tampered text shows as text


def test_bidi_controls_in_names_are_shown(hostile_audit):
    page = hostile_audit["html"].read_text(encoding="utf-8")
    assert "\u202e" not in page and "\u202c" not in page
    assert "report⟪U+202E⟫txt.exe⟪U+202C⟫.txt" in page


def test_symlinks_out_of_the_archive_are_not_followed(hostile_audit):
    import sqlite3
    for key in ("json", "csv", "html"):
        assert "PRIVATE KEY" not in hostile_audit[key].read_text(encoding="utf-8"), key
    db = sqlite3.connect(hostile_audit["state"])
    assert not [r for r in db.execute("SELECT record FROM files") if "PRIVATE KEY" in r[0]]
    db.close()
    doc = json.loads(hostile_audit["json"].read_text())
    skipped = {Path(w["path"]).name for w in doc["walk_errors"] if "not followed" in w["error"]}
    assert skipped == {"notes.txt", "keys"}


def test_reports_and_state_are_private(hostile_audit):
    for key in ("json", "csv", "html", "state"):
        assert stat.S_IMODE(hostile_audit[key].stat().st_mode) == 0o600, key


def test_follow_links_is_explicit(tmp_path):
    from provenance.files import iter_files
    target = tmp_path / "outside.txt"
    target.write_text("outside")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "own.txt").write_text("own")
    os.symlink(target, folder / "link.txt")
    errors: list[tuple[Path, str]] = []
    assert [p.name for p in iter_files([folder], recursive=True, on_error=lambda p, w: errors.append((p, w)))] \
        == ["own.txt"]
    assert [(p.name, "not followed" in w) for p, w in errors] == [("link.txt", True)]
    assert [p.name for p in iter_files([folder], recursive=True, follow_links=True)] == ["link.txt", "own.txt"]
    # A symlink named on the command line is the user's choice and is used.
    assert list(iter_files([folder / "link.txt"])) == [folder / "link.txt"]


# ---------------------------------------------------------------------------------------------------
# 6. Bounded reads and bounded text work


def test_huge_file_is_refused_before_it_is_read(tmp_path):
    huge = tmp_path / "huge.txt"
    with open(huge, "wb") as f:
        f.truncate(1_000_000_000)  # sparse: costs no disk, but reading it would cost 1 GB of memory
    with Index.open(tmp_path / "idx", create=True):
        pass
    import time
    t0 = time.perf_counter()
    # The peak is read by a small wrapper process: a child forked straight from this (large) test process
    # would inherit its high-water mark in ru_maxrss.
    wrapper = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
               "sys.exit(p.returncode)")
    proc = subprocess.run([sys.executable, "-c", wrapper, *PROVENANCE, "check", "--index", str(tmp_path / "idx"),
                           str(huge)], stderr=subprocess.PIPE, text=True)
    err, peak_kb = proc.stderr.rsplit("\n", 2)[0], int(proc.stderr.split()[-1])
    assert proc.returncode == 3 and "over the 20000000-byte limit" in err and "Traceback" not in err, err
    assert peak_kb < 700 * 1024, f"peak {peak_kb // 1024} MB"  # not 1 GB + the interpreter
    assert time.perf_counter() - t0 < 120


def test_endless_stream_is_cut_at_the_limit():
    from provenance.errors import BadInputError
    from provenance.files import read_bounded
    with pytest.raises(BadInputError, match="over the 1000-byte limit"):
        read_bounded("/dev/zero", 1000)


def test_text_work_is_bounded():
    import time

    from provenance.signals.text import (
        MAX_PASSAGE_CHARS,
        MAX_PASSAGES,
        passage_spans,
        shingle_hashes,
    )
    from provenance.textnorm import MAX_WORD_CHARS, MAX_WORDS, tokenize
    one_line = ("The quick brown fox jumps over the lazy dog and keeps running " * 300_000).strip()  # 19 MB
    t0 = time.perf_counter()
    toks = tokenize(one_line)
    spans = passage_spans(one_line)
    elapsed = time.perf_counter() - t0
    assert len(toks) == MAX_WORDS and toks.truncated
    assert len(spans) == MAX_PASSAGES and all(e - s <= MAX_PASSAGE_CHARS for s, e in spans)
    assert elapsed < 60  # about 3 s on an idle core; generous for a loaded CI machine
    blob = "x" * 1_000_000  # one "word" of a million letters
    t = tokenize(blob)
    assert len(t) == 1_000_000 // MAX_WORD_CHARS and max(e - s for s, e in zip(t.starts, t.ends)) == MAX_WORD_CHARS
    assert len(shingle_hashes(t, 5)) == len(t) - 4


def test_alignment_of_repetitive_texts_is_linear():
    import time

    from provenance.align import align
    from provenance.signals.text import shingle_hashes
    from provenance.textnorm import tokenize

    def timed(words: int) -> float:
        h = shingle_hashes(tokenize("a " * words), 5)
        t0 = time.perf_counter()
        align(h, h, 5, 8)
        return time.perf_counter() - t0

    small, large = timed(20_000), timed(200_000)
    # Quadratic before (every position of "a a a ..." matched every other): 10x the words was 100x the time.
    assert large < 30 * max(small, 0.01) and large < 20


def test_damaged_image_messages_name_no_python_objects():
    import io
    import random

    from provenance.content import content_from_bytes
    from provenance.errors import BadInputError
    buf = io.BytesIO()
    sample_photo(3).save(buf, "JPEG")
    data = buf.getvalue()
    rng = random.Random(1)
    messages = set()
    for _ in range(200):
        damaged = bytearray(data)
        for _ in range(3):
            damaged[rng.randrange(3, 200)] = rng.randrange(256)
        try:
            content_from_bytes(bytes(damaged), "x.jpg")
        except BadInputError as exc:
            messages.add(str(exc))
    assert messages and not [m for m in messages if "object at 0x" in m]
    assert any("header cannot be read" in m for m in messages)

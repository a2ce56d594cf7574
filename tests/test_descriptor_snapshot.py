"""The local-features descriptor index is a snapshot bound to its catalog (indexes/descriptors.py).

Rows read are counted by wrapping the real ``Catalog.fingerprint_rows`` (the SQLite query still runs):
a cold check that uses the snapshot reads no local-feature rows, one that catches up reads only the new
ones.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from provenance import Index
from provenance.indexes.catalog import Catalog

from .test_localfeatures import scene

SIGNAL = "local-features"
SNAPSHOT = Path("faiss") / f"{SIGNAL}.descriptors.faiss"


@pytest.fixture
def rows_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts local-feature rows that any catalog hands out through ``fingerprint_rows``."""
    seen: list[int] = []
    real = Catalog.fingerprint_rows

    def counting(self: Catalog, signal: str, after_id: int = 0) -> Iterator[tuple[int, bytes]]:
        for row in real(self, signal, after_id):
            if signal == SIGNAL:
                seen.append(row[0])
            yield row

    monkeypatch.setattr(Catalog, "fingerprint_rows", counting)
    return seen


def _pictures(tmp_path: Path, seeds: range) -> list[Path]:
    out = []
    for s in seeds:
        p = tmp_path / f"pic{s}.png"
        scene(s, (640, 480)).save(p)
        out.append(p)
    return out


def _copy_of(path: Path, tmp_path: Path) -> Path:
    """A 75 % crop rotated 5 degrees, re-encoded: only local features (and not the global hashes) see it."""
    img = Image.open(path).convert("RGB")
    w, h = img.size
    dst = tmp_path / f"copy-{path.stem}.jpg"
    part = img.crop((int(0.1 * w), int(0.1 * h), int(0.85 * w), int(0.85 * h))).rotate(
        5, resample=Image.Resampling.BICUBIC)
    part.crop((20, 20, part.width - 20, part.height - 20)).save(dst, quality=85)  # no black corners
    return dst


def _found(idx: Index, query: Path, original: Path) -> bool:
    report = idx.check(query, origin=False)
    return any(m.path == str(original) and m.evidence.get(SIGNAL, {}).get("passed") for m in report.matches)


def test_a_cold_check_uses_the_snapshot_without_reading_the_catalog_rows(tmp_path, rows_read) -> None:
    pics = _pictures(tmp_path, range(30, 36))
    with Index.open(tmp_path / "idx", create=True) as idx:
        idx.add(pics)
    assert (tmp_path / "idx" / SNAPSHOT).is_file()  # saved when the adding process closed the index
    rows_read.clear()
    with Index.open(tmp_path / "idx") as idx:
        assert _found(idx, _copy_of(pics[2], tmp_path), pics[2])
    assert rows_read == []
    # A check that caught nothing up writes nothing.
    before = (tmp_path / "idx" / SNAPSHOT).stat().st_mtime_ns
    with Index.open(tmp_path / "idx") as idx:
        idx.check(_copy_of(pics[3], tmp_path), origin=False)
    assert (tmp_path / "idx" / SNAPSHOT).stat().st_mtime_ns == before


def test_rows_added_elsewhere_are_caught_up_not_reloaded(tmp_path, rows_read) -> None:
    pics = _pictures(tmp_path, range(40, 45))
    with Index.open(tmp_path / "idx", create=True) as idx:
        idx.add(pics[:4])
    # Another writer adds a picture and never saves the snapshot (its catalog commit is all it leaves).
    other = Index.open(tmp_path / "idx")
    other.add([pics[4]])
    other.catalog.close()
    # A reader that loaded the snapshot before that sees it on its next search (caught up, not reloaded).
    rows_read.clear()
    with Index.open(tmp_path / "idx") as idx:
        assert _found(idx, _copy_of(pics[4], tmp_path), pics[4])
        assert _found(idx, _copy_of(pics[0], tmp_path), pics[0])
    assert len(rows_read) == 1
    rows_read.clear()
    with Index.open(tmp_path / "idx") as idx:  # the caught-up snapshot was saved on close
        assert _found(idx, _copy_of(pics[4], tmp_path), pics[4])
    assert rows_read == []


def test_a_snapshot_of_a_replaced_catalog_is_rebuilt(tmp_path, capfd) -> None:
    pics = _pictures(tmp_path, range(50, 53))
    with Index.open(tmp_path / "idx", create=True) as idx:
        idx.add(pics[:2])
    (tmp_path / "idx" / "catalog.sqlite").unlink()
    capfd.readouterr()
    with Index.open(tmp_path / "idx", create=True) as idx:
        idx.add([pics[2]])
        assert _found(idx, _copy_of(pics[2], tmp_path), pics[2])
        assert not _found(idx, _copy_of(pics[0], tmp_path), pics[0])
    notes = [line for line in capfd.readouterr().err.splitlines() if SNAPSHOT.name in line]
    assert len(notes) == 1 and "rebuilt" in notes[0] and "catalog" in notes[0]


def test_a_damaged_snapshot_is_rebuilt_with_one_line(tmp_path, capfd, rows_read) -> None:
    pics = _pictures(tmp_path, range(60, 64))
    with Index.open(tmp_path / "idx", create=True) as idx:
        idx.add(pics)
    path = tmp_path / "idx" / SNAPSHOT
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))
    capfd.readouterr()
    with Index.open(tmp_path / "idx") as idx:
        assert _found(idx, _copy_of(pics[1], tmp_path), pics[1])
    notes = [line for line in capfd.readouterr().err.splitlines() if SNAPSHOT.name in line]
    assert len(notes) == 1 and "checksum" in notes[0]
    rows_read.clear()
    with Index.open(tmp_path / "idx") as idx:  # the rebuilt snapshot was written and is used
        assert _found(idx, _copy_of(pics[3], tmp_path), pics[3])
    assert rows_read == [] and capfd.readouterr().err == ""


def test_a_writer_killed_before_the_rename_leaves_the_old_snapshot(tmp_path, capfd) -> None:
    pics = _pictures(tmp_path, range(70, 74))
    with Index.open(tmp_path / "idx", create=True) as idx:
        idx.add(pics[:3])
    old = (tmp_path / "idx" / SNAPSHOT).read_bytes()
    # A real process, SIGKILLed when its new snapshot is fully written but not yet renamed into place.
    script = textwrap.dedent(f"""
        import os, signal
        from provenance import Index
        real = os.replace
        def replace(src, dst):
            if str(dst).endswith({SNAPSHOT.name!r}):
                os.kill(os.getpid(), signal.SIGKILL)
            return real(src, dst)
        os.replace = replace
        idx = Index.open({str(tmp_path / 'idx')!r})
        idx.add([{str(pics[3])!r}])
        idx.close()
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()
    folder = tmp_path / "idx" / "faiss"
    assert [p for p in os.listdir(folder) if p.endswith(".tmp")]  # the killed writer's leftover
    assert (tmp_path / "idx" / SNAPSHOT).read_bytes() == old
    capfd.readouterr()
    with Index.open(tmp_path / "idx") as idx:
        assert _found(idx, _copy_of(pics[3], tmp_path), pics[3])  # caught up from the catalog
        assert _found(idx, _copy_of(pics[0], tmp_path), pics[0])
    assert not [p for p in os.listdir(folder) if p.endswith(".tmp")]
    assert SNAPSHOT.name not in capfd.readouterr().err


def test_rebuild_compacts_removed_items(tmp_path, rows_read) -> None:
    pics = _pictures(tmp_path, range(80, 83))
    with Index.open(tmp_path / "idx", create=True) as idx:
        results = idx.add(pics)
        idx.remove(results[0].id or 0)
        out = idx.rebuild()
        assert out[SIGNAL] == 2
        assert not _found(idx, _copy_of(pics[0], tmp_path), pics[0])
    rows_read.clear()
    with Index.open(tmp_path / "idx") as idx:
        assert _found(idx, _copy_of(pics[1], tmp_path), pics[1])
    assert rows_read == []


def test_a_flat_snapshot_past_the_ivf_bound_switches_once_and_is_written_back(tmp_path, rows_read,
                                                                              monkeypatch) -> None:
    from provenance import localfeatures as lf

    pics = _pictures(tmp_path, range(50, 56))
    with Index.open(tmp_path / "idx", create=True) as idx:
        idx.add(pics)
    snapshot = tmp_path / "idx" / SNAPSHOT
    before = snapshot.stat().st_mtime_ns
    # As after an upgrade that lowered the bound below what this flat snapshot holds.
    monkeypatch.setattr(lf, "IVF_FROM", 1000)
    rows_read.clear()
    with Index.open(tmp_path / "idx") as idx:
        assert _found(idx, _copy_of(pics[1], tmp_path), pics[1])
    assert rows_read == [] and snapshot.stat().st_mtime_ns != before  # switched from the file, saved
    after = snapshot.stat().st_mtime_ns
    with Index.open(tmp_path / "idx") as idx:
        assert _found(idx, _copy_of(pics[4], tmp_path), pics[4])
    assert snapshot.stat().st_mtime_ns == after  # already IVF: nothing to write

"""A process killed at any moment during ``add`` leaves an index that opens, with every completed item
present and no half-added item visible."""

import os
import signal
import subprocess
import sys
import textwrap
import time

from provenance import Index

WRITER = textwrap.dedent("""
    import sys
    from provenance import Index
    from provenance.samples import sample_photo
    import io
    idx = Index.open(sys.argv[1], create=True)
    start = int(sys.argv[2])
    for i in range(start, start + 400):
        buf = io.BytesIO()
        sample_photo(i, (96, 72)).save(buf, "PNG")
        text = f"Document {i} says the river number {i} flows past the mill {i} and the bridge {i * 7}."
        for r in idx.add([buf.getvalue(), text.encode()], batch_size=1):
            print("done", r.id, flush=True)
""")


def run_and_kill(index_dir, start, delay):
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(index_dir), str(start)],
                            stdout=subprocess.PIPE, text=True)
    done = []
    first = proc.stdout.readline()  # wait until adding is under way
    assert first.startswith("done"), first
    done.append(int(first.split()[1]))
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate()
    done += [int(line.split()[1]) for line in out.splitlines() if line.startswith("done")]
    return done


def test_kill_during_add_loses_nothing_committed(tmp_path):
    index_dir = tmp_path / "idx"
    completed = run_and_kill(index_dir, 0, 1.5)
    # Kill again, almost at once, after reopening the crashed index (stale snapshot, open WAL).
    completed += run_and_kill(index_dir, 1000, 0.05)
    idx = Index.open(index_dir)
    live = {row.id: row for row in idx.items()}
    assert set(completed) <= set(live)
    db = idx.catalog.db
    for row in live.values():
        # No half-added item: every visible item carries all of its fingerprints.
        signals = {r[0] for r in db.execute("SELECT signal FROM fingerprints WHERE item_id=?", (row.id,))}
        if row.media == "image":
            assert {"pdq", "phash"} - set(row.metadata.get("skipped", {})) <= signals
        else:
            assert "text-embed" in signals
            assert db.execute("SELECT count(*) FROM shingles WHERE item_id=?", (row.id,)).fetchone()[0] > 0
            assert idx.catalog.text_of(row.id)
    # And the reopened index still answers: the last completed text is found exactly.
    last_text = max(i for i in completed if live[i].media == "text")
    assert idx.check(idx.catalog.text_of(last_text)).verdict == "exact"
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    idx.close()

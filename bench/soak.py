"""Soak test (issue 11): N adders and M checkers on one index for minutes, random SIGKILLs of any of them,
then a full consistency check.

Adders add unique items (a generated photo and a short text each) in small batches, opening and closing
the index around each batch so snapshot saves happen and are killed too; an item counts as
*acknowledged* once ``add`` returned it. Checkers check resized copies of acknowledged photos (expect
``near-duplicate`` or ``exact``) and acknowledged texts (expect ``exact``). A killer SIGKILLs a random
worker every few seconds and starts a new one in its place.

At the end every worker is killed and the index is checked:
catalog ``PRAGMA integrity_check``; every acknowledged item present with all its fingerprints; each FAISS
snapshot, as loaded, holds exactly the catalog's live fingerprint ids; a last check of acknowledged items;
and no process of the run left alive. Counts are printed and written to ``<work>/soak.json``.

    python -m bench.soak --work /tmp/soak --adders 3 --checkers 2 --seconds 300 --kill-every 4:12
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

ADDER = textwrap.dedent("""
    import io, sys
    from provenance import Index
    from provenance.samples import sample_photo
    index, i = sys.argv[1], int(sys.argv[2])
    while True:
        with Index.open(index, create=True) as idx:
            numbers, batch = [], []
            for _ in range(3):
                buf = io.BytesIO()
                sample_photo(i, (160, 120)).save(buf, "PNG")
                text = (f"Soak item {i}: the ferry number {i} left pier {i % 97} at {i % 24} o'clock carrying "
                        f"{i * 7 % 1000} passengers and {i * 13 % 500} bicycles past lighthouse {i * 3}.")
                numbers += [i, i]
                batch += [buf.getvalue(), text.encode()]
                i += 1
            for n, r in zip(numbers, idx.add(batch, batch_size=2)):
                if r.status in ("added", "exists"):
                    print("ack", r.id, r.media, n, flush=True)
""")

CHECKER = textwrap.dedent("""
    import io, json, sys, random
    from PIL import Image
    from provenance import Index
    index, ack_file, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = random.Random(seed)
    while True:
        try:
            acked = [json.loads(l) for l in open(ack_file) if l.strip()]
        except OSError:
            acked = []
        if not acked:
            import time; time.sleep(0.5); continue
        with Index.open(index) as idx:
            for _ in range(5):
                item = rng.choice(acked)
                if item["media"] == "image":
                    # the photo is regenerated from the adder's numbering
                    from provenance.samples import sample_photo
                    img = sample_photo(item["n"], (160, 120)).resize((112, 84))
                    buf = io.BytesIO(); img.convert("RGB").save(buf, "JPEG", quality=85)
                    r = idx.check(buf.getvalue(), "copy.jpg")
                    ok = r.verdict in ("near-duplicate", "exact")
                else:
                    r = idx.check_text(idx.catalog.text_of(item["id"]) or "")
                    ok = r.verdict == "exact"
                print("check", item["id"], "ok" if ok else "WRONG:" + r.verdict, flush=True)
""")


def _alive(marker: str) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if marker.encode() in (d / "environ").read_bytes() and \
                        (d / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    out.append(int(d.name))
            except OSError:
                pass
    return out


class Worker:
    """One adder or checker process, its output read line by line without blocking the loop."""

    def __init__(self, kind: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.kind = kind
        self.log = open(log, "a")  # noqa: SIM115 - lives as long as the worker
        code = ADDER if kind == "adder" else CHECKER
        self.proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE,
                                     stderr=self.log, env=env)
        self.fd = self.proc.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.buf = b""

    def lines(self) -> list[str]:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                break
            if not chunk:
                break
            self.buf += chunk
        *done, self.buf = self.buf.split(b"\n")
        return [line.decode(errors="replace") for line in done]

    def kill(self) -> None:
        try:
            self.proc.kill()
        except OSError:
            pass
        self.proc.wait()
        self.proc.stdout.close()
        self.log.close()


def run(work: Path, adders: int, checkers: int, seconds: float, kill_every: tuple[float, float],
        seed: int) -> dict[str, Any]:

    from provenance import Index

    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    index = work / "idx"
    ack_file = work / "acked.jsonl"
    ack_file.touch()
    marker = uuid.uuid4().hex
    env = {**os.environ, "PROVENANCE_SOAK": marker}
    rng = random.Random(seed)
    counts = {"acknowledged": 0, "checks": 0, "wrong_checks": 0, "kills": 0, "started": 0}
    acked: dict[int, dict[str, Any]] = {}
    # Adder k numbers its items from k * 10**6 upwards, restarting past what it acknowledged.
    adder_next = [k * 1_000_000 for k in range(adders)]

    def start(kind: str, slot: int) -> Worker:
        counts["started"] += 1
        if kind == "adder":
            args = [str(index), str(adder_next[slot])]
        else:
            args = [str(index), str(ack_file), str(rng.randrange(1 << 30))]
        return Worker(kind, args, env, work / f"{kind}{slot}.log")

    Index.open(index, create=True).close()
    workers: dict[tuple[str, int], Worker] = {}
    for k in range(adders):
        workers[("adder", k)] = start("adder", k)
    for k in range(checkers):
        workers[("checker", k)] = start("checker", k)
    try:
        return _drive(workers, start, counts, acked, adder_next, ack_file, index, marker, rng, seconds, kill_every,
                      work)
    finally:
        for w in workers.values():
            w.kill()


def _drive(workers, start, counts, acked, adder_next, ack_file, index, marker, rng, seconds, kill_every, work):
    """The soak loop and the final consistency check (split out so ``run`` always kills the workers)."""
    from provenance import Index

    t_end = time.monotonic() + seconds
    next_kill = time.monotonic() + rng.uniform(*kill_every)
    while time.monotonic() < t_end:
        for (kind, slot), w in list(workers.items()):
            for line in w.lines():
                parts = line.split()
                if kind == "adder" and parts[:1] == ["ack"]:
                    item_id, media, n = int(parts[1]), parts[2], int(parts[3])
                    adder_next[slot] = max(adder_next[slot], n + 1)  # a restarted adder goes on from here
                    if item_id not in acked:
                        acked[item_id] = {"id": item_id, "media": media, "n": n}
                        counts["acknowledged"] += 1
                        with open(ack_file, "a") as f:
                            f.write(json.dumps(acked[item_id]) + "\n")
                elif kind == "checker" and parts[:1] == ["check"]:
                    counts["checks"] += 1
                    if parts[2] != "ok":
                        counts["wrong_checks"] += 1
                        print(f"wrong check: {line}", file=sys.stderr)
            if w.proc.poll() is not None:  # died by itself: that is a finding
                counts.setdefault("crashed", 0)
                counts["crashed"] += 1
                print(f"{kind}{slot} exited {w.proc.returncode}; see {work}/{kind}{slot}.log", file=sys.stderr)
                workers[(kind, slot)] = start(kind, slot)
        if time.monotonic() >= next_kill:
            key = rng.choice(sorted(workers))
            workers[key].kill()
            counts["kills"] += 1
            workers[key] = start(*key)
            next_kill = time.monotonic() + rng.uniform(*kill_every)
        time.sleep(0.2)
    for w in workers.values():
        w.kill()
    time.sleep(2)
    counts["orphans_after_kill"] = len(_alive(marker))

    # -- consistency ---------------------------------------------------------------------------------
    report: dict[str, Any] = {"counts": counts}
    notes: list[str] = []
    from provenance.indexes import vectors
    vectors.notice = notes.append
    with Index.open(index) as idx:
        db = idx.catalog.db
        report["integrity_check"] = db.execute("PRAGMA integrity_check").fetchone()[0]
        missing = [i for i in acked if idx.catalog.get_item(i) is None]
        half = []
        for item in idx.items():
            sigs = {r[0] for r in db.execute("SELECT signal FROM fingerprints WHERE item_id=?", (item.id,))}
            need = {"pdq", "phash"} if item.media == "image" else {"text-embed"}
            need -= set(item.metadata.get("skipped", {}))
            if not need <= sigs:
                half.append(item.id)
        agree = {}
        for s in [s for s in idx.signals if s.index_kind in ("binary", "float")]:
            vi = idx.vectors(s)
            import faiss
            import numpy as np
            ids = set(faiss.vector_to_array(vi.index.id_map).astype(np.int64).tolist())
            live = {r for r, _ in idx.catalog.fingerprint_rows(s.name)} - set(idx.catalog.removed_fingerprint_ids(s.name))
            agree[s.name] = {"snapshot": len(ids), "catalog": len(live), "equal": ids == live}
        sample = rng.sample(sorted(acked), min(20, len(acked)))
        final_wrong = 0
        for i in sample:
            if acked[i]["media"] == "text":
                final_wrong += idx.check_text(idx.catalog.text_of(i) or "").verdict != "exact"
        report.update(items=sum(1 for _ in idx.items()), missing_acknowledged=len(missing),
                      half_items=len(half), snapshots=agree, final_text_checks_wrong=final_wrong,
                      rebuild_notes=len(notes))
    report["orphans_at_end"] = len(_alive(marker))
    return report


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/provenance-soak"))
    ap.add_argument("--adders", type=int, default=3)
    ap.add_argument("--checkers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--kill-every", default="4:12", help="seconds between kills, as MIN:MAX")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args(argv)
    lo, hi = (float(x) for x in args.kill_every.split(":"))
    report = run(args.work, args.adders, args.checkers, args.seconds, (lo, hi), args.seed)
    (args.work / "soak.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    ok = (report["integrity_check"] == "ok" and not report["missing_acknowledged"] and not report["half_items"]
          and all(v["equal"] for v in report["snapshots"].values()) and not report["orphans_at_end"]
          and not report["counts"]["wrong_checks"] and not report["final_text_checks_wrong"])
    print("CONSISTENT" if ok else "INCONSISTENT", file=sys.stderr)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main()

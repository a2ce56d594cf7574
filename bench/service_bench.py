"""`provenance serve` under bounded load on loopback, side by side with the CLI doing the same lookups.

The index holds ``--items`` synthetic image items (random PDQ and pHash fingerprints written through the
catalog, as `add` writes them) plus ``--photos`` generated photos disclosed with a real C2PA manifest.
It is built once and cached under ``bench/out/service-index`` (rebuilt when the sizes change).

Measured, each for ``--seconds`` over a few keep-alive connections (``--concurrency`` for byBinding,
``--content-concurrency`` for byContent; closed loop: a connection sends its next request when the answer
to the last one is in), with the server's CPU time per request (what it costs whatever else runs):

* ``byBinding``: ``GET /v1/matches/byBinding`` with a disclosed photo's PDQ hash, 0-8 bits flipped;
* ``byContent``: ``POST /v1/matches/byContent`` with a stripped, resized, re-encoded JPEG of a disclosed
  photo (the upload is part of the latency).

Baselines: the same lookups as library calls in one process (``Index.find_by_fingerprint``, and
``Index.check_content`` plus the disclosure query), and as CLI calls (``provenance lookup COPY.jpg``, a
new process each time; the CLI has no way to look up a bare binding value, so both rows use the file).
The load generator is a minimal asyncio HTTP/1.1 client in this process, so it shares the CPUs with the
server: on a 2-core machine the numbers are a floor.

    python -m bench.service_bench [--items 100000] [--photos 20] [--seconds 10] [--concurrency 4]
                                  [--content-concurrency 2] [--cli-calls 5]

Writes ``bench/SERVICE_RESULTS.md`` (the table, with the machine and its load) and the raw numbers to
``bench/out/service_bench.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
from PIL import Image

from provenance.checker import Index
from provenance.content import content_from_bytes
from provenance.disclosure import disclose_content
from provenance.identities import new_signing_identity
from provenance.indexes.catalog import NewItem
from provenance.samples import sample_photo
from provenance.service import ALGORITHMS, TOKEN_ENV

from .common import OUT, log, machine, save_json, table

PDQ_ALG = ALGORITHMS[0].alg
TOKEN = "bench-token-" + "b" * 24


# -- the index -----------------------------------------------------------------------------------------


def build_index(root: Path, items: int, photos: int) -> dict[str, Any]:
    """The cached benchmark index, built if missing or of other sizes; returns its query material."""
    meta_path = root / "bench-meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta["items"] == items and meta["photos"] == photos:
            return meta
    if root.exists():
        import shutil

        shutil.rmtree(root)
    root.mkdir(parents=True)
    rng = np.random.default_rng(13)
    started = time.monotonic()
    with Index.open(root / "idx", create=True) as idx:
        for i in range(items):
            pdq, phash = rng.integers(0, 256, 32, dtype=np.uint8), rng.integers(0, 256, 8, dtype=np.uint8)
            idx.catalog.add_item(NewItem(
                sha256=hashlib.sha256(b"synthetic %d" % i).hexdigest(), path=f"synthetic/{i}.jpg",
                source="synthetic", media="image", size=0, metadata={},
                fingerprints=[("pdq", None, None, pdq.tobytes(), None), ("phash", None, None, phash.tobytes(), None)]))
            if i and i % 20000 == 0:
                log(f"  {i} synthetic items")
        log(f"{items} synthetic items in {time.monotonic() - started:.0f} s")
        identity = new_signing_identity(root / "keys")
        queries = []
        for i in range(photos):
            path = root / f"photo{i}.jpg"
            sample_photo(1000 + i).save(path, "JPEG", quality=92)
            out = disclose_content(path, source_type="trainedAlgorithmicMedia", generator="bench",
                                   identity=identity, index=idx)
            disclosed = Path(out.result.path)
            img = Image.open(disclosed).convert("RGB")
            copy = root / f"copy{i}.jpg"  # metadata stripped, resized, re-encoded
            img.resize((img.width * 3 // 4, img.height * 3 // 4)).save(copy, "JPEG", quality=70)
            pdq = idx.catalog.item_fingerprints(out.record.item_id, "pdq")[0]
            queries.append({"manifest": out.record.manifest_label, "pdq": base64.b64encode(pdq).decode(),
                            "copy": str(copy)})
    meta = {"items": items, "photos": photos, "queries": queries,
            "build_s": round(time.monotonic() - started, 1)}
    meta_path.write_text(json.dumps(meta, indent=1))
    return meta


def flipped(value_b64: str, rng: random.Random) -> str:
    """The value with 0-8 random bits flipped (a client's own PDQ of a re-encoded copy is close, not equal)."""
    raw = bytearray(base64.b64decode(value_b64))
    for bit in rng.sample(range(len(raw) * 8), rng.randint(0, 8)):
        raw[bit // 8] ^= 0x80 >> (bit % 8)
    return base64.b64encode(bytes(raw)).decode()


# -- load ----------------------------------------------------------------------------------------------


async def _one_connection(host: str, port: int, make: Any, until: float, latencies: list[float],
                          statuses: list[tuple[int, bool]]) -> None:
    """Send requests on one keep-alive connection until ``until``; record latency and outcome."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < until:
            request, expected = make()
            t0 = time.perf_counter()
            writer.write(request)
            await writer.drain()
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            statuses.append((int(status_line.split()[1]), expected.encode() in body))
    finally:
        writer.close()


def run_load(host: str, port: int, make: Any, seconds: float, concurrency: int) -> dict[str, Any]:
    """Closed-loop load: ``concurrency`` connections for ``seconds``; requests/s and latency percentiles."""
    latencies: list[float] = []
    statuses: list[tuple[int, bool]] = []

    async def main() -> float:
        until = time.perf_counter() + seconds
        t0 = time.perf_counter()
        await asyncio.gather(*(_one_connection(host, port, make, until, latencies, statuses)
                               for _ in range(concurrency)))
        return time.perf_counter() - t0

    elapsed = asyncio.run(main())
    ms = np.asarray(latencies) * 1000
    return {"requests": len(ms), "requests_per_s": round(len(ms) / elapsed, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "non_200": sum(s != 200 for s, _ in statuses),
            "found_rate": round(sum(f for _, f in statuses) / max(1, len(statuses)), 3)}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def http_request(method: str, target: str, body: bytes = b"", content_type: str | None = None) -> bytes:
    head = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {TOKEN}",
            f"Content-Length: {len(body)}"]
    if content_type:
        head.append(f"Content-Type: {content_type}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


# -- baselines -----------------------------------------------------------------------------------------


def summary(seconds: list[float]) -> dict[str, Any]:
    ms = np.asarray(seconds) * 1000
    return {"requests": len(ms), "requests_per_s": round(1000 / float(ms.mean()), 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2)}


def library_baseline(index_dir: Path, meta: dict, seconds: float) -> dict[str, Any]:
    """The same lookups as direct library calls in one warm process (no HTTP, one at a time)."""
    import faiss

    from provenance.indexes.manifests import DisclosureStore

    faiss.omp_set_num_threads(1)  # as the service does (see provenance.service.IndexWorker)
    rng = random.Random(7)
    out: dict[str, Any] = {}
    with Index.open(index_dir) as idx:
        store = DisclosureStore(idx.catalog.db)
        copies = [Path(q["copy"]).read_bytes() for q in meta["queries"]]
        for name in ("byBinding", "byContent"):
            times: list[float] = []
            until = time.perf_counter() + seconds
            while time.perf_counter() < until:
                q = rng.randrange(len(meta["queries"]))
                t0 = time.perf_counter()
                if name == "byBinding":
                    hits = idx.find_by_fingerprint(
                        "pdq", base64.b64decode(flipped(meta["queries"][q]["pdq"], rng)), 40)
                    store.for_items(i for i, d in hits if d <= 31)
                else:
                    report = idx.check_content(content_from_bytes(copies[q], "copy.jpg"))
                    store.for_items(m.id for m in report.matches)
                times.append(time.perf_counter() - t0)
            out[name] = summary(times)
    return out


def cli_baseline(index_dir: Path, meta: dict, calls: int) -> dict[str, Any]:
    """``provenance lookup COPY.jpg`` as a new process per call (interpreter, imports, index open)."""
    exe = Path(sys.executable).with_name("provenance")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "provenance.cli.main"]
    times, found = [], 0
    for i in range(calls):
        q = meta["queries"][i % len(meta["queries"])]
        t0 = time.perf_counter()
        done = subprocess.run([*command, "lookup", q["copy"], "--index", str(index_dir), "--json"],
                              check=False, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        found += q["manifest"] in done.stdout
    return {**summary(times), "found_rate": round(found / calls, 3)}


# -- main ----------------------------------------------------------------------------------------------


def start_server(index_dir: Path) -> tuple[subprocess.Popen, int]:
    """``provenance serve`` on a free loopback port, its log in ``bench/out/service-server.log``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_file = open(OUT / "service-server.log", "w")  # noqa: SIM115 - handed to the child process
    proc = subprocess.Popen([sys.executable, "-m", "provenance.cli.main", "serve", "--index", str(index_dir),
                             "--port", str(port), "--log-level", "warning"], stdout=log_file, stderr=log_file,
                            env={**os.environ, TOKEN_ENV: TOKEN})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited; see {log_file.name}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if conn.recv(64).startswith(b"HTTP/1.1 200"):
                    return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not start within 120 s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--photos", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=4, help="connections for byBinding")
    ap.add_argument("--content-concurrency", type=int, default=2, help="connections for byContent")
    ap.add_argument("--cli-calls", type=int, default=5)
    args = ap.parse_args()

    root = OUT / "service-index"
    meta = build_index(root, args.items, args.photos)
    index_dir = root / "idx"
    # Open and close once so the FAISS snapshots hold every catalog row (the server then starts warm).
    Index.open(index_dir).close()
    results: dict[str, Any] = {"machine": machine(), "items": args.items, "photos": args.photos,
                               "seconds": args.seconds, "load_average_before": os.getloadavg()}
    rng = random.Random(11)
    copies = [Path(q["copy"]).read_bytes() for q in meta["queries"]]

    def by_binding() -> tuple[bytes, str]:
        q = rng.choice(meta["queries"])
        target = f"/v1/matches/byBinding?alg={PDQ_ALG}&value={quote(flipped(q['pdq'], rng), safe='')}"
        return http_request("GET", target), q["manifest"]

    def by_content() -> tuple[bytes, str]:
        i = rng.randrange(len(copies))
        return (http_request("POST", "/v1/matches/byContent", copies[i], "image/jpeg"),
                meta["queries"][i]["manifest"])

    proc, port = start_server(index_dir)
    try:
        log(f"server on 127.0.0.1:{port}; warming up")
        run_load("127.0.0.1", port, by_content, 2, 1)
        for name, make, conns in (("byBinding", by_binding, args.concurrency),
                                  ("byContent", by_content, args.content_concurrency)):
            cpu0 = cpu_seconds(proc.pid)
            res = run_load("127.0.0.1", port, make, args.seconds, conns)
            res["connections"] = conns
            # CPU per request says what the server costs whatever else the machine is doing.
            res["server_cpu_ms_per_request"] = round(1000 * (cpu_seconds(proc.pid) - cpu0) / res["requests"], 2)
            results.setdefault("service", {})[name] = res
            log(f"service {name}: {res}")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    results["library"] = library_baseline(index_dir, meta, min(args.seconds, 5))
    log(f"library: {results['library']}")
    results["cli_lookup"] = cli_baseline(index_dir, meta, args.cli_calls)
    log(f"cli: {results['cli_lookup']}")
    save_json("service_bench.json", results)

    rows = []
    for name in ("byBinding", "byContent"):
        s, lib = results["service"][name], results["library"][name]
        rows.append([f"{name}: service over HTTP ({s['connections']} connections)", s["requests_per_s"],
                     s["p50_ms"], s["p99_ms"], s["server_cpu_ms_per_request"], s["found_rate"]])
        rows.append([f"{name}: library call in one process", lib["requests_per_s"], lib["p50_ms"],
                     lib["p99_ms"], "-", "-"])
    c = results["cli_lookup"]
    rows.append(["`provenance lookup COPY.jpg` (new process per call)", c["requests_per_s"], c["p50_ms"],
                 c["p99_ms"], "-", c["found_rate"]])
    text = "\n".join([
        "# `provenance serve` benchmark", "",
        (f"Generated by `python -m bench.service_bench` ({time.strftime('%Y-%m-%d %H:%M %Z')}): {args.items:,} "
        f"synthetic image items + {args.photos} disclosed photos; {args.seconds:g} s of closed-loop load per "
        f"route on loopback; {machine()}; load average {results['load_average_before'][0]:.1f} when it "
        "started (the load generator runs on the same CPUs)."), "",
        table(["lookup", "requests/s", "p50 ms", "p99 ms", "server CPU ms/request", "found"], rows), "",
        ("`found`: share of answers naming the expected manifest. Library rows: the same work in one warm "
        "process, one call at a time, FAISS on one thread as in the service. The CLI has no lookup by "
        "binding value, so its row is `lookup` of the stripped copy."), ""])
    (OUT.parent / "SERVICE_RESULTS.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

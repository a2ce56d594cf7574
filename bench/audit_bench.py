"""Benchmark ``provenance audit`` (cold and warm) against imagededup's PHash on the same folder.

Usage (from the repository root):

    python bench/audit_bench.py ../shared/data/images/clothing-small \\
        --imagededup-python /tmp/venv-imagededup/bin/python --cold-runs 2 --warm-runs 3

imagededup is installed in its own environment, never as a project dependency:

    python -m venv --system-site-packages /tmp/venv-imagededup
    /tmp/venv-imagededup/bin/pip install --no-deps imagededup && /tmp/venv-imagededup/bin/pip install matplotlib

(``--system-site-packages`` reuses the CPU ``torch==2.13.0`` and scikit-learn/PyWavelets/tqdm already
installed; an unpinned ``pip install imagededup`` pulls CUDA torch.) If torchvision cannot be imported
(PyPI's torchvision wheels do not load against the CPU torch build), the runner stubs it: imagededup
imports it only for its CNN method, and PHash never calls it.

Every run is a fresh process, timed wall-clock from start to exit (imports, model-free start-up, walk,
decode, hash, duplicate search, report), so the comparison includes everything a user waits for. Runs of
the two tools are interleaved so that load from other users of the machine hits both alike. Ours runs
with ``--exclude LICENSE``: the folder holds one licence text, which ours would (correctly) audit as a
text and so load the embedding model; imagededup ignores non-image files.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMAGEDEDUP_RUNNER = r"""
import sys, time, json
try:
    import torchvision  # noqa: F401
except Exception:
    import importlib.abc, importlib.machinery, types
    from unittest import mock
    for k in [k for k in sys.modules if k.startswith("torchvision")]:
        del sys.modules[k]
    class _Stub(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path, target=None):
            if name == "torchvision" or name.startswith("torchvision."):
                return importlib.machinery.ModuleSpec(name, self, is_package=True)
        def create_module(self, spec):
            m = types.ModuleType(spec.name); m.__path__ = []
            m.__getattr__ = lambda attr: mock.MagicMock(name=spec.name + "." + attr)
            return m
        def exec_module(self, module):
            pass
    sys.meta_path.insert(0, _Stub())
t0 = time.perf_counter()
from imagededup.methods import PHash
ph = PHash(verbose=False)
enc = ph.encode_images(image_dir=sys.argv[1], recursive=True)
t1 = time.perf_counter()
dups = ph.find_duplicates(encoding_map=enc, max_distance_threshold=10)
t2 = time.perf_counter()
print(json.dumps({"images": len(enc), "encode_s": t1 - t0, "find_s": t2 - t1,
                  "with_duplicates": sum(1 for v in dups.values() if v)}))
"""


def timed(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if res.returncode not in (0, 3):
        raise SystemExit(f"{cmd[:3]} failed ({res.returncode}): {res.stderr[-2000:]}")
    return dt, res.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--imagededup-python", default="/tmp/venv-imagededup/bin/python")
    ap.add_argument("--provenance", default=shutil.which("provenance") or "provenance")
    ap.add_argument("--cold-runs", type=int, default=2)
    ap.add_argument("--warm-runs", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("bench/out/audit_bench.md"))
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="audit-bench-"))
    runner = work / "imagededup_runner.py"
    runner.write_text(IMAGEDEDUP_RUNNER)
    ours_cmd = lambda state, out: [args.provenance, "audit", str(args.folder), "--exclude", "LICENSE",  # noqa: E731
                                   "--index", str(work / "no-index"), "--state", str(state), "-q",
                                   "--json", str(out)]
    cold, theirs, warm = [], [], []
    summary: dict = {}
    theirs_info: dict = {}
    for r in range(args.cold_runs):
        state = work / f"state-{r}.sqlite"
        dt, _ = timed(ours_cmd(state, work / "ours.json"))
        cold.append(dt)
        summary = json.loads((work / "ours.json").read_text())["summary"]
        print(f"ours cold run {r + 1}: {dt:.2f}s ({summary['files']} files, {summary['clusters']} clusters)",
              flush=True)
        dt, out = timed([args.imagededup_python, str(runner), str(args.folder)])
        theirs.append(dt)
        theirs_info = json.loads(out.strip().splitlines()[-1])
        print(f"imagededup run {r + 1}: {dt:.2f}s {theirs_info}", flush=True)
    state = work / "state-0.sqlite"
    for r in range(args.warm_runs):
        dt, _ = timed(ours_cmd(state, work / "warm.json"))
        warm.append(dt)
        ws = json.loads((work / "warm.json").read_text())["summary"]
        assert ws["fingerprinted"] == 0, ws
        print(f"ours warm run {r + 1}: {dt:.2f}s (reused {ws['reused']})", flush=True)

    n = summary["images"]
    med = {k: statistics.median(v) for k, v in (("cold", cold), ("warm", warm), ("imagededup", theirs))}
    rate = {k: n / v for k, v in med.items()}
    lines = [
        f"Folder: `{args.folder}` — {n} images; machine: 2 shared cores (timings noisy; medians).",
        "",
        "| run | runs | median wall s | images/s | vs imagededup PHash |",
        "|---|---|---|---|---|",
        f"| imagededup PHash encode_images + find_duplicates | {len(theirs)} | {med['imagededup']:.2f} | "
        f"{rate['imagededup']:.0f} | 1.0× |",
        f"| provenance audit, cold (empty cache) | {len(cold)} | {med['cold']:.2f} | {rate['cold']:.0f} | "
        f"{rate['cold'] / rate['imagededup']:.2f}× |",
        f"| provenance audit, warm (unchanged files) | {len(warm)} | {med['warm']:.2f} | {rate['warm']:.0f} | "
        f"{rate['warm'] / rate['imagededup']:.2f}× |",
        "",
        f"Warm rerun is {med['cold'] / med['warm']:.1f}× faster than cold. "
        f"Ours: {summary['clusters']} clusters over {summary['clustered_items']} images (PDQ ≤ 31, or pHash ≤ 3 alone / ≤ 8 with PDQ ≤ 48, "
        f"dihedral); imagededup: {theirs_info.get('with_duplicates')} images with a duplicate at pHash ≤ 10.",
        f"Raw seconds: cold {['%.2f' % x for x in cold]}, warm {['%.2f' % x for x in warm]}, "
        f"imagededup {['%.2f' % x for x in theirs]}.",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

"""A cold text check loads its two models (MiniLM through ONNX Runtime, USE multilingual) side by side on
background threads, and USE only where a translation could be found: real models, a real index, a fresh
interpreter per case (the models must not be loaded yet)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from provenance.encoders import UseMultilingualEncoder, model_loader

SCRIPT = r"""
import json, sys, threading, time
from provenance import encoders
from provenance import Index

events = []
def traced(cls, fail):
    original = cls.load
    def load(self):
        start = time.perf_counter()
        if fail:
            raise RuntimeError("warm-up failed on purpose")
        original(self)
        events.append({"cls": cls.__name__, "thread": threading.current_thread().name,
                       "start": start, "end": time.perf_counter()})
    cls.load = load

fail = sys.argv[3] == "fail"
traced(encoders.OnnxMiniLMEncoder, fail)
traced(encoders.UseMultilingualEncoder, fail)
with Index.open(sys.argv[1]) as idx:
    report = idx.check(sys.argv[2])
    alive = [t.name for t in threading.enumerate() if t.name.startswith("load-")]
print(json.dumps({"events": events, "verdict": report.verdict, "alive": alive,
                  "signals": sorted({m.signal for m in report.matches})}))
"""


def _run(index: Path, draft: Path, mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(index), str(draft), mode], capture_output=True,
                         text=True, check=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_cold_check_loads_both_text_models_side_by_side(tmp_path: Path) -> None:
    from provenance import Index

    source = ("The lighthouse keeper climbed the spiral stairs every evening at dusk, trimmed the wick, "
              "polished the great lens until it shone, and watched the grey sea for ships in distress. "
              "In winter the storms came from the north and the spray reached the lantern room itself.")
    with Index.open(tmp_path / "idx", create=True) as idx:
        idx.add([source], source="old-post")
    draft = tmp_path / "draft.md"
    draft.write_text(source.replace("every evening", "each evening").replace("grey", "dark"))

    # One language on both sides: no translation can be found, so USE is not even loaded.
    english_only = _run(tmp_path / "idx", draft, "trace")
    assert [e["cls"] for e in english_only["events"]] == ["OnnxMiniLMEncoder"]
    assert english_only["verdict"] not in ("original", "exact")

    with Index.open(tmp_path / "idx") as idx:  # a German text: an English draft may now be a translation
        idx.add(["Der Leuchtturmwärter stieg jeden Abend die Wendeltreppe hinauf, putzte die große Linse und "
                 "hielt über dem grauen Meer Ausschau nach Schiffen in Seenot."], source="old-post")
    run = _run(tmp_path / "idx", draft, "trace")
    loads = {e["cls"]: e for e in run["events"]}
    assert set(loads) == {"OnnxMiniLMEncoder", "UseMultilingualEncoder"}
    assert all(e["thread"].startswith("load-") for e in loads.values())  # not on the main thread
    a, b = loads["OnnxMiniLMEncoder"], loads["UseMultilingualEncoder"]
    assert a["start"] < b["end"] and b["start"] < a["end"]  # the two loads overlapped in time
    assert run["alive"] == []  # no loading thread outlives the check
    assert run["verdict"] not in ("original", "exact")

    # A warm-up that fails changes nothing: each signal loads its model itself when it first encodes.
    failed = _run(tmp_path / "idx", draft, "fail")
    assert failed["events"] == [] and failed["alive"] == []
    assert failed["verdict"] == run["verdict"] and failed["signals"] == run["signals"]


def test_model_loader_is_offered_until_the_model_is_loaded() -> None:
    enc = UseMultilingualEncoder()
    load = model_loader(enc)
    assert load is not None and not enc.loaded
    load()
    assert enc.loaded and model_loader(enc) is None
    assert enc.encode(["a sentence"]).shape == (1, enc.dim)

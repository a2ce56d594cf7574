"""The README's "first five minutes" block, run as a newcomer would paste it (issue 12)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def first_five_minutes() -> str:
    """The bash block after the ``<!-- first-five-minutes -->`` marker."""
    m = re.search(r"<!-- first-five-minutes -->\n```bash\n(.*?)\n```", README.read_text(encoding="utf-8"), re.S)
    assert m, "README lost its first-five-minutes block"
    return m.group(1)


def test_the_first_five_minutes_walkthrough_is_true(tmp_path: Path) -> None:
    # A fresh HOME (the block writes under ~), the ONNX graph cache kept where it is (no re-export), and
    # the `provenance` of the interpreter running the tests first on PATH.
    cache = os.environ.get("PROVENANCE_CACHE_DIR") or str(Path.home() / ".cache" / "provenance-checker")
    env = {**os.environ, "HOME": str(tmp_path), "PROVENANCE_CACHE_DIR": cache,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("PROVENANCE_INDEX", None)
    proc = subprocess.run(["bash", "-c", first_five_minutes()], env=env, capture_output=True, text=True,
                          timeout=900)
    out = proc.stdout
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first, allowed, rest = out.split("exit code ", 2)
    # What the comments promise: a near-duplicate with its passage, exit 1; then allowed, exit 0.
    assert "draft.md: NEAR-DUPLICATE" in first and "published.md [blog]" in first, first
    assert "wide windows facing the river" in first
    assert allowed.startswith("1\n") and "allowed: source 'blog' is allowed" in allowed, allowed
    assert rest.startswith("0\n"), rest
    doc = json.loads((tmp_path / "provenance-try" / "report.json").read_text())
    assert doc["schema"] == "provenance.report/1" and doc["reports"][0]["verdict"] == "near-duplicate"
    assert re.search(r"^\s+1\s+text\s+blog\s+published\.md$", out, re.M), out
    assert "no problems found" in out

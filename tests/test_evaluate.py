"""``provenance eval``: end to end on a few generated images (real PDQ/pHash, FAISS, and the model load)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image, ImageDraw

from provenance.cli.main import main
from provenance.evaluate import suggest_threshold as _suggest


def _make_images(folder: Path, n: int = 6) -> None:
    rng = np.random.default_rng(5)
    for i in range(n):
        # Distinct structured pictures (random shapes on a gradient): PDQ quality well above its gate.
        base = np.linspace(0, 255, 256, dtype=np.uint8)[None, :, None].repeat(192, 0).repeat(3, 2)
        img = Image.fromarray(np.ascontiguousarray(np.roll(base, i * 40, axis=1)))
        draw = ImageDraw.Draw(img)
        for _ in range(12):
            x0, y0 = int(rng.integers(0, 200)), int(rng.integers(0, 150))
            draw.rectangle((x0, y0, x0 + int(rng.integers(10, 60)), y0 + int(rng.integers(10, 40))),
                           fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
        img.save(folder / f"img{i}.jpg", quality=92)


def test_eval_reports_families_and_suggestions(tmp_path: Path) -> None:
    _make_images(tmp_path)
    (tmp_path / "notes.bin").write_bytes(b"\x00\x01\x02 not an image or text")
    result = CliRunner().invoke(main, ["eval", "--json", "--sample", "3", str(tmp_path)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["schema"] == "provenance.eval/1"
    assert doc["originals"] == {"image": 3} and doc["held_out"] == {"image": 3}
    fams = {f["family"]: f for f in doc["families"]}
    assert {"jpeg", "crop", "mirror", "rotate-90s", "screenshot", "perspective"} <= set(fams)
    # Mirror and right-angle rotations are undone by the dihedral query variants.
    assert fams["mirror"]["recall"] == 1.0 and fams["rotate-90s"]["recall"] == 1.0
    assert fams["jpeg"]["n"] == 3
    # Every calibrated image signal gets a suggestion (the registry decides, not the eval code).
    assert {s["signal"] for s in doc["suggestions"]} == {"pdq", "phash", "local-features"}
    # Every miss is listed with the values that explain it; every false match with its value.
    missed = sum(round(f["n"] * (1 - f["recall"])) for f in doc["families"])
    assert len(doc["misses"]) == missed and all("values" in m and "family" in m for m in doc["misses"])
    assert all({"file", "signal", "value", "threshold"} <= set(fm) for fm in doc["false_matches"])
    assert 0.0 <= doc["false_match_rate"]["image"] <= 1.0


TOPICS = ["The harbour town rebuilt its sea wall after the winter storms flooded the fish market.",
          "Volunteers counted migrating cranes along the river delta for the third spring running.",
          "The orchestra rehearsed the new symphony in an empty warehouse near the rail yards.",
          "A small bakery began selling rye bread made from grain grown on the hills above the valley."]


def _make_texts(folder: Path) -> None:
    for i, first in enumerate(TOPICS):
        body = " ".join(f"{first[:-1]} and note {j} of story {i} adds detail number {j * 7 + i}." for j in range(6))
        (folder / f"post{i}.md").write_text(first + " " + body + "\n", encoding="utf-8")


def test_eval_table_text_and_bad_folder(tmp_path: Path) -> None:
    _make_texts(tmp_path)
    result = CliRunner().invoke(main, ["eval", "--quiet", "--sample", "1", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "suggested thresholds" in result.stdout and "homoglyphs" in result.stdout
    # Verbatim passages are found by the real shingle and embedding signals.
    assert any(line.split()[:2] == ["text", "verbatim"] and float(line.split()[3]) == 1.0
               for line in result.stdout.splitlines())
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(main, ["eval", str(empty)])
    assert result.exit_code == 3
    assert "need at least two" in result.stderr


def test_suggest_picks_loosest_threshold_within_target() -> None:
    s = _suggest("pdq", 31, True, true_vals=[2, 10, 40, 90], neg_vals=[70, 80, 120] * 400,
                 grid=list(range(129)), target=0.001)
    assert s is not None and s.suggested == 69 and s.recall == 0.75 and s.recall_at_current == 0.5
    s = _suggest("text-embed", 0.8, False, [0.9, 0.7], [0.75, 0.5] * 600, [0.6, 0.7, 0.76, 0.8, 0.9], 0.001)
    assert s is not None and s.suggested == 0.76 and s.recall == 0.5


def test_suggest_keeps_the_default_when_the_sample_cannot_resolve_the_target() -> None:
    s = _suggest("pdq", 31, True, true_vals=[2, 10, 40, 90], neg_vals=[70, 80, 120], grid=list(range(129)),
                 target=0.001)
    assert s is not None and s.suggested == 31 and "need >= 1000" in s.note

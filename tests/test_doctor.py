"""``provenance doctor`` (issue 12): real models are probed, real damage to a real index is reported."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from provenance import Index
from provenance.cli.main import main
from provenance.signals import load_signals

TEXT = ("Lighthouse keepers on the northern coast kept logs of every passing ship, the weather at each watch "
        "and the oil burnt in the lamp, and those logs are now read by historians of the fishing trade.")


def _doctor(index: Path, *args: str) -> tuple[int, dict]:
    res = CliRunner().invoke(main, ["doctor", "--index", str(index), "--json", *args])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.output
    return res.exit_code, json.loads(res.stdout)


def _by_name(doc: dict) -> dict[str, dict]:
    return {f["name"]: f for f in doc["findings"]}


@pytest.fixture()
def small_index(tmp_path: Path, photos: dict[str, Path]) -> Path:
    (tmp_path / "post.md").write_text(TEXT)
    with Index.open(tmp_path / "idx", create=True) as idx:
        idx.add([tmp_path / "post.md", photos["photo0"]], source="blog")
    return tmp_path / "idx"


def test_probes_every_installed_signal_and_reports_the_index(small_index: Path) -> None:
    code, doc = _doctor(small_index)
    assert code == 0 and doc["ok"] is True
    found = _by_name(doc)
    for s in load_signals():
        assert found[s.name]["status"] == "ok", found[s.name]
    # The text model was really loaded and used: a model id, its dimension and a measured time.
    embed = found["text-embed"]
    assert "384 dims" in embed["detail"] and embed["seconds"] > 0
    assert "2 items (1 text, 1 image), 0 removed" in found["catalog"]["detail"]
    assert found["text-embed in index"]["status"] == "ok"
    assert {f["area"] for f in doc["findings"]} >= {"runtime", "signal", "engine", "reader", "index"}


def test_a_missing_snapshot_is_a_warning_with_the_fix(small_index: Path) -> None:
    (small_index / "faiss" / "text-embed.faiss").unlink()
    code, doc = _doctor(small_index, "--no-models")
    f = _by_name(doc)["text-embed in index"]
    assert code == 0 and f["status"] == "warn" and "provenance rebuild" in f["detail"]


def test_a_signal_waiting_for_backfill_is_named(small_index: Path) -> None:
    with sqlite3.connect(small_index / "catalog.sqlite") as db:
        db.execute("DELETE FROM signals WHERE name = 'local-features'")
    code, doc = _doctor(small_index, "--no-models")
    f = _by_name(doc)["local-features in index"]
    assert code == 0 and f["status"] == "warn" and "back-fills" in f["detail"]


def test_passages_without_a_language_are_named_until_rebuild(small_index: Path) -> None:
    assert "text-xlingual labels" not in _by_name(_doctor(small_index, "--no-models")[1])
    with sqlite3.connect(small_index / "catalog.sqlite") as db:  # as an older version wrote them
        unlabelled = db.execute("UPDATE fingerprints SET label = NULL WHERE signal = 'text-xlingual'").rowcount
    assert unlabelled >= 1
    code, doc = _doctor(small_index, "--no-models")
    f = _by_name(doc)["text-xlingual labels"]
    assert code == 0 and f["status"] == "warn" and "no language" in f["detail"] and "rebuild" in f["detail"]
    with Index.open(small_index) as idx:
        assert idx.rebuild()["labelled"] == {"text-xlingual": unlabelled}
    assert "text-xlingual labels" not in _by_name(_doctor(small_index, "--no-models")[1])


def test_an_index_made_by_another_model_fails_with_exit_4(small_index: Path) -> None:
    with sqlite3.connect(small_index / "catalog.sqlite") as db:
        db.execute("UPDATE signals SET model = 'another-model' WHERE name = 'text-embed'")
    code, doc = _doctor(small_index, "--no-models")
    f = _by_name(doc)["text-embed in index"]
    assert code == 4 and doc["ok"] is False and f["status"] == "fail" and "another-model" in f["detail"]


def test_a_damaged_catalog_fails_and_names_the_file(small_index: Path) -> None:
    db = small_index / "catalog.sqlite"
    with sqlite3.connect(db) as conn:  # checkpoint so the damage below hits the only copy of the pages
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(db.read_bytes())
    data[4096:8192] = b"\xff" * 4096  # a whole page past the header: SQLite opens it, then finds the damage
    db.write_bytes(bytes(data))
    res = CliRunner().invoke(main, ["doctor", "--index", str(small_index), "--no-models"])
    assert res.exit_code == 4, res.output
    assert "FAIL" in res.output and str(db) in res.output


def test_no_index_is_not_a_failure(tmp_path: Path) -> None:
    code, doc = _doctor(tmp_path / "nowhere", "--no-models")
    assert code == 0 and _by_name(doc)[str(tmp_path / "nowhere")]["status"] == "absent"

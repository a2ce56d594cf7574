"""``provenance audit``: clusters, index matches, caching, bad inputs, reports (real model and FAISS)."""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw

from provenance.cli.main import main

EVIL = '<img src=x onerror="alert(1)">&.txt'
TEXT = ("The archivist walked the basement stacks of the old municipal library every morning, counting "
        "boxes of glass negatives, letters from forgotten mayors and the drafts of a novel nobody had "
        "finished. She wrote each finding into a ledger bound in green cloth, and by winter the ledger "
        "held more stories than the shelves did.")


def _picture(seed: int) -> Image.Image:
    r = random.Random(seed)
    im = Image.new("RGB", (400, 300), (255, 255, 255))
    d = ImageDraw.Draw(im)
    for _ in range(40):
        x, y = r.randint(0, 380), r.randint(0, 280)
        d.rectangle([x, y, x + r.randint(10, 120), y + r.randint(10, 90)],
                    fill=(r.randint(0, 255), r.randint(0, 255), r.randint(0, 255)))
    return im


def _run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """An archive (image + rotated + re-encoded copies, unrelated image, copied text, bad file, symlink
    loop, malicious name), an index holding one source image, and the first audit's outputs."""
    root = tmp_path_factory.mktemp("audit")
    archive, published = root / "archive", root / "published"
    (archive / "sub").mkdir(parents=True)
    published.mkdir()
    a = _picture(1)
    a.save(archive / "photo.jpg", quality=95)
    a.rotate(90, expand=True).save(archive / "sub" / "photo-rotated.jpg", quality=80)
    a.save(archive / "sub" / "photo.png")
    _picture(2).save(archive / "unrelated.jpg")
    _picture(3).save(published / "press.jpg")
    _picture(3).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(archive / "press-mirrored.jpg", quality=85)
    (archive / "essay.txt").write_text(TEXT)
    (archive / "essay-copy.md").write_text("Preface. " + TEXT[:250] + " Then something else entirely.")
    (archive / EVIL).write_text("A harmless text with an evil name, long enough to be fingerprinted here.")
    (archive / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (archive / "ignored.tmp").write_text("excluded by glob")
    os.symlink(archive, archive / "sub" / "loop")
    index = root / "idx"
    code, _, err = _run("add", "--index", str(index), "--source", "press", str(published / "press.jpg"))
    assert code == 0, err
    out = {k: root / f"report.{k}" for k in ("json", "csv", "html")}
    code, stdout, stderr = _run("audit", str(archive), "--index", str(index), "--exclude", "*.tmp", "-q",
                                "--json", str(out["json"]), "--csv", str(out["csv"]), "--html", str(out["html"]))
    return {"root": root, "archive": archive, "index": index, "code": code, "stdout": stdout,
            "stderr": stderr, "doc": json.loads(out["json"].read_text()), **out}


def _item(doc: dict, name: str) -> dict:
    return next(i for i in doc["items"] if Path(i["path"]).name == name)


def test_clusters_found_with_representative(audited):
    doc = audited["doc"]
    assert doc["schema"] == "provenance.audit/1"
    by_members = {frozenset(Path(m).name for m in c["members"]): c for c in doc["clusters"]}
    photos = by_members[frozenset({"photo.jpg", "photo-rotated.jpg", "photo.png"})]
    assert photos["verdict"] == "near-duplicate"
    # Same pixel count for all three: the largest file is the representative.
    sizes = {m: _item(doc, Path(m).name)["size"] for m in photos["members"]}
    assert photos["representative"] == max(sizes, key=sizes.get)
    rotated_edges = [e for e in photos["edges"] if "photo-rotated" in e["a"] + e["b"]]
    assert any("rotate" in e["evidence"]["pdq"]["transform"] for e in rotated_edges)
    texts = by_members[frozenset({"essay.txt", "essay-copy.md"})]
    shingle = texts["edges"][0]["evidence"]["text-shingle"]
    assert shingle["passed"] and shingle["longest_run_words"] >= 12
    assert _item(doc, "unrelated.jpg")["verdict"] == "original"
    assert _item(doc, "unrelated.jpg")["cluster"] is None


def test_index_matches_reported(audited):
    item = _item(audited["doc"], "press-mirrored.jpg")
    assert item["index_verdict"] == "near-duplicate"
    match = item["index_matches"][0]
    assert match["source"] == "press"
    assert match["evidence"]["pdq"]["transform"].endswith("mirror-left-right")  # maybe of the trimmed image
    assert audited["doc"]["summary"]["matched_in_index"] == 1


def test_bad_file_and_symlink_loop_reported_not_fatal(audited):
    assert audited["code"] == 3  # documented: some input was skipped
    doc = audited["doc"]
    bad = _item(doc, "broken.jpg")
    assert bad["verdict"] == "error" and "corrupt" in bad["error"]
    # Issue 11: the walk does not follow symlinks (so cannot loop) unless --follow-links.
    assert any("not followed" in w["error"] and w["path"].endswith("loop") for w in doc["walk_errors"])
    assert not any(i["path"].endswith(".tmp") for i in doc["items"])
    assert "broken.jpg" in audited["stderr"]


def test_incremental_rerun_reuses_fingerprints(audited, tmp_path):
    first = audited["doc"]["summary"]
    assert first["fingerprinted"] == first["files"] - 1 and first["reused"] == 0
    args = ["audit", str(audited["archive"]), "--index", str(audited["index"]), "-q", "--exclude", "*.tmp"]
    code, stdout, _ = _run(*args, "--json", "-")
    second = json.loads(stdout)["summary"]
    assert code == 3 and second["fingerprinted"] == 0 and second["batch_fingerprinted"] == 0
    assert second["reused"] == first["files"]
    # A moved file is not re-decoded: its bytes are known by sha256.
    shutil.copy(audited["archive"] / "unrelated.jpg", audited["archive"] / "moved.jpg")
    try:
        code, stdout, _ = _run(*args, "--json", "-")
        third = json.loads(stdout)["summary"]
        assert third["reused_by_sha256"] == 1 and third["fingerprinted"] == 0
    finally:
        (audited["archive"] / "moved.jpg").unlink()


def test_html_escapes_user_text(audited):
    page = audited["html"].read_text()
    assert EVIL not in page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;&amp;.txt" in page  # Jinja2 autoescape (issue 11)
    assert "http://" not in page and "https://" not in page  # self-contained


def test_csv_one_row_per_item(audited):
    rows = list(csv.DictReader(audited["csv"].open(encoding="utf-8")))
    assert len(rows) == audited["doc"]["summary"]["files"]
    row = next(r for r in rows if r["path"].endswith("photo-rotated.jpg"))
    assert row["verdict"] == "near-duplicate" and Path(row["representative"]).name.startswith("photo.")
    assert next(r for r in rows if r["path"].endswith("broken.jpg"))["verdict"] == "error"


def test_add_then_rerun_matches_index(audited, tmp_path):
    index = tmp_path / "fresh-idx"
    args = ["audit", str(audited["archive"]), "--index", str(index), "--state", str(tmp_path / "s.sqlite"), "-q"]
    code, stdout, _ = _run(*args, "--add", "--json", "-")
    assert json.loads(stdout)["summary"]["added_to_index"] >= 8
    code, stdout, _ = _run(*args, "--json", "-")
    doc = json.loads(stdout)
    assert doc["summary"]["fingerprinted"] == 0
    assert _item(doc, "essay.txt")["index_verdict"] == "exact"


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_html_renders_in_headless_chromium(audited, tmp_path):
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,1400"]
    url = audited["html"].resolve().as_uri()
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=60).stdout
    assert 'id="cluster-1"' in dom and "data:image/jpeg;base64," in dom
    # The malicious name stays text: no <img src=x> element was created from it.
    assert '<img src="x"' not in dom and "<img src=x" not in dom and "&lt;img src=x" in dom
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, f"--screenshot={shot}", url], capture_output=True, timeout=60)
    img = Image.open(shot).convert("RGB")
    assert img.size == (1200, 1400)
    # Not blank: the page has plenty of non-white pixels...
    colours = img.getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 50
    # ...and the first cluster's thumbnails are drawn: the gallery band holds saturated colours that only
    # the synthetic pictures have (text is black/grey, borders grey/green).
    px = np.asarray(img, dtype=np.int16)
    saturated = int(((px.max(axis=2) - px.min(axis=2)) > 120).sum())
    assert saturated > 5000, saturated


def test_audit_never_audits_its_own_state_or_index(tmp_path: Path) -> None:
    folder = tmp_path / "archive"
    folder.mkdir()
    _picture(3).save(folder / "a.png")
    (folder / "note.txt").write_text("A short note about nothing in particular, written for this test.")
    idx = folder / "idx"  # index and its default state file (idx.audit.sqlite) live inside the folder
    for _ in range(2):  # the second run finds the state files from the first on disk
        code, out, err = _run("audit", "--index", str(idx), "--add", "--json", "-", str(folder))
        assert code == 0, err
        doc = json.loads(out)
        assert doc["summary"]["files"] == 2 and doc["summary"]["errors"] == 0


def test_many_identical_hashes_stay_linear(tmp_path: Path) -> None:
    from PIL.PngImagePlugin import PngInfo
    folder = tmp_path / "blanks"
    folder.mkdir()
    n = 150
    for i in range(n):  # one blank picture saved 150 times with different metadata: different bytes
        meta = PngInfo()
        meta.add_text("id", str(i))
        Image.new("RGB", (64, 48), (250, 250, 250)).save(folder / f"b{i:03d}.png", pnginfo=meta)
    code, out, err = _run("audit", "--state", str(tmp_path / "s.sqlite"), "--json", "-", str(folder))
    assert code == 0, err
    doc = json.loads(out)
    assert len(doc["clusters"]) == 1 and len(doc["clusters"][0]["members"]) == n
    # A star per group of identical hashes, not all n*(n-1)/2 pairs.
    assert len(doc["clusters"][0]["edges"]) < 3 * n

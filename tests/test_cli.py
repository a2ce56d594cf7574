"""The CLI: exit codes, output formats, batches with bad files."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from provenance.cli.main import main
from provenance.samples import DRAFTS, SOURCES


@pytest.fixture()
def env(tmp_path):
    src = tmp_path / "sources"
    src.mkdir()
    for name, text in SOURCES.items():
        (src / name).write_text(text, encoding="utf-8")
    drafts = tmp_path / "drafts"
    drafts.mkdir()
    for name, text in DRAFTS.items():
        (drafts / name).write_text(text, encoding="utf-8")
    return tmp_path, src, drafts


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def test_init_add_check_info_remove(env, photos):
    tmp, src, drafts = env
    idx = tmp / "idx"
    assert run("init", "--index", idx).exit_code == 0
    r = run("add", "--index", idx, "--recursive", "--source", "books", src, photos["photo0"])
    assert r.exit_code == 0, r.output
    assert "added 4" in r.output

    r = run("check", "--index", idx, "--json", drafts / "draft-copied.md", drafts / "draft-original.md")
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert doc["schema"] == "provenance.report/1"
    copied, original = doc["reports"]
    assert copied["verdict"] == "near-duplicate" and original["verdict"] == "original"
    m = copied["matches"][0]
    assert m["source"] == "books" and m["path"].endswith("darwin-entangled-bank.txt")
    assert {"id", "path", "source", "signal", "score", "threshold", "evidence"} <= set(m)
    reg = m["evidence"]["text-shingle"]["regions"][0]
    assert {"start", "end", "snippet"} <= set(reg["draft"]) and {"start", "end", "snippet"} <= set(reg["source"])

    # --fail-on never and a clean draft both exit 0; jsonl gives one report per line.
    assert run("check", "--index", idx, "--fail-on", "never", drafts / "draft-copied.md").exit_code == 0
    r = run("check", "--index", idx, "--jsonl", drafts / "draft-original.md", drafts / "draft-copied.md",
            "--fail-on", "exact")
    assert r.exit_code == 0
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["verdict"] for x in lines] == ["original", "near-duplicate"]

    r = run("info", "--index", idx, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["counts"]["items"] == 4

    item = m["id"]
    assert run("remove", "--index", idx, item).exit_code == 0
    r = run("check", "--index", idx, "--json", drafts / "draft-copied.md")
    assert r.exit_code == 0 and json.loads(r.stdout)["reports"][0]["verdict"] == "original"
    assert run("remove", "--index", idx, item).exit_code == 2  # a missing id is a usage error


def test_human_table_and_stdin(env, photos):
    tmp, src, _ = env
    idx = tmp / "idx"
    run("add", "--index", idx, photos["photo1"])
    r = run("check", "--index", idx, photos["photo1"])
    assert r.exit_code == 1 and "EXACT" in r.output and "via sha256" in r.output
    r = run("check", "--index", idx, "--json", "-", input=SOURCES["lincoln-gettysburg.txt"])
    assert r.exit_code == 0  # Lincoln is not in this index
    assert json.loads(r.stdout)["reports"][0]["path"] == "<stdin>"


def test_bad_file_in_batch_is_reported_and_skipped(env, tmp_path):
    _, src, drafts = env
    idx = tmp_path / "idx"
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    r = run("add", "--index", idx, bad, src / "lincoln-gettysburg.txt", tmp_path / "missing.txt")
    assert r.exit_code == 3
    assert "broken.png" in r.stderr and "missing.txt" in r.stderr and "added 1" in r.stdout
    r = run("check", "--index", idx, "--json", bad, drafts / "draft-original.md")
    assert r.exit_code == 3 and "broken.png" in r.stderr
    assert len(json.loads(r.stdout)["reports"]) == 1


def test_usage_and_index_errors(tmp_path):
    assert run("check", "--index", tmp_path / "none", tmp_path).exit_code == 4
    assert run("check", "--fail-on", "bogus", "x").exit_code == 2
    assert run("check", "--json", "--jsonl", "--index", tmp_path / "none", "x").exit_code == 2


def test_directory_without_recursive_is_reported(env, tmp_path):
    _, src, _ = env
    r = run("add", "--index", tmp_path / "idx", src)
    assert r.exit_code == 3 and "--recursive" in r.stderr


def test_demo_runs_on_the_bundled_corpus():
    r = run("demo", "--json")
    assert r.exit_code == 0
    verdicts = {x["path"]: x["verdict"] for x in json.loads(r.stdout)["reports"]}
    assert verdicts["drafts/draft-copied.md"] == "near-duplicate"
    assert verdicts["drafts/draft-paraphrase.md"] == "paraphrase"
    assert verdicts["drafts/draft-original.md"] == "original"
    assert verdicts["drafts/photo-rotated-recompressed.jpg"] == "near-duplicate"
    assert verdicts["drafts/photo-unrelated.jpg"] == "original"


def test_check_reports_what_the_file_says_about_its_origin(tmp_path: Path) -> None:
    """A generator's settings in a PNG text chunk appear under the report's ``provenance`` section."""
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a cat in a hat\nSteps: 20, Sampler: Euler a, Model: sd_xl_base_1.0")
    img = tmp_path / "generated.png"
    Image.new("RGB", (64, 64), (200, 30, 30)).save(img, pnginfo=info)
    idx = tmp_path / "idx"
    assert run("init", "--index", idx).exit_code == 0
    doc = json.loads(run("check", "--index", idx, "--json", img).stdout)
    prov = doc["reports"][0]["provenance"]
    assert prov["suggestion"] == "trainedAlgorithmicMedia"
    assert any(s["signal"] == "generator-settings" for s in prov["signals"])
    plain = json.loads(run("check", "--index", idx, "--json", "--no-origin", img).stdout)
    assert "provenance" not in plain["reports"][0]


def test_items_lists_and_filters_ids(env) -> None:
    tmp, sources, _ = env
    idx = tmp / "idx"
    assert run("add", "--index", idx, "--source", "books", "--recursive", sources).exit_code == 0
    listed = json.loads(run("items", "--index", idx, "--json").stdout)["items"]
    assert listed and all(i["source"] == "books" for i in listed)
    one = listed[0]
    only = json.loads(run("items", "--index", idx, "--json", "--path", "*" + Path(one["path"]).name).stdout)
    assert [i["id"] for i in only["items"]] == [one["id"]]
    assert json.loads(run("items", "--index", idx, "--json", "--source", "nope").stdout)["items"] == []
    assert run("remove", "--index", idx, one["id"]).exit_code == 0
    assert one["id"] not in [i["id"] for i in json.loads(run("items", "--index", idx, "--json").stdout)["items"]]


def test_file_names_cannot_break_or_disguise_table_rows(env) -> None:
    """A newline or a right-to-left override in a file name is shown escaped, on the one row it belongs to."""
    tmp, sources, _ = env
    idx = tmp / "idx"
    run("init", "--index", idx)
    odd = tmp / "report\u202etxt.exe\nEXACT.md"
    odd.write_text(next(iter(SOURCES.values())), encoding="utf-8")
    r = run("check", "--index", idx, "--no-origin", odd)
    assert r.exit_code == 0
    first = r.stdout.splitlines()[0]
    assert "\\u202e" in first and "\\n" in first and first.endswith("ORIGINAL")


def test_check_shows_progress_per_file_and_stage_when_asked(env):
    """Issue 12 item 7: a long check says what it is working on (on a terminal by default; --progress
    forces it into a log, --no-progress / --quiet / a pipe keep stderr clean)."""
    tmp, src, drafts = env
    idx = tmp / "idx"
    assert run("add", "--index", idx, "--recursive", src).exit_code == 0
    files = [drafts / "draft-copied.md", drafts / "draft-original.md"]
    r = run("check", "--index", idx, "--json", "--progress", *files)
    assert r.exit_code == 1
    lines = r.stderr.splitlines()
    assert any(line.startswith("[1/2] ") and "draft-copied.md: text-embed: fingerprinting" in line
               and "words" in line for line in lines), lines
    assert any(line.startswith("[1/2] ") and "verifying candidate 1 of" in line for line in lines), lines
    assert any(line.startswith("[2/2] ") and "draft-original.md: text-embed: searching" in line for line in lines)
    assert json.loads(r.stdout)["reports"][0]["verdict"] == "near-duplicate"  # stdout stays pure JSON
    quiet = run("check", "--index", idx, "--json", *files)  # not a terminal: no progress by default
    assert quiet.exit_code == 1 and quiet.stderr == ""


def test_check_progress_is_on_by_default_on_a_terminal_and_leaves_no_trace(env):
    """On a real terminal (a pty) the status line is redrawn in place and erased before results print."""
    import os
    import pty
    import subprocess
    import sys

    tmp, src, drafts = env
    idx = tmp / "idx"
    assert run("add", "--index", idx, "--recursive", src).exit_code == 0
    leader, follower = pty.openpty()
    proc = subprocess.run([sys.executable, "-m", "provenance.cli.main", "check", "--index", str(idx),
                           "draft-original.md"], cwd=drafts, stdout=subprocess.PIPE, stderr=follower, timeout=600)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the follower side is closed and drained
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert proc.returncode == 0 and b"ORIGINAL" in proc.stdout
    assert b"\rdraft-original.md: text-embed: fingerprinting" in seen, seen
    assert seen.rstrip(b" ").endswith(b"\r"), seen[-200:]  # the last write erases the status line


def test_check_does_not_import_the_other_commands():
    # A pre-commit hook runs `provenance check` on every commit: the disclosure, audit and service commands
    # (C2PA signing, XMP, report templates) are imported only when they run, and still listed by --help.
    code = ("import sys\nfrom click.testing import CliRunner\nfrom provenance.cli.main import main\n"
            "r = CliRunner().invoke(main, ['check', '--help'])\nassert r.exit_code == 0, r.output\n"
            "print(sorted(m for m in sys.modules if m.startswith('provenance.cli.')))\n"
            "print(CliRunner().invoke(main, ['--help']).output)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = out.splitlines()[0]
    for lazy in ("disclose", "verify", "audit", "evaluate", "serve", "doctor", "inspect_origin"):
        assert f"provenance.cli.{lazy}'" not in loaded
    for name in ("add", "check", "disclose", "verify", "lookup", "inspect", "audit", "eval", "doctor", "serve",
                 "keys"):
        assert f"\n  {name} " in out

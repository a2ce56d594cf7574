"""Issue 14 on ``disclose``/``verify``/``lookup``/``inspect``: consistency with what the input
carries, history kept as a parentOf ingredient, the io.iscc.v0 soft binding and lookup by it,
and the disclosures table migration. Real C2PA SDK (and its own Reader), real index."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import c2pa
import numpy as np
import pytest
from click.testing import CliRunner, Result
from PIL import Image, ImageFilter

from provenance.cli.main import main
from provenance.indexes.manifests import DISCLOSURES_SCHEMA_VERSION, DisclosureStore
from provenance.iptc import DIGITAL_SOURCE_TYPES
from provenance.soft_binding import (
    ISCC_ALG,
    ISCC_NEAR_BITS,
    iscc_content_code,
    iscc_distance,
)

from .conftest import DATA

CONFORMANCE = DATA / "conformance" / "c2pa"
FIXTURES = Path(__file__).resolve().parent / "data" / "watermarks"
TRAINED = DIGITAL_SOURCE_TYPES["trainedAlgorithmicMedia"]


def run(*args: object, ok: tuple[int, ...] | None = None) -> Result:
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    if ok is not None:
        assert result.exit_code in ok, (result.exit_code, result.stdout, result.stderr)
    return result


def textured(path: Path, seed: int, fmt: str = "JPEG") -> Path:
    rng = np.random.default_rng(seed)
    small = Image.fromarray((rng.random((30, 40, 3)) * 255).astype("uint8"))
    small.resize((400, 300), Image.BICUBIC).filter(ImageFilter.GaussianBlur(2)).save(path, fmt)
    return path


def sdk_store(path: Path) -> dict:
    """The manifest store as c2pa-python's own Reader gives it (not through our code)."""
    with open(path, "rb") as stream:
        reader = c2pa.Reader("image/jpeg", stream)
        try:
            return json.loads(reader.json())
        finally:
            reader.close()


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("history")
    run("keys", "new", root / "signer", "--name", "History Signer", ok=(0,))
    run("init", "--index", root / "idx", ok=(0,))
    return {"root": root, "signer": root / "signer", "idx": root / "idx"}


def disclose(work: dict[str, Path], *args: object, ok: tuple[int, ...] = (0,)) -> Result:
    return run("disclose", "--signer", work["signer"], "--index", work["idx"], "--json", *args,
               ok=ok)


def test_redisclosure_keeps_the_first_manifest_as_parent(work: dict[str, Path],
                                                          tmp_path: Path) -> None:
    pic = textured(tmp_path / "p.jpg", 1)
    first = json.loads(disclose(work, "--source-type", "trainedAlgorithmicMedia",
                                "--generator", "ImageGen 3", pic).stdout)
    assert first["parent_manifest"] is None and first["soft_binding"].startswith("ISCC:")
    signed = Path(first["path"])
    second_path = tmp_path / "p2.jpg"
    second = json.loads(disclose(work, "--source-type", "compositeWithTrainedAlgorithmicMedia",
                                 "-o", second_path, signed).stdout)
    assert second["parent_manifest"] == first["manifest_label"]
    assert second["parent_status"] == "valid" and second["consistency"]["consistent"]

    store = sdk_store(second_path)  # the SDK's reader sees the chain
    active = store["manifests"][store["active_manifest"]]
    [parent] = active["ingredients"]
    assert parent["relationship"] == "parentOf"
    assert parent["active_manifest"] == first["manifest_label"]
    actions = next(a for a in active["assertions"]
                   if a["label"].startswith("c2pa.actions"))["data"]["actions"]
    assert [a["action"] for a in actions] == ["c2pa.opened", "c2pa.edited.metadata"]
    assert actions[0]["parameters"]["ingredients"]  # opened points at the parent ingredient
    assert actions[1]["digitalSourceType"].endswith("compositeWithTrainedAlgorithmicMedia")
    binding = next(a for a in active["assertions"] if a["label"] == "c2pa.soft-binding")
    assert binding["data"]["alg"] == ISCC_ALG
    assert binding["data"]["blocks"] == [{"scope": {}, "value": second["soft_binding"]}]

    verified = json.loads(run("verify", "--json", second_path, ok=(0,)).stdout)
    chain = verified["chain"]
    assert [(c["depth"], c["relationship"], c["status"]) for c in chain] == [
        (0, None, "valid"), (1, "parentOf", "valid")]
    assert chain[1]["source_types"] == [TRAINED] and chain[1]["generator"] == "ImageGen 3"
    assert "history (newest first)" in run("verify", second_path, ok=(0,)).stdout


def test_declaring_capture_for_signed_ai_content_warns_and_strict_refuses(
        work: dict[str, Path], tmp_path: Path) -> None:
    pic = textured(tmp_path / "ai.jpg", 2)
    signed = Path(json.loads(disclose(work, "--source-type", "trainedAlgorithmicMedia",
                                      pic).stdout)["path"])
    warned = disclose(work, "--source-type", "digitalCapture", "--no-record",
                      "-o", tmp_path / "w.jpg", signed)
    doc = json.loads(warned.stdout)
    assert not doc["consistency"]["consistent"]
    assert "declared digitalCapture" in doc["consistency"]["conflicts"][0]["message"]
    assert doc["origin"]["suggestion"] == "trainedAlgorithmicMedia"
    assert "warning:" in warned.stderr and "trainedAlgorithmicMedia" in warned.stderr

    refused = disclose(work, "--source-type", "digitalCapture", "--strict",
                       "-o", tmp_path / "s.jpg", signed, ok=(1,))
    doc = json.loads(refused.stdout)
    assert doc["disclosed"] is False and not doc["consistency"]["consistent"]
    assert any(s["signal"] == "c2pa" for s in doc["origin"]["signals"])
    assert not (tmp_path / "s.jpg").exists()  # nothing written
    # The watermark of an open generator is evidence too.
    wm = shutil.copy(FIXTURES / "sdxl_bgr.png", tmp_path / "render.png")
    refused = disclose(work, "--source-type", "digitalCapture", "--strict", wm, ok=(1,))
    assert "watermark" in json.loads(refused.stdout)["reason"]
    assert disclose(work, "--source-type", "trainedAlgorithmicMedia", "--strict", "--no-record",
                    wm).exit_code == 0
    # Signed anyway as a capture (a PNG keeps its pixels, so the watermark stays): inspect
    # lets the watermark decide over the signed claim, and lists the conflict.
    lied = json.loads(disclose(work, "--source-type", "digitalCapture", "--no-record",
                               "-o", tmp_path / "lied.png", wm).stdout)
    report = json.loads(run("inspect", "--json", lied["path"], ok=(0,)).stdout)["reports"][0]
    assert report["suggestion"] == "trainedAlgorithmicMedia"
    assert any("c2pa" in c["message"] and "digitalCapture" in c["message"]
               for c in report["conflicts"])


@pytest.mark.skipif(not CONFORMANCE.is_dir(), reason="conformance assets absent")
def test_redisclosing_reference_assets_made_by_other_tools(work: dict[str, Path],
                                                          tmp_path: Path) -> None:
    expected = {"C.jpg": "valid", "XCA.jpg": "tampered", "E-sig-CA.jpg": "invalid-signature"}
    for name, parent_status in expected.items():
        out = tmp_path / f"re-{name}"
        doc = json.loads(disclose(work, "--source-type", "humanEdits", "--no-record", "-o", out,
                                  CONFORMANCE / name).stdout)
        assert doc["parent_status"] == parent_status and doc["parent_manifest"]
        chain = json.loads(run("verify", "--json", out, ok=(0,)).stdout)["chain"]
        # Our new manifest is valid; the one before keeps the state it had.
        assert chain[0]["status"] == "valid" and chain[1]["status"] == parent_status
        assert chain[1]["claim_generator"].startswith("make_test_images")
    c_chain = json.loads(run("verify", "--json", tmp_path / "re-C.jpg").stdout)["chain"]
    assert c_chain[1]["source_types"] == [DIGITAL_SOURCE_TYPES["algorithmicMedia"]]
    # A remote manifest cannot be read; the SDK records the ingredient as inaccessible.
    doc = json.loads(disclose(work, "--source-type", "humanEdits", "--no-record",
                              "-o", tmp_path / "re-cloud.jpg", CONFORMANCE / "cloud.jpg").stdout)
    assert doc["parent_status"] == "unreachable" and "remote" in doc["parent_note"]
    chain = json.loads(run("verify", "--json", tmp_path / "re-cloud.jpg").stdout)["chain"]
    assert chain[1]["status"] == "unreachable"


def test_text_redisclosure_chains_its_sidecars(work: dict[str, Path], tmp_path: Path) -> None:
    post = tmp_path / "post.md"
    post.write_text("# Notes\n\nA short post about tides and the harbour wall.\n")
    first = json.loads(disclose(work, "--source-type", "humanEdits", "--no-record", post).stdout)
    assert first["soft_binding"].startswith("ISCC:EA")  # a text content code
    second = json.loads(disclose(work, "--source-type", "trainedAlgorithmicMedia",
                                 "--no-record", post).stdout)
    assert second["parent_manifest"] == first["manifest_label"]
    chain = json.loads(run("verify", "--json", post, ok=(0,)).stdout)["chain"]
    assert [c["actions"] for c in chain] == [["c2pa.opened", "c2pa.edited.metadata"],
                                             ["c2pa.created"]]


def test_stripped_reencoded_copy_is_found_by_its_iscc_soft_binding(work: dict[str, Path],
                                                                  tmp_path: Path) -> None:
    pic = textured(tmp_path / "orig.png", 5, "PNG")
    doc = json.loads(disclose(work, "--source-type", "trainedAlgorithmicMedia", pic).stdout)
    code = doc["soft_binding"]
    copy = tmp_path / "copy.jpg"
    with Image.open(doc["path"]) as im:  # metadata stripped, re-encoded, resized
        im.convert("RGB").resize((320, 240), Image.LANCZOS).save(copy, "JPEG", quality=70)
    copy_code = iscc_content_code(copy.read_bytes(), "image/jpeg")
    assert iscc_distance(code, copy_code) <= ISCC_NEAR_BITS
    # Another resolver only needs the code and the rule: recompute, compare.
    found = json.loads(run("lookup", "--json", "--index", work["idx"], copy, ok=(0,)).stdout)
    assert found["iscc"] == copy_code.code
    hit = next(h for h in found["hits"] if h["item_id"] == doc["recorded"]["item_id"])
    assert hit["closeness"]["iscc"]["distance"] <= ISCC_NEAR_BITS
    # With the fingerprints gone (item removed from matching), the ISCC alone still finds it.
    run("remove", "--index", work["idx"], doc["recorded"]["item_id"], ok=(0,))
    alone = json.loads(run("lookup", "--json", "--index", work["idx"], copy, ok=(0,)).stdout)
    [hit] = [h for h in alone["hits"] if h["item_id"] == doc["recorded"]["item_id"]]
    assert hit["signal"] == "iscc" and hit["verdict"] == "near-duplicate"
    assert hit["disclosures"][0]["iscc"] == code
    # An unrelated picture is not found by it.
    other = textured(tmp_path / "other.jpg", 99)
    assert run("lookup", "--json", "--index", work["idx"], other).exit_code == 10


def test_version_1_disclosures_table_is_migrated(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "catalog.sqlite", isolation_level=None)
    db.row_factory = sqlite3.Row
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
        CREATE TABLE disclosures (id INTEGER PRIMARY KEY AUTOINCREMENT, item_id INTEGER NOT NULL,
            manifest_label TEXT, output_path TEXT NOT NULL, manifest_path TEXT,
            output_sha256 TEXT NOT NULL, embedded INTEGER NOT NULL, media_type TEXT NOT NULL,
            source_type TEXT NOT NULL, generator TEXT, signer TEXT NOT NULL,
            signer_cert_sha256 TEXT, originality TEXT, disclosed_at REAL NOT NULL);
        INSERT INTO meta VALUES ('disclosures_schema_version', '1');
        INSERT INTO disclosures(item_id, output_path, output_sha256, embedded, media_type,
            source_type, signer, disclosed_at) VALUES (7, '/x.jpg', 'ab', 1, 'image/jpeg',
            'http://cv.iptc.org/newscodes/digitalsourcetype/humanEdits', 'CN=old', 1.0);
    """)
    store = DisclosureStore(db)
    [old] = store.for_items([7])[7]
    assert old.iscc is None and old.signer == "CN=old"
    assert db.execute("SELECT value FROM meta WHERE key='disclosures_schema_version'"
                      ).fetchone()[0] == str(DISCLOSURES_SCHEMA_VERSION)
    new = store.record(item_id=8, manifest_label="m", output_path="/y.jpg", manifest_path=None,
                       output_sha256="cd", embedded=True, media_type="image/jpeg",
                       source_type=TRAINED, generator=None, signer="CN=new",
                       signer_cert_sha256=None, originality=None, iscc="ISCC:EEAYAAAAAAAAAAAA")
    assert [r.id for r in store.with_iscc()] == [new.id]
    DisclosureStore(db)  # opening again is a no-op
    db.execute("UPDATE meta SET value='99' WHERE key='disclosures_schema_version'")
    with pytest.raises(Exception, match="upgrade provenance-checker"):
        DisclosureStore(db)


def test_inspect_cli_batch_json_and_exit_codes(tmp_path: Path) -> None:
    wm = FIXTURES / "sd2_bgr.png"
    plain = textured(tmp_path / "plain.jpg", 3)
    (tmp_path / "broken.png").write_bytes(b"")
    result = run("inspect", "--json", wm, tmp_path / "broken.png", plain, ok=(3,))
    doc = json.loads(result.stdout)
    assert doc["schema"] == "provenance.inspect/1"
    assert [r["suggestion"] for r in doc["reports"]] == ["trainedAlgorithmicMedia", "unknown"]
    assert "broken.png" in doc["errors"][0]["path"] and "broken.png" in result.stderr
    assert run("inspect", "--fail-on-ai", wm, ok=(1,)).stdout.count("watermark") >= 1
    human = run("inspect", plain, ok=(0,)).stdout
    assert "unknown" in human and "not evidence of a camera capture" in human
    lines = run("inspect", "--jsonl", "--no-watermarks", wm, plain, ok=(0,)).stdout.splitlines()
    assert [json.loads(x)["suggestion"] for x in lines] == ["unknown", "unknown"]

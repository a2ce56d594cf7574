"""``provenance keys new / disclose / verify / lookup`` end to end: real C2PA SDK, real index
(with the real MiniLM model, loaded once per process), real exiftool when installed."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from PIL import Image, ImageFilter

from provenance.cli.exit_codes import VERIFY_EXIT_CODES
from provenance.cli.main import main

from .conftest import DATA

CONFORMANCE = DATA / "conformance" / "c2pa"
TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
ORIGINALITY = "org.provenance-checker.originality"

ARTICLE = (
    "# Harbour notes\n\n"
    "The ferry left the northern pier a little after seven, carrying mostly commuters and a "
    "handful of cyclists who had misjudged the weather. By the time it passed the lighthouse "
    "the rain had settled into a steady drizzle, and the deck emptied as people crowded into "
    "the cabin to read, doze or stare at their phones. The harbour master later said that "
    "the crossing had been the calmest of the month, despite the grey sky, and that the new "
    "timetable would add two evening sailings from the spring. Residents of the island have "
    "asked for those extra sailings for years, arguing that the last boat leaves too early "
    "for anyone working a late shift on the mainland.\n"
)


def run(*args: str, ok: tuple[int, ...] | None = None) -> Result:
    """Invoke the CLI in-process; ``ok`` lists the exit codes the caller expects."""
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    if ok is not None:
        assert result.exit_code in ok, (result.exit_code, result.stdout, result.stderr)
    return result


def textured_image(path: Path, fmt: str, seed: int = 0, **save: object) -> Path:
    """A photo-like image (smooth random texture) that PDQ rates above its quality gate."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray((rng.random((30, 40, 3)) * 255).astype("uint8"))
    small.resize((400, 300), Image.BICUBIC).filter(ImageFilter.GaussianBlur(2)).save(
        path, fmt, **save)
    return path


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One signer, a second (foreign) signer, and one index shared by the module's tests."""
    root = tmp_path_factory.mktemp("disclose-cli")
    run("keys", "new", root / "signer", "--name", "CLI Test Signer", ok=(0,))
    run("keys", "new", root / "other", "--name", "Someone Else", ok=(0,))
    run("init", "--index", root / "idx", ok=(0,))
    return {"root": root, "signer": root / "signer", "other": root / "other",
            "idx": root / "idx"}


def verify_json(path: Path, *extra: str, ok: tuple[int, ...] | None = None) -> tuple[int, dict]:
    result = run("verify", "--json", path, *extra, ok=ok)
    return result.exit_code, json.loads(result.stdout)


# --- keys -------------------------------------------------------------------------------


def test_keys_new_files_mode_and_warning(tmp_path: Path) -> None:
    result = run("keys", "new", tmp_path / "k", "--algorithm", "ed25519", ok=(0,))
    assert "UNTRUSTED" in result.stdout and "ca.pem" in result.stdout
    assert stat.S_IMODE((tmp_path / "k" / "signer.key").stat().st_mode) == 0o600
    # Never silently replace a key.
    again = run("keys", "new", tmp_path / "k", ok=(3,))
    assert "already exists" in again.stderr and "signer.key" in again.stderr
    # Import an existing chain + key into another directory.
    imported = run("keys", "new", tmp_path / "imp", "--json",
                   "--cert", tmp_path / "k" / "signer-chain.pem",
                   "--key", tmp_path / "k" / "signer.key", ok=(0,))
    info = json.loads(imported.stdout)
    assert info["imported"] and info["algorithm"] == "ed25519" and info["ca"]
    assert stat.S_IMODE((tmp_path / "imp" / "signer.key").stat().st_mode) == 0o600
    assert (tmp_path / "imp" / "ca.pem").read_bytes() == (tmp_path / "k" / "ca.pem").read_bytes()
    run("keys", "new", tmp_path / "x", "--cert", tmp_path / "k" / "signer-chain.pem", ok=(2,))
    # A key that does not belong to the chain is refused, naming the file.
    run("keys", "new", tmp_path / "y", ok=(0,))
    bad = run("keys", "new", tmp_path / "z", "--cert", tmp_path / "k" / "signer-chain.pem",
              "--key", tmp_path / "y" / "signer.key", ok=(3,))
    assert "does not match" in bad.stderr


def test_unknown_source_type_is_a_usage_error(work: dict[str, Path], tmp_path: Path) -> None:
    pic = textured_image(tmp_path / "a.jpg", "JPEG")
    result = run("disclose", "--signer", work["signer"], "--source-type", "aiGenerated", pic,
                 ok=(2,))
    assert "aiGenerated" in result.stderr
    assert "trainedAlgorithmicMedia" in result.stderr and "digitalCapture" in result.stderr
    assert not (tmp_path / "a.c2pa.jpg").exists()


# --- images -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt,suffix,seed", [("JPEG", ".jpg", 1), ("PNG", ".png", 2),
                                             ("WEBP", ".webp", 3)])
def test_image_round_trip_and_stripped_copy_lookup(work: dict[str, Path], tmp_path: Path,
                                                   fmt: str, suffix: str, seed: int) -> None:
    source = textured_image(tmp_path / f"gen{suffix}", fmt, seed=seed)
    disclosed = run("disclose", "--json", "--index", work["idx"], "--signer", work["signer"],
                    "--source-type", "trainedAlgorithmicMedia", "--generator", "ImageGen 3",
                    source, ok=(0,))
    info = json.loads(disclosed.stdout)
    signed = Path(info["path"])
    assert signed == tmp_path / f"gen.c2pa{suffix}" and info["embedded"] and info["xmp_written"]
    assert info["recorded"]["item_id"] and not info["fingerprint_skipped"]

    code, checked = verify_json(signed, ok=(0,))
    assert checked["status"] == "valid" and checked["source_types"] == [TRAINED]
    assert checked["generator"] == "ImageGen 3"
    assert checked["signer"]["common_name"] == "CLI Test Signer"
    code, _ = verify_json(signed, "--trust", work["signer"] / "ca.pem", ok=(0,))
    code, foreign = verify_json(signed, "--trust", work["other"] / "ca.pem",
                                ok=(VERIFY_EXIT_CODES["untrusted"],))
    assert foreign["status"] == "untrusted"
    human = run("verify", signed, ok=(0,)).stdout
    assert "VALID" in human and "trainedAlgorithmicMedia" in human and "ImageGen 3" in human
    # As a publishing gate, an unestablished signer is not enough; a trusted one is.
    gate = run("verify", "--require-trusted", signed, ok=(VERIFY_EXIT_CODES["untrusted"],))
    assert "no --trust anchor was given" in gate.stderr  # says why, not just VALID and exit 11
    run("verify", "--require-trusted", "--trust", work["signer"] / "ca.pem", signed, ok=(0,))

    if shutil.which("exiftool"):  # the independent reader (see test_exiftool_* for the skip)
        out = subprocess.run(["exiftool", "-j", "-XMP-iptcExt:DigitalSourceType", str(signed)],
                             capture_output=True, text=True, check=True, timeout=30)
        assert json.loads(out.stdout)[0]["DigitalSourceType"] == TRAINED

    # A re-encoded, resized copy: the manifest is gone, lookup finds it by PDQ.
    copy = tmp_path / "copy.jpg"
    with Image.open(signed) as im:
        im.convert("RGB").resize((300, 225), Image.LANCZOS).save(copy, "JPEG", quality=70)
    code, stripped = verify_json(copy, ok=(VERIFY_EXIT_CODES["no-manifest"],))
    assert stripped["status"] == "no-manifest" and not stripped["intact"]
    found = run("lookup", "--json", "--index", work["idx"], copy, ok=(0,))
    doc = json.loads(found.stdout)
    assert doc["found"] and doc["own_manifest_status"] == "no-manifest"
    hit = next(h for h in doc["hits"] if h["item_id"] == info["recorded"]["item_id"])
    assert hit["verdict"] == "near-duplicate"
    assert hit["closeness"]["pdq"]["distance"] <= hit["closeness"]["pdq"]["threshold"]
    disclosure = hit["disclosures"][0]
    assert disclosure["manifest_label"] == info["manifest_label"]
    assert disclosure["source_type"] == TRAINED and disclosure["manifest_status"] == "valid"
    human = run("lookup", "--index", work["idx"], copy, ok=(0,)).stdout
    assert info["manifest_label"] in human and "pdq" in human


def test_mirrored_copy_is_found(work: dict[str, Path], tmp_path: Path) -> None:
    source = textured_image(tmp_path / "m.png", "PNG", seed=11)
    run("disclose", "--index", work["idx"], "--signer", work["signer"], "--source-type",
        "compositeWithTrainedAlgorithmicMedia", source, ok=(0,))
    mirrored = tmp_path / "mirrored.webp"
    with Image.open(source) as im:
        im.transpose(Image.FLIP_LEFT_RIGHT).save(mirrored, "WEBP", quality=80)
    doc = json.loads(run("lookup", "--json", "--index", work["idx"], mirrored, ok=(0,)).stdout)
    assert doc["hits"][0]["closeness"]["pdq"]["transform"] != "identity"


def test_unrelated_image_finds_nothing(work: dict[str, Path], tmp_path: Path) -> None:
    other = textured_image(tmp_path / "unrelated.jpg", "JPEG", seed=99)
    result = run("lookup", "--index", work["idx"], other, ok=(10,))
    assert "no recorded disclosure" in result.stdout


def test_tampered_image(work: dict[str, Path], tmp_path: Path) -> None:
    source = textured_image(tmp_path / "t.png", "PNG", seed=5)
    run("disclose", "--no-record", "--signer", work["signer"], "--source-type",
        "trainedAlgorithmicMedia", "--in-place", source, ok=(0,))
    assert verify_json(source, ok=(0,))[1]["status"] == "valid"  # in place: the file itself
    data = bytearray(source.read_bytes())
    data[data.find(b"IDAT") + 20] ^= 0xFF
    source.write_bytes(bytes(data))
    code, result = verify_json(source, ok=(VERIFY_EXIT_CODES["tampered"],))
    assert result["status"] == "tampered" and not result["intact"]
    human = run("verify", source, ok=(12,)).stdout
    assert "TAMPERED" in human and "NOT verified" in human and "VALID" not in human


# --- text -------------------------------------------------------------------------------


def test_markdown_sidecar_round_trip_edit_and_lookup(work: dict[str, Path], tmp_path: Path) -> None:
    draft = tmp_path / "harbour.md"
    draft.write_text(ARTICLE, encoding="utf-8")
    info = json.loads(run("disclose", "--json", "--index", work["idx"], "--signer",
                          work["signer"], "--source-type", "trainedAlgorithmicMedia",
                          "--generator", "TextGen 1", "--check", draft, ok=(0,)).stdout)
    assert not info["embedded"] and info["manifest_path"] == str(tmp_path / "harbour.md.c2pa")
    assert info["originality"]["verdict"] == "original"
    assert draft.read_text(encoding="utf-8") == ARTICLE  # text is never modified

    code, checked = verify_json(draft, "--trust", work["signer"] / "ca.pem", ok=(0,))
    assert checked["status"] == "trusted" and checked["generator"] == "TextGen 1"
    assert checked["sidecar"] == info["manifest_path"]
    originality = checked["assertions"][ORIGINALITY]
    assert originality["verdict"] == "original" and originality["index"]["id"]
    assert set(originality["thresholds"]) >= {"pdq", "phash", "text-shingle", "text-embed"}
    assert originality["checked_at"] and originality["matches"] == []
    assert verify_json(draft, "--trust", work["other"] / "ca.pem", ok=(11,))[1]["status"] == \
        "untrusted"

    # A lightly edited copy elsewhere, no sidecar: lookup finds the manifest by shingles.
    copy = tmp_path / "elsewhere" / "copy.txt"
    copy.parent.mkdir()
    copy.write_text(ARTICLE.replace("a little after seven", "just after seven")
                    .replace("grey sky", "overcast sky"), encoding="utf-8")
    assert verify_json(copy, ok=(10,))[1]["status"] == "no-manifest"
    doc = json.loads(run("lookup", "--json", "--index", work["idx"], copy, ok=(0,)).stdout)
    hit = doc["hits"][0]
    assert hit["closeness"]["text-shingle"]["draft_coverage"] > 0.8
    assert hit["disclosures"][0]["manifest_path"] == info["manifest_path"]
    assert hit["disclosures"][0]["generator"] == "TextGen 1"

    # Editing the disclosed text itself breaks the binding.
    draft.write_text(ARTICLE.replace("seven", "eight"), encoding="utf-8")
    assert verify_json(draft, ok=(12,))[1]["status"] == "tampered"


def test_broken_sidecar_is_malformed(work: dict[str, Path], tmp_path: Path) -> None:
    note = tmp_path / "note.md"
    note.write_text("A short note.\n", encoding="utf-8")
    (tmp_path / "note.md.c2pa").write_bytes(b"\x00not a manifest" * 10)
    code, result = verify_json(note, ok=(VERIFY_EXIT_CODES["malformed"],))
    assert result["status"] == "malformed" and not result["intact"]
    assert run("verify", tmp_path / "missing.md", ok=(3,)).stderr.count("missing.md")


# --- originality check ------------------------------------------------------------------


def test_check_refuses_known_content_unless_forced(work: dict[str, Path], tmp_path: Path) -> None:
    published = textured_image(tmp_path / "published.jpg", "JPEG", seed=21)
    run("add", "--index", work["idx"], "--source", "blog", published, ok=(0,))
    # Someone else's re-encode of the published image, about to be disclosed as new.
    candidate = tmp_path / "candidate.png"
    with Image.open(published) as im:
        im.resize((380, 285)).save(candidate, "PNG")
    refused = run("disclose", "--index", work["idx"], "--signer", work["signer"], "--check",
                  "--source-type", "digitalCapture", candidate, ok=(1,))
    assert "NEAR-DUPLICATE" in refused.stderr and "--force" in refused.stderr
    assert not (tmp_path / "candidate.c2pa.png").exists()

    forced = json.loads(run("disclose", "--json", "--index", work["idx"], "--signer",
                            work["signer"], "--check", "--force", "--source-type",
                            "digitalCapture", candidate, ok=(0,)).stdout)
    assert forced["originality"]["forced"] and forced["originality"]["verdict"] == "near-duplicate"
    top = forced["originality"]["matches"][0]
    assert top["source"] == "blog" and top["signal"] in ("pdq", "phash") and "path" not in top
    signed_claims = verify_json(Path(forced["path"]), ok=(0,))[1]["assertions"][ORIGINALITY]
    assert signed_claims == forced["originality"]


def test_redisclosing_own_content_is_not_flagged(work: dict[str, Path], tmp_path: Path) -> None:
    idx = tmp_path / "own-idx"  # a fresh index, so other tests' content cannot interfere
    run("init", "--index", idx, ok=(0,))
    draft = tmp_path / "mine.md"
    draft.write_text(ARTICLE.replace("ferry", "boat"), encoding="utf-8")

    def disclose(signer: Path, source_type: str, ok: tuple[int, ...]) -> Result:
        return run("disclose", "--json", "--index", idx, "--signer", signer, "--check",
                   "--source-type", source_type, draft, ok=ok)

    first = json.loads(disclose(work["signer"], "humanEdits", (0,)).stdout)
    assert first["originality"]["verdict"] == "original"
    # The same signer correcting its own disclosure: the earlier record is not a "copy".
    second = json.loads(disclose(work["signer"], "minorHumanEdits", (0,)).stdout)
    assert second["originality"]["verdict"] == "original"
    assert second["originality"]["excluded_own_disclosures"] == [first["recorded"]["item_id"]]
    # Another signer claiming the same text is flagged.
    refused = disclose(work["other"], "digitalCreation", (1,))
    assert "EXACT" in refused.stderr
    assert json.loads(refused.stdout)["disclosed"] is False


# --- conformance ------------------------------------------------------------------------


@pytest.mark.skipif(not CONFORMANCE.is_dir(), reason="conformance assets absent")
def test_conformance_assets_exit_codes() -> None:
    expected = {"C.jpg": "valid", "CA.jpg": "valid", "E-sig-CA.jpg": "invalid-signature",
                "XCA.jpg": "tampered", "cloud.jpg": "unreachable",
                "no_manifest.jpg": "no-manifest", "sample1.png": "no-manifest",
                "sample1.webp": "no-manifest"}
    rows = [json.loads(line) for line in
            (CONFORMANCE / "expected.jsonl").read_text().splitlines() if line.strip()]
    assert {r["path"] for r in rows} == set(expected)
    for row in rows:
        status = expected[row["path"]]
        code, result = verify_json(CONFORMANCE / row["path"], ok=(VERIFY_EXIT_CODES[status],))
        assert result["status"] == status
        if row["manifest"]:
            assert set(result["failure_codes"]) == set(row["failure_codes"])
            assert result["validation_state"] == row["validation_state"]
            assert result["source_types"] == row["digital_source_types"]
    assert "UNREACHABLE" in run("verify", CONFORMANCE / "cloud.jpg", ok=(15,)).stdout
    assert "INVALID SIGNATURE" in run("verify", CONFORMANCE / "E-sig-CA.jpg", ok=(13,)).stdout


@pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool not installed")
def test_exiftool_reads_lossless_webp_disclosure(work: dict[str, Path],
                                                       tmp_path: Path) -> None:
    source = textured_image(tmp_path / "x.webp", "WEBP", seed=31, lossless=True)
    info = json.loads(run("disclose", "--json", "--no-record", "--signer", work["signer"],
                          "--source-type", "algorithmicallyEnhanced", source, ok=(0,)).stdout)
    out = subprocess.run(["exiftool", "-j", "-XMP-iptcExt:DigitalSourceType", info["path"]],
                         capture_output=True, text=True, check=True, timeout=30)
    assert json.loads(out.stdout)[0]["DigitalSourceType"].endswith("/algorithmicallyEnhanced")


def test_a_disclosed_draft_does_not_fail_its_own_gate(work: dict[str, Path], tmp_path: Path) -> None:
    """Issue: `disclose --check` recorded the draft, and the next `check` of it said EXACT, exit 1."""
    post = tmp_path / "own-post.md"
    post.write_text("My own words about the harbour at dawn, the gulls, the cold, and the fishing boats "
                    "leaving one by one while the town sleeps.\n", encoding="utf-8")
    idx = tmp_path / "own-idx"
    run("init", "--index", idx, ok=(0,))
    run("disclose", post, "--source-type", "humanEdits", "--signer", work["root"] / "signer", "--check",
        "--index", idx, ok=(0,))
    r = run("check", "--index", idx, "--json", post, ok=(0,))
    report = json.loads(r.stdout)["reports"][0]
    assert report["verdict"] == "original"
    assert report["matches"][0]["allowed"].startswith("your own disclosed content")
    # A named source is allowed the same way; without the option the same match fails the gate.
    lic = tmp_path / "licensed.md"
    lic.write_text(ARTICLE, encoding="utf-8")
    run("add", "--index", idx, "--source", "agency", lic, ok=(0,))
    draft = tmp_path / "draft.md"
    draft.write_text(lic.read_text(encoding="utf-8") + "\nMy comment.", encoding="utf-8")
    run("check", "--index", idx, draft, ok=(1,))
    r = run("check", "--index", idx, "--json", "--allow-source", "agency", draft, ok=(0,))
    assert "agency" in json.loads(r.stdout)["reports"][0]["matches"][0]["allowed"]

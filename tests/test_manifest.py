"""Disclosure manifests with the real C2PA SDK: sign, verify, tamper, trust, conformance."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image

from provenance.c2pa_formats import sidecar_path_for
from provenance.c2pa_sign import disclose
from provenance.c2pa_verify import read_manifest_json, verify
from provenance.errors import BadInputError, ManifestError
from provenance.identities import load_signing_identity, new_signing_identity
from provenance.iptc import DIGITAL_SOURCE_TYPES, parse_source_type

from .conftest import DATA

CONFORMANCE = DATA / "conformance" / "c2pa"
TRAINED = DIGITAL_SOURCE_TYPES["trainedAlgorithmicMedia"]
ORIGINALITY = "org.provenance-checker.originality"


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    return new_signing_identity(tmp_path_factory.mktemp("identity"), common_name="Test Signer")


@pytest.fixture(scope="module")
def other_identity(tmp_path_factory):
    return new_signing_identity(tmp_path_factory.mktemp("other"), common_name="Someone Else")


def _image(path: Path, fmt: str, **save) -> Path:
    image = Image.new("RGB", (64, 48), (30, 120, 200))
    for x in range(0, 64, 8):  # some structure so a pixel edit is a real edit
        for y in range(48):
            image.putpixel((x, y), (250, 250, 0))
    image.save(path, fmt, **save)
    return path


# --- source types ----------------------------------------------------------------------


def test_source_type_vocabulary():
    for name in ("trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia",
                 "algorithmicallyEnhanced", "algorithmicMedia", "digitalCapture",
                 "digitalCreation", "humanEdits", "compositeCapture", "compositeSynthetic",
                 "composite", "minorHumanEdits", "dataDrivenMedia", "negativeFilm",
                 "positiveFilm", "print", "screenCapture", "virtualRecording"):
        assert DIGITAL_SOURCE_TYPES[name] == f"http://cv.iptc.org/newscodes/digitalsourcetype/{name}"
    assert parse_source_type("trainedAlgorithmicMedia") == TRAINED
    assert parse_source_type(TRAINED) == TRAINED
    assert parse_source_type("TRAINEDALGORITHMICMEDIA") == TRAINED


def test_unknown_source_type_lists_names(tmp_path, identity):
    with pytest.raises(BadInputError) as info:
        parse_source_type("aiGenerated")
    message = str(info.value)
    assert "aiGenerated" in message
    assert "trainedAlgorithmicMedia" in message and "digitalCapture" in message
    path = _image(tmp_path / "a.jpg", "JPEG")
    with pytest.raises(BadInputError, match="trainedAlgorithmicMedia"):
        disclose(path, source_type="made-by-ai", generator=None, identity=identity)


# --- identity --------------------------------------------------------------------------


def test_identity_files_and_key_mode(tmp_path):
    ident = new_signing_identity(tmp_path / "id")
    key = tmp_path / "id" / "signer.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (tmp_path / "id" / "ca.pem").is_file()
    assert (tmp_path / "id" / "signer-chain.pem").is_file()
    assert "PRIVATE KEY" not in repr(ident)
    loaded = load_signing_identity(tmp_path / "id")
    assert loaded.algorithm == "es256" and loaded.ca_path == tmp_path / "id" / "ca.pem"
    assert loaded.certificate_chain_pem == ident.certificate_chain_pem
    # Never silently replace a key.
    with pytest.raises(BadInputError, match="already exists"):
        new_signing_identity(tmp_path / "id")


def test_key_mismatch_is_refused(tmp_path, identity, other_identity):
    with pytest.raises(BadInputError, match="does not match"):
        load_signing_identity(certificate=identity.chain_path, key=other_identity.key_path)


def test_ed25519_identity_signs(tmp_path):
    ident = new_signing_identity(tmp_path / "ed", algorithm="ed25519")
    path = _image(tmp_path / "e.png", "PNG")
    result = disclose(path, source_type="digitalCreation", generator=None, identity=ident)
    assert verify(result.path, trust_anchors=[ident.ca_path]).status == "trusted"


# --- round trips -----------------------------------------------------------------------


@pytest.mark.parametrize("fmt,suffix,save", [
    ("JPEG", ".jpg", {}),
    ("PNG", ".png", {}),
    ("WEBP", ".webp", {}),
    ("WEBP", ".webp", {"lossless": True}),
])
def test_image_round_trip(tmp_path, identity, other_identity, fmt, suffix, save):
    source = _image(tmp_path / f"pic{suffix}", fmt, **save)
    original = source.read_bytes()
    result = disclose(
        source, source_type="trainedAlgorithmicMedia", generator="ImageGen 3", identity=identity,
        extra_assertions=[{"label": ORIGINALITY, "data": {"verdict": "original", "score": 0.1}}],
    )
    assert result.embedded and result.manifest_path is None and result.xmp_written
    assert result.path == tmp_path / f"pic.c2pa{suffix}"
    assert source.read_bytes() == original  # default output leaves the input alone
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    with Image.open(result.path) as reopened:
        reopened.load()
        assert reopened.size == (64, 48)

    checked = verify(result.path)
    assert checked.status == "valid" and checked.intact and not checked.trusted
    assert checked.source_types == [TRAINED]
    assert checked.generator == "ImageGen 3"
    assert checked.signer["common_name"] == "Test Signer"
    assert checked.manifest_label == result.manifest_label
    assert checked.assertions[ORIGINALITY] == {"verdict": "original", "score": 0.1}
    assert json.loads(json.dumps(checked.to_dict()))["status"] == "valid"

    assert verify(result.path, trust_anchors=[identity.ca_path]).status == "trusted"
    assert verify(result.path, trust_anchors=[other_identity.ca_path]).status == "untrusted"
    assert verify(source).status == "no-manifest"
    assert read_manifest_json(source) is None
    store = read_manifest_json(result.path)
    assert store["active_manifest"] == result.manifest_label


def test_in_place_and_explicit_output(tmp_path, identity):
    source = _image(tmp_path / "p.png", "PNG")
    out = disclose(source, source_type="compositeWithTrainedAlgorithmicMedia", generator=None,
                   identity=identity, output=tmp_path / "out.png")
    assert out.path == tmp_path / "out.png" and verify(out.path).status == "valid"
    assert verify(out.path).generator is None
    inplace = disclose(source, source_type="humanEdits", generator="Editor", identity=identity,
                       in_place=True)
    assert inplace.path == source
    assert verify(source).source_types == [DIGITAL_SOURCE_TYPES["humanEdits"]]
    with pytest.raises(BadInputError):
        disclose(source, source_type="humanEdits", generator=None, identity=identity,
                 output=tmp_path / "x.png", in_place=True)


def test_reserved_extra_assertion_label(tmp_path, identity):
    source = _image(tmp_path / "p.jpg", "JPEG")
    with pytest.raises(BadInputError, match="reserved"):
        disclose(source, source_type="trainedAlgorithmicMedia", generator=None,
                 identity=identity, extra_assertions=[{"label": "c2pa.actions", "data": {}}])


def test_existing_xmp_is_kept_and_extended(tmp_path, identity):
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
           b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
           b'rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:format>image/jpeg'
           b'</dc:format></rdf:Description></rdf:RDF></x:xmpmeta>')
    source = _image(tmp_path / "x.jpg", "JPEG", xmp=xmp)
    result = disclose(source, source_type="algorithmicallyEnhanced", generator=None,
                      identity=identity)
    data = result.path.read_bytes()
    assert b"<dc:format>image/jpeg</dc:format>" in data
    assert DIGITAL_SOURCE_TYPES["algorithmicallyEnhanced"].encode() in data
    assert data.count(b"http://ns.adobe.com/xap/1.0/\x00") == 1
    assert verify(result.path).status == "valid"
    # Disclosing again updates the XMP value rather than adding one, and keeps the first
    # manifest as the parent of the new one (issue 14: history is kept).
    again = disclose(result.path, source_type="humanEdits", generator=None, identity=identity,
                     in_place=True)
    data = again.path.read_bytes()
    assert data.count(b"http://ns.adobe.com/xap/1.0/\x00") == 1
    xmp_start = data.index(b"http://ns.adobe.com/xap/1.0/\x00")
    xmp = data[xmp_start:data.index(b"</x:xmpmeta>", xmp_start)]
    assert DIGITAL_SOURCE_TYPES["humanEdits"].encode() in xmp
    assert DIGITAL_SOURCE_TYPES["algorithmicallyEnhanced"].encode() not in xmp
    checked = verify(again.path)
    assert checked.source_types == [DIGITAL_SOURCE_TYPES["humanEdits"]]
    assert [link.source_types for link in checked.chain] == [
        [DIGITAL_SOURCE_TYPES["humanEdits"]], [DIGITAL_SOURCE_TYPES["algorithmicallyEnhanced"]]]
    assert again.parent_manifest == result.manifest_label


# --- text sidecars ---------------------------------------------------------------------


def test_markdown_sidecar_round_trip_and_tamper(tmp_path, identity, other_identity):
    draft = tmp_path / "draft.md"
    draft.write_text("# Title\n\nA paragraph written with help from a model.\n", encoding="utf-8")
    result = disclose(draft, source_type="trainedAlgorithmicMedia", generator="TextGen 1",
                      identity=identity,
                      extra_assertions=[{"label": ORIGINALITY, "data": {"verdict": "original"}}])
    assert not result.embedded and result.path == draft
    assert result.manifest_path == sidecar_path_for(draft) == tmp_path / "draft.md.c2pa"

    checked = verify(draft)  # sidecar found automatically
    assert checked.status == "valid" and checked.sidecar == result.manifest_path
    assert checked.source_types == [TRAINED] and checked.generator == "TextGen 1"
    assert checked.assertions[ORIGINALITY] == {"verdict": "original"}
    assert verify(draft, trust_anchors=[identity.ca_path]).status == "trusted"
    assert verify(draft, trust_anchors=[other_identity.ca_path]).status == "untrusted"
    assert read_manifest_json(draft)["active_manifest"] == result.manifest_label

    draft.write_text("# Title\n\nA paragraph written entirely by me.\n", encoding="utf-8")
    tampered = verify(draft)
    assert tampered.status == "tampered" and not tampered.intact
    assert "assertion.dataHash.mismatch" in tampered.failure_codes


def test_broken_or_foreign_sidecar(tmp_path, identity):
    first, second = tmp_path / "first.md", tmp_path / "second.md"
    first.write_text("first text\n")
    second.write_text("second text\n")
    disclose(first, source_type="trainedAlgorithmicMedia", generator=None, identity=identity)
    # A sidecar copied onto other content is bound to the wrong bytes.
    shutil.copy(sidecar_path_for(first), sidecar_path_for(second))
    assert verify(second).status == "tampered"
    sidecar_path_for(second).write_bytes(b"not a manifest" * 8)
    broken = verify(second)
    assert broken.status == "malformed" and broken.error and not broken.intact
    with pytest.raises(ManifestError, match="second.md"):
        read_manifest_json(second)


def test_empty_file_is_refused(tmp_path, identity):
    empty = tmp_path / "empty.md"
    empty.write_bytes(b"")
    with pytest.raises(BadInputError, match="empty"):
        disclose(empty, source_type="trainedAlgorithmicMedia", generator=None, identity=identity)


def test_text_without_sidecar_has_no_manifest(tmp_path):
    note = tmp_path / "note.txt"
    note.write_text("plain\n")
    assert verify(note).status == "no-manifest"
    assert read_manifest_json(note) is None


# --- tampering -------------------------------------------------------------------------


def _pixel_offset(data: bytes, fmt: str) -> int:
    """An offset inside the compressed image data (not the manifest, not a header)."""
    if fmt == "JPEG":
        return data.rfind(b"\xff\xd9") - 10  # scan data just before end-of-image
    if fmt == "PNG":
        return data.find(b"IDAT") + 10
    return data.find(b"VP8 ") + 20  # the VP8 bitstream, wherever the C2PA chunk went


@pytest.mark.parametrize("fmt,suffix", [("JPEG", ".jpg"), ("PNG", ".png"), ("WEBP", ".webp")])
def test_changed_pixels_are_tampered(tmp_path, identity, fmt, suffix):
    source = _image(tmp_path / f"t{suffix}", fmt)
    signed = disclose(source, source_type="trainedAlgorithmicMedia", generator=None,
                      identity=identity).path
    data = bytearray(signed.read_bytes())
    data[_pixel_offset(bytes(data), fmt)] ^= 0xFF
    signed.write_bytes(bytes(data))
    result = verify(signed, trust_anchors=[identity.ca_path])
    assert result.status == "tampered", result.failure_codes
    assert not result.intact


def test_bad_trust_anchor_file(tmp_path, identity):
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate")
    source = _image(tmp_path / "a.jpg", "JPEG")
    with pytest.raises(BadInputError, match="bogus.pem"):
        verify(source, trust_anchors=[bogus])


def test_missing_input(tmp_path, identity):
    with pytest.raises(BadInputError, match="missing.jpg"):
        disclose(tmp_path / "missing.jpg", source_type="trainedAlgorithmicMedia",
                 generator=None, identity=identity)
    with pytest.raises(BadInputError, match="missing.jpg"):
        verify(tmp_path / "missing.jpg")


# --- independent reader ----------------------------------------------------------------


@pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool not installed")
def test_exiftool_sees_iptc_digital_source_type(tmp_path, identity):
    source = _image(tmp_path / "e.jpg", "JPEG")
    signed = disclose(source, source_type="trainedAlgorithmicMedia", generator=None,
                      identity=identity).path
    out = subprocess.run(["exiftool", "-j", "-XMP-iptcExt:DigitalSourceType", str(signed)],
                         capture_output=True, text=True, check=True, timeout=30)
    assert json.loads(out.stdout)[0]["DigitalSourceType"] == TRAINED


# --- conformance assets ----------------------------------------------------------------

conformance = pytest.mark.skipif(not CONFORMANCE.is_dir(), reason="conformance assets absent")


def _expected() -> dict[str, dict]:
    lines = (CONFORMANCE / "expected.jsonl").read_text().splitlines()
    return {row["path"]: row for row in map(json.loads, filter(None, lines))}


@conformance
@pytest.mark.parametrize("name,status", [
    ("C.jpg", "valid"),
    ("CA.jpg", "valid"),
    ("E-sig-CA.jpg", "invalid-signature"),
    ("XCA.jpg", "tampered"),
    ("cloud.jpg", "unreachable"),
    ("no_manifest.jpg", "no-manifest"),
    ("sample1.png", "no-manifest"),
    ("sample1.webp", "no-manifest"),
])
def test_conformance_assets(name, status):
    expected = _expected()[name]
    started = time.monotonic()
    result = verify(CONFORMANCE / name)
    assert time.monotonic() - started < 5  # remote manifests are never fetched
    assert result.status == status
    if expected["manifest"]:
        assert set(result.failure_codes) == set(expected["failure_codes"])
        assert set(result.status_codes) == set(expected["status_codes"])
        assert result.validation_state == expected["validation_state"]
        assert result.source_types == expected["digital_source_types"]
        assert result.intact == (expected["validation_state"] == "Valid")
    else:
        assert not result.intact and result.manifest_label is None


@conformance
def test_conformance_read_manifest_json():
    assert read_manifest_json(CONFORMANCE / "no_manifest.jpg") is None
    assert read_manifest_json(CONFORMANCE / "C.jpg")["active_manifest"]
    with pytest.raises(ManifestError, match="cloud.jpg"):
        read_manifest_json(CONFORMANCE / "cloud.jpg")

"""``provenance serve`` end to end: FastAPI's test client in-process, and a real uvicorn process on a
loopback port. Real index, real C2PA signing, real MiniLM model (for the text routes), no mocks."""

from __future__ import annotations

import base64
import io
import os
import re
import signal
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from PIL import Image

from provenance import Index
from provenance.c2pa_sign import disclose
from provenance.c2pa_verify import verify
from provenance.cli.main import main
from provenance.content import content_from_bytes, load_content
from provenance.disclosure import disclose_content
from provenance.errors import BadInputError
from provenance.identities import new_signing_identity
from provenance.samples import sample_photo
from provenance.service import (
    ALGORITHMS,
    TOKEN_ENV,
    active_manifest_only,
    create_app,
    extract_manifest_store,
    load_token,
    write_new_token,
)
from provenance.signals import PDQSignal, PHashSignal

TOKEN = "test-token-" + "x" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PDQ, PHASH = (a.alg for a in ALGORITHMS)
ARTICLE = (
    "The ferry left the northern pier a little after seven, carrying mostly commuters and a handful of "
    "cyclists who had misjudged the weather. By the time it passed the lighthouse the rain had settled "
    "into a steady drizzle, and the deck emptied as people crowded into the cabin to read, doze or stare "
    "at their phones. The harbour master later said that the crossing had been the calmest of the month, "
    "despite the grey sky, and that the new timetable would add two evening sailings from the spring.\n"
)


def jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def stripped_copy(path: Path) -> bytes:
    """Re-encode ``path``'s pixels at another size and quality: no metadata, no manifest survives."""
    img = Image.open(path).convert("RGB")
    return jpeg(img.resize((img.width * 3 // 4, img.height * 3 // 4)), quality=70)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """An index holding a disclosed JPEG, a disclosed PNG, a disclosed Markdown text (sidecar), a
    photo added with the source label ``own``."""
    root = tmp_path_factory.mktemp("service")
    identity = new_signing_identity(root / "keys")
    (root / "photo.jpg").write_bytes(jpeg(sample_photo(21)))
    sample_photo(22).save(root / "photo.png", "PNG")
    (root / "post.md").write_text(ARTICLE, encoding="utf-8")
    (root / "own.jpg").write_bytes(jpeg(sample_photo(23)))
    out: dict = {"root": root, "index": root / "idx"}
    with Index.open(root / "idx", create=True) as idx:
        for name in ("photo.jpg", "photo.png", "post.md"):
            out[name] = disclose_content(root / name, source_type="trainedAlgorithmicMedia",
                                         generator="Test Gen", identity=identity, index=idx)
        idx.add([root / "own.jpg"], source="own")
    return out


@pytest.fixture(scope="module")
def client(work: dict) -> TestClient:
    with TestClient(create_app(work["index"], token=TOKEN)) as c:
        yield c


def label(work: dict, name: str) -> str:
    return work[name].record.manifest_label


def no_server_error(r: httpx.Response) -> httpx.Response:
    assert r.status_code < 500, r.text
    return r


# -- service routes and authentication ---------------------------------------------------------------


def test_healthz_needs_no_token(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"


@pytest.mark.parametrize("path", ["/v1/info", "/v1/services/supportedAlgorithms", "/docs", "/openapi.json",
                                  "/v1/manifests/urn:c2pa:x", "/no/such/route"])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token-wrong-token-wrong"},
                                     {"Authorization": TOKEN}])
def test_everything_but_health_needs_the_token(client: TestClient, path: str, headers: dict) -> None:
    r = client.get(path, headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.headers["content-type"] == "application/problem+json"
    assert "Bearer" in r.json()["detail"]


def test_the_bearer_scheme_name_is_case_insensitive(client: TestClient) -> None:
    assert client.get("/v1/info", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200


def test_post_without_token_is_refused_before_the_body_is_used(client: TestClient, work: dict) -> None:
    r = client.post("/v1/matches/byContent", content=stripped_copy(work["photo.jpg"].result.path),
                    headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 401 and "matches" not in r.json()


def test_info_lists_signals_counts_and_algorithms(client: TestClient) -> None:
    data = client.get("/v1/info", headers=AUTH).json()
    assert data["counts"]["items"] == 4 and data["counts"]["disclosures"] == 3
    assert {s["name"]: s["threshold"] for s in data["signals"]}["pdq"] == 31
    assert [a["alg"] for a in data["service"]["soft_binding_algorithms"]] == [PDQ, PHASH]


def test_docs_and_openapi_describe_the_c2pa_routes(client: TestClient) -> None:
    assert "swagger" in client.get("/docs", headers=AUTH).text.lower()
    spec = client.get("/openapi.json", headers=AUTH).json()
    for path in ("/v1/check", "/v1/matches/byBinding", "/v1/matches/byContent",
                 "/v1/manifests/{manifestId}", "/v1/services/supportedAlgorithms"):
        assert path in spec["paths"], path
    assert "/v1/matches/byReference" not in spec["paths"]  # never fetch URLs for strangers
    assert {"get", "post"} <= set(spec["paths"]["/v1/matches/byBinding"])
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert spec["paths"]["/healthz"]["get"]["security"] == []


def test_supported_algorithms_are_named_honestly(client: TestClient) -> None:
    data = client.get("/v1/services/supportedAlgorithms", headers=AUTH).json()
    assert data["watermarks"] == []
    assert [a["alg"] for a in data["fingerprints"]] == [PDQ, PHASH]
    for a in data["fingerprints"]:
        assert a["registered"] is False and "not in the C2PA soft-binding algorithm list" in a["note"]
        assert a["alg"].startswith("org.provenance-checker.")


# -- Soft Binding Resolution: byBinding --------------------------------------------------------------


def test_by_binding_finds_the_manifest_from_a_pdq_or_phash_value(client: TestClient, work: dict) -> None:
    content = load_content(Path(work["photo.jpg"].result.path))
    pdq = PDQSignal().fingerprint(content)[0].value
    phash = PHashSignal().fingerprint(content)[0].value
    want = [{"manifestId": label(work, "photo.jpg"), "similarityScore": 100}]
    assert client.get("/v1/matches/byBinding", params={"alg": PDQ, "value": b64(pdq)},
                      headers=AUTH).json() == {"matches": want}
    assert client.post("/v1/matches/byBinding", json={"alg": PHASH, "value": b64(phash)},
                       headers=AUTH).json() == {"matches": want}
    # A few bits off still matches, with a lower score; URL-safe base64 and an unescaped '+' are read.
    near = bytes([pdq[0] ^ 0b111]) + pdq[1:]
    r = client.get("/v1/matches/byBinding", headers=AUTH, params={
        "alg": PDQ, "value": base64.urlsafe_b64encode(near).decode().rstrip("="), "maxResults": 1})
    assert r.json()["matches"] == [{"manifestId": label(work, "photo.jpg"), "similarityScore": 99}]
    spaced = b64(pdq).replace("+", " ")
    assert client.get("/v1/matches/byBinding", params={"alg": PDQ, "value": spaced},
                      headers=AUTH).json()["matches"] == want


def test_by_binding_ignores_content_without_a_manifest(client: TestClient, work: dict) -> None:
    own = PDQSignal().fingerprint(load_content(work["root"] / "own.jpg"))[0].value  # indexed, not disclosed
    far = bytes(255 - b for b in own)
    for value in (own, far):
        r = client.get("/v1/matches/byBinding", params={"alg": PDQ, "value": b64(value)}, headers=AUTH)
        assert r.json() == {"matches": []}


def test_find_by_fingerprint_is_threshold_free_unless_asked(work: dict) -> None:
    with Index.open(work["index"]) as idx:
        item = next(i for i in idx.items() if i.source == "own")
        value = idx.catalog.item_fingerprints(item.id, "pdq")[0]
        assert idx.find_by_fingerprint("pdq", value, 1) == [(item.id, 0.0)]
        everything = idx.find_by_fingerprint("pdq", bytes(255 - b for b in value), 10)
        assert len(everything) == 3 and all(d > 31 for _, d in everything)  # the 3 photos, far away
        assert idx.find_by_fingerprint("pdq", bytes(255 - b for b in value), 10, max_distance=31) == []
        with pytest.raises(BadInputError, match="binary signals: pdq, phash"):
            idx.find_by_fingerprint("text-embed", value)


@pytest.mark.parametrize("params, detail", [
    ({"alg": "io.iscc.v0", "value": "AAAA"}, "alg 'io.iscc.v0' is not supported here"),
    ({"alg": PDQ, "value": "not base64!"}, "value is not base64"),
    ({"alg": PDQ, "value": b64(b"short")}, "value decodes to 5 bytes; org.provenance-checker.pdq.1 values are 32"),
    ({"alg": PDQ, "value": b64(bytes(32)), "maxResults": "0"}, "maxResults: Input should be greater than"),
    ({"alg": PDQ}, "value: Field required"),
])
def test_by_binding_bad_queries_are_400(client: TestClient, params: dict, detail: str) -> None:
    r = no_server_error(client.get("/v1/matches/byBinding", params=params, headers=AUTH))
    assert r.status_code == 400 and r.json()["detail"].startswith(detail), r.json()


@pytest.mark.parametrize("body", [b"{", b"[1]", b'{"alg": "x"}'])
def test_by_binding_post_bad_bodies_are_400(client: TestClient, body: bytes) -> None:
    r = no_server_error(client.post("/v1/matches/byBinding", content=body,
                                    headers={**AUTH, "Content-Type": "application/json"}))
    assert r.status_code == 400


# -- Soft Binding Resolution: byContent and manifests ------------------------------------------------


def test_stripped_reencoded_copy_finds_its_manifest_end_to_end(client: TestClient, work: dict) -> None:
    disclosed = Path(work["photo.jpg"].result.path)
    copy = stripped_copy(disclosed)
    assert extract_manifest_store(copy) is None  # the copy really lost its manifest
    r = client.post("/v1/matches/byContent", content=copy, headers={**AUTH, "Content-Type": "image/jpeg"})
    matches = r.json()["matches"]
    assert matches[0]["manifestId"] == label(work, "photo.jpg")
    assert 90 <= matches[0]["similarityScore"] <= 100
    m = client.get(f"/v1/manifests/{matches[0]['manifestId']}", headers=AUTH)
    assert m.status_code == 200 and m.headers["content-type"] == "application/c2pa"
    # The bytes are the signed store: they verify against the disclosed file as a detached manifest.
    sidecar = work["root"] / "fetched.c2pa"
    sidecar.write_bytes(m.content)
    checked = verify(disclosed, sidecar=sidecar)
    assert checked.status == "valid" and checked.manifest_label == label(work, "photo.jpg")
    active = client.get(f"/v1/manifests/{matches[0]['manifestId']}", headers=AUTH,
                        params={"returnActiveManifest": "true"})
    assert active.content == m.content  # a one-manifest store is its active manifest


def test_by_content_png_alg_filter_and_text(client: TestClient, work: dict) -> None:
    png = Path(work["photo.png"].result.path)
    r = client.post("/v1/matches/byContent", params={"alg": PHASH}, content=stripped_copy(png),
                    headers={**AUTH, "Content-Type": "image/jpeg"})
    assert [m["manifestId"] for m in r.json()["matches"]] == [label(work, "photo.png")]
    assert client.get(f"/v1/manifests/{label(work, 'photo.png')}", headers=AUTH).content == \
        extract_manifest_store(png.read_bytes())
    # Text: an edited copy of the disclosed post finds its sidecar manifest, served as stored.
    edited = ARTICLE.replace("seven", "eight").upper()
    r = client.post("/v1/matches/byContent", content=edited.encode(),
                    headers={**AUTH, "Content-Type": "text/plain"})
    assert [m["manifestId"] for m in r.json()["matches"]] == [label(work, "post.md")]
    sidecar = Path(work["post.md"].result.manifest_path)
    assert client.get(f"/v1/manifests/{label(work, 'post.md')}", headers=AUTH).content == \
        sidecar.read_bytes()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "TIFF"])
def test_the_embedded_store_is_extracted_from_every_format_disclose_embeds_into(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"photo.{fmt.lower()}"
    sample_photo(24).save(path, fmt)
    result = disclose(path, source_type="digitalCapture", generator=None,
                      identity=new_signing_identity(tmp_path / "keys"))
    assert result.embedded
    store = extract_manifest_store(Path(result.path).read_bytes())
    assert store is not None
    (tmp_path / "store.c2pa").write_bytes(store)
    checked = verify(Path(result.path), sidecar=tmp_path / "store.c2pa")
    assert checked.status == "valid" and checked.manifest_label == result.manifest_label
    assert extract_manifest_store(path.read_bytes()) is None  # the original has none
    assert extract_manifest_store(Path(result.path).read_bytes()[:200]) is None  # truncated: none, no error


def test_active_manifest_only_keeps_the_description_and_the_last_manifest() -> None:
    def box(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", 8 + len(payload)) + kind + payload

    description = box(b"jumd", b"c2pa\x00\x11\x00\x10\x80\x00\x00\xaa\x00\x38\x9b\x71\x03c2pa\x00")
    first, last = box(b"jumb", b"manifest one"), box(b"jumb", b"manifest two")
    store = box(b"jumb", description + first + last)
    assert active_manifest_only(store) == box(b"jumb", description + last)
    assert active_manifest_only(box(b"jumb", description + last)) == box(b"jumb", description + last)


def test_a_redisclosed_manifest_is_served_from_the_store_that_keeps_it(tmp_path: Path) -> None:
    """Re-disclosing keeps the earlier manifest as a parentOf ingredient (the history), so its id still
    resolves, to the current store that holds both; the new id resolves to the same store."""
    identity = new_signing_identity(tmp_path / "keys")
    post = tmp_path / "post.md"
    post.write_text(ARTICLE, encoding="utf-8")
    with Index.open(tmp_path / "idx", create=True) as idx:
        first, second = (disclose_content(post, source_type=kind, generator=None, identity=identity, index=idx)
                         for kind in ("humanEdits", "trainedAlgorithmicMedia"))  # the sidecar is rewritten
    current = Path(second.result.manifest_path).read_bytes()
    with TestClient(create_app(tmp_path / "idx", token=TOKEN)) as c:
        old = c.get(f"/v1/manifests/{first.record.manifest_label}", headers=AUTH)
        assert old.status_code == 200 and old.content == current
        new = c.get(f"/v1/manifests/{second.record.manifest_label}", headers=AUTH)
        assert new.status_code == 200 and new.content == current


def test_unknown_manifest_is_404(client: TestClient) -> None:
    r = client.get("/v1/manifests/urn:c2pa:00000000-0000-0000-0000-000000000000", headers=AUTH)
    assert r.status_code == 404 and "no manifest" in r.json()["detail"]


# -- /v1/check ----------------------------------------------------------------------------------------


def test_check_answers_the_cli_report_document(client: TestClient, work: dict) -> None:
    copy = stripped_copy(work["root"] / "own.jpg")
    r = client.post("/v1/check", files=[("file", ("copy.jpg", copy, "image/jpeg"))], headers=AUTH)
    doc = r.json()
    assert doc["schema"] == "provenance.report/1" and doc["failed"] is True
    report = doc["reports"][0]
    assert report["path"] == "copy.jpg" and report["verdict"] == "near-duplicate"
    assert report["matches"][0]["source"] == "own" and report["matches"][0]["signal"] in (
        "pdq", "phash", "local-features")
    # The same bytes through the library give the same document (what `check --json` prints), up to the
    # time the provenance inspection took.
    with Index.open(work["index"]) as idx:
        expected = idx.check(copy, "copy.jpg").to_dict()
    for doc_ in (report, expected):
        doc_["provenance"].pop("elapsed_s")
    assert report == expected
    # Gate options: a match against an allowed source is shown as allowed and does not count; with
    # fail_on=never nothing fails.
    allowed = client.post("/v1/check", params={"allow_source": "own"}, content=copy,
                          headers={**AUTH, "Content-Type": "image/jpeg"}).json()
    assert allowed["failed"] is False and allowed["reports"][0]["verdict"] == "original"
    assert "own" in allowed["reports"][0]["matches"][0]["allowed"]
    never = client.post("/v1/check", params={"fail_on": "never"}, content=copy,
                        headers={**AUTH, "Content-Type": "image/jpeg"}).json()
    assert never["failed"] is False and never["reports"][0]["verdict"] == "near-duplicate"


def test_check_text_as_json_and_multipart_with_a_bad_file(client: TestClient) -> None:
    r = client.post("/v1/check", json={"text": ARTICLE.replace("ferry", "boat"), "name": "draft.md"},
                    headers=AUTH)
    report = r.json()["reports"][0]
    assert report["path"] == "draft.md" and report["verdict"] in ("exact", "near-duplicate")
    r = client.post("/v1/check", headers=AUTH, files=[
        ("file", ("fresh.txt", b"An entirely new sentence about nothing in particular.", "text/plain")),
        ("file", ("broken.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "image/png"))])
    doc = r.json()
    assert r.status_code == 200 and [x["verdict"] for x in doc["reports"]] == ["original"]
    assert doc["errors"][0]["name"] == "broken.png" and "corrupt PNG" in doc["errors"][0]["error"]


def test_text_that_names_a_server_file_is_checked_as_text(client: TestClient, work: dict) -> None:
    path = str(work["root"] / "post.md")  # must never be read from this host's disk
    r = client.post("/v1/check", json={"text": path}, headers=AUTH)
    assert r.json()["reports"][0]["media"] == "text" and r.json()["reports"][0]["verdict"] == "original"


# -- bad uploads: 4xx with the CLI's messages, never a 500 -------------------------------------------


def bomb_png() -> bytes:
    """A tiny PNG that claims 8200 x 8200 pixels (over the 64-megapixel decoder limit)."""
    buf = io.BytesIO()
    Image.new("1", (8200, 8200)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("route", ["/v1/check", "/v1/matches/byContent"])
@pytest.mark.parametrize("body, ctype, status", [
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "image/png", 400),   # truncated image
    (b"", "image/jpeg", 400),                                  # empty
    (b"\x00\x01\x02binary junk" * 10, "application/octet-stream", 400),
    (b"%PDF-1.7 not an image", "image/png", 415),              # promised an image, is not one
    (b"%PDF-1.7", "application/pdf", 415),
])
def test_bad_uploads_get_the_cli_message(client: TestClient, route: str, body: bytes, ctype: str,
                                         status: int) -> None:
    r = no_server_error(client.post(route, content=body, headers={**AUTH, "Content-Type": ctype}))
    assert r.status_code == status, r.json()
    assert r.headers["content-type"] == "application/problem+json"
    if status == 400:
        with pytest.raises(BadInputError) as cli:
            content_from_bytes(body, "<upload>")
        def same(message: str) -> str:  # Pillow names the BytesIO object it could not read, by address
            return re.sub(r" at 0x[0-9a-f]+", "", message)

        assert same(r.json()["detail"]) == same(str(cli.value))
    assert "Traceback" not in r.text


def test_decompression_bomb_is_refused(client: TestClient) -> None:
    r = no_server_error(client.post("/v1/matches/byContent", content=bomb_png(),
                                    headers={**AUTH, "Content-Type": "image/png"}))
    assert r.status_code == 400 and "decompression bomb" in r.json()["detail"]


def test_upload_size_limit(work: dict) -> None:
    with TestClient(create_app(work["index"], token=TOKEN, max_upload_bytes=1000)) as small:
        big = b"x" * 5000
        r = small.post("/v1/check", content=big, headers={**AUTH, "Content-Type": "text/plain"})
        assert r.status_code == 413 and "1000-byte upload limit" in r.json()["detail"]

        def chunks():  # no Content-Length: counted while it streams in
            for _ in range(5):
                yield b"y" * 1000

        r = small.post("/v1/matches/byContent", content=chunks(),
                       headers={**AUTH, "Content-Type": "text/plain"})
        assert r.status_code == 413
        r = small.post("/v1/check", files=[("file", ("a.txt", big, "text/plain"))], headers=AUTH)
        assert r.status_code == 413


# -- tokens and the command ---------------------------------------------------------------------------


def test_new_token_file_is_private_and_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    idx = tmp_path / "idx"
    result = CliRunner().invoke(main, ["serve", "--index", str(idx), "--new-token"])
    assert result.exit_code == 0, result.output
    token_file = idx / "serve.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert result.stdout.strip() == token_file.read_text().strip() == load_token(idx)
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    assert load_token(idx) == TOKEN  # the environment wins
    monkeypatch.delenv(TOKEN_ENV)
    token_file.chmod(0o644)
    with pytest.raises(BadInputError, match="open to other users"):
        load_token(idx)


def test_serve_refuses_to_start_without_a_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    Index.open(tmp_path / "idx", create=True).close()
    result = CliRunner().invoke(main, ["serve", "--index", str(tmp_path / "idx")])
    assert result.exit_code == 3 and "--new-token" in result.stderr


# -- a real uvicorn process: loopback, freshness across processes -----------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("live")
    Index.open(root / "idx", create=True).close()
    write_new_token(root / "idx" / "serve.token")
    token = load_token(root / "idx")
    proc = subprocess.Popen(
        [sys.executable, "-m", "provenance.cli.main", "serve", "--index", str(root / "idx"), "--port", "0"],
        stderr=subprocess.PIPE, text=True, env={k: v for k, v in os.environ.items() if k != TOKEN_ENV})
    url = None
    deadline = time.monotonic() + 60
    seen = []
    while url is None and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        found = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", line)
        url = found.group(1) if found else None
    assert url, "".join(seen)
    yield {"root": root, "url": url, "auth": {"Authorization": f"Bearer {token}"}, "proc": proc}
    proc.terminate()
    proc.wait(timeout=30)


def test_live_server_binds_loopback_and_checks_tokens(server: dict) -> None:
    assert server["url"].startswith("http://127.0.0.1:")
    assert httpx.get(server["url"] + "/healthz").status_code == 200
    assert httpx.get(server["url"] + "/v1/info").status_code == 401
    assert httpx.get(server["url"] + "/v1/info", headers=server["auth"]).json()["counts"]["items"] == 0
    bad = httpx.post(server["url"] + "/v1/check", content=b"\x89PNG\r\n\x1a\n" + bytes(30),
                     headers={**server["auth"], "Content-Type": "image/png"}, timeout=30)
    assert bad.status_code == 400 and "corrupt PNG" in bad.json()["detail"]
    unknown = httpx.get(server["url"] + "/v1/matches/byBinding", params={"alg": "io.iscc.v0", "value": "AA=="},
                        headers=server["auth"])
    assert unknown.status_code == 400 and "not supported here" in unknown.json()["detail"]


def test_live_server_sees_items_added_and_removed_by_another_process(server: dict) -> None:
    root, url, auth = server["root"], server["url"], server["auth"]
    identity = new_signing_identity(root / "keys")
    (root / "late.jpg").write_bytes(jpeg(sample_photo(31)))
    copy = None
    with Index.open(root / "idx") as idx:  # another process than the server: this test's
        out = disclose_content(root / "late.jpg", source_type="digitalCapture", generator=None,
                               identity=identity, index=idx)
        copy = stripped_copy(Path(out.result.path))
    manifest_id = out.record.manifest_label

    def matches() -> list[str]:
        r = httpx.post(url + "/v1/matches/byContent", content=copy,
                       headers={**auth, "Content-Type": "image/jpeg"}, timeout=30)
        assert r.status_code == 200, r.text
        return [m["manifestId"] for m in r.json()["matches"]]

    def eventually(want: list[str]) -> None:
        deadline = time.monotonic() + 5
        while matches() != want:
            assert time.monotonic() < deadline, f"still not {want} after 5 s"
            time.sleep(0.2)

    eventually([manifest_id])
    r = httpx.get(f"{url}/v1/manifests/{manifest_id}", headers=auth)
    assert r.status_code == 200 and r.headers["content-type"] == "application/c2pa"
    with Index.open(root / "idx") as idx:
        idx.remove(out.record.item_id)
    eventually([])


def test_live_server_shuts_down_cleanly(server: dict) -> None:
    proc = server["proc"]
    proc.terminate()
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells what stopped it.
    assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    log = proc.stderr.read()
    assert "Application shutdown complete" in log and "Traceback" not in log


def test_check_reports_the_uploads_own_provenance_and_allowed_sources(client: TestClient) -> None:
    """The API answers like `check --json`: the upload's own origin under `provenance`, and matches
    against an allowed source marked `allowed` without failing the gate."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a lighthouse\nSteps: 30, Sampler: DPM++ 2M, Model: sdxl")
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (20, 90, 160)).save(buf, "PNG", pnginfo=info)
    r = client.post("/v1/check", files=[("file", ("gen.png", buf.getvalue(), "image/png"))], headers=AUTH)
    assert r.status_code == 200
    assert r.json()["reports"][0]["provenance"]["suggestion"] == "trainedAlgorithmicMedia"

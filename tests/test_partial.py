"""The ``partial`` verdict: only a region of one picture appears in the other (local features).

Between ``near-duplicate`` and ``paraphrase``; ``--fail-on partial`` chooses it, the default gate
(``near-duplicate``) lets it pass. Real index, real ORB/MAGSAC, real CLI and service.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from provenance import VERDICTS, Index, Observation, decide
from provenance.cli.main import main
from provenance.report import Report

from .test_localfeatures import scene


def test_partial_sits_between_near_duplicate_and_paraphrase() -> None:
    assert VERDICTS == ("exact", "near-duplicate", "partial", "paraphrase", "original")
    report = Report(path="x", media="image", verdict="partial", score=1.0, sha256="0" * 64)
    assert not report.fails("near-duplicate")  # the default gate lets a partial copy pass
    assert report.fails("partial") and report.fails("paraphrase") and not report.fails("never")


def test_a_whole_copy_seen_by_another_signal_outranks_partial() -> None:
    local = Observation("local-features", 0.999, 0.993, False, "partial", score=0.999)
    pdq = Observation("pdq", 12, 31, True, "near-duplicate", score=0.95)
    assert decide([local]) == "partial"
    assert decide([local, pdq]) == "near-duplicate"


def _collage(picture: Image.Image, share: float) -> Image.Image:
    """``picture`` at ``share`` of the area of a 1000x800 canvas of four other pictures."""
    canvas = Image.new("RGB", (1000, 800), (240, 240, 240))
    for k in range(4):
        canvas.paste(scene(200 + k, (490, 390)), ((k % 2) * 505 + 5, (k // 2) * 405 + 5))
    f = (share * 1000 * 800 / (picture.width * picture.height)) ** 0.5
    canvas.paste(picture.resize((round(picture.width * f), round(picture.height * f)), Image.Resampling.LANCZOS),
                 (400, 350))  # inside the canvas: the whole picture is there
    return canvas


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("partial")
    original = scene(91, (640, 480))
    paths = {"original": root / "original.png", "other": root / "other.png"}
    original.save(paths["original"])
    scene(92, (640, 480)).save(paths["other"])
    _collage(original, 0.3).save(root / "collage.jpg", quality=90)
    rotated = original.rotate(12, expand=True, resample=Image.Resampling.BICUBIC)  # whole, black corners
    rotated.save(root / "rotated.jpg", quality=90)
    with Index.open(root / "idx", create=True) as idx:
        idx.add(list(paths.values()))
    return {**paths, "collage": root / "collage.jpg", "rotated": root / "rotated.jpg", "index": root / "idx"}


def test_a_picture_pasted_into_a_collage_is_partial_and_a_rotated_copy_is_not(work: dict[str, Path]) -> None:
    with Index.open(work["index"]) as idx:
        report = idx.check(work["collage"], origin=False)
        assert report.verdict == "partial"
        m = report.matches[0]
        assert m.path == str(work["original"]) and m.signal == "local-features" and m.verdict == "partial"
        ev = m.evidence["local-features"]
        assert ev["passed"] and ev["level"] == "partial" and 0.2 < ev["query_coverage"] < 0.45
        assert ev["reference_coverage"] > 0.9  # the whole indexed picture is there, as a part of the draft
        assert "partial" in m.observations[-1].summary() or any("partial" in line for line in m.lines())
        rotated = idx.check(work["rotated"], origin=False)
        assert rotated.verdict == "near-duplicate"
        assert rotated.matches[0].evidence["local-features"]["level"] == "near-duplicate"


def test_cli_fails_on_partial_only_when_asked(work: dict[str, Path]) -> None:
    def run(*args: object) -> tuple[int, str]:
        r = CliRunner().invoke(main, ["check", "--index", str(work["index"]), "--no-origin",
                                      *[str(a) for a in args]])
        return r.exit_code, r.output

    code, out = run(work["collage"])
    assert code == 0 and "partial" in out
    code, out = run("--fail-on", "partial", "--json", work["collage"])
    assert code == 1
    doc = json.loads(out)
    assert doc["schema"] == "provenance.report/1" and doc["reports"][0]["verdict"] == "partial"
    code, _ = run("--fail-on", "paraphrase", work["collage"])
    assert code == 1  # partial is stronger than paraphrase


def test_service_gate_accepts_partial(work: dict[str, Path]) -> None:
    from fastapi.testclient import TestClient

    from provenance.service import create_app
    token = "test-token-" + "y" * 24
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "image/jpeg"}
    buf = io.BytesIO()
    Image.open(work["collage"]).save(buf, "JPEG", quality=95)
    with TestClient(create_app(work["index"], token=token)) as client:
        default = client.post("/v1/check", content=buf.getvalue(), headers=auth).json()
        assert default["failed"] is False and default["reports"][0]["verdict"] == "partial"
        asked = client.post("/v1/check", params={"fail_on": "partial"}, content=buf.getvalue(), headers=auth).json()
        assert asked["failed"] is True


def test_a_small_part_of_a_collage_is_looked_at_again_on_its_own(work: dict[str, Path], tmp_path: Path) -> None:
    """At 10 % of the collage the picture gets too few of the draft's keypoints for the score (0.93 on the
    whole collage); the region where it was found, extracted on its own, verifies, and the evidence is in
    the whole collage's pixels."""
    original = Image.open(work["original"]).convert("RGB")
    small = tmp_path / "small.jpg"
    _collage(original, 0.1).save(small, quality=90)
    with Index.open(work["index"]) as idx:
        report = idx.check(small, origin=False)
    assert report.verdict == "partial"
    ev = report.matches[0].evidence["local-features"]
    assert ev["passed"] and 0.07 < ev["query_coverage"] < 0.13 and "region_x0" in ev["details"]
    # The reference's centre lands on the pasted picture's centre (pasted at (400, 350), 0.1 of the area),
    # in the pixels of both images as decoded (at most 512 px on the long side: 1000 -> 512, 640 -> 512).
    f = (0.1 * 1000 * 800 / (640 * 480)) ** 0.5
    d = 512 / 1000
    hm = ev["homography"]
    x, y, z = (sum(hm[r][c] * v for c, v in enumerate((256, 192, 1))) for r in range(3))
    assert abs(x / z - (400 + 320 * f) * d) < 3 and abs(y / z - (350 + 240 * f) * d) < 3

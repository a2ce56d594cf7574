"""A signal from another distribution: installed next to the product in a fresh virtual environment, it
shows up in ``info`` and in a match's evidence, and items added before it was installed are back-filled
by ``rebuild`` (never silently ignored). No change to the product's code."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "examples" / "colour-layout-signal"


def _pip(env_dir: Path, *args: str) -> None:
    subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", *args], check=True, capture_output=True, timeout=600)


def _cli(env_dir: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(env_dir / "bin" / "provenance"), *map(str, args)], capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def product_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding a non-editable build of the product (its dependencies come from this
    interpreter's site-packages, so nothing is downloaded)."""
    env_dir = tmp_path_factory.mktemp("plugin") / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(env_dir)
    # ensurepip (Python < 3.12) puts its own old setuptools into the venv, which cannot build a wheel
    # without the `wheel` package (`invalid command 'bdist_wheel'`); without it the venv builds with the
    # interpreter's own setuptools, the one that installed the product.
    subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "uninstall", "-q", "-y", "setuptools"],
                   check=False, capture_output=True, timeout=120)
    _pip(env_dir, str(ROOT))
    return env_dir


def test_plugin_signal_is_registered_backfilled_and_in_evidence(product_env: Path, tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    rng_img = Image.effect_mandelbrot((320, 240), (-2.0, -1.2, 1.0, 1.2), 60).convert("RGB")
    rng_img.save(photo)
    idx = tmp_path / "idx"
    assert _cli(product_env, "add", "--index", idx, photo).returncode == 0

    _pip(product_env, str(PLUGIN))
    info = json.loads(_cli(product_env, "info", "--index", idx, "--json").stdout)
    plugin = next(s for s in info["signals"] if s["name"] == "colour-layout")
    assert plugin["dim"] == 192 and plugin["pending_backfill"] is True

    copy = tmp_path / "copy.jpg"
    rng_img.resize((240, 180)).filter(ImageFilter.GaussianBlur(1)).save(copy, quality=70)
    before = json.loads(_cli(product_env, "check", "--index", idx, "--json", "--fail-on", "never", copy).stdout)
    skipped = {s["signal"]: s["reason"] for s in before["reports"][0]["skipped"]}
    assert "provenance rebuild" in skipped["colour-layout"]

    rebuilt = _cli(product_env, "rebuild", "--index", idx)
    assert rebuilt.returncode == 0, rebuilt.stderr
    after = json.loads(_cli(product_env, "check", "--index", idx, "--json", "--fail-on", "never", copy).stdout)
    report = after["reports"][0]
    assert report["verdict"] == "near-duplicate"
    ev = report["matches"][0]["evidence"]["colour-layout"]
    assert ev["bits"] == 192 and ev["passed"] and ev["distance"] <= 20
    assert "colour-layout" not in {s["signal"] for s in report["skipped"]}


def test_the_product_alone_knows_nothing_of_the_plugin() -> None:
    """The plugin is not installed in the test interpreter: the registry only lists what is installed."""
    from provenance.signals import available

    assert "colour-layout" not in available()
    assert sys.modules.get("provenance_colour_layout") is None

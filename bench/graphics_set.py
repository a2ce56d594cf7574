"""A development set of flat, low-texture and templated pictures: icons, symbols, clip art, game screenshots.

Built from Debian packages fetched with ``apt-get download`` and unpacked with ``dpkg-deb -x`` into
``bench/out/graphics/`` (git-ignored; never committed). SVGs are rasterised with ``rsvg-convert`` (from the
``librsvg2-bin`` package, unpacked the same way when it is not installed); symbol-font glyphs with Pillow.

Every picture carries a ``group``: pictures in one group are siblings (one icon theme's folder icons that
differ only in the glyph, one clip-art category, one symbol block, one game-thumbnail set), which is what
makes them hard negatives for one another. The evaluation indexes some members of a group and queries
the others as non-copies.

Run ``python -m bench.graphics_set`` to build (idempotent); ``load()`` returns the manifest.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from .common import OUT, log

ROOT = OUT / "graphics"
PKGROOT = ROOT / "pkgroot"
IMAGES = ROOT / "img"
MANIFEST = ROOT / "manifest.json"
PACKAGES = ("papirus-icon-theme", "breeze-icon-theme", "tuxpaint-stamps-default", "games-thumbnails",
            "fonts-symbola", "librsvg2-bin")
#: Rendered side of icons and glyphs: the size a web page or a chat shows them at.
SIDE = 256
SEED = 91


def fetch_packages() -> None:
    """Download and unpack the source packages (needs network once; skipped when unpacked already)."""
    debs = ROOT / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    missing = [p for p in PACKAGES if not list(debs.glob(f"{p}_*.deb"))]
    if missing:
        log(f"graphics: apt-get download {' '.join(missing)}")
        subprocess.run(["apt-get", "download", *missing], cwd=debs, check=True, capture_output=True)
    PKGROOT.mkdir(parents=True, exist_ok=True)
    for deb in sorted(debs.glob("*.deb")):
        stamp = PKGROOT / f".{deb.name}.done"
        if not stamp.exists():
            subprocess.run(["dpkg-deb", "-x", str(deb), str(PKGROOT)], check=True)
            stamp.touch()


def _rsvg() -> list[str]:
    exe = shutil.which("rsvg-convert") or str(PKGROOT / "usr/bin/rsvg-convert")
    return [exe]


def _render_svg(svg: Path, out: Path) -> bool:
    if out.exists():
        return True
    out.parent.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(_rsvg() + ["-w", str(SIDE), "-h", str(SIDE), "-a", "-b", "white", str(svg), "-o", str(out)],
                       check=False, capture_output=True)
    if r.returncode != 0 or not out.exists():
        return False
    # Some icons render narrower than SIDE (aspect kept); flatten onto white RGB so every tool sees the same.
    with Image.open(out) as im:
        im.convert("RGB").save(out)
    return True


def _flatten_png(src: Path, out: Path) -> bool:
    if out.exists():
        return True
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with Image.open(src) as im:
            im = im.convert("RGBA")
            bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
            bg.alpha_composite(im)
            bg.convert("RGB").save(out)
        return True
    except OSError:
        return False


#: Symbol blocks rendered from Symbola: arrows, misc. symbols, dingbats, emoticons, transport, geometric.
GLYPH_BLOCKS = {"arrows": (0x2190, 0x21FF), "misc-symbols": (0x2600, 0x26FF), "dingbats": (0x2700, 0x27BF),
                "emoticons": (0x1F600, 0x1F64F), "transport": (0x1F680, 0x1F6FF), "geometric": (0x25A0, 0x25FF)}


def _render_glyphs(n_per_block: int, rng: random.Random) -> list[dict[str, Any]]:
    font_path = next(PKGROOT.rglob("Symbola*.ttf"), None)
    if font_path is None:
        return []
    font = ImageFont.truetype(str(font_path), int(SIDE * 0.7))
    out = []
    for block, (a, b) in GLYPH_BLOCKS.items():
        cps = list(range(a, b + 1))
        rng.shuffle(cps)
        for cp in cps[:n_per_block]:
            path = IMAGES / "symbola" / block / f"u{cp:05x}.png"
            if not path.exists():
                img = Image.new("RGB", (SIDE, SIDE), (255, 255, 255))
                d = ImageDraw.Draw(img)
                box = d.textbbox((0, 0), chr(cp), font=font)
                if box[2] - box[0] < 8 or box[3] - box[1] < 8:
                    continue  # a glyph the font lacks (or a combining mark)
                d.text(((SIDE - (box[2] + box[0])) / 2, (SIDE - (box[3] + box[1])) / 2), chr(cp), font=font,
                       fill=(0, 0, 0))
                path.parent.mkdir(parents=True, exist_ok=True)
                img.save(path)
            out.append({"path": str(path), "source": "symbola", "group": f"symbola/{block}"})
    return out


def build(per_source: int = 250) -> list[dict[str, Any]]:
    """Fetch, unpack, render; write and return the manifest (``path``, ``source``, ``group``)."""
    fetch_packages()
    rng = random.Random(SEED)
    share = PKGROOT / "usr/share"
    jobs: list[tuple[str, Path, Path, str, str]] = []  # (kind, src, out, source, group)

    def pick(paths: list[Path], n: int) -> list[Path]:
        paths = sorted(paths)
        rng.shuffle(paths)
        return paths[:n]

    pap = share / "icons/Papirus/64x64"
    # Same template, different glyph: every blue folder icon (the glyph is the only difference).
    for p in sorted((pap / "places").glob("folder-blue-*.svg")):
        jobs.append(("svg", p, IMAGES / "papirus-folders" / (p.stem + ".png"), "papirus", "papirus/folder-blue"))
    for sub, n in (("apps", per_source), ("mimetypes", per_source // 2), ("devices", per_source // 4)):
        for p in pick([q for q in (pap / sub).glob("*.svg") if not q.is_symlink()], n):
            jobs.append(("svg", p, IMAGES / "papirus" / sub / (p.stem + ".png"), "papirus", f"papirus/{sub}"))
    breeze = share / "icons/breeze"
    for sub in ("apps/48", "mimetypes/64", "places/64"):
        cands = [q for q in (breeze / sub).glob("*.svg") if not q.is_symlink()]
        for p in pick(cands, per_source // 3):
            jobs.append(("svg", p, IMAGES / "breeze" / sub.replace("/", "-") / (p.stem + ".png"), "breeze",
                         f"breeze/{sub.split('/')[0]}"))
    tux = share / "tuxpaint/stamps"
    for p in pick(list(tux.rglob("*.png")), per_source):
        if p.name.endswith(("_thumb.png", "_back.png")):
            continue
        group = "tuxpaint/" + "/".join(p.relative_to(tux).parts[:2][:-1] or ["misc"])
        jobs.append(("png", p, IMAGES / "tuxpaint" / f"{p.parent.name}-{p.stem}.png", "tuxpaint", group))
    for p in pick(list((share / "games/thumbnails").glob("*.png")), per_source):
        jobs.append(("png", p, IMAGES / "games" / p.name, "games-thumbnails", "games-thumbnails"))

    def run(job: tuple[str, Path, Path, str, str]) -> dict[str, Any] | None:
        kind, src, out, source, group = job
        ok = _render_svg(src, out) if kind == "svg" else _flatten_png(src, out)
        return {"path": str(out), "source": source, "group": group} if ok else None

    log(f"graphics: rendering {len(jobs)} pictures")
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as ex:
        items = [r for r in ex.map(run, jobs) if r is not None]
    items += _render_glyphs(per_source // 5, rng)
    # Drop pictures that render to (almost) nothing: an empty canvas is no one's copy.
    kept = []
    for it in items:
        with Image.open(it["path"]) as im:
            lo, hi = im.convert("L").getextrema()
        if hi - lo >= 24:
            kept.append(it)
    MANIFEST.write_text(json.dumps(kept, indent=0))
    log(f"graphics: {len(kept)} pictures in {len({i['group'] for i in kept})} groups -> {MANIFEST}")
    return kept


def load() -> list[dict[str, Any]]:
    """The manifest, building the set first if needed."""
    if not MANIFEST.exists():
        return build()
    return json.loads(MANIFEST.read_text())


if __name__ == "__main__":
    build()

"""How often `lookup` finds the disclosure of a stripped or transformed copy, and how often it
links unrelated content to a disclosure.

Images: N photos from ../shared/data/images/clothing-small are disclosed (embedded manifest,
recorded in a fresh index); each gets transformed copies with all metadata stripped; N other
photos of the same set are the negatives (same backgrounds: hard negatives).
Text: the 5 Clough & Stevenson Wikipedia sources are disclosed as Markdown; the 95 answers are
looked up (cut / light / heavy / non).

    python bench/disclosure_lookup.py [N]        (prints one JSON document)
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps

from provenance.checker import Index
from provenance.disclosure import disclose_content, lookup
from provenance.identities import new_signing_identity

DATA = Path(__file__).resolve().parents[2] / "shared/data"


def transforms(im: Image.Image) -> dict[str, Image.Image]:
    w, h = im.size
    overlay = im.copy()
    ImageDraw.Draw(overlay).rectangle([0, int(h * 0.85), w, h], fill=(255, 255, 255))
    ImageDraw.Draw(overlay).text((10, int(h * 0.87)), "reposted @someone", fill=(0, 0, 0))
    return {
        "reencode-q50": im,
        "resize-50%": im.resize((w // 2, h // 2)),
        "crop-10%": im.crop((w // 20, h // 20, w - w // 20, h - h // 20)),
        "mirror": ImageOps.mirror(im),
        "rotate-90": im.rotate(90, expand=True),
        "caption-bar": overlay,
        "grayscale": ImageOps.grayscale(im).convert("RGB"),
    }


def main(n: int) -> None:
    photos = sorted((DATA / "images/clothing-small/test").rglob("*.jpg"))
    positives, negatives = photos[:n], photos[n:2 * n]
    out: dict = {"n": n}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        identity = new_signing_identity(root / "signer")
        idx = Index.open(root / "idx", create=True)
        started = time.monotonic()
        for i, photo in enumerate(positives):
            dst = root / f"p{i}.jpg"
            dst.write_bytes(photo.read_bytes())
            disclose_content(dst, source_type="trainedAlgorithmicMedia", generator="bench",
                             identity=identity, index=idx)
        out["disclose_s_per_image"] = round((time.monotonic() - started) / n, 3)
        found: Counter = Counter()
        started = time.monotonic()
        for i in range(n):
            with Image.open(root / f"p{i}.c2pa.jpg") as im:
                im = im.convert("RGB")
                for name, copy in transforms(im).items():
                    path = root / f"copy-{i}-{name}.jpg"
                    copy.save(path, "JPEG", quality=50)  # re-encoding drops every manifest
                    result = lookup(idx, path)
                    assert result.own_status == "no-manifest"
                    found[name] += any(h.disclosures[0].output_path.endswith(f"p{i}.c2pa.jpg")
                                       for h in result.hits)
        out["image_lookup_s"] = round((time.monotonic() - started) / (n * 7), 3)
        out["image_found_rate"] = {k: round(v / n, 3) for k, v in found.items()}
        false = sum(lookup(idx, p).found for p in negatives)
        out["image_false_link_rate"] = round(false / len(negatives), 3)

        rows = [json.loads(x) for x in (DATA / "text/clough_stevenson.jsonl").open()]
        for r in rows:
            if r["category"] == "orig":
                p = root / f"orig-{r['task']}.md"
                p.write_text(r["text"], encoding="utf-8")
                disclose_content(p, source_type="trainedAlgorithmicMedia", generator="bench",
                                 identity=identity, index=idx)
        by_cat: dict[str, list[int]] = {}
        for r in rows:
            if r["category"] == "orig":
                continue
            p = root / f"ans-{r['id']}.txt"
            p.write_text(r["text"], encoding="utf-8")
            res = lookup(idx, p)
            hit = any(h.disclosures[0].output_path.endswith(f"orig-{r['task']}.md")
                      for h in res.hits)
            by_cat.setdefault(r["category"], []).append(int(hit))
        out["text_found_rate"] = {k: f"{sum(v)}/{len(v)}" for k, v in sorted(by_cat.items())}
        idx.close()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)

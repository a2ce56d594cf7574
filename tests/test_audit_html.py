"""The ``--html`` audit report read as a person reads it: real files, a real index and audit, real Chromium.

The page must say what was found in words (no raw counter names, no JSON), its counts must agree with what
its filters show, an exact copy is one line (not the text twice), a match without a source label reads
well, and a local-feature image match draws the corresponding regions on both images.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import markupsafe
import pytest
from PIL import Image

from provenance import Index
from provenance.audit import AuditResult, audit
from provenance.audit_html import CSP, render_html, write_html
from provenance.signals.local import LocalEvidence
from tests.test_localfeatures import scene

LOG = "\n".join(f"Line {i}: the harbour master logged every vessel that entered the bay before dawn, "
                "noting cargo and crew." for i in range(6))
ESSAY = ("Winter came early to the valley that year. The shepherds brought the flocks down from the high "
         "pastures a month before the feast, and the miller's daughter counted the sacks of grain twice, "
         "because the river had frozen at the weir and the wheel would not turn again until spring.")
#: A hostile name for an image copy: markup and a quote, which must stay text in labels and overlays.
HOSTILE = 'scene"<i>crop.jpg'


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An archive with an exact text copy (repeated lines), a cropped image copy, a rotated crop of an
    indexed image, a byte copy of an indexed text, an original, a corrupt file and a symlink; an index
    whose image has no source label; the real audit and its page."""
    root = tmp_path_factory.mktemp("audit-html")
    archive, published = root / "archive", root / "published"
    archive.mkdir()
    published.mkdir()
    (archive / "log.txt").write_text(LOG)
    (archive / "log-copy.txt").write_text(LOG)
    a = scene(11)
    a.save(archive / "scene.png")
    a.crop((60, 40, 440, 330)).resize((300, 229)).save(archive / HOSTILE, quality=90)
    src = scene(7)
    src.save(published / "source.jpg", quality=92)
    # Rotated 8 degrees counter-clockwise, then cropped inside the rotated frame (no black corners).
    src.rotate(8, resample=Image.Resampling.BICUBIC).crop((70, 55, 410, 305)).save(archive / "crop-rotated.jpg",
                                                                                   quality=90)
    (published / "essay.txt").write_text(ESSAY)
    shutil.copy(published / "essay.txt", archive / "essay-copy.txt")
    (archive / "original.txt").write_text("A note about the weather in another town, in words of its own, "
                                          "which nothing in the index or the archive repeats anywhere.")
    (archive / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    os.symlink(published / "essay.txt", archive / "link.txt")  # the walk does not follow it: a walk error
    index = Index(root / "idx", create=True)
    index.add([published / "source.jpg"])  # no source label
    index.add([published / "essay.txt"], source="press")
    result = audit([archive], state_path=root / "state.sqlite", index=index, workers=1)
    index.catalog.close()
    page = root / "report.html"
    write_html(result, page)
    return {"root": root, "result": result, "page": page, "html": page.read_text(encoding="utf-8")}


class _Text(HTMLParser):
    """The text a reader sees (script and style left out), and every start tag."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._skip = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._skip = tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self._skip = False

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _read(page: str) -> _Text:
    p = _Text()
    p.feed(page)
    p.close()
    return p


def _item(result: AuditResult, name: str) -> int:
    return next(i for i, it in enumerate(result.items) if Path(it.path).name == name)


def test_summary_is_words_not_field_names(report: dict[str, Any]) -> None:
    text = " ".join(_read(report["html"]).parts)
    for raw in ("clustered_items", "reused_by_sha256", "matched_in_index", "batch_fingerprinted", "verdicts",
                "fingerprint_seconds"):
        assert raw not in text, raw
    assert not re.search(r"\{\s*\"", text), "a JSON object is visible on the page"
    lede = re.search(r'<p class="lede" id="lede">(.*?)</p>', report["html"], re.S)
    assert lede is not None
    # 9 files: 8 found by the walk (3 images and 4 texts read, one corrupt file) and the symlink it skipped.
    assert lede.group(1).startswith("9 files audited (3 images, 4 texts): ")
    assert "2 copies of indexed content (1 exact, 1 near-duplicate)" in lede.group(1)
    assert "2 clusters of copies inside the archive (4 files)" in lede.group(1)
    assert "2 files could not be read" in lede.group(1)


def test_look_first_lists_the_strongest_findings_with_working_links(report: dict[str, Any]) -> None:
    page = report["html"]
    first = re.search(r'<ol class="first" id="look-first">(.*?)</ol>', page, re.S)
    assert first is not None
    anchors = re.findall(r'<a href="#([^"]+)">', first.group(1))
    assert len(anchors) == 4  # two index matches, two clusters; originals and errors are not findings
    for a in anchors:
        assert f'id="{a}"' in page, a
    result = report["result"]
    # Strongest first: the exact copy of indexed content, then the exact cluster, then near-duplicates.
    assert anchors[:2] == [f"match-{_item(result, 'essay-copy.txt')}", "cluster-1"]
    assert "from source press" in first.group(1)


def test_exact_copy_is_one_line(report: dict[str, Any]) -> None:
    page = report["html"]
    cluster = page[page.index('id="cluster-1"'):page.index('id="cluster-2"')]
    assert "identical bytes to" in cluster
    assert "<mark>" not in cluster and 'class="pair"' not in cluster  # neither text whole nor sub-matches
    assert "Line 5" not in cluster  # the gallery excerpts show the start; nothing shows the whole text
    match = page[page.index(f'id="match-{_item(report["result"], "essay-copy.txt")}"'):]
    match = match[:match.index("\n<h2")]
    assert "identical bytes to #2" in match and "<mark>" not in match


def test_match_without_a_source_label_reads_well(report: dict[str, Any]) -> None:
    text = " ".join(_read(report["html"]).parts)
    assert "(source ," not in text and "source None" not in text and "source -" not in text
    i = _item(report["result"], "crop-rotated.jpg")
    assert report["result"].items[i].index_report.matches[0].source is None  # the case under test
    assert re.search(r"copy of indexed item #1 \S*source\.jpg, score \d", text)


def test_local_feature_regions_reach_the_renderer_and_the_json(report: dict[str, Any]) -> None:
    result: AuditResult = report["result"]
    i = _item(result, "crop-rotated.jpg")
    m = result.items[i].index_report.matches[0]
    ev = next(o.evidence for o in m.observations if isinstance(o.evidence, LocalEvidence) and o.passed)
    regions = ev.image_regions()
    assert regions is not None and regions.query_size == (340, 250) and regions.reference_size == (480, 360)
    assert regions.transform.startswith("rotated 8° counter-clockwise")
    # The indexed image is not in the archive: its preview comes with the evidence (a JPEG, not in the JSON).
    assert regions.reference_thumbnail and base64.b64decode(regions.reference_thumbnail)[:3] == b"\xff\xd8\xff"
    doc = json.loads(json.dumps(result.to_dict()))
    local = next(x for x in doc["items"][i]["index_matches"][0]["evidence"].values() if "query_polygon" in x)
    assert local["query_size"] == [340, 250] and len(local["reference_polygon"]) >= 3
    # An in-archive pair carries the same evidence on its edge.
    edge = next(e for c in doc["clusters"] for e in c["edges"] if Path(e["a"]).name == HOSTILE
                or Path(e["b"]).name == HOSTILE)
    assert any("matched_reference_polygon" in x for x in edge["evidence"].values())


def test_local_feature_regions_are_drawn_on_both_images(report: dict[str, Any]) -> None:
    page = report["html"]
    tags = _read(page).tags
    svgs = [a for t, a in tags if t == "svg"]
    # The cluster pair (both thumbnails) and the index match (its thumbnail and the indexed image's preview).
    assert len(svgs) == 4
    assert {a["viewbox"] for a in svgs} == {"0 0 300 229", "0 0 480 360", "0 0 340 250"}
    polys = [a for t, a in tags if t == "polygon"]
    assert sum(a["class"] == "region" for a in polys) == 4 and sum(a["class"] == "matched" for a in polys) == 4
    assert "Matching region: rotated 8° counter-clockwise" in page
    assert "Matching region: scaled to 0.79×" in page
    assert "indexed image, 480×360: greyscale preview" in page
    # The hostile name stays text in the overlay's labels.
    assert "<i>" not in page and not [t for t, _ in tags if t == "i"]
    assert "scene&#34;&lt;i&gt;crop.jpg" in page


def test_repeated_lines_show_aligned_passages_only(tmp_path: Path) -> None:
    """A near-duplicate of a text with repeated lines: each signal finds line 3 of one against lines 0 to
    3 of the other; the page shows each passage once, against the line it was copied from."""
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "log.txt").write_text(LOG)
    (folder / "log-edited.txt").write_text(LOG.replace("Line 3: the harbour master", "Line 3: an old harbour clerk")
                                           .replace("Line 5", "Finally"))
    result = audit([folder], state_path=tmp_path / "state.sqlite", workers=1)
    assert [c.verdict for c in result.clusters] == ["near-duplicate"]
    page = render_html(result)
    pairs = re.findall(r'<div class="pair"><div>.*?<mark>(.*?)</mark>.*?</div><div>.*?<mark>(.*?)</mark>', page,
                       re.S)
    assert 1 <= len(pairs) <= 3
    for a, b in pairs:
        lines_a, lines_b = set(re.findall(r"Line (\d)", a)), set(re.findall(r"Line (\d)", b))
        # The same lines on both sides (line 5 became "Finally" in the copy), never shifted ones.
        assert lines_a & lines_b and (lines_a ^ lines_b) <= {"5"}, (a, b)
    starts = [a[:20] for a, _ in pairs]
    assert len(set(starts)) == len(starts)  # no passage twice


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

#: Run in the loaded page by the test (its hash is added to the page's policy for the test copy only):
#: what a reader sees with each filter alone, the numbers the page states, and where things are drawn.
PROBE = """
document.addEventListener('DOMContentLoaded',function(){setTimeout(function(){
  var out={shown:{},labels:{},lede:document.getElementById('lede').textContent,overlays:[]};
  var boxes=Array.prototype.slice.call(document.querySelectorAll('.filters input'));
  boxes.forEach(function(only){
    boxes.forEach(function(b){b.checked=(b===only);b.dispatchEvent(new Event('change'));});
    out.shown[only.value]=Array.prototype.filter.call(document.querySelectorAll('table.items tr[data-verdict]'),
      function(r){return r.getClientRects().length>0;}).length;
  });
  boxes.forEach(function(b){b.checked=true;b.dispatchEvent(new Event('change'));});
  document.querySelectorAll('[data-count]').forEach(function(s){
    out.labels[s.getAttribute('data-count')]=parseInt(s.textContent,10);});
  out.firstBottom=document.getElementById('look-first').getBoundingClientRect().bottom;
  out.viewport=window.innerHeight;
  document.querySelectorAll('.ov').forEach(function(o){
    var i=o.querySelector('img').getBoundingClientRect(),s=o.querySelector('svg').getBoundingClientRect();
    out.overlays.push([i.left,i.top,i.width,i.height,s.left,s.top,s.width,s.height]);});
  var pre=document.createElement('pre');pre.id='probe';pre.textContent=JSON.stringify(out);
  document.body.appendChild(pre);},0);});
"""


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_counts_agree_with_the_filters_in_chromium(report: dict[str, Any], tmp_path: Path) -> None:
    page = report["html"]
    digest = base64.b64encode(hashlib.sha256(PROBE.encode()).digest()).decode()
    csp = str(markupsafe.escape(CSP))  # as the page writes it in its attribute
    assert csp in page
    probed = page.replace(csp, str(markupsafe.escape(CSP.replace("script-src ", f"script-src 'sha256-{digest}' "))), 1)
    probed = probed.replace("</head>", f"<script>{PROBE}</script></head>", 1)
    copy = tmp_path / "probed.html"
    copy.write_text(probed, encoding="utf-8")
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,900", "--virtual-time-budget=5000"]
    dom = subprocess.run([*flags, "--dump-dom", copy.resolve().as_uri()], capture_output=True, text=True,
                         timeout=90).stdout
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found is not None, dom[-2000:]
    probe = json.loads(html.unescape(found.group(1)))
    # What each filter shows is what its label says (this was 13 against 11 for errors).
    assert probe["shown"] == probe["labels"]
    assert probe["labels"]["error"] == 2
    lede = probe["lede"]
    assert f"{probe['labels']['error']} files could not be read" in lede
    assert lede.startswith(f"{sum(probe['labels'].values())} files audited")
    # The first screen (1200x900) says what matters: the summary and the list of findings fit on it.
    assert probe["firstBottom"] <= probe["viewport"]
    # Each polygon layer lies exactly over its thumbnail.
    assert len(probe["overlays"]) == 4  # both images of the archive pair and of the index match
    for o in probe["overlays"]:
        assert o[2] > 50 and all(abs(o[k] - o[k + 4]) < 1.5 for k in range(4)), o

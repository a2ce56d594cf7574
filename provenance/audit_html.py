"""The ``--html`` report of an audit: one self-contained page (inline CSS/JS, thumbnails as data: URIs).

Safe by construction rather than by hand-placed escapes (issue 11):

- the page is a Jinja2 template with autoescaping on, so every value (paths, file contents, error
  messages, values read back from the audit state database) is escaped in text and in attributes alike;
- the Content-Security-Policy allows only the page's own script and style, by their SHA-256 hashes: no
  inline script or event handler that the template did not write can run, even if something slipped
  past escaping, and nothing can be fetched (``default-src 'none'``, images only from ``data:``);
- a thumbnail is used only if it is base64 of a JPEG (it is read from the state database, which anyone
  who can write that file controls);
- control, format (bidi overrides, zero-width) and other invisible characters in names and texts are shown
  as visible ``⟪U+202E⟫`` marks, so ``report<U+202E>txt.exe<U+202C>.txt`` cannot pose as
  ``reportexe.txt.txt``.

The page reads as a person asks (issue: a newcomer's first report): one sentence of what was found, a
"Look at first" list linking to the strongest findings, then the evidence per finding, then every file.
Every count comes from one list of rows (files the walk skipped are rows too), so the summary, the filter
labels and the rows a filter shows agree; raw counters stay in the JSON export. An ``exact`` pair is one
line (``identical bytes to X``); passages are the deciding signal's, others' only where they add text;
an image match that locates its regions (:meth:`~provenance.report.Evidence.image_regions`) is drawn as
SVG polygons over both thumbnails, with the transform in words.

The view is built by small functions (``_item_view``, ``_pair_views``, ``_index_match_view``) that read the
records and ask each match's typed evidence for its summary, spans and regions; no signal is named here.
Nothing refers to the network, so the page opens the same offline, from e-mail or a share.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import tempfile
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

import jinja2

from .audit import AuditResult, Edge
from .report import Match, Observation, Span, verdict_rank

#: Clusters drawn as galleries; the rest are listed in the items table (keeps the page size bounded).
MAX_CLUSTERS_SHOWN = 300
#: Pairs shown with their evidence per cluster (a spanning forest: n - 1 pairs for n copies); each image
#: pair repeats both thumbnails under its drawn regions, so this bounds the page as well.
MAX_PAIRS_PER_CLUSTER = 5
#: Characters of context around a highlighted passage.
CONTEXT = 120
#: Longest thumbnail accepted from the state database (base64 characters); real ones are a few KB.
MAX_THUMB_CHARS = 200_000

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:16px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 8px} h2{font-size:16px;margin:24px 0 8px}
.lede{font-size:16px;margin:4px 0 8px} .first{margin:4px 0 12px} .first li{margin:2px 0}
.filters label{margin-right:12px} .run{color:#555;font-size:12px}
.cluster{border:1px solid #ccc;border-radius:6px;padding:8px;margin:8px 0}
.gallery{display:flex;flex-wrap:wrap;gap:8px}
.thumb{width:170px;text-align:center;font-size:11px;word-break:break-all}
.thumb img{max-width:160px;max-height:160px;display:block;margin:0 auto;border:2px solid #999}
.thumb.rep img{border-color:#0a7d32}
.textthumb{height:80px;overflow:hidden;background:#f6f6f6;text-align:left}
.ctl{color:#b00020;font-weight:bold}
.v-exact{color:#b00020} .v-near-duplicate{color:#c45500} .v-paraphrase{color:#6a1b9a}
.v-original{color:#0a7d32} .v-error{color:#555}
.pair{display:flex;gap:12px} .pair>div{flex:1;background:#f6f6f6;padding:6px;white-space:pre-wrap}
.why{margin:8px 0 2px} .same{margin:8px 0;font-weight:bold}
.regions{display:flex;gap:16px;align-items:flex-start;margin:6px 0}
.regions figure{margin:0;font-size:11px;max-width:240px;word-break:break-all}
.ov{position:relative;display:inline-block;line-height:0}
.ov img{width:200px;height:auto;display:block;border:1px solid #999}
.ov svg{position:absolute;left:0;top:0;width:100%;height:100%}
rect.frame{fill:#eee;stroke:#999;stroke-dasharray:4 3;vector-effect:non-scaling-stroke}
polygon.region{fill:rgba(255,224,102,.25);stroke:#c45500;stroke-width:2;vector-effect:non-scaling-stroke}
polygon.matched{fill:none;stroke:#b00020;stroke-width:2;stroke-dasharray:4 3;vector-effect:non-scaling-stroke}
mark{background:#ffe066}
table.items{border-collapse:collapse} table.items td,table.items th{border-bottom:1px solid #eee;
padding:2px 8px;text-align:left;font-size:12px}
"""

# ``hidden`` rather than ``style.display``: no style is set from script, so the CSP needs no style exceptions.
_JS = """
function applyFilters(){
  var on={};document.querySelectorAll('.filters input').forEach(function(c){on[c.value]=c.checked;});
  document.querySelectorAll('[data-verdict]').forEach(function(el){
    el.hidden=!on[el.getAttribute('data-verdict')];});
}
document.addEventListener('DOMContentLoaded',function(){
  document.querySelectorAll('.filters input').forEach(function(c){c.addEventListener('change',applyFilters);});
});
"""

VERDICT_FILTERS = ("exact", "near-duplicate", "partial", "paraphrase", "original", "error")


def _sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


#: The page's policy: its own script and style by hash, images from data: only, nothing else at all.
CSP = (f"default-src 'none'; img-src data:; style-src {_sha256_source(_CSS)}; "
       f"script-src {_sha256_source(_JS)}; base-uri 'none'; form-action 'none'")

# The page reads top-down as a person would ask: what was found (one sentence), what to open first
# (links), then the evidence per finding, then every file. Raw counters stay in the JSON export.
_TEMPLATE = """<!DOCTYPE html><html lang=en><head><meta charset=utf-8>
<meta http-equiv="Content-Security-Policy" content="{{ csp }}">
<title>provenance audit</title><style>{{ css|safe }}</style><script>{{ js|safe }}</script></head><body>
<h1>Provenance audit</h1>
<section id="summary"><p class="lede" id="lede">{{ lede }}</p>
<h2>Look at first</h2>
{%- if first %}<ol class="first" id="look-first">{% for f in first %}<li><a href="#{{ f.anchor }}">\
<span class="v-{{ f.verdict }}">{{ f.verdict_words }}</span></a>: {{ f.text }}</li>{% endfor %}</ol>
{%- else %}<p class="first" id="look-first">Nothing: no file copies another or anything in the index.</p>{% endif %}
</section>
<div class="filters">Show files: {% for v, n in filters %}<label><input type="checkbox" value="{{ v }}" checked> \
<span class="v-{{ v }}">{{ v }}</span> (<span class="count" data-count="{{ v }}">{{ n }}</span>)</label>\
{% endfor %}</div>
{%- macro thumb(t) -%}
<div class="thumb{% if t.rep %} rep{% endif %}" title="{{ t.label }}">
{%- if t.thumb %}<img alt="{{ t.label }}" src="data:image/jpeg;base64,{{ t.thumb }}">
{%- else %}<div class="textthumb">{{ t.snippet }}</div>{% endif -%}
{% if t.rep %}<b>representative</b><br>{% endif %}{{ t.label }}<br>{{ t.size }}</div>
{%- endmacro -%}
{%- macro passage(p) -%}{% if p.before_cut %}…{% endif %}{{ p.before }}<mark>{{ p.marked }}</mark>{{ p.after }}\
{% if p.after_cut %}…{% endif %}{%- endmacro %}
{%- macro overlay(o) -%}<figure>{% if o.thumb %}<div class="ov"><img alt="{{ o.label }}" \
src="data:image/jpeg;base64,{{ o.thumb }}"><svg viewBox="0 0 {{ o.w }} {{ o.h }}" preserveAspectRatio="none" \
role="img" aria-label="matching region">{% else %}<svg class="frame" width="200" height="{{ o.frame_h }}" \
viewBox="0 0 {{ o.w }} {{ o.h }}" preserveAspectRatio="none" role="img" aria-label="matching region">\
<rect class="frame" width="{{ o.w }}" height="{{ o.h }}"/>{% endif %}<polygon class="region" \
points="{{ o.region }}"/>{% if o.matched %}<polygon class="matched" points="{{ o.matched }}"/>{% endif %}</svg>\
{% if o.thumb %}</div>{% endif %}<figcaption>{{ o.label }}{% if o.note %} ({{ o.note }}){% endif %}\
</figcaption></figure>{%- endmacro -%}
{%- macro evidence(p) -%}
{% if p.same %}<p class="same">{{ p.same }}</p>{% else %}<p class="why">{{ p.head }}</p>
{%- if p.regions %}<div class="regions">{{ overlay(p.regions.a) }}{{ overlay(p.regions.b) }}</div>\
<p>Matching region: {{ p.regions.transform }}. Shaded: where the two frames overlap; dashed: the \
matching keypoints.</p>{% endif -%}
{%- for r in p.passages %}<div class="pair"><div>{{ p.a_label }}<br>{{ passage(r.a) }}</div>\
<div>{{ p.b_label }}<br>{% if r.b %}{{ passage(r.b) }}{% else %}…<mark>{{ r.b_snippet }}</mark>…{% endif %}\
</div></div>{% endfor -%}{% endif %}
{%- endmacro %}
<h2 id="clusters">Copies inside the archive: {{ n_clusters }} {{ "cluster" if n_clusters == 1 else "clusters" }}</h2>
{% for c in clusters -%}
<div class="cluster" data-verdict="{{ c.verdict }}" id="cluster-{{ c.id }}"><b>Cluster {{ c.id }}</b> · \
{{ c.size }} files · <span class="v-{{ c.verdict }}">{{ c.verdict }}</span>
<div class="gallery">{% for t in c.thumbs %}{{ thumb(t) }}{% endfor %}</div>
{%- for p in c.pairs %}{{ evidence(p) }}{% endfor -%}
</div>
{% endfor -%}
{% if more_clusters %}<p>{{ more_clusters }} more clusters in the table below.</p>{% endif %}
<h2 id="matches">Copies of indexed content: {{ n_matched }} {{ "file" if n_matched == 1 else "files" }}</h2>
{% for m in matched -%}
<div class="cluster" data-verdict="{{ m.verdict }}" id="{{ m.anchor }}">\
{% if not m.evidence.regions %}<div class="gallery">{{ thumb(m.thumb) }}</div>{% endif %}
<p><span class="v-{{ m.verdict }}">{{ m.verdict }}</span> copy of indexed item {{ m.what }}</p>
{{ evidence(m.evidence) }}
</div>
{% endfor -%}
<h2 id="items">All files ({{ rows|length }})</h2><table class=items><tr><th>path</th><th>kind</th><th>verdict</th>\
<th>cluster</th><th>note</th></tr>
{% for row in rows -%}
<tr data-verdict="{{ row.verdict }}"><td>{{ row.path }}</td><td>{{ row.media }}</td>\
<td class="v-{{ row.verdict }}">{{ row.verdict }}</td><td>{% if row.cluster %}<a href="#cluster-{{ row.cluster }}">\
{{ row.cluster }}</a>{% endif %}</td><td>{{ row.note }}</td></tr>
{% endfor -%}
</table>
{% if unreadable %}<h2 id="unreadable">Could not be read ({{ unreadable|length }})</h2><ul>\
{% for w in unreadable %}<li>{{ w.path }}: {{ w.note }}</li>{% endfor %}</ul>{% endif %}
<h2>About this run</h2><p class="run">{{ run }}</p>
</body></html>
"""

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=False)
_PAGE = _ENV.from_string(_TEMPLATE)

# Characters that are invisible or reorder text: C0/C1 controls, format characters (bidi embeddings,
# overrides and isolates, zero-width joiners, soft hyphen, BOM), line/paragraph separators, surrogates,
# private use and unassigned code points.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
_SUSPECT = re.compile(r"[^\t\n\x20-\x7e\u00a0-\u00ac\u00ae-\u0377]")  # outside: look closer


def visible(value: Any, *, keep_newlines: bool = False) -> str:
    """``value`` as text with every invisible or reordering character shown as ``⟪U+XXXX⟫``.

    ``keep_newlines`` keeps line breaks and tabs (passages of text); names get them marked too.
    """
    s = "" if value is None else str(value)
    if not _SUSPECT.search(s) and (keep_newlines or ("\n" not in s and "\t" not in s)):
        return s  # the common case: plain text with nothing to mark
    out = []
    for ch in s:
        if keep_newlines and ch in "\n\t":
            out.append(ch)
        elif unicodedata.category(ch) in _HIDDEN_CATEGORIES:
            out.append(f"⟪U+{ord(ch):04X}⟫")
        else:
            out.append(ch)
    return "".join(out)


def safe_thumbnail(value: Any) -> str | None:
    """The base64 thumbnail if it really is base64 of a JPEG of reasonable size, else ``None``."""
    if not isinstance(value, str) or not value or len(value) > MAX_THUMB_CHARS:
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return value if raw.startswith(b"\xff\xd8\xff") else None


# ---------------------------------------------------------------------------------------------------
# View helpers: the only places that read the audit's record and evidence dicts.


def _passage_view(text: str, start: Any, end: Any) -> dict[str, Any]:
    """``text[start:end]`` to highlight, with a little context either side (offsets clamped)."""
    n = len(text)
    try:
        s, e = max(0, min(n, int(start))), max(0, min(n, int(end)))
    except (TypeError, ValueError):
        s, e = 0, 0
    e = max(s, e)
    a, b = max(0, s - CONTEXT), min(n, e + CONTEXT)
    return {"before_cut": a > 0, "before": visible(text[a:s], keep_newlines=True),
            "marked": visible(text[s:e], keep_newlines=True),
            "after": visible(text[e:b], keep_newlines=True), "after_cut": b < n}


def _item_view(result: AuditResult, i: int, rep: bool) -> dict[str, Any]:
    """One gallery thumbnail (image) or text excerpt, with its label and size."""
    it = result.items[i]
    rec = it.record
    size = f'{rec.get("width")}×{rec.get("height")}' if rec.get("width") else f'{rec.get("size")} bytes'
    return {"label": visible(it.path), "thumb": safe_thumbnail(rec.get("thumb")),
            "snippet": visible(str(rec.get("text") or "")[:200], keep_newlines=True),
            "size": visible(size), "rep": rep}


def _facts(*parts: tuple[str, Any]) -> str:
    """``"label value"`` for each part whose value is present, joined by commas.

    A match without a source label (or a signal, or a score) then reads ``signal pdq, score 0.98``
    instead of ``(source , signal pdq ...)``.
    """
    return ", ".join(f"{label} {visible(value)}".strip() for label, value in parts
                     if value is not None and str(value).strip() != "")


def _deciding(match: Match) -> Observation | None:
    """The observation that decided the match's verdict (its ``signal``), if it is among them."""
    return next((o for o in match.observations if o.signal == match.signal), None)


def _same_line(match: Match, other: str) -> str | None:
    """One line for a pair whose verdict is ``exact`` (``identical bytes to X``), or ``None``.

    An exact copy needs no passages: highlighting the whole text twice, and then every sub-match a
    weaker signal also found between the same words, tells the reader nothing more than this line.
    """
    if match.verdict != "exact":
        return None
    o = _deciding(match)
    if o is not None and o.evidence is not None and o.evidence.identical_bytes():
        return f"identical bytes to {other}"
    how = o.evidence.summary() if o is not None and o.evidence is not None else match.signal
    return f"the same text as {other} ({visible(how)})"


def _overlap(span: Span, shown: list[tuple[int, int]]) -> float:
    """Share of ``span`` already inside the ``shown`` ranges."""
    covered = sum(max(0, min(span.end, e) - max(span.start, s)) for s, e in shown)
    return covered / max(1, span.end - span.start)


def _span_pairs(match: Match, limit: int = 3) -> list[tuple[Span, Span]]:
    """The passages worth reading for a match: the deciding signal's span pairs first, then other passing
    signals' pairs only where they show a part of either text not shown yet (no signal is named here).

    A text with repeated lines gives a signal many pairs for one passage (line 3 of the draft against
    lines 0, 1, 2 and 3 of the source); those read as trivial matches between lines of one file. Longer
    pairs go first and, among equally long ones, the pair that keeps the alignment of the pairs already
    shown (the same draft-to-source offset); a pair half covered on either side by one shown is dropped.
    """
    obs = sorted((o for o in match.observations if o.evidence is not None and o.passed),
                 key=lambda o: o.signal != match.signal)
    shown_d: list[tuple[int, int]] = []
    shown_s: list[tuple[int, int]] = []
    out: list[tuple[Span, Span]] = []
    offset: int | None = None
    for o in obs:
        assert o.evidence is not None
        pairs = o.evidence.span_pairs()
        if offset is None and pairs:
            first = max(pairs, key=lambda p: p[0].end - p[0].start)
            offset = first[1].start - first[0].start
        base = offset or 0
        for d, src in sorted(pairs, key=lambda p: (-(p[0].end - p[0].start), abs(p[1].start - p[0].start - base))):
            if len(out) >= limit:
                break
            if _overlap(d, shown_d) >= 0.5 or _overlap(src, shown_s) >= 0.5:
                continue
            shown_d.append((d.start, d.end))
            shown_s.append((src.start, src.end))
            out.append((d, src))
    return sorted(out, key=lambda p: p[0].start)  # chosen longest first, read in the draft's order


def _points(poly: Any) -> str:
    """SVG ``points`` from a polygon of numbers (anything else gives an empty polygon)."""
    try:
        return " ".join(f"{float(x):.1f},{float(y):.1f}" for x, y in poly)
    except (TypeError, ValueError):
        return ""


def _overlay(label: str, thumb: str | None, size: tuple[int, int], region: Any, matched: Any,
             indexed: bool = False) -> dict[str, Any]:
    """One image of a local match with its polygons, in the coordinates of the evidence's image size.

    The SVG's viewBox is the image size the polygons refer to and it is stretched over the thumbnail
    (``preserveAspectRatio="none"``): the thumbnail is that image scaled, so the polygons land on it.
    """
    w, h = max(1, int(size[0])), max(1, int(size[1]))
    note = ""
    if indexed:  # the indexed image is not in the archive: say what stands in for it
        note = (f"indexed image, {w}×{h}: greyscale preview kept with its features" if thumb
                else f"indexed image, {w}×{h}: its frame")
    return {"label": label, "thumb": thumb, "w": w, "h": h, "frame_h": round(200 * h / w),
            "region": _points(region), "matched": _points(matched), "note": note}


def _regions_view(match: Match, a: dict[str, Any], b: dict[str, Any] | None, b_label: str
                  ) -> dict[str, Any] | None:
    """The first passing evidence that locates image regions, drawn on ``a`` (the checked image) and
    ``b`` (the matched one; ``None`` when it is not in the archive, then its frame is drawn)."""
    for o in sorted(match.observations, key=lambda o: o.signal != match.signal):
        r = o.evidence.image_regions() if o.evidence is not None and o.passed else None
        if r is None:
            continue
        return {"a": _overlay(a["label"], a["thumb"], r.query_size, r.query_region, r.query_matched),
                "b": _overlay(b_label, b["thumb"] if b else safe_thumbnail(r.reference_thumbnail),
                              r.reference_size, r.reference_region, r.reference_matched, indexed=b is None),
                "transform": visible(r.transform)}
    return None


def _evidence_view(result: AuditResult, i: int, match: Match, other_label: str, other: int | None
                   ) -> dict[str, Any]:
    """What a reader needs to check one pair: item ``i`` against ``match`` (``other``: the archive item
    the match is, or ``None`` for an indexed item)."""
    it = result.items[i]
    a_label = visible(it.path)
    same = _same_line(match, other_label)
    if same is not None:
        return {"same": f"{a_label}: {same}", "head": "", "a_label": a_label, "b_label": other_label,
                "regions": None, "passages": []}
    o = _deciding(match)
    how = o.evidence.summary() if o is not None and o.evidence is not None else None
    head = f"{match.verdict} ({_facts(('matched by', match.signal), ('', how))})"
    a_view = _item_view(result, i, False)
    b_view = _item_view(result, other, False) if other is not None else None
    regions = _regions_view(match, a_view, b_view, other_label) if it.media == "image" else None
    passages: list[dict[str, Any]] = []
    ta = it.record.get("text")
    tb = result.items[other].record.get("text") if other is not None else None
    if isinstance(ta, str):
        for d, src in _span_pairs(match):
            passages.append({"a": _passage_view(ta, d.start, d.end),
                             "b": _passage_view(tb, src.start, src.end) if isinstance(tb, str) else None,
                             "b_snippet": visible(src.snippet, keep_newlines=True)})
    return {"same": None, "head": head, "a_label": a_label, "b_label": other_label, "regions": regions,
            "passages": passages}


def _pair_views(result: AuditResult, edge: Edge) -> dict[str, Any]:
    """An in-archive pair: item ``a`` checked against item ``b`` (the edge's match is ``b`` seen from ``a``)."""
    return _evidence_view(result, edge.a, edge.match, visible(result.items[edge.b].path), edge.b)


def _index_match_view(result: AuditResult, i: int) -> dict[str, Any]:
    """An audited item that copies an indexed item: the best match, its passages or image regions."""
    it = result.items[i]
    assert it.index_report is not None
    m = it.index_report.matches[0]
    label = f"#{m.id} {visible(m.path)}" if m.path else f"#{m.id}"
    what = _facts(("", label), ("from source", m.source), ("score", round(m.score, 4)))
    return {"verdict": it.index_verdict, "anchor": f"match-{i}", "thumb": _item_view(result, i, False),
            "what": what, "evidence": _evidence_view(result, i, m, label, None)}


def _n(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else (plural or singular + 's')}"


def _breakdown(counts: Counter[str]) -> str:
    """``3 exact, 9 near-duplicate`` in verdict order, zeros left out."""
    return ", ".join(f"{counts[v]} {v}" for v in VERDICT_FILTERS if counts.get(v))


def _lede(result: AuditResult, rows: list[dict[str, Any]], matched: list[int]) -> str:
    """The page's first sentence: what was found, in the counts the filters and sections show."""
    by_verdict = Counter(row["verdict"] for row in rows)
    kinds = Counter(it.media for it in result.items if it.ok)
    what = ", ".join(_n(kinds[k], k[:-1] if k.endswith("s") else k) for k in ("image", "text") if kinds[k])
    parts = []
    index_counts = Counter(result.items[i].index_verdict for i in matched)
    if result.index_path is None:
        parts.append("not compared with an index")
    elif matched:
        parts.append(f"{_n(len(matched), 'copy', 'copies')} of indexed content ({_breakdown(index_counts)})")
    else:
        parts.append("no copies of indexed content")
    if result.clusters:
        n_files = sum(len(c.members) for c in result.clusters)
        parts.append(f"{_n(len(result.clusters), 'cluster')} of copies inside the archive "
                     f"({_n(n_files, 'file')})")
    else:
        parts.append("no copies inside the archive")
    if by_verdict["error"]:
        parts.append(f"{_n(by_verdict['error'], 'file')} could not be read")
    if by_verdict["original"]:
        parts.append(f"{by_verdict['original']} original")
    head = f"{_n(len(rows), 'file')} audited" + (f" ({what})" if what else "")
    return f"{head}: {', '.join(parts)}."


#: Findings listed under "Look at first".
MAX_FIRST = 10


def _look_first(result: AuditResult, matched: list[int], shown_clusters: int) -> list[dict[str, Any]]:
    """The strongest findings, strongest first: copies of indexed content before copies inside the
    archive at the same verdict (they say something left or entered the collection), larger clusters
    first. ``original`` is never a finding."""
    out: list[tuple[tuple[int, int, int], dict[str, Any]]] = []
    for i in matched[:MAX_CLUSTERS_SHOWN]:
        it = result.items[i]
        assert it.index_report is not None
        m = it.index_report.matches[0]
        target = _facts(("", f"#{m.id} {visible(m.path or '')}".strip()), ("from source", m.source))
        out.append(((verdict_rank(it.index_verdict), 0, 0),
                    {"anchor": f"match-{i}", "verdict": it.index_verdict,
                     "verdict_words": f"{it.index_verdict} copy of indexed item",
                     "text": f"{visible(it.path)} copies {target}"}))
    for c in result.clusters[:shown_clusters]:
        rep = visible(result.items[c.representative].path)
        out.append(((verdict_rank(c.verdict), 1, -len(c.members)),
                    {"anchor": f"cluster-{c.id}", "verdict": c.verdict,
                     "verdict_words": f"cluster {c.id}: {_n(len(c.members), 'file')}, {c.verdict}",
                     "text": f"copies of {rep}"}))
    out.sort(key=lambda kv: kv[0])
    return [v for _, v in out[:MAX_FIRST]]


def _run_words(result: AuditResult) -> str:
    """How the run went, in words (the counters themselves are in the JSON export)."""
    c = result.counters
    parts = [f"{_n(int(c.get('fingerprinted', 0)), 'file')} fingerprinted"]
    if c.get("reused"):
        parts.append(f"{_n(int(c['reused']), 'file')} unchanged since the last run (fingerprints reused)")
    if c.get("reused_by_sha256"):
        parts.append(f"{_n(int(c['reused_by_sha256']), 'file')} recognised by their bytes under a new name "
                     "or date")
    if c.get("added_to_index"):
        parts.append(f"{_n(int(c['added_to_index']), 'item')} added to the index")
    if c.get("resumed"):
        parts.append("an interrupted run was resumed")
    if result.index_path:
        parts.append(f"index {visible(result.index_path)}")
    if c.get("seconds") is not None:
        parts.append(f"{c['seconds']} s in all")
    return "; ".join(parts) + "."


def render_html(result: AuditResult) -> str:
    """The whole report page as a string."""
    shown = result.clusters[:MAX_CLUSTERS_SHOWN]
    clusters = [{"id": c.id, "size": len(c.members), "verdict": c.verdict,
                 "thumbs": [_item_view(result, m, m == c.representative) for m in c.members],
                 "pairs": [_pair_views(result, e) for e in c.edges[:MAX_PAIRS_PER_CLUSTER]]} for c in shown]
    matched = [i for i, it in enumerate(result.items) if it.ok and it.index_verdict != "original"]
    # One list of rows is the source of truth for every count: files the walk could not even open are
    # rows too (verdict ``error``), so the summary, the filters and the table cannot disagree.
    rows = [{"path": visible(it.path), "media": it.media or "", "verdict": it.verdict,
             "cluster": it.cluster or "", "note": visible(it.record.get("error") or "")}
            for it in result.items]
    rows += [{"path": visible(w.get("path")), "media": "", "verdict": "error", "cluster": "",
              "note": visible(w.get("error"))} for w in result.walk_errors]
    counts = Counter(row["verdict"] for row in rows)
    return _PAGE.render(
        csp=CSP, css=_CSS, js=_JS, lede=_lede(result, rows, matched),
        first=_look_first(result, matched, len(shown)),
        filters=[(v, counts.get(v, 0)) for v in VERDICT_FILTERS],
        n_clusters=len(result.clusters), clusters=clusters,
        more_clusters=max(0, len(result.clusters) - MAX_CLUSTERS_SHOWN),
        n_matched=len(matched), matched=[_index_match_view(result, i) for i in matched[:MAX_CLUSTERS_SHOWN]],
        rows=rows, unreadable=[r for r in rows if r["verdict"] == "error"], run=_run_words(result))


def write_private_text(path: Path | str, text: str, mode: int = 0o600) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, as a new file readable by its owner only.

    A temporary file in the same folder (``O_EXCL``, random name) is renamed over ``path``, so a
    symlink planted at ``path`` is replaced, never followed, and a kill leaves the old file or the new.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_html(result: AuditResult, path: Path | str) -> None:
    """Write :func:`render_html` to ``path`` (UTF-8, mode 0600: the report quotes the audited files)."""
    write_private_text(path, render_html(result))

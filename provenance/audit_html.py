"""The ``--html`` report of an audit: one self-contained page (inline CSS/JS, thumbnails as data: URIs).

Every piece of user-controlled text (paths, file contents, error messages) goes through
:func:`html.escape`; thumbnails are JPEGs this program encoded itself, so their base64 is safe in a
``data:`` URI. Nothing refers to the network, so the page opens the same offline, from e-mail or a share.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from .audit import AuditResult, Edge
from .report import Match, Span

#: Clusters drawn as galleries; the rest are listed in the items table (keeps the page size bounded).
MAX_CLUSTERS_SHOWN = 300
#: Characters of context around a highlighted passage.
CONTEXT = 120

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:16px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 8px} h2{font-size:16px;margin:24px 0 8px}
.summary td{padding:2px 10px 2px 0} .filters label{margin-right:12px}
.cluster{border:1px solid #ccc;border-radius:6px;padding:8px;margin:8px 0}
.gallery{display:flex;flex-wrap:wrap;gap:8px}
.thumb{width:170px;text-align:center;font-size:11px;word-break:break-all}
.thumb img{max-width:160px;max-height:160px;display:block;margin:0 auto;border:2px solid #999}
.thumb.rep img{border-color:#0a7d32}
.v-exact{color:#b00020} .v-near-duplicate{color:#c45500} .v-paraphrase{color:#6a1b9a}
.v-original{color:#0a7d32} .v-error{color:#555}
.pair{display:flex;gap:12px} .pair>div{flex:1;background:#f6f6f6;padding:6px;white-space:pre-wrap}
mark{background:#ffe066}
table.items{border-collapse:collapse} table.items td,table.items th{border-bottom:1px solid #eee;
padding:2px 8px;text-align:left;font-size:12px}
"""

_JS = """
function applyFilters(){
  var on={};document.querySelectorAll('.filters input').forEach(function(c){on[c.value]=c.checked;});
  document.querySelectorAll('[data-verdict]').forEach(function(el){
    el.style.display=on[el.getAttribute('data-verdict')]?'':'none';});
}
document.addEventListener('DOMContentLoaded',function(){
  document.querySelectorAll('.filters input').forEach(function(c){c.addEventListener('change',applyFilters);});
});
"""


def _e(s: Any) -> str:
    return html.escape("" if s is None else str(s), quote=True)


def _highlight(text: str, start: int, end: int) -> str:
    """The passage ``text[start:end]`` in <mark>, with a little escaped context either side."""
    a, b = max(0, start - CONTEXT), min(len(text), end + CONTEXT)
    return ("…" if a else "") + _e(text[a:start]) + "<mark>" + _e(text[start:end]) + "</mark>" + \
        _e(text[end:b]) + ("…" if b < len(text) else "")


def _thumb(result: AuditResult, i: int, rep: bool) -> str:
    it = result.items[i]
    rec = it.record
    label = _e(it.path)
    if rec.get("thumb"):
        img = f'<img alt="{label}" src="data:image/jpeg;base64,{rec["thumb"]}">'
    else:
        snippet = (rec.get("text") or "")[:200]
        img = f'<div style="height:80px;overflow:hidden;background:#f6f6f6;text-align:left">{_e(snippet)}</div>'
    size = f'{rec.get("width")}×{rec.get("height")}' if rec.get("width") else f'{rec.get("size")} bytes'
    tag = "<b>representative</b><br>" if rep else ""
    return f'<div class="thumb{" rep" if rep else ""}" title="{label}">{img}{tag}{label}<br>{_e(size)}</div>'


def _span_pairs(match: Match, limit: int = 3) -> list[tuple[str, Span, Span]]:
    """``(label, draft span, source span)`` of a match's text evidence, from the evidence's own methods."""
    return [(f"{o.signal}: {o.evidence.summary()}", d, src) for o in match.observations
            if o.evidence is not None and o.passed for d, src in o.evidence.span_pairs()[:limit]]


def _text_pairs(result: AuditResult, edge: Edge) -> str:
    a, b = edge.a, edge.b
    ta, tb = result.items[a].record.get("text"), result.items[b].record.get("text")
    if ta is None or tb is None:
        return ""
    return "".join(
        f'<p>{_e(label)}</p><div class="pair">'
        f'<div>{_e(result.items[a].path)}<br>{_highlight(ta, d.start, d.end)}</div>'
        f'<div>{_e(result.items[b].path)}<br>{_highlight(tb, src.start, src.end)}</div></div>'
        for label, d, src in _span_pairs(edge.match))


def render_html(result: AuditResult) -> str:
    """The whole report page as a string."""
    summary = result.summary()
    parts = ["<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
             # No network: forbid every fetch except inline styles, scripts and data: images.
             "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
             "img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">",
             "<title>provenance audit</title>", f"<style>{_CSS}</style><script>{_JS}</script></head><body>",
             "<h1>Provenance audit</h1>"]
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v if not isinstance(v, dict) else json.dumps(v))}</td></tr>"
                   for k, v in summary.items())
    parts.append(f'<table class="summary" id="summary">{rows}</table>')
    parts.append('<div class="filters">Show: ' + "".join(
        f'<label><input type="checkbox" value="{v}" checked> <span class="v-{v}">{v}</span> '
        f'({summary["verdicts"].get(v, 0)})</label>'
        for v in ("exact", "near-duplicate", "paraphrase", "original", "error")) + "</div>")

    parts.append(f"<h2>Clusters of copies inside the archive ({len(result.clusters)})</h2>")
    for c in result.clusters[:MAX_CLUSTERS_SHOWN]:
        gallery = "".join(_thumb(result, m, m == c.representative) for m in c.members)
        texts = "".join(_text_pairs(result, e) for e in c.edges[:5])
        parts.append(f'<div class="cluster" data-verdict="{_e(c.verdict)}" id="cluster-{c.id}">'
                     f'<b>Cluster {c.id}</b> · {len(c.members)} items · '
                     f'<span class="v-{_e(c.verdict)}">{_e(c.verdict)}</span>'
                     f'<div class="gallery">{gallery}</div>{texts}</div>')
    if len(result.clusters) > MAX_CLUSTERS_SHOWN:
        parts.append(f"<p>{len(result.clusters) - MAX_CLUSTERS_SHOWN} more clusters in the table below.</p>")

    matched = [i for i, it in enumerate(result.items) if it.ok and it.index_verdict != "original"]
    parts.append(f"<h2>Copies of indexed items ({len(matched)})</h2>")
    for i in matched[:MAX_CLUSTERS_SHOWN]:
        it = result.items[i]
        assert it.index_report is not None
        m = it.index_report.matches[0]
        detail = ""
        if it.media == "text":
            for label, d, src in _span_pairs(m):
                detail += (f'<p>{_e(label)}</p><div class="pair"><div>{_e(it.path)}<br>'
                           f'{_highlight(it.record["text"], d.start, d.end)}</div>'
                           f'<div>{_e(m.path)}<br>…<mark>{_e(src.snippet)}</mark>…</div></div>')
        parts.append(f'<div class="cluster" data-verdict="{_e(it.index_verdict)}">'
                     f'<div class="gallery">{_thumb(result, i, False)}</div>'
                     f'<span class="v-{_e(it.index_verdict)}">{_e(it.index_verdict)}</span> of indexed item '
                     f'#{_e(m.id)} {_e(m.path)} (source {_e(m.source or "-")}, signal {_e(m.signal)}, '
                     f'score {m.score:.2f}){detail}</div>')

    parts.append("<h2>All items</h2><table class=items><tr><th>path</th><th>media</th><th>verdict</th>"
                 "<th>cluster</th><th>note</th></tr>")
    for it in result.items:
        note = it.record.get("error") or ""
        parts.append(f'<tr data-verdict="{_e(it.verdict)}"><td>{_e(it.path)}</td><td>{_e(it.media)}</td>'
                     f'<td class="v-{_e(it.verdict)}">{_e(it.verdict)}</td><td>{_e(it.cluster or "")}</td>'
                     f"<td>{_e(note)}</td></tr>")
    parts.append("</table>")
    if result.walk_errors:
        parts.append("<h2>Not audited</h2><ul>" + "".join(
            f"<li>{_e(w['path'])}: {_e(w['error'])}</li>" for w in result.walk_errors) + "</ul>")
    parts.append("</body></html>")
    return "".join(parts)


def write_html(result: AuditResult, path: Path | str) -> None:
    """Write :func:`render_html` to ``path`` (UTF-8)."""
    Path(path).write_text(render_html(result), encoding="utf-8")

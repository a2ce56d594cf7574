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

The view is built by small functions (``_item_view``, ``_pair_views``, ``_index_match_view``) that read the
records and ask each match's typed evidence for its summary and spans; no signal is named here.
Nothing refers to the network, so the page opens the same offline, from e-mail or a share.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

import jinja2

from .audit import AuditResult, Edge
from .report import Match, Span

#: Clusters drawn as galleries; the rest are listed in the items table (keeps the page size bounded).
MAX_CLUSTERS_SHOWN = 300
#: Characters of context around a highlighted passage.
CONTEXT = 120
#: Longest thumbnail accepted from the state database (base64 characters); real ones are a few KB.
MAX_THUMB_CHARS = 200_000

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:16px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 8px} h2{font-size:16px;margin:24px 0 8px}
.summary td{padding:2px 10px 2px 0} .filters label{margin-right:12px}
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

_TEMPLATE = """<!DOCTYPE html><html lang=en><head><meta charset=utf-8>
<meta http-equiv="Content-Security-Policy" content="{{ csp }}">
<title>provenance audit</title><style>{{ css|safe }}</style><script>{{ js|safe }}</script></head><body>
<h1>Provenance audit</h1>
<table class="summary" id="summary">
{%- for key, value in summary %}<tr><td>{{ key }}</td><td>{{ value }}</td></tr>{% endfor -%}
</table>
<div class="filters">Show: {% for v, n in filters %}<label><input type="checkbox" value="{{ v }}" checked> \
<span class="v-{{ v }}">{{ v }}</span> ({{ n }})</label>{% endfor %}</div>
{%- macro thumb(t) -%}
<div class="thumb{% if t.rep %} rep{% endif %}" title="{{ t.label }}">
{%- if t.thumb %}<img alt="{{ t.label }}" src="data:image/jpeg;base64,{{ t.thumb }}">
{%- else %}<div class="textthumb">{{ t.snippet }}</div>{% endif -%}
{% if t.rep %}<b>representative</b><br>{% endif %}{{ t.label }}<br>{{ t.size }}</div>
{%- endmacro -%}
{%- macro passage(p) -%}{% if p.before_cut %}…{% endif %}{{ p.before }}<mark>{{ p.marked }}</mark>{{ p.after }}\
{% if p.after_cut %}…{% endif %}{%- endmacro %}
<h2>Clusters of copies inside the archive ({{ n_clusters }})</h2>
{% for c in clusters -%}
<div class="cluster" data-verdict="{{ c.verdict }}" id="cluster-{{ c.id }}"><b>Cluster {{ c.id }}</b> · \
{{ c.size }} items · <span class="v-{{ c.verdict }}">{{ c.verdict }}</span>
<div class="gallery">{% for t in c.thumbs %}{{ thumb(t) }}{% endfor %}</div>
{%- for p in c.pairs %}<p>{{ p.signal }}</p><div class="pair"><div>{{ p.a_label }}<br>\
{{ passage(p.a) }}</div><div>{{ p.b_label }}<br>{{ passage(p.b) }}</div></div>{% endfor -%}
</div>
{% endfor -%}
{% if more_clusters %}<p>{{ more_clusters }} more clusters in the table below.</p>{% endif %}
<h2>Copies of indexed items ({{ n_matched }})</h2>
{% for m in matched -%}
<div class="cluster" data-verdict="{{ m.verdict }}"><div class="gallery">{{ thumb(m.thumb) }}</div>
<span class="v-{{ m.verdict }}">{{ m.verdict }}</span> of indexed item #{{ m.id }} {{ m.path }} \
(source {{ m.source }}, signal {{ m.signal }}, score {{ m.score }})
{%- for r in m.regions %}<div class="pair"><div>{{ m.thumb.label }}<br>{{ passage(r.draft) }}</div>\
<div>{{ m.path }}<br>…<mark>{{ r.source_snippet }}</mark>…</div></div>{% endfor -%}
</div>
{% endfor -%}
<h2>All items</h2><table class=items><tr><th>path</th><th>media</th><th>verdict</th><th>cluster</th>\
<th>note</th></tr>
{% for row in rows -%}
<tr data-verdict="{{ row.verdict }}"><td>{{ row.path }}</td><td>{{ row.media }}</td>\
<td class="v-{{ row.verdict }}">{{ row.verdict }}</td><td>{{ row.cluster }}</td><td>{{ row.note }}</td></tr>
{% endfor -%}
</table>
{% if walk_errors %}<h2>Not audited</h2><ul>{% for w in walk_errors %}<li>{{ w.path }}: {{ w.error }}</li>\
{% endfor %}</ul>{% endif %}
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


def _span_pairs(match: Match, limit: int = 3) -> list[tuple[str, Span, Span]]:
    """``(label, draft span, source span)`` of a match's passing text evidence, from the evidence's own
    methods (no signal is named here)."""
    return [(f"{o.signal}: {o.evidence.summary()}", d, src) for o in match.observations
            if o.evidence is not None and o.passed for d, src in o.evidence.span_pairs()[:limit]]


def _pair_views(result: AuditResult, edge: Edge) -> list[dict[str, Any]]:
    """Highlighted text passages shared by the two items of an in-archive edge."""
    a, b = edge.a, edge.b
    ta, tb = result.items[a].record.get("text"), result.items[b].record.get("text")
    if not isinstance(ta, str) or not isinstance(tb, str):
        return []
    return [{"signal": label, "a_label": visible(result.items[a].path),
             "b_label": visible(result.items[b].path), "a": _passage_view(ta, d.start, d.end),
             "b": _passage_view(tb, src.start, src.end)} for label, d, src in _span_pairs(edge.match)]


def _index_match_view(result: AuditResult, i: int) -> dict[str, Any]:
    """An audited item that copies an indexed item: the best match and, for texts, its passages."""
    it = result.items[i]
    assert it.index_report is not None
    m = it.index_report.matches[0]
    text = it.record.get("text")
    regions = [{"draft": _passage_view(text, d.start, d.end),
                "source_snippet": visible(src.snippet, keep_newlines=True)}
               for _, d, src in _span_pairs(m)] if it.media == "text" and isinstance(text, str) else []
    return {"verdict": it.index_verdict, "thumb": _item_view(result, i, False), "id": m.id,
            "path": visible(m.path), "source": visible(m.source or "-"), "signal": m.signal,
            "score": round(m.score, 4), "regions": regions}


def _summary_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    return [(k, visible(json.dumps(v) if isinstance(v, dict) else v)) for k, v in summary.items()]


def render_html(result: AuditResult) -> str:
    """The whole report page as a string."""
    summary = result.summary()
    shown = result.clusters[:MAX_CLUSTERS_SHOWN]
    clusters = [{"id": c.id, "size": len(c.members), "verdict": c.verdict,
                 "thumbs": [_item_view(result, m, m == c.representative) for m in c.members],
                 "pairs": [p for e in c.edges[:5] for p in _pair_views(result, e)]} for c in shown]
    matched = [i for i, it in enumerate(result.items) if it.ok and it.index_verdict != "original"]
    rows = [{"path": visible(it.path), "media": it.media or "", "verdict": it.verdict,
             "cluster": it.cluster or "", "note": visible(it.record.get("error") or "")}
            for it in result.items]
    return _PAGE.render(
        csp=CSP, css=_CSS, js=_JS, summary=_summary_rows(summary),
        filters=[(v, summary["verdicts"].get(v, 0)) for v in VERDICT_FILTERS],
        n_clusters=len(result.clusters), clusters=clusters,
        more_clusters=max(0, len(result.clusters) - MAX_CLUSTERS_SHOWN),
        n_matched=len(matched), matched=[_index_match_view(result, i) for i in matched[:MAX_CLUSTERS_SHOWN]],
        rows=rows, walk_errors=[{"path": visible(w.get("path")), "error": visible(w.get("error"))}
                                for w in result.walk_errors])


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

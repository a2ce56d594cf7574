"""Translated copies in another kind of text: The Debian Administrator's Handbook in 24 translations.

``python -m bench.handbook [--quick] [--write]``; writes the ``handbook`` section of ``bench/RESULTS.md`` and
``bench/out/handbook.json``. Set-up runs ``apt-get download debian-handbook`` into ``bench/out/handbook``
and unpacks it with ``dpkg-deb -x`` (nothing is installed, nothing enters the repository). By hand::

    mkdir -p bench/out/handbook && cd bench/out/handbook && apt-get download debian-handbook
    dpkg-deb -x debian-handbook_*.deb x

Why: every other translation benchmark reads manual pages (terse reference text, the data the run gate was
chosen on). The handbook is book prose, translated by other people with other tools (Publican, one HTML
file per section, the same paragraphs in the same order in every language), and it brings languages the
manual pages lack: Arabic, Korean and Turkish, which the multilingual model was trained on, and Persian,
Catalan, Croatian and Greek, which it was not. No threshold was chosen on it.

Drafts are built exactly as :mod:`bench.heldout_languages` builds them from manual pages
(:func:`bench.translation.build`: a 60-200-word block of consecutive translated paragraphs of an indexed
English section planted in held-out translated text, and held-out translated text alone as same-topic
negatives), checked with ``Index.check_content`` against one index of the English sections. A translated
paragraph is kept where it differs from the English one and is not guessed English (untranslated strings
stay English in the translated HTML). Languages with too few translated sections to host drafts are
reported for the language guess only.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from provenance.checker import Index
from provenance.passages import guess_language

from . import translation
from .common import OUT, SEED, log, machine, save_json, table, wilson_hi
from .heldout_languages import MIN_HOSTS
from .manpages import Page
from .sections import section_cli

ROOT = OUT / "handbook"
#: Folder of a translation -> (code in the tables, code :func:`guess_language` should name, trained on by
#: USE multilingual v3).
LANGUAGES: dict[str, tuple[str, str, bool]] = {
    "ar-MA": ("ar", "ar", True), "ca-ES": ("ca", "ca", False), "cs-CZ": ("cs", "cs", False),
    "da-DK": ("da", "da", False), "de-DE": ("de", "de", True), "el-GR": ("el", "el", False),
    "es-ES": ("es", "es", True), "fa-IR": ("fa", "fa", False), "fr-FR": ("fr", "fr", True),
    "hr-HR": ("hr", "hr", False), "id-ID": ("id", "id", False), "it-IT": ("it", "it", True),
    "ja-JP": ("ja", "ja", True), "ko-KR": ("ko", "ko", True), "nb-NO": ("nb", "no", False),
    "nl-NL": ("nl", "nl", True), "pl-PL": ("pl", "pl", True), "pt-BR": ("pt-br", "pt", True),
    "ro-RO": ("ro", "ro", False), "ru-RU": ("ru", "ru", True), "sv-SE": ("sv", "sv", False),
    "tr-TR": ("tr", "tr", True), "vi-VN": ("vi", "vi", False), "zh-CN": ("zh-cn", "zh", True),
    "zh-TW": ("zh-tw", "zh", True),
}
#: Paragraphs shorter than this are left out (a lone command name says nothing in any language).
MIN_WORDS = 6


def ensure_handbook() -> Path:
    """Download and unpack the handbook once; returns its ``html`` folder (one sub-folder per language)."""
    html = ROOT / "x" / "usr/share/doc/debian-handbook/html"
    if (html / "en-US").is_dir():
        return html
    ROOT.mkdir(parents=True, exist_ok=True)
    if not any(ROOT.glob("debian-handbook_*.deb")):
        log("apt-get download debian-handbook")
        subprocess.run(["apt-get", "download", "debian-handbook"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    (deb,) = ROOT.glob("debian-handbook_*.deb")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(ROOT / "x")], check=True)
    return html


class _Paragraphs(HTMLParser):
    """The text of each outermost ``<div class="para">`` (Publican's paragraph), program listings left out."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[str] = []
        self._parts: list[str] | None = None
        self._depth = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "div":
            if self._parts is not None:
                self._depth += 1
            elif "para" in (dict(attrs).get("class") or "").split():
                self._parts, self._depth = [], 0
        elif tag in ("pre", "script", "style") and self._parts is not None:
            self._pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("pre", "script", "style") and self._parts is not None:
            self._pre -= 1
        elif tag == "div" and self._parts is not None:
            if self._depth:
                self._depth -= 1
            else:
                self.paragraphs.append(" ".join("".join(self._parts).split()))
                self._parts = None

    def handle_data(self, data: str) -> None:
        if self._parts is not None and not self._pre:
            self._parts.append(data)


def paragraphs(path: Path) -> list[str]:
    """Publican's paragraphs of one HTML file, whitespace collapsed."""
    p = _Paragraphs()
    p.feed(path.read_text(encoding="utf-8", errors="replace"))
    return p.paragraphs


def load_sections(html: Path) -> list[Page]:
    """Every English section file as a :class:`bench.manpages.Page`, with each translation aligned paragraph
    for paragraph where the translated file has as many paragraphs (Publican keeps the order); ``raw``
    keeps every translated paragraph that differs from the English one, for the language guess."""
    pages: list[Page] = []
    for f in sorted((html / "en-US").glob("*.html")):
        english_all = paragraphs(f)
        keep = [i for i, p in enumerate(english_all) if len(p.split()) >= MIN_WORDS]
        if not keep:
            continue
        page = Page(f.stem, "", [english_all[i] for i in keep], {})
        for folder, (code, _, _) in LANGUAGES.items():
            tf = html / folder / f.name
            theirs = paragraphs(tf) if tf.is_file() else []
            if len(theirs) != len(english_all):
                continue
            raw = [theirs[i] if theirs[i] != english_all[i] else None for i in keep]
            page.raw[code] = raw
            aligned = [t if t is not None and guess_language(t) != "en" else None for t in raw]
            if any(aligned):
                page.translations[code] = aligned
        pages.append(page)
    return pages


def guess_accuracy(pages: list[Page]) -> dict[str, dict[str, Any]]:
    """Per translation, :func:`guess_language` over its translated paragraphs of 20 words or more: the share
    named right among those not guessed English, and the most frequent guesses."""
    out: dict[str, dict[str, Any]] = {}
    for code, want, _ in LANGUAGES.values():
        guesses = Counter(guess_language(t) for p in pages for t in p.raw.get(code, []) if t and len(t.split()) >= 20)
        judged = sum(guesses.values()) - guesses["en"]
        out[code] = {"code": want, "paragraphs": sum(guesses.values()), "judged": judged, "right": guesses[want],
                     "top": guesses.most_common(3)}
    return out


def run(quick: bool = False) -> dict[str, Any]:
    t0 = time.perf_counter()
    pages = load_sections(ensure_handbook())
    held = Counter(code for p in pages if translation._stable_half(p.name) == 1 for code in p.translations)
    langs = tuple(code for code, _, _ in LANGUAGES.values() if held[code] >= MIN_HOSTS)
    log(f"handbook: {len(pages)} sections; held-out host sections {dict(held)}; measured {langs}")
    sources, drafts = translation.build(pages, *((8, 10) if quick else (30, 40)), langs=langs,
                                        english_negatives=True)
    with tempfile.TemporaryDirectory(prefix="bench-hb-") as tmp:
        with Index.open(Path(tmp) / "idx", create=True) as idx:
            ids = [r.id for r in idx.add([t for _, t in sources], source="handbook")]
            log(f"handbook: {len(sources)} English sections indexed; checking {len(drafts)} drafts")
            res = translation.product_counts(idx, ids, drafts)
    out = {"langs": langs, "sources": len(sources), "counts": res, "guess": guess_accuracy(pages),
           "held": dict(held), "seed": SEED, "seconds": time.perf_counter() - t0}
    save_json("handbook.json", out)
    return out


def _rate(k: int, n: int) -> str:
    return f"{k / n:.2f} ({k}/{n})" if n else "–"


def summarise(res: dict[str, Any], quick: bool) -> str:
    trained = {code: t for code, _, t in LANGUAGES.values()}
    rows = []
    for lang in (*res["langs"], "en"):
        r = res["counts"].get(lang)
        if not r:
            continue
        named = ", ".join(f"{k} ×{v}" for k, v in Counter(r["named"]).most_common(2)) or "–"
        rows.append([lang, ("dev" if lang == translation.DEV else "yes" if trained[lang] else "no")
                     if lang != "en" else "–", _rate(r["found"], r["pos"]), _rate(r["wrong"], r["pos"]),
                     _rate(r["false"], r["neg"]), f"{wilson_hi(r['false'], r['neg']):.2f}",
                     _rate(r["skipped"], r["pos"] + r["neg"]), named])
    return "\n".join([
        "## Translated copies in book prose: The Debian Administrator's Handbook (product end to end)",
        "",
        f"`bench/handbook.py`: {res['sources']} English sections of the handbook indexed (the first 700 words "
        "of each); drafts built as in `bench/heldout_languages.py` from the handbook's own translations (a "
        "60-200-word translated block of an indexed section planted in translated text of held-out sections; "
        "held-out translated text alone as same-topic negatives; `en`: English held-out text). No threshold "
        "was chosen on this text. USE: whether the multilingual model was trained on the language (`dev`: the "
        "language the run gate was chosen on).",
        "",
        table(["language", "USE", "found", "wrong section", "negatives false", "false 95 % upper",
               "cross-lingual search skipped", "evidence says"], rows),
        "",
        "Language guess on the handbook's translated paragraphs of 20+ words (share named right among those "
        "not guessed English):",
        "",
        table(["translation", "should say", "paragraphs", "named right", "most frequent guesses"],
              [[k, g["code"], g["paragraphs"], _rate(g["right"], g["judged"]),
                ", ".join(f"{c} {n}" for c, n in g["top"])] for k, g in res["guess"].items()]),
        "",
        f"_{'quick' if quick else 'full'} run {time.strftime('%Y-%m-%d %H:%M')}, {res['seconds']:.0f} s; "
        f"{machine()}_",
    ])


def main() -> None:
    section_cli("handbook", __doc__ or "", run, summarise)


if __name__ == "__main__":
    main()

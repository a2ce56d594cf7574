"""Debian manual pages as translation data: English originals and their German, French, Spanish and
Italian translations (manpages-l10n), aligned paragraph by paragraph.

Set-up (``ensure_manpages``) runs ``apt-get download`` for the packages below into ``bench/out/manpages/debs``
and unpacks them with ``dpkg-deb -x``; nothing is installed and nothing enters the repository. By hand::

    mkdir -p bench/out/manpages/debs && cd bench/out/manpages/debs
    apt-get download manpages manpages-dev manpages-de manpages-fr manpages-es manpages-it
    for f in *.deb; do mkdir -p ../x/${f%%_*}; dpkg-deb -x $f ../x/${f%%_*}; done

The translations are made with po4a from the English roff source, so a translated page keeps the English
page's sections and paragraphs in order; code blocks and the SYNOPSIS stay untranslated, so they are left
out (a verbatim code block is the shingles' job, not a translation). Paragraphs po4a left in English are
dropped by :func:`provenance.passages.guess_language`.
"""

from __future__ import annotations

import gzip
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from provenance.passages import guess_language

from .common import OUT, log

ROOT = OUT / "manpages"
PACKAGES = ("manpages", "manpages-dev", "manpages-de", "manpages-fr", "manpages-es", "manpages-it")
LANGS = ("de", "fr", "es", "it")


def ensure_manpages(packages: tuple[str, ...] = PACKAGES) -> Path:
    """Download and unpack ``packages`` once; returns the folder holding one sub-folder per package."""
    x = ROOT / "x"
    if all((x / p).is_dir() for p in packages):
        return x
    debs = ROOT / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    missing = [p for p in packages if not any(debs.glob(f"{p}_*.deb"))]
    if missing:
        log(f"apt-get download {' '.join(missing)}")
        subprocess.run(["apt-get", "download", *missing], cwd=debs, check=True,
                       stdout=subprocess.DEVNULL)
    for p in packages:
        (deb,) = debs.glob(f"{p}_*.deb")
        (x / p).mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(x / p)], check=True)
    return x


# ---------------------------------------------------------------------------------------------------
# roff -> paragraphs

_GLYPHS = {"em": "—", "en": "–", "aq": "'", "dq": '"', "lq": "“", "rq": "”", "oq": "‘", "cq": "’",
           "hy": "-", "mi": "-", "bu": "•", "co": "©", "rg": "®", "ti": "~", "ha": "^", "lh": "", "rh": "",
           "Fo": "«", "Fc": "»", "fo": "‹", "fc": "›", "at": "@", "sh": "#", "rs": "\\", "ga": "`", "tm": "™"}
_ESCAPE = re.compile(r"\\(?:f(?:\[[^\]]*\]|\(..|.)|s[-+]?\d|\*(?:\[[^\]]*\]|\(..|.)|\((..)|\[([^\]]*)\]|(.))")
_BREAK = {"PP", "P", "LP", "SH", "SS", "TP", "TQ", "IP", "HP", "sp", "RS", "RE", "EX", "EE", "nf", "fi", "in",
          "br", "UR", "UE", "MT", "ME"}
_FONT = {"B", "I", "SM", "SB", "BR", "RB", "IR", "RI", "BI", "IB"}
_NOT_PROSE = re.compile(r"^(SYNOPSIS|EXAMPLES?|SEE ALSO|COLOPHON)$")


def _unescape(s: str) -> str:
    def repl(m: re.Match[str]) -> str:
        two, named, single = m.group(1), m.group(2), m.group(3)
        if two or named:
            return _GLYPHS.get(two or named, "")
        if single is None:
            return ""  # font, size and string escapes
        return {"-": "-", "e": "\\", " ": " ", "~": " ", "0": " ", "'": "'", "`": "`", ".": "."}.get(single, "")
    return _ESCAPE.sub(repl, s)


def _macro_args(rest: str) -> str:
    parts = re.findall(r'"([^"]*)"|(\S+)', rest)
    return " ".join(a or b for a, b in parts)


@dataclass
class Section:
    heading: str
    paragraphs: list[str]


def parse_roff(src: str) -> list[Section] | None:
    """Sections of prose paragraphs; ``None`` for a ``.so`` redirect page."""
    sections: list[Section] = []
    para: list[str] = []
    in_code = False

    def flush() -> None:
        text = re.sub(r"\s+", " ", " ".join(para)).strip()
        para.clear()
        if text and sections:
            sections[-1].paragraphs.append(text)

    for line in src.splitlines():
        if line.startswith((".\\\"", "'\\\"", '.\\"')) or line.strip() in (".", "'"):
            continue
        if line.startswith((".", "'")):
            m = re.match(r"[.'](\S+)\s*(.*)", line)
            if not m:
                continue
            name, rest = m.group(1), m.group(2)
            if name == "so":
                return None
            if name in ("nf", "EX"):
                flush()
                in_code = True
                continue
            if name in ("fi", "EE"):
                in_code = False
                continue
            if name in ("SH", "SS"):
                flush()
                if name == "SH":
                    sections.append(Section(_unescape(_macro_args(rest)).strip(), []))
                else:
                    para.append("")  # subsection headings are not prose: start a fresh paragraph
                continue
            if name in _BREAK:
                flush()
                if name == "IP" and rest:
                    tag = _unescape(_macro_args(rest).split(" ")[0])
                    if len(tag) > 2:  # a bullet or number is not text
                        para.append(tag)
                continue
            if name in _FONT and not in_code:
                para.append(_unescape(_macro_args(rest)))
            continue
        if not in_code:
            para.append(_unescape(line))
    flush()
    return sections


def read_page(path: Path) -> list[Section] | None:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return parse_roff(raw.decode("utf-8", errors="replace"))


@dataclass
class Page:
    """One manual page: its English paragraphs and, per language, the aligned translated paragraph
    (``None`` where the translation could not be aligned or was left in English)."""

    name: str        # e.g. "signal.7"
    section: str     # "7"
    english: list[str]
    translations: dict[str, list[str | None]]
    #: Per language, the aligned translated paragraph whenever it differs from the English one, whatever
    #: its language (for measuring the language guess without the guess's own filter).
    raw: dict[str, list[str | None]] = field(default_factory=dict)

    def english_text(self) -> str:
        return "\n\n".join(self.english)


def manpage_files(root: Path) -> dict[str, Path]:
    return {p.name.removesuffix(".gz"): p for p in root.rglob("*.gz")
            if "/man/" in p.as_posix() and not p.is_symlink()}


def load_pages(x: Path, langs: tuple[str, ...] = LANGS) -> list[Page]:
    """Every English prose page, with the translations that align paragraph for paragraph.

    ``langs`` are package suffixes (``pt-br``). A paragraph po4a left in English is dropped: for the four
    languages the thresholds were chosen on, unless the language guess names the language; for any other
    (:mod:`bench.heldout_languages`, languages the guess may not know) unless it guesses English."""
    english = {**manpage_files(x / "manpages" / "usr/share/man"), **manpage_files(x / "manpages-dev" / "usr/share/man")}
    translated = {lang: manpage_files(x / f"manpages-{lang}" / "usr/share/man") for lang in langs}
    pages: list[Page] = []
    stats = {lang: [0, 0] for lang in langs}  # aligned paragraphs, English paragraphs of translated pages
    for name, path in sorted(english.items()):
        secs = read_page(path)
        if not secs:
            continue
        # Prose only: drop the sections made of code and lists of names, and the very short paragraphs
        # (a lone option name) that neither model can say anything about.
        keep = [(k, i) for k, s in enumerate(secs) if not _NOT_PROSE.match(s.heading)
                for i, p in enumerate(s.paragraphs) if len(p.split()) >= 6]
        if not keep:
            continue
        paras = [secs[k].paragraphs[i] for k, i in keep]
        page = Page(name, name.rsplit(".", 1)[-1], paras, {})
        for lang in langs:
            tpath = translated[lang].get(name)
            tsecs = read_page(tpath) if tpath else None
            if not tsecs:
                continue
            aligned: list[str | None] = []
            raw: list[str | None] = []
            for k, i in keep:
                t = r = None
                # po4a keeps the section and paragraph structure: same section index, same paragraph count.
                if k < len(tsecs) and len(tsecs[k].paragraphs) == len(secs[k].paragraphs):
                    cand = tsecs[k].paragraphs[i]
                    if cand != secs[k].paragraphs[i]:
                        r = cand
                        guess = guess_language(cand)
                        t = cand if (guess == lang if lang in LANGS else guess != "en") else None
                aligned.append(t)
                raw.append(r)
            page.raw[lang] = raw
            stats[lang][0] += sum(t is not None for t in aligned)
            stats[lang][1] += len(aligned)
            if any(t is not None for t in aligned):
                page.translations[lang] = aligned
        pages.append(page)
    for lang, (a, n) in stats.items():
        log(f"manpages-{lang}: {a}/{n} paragraphs of translated pages aligned")
    return pages

"""Translated copies in languages no threshold was chosen on: the product end to end, thresholds unchanged.

``python -m bench.heldout_languages [--quick] [--write]``; writes the ``heldout_languages`` section of
``bench/RESULTS.md`` and ``bench/out/heldout_languages.json``. Set-up downloads more Debian manual-page
translations (:mod:`bench.manpages`; nothing is installed, nothing enters the repository).

The cross-lingual signal's run gate was chosen on German and reported on French, Spanish and Italian
(:mod:`bench.translation`). Here the same drafts are built (:func:`bench.translation.build`: a block of
consecutive translated paragraphs of an indexed English page planted in held-out translated text, and
held-out translated text alone as same-topic negatives) in other languages of manpages-l10n:

* languages the multilingual model was trained on (Polish, Brazilian Portuguese, Dutch, Russian);
* languages it was not (Czech, Romanian, Swedish, Ukrainian, Hungarian, Danish, Finnish, Indonesian,
  Vietnamese), where a translation may still share names, numbers and subwords with its source.

Every draft goes through ``Index.check_content`` against one index of the English pages. Per language:
planted blocks found (the source page matched, its draft span overlapping the block), wrong page, negatives
falsely matched, drafts where the cross-lingual search was skipped, and the draft language the evidence
names. Paragraphs po4a left in English are dropped where the language guess says English.

Japanese (JM project) and Chinese (zh_CN) manual pages are whole-page translations of other versions
of the English pages, not aligned paragraph by paragraph: the start of a page's description is checked
against English pages, half of them indexed (:func:`whole_page_drafts`).

Also the language guess itself (:func:`guess_accuracy`) on every manual-page package Debian translates,
aligned or not: it names the languages in the evidence, and a check skips the cross-lingual search where
every stored and draft passage window is guessed one language or undetermined.
"""

from __future__ import annotations

import random
import re
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from provenance.checker import Index
from provenance.content import load_content
from provenance.passages import guess_language
from provenance.signals import XlingualSignal

from . import translation
from .common import SEED, log, machine, save_json, table, wilson_hi
from .manpages import PACKAGES, Page, ensure_manpages, load_pages, manpage_files, read_page
from .sections import section_cli

#: Package suffix -> trained on by USE multilingual v3.
LANGUAGES: dict[str, bool] = {"pl": True, "pt-br": True, "nl": True, "ru": True, "cs": False, "ro": False,
                              "sv": False, "uk": False, "hu": False, "da": False, "fi": False, "id": False,
                              "vi": False}
#: Fewer held-out host pages than this in a language: too few to draw distinct drafts from.
MIN_HOSTS = 5


#: Package suffix -> the code :func:`guess_language` should name (for the guess's accuracy).
GUESS_PACKAGES = {"": "en", "de": "de", "fr": "fr", "es": "es", "it": "it", "pl": "pl", "pt-br": "pt",
                  "nl": "nl", "sv": "sv", "ru": "ru", "uk": "uk", "sr": "sr", "mk": "mk", "cs": "cs", "ro": "ro",
                  "hu": "hu", "fi": "fi", "da": "da", "nb": "no", "id": "id", "tr": "tr", "vi": "vi", "ja": "ja",
                  "zh": "zh"}


def guess_accuracy(x: Path, pages_per_package: int = 400) -> dict[str, dict[str, Any]]:
    """Per manual-page package, :func:`guess_language` over its paragraphs of 20 words or more (the first
    ``pages_per_package`` pages, whole packages, aligned or not): the share named right among those not
    guessed English (translated packages keep some paragraphs in English), and the most frequent guesses."""
    out: dict[str, dict[str, Any]] = {}
    for suffix, code in GUESS_PACKAGES.items():
        root = x / ("manpages" + (f"-{suffix}" if suffix else ""))
        guesses: Counter[str] = Counter()
        for f in sorted(root.rglob("*.gz"))[:pages_per_package]:
            if f.is_symlink():
                continue
            for sec in read_page(f) or []:
                guesses.update(guess_language(p) for p in sec.paragraphs if len(p.split()) >= 20)
        judged = sum(guesses.values()) - (guesses["en"] if code != "en" else 0)
        out[suffix or "en"] = {"code": code, "paragraphs": sum(guesses.values()), "judged": judged,
                               "right": guesses[code], "top": guesses.most_common(3)}
    return out


#: Whole-page translations from projects other than manpages-l10n (not aligned paragraph by paragraph):
#: language -> folder under the unpacked packages.
WHOLE_PAGES = {"ja": "manpages-ja/usr/share/man/ja", "zh": "manpages-zh/usr/share/man/zh_CN"}
_DESCRIPTION = re.compile(r"説明|描述|DESCRIPTION")


def whole_page_drafts(x: Path, english: dict[str, Page], max_chars: int = 600,
                      per_side: int = 60) -> list[tuple[str, str, str, bool]]:
    """``(language, page name, draft, indexed)``: the first paragraphs (up to ``max_chars`` characters) of the
    description of each Japanese and Chinese manual page whose English page is known, the English page indexed
    for half of the names (``translation._stable_half``); at most ``per_side`` of each half per language."""
    rng = random.Random(SEED)
    out: list[tuple[str, str, str, bool]] = []
    for lang, rel in WHOLE_PAGES.items():
        found: dict[bool, list[tuple[str, str, str, bool]]] = {True: [], False: []}
        for name, path in sorted(manpage_files(x / rel).items()):
            desc = next((sec for sec in read_page(path) or [] if _DESCRIPTION.search(sec.heading)), None)
            if name not in english or desc is None:
                continue
            paras: list[str] = []
            for para in desc.paragraphs:
                if sum(map(len, paras)) >= max_chars:
                    break
                paras.append(para)
            if sum(map(len, paras)) >= 150:
                indexed = translation._stable_half(name) == 0
                found[indexed].append((lang, name, "\n\n".join(paras), indexed))
        for side in found.values():
            out += rng.sample(side, min(per_side, len(side)))
    return out


def shared_pages(english: dict[str, Page], names: list[str], indexed: list[str]) -> dict[str, set[str]]:
    """Per page name, the indexed pages holding one of its English paragraphs (8+ words) verbatim, digits
    aside: templated families (iso_8859-*) and related pages (raw.7, packet.7) share descriptions, so a
    translation of one is a translation of the others' text too (as :func:`bench.translation.build` marks)."""
    holders: dict[str, set[str]] = {}
    for n in indexed:
        for para in english[n].english:
            if len(para.split()) >= 8:
                holders.setdefault(translation._norm(para), set()).add(n)
    return {n: {h for para in english[n].english for h in holders.get(translation._norm(para), ())} - {n}
            for n in names}


def whole_page_counts(idx: Index, ids: dict[str, int], drafts: list[tuple[str, str, str, bool]],
                      shared: dict[str, set[str]]) -> dict[str, dict[str, Any]]:
    """Per language: positives (the English page indexed), found (it, or a page sharing its text, is matched),
    wrong page, negatives (not indexed, sharing no paragraph with an indexed page), false (anything
    matched), left out (negatives sharing a paragraph), and the languages the evidence names."""
    out: dict[str, dict[str, Any]] = {}
    names = {i: n for n, i in ids.items()}
    for lang, name, text, indexed in drafts:
        r = out.setdefault(lang, {"pos": 0, "found": 0, "wrong": 0, "neg": 0, "false": 0, "left_out": 0,
                                  "named": Counter(), "pairs": []})
        if not indexed and shared[name]:
            r["left_out"] += 1
            continue
        rep = idx.check_content(load_content(text))
        right = {ids[n] for n in ({name} if indexed else set()) | shared[name]}
        r["pairs"] += [f"{name} -> {names[m.id]}" for m in rep.matches if m.id not in right]
        if not indexed:
            r["neg"] += 1
            r["false"] += bool(rep.matches)
            continue
        r["pos"] += 1
        hit = [m for m in rep.matches if m.id in right]
        r["found"] += bool(hit)
        r["wrong"] += any(m.id not in right for m in rep.matches)
        ev = next((m.evidence[XlingualSignal.name] for m in hit if XlingualSignal.name in m.evidence), None)
        if ev:
            r["named"][f"{ev['relation']} {ev['draft_language']}→{ev['source_language']}"] += 1
    return out


def run(quick: bool = False) -> dict[str, Any]:
    t0 = time.perf_counter()
    x = ensure_manpages((*PACKAGES, *(f"manpages-{s}" for s in {*LANGUAGES, *GUESS_PACKAGES} if s)))
    guess = guess_accuracy(x)
    pages = load_pages(x, tuple(LANGUAGES))
    held = Counter(lang for p in pages if translation._stable_half(p.name) == 1 for lang in p.translations)
    langs = tuple(lang for lang in LANGUAGES if held[lang] >= MIN_HOSTS)
    log(f"heldout_languages: held-out host pages {dict(held)}; measured {langs}")
    sources, drafts = translation.build(pages, *((10, 15) if quick else (30, 40)), langs=langs,
                                        english_negatives=False)
    with tempfile.TemporaryDirectory(prefix="bench-hl-") as tmp:
        with Index.open(Path(tmp) / "idx", create=True) as idx:
            ids = [r.id for r in idx.add([t for _, t in sources], source="manpages")]
            log(f"heldout_languages: {len(sources)} English pages indexed; checking {len(drafts)} drafts")
            res = translation.product_counts(idx, ids, drafts)
    english = {p.name: p for p in load_pages(x, ())}
    whole = whole_page_drafts(x, english, per_side=20 if quick else 60)
    with tempfile.TemporaryDirectory(prefix="bench-hl-") as tmp:
        with Index.open(Path(tmp) / "idx", create=True) as idx:
            names = sorted({name for _, name, _, indexed in whole if indexed})
            pages = [english[n].english for n in names]
            added = idx.add([translation._join(e[:translation._cap(e)])[0] for e in pages], source="manpages")
            log(f"heldout_languages: {len(names)} English pages indexed; checking {len(whole)} whole-page drafts")
            shared = shared_pages(english, sorted({name for _, name, _, _ in whole}), names)
            whole_res = whole_page_counts(idx, {n: r.id for n, r in zip(names, added)}, whole, shared)
    out = {"langs": langs, "sources": len(sources), "counts": res, "guess": guess, "whole": whole_res,
           "whole_sources": len(names), "seconds": time.perf_counter() - t0}
    save_json("heldout_languages.json", out)
    return out


def _rate(k: int, n: int) -> str:
    return f"{k / n:.2f} ({k}/{n})" if n else "–"


def summarise(res: dict[str, Any], quick: bool) -> str:
    rows = []
    for lang in res["langs"]:
        r = res["counts"].get(lang)
        if not r:
            continue
        named = ", ".join(f"{k} ×{v}" for k, v in Counter(r["named"]).most_common(3)) or "–"
        rows.append([lang, "yes" if LANGUAGES[lang] else "no", _rate(r["found"], r["pos"]),
                     _rate(r["wrong"], r["pos"]), _rate(r["false"], r["neg"]),
                     f"{wilson_hi(r['false'], r['neg']):.2f}", _rate(r["skipped"], r["pos"] + r["neg"]), named])
    return "\n".join([
        "## Translated copies in held-out languages (product end to end, thresholds unchanged)",
        "",
        f"`bench/heldout_languages.py`: {res['sources']} English manual pages indexed; drafts built as in "
        "`bench/translation.py` (a 60-200-word translated block of an indexed page planted in held-out "
        "translated text; held-out translated text alone as same-topic negatives) in languages no threshold "
        "was chosen on. Found: the source page matched with its draft span overlapping the block.",
        "",
        table(["language", "USE trained on it", "found", "wrong page", "negatives false", "false 95 % upper",
               "cross-lingual search skipped", "evidence says"], rows),
        "",
        f"Whole pages from other translation projects ({res['whole_sources']} English pages indexed): the first "
        "paragraphs (150-600 characters) of a Japanese (JM project) or Chinese (zh_CN, older) manual page's "
        "description, checked against the English pages; positives where the English page is indexed, "
        "same-topic negatives where it is not. The translations are of other versions of the pages, so found "
        "means the right page matched, not a planted span; a page sharing an English paragraph verbatim with "
        "the draft's page (iso_8859-* descriptions) counts as right, and negatives sharing one are left out.",
        "",
        table(["language", "found", "wrong page", "negatives false", "false 95 % upper", "negatives left out",
               "evidence says"],
              [[lang, _rate(r["found"], r["pos"]), _rate(r["wrong"], r["pos"]), _rate(r["false"], r["neg"]),
                f"{wilson_hi(r['false'], r['neg']):.2f}", r["left_out"],
                ", ".join(f"{k} ×{v}" for k, v in Counter(r["named"]).most_common(3)) or "–"]
               for lang, r in res["whole"].items()]),
        "",
        "Pages matched other than the draft's own (draft -> matched): " + "; ".join(
            f"{lang}: " + ", ".join(r["pairs"]) for lang, r in res["whole"].items() if r["pairs"]),
        "",
        "Language guess (`provenance.passages.guess_language`, which names the languages in the evidence and "
        "decides when the cross-lingual search can be skipped) per Debian manual-page package: paragraphs of "
        "20+ words, share named right among those not guessed English:",
        "",
        table(["package", "should say", "paragraphs", "named right", "most frequent guesses"],
              [[f"manpages-{k}" if k != "en" else "manpages", g["code"], g["paragraphs"],
                _rate(g["right"], g["judged"]), ", ".join(f"{c} {n}" for c, n in g["top"])]
               for k, g in res["guess"].items()]),
        "",
        f"_{'quick' if quick else 'full'} run {time.strftime('%Y-%m-%d %H:%M')}, {res['seconds']:.0f} s; "
        f"{machine()}_",
    ])


def main() -> None:
    section_cli("heldout_languages", __doc__ or "", run, summarise)


if __name__ == "__main__":
    main()

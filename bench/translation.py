"""Translated copies: do passage embeddings find the English source of a translated passage, and does the
aligned-run gate keep independent same-topic texts out?

``python -m bench.translation [--quick]`` (set-up downloads Debian manual pages, see :mod:`bench.manpages`).

Data. English manual pages (``manpages``, ``manpages-dev``) that have German, French, Spanish or Italian
translations are split by a hash of their name into *indexed* pages (English text indexed, each cut to its
first paragraphs up to ``SOURCE_WORDS`` words) and *held-out* pages (never indexed).

* Positives: a draft in language L made of held-out translated paragraphs (the host, 100-350 words) with a
  block of 60-200 words of consecutive translated paragraphs of an indexed page planted between two of them.
  The truth is the indexed page and the English paragraphs the block translates.
* Negatives: drafts of 150-400 words of held-out pages only, in L (same sections, same vocabulary, never
  indexed) and in English (same-topic English, which the multilingual signal will also see).

Measured per model (all-MiniLM-L6-v2 through ONNX fp32, USE multilingual v3):

* top-1: the whole planted block as one query; is the nearest indexed passage from the true page?
* gate: every draft is cut with ``passage_spans`` and searched exhaustively. Two rules, thresholds chosen on
  German (dev) for the highest recall with at most 1 % false matches on German and English negatives, then
  applied unchanged to French, Spanish and Italian (test):
  ``best pair`` (one passage pair at cosine >= t, the embedding rule without its English content-word gate)
  and ``aligned run`` (:func:`provenance.passages.aligned_runs` + :class:`RunGate`: two or more passages in
  order on both sides, each pair >= c, mean >= r).
  A positive is found when the true page passes and the run's draft span overlaps the planted block (IoU
  reported); a false match is a negative draft that passes with any page, or a positive that passes with a
  page other than its source.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from provenance.content import load_content
from provenance.encoders import OnnxMiniLMEncoder, TextEncoder, UseMultilingualEncoder
from provenance.passages import aligned_runs, guess_language
from provenance.signals import XlingualSignal
from provenance.signals.text import passage_spans
from provenance.textnorm import NO_SPACE_CHAR, NO_SPACE_WORDS_PER_CHAR

from .common import OUT, SEED, log, machine, table, wilson_hi
from .manpages import LANGS, Page, ensure_manpages, load_pages
from .sections import write_section

if TYPE_CHECKING:
    from provenance.checker import Index

SOURCE_WORDS = 700
#: Pairs under this cosine are never evidence for any rule swept here; storing only pages above it keeps
#: the per-draft record small.
FLOOR = 0.3
DEV = "de"
TARGET_FMR = 0.01
CELL_GRID = tuple(round(x, 3) for x in np.arange(0.35, 0.801, 0.05))
RUN_GRID = tuple(round(x, 3) for x in np.arange(0.35, 0.951, 0.025))
BUCKETS = ("6-15 words", "16-40 words", "41+ words")
PAIR_GRID = tuple(round(x, 3) for x in np.arange(0.35, 0.991, 0.01))


@dataclass
class Draft:
    kind: str                      # "positive" | "negative"
    lang: str
    text: str
    source_page: int | None = None  # index into the indexed pages
    plant: tuple[int, int] | None = None         # draft chars
    source_span: tuple[int, int] | None = None   # source chars
    block: str = ""                # the planted block alone (top-1 query)
    #: The host holds a paragraph found verbatim (digits aside) in an indexed page: left out of the counts.
    shares_source: bool = False
    #: Other indexed pages that hold a planted paragraph verbatim (templated families such as
    #: iso_8859-*): matching them is right, not a wrong page.
    also_sources: frozenset[int] = frozenset()
    # filled per model: page -> (sim submatrix, source spans) for pages with a pair >= FLOOR
    hits: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)
    spans: list[tuple[int, int]] = field(default_factory=list)


def _norm(paragraph: str) -> str:
    """Paragraph identity for templated pages: case, spacing and digits ignored."""
    return re.sub(r"\d+", "0", " ".join(paragraph.lower().split()))


def _stable_half(name: str) -> int:
    return hashlib.sha1(name.encode()).digest()[0] % 2


def _words(text: str) -> float:
    """Words of ``text`` as the passages count them: whitespace-separated words, and each Han or kana
    character as ``NO_SPACE_WORDS_PER_CHAR`` of a word (a Japanese paragraph has almost no spaces, and a
    "150-400-word" host counted by spaces ran to 8,000 characters)."""
    cjk = len(NO_SPACE_CHAR.findall(text))
    return len(NO_SPACE_CHAR.sub(" ", text).split()) + cjk * NO_SPACE_WORDS_PER_CHAR


def _cap(paras: list[str]) -> int:
    """How many leading paragraphs fit in SOURCE_WORDS (at least one)."""
    words, k = 0, 0
    for k, p in enumerate(paras):
        words += len(p.split())
        if words > SOURCE_WORDS and k:
            return k
    return len(paras)


def _join(paras: list[str]) -> tuple[str, list[tuple[int, int]]]:
    text, offs = "", []
    for p in paras:
        if text:
            text += "\n\n"
        offs.append((len(text), len(text) + len(p)))
        text += p
    return text, offs


def build(pages: list[Page], n_pos: int, n_neg: int, langs: tuple[str, ...] = LANGS,
          english_negatives: bool = True) -> tuple[list[tuple[str, str]], list[Draft]]:
    """Indexed source texts ``(name, english text)`` and the drafts (see the module docstring), in ``langs``
    and, with ``english_negatives``, English negatives."""
    rng = random.Random(SEED)
    translated = [p for p in pages if p.translations]
    indexed = [p for p in translated if _stable_half(p.name) == 0]
    held = [p for p in translated if _stable_half(p.name) == 1]
    sources: list[tuple[str, str]] = []
    offsets: list[list[tuple[int, int]]] = []
    for p in indexed:
        text, offs = _join(p.english[:_cap(p.english)])
        sources.append((p.name, text))
        offsets.append(offs)

    def take(paras: list[tuple[str, str]], lo: int, hi: int) -> list[tuple[str, str]]:
        target = rng.randint(lo, hi)
        start = rng.randrange(len(paras))
        out, words = [], 0
        for p in paras[start:] + paras[:start]:
            if words >= target:
                break
            out.append(p)
            words += _words(p[0])
        return out

    # Manual pages come in templated families (iso_8859-*, the *_namespaces pages) and share boilerplate
    # paragraphs verbatim; a held-out host holding such a paragraph contains (a translation of) indexed
    # text, a true copy. Those drafts are marked and left out of the counts rather than called false.
    indexed_paras = {_norm(q) for p in indexed for q in p.english[:_cap(p.english)] if len(q.split()) >= 8}
    holders: dict[str, set[int]] = {}
    for si, p in enumerate(indexed):
        for q in p.english[:_cap(p.english)]:
            holders.setdefault(_norm(q), set()).add(si)

    drafts: list[Draft] = []
    for lang in (*langs, *(("en",) if english_negatives else ())):
        hosts = [p for p in held if lang == "en" or lang in p.translations]
        def host_paras(p: Page, lang: str = lang) -> list[tuple[str, str]]:
            if lang == "en":
                return [(e, e) for e in p.english]
            return [(t, e) for t, e in zip(p.translations[lang], p.english, strict=True) if t]

        def shares(paras: list[tuple[str, str]]) -> bool:
            return any(_norm(e) in indexed_paras for _, e in paras)
        for _ in range(n_neg):
            paras = take(host_paras(rng.choice(hosts)), 150, 400)
            drafts.append(Draft("negative", lang, "\n\n".join(t for t, _ in paras), shares_source=shares(paras)))
        if lang == "en":
            continue
        # Blocks of consecutive translated paragraphs inside the indexed (capped) part of the page.
        cands: list[tuple[int, int, int]] = []
        for si, p in enumerate(indexed):
            tr = p.translations.get(lang)
            if not tr:
                continue
            cap = len(offsets[si])
            for a in range(cap):
                words, b = 0.0, a
                while b < cap and tr[b] is not None and words < 60:
                    words += _words(tr[b])  # type: ignore[arg-type]
                    b += 1
                if words >= 60:
                    cands.append((si, a, b))
        rng.shuffle(cands)
        used: set[int] = set()
        for si, a, b in cands:
            if len([d for d in drafts if d.kind == "positive" and d.lang == lang]) >= n_pos:
                break
            if si in used:
                continue  # one block per page and language, so pages weigh alike
            used.add(si)
            tr = indexed[si].translations[lang]
            cap = len(offsets[si])
            limit = rng.randint(60, 200)
            words = sum(_words(t or "") for t in tr[a:b])
            while b < cap and (nxt := tr[b]) is not None and words + _words(nxt) <= limit:
                words += _words(nxt)
                b += 1
            block = "\n\n".join(tr[a:b])  # type: ignore[arg-type]
            host_pairs = take(host_paras(rng.choice(hosts)), 100, 350)
            host = [t for t, _ in host_pairs]
            k = rng.randint(0, len(host))
            before = "\n\n".join(host[:k])
            start = len(before) + (2 if before else 0)
            text = "\n\n".join([*host[:k], block, *host[k:]])
            drafts.append(Draft("positive", lang, text, si, (start, start + len(block)),
                                (offsets[si][a][0], offsets[si][b - 1][1]), block, shares(host_pairs),
                                frozenset(h for q in indexed[si].english[a:b] for h in holders.get(_norm(q), ()))))
    return sources, drafts


def product_counts(idx: Index, ids: list[int], drafts: list[Draft]) -> dict[str, dict[str, Any]]:
    """Every draft through ``idx.check_content`` (``ids``: the item id of each indexed page). Per language:
    positives, found (the source page, or a page holding the planted paragraphs verbatim, matched with its
    draft span overlapping the plant), wrong page, negatives, false (any match), skipped (the cross-lingual
    search did not run), and the draft languages the found evidence names. Drafts holding indexed text
    verbatim are left out, as in :func:`build`."""
    out: dict[str, dict[str, Any]] = {}
    xl = XlingualSignal.name
    for d in drafts:
        if d.shares_source:
            continue
        r = out.setdefault(d.lang, {"pos": 0, "found": 0, "wrong": 0, "neg": 0, "false": 0, "skipped": 0,
                                    "named": Counter()})
        rep = idx.check_content(load_content(d.text))
        r["skipped"] += any(s["signal"] == xl for s in rep.skipped)
        if d.kind == "negative":
            r["neg"] += 1
            r["false"] += bool(rep.matches)
            continue
        r["pos"] += 1
        assert d.source_page is not None and d.plant is not None
        right = {ids[d.source_page], *(ids[k] for k in d.also_sources)}
        r["wrong"] += any(m.id not in right for m in rep.matches)
        a, b = d.plant
        hit = [m for m in rep.matches if m.id in right and any(
            sp.start < b and sp.end > a for o in m.observations if o.passed and o.evidence
            for sp, _ in o.evidence.span_pairs())]
        r["found"] += bool(hit)
        ev = next((m.evidence[xl] for m in hit if xl in m.evidence), None)
        if ev:
            r["named"][f"{ev['relation']} {ev['draft_language']}→{ev['source_language']}"] += 1
    return out



# ---------------------------------------------------------------------------------------------------


class CachedEncoder:
    """Embeddings remembered by text hash in ``bench/out`` so a rerun (or a crash) does not redo them."""

    def __init__(self, name: str, enc: TextEncoder) -> None:
        self.name, self.enc = name, enc
        self.path = OUT / f"translation-emb-{name}.npz"
        self.cache: dict[str, np.ndarray] = {}
        if self.path.exists():
            with np.load(self.path) as z:
                self.cache = dict(zip(z["keys"].tolist(), z["vecs"]))
        self.seconds, self.encoded = 0.0, 0

    def encode(self, texts: list[str]) -> np.ndarray:
        keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
        todo = sorted({k: t for k, t in zip(keys, texts) if k not in self.cache}.items())
        if todo:
            t0 = time.perf_counter()
            vecs = self.enc.encode([t for _, t in todo])
            self.seconds += time.perf_counter() - t0
            self.encoded += len(todo)
            self.cache.update({k: v for (k, _), v in zip(todo, vecs)})
        return np.stack([self.cache[k] for k in keys]) if keys else np.zeros((0, 1), np.float32)

    def save(self) -> None:
        OUT.mkdir(parents=True, exist_ok=True)
        keys = sorted(self.cache)
        np.savez(self.path, keys=np.array(keys), vecs=np.stack([self.cache[k] for k in keys]))


def measure(name: str, enc: CachedEncoder, sources: list[tuple[str, str]], drafts: list[Draft]) -> dict:
    """Top-1 per positive and, per draft, the similarity submatrix of every page with a pair >= FLOOR."""
    src_spans = [passage_spans(t) for _, t in sources]
    owner = np.concatenate([np.full(len(s), i) for i, s in enumerate(src_spans)])
    src_vecs = enc.encode([t[a:b] for (_, t), spans in zip(sources, src_spans) for a, b in spans])
    enc.save()
    log(f"{name}: {len(src_vecs)} source passages")
    pos = [d for d in drafts if d.kind == "positive"]
    blocks = enc.encode([d.block for d in pos])
    top1 = {d.lang: [] for d in pos}
    for d, v in zip(pos, blocks):
        top1[d.lang].append(int(owner[int(np.argmax(src_vecs @ v))] == d.source_page))
    for k, d in enumerate(drafts):
        d.spans = passage_spans(d.text)
        dv = enc.encode([d.text[a:b] for a, b in d.spans])
        sim = dv @ src_vecs.T
        hits = {}
        for page in np.unique(owner[(sim >= FLOOR).any(axis=0)]):
            hits[int(page)] = sim[:, owner == page]
        d.hits[name] = hits
        if k % 50 == 49:
            enc.save()
            log(f"{name}: {k + 1}/{len(drafts)} drafts")
    enc.save()
    return {"top1": top1, "src_spans": src_spans}


def _iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union else 0.0


Scored = list[dict[int, tuple[float, tuple[int, int]]]]


_LANG_CACHE: dict[str, str] = {}


def _lang(text: str) -> str:
    if text not in _LANG_CACHE:
        _LANG_CACHE[text] = guess_language(text)
    return _LANG_CACHE[text]


def _crosses(draft: str, source: str) -> bool:
    """Both spans' languages known and different: the only evidence the cross-lingual signal gives
    (same-language reuse is the shingles' and text-embed's, with its content-word gate)."""
    dl, sl = _lang(draft), _lang(source)
    return "und" not in (dl, sl) and dl != sl


def scored(drafts: list[Draft], model: str, sources: list[tuple[str, str]],
           src_spans: list[list[tuple[int, int]]], rule: str, cell: float = 0.0) -> Scored:
    """Per draft, ``page -> (value, draft span)``: the value a rule's last threshold is compared with.

    ``pair``: the best cosine with the page and the draft passage it came from. ``run`` (pairs >= ``cell``):
    the best mean cosine of a run of two or more passages on both sides, and the run's draft span. Both
    count only where the draft and source spans are in different languages. Computed once per cell
    threshold, so sweeping the run threshold is a comparison.
    """
    out: Scored = []
    for d in drafts:
        per: dict[int, tuple[float, tuple[int, int]]] = {}
        for page, sub in d.hits[model].items():
            src = sources[page][1]
            if rule == "pair":
                for flat in np.argsort(-sub, axis=None)[:5]:
                    i, j = np.unravel_index(int(flat), sub.shape)
                    (a, b), (sa, sb) = d.spans[int(i)], src_spans[page][int(j)]
                    if _crosses(d.text[a:b], src[sa:sb]):
                        per[page] = (float(sub[i, j]), d.spans[int(i)])
                        break
            elif sub.max() >= cell:
                runs = sorted((r for r in aligned_runs(sub, d.spans, src_spans[page], cell_threshold=cell)
                               if r.length >= 2), key=lambda r: -r.score)
                for top in runs:
                    (a, b), (sa, sb) = top.draft_span, top.source_span
                    if _crosses(d.text[a:b], src[sa:sb]):
                        per[page] = (top.score, top.draft_span)
                        break
        out.append(per)
    return out


def evaluate(drafts: list[Draft], values: Scored, threshold: float,
             names: list[str] | None = None) -> dict[str, dict]:
    """Per language: found positives (with IoU), false matches and counts at one threshold (with the
    falsely matched page names when ``names`` is given)."""
    out: dict[str, dict] = {}
    for d, per in zip(drafts, values, strict=True):
        r = out.setdefault(d.lang, {"pos": 0, "found": 0, "ious": [], "neg": 0, "false": 0, "wrong": 0,
                                    "excluded": 0, "false_pages": []})
        if d.shares_source:
            r["excluded"] += 1
            continue
        flagged = {page: span for page, (v, span) in per.items() if v >= threshold}
        if d.kind == "negative":
            r["neg"] += 1
            r["false"] += bool(flagged)
            if names:
                r["false_pages"] += [names[p] for p in flagged]
            continue
        r["pos"] += 1
        assert d.plant is not None
        span = flagged.get(d.source_page)  # type: ignore[arg-type]
        if span is None:  # the same paragraphs in a sibling page of a templated family count as found
            span = next((flagged[p] for p in d.also_sources if p in flagged), None)
        if span is not None and _iou(span, d.plant) > 0:
            r["found"] += 1
            r["ious"].append(_iou(span, d.plant))
        wrong = [p for p in flagged if p != d.source_page and p not in d.also_sources]
        r["wrong"] += bool(wrong)
        if names:
            r["false_pages"] += [f"{names[p]} (by the host around a plant of {names[d.source_page]})"  # type: ignore[index]
                                 for p in wrong]
    return out


def _fmr(res: dict[str, dict], langs: tuple[str, ...]) -> float:
    false = sum(res[lang]["false"] + res[lang]["wrong"] for lang in langs if lang in res)
    n = sum(res[lang]["neg"] + res[lang]["pos"] for lang in langs if lang in res)
    return false / max(1, n)


def calibrate(drafts: list[Draft], model: str, sources: list[tuple[str, str]],
              src_spans: list[list[tuple[int, int]]]) -> dict[str, tuple]:
    """Per rule, the parameters with the best dev recall at <= TARGET_FMR false matches on dev + English."""
    dev = [d for d in drafts if d.lang in (DEV, "en")]
    best: dict[str, tuple] = {}
    for rule in ("pair", "run"):
        top = None
        for cell in ((0.0,) if rule == "pair" else CELL_GRID):
            values = scored(dev, model, sources, src_spans, rule, cell)
            for t in (PAIR_GRID if rule == "pair" else [r for r in RUN_GRID if r >= cell]):
                res = evaluate(dev, values, t)
                fmr = _fmr(res, (DEV, "en"))
                if fmr > TARGET_FMR:
                    continue
                recall = res[DEV]["found"] / max(1, res[DEV]["pos"])
                key = (recall, -fmr, cell + t)  # then fewest false matches, then the strictest
                if top is None or key > top[0]:
                    top = (key, (t,) if rule == "pair" else (cell, t))
        best[rule] = top[1] if top else ((PAIR_GRID[-1],) if rule == "pair" else (CELL_GRID[-1], RUN_GRID[-1]))
    return best


def results_for(drafts: list[Draft], model: str, sources: list[tuple[str, str]],
                src_spans: list[list[tuple[int, int]]], rule: str, params: tuple) -> dict[str, dict]:
    cell = params[0] if rule == "run" else 0.0
    return evaluate(drafts, scored(drafts, model, sources, src_spans, rule, cell), params[-1],
                    [name for name, _ in sources])


def language_accuracy(pages: list[Page]) -> dict[str, dict[str, float]]:
    """guess_language on the passages the benchmark uses: English paragraphs and translated paragraphs
    that differ from their English original, by length (those left in English by po4a are excluded by
    the inequality, not by the guess)."""
    buckets = dict(zip(BUCKETS, ((6, 15), (16, 40), (41, 10**9)), strict=True))
    acc: dict[str, dict[str, list[int]]] = {}
    rng = random.Random(SEED)
    for p in pages:
        samples = [("en", e) for e in p.english]
        for lang, tr in p.raw.items():
            samples += [(lang, t) for t in tr if t]
        for lang, text in samples:
            if lang == "en" and rng.random() > 0.1:
                continue  # English dominates the pages; a 10 % sample is plenty
            n = len(text.split())
            b = next(k for k, (lo, hi) in buckets.items() if lo <= n <= hi) if n >= 6 else None
            if b:
                acc.setdefault(lang, {}).setdefault(b, []).append(int(guess_language(text) == lang))
    return {lang: {b: (float(np.mean(v)), len(v)) for b, v in d.items()} for lang, d in acc.items()}


def run(quick: bool = False) -> dict:
    t0 = time.time()
    x = ensure_manpages()
    pages = load_pages(x)
    n_pos, n_neg = (15, 25) if quick else (40, 60)
    sources, drafts = build(pages, n_pos, n_neg)
    log(f"{len(sources)} indexed pages, {sum(len(t.split()) for _, t in sources)} words; "
        f"{len(drafts)} drafts")
    encoders = {"MiniLM (ONNX fp32)": CachedEncoder("minilm", OnnxMiniLMEncoder()),
                "USE-multilingual-v3": CachedEncoder("use", UseMultilingualEncoder())}
    measured, chosen, results = {}, {}, {}
    for name, enc in encoders.items():
        measured[name] = measure(name, enc, sources, drafts)
        src_spans = measured[name]["src_spans"]
        chosen[name] = calibrate(drafts, name, sources, src_spans)
        results[name] = {rule: results_for(drafts, name, sources, src_spans, rule, params)
                         for rule, params in chosen[name].items()}
        log(f"{name}: chosen {chosen[name]}; encoded {enc.encoded} texts in {enc.seconds:.0f} s")
    langs_acc = language_accuracy(pages)
    summary = summarise(measured, chosen, results, langs_acc, sources, drafts, quick, time.time() - t0)
    (OUT / "translation.json").write_text(json.dumps(
        {"chosen": chosen, "results": results, "top1": {k: v["top1"] for k, v in measured.items()},
         "language": langs_acc}, indent=1, default=float))
    return summary


def summarise(measured: dict, chosen: dict, results: dict, langs_acc: dict, sources: list,
              drafts: list[Draft], quick: bool, seconds: float) -> dict:
    n_words = sum(len(t.split()) for _, t in sources)
    pos = {lang: sum(1 for d in drafts if d.kind == "positive" and d.lang == lang and not d.shares_source)
           for lang in LANGS}
    neg = {lang: sum(1 for d in drafts if d.kind == "negative" and d.lang == lang and not d.shares_source)
           for lang in (*LANGS, "en")}
    excluded = sum(d.shares_source for d in drafts)
    md = ["## Translated copies (Debian manual pages, English source, translated draft)", "",
          (f"{len(sources)} English manual pages indexed (their first ≤ {SOURCE_WORDS} words, {n_words:,} words "
          f"in all); drafts: held-out translated pages of the same sections (host, 100–350 words) with a "
          f"60–200-word block of an indexed page's translation planted inside; negatives: 150–400 words of "
          f"held-out pages (translated, and English). Positives per language {pos}; negatives {neg}. "
          "Code blocks, SYNOPSIS and SEE ALSO are left out (untranslated). Manual pages come in templated "
          "families (iso_8859-*, the *-keyring pages) that share paragraphs verbatim: "
          f"{excluded} drafts whose host holds a paragraph of an indexed page (digits aside) are left out "
          "of every count, and a planted paragraph found in a sibling page counts as found there. "
          "See `bench/translation.py`."), "",
          "### Top-1: the planted block as one query, nearest indexed passage from the true page", "",
          table(["model", *(f"{lang}→en" for lang in LANGS)],
                [[m, *(f"{np.mean(v['top1'][lang]):.3f} ({sum(v['top1'][lang])}/{len(v['top1'][lang])})"
                       for lang in LANGS)] for m, v in measured.items()]), "",
          ("MiniLM's top-1 is high here because translated manual pages keep identifiers (function names, "
           "constants, paths, option names) verbatim, which an English model matches as tokens; on prose with "
           "nothing left untranslated (the issue's Spanish Bible passages) it ranked the source first 13 % of "
           "the time. Its gate results below show what that is worth as evidence."), "",
          (f"### Gate: recall and false matches, thresholds chosen on {DEV} (dev) + English negatives for the "
          f"highest recall at ≤ {TARGET_FMR:.0%} false matches, applied unchanged to the other languages"), "",
          ("`pair`: one draft passage at cosine ≥ t with one source passage. `run`: aligned_runs + RunGate, ≥ 2 "
          "passages in order on both sides, every pair ≥ c, mean ≥ r. Both rules count a match only when "
          "`guess_language` gives the draft span and the source span two different known languages (the "
          "signal reports translations; same-language reuse belongs to the shingles and text-embed). Found = the true page passes with a draft "
          "span overlapping the planted block (mean IoU of those). False = negative drafts that pass with any "
          "page; wrong = positives that also pass with another page. 95 % Wilson upper bound on the false-match "
          "rate in brackets."), ""]
    rows = []
    for m, per_rule in results.items():
        for rule, res in per_rule.items():
            params = ", ".join(f"{k}={v}" for k, v in zip(("t",) if rule == "pair" else ("c", "r"),
                                                         chosen[m][rule], strict=True))
            for lang in (*LANGS, "en"):
                r = res.get(lang)
                if not r:
                    continue
                recall = f"{r['found'] / r['pos']:.3f} ({r['found']}/{r['pos']})" if r["pos"] else "–"
                iou = f"{np.mean(r['ious']):.2f}" if r["ious"] else "–"
                k, n = r["false"], r["neg"]
                rows.append([m, f"{rule} ({params})", lang + (" (dev)" if lang == DEV else ""), recall, iou,
                             f"{k}/{n} [{wilson_hi(k, n):.3f}]", f"{r['wrong']}/{r['pos']}" if r["pos"] else "–"])
    md += [table(["model", "rule", "draft language", "recall", "IoU", "false (negatives)", "wrong page"], rows), ""]
    use = results.get("USE-multilingual-v3", {}).get("run", {})
    wrong_pages = [f"{lang}: {p}" for lang, r in use.items() for p in r["false_pages"]]
    if wrong_pages:
        md += ["Indexed pages matched falsely by USE + run (read them: templated families such as iso_8859-*, "
               "cp125x and the /proc/pid/ns lists in proc.5 and namespaces.7 share structure and wording "
               "without sharing a paragraph verbatim): " + "; ".join(wrong_pages) + ".", ""]
    md += ["### Language guess (`provenance.passages.guess_language`) on the benchmark's paragraphs", "",
           ("Translated paragraphs that differ from their English original (untranslated ones excluded by "
           "that inequality, not by the guess), and a 10 % sample of English paragraphs; share guessed right "
           "(paragraphs)."), "",
           table(["language", *BUCKETS],
                 [[lang, *(f"{d[b][0]:.3f} ({d[b][1]})" if b in d else "–" for b in BUCKETS)]
                  for lang, d in sorted(langs_acc.items())]),
           "", (f"_{'quick' if quick else 'full'} run, {time.strftime('%Y-%m-%d %H:%M')}, {seconds:.0f} s on a "
           f"machine shared with other jobs; {machine()}._")]
    return {"markdown": "\n".join(md), "chosen": chosen}


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.translation", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer drafts (15 positives, 25 negatives per language)")
    args = ap.parse_args()
    s = run(quick=args.quick)
    write_section("translation", s["markdown"])
    log("wrote the translation section of bench/RESULTS.md")


if __name__ == "__main__":
    main()

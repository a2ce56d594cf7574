"""Fuzzing (issue 11): Hypothesis properties of the parsers and a bounded corpus-mutation run of the CLI.

Deterministic in CI: Hypothesis is derandomised and the mutation run uses a fixed seed. Budgets keep the
whole module at about half a minute; raise them locally with ``PROVENANCE_FUZZ_SECONDS`` (mutation run)
and ``PROVENANCE_FUZZ_EXAMPLES`` (Hypothesis examples per property).

Properties: tokenisation spans and the numpy tokenizer against the original per-character one,
alignment spans and its agreement with the unbounded version, winnowing, passage spans, HTML text
extraction, the XMP editors, the manifest reader and snapshot headers. The mutation run checks drafts,
images, HTML and signed manifests with bits flipped, bytes cut, inserted and spliced, and asserts that
every exit code is in the documented table, that no traceback appears, that no process is left behind and
that memory stays under a bound.
"""

from __future__ import annotations

import io
import os
import random
import re
import resource
import struct
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from provenance.align import MAX_GRAM_OCCURRENCES, align, winnow_positions
from provenance.content import html_to_text
from provenance.indexes.catalog import Catalog, NewItem
from provenance.indexes.vectors import MAGIC, VectorIndex
from provenance.samples import sample_photo
from provenance.signals.text import (
    MAX_PASSAGE_CHARS,
    MAX_PASSAGES,
    passage_spans,
    winnow,
)
from provenance.textnorm import MAX_WORD_CHARS, fold_char, tokenize

SEED = int(os.environ.get("PROVENANCE_FUZZ_SEED", "20261101"))
EXAMPLES = int(os.environ.get("PROVENANCE_FUZZ_EXAMPLES", "40"))
FUZZ_SECONDS = float(os.environ.get("PROVENANCE_FUZZ_SECONDS", "15"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# Text that exercises folding: ASCII, accents, homoglyphs, ligatures, zero-width and bidi characters.
_ALPHABET = st.sampled_from(list("ab cd.\n!?") + ["é", "а", "Η", "ﬁ", "\u200b", "\u202e", "ß", "İ", "Å", "𝐀", "٣", "_"])
texts = st.text(alphabet=_ALPHABET, max_size=300) | st.text(max_size=200)


def reference_tokenize(text: str) -> tuple[list[str], list[int], list[int]]:
    """The original per-character tokenizer (before issue 11), with the same word-length cap."""
    folded_chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        f = ch.lower() if ch.isascii() else fold_char(ch)
        for c in f:
            folded_chars.append(c)
            origin.append(i)
    folded = "".join(folded_chars)
    words, starts, ends = [], [], []
    for m in re.finditer(rf"\w{{1,{MAX_WORD_CHARS}}}", folded):
        words.append(m.group())
        starts.append(origin[m.start()])
        ends.append(origin[m.end() - 1] + 1)
    return words, starts, ends


@FUZZ
@given(texts)
def test_tokenize_agrees_with_the_reference_and_spans_are_sane(text):
    toks = tokenize(text)
    words, starts, ends = reference_tokenize(text)
    assert toks.words == words and list(toks.starts) == starts and list(toks.ends) == ends
    assert all(0 <= s < e <= len(text) for s, e in zip(toks.starts, toks.ends))
    assert list(toks.starts) == sorted(toks.starts)
    assert all(0 < len(w) <= MAX_WORD_CHARS for w in toks.words)


@FUZZ
@given(texts, st.integers(min_value=0, max_value=20))
def test_tokenize_cap_is_a_prefix(text, cap):
    full, capped = tokenize(text), tokenize(text, max_words=cap)
    assert capped.words == full.words[:cap] and capped.truncated == (len(full) > cap)


def _unbounded_align(draft, source, n, max_gap):
    """The alignment before issue 11 (every source occurrence used), for comparison."""
    where: dict[int, list[int]] = {}
    for j, h in enumerate(source.tolist()):
        where.setdefault(h, []).append(j)
    regions, open_regions = [], []
    for i, h in enumerate(draft.tolist()):
        js = where.get(h)
        if not js:
            continue
        still_open = [r for r in open_regions if i - r[1] <= max_gap]
        used: set[int] = set()
        for j in js:
            best, best_cost = None, None
            for k, r in enumerate(still_open):
                di, dj = i - r[1], j - r[3]
                if k in used or di < 1 or not 1 <= dj <= max_gap:
                    continue
                cost = di + dj + abs(di - dj)
                if best_cost is None or cost < best_cost:
                    best, best_cost = k, cost
            if best is None:
                r = [i, i, j, j, 1]
                regions.append(r)
                still_open.append(r)
                used.add(len(still_open) - 1)
            else:
                r = still_open[best]
                r[1], r[3], r[4] = i, j, r[4] + 1
                used.add(best)
        open_regions = still_open
    return sorted(((r[0], r[1] + n, r[2], r[3] + n, r[4]) for r in regions), key=lambda r: (-(r[1] - r[0]), r[0]))


hash_arrays = st.lists(st.integers(min_value=0, max_value=12), max_size=120).map(
    lambda v: np.asarray(v, dtype=np.int64))


@FUZZ
@given(hash_arrays, hash_arrays, st.integers(min_value=1, max_value=6))
def test_alignment_spans_stay_inside_both_texts(draft, source, n):
    regions = align(draft, source, n, 8)
    for r in regions:
        assert 0 <= r.d_start < r.d_end <= len(draft) + n - 1
        assert 0 <= r.s_start < r.s_end <= len(source) + n - 1
        assert r.grams >= 1
    assert [r.words for r in regions] == sorted((r.words for r in regions), reverse=True)
    # Where no n-gram is repeated beyond the cap, the bounded alignment is the original one.
    counts = np.unique(source, return_counts=True)[1] if len(source) else np.array([0])
    if counts.max() <= MAX_GRAM_OCCURRENCES:
        got = [(r.d_start, r.d_end, r.s_start, r.s_end, r.grams) for r in regions]
        assert got == _unbounded_align(draft, source, n, 8)


@FUZZ
@given(st.lists(st.integers(min_value=-3, max_value=3), max_size=80), st.integers(min_value=1, max_value=6))
def test_vectorised_winnowing_is_winnowing(values, window):
    h = np.asarray(values, dtype=np.int64)
    assert winnow_positions(h, window) == winnow(h, window)


@FUZZ
@given(texts)
def test_passage_spans_are_bounded_and_inside_the_text(text):
    spans = passage_spans(text)
    assert len(spans) <= MAX_PASSAGES
    for s, e in spans:
        assert 0 <= s < e <= len(text) and e - s <= MAX_PASSAGE_CHARS
    assert [s for s, _ in spans] == sorted(s for s, _ in spans)


html_parts = st.sampled_from(["<div>", "</div>", "<p>", "<script>", "</script>", "<style>", "<!--", "-->", "<", ">",
                              "<a href='", '"', "'", "&amp;", "&#x41;", "<svg/>", "<br>", "text", " ", "\n",
                              "<!DOCTYPE html>"])


@FUZZ
@given(st.lists(html_parts, max_size=60).map("".join) | st.text(max_size=200))
def test_html_extraction_never_fails_and_drops_scripts(html):
    out = html_to_text(html)
    assert isinstance(out, str)
    assert "\n\n" not in out
    marked = "<p>visible words</p><script>var hidden = 1;</script>" + html
    assert "var hidden" not in html_to_text(marked)


# -- XMP editors ------------------------------------------------------------------------------------------

def _xmp_writer():
    from provenance.xmp import with_xmp
    return with_xmp


TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def _image_bytes(fmt: str) -> bytes:
    buf = io.BytesIO()
    sample_photo(7, (64, 48)).save(buf, fmt)
    return buf.getvalue()


SEEDS = {"image/jpeg": _image_bytes("JPEG"), "image/png": _image_bytes("PNG"), "image/webp": _image_bytes("WEBP")}


def mutate(data: bytes, rng: random.Random, others: list[bytes] = ()) -> bytes:
    """One structural mutation: bit flips, a cut, an insertion, a duplicated or spliced chunk."""
    b = bytearray(data)
    kind = rng.randrange(6)
    if not b:
        return bytes(rng.randbytes(rng.randrange(1, 64)))
    if kind == 0:
        for _ in range(rng.randrange(1, 8)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif kind == 1:
        b = b[:rng.randrange(len(b))]
    elif kind == 2:
        i = rng.randrange(len(b) + 1)
        b[i:i] = rng.choice([rng.randbytes(rng.randrange(1, 32)), b"\xff" * 8, b"\x00" * 8, b"<" * 16])
    elif kind == 3:
        i, j = sorted(rng.randrange(len(b) + 1) for _ in range(2))
        b[j:j] = b[i:j][:4096]
    elif kind == 4:
        i = rng.randrange(len(b))
        b[i:i + 4] = struct.pack(">I", rng.choice([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, len(b)]))
    elif others:
        other = rng.choice(others)
        i, j = rng.randrange(len(b) + 1), rng.randrange(len(other) + 1)
        b = b[:i] + other[j:]
    return bytes(b)


@FUZZ
@given(st.sampled_from(sorted(SEEDS)), st.integers(min_value=0, max_value=2**32 - 1))
def test_xmp_editors_never_raise_and_stay_idempotent(media_type, seed):
    with_xmp = _xmp_writer()
    rng = random.Random(seed)
    data = SEEDS[media_type]
    for _ in range(rng.randrange(1, 4)):
        data = mutate(data, rng, list(SEEDS.values()))
    out, written = with_xmp(data, media_type, TRAINED)
    assert isinstance(out, bytes)
    if written:
        again, _ = with_xmp(out, media_type, TRAINED)
        assert again == out  # setting the same value twice changes nothing


# -- Snapshot headers -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def snapshot_catalog(tmp_path_factory):
    d = tmp_path_factory.mktemp("snap")
    cat = Catalog(d / "c.sqlite", create=True)
    rng = np.random.default_rng(3)
    values = rng.integers(0, 256, (40, 8), dtype=np.uint8)
    for i, v in enumerate(values):
        cat.add_item(NewItem(sha256=f"s{i}", path=None, source=None, media="image", size=1, metadata={},
                             fingerprints=[("bits", None, None, v.tobytes(), None)]))
    vi = VectorIndex(d / "faiss", "bits", 1, "", "binary", 64)
    vi.load(cat)
    vi.save()
    return d, cat, (d / "faiss" / "bits.faiss").read_bytes(), values


@FUZZ
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_any_damaged_snapshot_is_rebuilt_and_answers_correctly(snapshot_catalog, seed):
    import hashlib
    import json

    from provenance.indexes import vectors
    d, cat, pristine, values = snapshot_catalog
    rng = random.Random(seed)
    raw = pristine
    if rng.random() < 0.5:  # edit the header and re-seal it: only the semantic checks can object
        (n,) = struct.unpack(">Q", raw[len(MAGIC):len(MAGIC) + 8])
        header = json.loads(raw[len(MAGIC) + 8:len(MAGIC) + 8 + n])
        key = rng.choice(["last_row", "count", "catalog_id", "dim", "factory", "version", "kind"])
        header[key] = rng.choice([0, -1, 1, 39, 41, 10**12, None, "x", [], header[key]])
        h = json.dumps(header).encode()
        body = MAGIC + struct.pack(">Q", len(h)) + h + raw[len(MAGIC) + 8 + n:-32]
        raw = body + hashlib.sha256(body).digest()
    else:
        raw = mutate(raw, rng)
    work = d / f"w{seed}"
    work.mkdir()
    (work / "bits.faiss").write_bytes(raw)
    notes: list[str] = []
    old, vectors.notice = vectors.notice, notes.append
    try:
        vi = VectorIndex(work, "bits", 1, "", "binary", 64)
        vi.load(cat)  # never raises: damage or mismatch means a rebuild
    finally:
        vectors.notice = old
    assert len(vi) == 40 and vi.last_row == 40
    _, ids = vi.search(values[[0, 17, 39]], 1)
    assert ids[:, 0].tolist() == [1, 18, 40]
    assert raw == pristine or len(notes) <= 1


# -- Manifest reader --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    """A signed text sidecar and a signed JPEG, made once through the real CLI."""
    from provenance.cli.main import main
    root = tmp_path_factory.mktemp("signed")
    runner = CliRunner()
    assert runner.invoke(main, ["keys", "new", str(root / "keys")]).exit_code == 0
    text = root / "post.md"
    text.write_text("A short post about harbour ferries and the new evening timetable, signed for fuzzing.")
    photo = root / "photo.jpg"
    sample_photo(5).save(photo, "JPEG")
    for f in (text, photo):
        r = runner.invoke(main, ["disclose", str(f), "--source-type", "humanEdits", "--signer", str(root / "keys"),
                                 "--no-record"])
        assert r.exit_code == 0, r.output
    signed_photo = next(p for p in root.iterdir() if p.name.startswith("photo") and p.name != "photo.jpg")
    return {"root": root, "text": text, "sidecar": Path(f"{text}.c2pa"), "photo": signed_photo}


@FUZZ
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_manifest_reader_raises_only_its_own_errors(signed, seed):
    from provenance.c2pa_verify import read_manifest_json
    from provenance.errors import BadInputError, ManifestError
    rng = random.Random(seed)
    work = signed["root"] / f"m{seed}"
    work.mkdir()
    text = work / "post.md"
    text.write_bytes(signed["text"].read_bytes())
    Path(f"{text}.c2pa").write_bytes(mutate(signed["sidecar"].read_bytes(), rng))
    photo = work / "photo.jpg"
    photo.write_bytes(mutate(signed["photo"].read_bytes(), rng))
    for target in (text, photo):
        try:
            out = read_manifest_json(target)
        except (BadInputError, ManifestError):
            continue
        assert out is None or isinstance(out, dict)


# -- Corpus mutation run of the CLI -----------------------------------------------------------------

CHECK_CODES = {0, 1, 3}  # clean, match, bad input (README: exit codes)


def _reset_peak_memory() -> None:
    """Reset this process's peak resident size (Linux ``clear_refs`` 5), so a later reading covers only what
    ran since. Elsewhere the lifetime peak is all there is."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_memory_mb() -> float:
    """Peak resident size since :func:`_reset_peak_memory` (``VmHWM``), else the process's lifetime peak."""
    try:
        status = Path("/proc/self/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]
    except (OSError, AttributeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _children() -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()]
    except OSError:
        return []


def test_mutated_inputs_give_documented_exit_codes_only(signed, tmp_path):
    from provenance.cli.exit_codes import VERIFY_EXIT_CODES
    from provenance.cli.main import main
    runner = CliRunner()
    idx = tmp_path / "idx"
    corpus = {
        "draft.md": ("It is interesting to contemplate an entangled bank, clothed with many plants of many "
                     "kinds, with birds singing on the bushes, and with worms crawling through the damp "
                     "earth.\n" * 3).encode(),
        "page.html": (b"<!DOCTYPE html><html><head><title>t</title><script>var a=1<2;</script></head><body>"
                      b"<div><p>Four score and seven years ago our fathers brought forth on this continent.</p>"
                      b"<!-- note --></div></body></html>"),
        "photo.jpg": SEEDS["image/jpeg"], "photo.png": SEEDS["image/png"], "photo.webp": SEEDS["image/webp"],
        "utf16.txt": "Ünïcödé text with a BOM, long enough to be a draft of several words.".encode("utf-16"),
        "photo.gif": _gif_bytes(),
    }
    seeds_dir = tmp_path / "seeds"
    seeds_dir.mkdir()
    for name, data in corpus.items():
        (seeds_dir / name).write_bytes(data)
    r = runner.invoke(main, ["add", "--index", str(idx), "-q", *[str(seeds_dir / n) for n in corpus]])
    assert r.exit_code == 0, r.output
    verify_codes = set(VERIFY_EXIT_CODES.values()) | {3, 6}
    manifests = {"post.md.c2pa": signed["sidecar"].read_bytes(), "photo.c2pa.jpg": signed["photo"].read_bytes()}
    rng = random.Random(SEED)
    children_before = set(_children())
    _reset_peak_memory()  # measure this loop, not whatever earlier tests in this process peaked at
    deadline = time.monotonic() + FUZZ_SECONDS
    runs, seen_codes = 0, {}
    work = tmp_path / "mut"
    work.mkdir()
    while time.monotonic() < deadline:
        runs += 1
        if rng.random() < 0.75:
            name = rng.choice(sorted(corpus))
            data = corpus[name]
            for _ in range(rng.randrange(1, 4)):
                data = mutate(data, rng, list(corpus.values()))
            target = work / f"{runs}-{name}"
            target.write_bytes(data)
            args, allowed = ["check", "--index", str(idx), "--json", str(target)], CHECK_CODES
        else:
            name = rng.choice(sorted(manifests))
            if name.endswith(".c2pa"):
                target = work / f"{runs}-post.md"
                target.write_bytes(signed["text"].read_bytes())
                Path(f"{target}.c2pa").write_bytes(mutate(manifests[name], rng))
            else:
                target = work / f"{runs}-photo.jpg"
                target.write_bytes(mutate(manifests[name], rng))
            args, allowed = ["verify", str(target)], verify_codes
        t0 = time.monotonic()
        result = runner.invoke(main, args)
        elapsed = time.monotonic() - t0
        where = f"{args[0]} {target.name} (run {runs}, seed {SEED})"
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            f"{where}: {type(result.exception).__name__}: {result.exception}"
        assert result.exit_code in allowed, f"{where}: exit {result.exit_code}: {result.stderr[-500:]}"
        assert "Traceback" not in result.stderr, where
        assert elapsed < 60, f"{where}: took {elapsed:.0f} s"
        seen_codes[result.exit_code] = seen_codes.get(result.exit_code, 0) + 1
    assert runs >= 5, "the time budget allowed too few runs to mean anything"
    assert set(_children()) <= children_before, "a check left a process behind"
    peak_mb = _peak_memory_mb()
    assert peak_mb < 4096, f"peak memory {peak_mb:.0f} MB"
    print(f"fuzz: {runs} runs in {FUZZ_SECONDS:.0f} s, exit codes {dict(sorted(seen_codes.items()))}",
          file=sys.stderr)


def _gif_bytes() -> bytes:
    buf = io.BytesIO()
    frames = [sample_photo(s, (96, 72)).convert("P") for s in (1, 2)]
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    return buf.getvalue()


def test_decoded_image_seed_is_valid():
    """The seeds themselves decode (so mutations start from real files)."""
    for data in SEEDS.values():
        Image.open(io.BytesIO(data)).load()

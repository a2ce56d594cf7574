"""Which draft passages a text check embeds (``PassageSignal.query_fingerprint``) and with which MiniLM
(int8 for queries, fp32 for what is stored): the real models and a real index."""

from __future__ import annotations

import numpy as np
import pytest

from provenance import Index
from provenance.content import load_content
from provenance.samples import DRAFTS, SOURCES
from provenance.signals import EmbedSignal, XlingualSignal
from provenance.signals.text import nearest_cosine, passage_spans

COPIED = SOURCES["lincoln-gettysburg.txt"]
# Not indexed: the draft's own writing around the copied block.
FILLER_BEFORE = SOURCES["darwin-entangled-bank.txt"] + "\n\n" + SOURCES["austen-pride-and-prejudice.txt"]
FILLER_AFTER = DRAFTS["draft-original.md"] + "\n\n" + SOURCES["darwin-entangled-bank.txt"]
DRAFT = "\n\n".join([FILLER_BEFORE, COPIED, FILLER_AFTER])


def _fp32_signal(monkeypatch: pytest.MonkeyPatch) -> EmbedSignal:
    monkeypatch.setattr(EmbedSignal, "query_precision", "fp32")
    return EmbedSignal()


def test_without_near_stored_passages_every_other_passage_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    signal = _fp32_signal(monkeypatch)
    content = load_content(DRAFT.encode(), name="draft.md")
    full = signal.fingerprint(content)
    spans = passage_spans(DRAFT)
    assert [(f.start, f.end) for f in full] == spans and len(spans) >= 6

    nothing_near = signal.query_fingerprint(content, lambda q: np.full(len(q), -1.0))
    want = sorted({*range(0, len(spans), 2), len(spans) - 1})
    assert [(f.start, f.end) for f in nothing_near] == [spans[i] for i in want]
    for f in nothing_near:  # same vectors as the stored form for the same passage (fp32 both)
        np.testing.assert_allclose(f.value, full[spans.index((f.start, f.end))].value, atol=1e-5)

    everything_near = signal.query_fingerprint(content, lambda q: np.ones(len(q)))
    assert [(f.start, f.end) for f in everything_near] == spans
    # Without a way to search (or with refinement off) it is the stored form's passages.
    assert len(signal.query_fingerprint(content)) == len(spans)
    monkeypatch.setattr(EmbedSignal, "query_refine_at", None)
    assert len(signal.query_fingerprint(content, lambda q: np.full(len(q), -1.0))) == len(spans)


@pytest.mark.parametrize("signal_cls", [EmbedSignal, XlingualSignal])
def test_draft_is_read_at_full_overlap_where_it_resembles_indexed_text(tmp_path, signal_cls) -> None:
    with Index.open(tmp_path / "idx", create=True) as idx:
        idx.add([COPIED.encode()], source="speeches")
        signal = next(s for s in idx.signals if isinstance(s, signal_cls))
        content = load_content(DRAFT.encode(), name="draft.md")
        chosen = {(f.start, f.end) for f in signal.query_fingerprint(content, nearest_cosine(idx, signal))}
        spans = passage_spans(DRAFT)
        lo = DRAFT.index(COPIED)
        hi = lo + len(COPIED)
        inside = [sp for sp in spans if min(sp[1], hi) - max(sp[0], lo) >= 0.5 * (sp[1] - sp[0])]
        assert inside and set(inside) <= chosen, (inside, sorted(chosen))
        assert len(chosen) < len(spans), "the unrelated writing is read at half overlap"
        # And the check finds the copy through this signal's own evidence.
        report = idx.check_content(content)
        assert report.matches and report.matches[0].source == "speeches"


def test_passages_near_stored_ones_are_judged_on_fp32_vectors(tmp_path) -> None:
    """int8 only screens: a passage whose nearest stored passage reaches ``query_exact_from`` is embedded
    again in fp32 (the demo's heavy rewrite sits at 0.808 in fp32 and 0.797 in int8, across a bar)."""
    with Index.open(tmp_path / "idx", create=True) as idx:
        idx.add([COPIED.encode()], source="speeches")
        signal = next(s for s in idx.signals if isinstance(s, EmbedSignal))
        content = load_content(DRAFT.encode(), name="draft.md")
        stored = {(f.start, f.end): np.asarray(f.value) for f in signal.fingerprint(content)}
        nearest = nearest_cosine(idx, signal)
        query = signal.query_fingerprint(content, nearest)
        best = nearest(np.stack([np.asarray(f.value) for f in query]))
        exact = [np.allclose(f.value, stored[(f.start, f.end)], atol=1e-5) for f in query]
        assert all(e for e, b in zip(exact, best) if b >= signal.query_exact_from)
        assert any(b >= signal.query_exact_from for b in best) and not all(exact)


def test_queries_go_through_int8_and_land_beside_the_stored_fp32_vectors() -> None:
    signal = EmbedSignal()
    assert signal.query_precision == "int8"
    assert signal.query_encoder is not signal.encoder
    texts = [SOURCES[k] for k in sorted(SOURCES)]
    stored, query = signal.encode(texts), signal.encode_query(texts)
    assert stored.shape == query.shape
    cos = (stored * query).sum(axis=1)
    assert cos.min() >= 0.97 and not np.allclose(stored, query, atol=1e-4)
    # Each query lands nearest its own stored vector.
    assert (np.argmax(query @ stored.T, axis=1) == np.arange(len(texts))).all()

"""Boilerplate is not copying: shingles held by many indexed documents are weighted by their document
frequency, kept in the catalog. Real model, real FAISS, real catalog; documents from ../shared/data."""

import json

import pytest

from provenance import Index
from provenance.cli.main import render_table
from provenance.content import load_content
from provenance.indexes.catalog import Catalog, NewItem
from provenance.signals.embedding import content_overlap, content_words
from provenance.signals.text import DF_MIN_ITEMS, common_cutoff

from .conftest import DATA

LEE = DATA / "text" / "gensim_lee_news.jsonl"
SIGN_OFF = "Views expressed are my own and do not reflect those of any employer or client."
needs_data = pytest.mark.skipif(not LEE.exists(), reason="../shared/data/text not present")


def _item(sha: str, hashes: list[int]) -> NewItem:
    return NewItem(sha, None, None, "text", 1, {}, text="x", shingles=[(h, i) for i, h in enumerate(hashes)])


def _df(cat: Catalog) -> dict[int, int]:
    return dict(cat.db.execute("SELECT hash, docs FROM shingle_df").fetchall())


def test_document_frequency_follows_add_remove_revive_and_rebuild(tmp_path):
    cat = Catalog(tmp_path / "c.sqlite", create=True)
    a, _ = cat.add_item(_item("a", [1, 2, 2, 3]))  # a hash twice in one item counts once
    b, _ = cat.add_item(_item("b", [2, 3, 4]))
    assert _df(cat) == {1: 1, 2: 2, 3: 2, 4: 1}
    assert cat.shingle_document_frequency([1, 2, 3, 9], at_least=2) == {2: 2, 3: 2}
    cat.remove_item(a)
    assert _df(cat) == {2: 1, 3: 1, 4: 1}
    cat.add_item(_item("a", [1, 2, 3]))  # revived
    assert _df(cat) == {1: 1, 2: 2, 3: 2, 4: 1}
    incremental = _df(cat)
    assert cat.rebuild_shingle_df() == 4 and _df(cat) == incremental
    # A catalog made before the counts existed is back-filled when opened.
    cat.db.execute("DELETE FROM shingle_df")
    cat.db.execute("DELETE FROM meta WHERE key='shingle_df'")
    cat.close()
    assert _df(Catalog(tmp_path / "c.sqlite")) == incremental
    assert b


def test_common_cutoff_needs_an_index_of_some_size():
    assert common_cutoff(DF_MIN_ITEMS - 1) == 0
    assert common_cutoff(DF_MIN_ITEMS) == 5
    assert common_cutoff(2000) == 20


def _docs() -> list[str]:
    with open(LEE, encoding="utf-8") as f:
        docs = [json.loads(line)["text"] for line in f if line.strip()]
    # Short real news items, each cut to its first ~80 words at a sentence end.
    out = []
    for d in docs:
        cut = d.find(". ", 400)
        if cut > 0:
            out.append(d[:cut + 1])
    return out


@pytest.fixture(scope="module")
def signed_index(tmp_path_factory):
    """24 news items that all end with the same 15-word sign-off, plus their texts."""
    docs = _docs()
    idx = Index(tmp_path_factory.mktemp("df") / "idx", create=True)
    ids = [r.id for r in idx.add([d + "\n\n" + SIGN_OFF + "\n" for d in docs[:24]], source="blog")]
    yield idx, docs, ids
    idx.close()


@needs_data
def test_shared_sign_off_alone_is_boilerplate_not_a_near_duplicate(signed_index):
    idx, docs, _ = signed_index
    report = idx.check_text(docs[40] + "\n\n" + SIGN_OFF + "\n")
    assert report.verdict == "original", report.to_dict()
    assert not report.fails("near-duplicate")
    shingle = [o for m in report.matches + report.near_misses for o in m.observations
               if o.signal == "text-shingle"]
    assert shingle and all(o.to_dict()["boilerplate"] for o in shingle)
    ev = shingle[0].to_dict()
    assert ev["regions"][0]["boilerplate"] and ev["regions"][0]["shared_by"] == 24
    assert ev["common_at"] == 5 and not shingle[0].passed
    assert "boilerplate: 15-word run shared by 24 indexed documents" in shingle[0].summary()
    near = report.to_dict()["near_misses"]
    assert any(n["evidence"].get("text-shingle", {}).get("boilerplate") for n in near)
    assert "boilerplate: 15-word run shared by 24 indexed documents" in render_table([report])


@needs_data
def test_passage_embeddings_leave_the_sign_off_out_of_shared_content(signed_index):
    idx, docs, _ = signed_index
    draft = load_content(docs[40] + "\n\n" + SIGN_OFF + "\n")
    query = idx.adapter(idx.signal("text-embed")).prepare(draft, None)
    last = query.common[-1]  # the passage holding the sign-off
    assert {"views", "expressed", "reflect", "employer", "client"} <= last
    assert not query.common[0]  # the story's own words all count


def test_content_overlap_leaves_out_boilerplate_words():
    a = "The council approved the budget. Views expressed are my own, not any employer's or client's."
    b = "Rain is expected on Tuesday. Views expressed are my own, not any employer's or client's."
    assert content_overlap(a, b) >= 0.4
    assert content_overlap(a, b, frozenset(content_words(SIGN_OFF) | {"employer's", "client's"})) == 0


@needs_data
def test_copy_carrying_the_sign_off_still_fails(signed_index):
    idx, docs, ids = signed_index
    copied = docs[3][: docs[3].find(". ", 200) + 1]  # the first 40-odd words of an indexed item
    report = idx.check_text(docs[41] + "\n\n" + copied + "\n\n" + SIGN_OFF + "\n")
    assert report.verdict == "near-duplicate" and report.matches[0].id == ids[3]
    ev = report.matches[0].evidence["text-shingle"]
    assert ev["boilerplate"] is False and ev["passed"]


@needs_data
def test_small_index_does_not_apply_document_frequency(tmp_path):
    docs = _docs()
    with Index(tmp_path / "idx", create=True) as idx:
        idx.add([d + "\n\n" + SIGN_OFF + "\n" for d in docs[:6]], source="blog")
        report = idx.check_text(docs[40] + "\n\n" + SIGN_OFF + "\n")
    # Six documents cannot tell a formula from a copy: the shared 15 words count, as before, as one short
    # copied region of a long draft (``partial``: reported, and failing ``--fail-on partial`` only).
    assert report.verdict == "partial"
    assert report.matches[0].evidence["text-shingle"]["common_at"] == 0
    assert report.matches[0].evidence["text-shingle"]["passed"]
    assert report.fails("partial") and not report.fails("near-duplicate")


def _sentence_of(text: str, lo: int, hi: int) -> str:
    """The first sentence of ``text`` with ``lo``..``hi`` words."""
    for s in text.replace("\n", " ").split(". "):
        if lo <= len(s.split()) <= hi:
            return s.strip() + "."
    raise AssertionError(f"no sentence of {lo}-{hi} words")


@needs_data
def test_one_shared_sentence_in_a_long_draft_is_partial_and_more_is_near_duplicate(tmp_path):
    docs = _docs()
    with Index(tmp_path / "idx", create=True) as idx:
        ids = [r.id for r in idx.add(docs[:6], source="news")]
        one = _sentence_of(docs[2], 13, 22)
        long_draft = docs[40] + " " + docs[41] + "\n\n" + one + "\n"
        partial = idx.check_text(long_draft)
        short_draft = one + " Our own words follow it here."
        short = idx.check_text(short_draft)
    m = partial.matches[0]
    assert partial.verdict == "partial" and m.id == ids[2]
    ev = m.evidence["text-shingle"]
    assert ev["passed"] and ev["short_copy"] and ev["regions"][0]["draft"]["start"] == long_draft.index(one)
    assert partial.fails("partial") and not partial.fails("near-duplicate")
    # The same sentence as most of a short draft is the draft copied: near-duplicate.
    assert short.verdict == "near-duplicate" and short.matches[0].id == ids[2]
    assert not short.matches[0].evidence["text-shingle"]["short_copy"]


@needs_data
def test_a_copied_passage_in_a_long_draft_is_near_duplicate(tmp_path):
    docs = _docs()
    with Index(tmp_path / "idx", create=True) as idx:
        ids = [r.id for r in idx.add(docs[:6], source="news")]
        passage = docs[2][: docs[2].find(". ", 200) + 1]  # the first 35-odd words
        assert len(passage.split()) >= 30
        report = idx.check_text(docs[40] + " " + docs[41] + "\n\n" + passage + "\n")
    assert report.verdict == "near-duplicate" and report.matches[0].id == ids[2]

"""Stored passages carry their language, so a check skips the cross-lingual search (and never loads USE)
where every stored and draft passage is in one language; real MiniLM, USE, FAISS and SQLite throughout."""

from __future__ import annotations

import sqlite3

from provenance import Index
from provenance.encoders import model_loader
from provenance.passages import guess_language
from provenance.signals.multilingual import XlingualSignal

from .test_multilingual import INDEPENDENT_DE, SOURCE_EN, TRANSLATION_DE

XL = XlingualSignal.name

# English, unrelated to the indexed text: what most pre-commit checks of an English blog look like.
DRAFT_EN = """Release notes should say what changed for the people who use the program, not how the change \
was made. Start with anything that breaks existing set-ups, then new features, then fixes, and link each \
entry to the discussion that led to it so a reader can follow the reasoning.

Keep one entry per change and write it in the past tense. When a default changes, give the old and the new \
value and the option that restores the old behaviour."""


def xlingual_skip(report) -> str | None:
    return next((s["reason"] for s in report.skipped if s["signal"] == XL), None)


def test_one_language_index_and_draft_skip_the_search_without_loading_use(tmp_path):
    with Index.open(tmp_path / "idx", create=True) as idx:
        idx.add([SOURCE_EN], source="docs")
        assert idx.catalog.fingerprint_labels(XL) == {"en"}
    with Index.open(tmp_path / "idx") as idx:  # fresh signals: nothing loaded yet
        report = idx.check_text(DRAFT_EN)
        assert "in en" in (xlingual_skip(report) or "")
        assert model_loader(idx.signal(XL).encoder) is not None, "USE was loaded for a search that was skipped"
        # A German draft needs the search: the translation is still found.
        report = idx.check_text(TRANSLATION_DE)
        assert xlingual_skip(report) is None and report.verdict == "paraphrase"
        assert report.matches[0].evidence[XL]["relation"] == "translation"


def test_a_second_stored_language_turns_the_search_back_on(tmp_path):
    with Index.open(tmp_path / "idx", create=True) as idx:
        idx.add([SOURCE_EN, INDEPENDENT_DE], source="docs")
        assert idx.catalog.fingerprint_labels(XL) == {"en", "de"}
        assert xlingual_skip(idx.check_text(DRAFT_EN)) is None


def test_passages_stored_before_labels_keep_the_search_on_until_rebuild(tmp_path):
    with Index.open(tmp_path / "idx", create=True) as idx:
        idx.add([SOURCE_EN], source="docs")
        stored = idx.catalog.db.execute("SELECT count(*) FROM fingerprints WHERE signal=?", (XL,)).fetchone()[0]
        assert stored >= 3 and not idx.catalog.unlabelled_fingerprints(XL)
    # What a catalog written by an earlier version looks like: no label column at all.
    db = sqlite3.connect(tmp_path / "idx" / "catalog.sqlite")
    db.execute("DROP INDEX fingerprints_label")
    db.execute("ALTER TABLE fingerprints DROP COLUMN label")
    db.commit()
    db.close()
    with Index.open(tmp_path / "idx") as idx:
        assert idx.catalog.fingerprint_labels(XL) == {None}
        assert xlingual_skip(idx.check_text(DRAFT_EN)) is None
        out = idx.rebuild()
        assert out["labelled"] == {XL: stored}
        assert idx.catalog.fingerprint_labels(XL) == {"en"}
        assert "in en" in (xlingual_skip(idx.check_text(DRAFT_EN)) or "")


def test_same_language_search_is_never_skipped(tmp_path):
    with Index.open(tmp_path / "idx", create=True) as idx:
        idx.add([SOURCE_EN], source="docs")
        idx.signal(XL).same_language = True
        assert xlingual_skip(idx.check_text(DRAFT_EN)) is None


def test_windows_keep_a_second_language_and_drop_a_stray_phrase():
    from provenance.signals.multilingual import window_languages
    from provenance.signals.text import passage_spans

    mixed = SOURCE_EN + "\n\n" + TRANSLATION_DE  # an English text followed by a German section
    assert set(window_languages(mixed, passage_spans(mixed))) >= {"en", "de"}
    # A Latin paragraph inside English prose is no second language, though a function-word guess reads it
    # alone as French (a passage of the PAN corpus did exactly that).
    latin = ("Et primo librorum existencium in libraria dormitorii, quam ut est disposuimus, cum locus ipse prius "
             "diu fuisset inutilis et dudum arti sutorie et vestiario serviebat, sicut per aliquas annexas "
             "armariorumque dispositiones apparebat, sed a II annis vel circa nichil aut parum ibi fuerat.")
    paragraphs = SOURCE_EN.split("\n\n")
    parts = [paragraphs[0], latin, *paragraphs[1:]]
    stray = "\n\n".join(parts)
    starts = [stray.index(p) for p in parts]
    spans = [(a, a + len(p)) for a, p in zip(starts, parts)]  # one passage per paragraph
    assert [guess_language(stray[a:b]) for a, b in spans] == ["en", "fr", "en", "en", "en"]
    assert window_languages(stray, spans) == ["en"] * 5

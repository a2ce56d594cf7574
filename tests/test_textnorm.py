from provenance.textnorm import sentence_spans, snippet, tokenize


def test_folding_keeps_original_offsets():
    text = "Plа\u200bgiarism is ＢＡＤ, café!"  # Cyrillic а, zero-width space, full-width letters
    toks = tokenize(text)
    assert toks.words == ["plagiarism", "is", "bad", "cafe"]
    assert [text[s:e] for s, e in zip(toks.starts, toks.ends)] == ["Plа\u200bgiarism", "is", "ＢＡＤ", "café"]


def test_greek_and_cyrillic_homoglyphs_fold_to_latin():
    assert tokenize("Ηеllο wοrld").words == tokenize("hello world").words


def test_sentence_spans_trim_and_split_paragraphs():
    text = "First one. Second?  Third!\n\nNew paragraph without stop"
    assert [text[s:e] for s, e in sentence_spans(text)] == [
        "First one.", "Second?", "Third!", "New paragraph without stop"]


def test_snippet_elides_long_spans():
    s = snippet("word " * 100, 0, 500, limit=41)
    assert len(s) <= 41 and "…" in s

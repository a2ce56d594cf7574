"""Quoting: quoted passages are reported as ``quoted`` evidence and do not fail the gate; a draft that
quotes one line and copies the rest still fails. Real model, real FAISS, real catalog."""

import json

from click.testing import CliRunner

from provenance.cli.main import main
from provenance.content import load_content
from provenance.quotes import quoted_regions, span_is_quoted, spans_are_quoted
from provenance.samples import SOURCES
from provenance.textnorm import tokenize

DARWIN = SOURCES["darwin-entangled-bank.txt"]
LINCOLN = SOURCES["lincoln-gettysburg.txt"]

INTRO = ("I spent the weekend repotting seedlings on the balcony and wondering why some of them thrive "
         "while others, given the same soil and light, simply give up after a week.")
OUTRO = ("My tomatoes, for their part, remain unimpressed by any theory and keep dropping their flowers "
         "whenever the night gets cold, so I will try a fleece cover next.")


def add_sources(index):
    return index.add([load_content(t, name=n).data for n, t in SOURCES.items()], source="books")


def quoted_texts(text):
    return [text[s:e] for s, e in quoted_regions(text)]


def test_blockquotes_and_attributed_quotations_are_quoted():
    text = ("Intro.\n\n> first quoted line\n> second quoted line\n\nShe said “short words” today. "
            "Don’t ‘worry’.\n“" + "long " * 60 + "” and nothing else.\n"
            "„Ein Zitat mit Namen“ — Goethe\n"
            "«" + "mot " * 60 + "» (Hugo, 1862)\n")
    found = quoted_texts(text)
    assert found[:2] == ["first quoted line", "second quoted line"]
    assert "short words" in found  # short: no attribution needed
    assert "worry" in found and not any("t ‘" in q for q in found)  # the apostrophe opens nothing
    assert not any(q.startswith("long") for q in found)  # long and unattributed: not a quotation
    assert "Ein Zitat mit Namen" in found  # attributed after a dash
    assert any(q.startswith("mot mot") for q in found)  # long, but cited


def test_span_is_quoted_allows_only_a_few_words_outside():
    text = "“" + " ".join(f"w{i}" for i in range(30)) + "” — A. Writer. " + " ".join(f"x{i}" for i in range(20))
    tokens, regions = tokenize(text), quoted_regions(text)
    assert span_is_quoted(tokens, regions, 0, text.index("x0"))  # the quotation and its attribution
    assert not span_is_quoted(tokens, regions, 0, len(text))  # 20 more words outside: counts


def test_passage_spans_need_one_mostly_quoted_passage_and_all_touching_a_quotation():
    own = " ".join(f"own{i}" for i in range(30))
    text = f"{own}\n\n> " + " ".join(f"q{i}" for i in range(40)) + f"\n\n{own} and more {own}"
    tokens, regions = tokenize(text), quoted_regions(text)
    q0, q_end = text.index("q0"), text.index("q39") + 3
    around = (q0 - 60, q_end + 60)  # the quotation with a few words either side
    straddling = (0, q0 + 40)  # mostly the writer's own words, touching the quotation
    elsewhere = (len(text) - 60, len(text))  # touching no quotation
    assert spans_are_quoted(tokens, regions, [around, straddling], exact=False)
    assert not spans_are_quoted(tokens, regions, [straddling], exact=False)
    assert not spans_are_quoted(tokens, regions, [around, elsewhere], exact=False)
    assert not spans_are_quoted(tokens, regions, [around, straddling], exact=True)


def test_blockquote_of_an_indexed_passage_does_not_fail(index):
    add_sources(index)
    quote = "\n".join("> " + line for line in DARWIN.split(". ")[0:1]) + "."
    draft = f"# Garden notes\n\n{INTRO}\n\n{quote}\n\n{OUTRO}\n"
    report = index.check(draft)
    assert not report.fails("paraphrase"), report.to_dict()
    assert report.verdict == "original"
    m = report.matches[0]
    assert m.quoted and not m.counts and m.verdict == "near-duplicate"
    doc = report.to_dict()["matches"][0]
    assert doc["quoted"] and doc["evidence"]["text-shingle"]["quoted"] is True


def test_quoting_one_line_and_copying_the_rest_fails(index):
    add_sources(index)
    first, rest = DARWIN.split(", and to reflect", 1)
    draft = f"{INTRO}\n\nAs Darwin put it, “{first}.” And to reflect{rest}\n\n{OUTRO}\n"
    report = index.check(draft)
    assert report.verdict == "near-duplicate" and report.fails("near-duplicate")
    m = report.matches[0]
    assert m.source == "books" and m.counts and "entangled bank" in m.lines()[-1]


def test_inline_attributed_quotation_is_quoted(index):
    add_sources(index)
    sentence = LINCOLN.split(". ")[0]
    draft = f"{INTRO} “{sentence}” — Abraham Lincoln, 1863. {OUTRO}"
    report = index.check(draft)
    assert report.verdict == "original", report.to_dict()
    m = report.matches[0]
    assert m.quoted and m.evidence["text-shingle"]["quoted"] is True


def test_quoted_match_in_json_and_table_does_not_fail_the_cli(tmp_path):
    idx_dir = str(tmp_path / "idx")
    runner = CliRunner()
    src = tmp_path / "darwin.txt"
    src.write_text(DARWIN)
    assert runner.invoke(main, ["add", "--index", idx_dir, str(src)]).exit_code == 0
    draft = tmp_path / "draft.md"
    draft.write_text(f"{INTRO}\n\n> {DARWIN.split('. ')[0]}.\n\n{OUTRO}\n")
    table = runner.invoke(main, ["check", "--index", idx_dir, "--fail-on", "paraphrase", str(draft)])
    assert table.exit_code == 0, table.output
    assert "quoted:" in table.output and "inside a quotation" in table.output
    res = runner.invoke(main, ["check", "--index", idx_dir, "--json", str(draft)])
    assert res.exit_code == 0
    doc = json.loads(res.output)
    assert doc["schema"] == "provenance.report/1"
    assert doc["reports"][0]["matches"][0]["quoted"]


def test_quotations_in_other_languages_and_scripts():
    long_zh = "这是从别处复制来的一句很长的话，" * 8  # 128 characters: about 64 words, no spaces at all
    # Long quotations count with an attribution in the draft's own language (one text each, so that no
    # attribution window reaches into another's).
    assert quoted_texts("L'auteur a écrit : « " + "mot " * 60 + "».")[0].strip().startswith("mot mot")
    assert quoted_texts("Laut dem Bericht „" + "Wort " * 60 + "“.")[0].startswith("Wort Wort")
    assert quoted_texts("Und ein langer Satz „" + "Wort " * 60 + "“ ohne Namen.") == []
    assert quoted_texts("他说：「管道是单向的通道」。") == ["管道是单向的通道"]  # short, corner brackets
    # A long Chinese passage between bare quotation marks is a pasted passage, not a short quotation: its
    # 128 characters are one "word" to white space.
    assert quoted_texts(f"“{long_zh}”") == []
    assert quoted_texts(f"「{long_zh}」") == []


def test_word_count_weighs_chinese_characters():
    from provenance.textnorm import word_count

    assert word_count("three plain words") == 3
    assert word_count("管道是单向的") == 3  # six characters, half a word each
    assert word_count("the 管道 pipe") == 3

"""The paraphrase rule of ``text-embed``: a reworded copy keeps its source's words in order, a text written
independently on the same topic shares the topic's words in any order (real MiniLM, real FAISS).
``bench/reword.py`` measures the rule on real corpora; these cases pin its behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from provenance.passages import sentence_alignment
from provenance.samples import DRAFTS, SOURCES
from provenance.signals import EmbedSignal
from provenance.signals.embedding import content_overlap, content_words, lexical_overlap

SOURCE = ("Honey bees find their way back to the hive by reading the position of the sun. A forager that has "
          "found flowers returns and performs a waggle dance on the comb, and the angle of the dance tells the "
          "other workers the direction of the food while its length tells them the distance.")
# The same propositions, reworded, in the same order.
REWORDED = ("Honey bees get back to their hive by using where the sun is. When a forager has found flowers it comes "
            "home and does a waggle dance on the comb: the dance's angle shows the other workers which direction "
            "the food lies in, and how long it lasts shows how far away it is.")
# Written on the same topic with the same vocabulary, saying other things in another order.
SAME_TOPIC = ("Inside the hive, honey bee workers share news of food. After visiting flowers, a forager dances on the "
              "comb; the other bees follow the waggle dance, and the sun and the distance it encodes send them out "
              "to the same place.")
# Unrelated text around the reworded passage, so the evidence must locate it.
HOST_BEFORE = ("Our allotment society meets on the first Sunday of the month to plan the seed order and the rota "
               "for watering the greenhouse. This spring we also want to keep a few hives. ")
HOST_AFTER = (" Anyone who wants to help with the hives should bring gloves and a veil; the society will lend "
              "smokers and hive tools to new members until they buy their own.")


def test_in_order_share_counts_only_words_kept_in_order() -> None:
    a = "the forager dances on the comb and workers read the angle toward flowers"
    b = "flowers angle read workers comb dances forager"  # the same content words, reversed
    shared, in_order = lexical_overlap(a, b)
    assert shared == 1.0
    assert in_order == pytest.approx(1 / 7)  # a single word of the seven can be kept in order
    assert lexical_overlap(a, a) == (1.0, 1.0)
    assert lexical_overlap(a, "nothing here is alike") == (0.0, 0.0)


def test_paraphrase_score_weighs_cosine_shared_and_in_order_words() -> None:
    s = EmbedSignal()
    total = 1.0 + s.shared_weight + s.order_weight
    assert s.blend(0.9, 0.5, 0.25) == pytest.approx((0.9 + s.shared_weight * 0.5 + s.order_weight * 0.25) / total)
    assert s.blend(1.0, 1.0, 1.0) == pytest.approx(1.0)
    assert s.blend(s.cosine_floor - 0.01, 1.0, 1.0) == 0.0  # under the floor nothing counts


def test_same_topic_text_that_the_former_rule_flagged_is_original(index) -> None:
    signal = EmbedSignal()
    vecs = signal.encode([SOURCE, SAME_TOPIC])
    # The former rule (cosine >= 0.80 and >= 40 % shared content words) called this a paraphrase.
    assert float(vecs[0] @ vecs[1]) >= 0.80 and content_overlap(SAME_TOPIC, SOURCE) >= 0.4
    index.add([SOURCE], source="notes")
    report = index.check(SAME_TOPIC)
    assert report.verdict == "original", report.to_dict()
    # It is still shown as a near miss, with the score that kept it out.
    near = [m for m in report.near_misses if "text-embed" in m.evidence]
    assert near and near[0].evidence["text-embed"]["paraphrase_score"] < EmbedSignal.threshold


def test_reworded_copy_is_a_paraphrase_and_located(index) -> None:
    index.add([SOURCE], source="notes")
    draft = HOST_BEFORE + REWORDED + HOST_AFTER
    report = index.check(draft)
    assert report.verdict == "paraphrase", report.to_dict()
    m = report.matches[0]
    assert m.signal == "text-embed" and 0.5 < m.score <= 1.0
    ev = m.evidence["text-embed"]
    assert ev["paraphrase_score"] >= EmbedSignal.threshold
    top = ev["passages"][0]
    assert top["paraphrase_score"] == pytest.approx(ev["paraphrase_score"], abs=1e-6)
    # The best pair's draft passage overlaps the reworded passage.
    start, end = len(HOST_BEFORE), len(HOST_BEFORE) + len(REWORDED)
    assert top["draft"]["start"] < end and top["draft"]["end"] > start


# A heavy rewrite of Austen's opening (the demo's paraphrase): synonyms for most content words ("truth" ->
# "fact", "single man of good fortune" -> "wealthy bachelor"). Cosine 0.81, 40 % of content words shared, 30 %
# in order: by its words it looks like the same-topic answers the former rule flagged (e.g. a Clough &
# Stevenson independent answer at cosine 0.89, 53 % shared, 33 % in order), so its paraphrase score fails;
# its two sentences each match their counterpart (0.70, 0.88) far better than the other one (0.34, 0.33).
HEAVY_REWRITE = DRAFTS["draft-paraphrase.md"]


def test_sentence_alignment_tells_one_to_one_from_alike_everywhere() -> None:
    one_to_one = np.array([[0.70, 0.34], [0.33, 0.88]])
    al = sentence_alignment(one_to_one, cell_threshold=0.5)
    assert (al.length, al.min_score) == (2, pytest.approx(0.70)) and al.margin == pytest.approx(0.36)
    # Every sentence resembles every other one: a chain of two in order exists, but no pair stands out.
    alike = np.array([[0.74, 0.66, 0.60], [0.62, 0.70, 0.61]])
    al = sentence_alignment(alike, cell_threshold=0.5)
    assert al.length == 2 and al.margin < EmbedSignal.sentence_margin
    assert sentence_alignment(np.array([[0.2, 0.1]]), cell_threshold=0.5).length == 0


def test_heavy_synonym_rewrite_is_found_by_its_sentences(index) -> None:
    source = SOURCES["austen-pride-and-prejudice.txt"]
    signal = EmbedSignal()
    vecs = signal.encode([HEAVY_REWRITE, source])
    # Its words alone do not make it a paraphrase ...
    assert signal.paraphrase_score(float(vecs[0] @ vecs[1]), HEAVY_REWRITE, source) < EmbedSignal.threshold
    index.add([source], source="books")
    report = index.check(HEAVY_REWRITE)
    # ... its sentences, each matched to its counterpart in order, do.
    assert report.verdict == "paraphrase", report.to_dict()
    top = report.matches[0].evidence["text-embed"]["passages"][0]
    assert top["aligned_sentences"] == 2 and top["paraphrase_score"] >= EmbedSignal.threshold


def test_a_link_is_not_shared_content() -> None:
    """Addresses are references: their words count on neither side of the lexical shares."""
    assert content_words("→ https://tracker.debian.org/ or mail news@lists.debian.org today") == {"mail", "today"}
    shared, in_order = lexical_overlap("→ https://tracker.debian.org/",
                                       "Read the news at https://www.debian.org/News/ and on the tracker")
    assert (shared, in_order) == (0.0, 0.0)


def test_a_passage_that_is_only_a_link_does_not_make_a_paraphrase(index) -> None:
    # A Spanish draft whose last passage is a bare link: MiniLM puts that passage at cosine ~0.63 to an
    # English passage listing the same site's addresses, and the site's name ("https", "debian", "org") was
    # 3 of its 4 content words, all shared: a paraphrase score over the bar (found in bench/handbook.py).
    index.add(["Subscribe to the announcement list → https://lists.debian.org/debian-announce/ and read the news "
               "→ https://www.debian.org/News/ when you have time."], source="notes")
    draft = ("Para seguir el desarrollo de un paquete concreto no hace falta leer todas las listas de correo del "
             "proyecto, porque cada paquete tiene su propia página que reúne los informes de errores, las subidas "
             "de nuevas versiones, las migraciones a la distribución de pruebas y las noticias de sus "
             "responsables, y esa página se puede consultar en cualquier momento.\n\nQuien prefiera recibir estas "
             "noticias por correo electrónico puede suscribirse a un paquete o a varios desde la misma página, y "
             "recibirá un mensaje cada vez que ocurra algo importante, como la aparición de un error grave, la "
             "subida de una versión nueva o la eliminación del paquete de la distribución.\n\n"
             "→ https://tracker.debian.org/")
    report = index.check(draft)
    assert report.verdict == "original", report.to_dict()
    near = [m for m in report.near_misses if "text-embed" in m.evidence]
    # MiniLM still sees the passages as close; the words of the link no longer count as shared.
    assert near and near[0].evidence["text-embed"]["max_cosine"] >= EmbedSignal.cosine_floor

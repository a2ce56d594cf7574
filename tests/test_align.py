import numpy as np

from provenance.align import align, covered
from provenance.signals.text import shingle_hashes, winnow
from provenance.textnorm import tokenize

SOURCE = ("the committee met on tuesday to review the annual budget and agreed that the library "
          "should extend its opening hours during the examination period while the sports hall "
          "would close early on weekends to save energy and staff costs")


def grams(text):
    return shingle_hashes(tokenize(text), 5)


def test_verbatim_copy_is_one_region_with_exact_word_span():
    draft = "intro words here " + SOURCE + " and some closing words"
    regions = align(grams(draft), grams(SOURCE), 5, 8)
    assert len(regions) == 1
    r = regions[0]
    assert (r.d_start, r.d_end, r.s_start, r.s_end) == (3, 3 + len(SOURCE.split()), 0, len(SOURCE.split()))


def test_typos_and_dropped_words_do_not_split_the_region():
    edited = SOURCE.replace("annual", "anual").replace("examination", "exam").replace(" early", "")
    regions = align(grams(edited), grams(SOURCE), 5, 8)
    assert regions[0].words >= len(edited.split()) - 8


def test_reordered_sentences_give_separate_regions():
    a = "the quick brown fox jumps over the lazy dog near the river bank today"
    b = "a completely different sentence about the weather being cold and wet in november"
    regions = align(grams(b + " " + a), grams(a + " " + b), 5, 8)
    assert len([r for r in regions if r.words >= 12]) == 2


def test_unrelated_texts_share_nothing():
    assert align(grams("one two three four five six seven"), grams(SOURCE), 5, 8) == []


def test_winnowing_guarantee():
    rng = np.random.default_rng(0)
    hashes = rng.integers(-2**62, 2**62, size=500)
    picked = set(winnow(hashes, 4))
    # Every window of 4 consecutive hashes contributes at least one selected position.
    assert all(any(j in picked for j in range(i, i + 4)) for i in range(len(hashes) - 3))


def test_covered_share():
    from provenance.align import Region
    assert covered([Region(0, 5, 0, 5, 1), Region(3, 10, 0, 7, 1)], 20) == 0.5

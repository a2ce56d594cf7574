import pytest

from provenance.report import Observation, Report, decide


def obs(signal, value, threshold, lower, verdict):
    return Observation(signal, value, threshold, lower, verdict)


@pytest.mark.parametrize("observations, expected", [
    ([], "original"),
    ([obs("sha256", 0, 0, True, "exact")], "exact"),
    ([obs("pdq", 31, 31, True, "near-duplicate")], "near-duplicate"),
    ([obs("pdq", 32, 31, True, "near-duplicate")], "original"),
    ([obs("pdq", 40, 31, True, "near-duplicate"), obs("phash", 4, 8, True, "near-duplicate")], "near-duplicate"),
    ([obs("text-embed", 0.9, 0.8, False, "paraphrase")], "paraphrase"),
    ([obs("text-embed", 0.79, 0.8, False, "paraphrase")], "original"),
    ([obs("text-embed", 0.95, 0.8, False, "paraphrase"),
      obs("text-shingle", 30, 12, False, "near-duplicate")], "near-duplicate"),
    ([obs("text-shingle", 11, 12, False, "near-duplicate"),
      obs("text-embed", 0.85, 0.8, False, "paraphrase")], "paraphrase"),
    ([obs("text-shingle", 40, 12, False, "near-duplicate"), obs("sha256", 0, 0, True, "exact")], "exact"),
])
def test_decide_table(observations, expected):
    assert decide(observations) == expected


@pytest.mark.parametrize("verdict, fail_on, fails", [
    ("exact", "near-duplicate", True), ("near-duplicate", "near-duplicate", True),
    ("paraphrase", "near-duplicate", False), ("paraphrase", "paraphrase", True),
    ("original", "paraphrase", False), ("exact", "never", False), ("near-duplicate", "exact", False),
])
def test_fail_on(verdict, fail_on, fails):
    assert Report("x", "text", verdict, 0.5, "0" * 64).fails(fail_on) is fails

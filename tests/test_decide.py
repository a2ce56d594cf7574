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


def cal(value, threshold, lower, anchors=None, **kw):
    return Observation("s", value, threshold, lower, "near-duplicate", anchors=anchors, **kw).confidence


@pytest.mark.parametrize("value, threshold, lower, anchors, expected", [
    # 0.5 exactly at the threshold, for distances and similarities alike.
    (31, 31, True, (128, 0), 0.5), (0.8, 0.8, False, (0.3, 1.0), 0.5), (12, 12, False, (4, 40), 0.5),
    # 1 at identity, 0 at (or beyond) chance.
    (0, 31, True, (128, 0), 1.0), (1.0, 0.8, False, (0.3, 1.0), 1.0), (128, 31, True, (128, 0), 0.0),
    (0.1, 0.8, False, (0.3, 1.0), 0.0), (80, 12, False, (4, 40), 1.0),
    # Linear on each side of the threshold.
    (0.9, 0.8, False, (0.3, 1.0), 0.75), (79.5, 31, True, (128, 0), 0.25), (8, 12, False, (4, 40), 0.25),
    # Without anchors: derived from the threshold (distance 0..2t, similarity 0..max(1, t)).
    (4, 8, True, None, 0.75), (12, 8, True, None, 0.25), (0.4, 0.8, False, None, 0.25),
])
def test_calibrated_score(value, threshold, lower, anchors, expected):
    assert cal(value, threshold, lower, anchors) == pytest.approx(expected)


def test_calibrated_scores_rank_across_signals_and_follow_the_applied_threshold():
    from provenance.report import Relaxation, match_from
    # Far past its bar (PDQ 5 of 31) outranks barely past its bar (cosine 0.81 of 0.80).
    pdq = Observation("pdq", 5, 31, True, "near-duplicate", anchors=(128, 0))
    emb = Observation("text-embed", 0.81, 0.8, False, "near-duplicate", anchors=(0.3, 1.0))
    assert pdq.confidence > 0.9 > 0.55 > emb.confidence > 0.5
    # A relaxed threshold counts as the bar once corroborated: pHash 6 passes at <= 8, so it scores >= 0.5.
    relax = Relaxation(threshold=8, corroborator="pdq", within=48)
    ph = Observation("phash", 6, 3, True, "near-duplicate", anchors=(32, 0), relaxation=relax)
    m = match_from(1, "x", None, "image", [ph, Observation("pdq", 40, 31, True, "near-duplicate",
                                                               anchors=(128, 0))])
    assert m.verdict == "near-duplicate" and m.signal == "phash" and m.score == pytest.approx(0.5 + 0.5 * 2 / 8)
    # A near miss is the observation closest to its own bar, not the largest raw closeness.
    near = match_from(2, "y", None, "text", [
        Observation("text-shingle", 10, 12, False, "near-duplicate", score=0.01, anchors=(4, 40)),
        Observation("text-embed", 0.5, 0.8, False, "paraphrase", score=0.5, anchors=(0.3, 1.0))])
    assert near.verdict == "original" and near.signal == "text-shingle" and near.score == pytest.approx(0.375)


def _phash(value, transform="identity", whole=None):
    """A pHash observation as the real signal makes it (its threshold, relaxation and evidence)."""
    from provenance.signals.image import HashEvidence, PHashSignal
    return Observation("phash", value, PHashSignal.threshold, True, "near-duplicate", anchors=(32, 0),
                       evidence=HashEvidence(int(value), 64, transform, whole), relaxation=PHashSignal.relaxation)


def _pdq(value):
    return Observation("pdq", value, 31, True, "near-duplicate", anchors=(128, 0))


@pytest.mark.parametrize("observations, verdict, rule", [
    # PDQ within 48 corroborates pHash up to 8, on the whole image or a derived variant.
    ([_phash(6), _pdq(40)], "near-duplicate", "corroborated by pdq <= 48"),
    ([_phash(5, "block+identity", whole=30), _pdq(40)], "near-duplicate", "corroborated by pdq <= 48"),
    # PDQ saw the pair and calls it unrelated: pHash cannot decide, however close.
    ([_phash(2), _pdq(100)], "original", "overruled by pdq > 48"),
    # PDQ could not speak (a flat image): pHash at its own bar, not the corroborated one ...
    ([_phash(2)], "near-duplicate", "pdq unavailable"),
    ([_phash(6)], "original", "pdq unavailable"),
    # ... and on the whole image only: a trimmed or content-block variant of a flat design is one plain
    # shape, whose hash collides with any other's.
    ([_phash(1, "block+identity", whole=20)], "original", "pdq unavailable: whole image only"),
    ([_phash(1, "trimmed+rotate-90", whole=2)], "near-duplicate", "pdq unavailable: whole image only"),
    ([_phash(1, "block+identity")], "original", "pdq unavailable: whole image only"),
])
def test_phash_rules_against_pdq(observations, verdict, rule):
    from provenance.report import match_from
    m = match_from(1, "x", None, "image", observations)
    assert m.verdict == verdict
    ph = next(o for o in m.observations if o.signal == "phash")
    assert ph.rule == rule
    if ph.overruled:
        assert not ph.passed and ph.confidence == 0.0
        assert ph.to_dict()["overruled"] is True and "does not count" in ph.summary()

"""EER / minDCF / DET: hand-worked examples, sklearn cross-check, naive reference, speed, bad input."""

from __future__ import annotations

import time
from math import erf, sqrt

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from spkpeft.eval.metrics import actual_dcf, bayes_threshold, cllr, compute_metrics, det_curve


def _hand_4x4():
    # targets 0.9 0.8 0.6 0.3, non-targets 0.7 0.4 0.2 0.1
    # sorted: N .1, N .2, T .3, N .4, T .6, N .7, T .8, T .9
    # threshold: .1   .2   .3   .4   .6   .7   .8   .9   inf
    # P_miss:     0    0    0   .25  .25  .5   .5   .75  1
    # P_fa:       1   .75  .5   .5   .25  .25   0    0   0
    scores = [0.9, 0.8, 0.6, 0.3, 0.7, 0.4, 0.2, 0.1]
    labels = [1, 1, 1, 1, 0, 0, 0, 0]
    return scores, labels


def test_det_curve_hand_example():
    det = det_curve(*_hand_4x4())
    np.testing.assert_allclose(det.thresholds, [0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9, np.inf])
    np.testing.assert_allclose(det.p_miss, [0, 0, 0, 0.25, 0.25, 0.5, 0.5, 0.75, 1])
    np.testing.assert_allclose(det.p_fa, [1, 0.75, 0.5, 0.5, 0.25, 0.25, 0, 0, 0])


def test_eer_and_min_dcf_hand_example():
    m = compute_metrics(*_hand_4x4())
    # P_miss = P_fa = 0.25 at threshold 0.6 exactly
    assert m.eer == pytest.approx(0.25)
    assert m.eer_threshold == pytest.approx(0.6)
    # normalised DCF = P_miss + 99 P_fa (p=0.01) or P_miss + 19 P_fa (p=0.05): best at t=0.8 -> 0.5 + 0
    assert m.dcf(0.01).value == pytest.approx(0.5)
    assert m.dcf(0.01).threshold == pytest.approx(0.8)
    assert m.dcf(0.05).value == pytest.approx(0.5)
    assert (m.n_target, m.n_nontarget) == (4, 4)
    # p_target 0.5: P_miss + P_fa = [1, .75, .5, .75, .5, .75, .5, .75, 1]: 0.5 first reached at t=0.3
    m5 = compute_metrics(*_hand_4x4(), p_targets=[0.5])
    assert m5.dcf(0.5).value == pytest.approx(0.5)
    assert m5.dcf(0.5).threshold == pytest.approx(0.3)


def test_eer_interpolates_between_points():
    # targets .9 .6, non-targets .7 .3 .1
    # thr:    .1  .3   .6   .7   .9  inf
    # P_miss:  0   0    0   1/2  1/2  1
    # P_fa:    1  2/3  1/3  1/3   0   0
    # crossing between t=.6 (0, 1/3) and t=.7 (1/2, 1/3): P_fa stays 1/3 so EER = 1/3; nearest point t=.7
    m = compute_metrics([0.9, 0.6, 0.7, 0.3, 0.1], [1, 1, 0, 0, 0])
    assert m.eer == pytest.approx(1 / 3)
    assert m.eer_threshold == pytest.approx(0.7)
    # p=0.05: P_miss + 19 P_fa -> [19, 12.67, 6.33, 6.83, 0.5, 1] -> 0.5 at t=.9
    assert m.dcf(0.05).value == pytest.approx(0.5)
    assert m.dcf(0.05).threshold == pytest.approx(0.9)


def test_perfect_separation_has_zero_eer_and_dcf():
    m = compute_metrics([3.0, 2.0, -1.0, -2.0], [1, 1, 0, 0])
    assert m.eer == 0.0
    assert m.dcf(0.01).value == 0.0
    assert -1.0 < m.dcf(0.01).threshold <= 2.0


def test_det_points_match_sklearn_roc_curve():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 3000)
    scores = np.round(rng.normal(size=3000) + 1.2 * labels, 2)  # rounding creates ties
    det = det_curve(scores, labels)
    fpr, tpr, thr = roc_curve(labels, scores, drop_intermediate=False)
    # sklearn: thresholds descending with a leading inf; ours ascending with a trailing inf
    np.testing.assert_allclose(det.thresholds[:-1][::-1], thr[1:])
    np.testing.assert_allclose(det.p_fa[:-1][::-1], fpr[1:])
    np.testing.assert_allclose(det.p_miss[:-1][::-1], 1 - tpr[1:])


def test_min_dcf_matches_naive_threshold_sweep():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 300)
    scores = rng.normal(size=300) + labels
    tar, non = scores[labels == 1], scores[labels == 0]
    for p in (0.01, 0.05, 0.3):
        best = min(
            (p * np.mean(tar < t) + (1 - p) * np.mean(non >= t)) / min(p, 1 - p)
            for t in list(scores) + [np.inf]
        )
        assert compute_metrics(scores, labels, p_targets=[p]).dcf(p).value == pytest.approx(best)


def test_eer_of_gaussians_matches_theory():
    rng = np.random.default_rng(2)
    d = 2.0
    tar, non = rng.normal(d, 1, 100_000), rng.normal(0, 1, 100_000)
    m = compute_metrics(np.concatenate([tar, non]), np.r_[np.ones(tar.size), np.zeros(non.size)])
    expected = 0.5 * (1 + erf(-d / 2 / sqrt(2)))  # Phi(-d/2)
    assert m.eer == pytest.approx(expected, abs=0.004)
    assert m.eer_threshold == pytest.approx(d / 2, abs=0.03)


def test_one_million_trials_is_fast():
    rng = np.random.default_rng(3)
    labels = rng.random(1_000_000) < 0.01
    scores = rng.normal(size=labels.size) + 2 * labels
    t0 = time.perf_counter()
    m = compute_metrics(scores, labels)
    elapsed = time.perf_counter() - t0
    assert elapsed < 10.0, f"1e6 trials took {elapsed:.1f} s"
    assert 0.1 < m.eer < 0.2


@pytest.mark.parametrize(
    "scores,labels,match",
    [
        ([0.1, 0.2], [0, 0], "no target"),
        ([0.1, 0.2], [1, 1], "no non-target"),
        ([0.1, np.nan], [1, 0], "non-finite"),
        ([0.1, np.inf], [1, 0], "non-finite"),
        ([0.1, 0.2, 0.3], [1, 0], "length mismatch"),
        ([0.1, 0.2], [1, 2], "labels must be 0"),
    ],
)
def test_bad_input_is_a_clear_error(scores, labels, match):
    with pytest.raises(ValueError, match=match):
        compute_metrics(scores, labels)


def test_bad_p_target():
    with pytest.raises(ValueError, match="p_target"):
        compute_metrics([1.0, 0.0], [1, 0], p_targets=[1.0])


def test_cllr_and_actual_dcf_hand_values():
    # LLR 0 everywhere carries no information: Cllr = 1 bit exactly
    assert cllr([0.0, 0.0, 0.0], [1, 0, 0]) == pytest.approx(1.0)
    # one target at llr=ln 3 and one non-target at -ln 3: both cost log2(1 + 1/3)
    assert cllr([np.log(3), -np.log(3)], [1, 0]) == pytest.approx(np.log2(4 / 3))
    assert bayes_threshold(0.01) == pytest.approx(np.log(99))
    # p=0.05 -> threshold ln 19 = 2.944: target 3.0 accepted, target 2.0 missed, non-target 5.0 false alarm
    llr, lab = [3.0, 2.0, 5.0, -1.0], [1, 1, 0, 0]
    assert actual_dcf(llr, lab, 0.05) == pytest.approx((0.05 * 0.5 + 0.95 * 0.5) / 0.05)


def test_eer_interval_covers_the_true_eer_about_95_percent_of_the_time():
    from scipy.stats import norm

    from spkpeft.eval.metrics import eer_confidence_interval

    rng = np.random.default_rng(0)
    true_eer = norm.cdf(-1.0)  # targets N(2, 1), non-targets N(0, 1): they cross at 1
    hits = 0
    for _ in range(300):
        s = np.concatenate([rng.normal(2, 1, 200), rng.normal(0, 1, 800)])
        lab = np.r_[np.ones(200), np.zeros(800)]
        lo, hi = eer_confidence_interval(compute_metrics(s, lab).eer, 200, 800)
        hits += lo <= true_eer <= hi
    assert 0.88 <= hits / 300 <= 0.995
    lo, hi = eer_confidence_interval(0.0, 6, 6)
    assert lo == 0.0 and hi > 0.1  # zero errors on few trials is not certainty

"""Quality-aware calibration: better Cllr on duration-dependent synthetic scores, features, JSON, sampling."""

from __future__ import annotations

import numpy as np
import pytest

from spkpeft.data.trials import Trial
from spkpeft.eval.calibration import (
    Calibrator,
    fit_calibrator,
    quality_features,
    sample_cohort_trials,
    train_calibration,
)
from spkpeft.eval.metrics import actual_dcf, cllr, compute_metrics
from spkpeft.eval.scoring import cosine_scores
from spkpeft.eval.table import EmbeddingTable


def _synthetic(n: int, rng: np.random.Generator):
    """Scores shifted by the shorter side's log duration (as short utterances score lower)."""
    labels = rng.integers(0, 2, n)
    log_dur = np.log(rng.uniform(1.0, 20.0, size=(n, 2)))
    short = log_dur.min(axis=1)
    scores = rng.normal(0.0, 0.1, n) + 0.3 * labels + 0.12 * short
    norms = rng.uniform(10, 20, size=(n, 2))
    feats = np.column_stack([scores, short, log_dur.max(axis=1), norms.min(axis=1), norms.max(axis=1)])
    return feats, labels


def test_quality_calibration_beats_score_only():
    rng = np.random.default_rng(0)
    train_f, train_y = _synthetic(20_000, rng)
    test_f, test_y = _synthetic(20_000, rng)
    full = fit_calibrator(train_f, train_y)
    score_only = fit_calibrator(train_f[:, :1], train_y, feature_names=("score",))
    c_full = cllr(full.llr(test_f), test_y)
    c_score = cllr(score_only.llr(test_f[:, :1]), test_y)
    c_raw = cllr(test_f[:, 0], test_y)  # raw score read as an LLR: badly calibrated
    assert c_full < c_score - 0.02, (c_full, c_score)
    assert c_score < c_raw
    # calibrated LLRs make the Bayes threshold nearly optimal at p=0.05
    m = compute_metrics(full.llr(test_f), test_y)
    assert actual_dcf(full.llr(test_f), test_y, 0.05) < m.dcf(0.05).value + 0.1
    # the norm features are noise here and get much smaller weight than the duration feature
    assert abs(full.coef[1]) > 5 * max(abs(full.coef[3]), abs(full.coef[4]))


def test_json_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    f, y = _synthetic(2000, rng)
    cal = fit_calibrator(f, y, info={"scores": "asnorm"})
    cal.save(tmp_path / "calibration.json")
    back = Calibrator.load(tmp_path / "calibration.json")
    assert back.feature_names == cal.feature_names
    assert back.info["scores"] == "asnorm"
    np.testing.assert_allclose(back.llr(f), cal.llr(f))


def test_load_rejects_bad_files(tmp_path):
    p = tmp_path / "c.json"
    p.write_text('{"feature_names": ["score", "bogus"], "coef": [1, 2], "intercept": 0, "version": 1}')
    with pytest.raises(ValueError, match="bogus"):
        Calibrator.load(p)
    p.write_text('{"feature_names": ["score"], "coef": [1], "intercept": 0, "version": 99}')
    with pytest.raises(ValueError, match="version 99"):
        Calibrator.load(p)
    p.write_text("not json")
    with pytest.raises(ValueError, match="not a calibration file"):
        Calibrator.load(p)


def test_quality_features_by_hand():
    table = EmbeddingTable(["a", "b"], np.array([[3.0, 4.0], [0.0, 2.0]]), durations=[2.0, 8.0])
    trials = [Trial("a", "b", 1), Trial("b", "b", 0)]
    names = ("score", "log_dur_enroll", "log_dur_max", "norm_min", "norm_test")
    f = quality_features(table, trials, np.array([0.5, 1.0]), names)
    want = [[0.5, np.log(2), np.log(8), 2.0, 2.0], [1.0, np.log(8), np.log(8), 2.0, 2.0]]
    np.testing.assert_allclose(f, want)
    with pytest.raises(ValueError, match="needs durations"):
        quality_features(EmbeddingTable(["a", "b"], table.vectors), trials, np.zeros(2))


def test_sample_cohort_trials_is_seeded_and_labelled():
    ids = [f"u{i}" for i in range(40)]
    utt2spk = {u: f"s{i % 7}" for i, u in enumerate(ids)}
    trials = sample_cohort_trials(ids, utt2spk, n_trials=1000, seed=3)
    assert len(trials) == 1000
    assert sum(t.label for t in trials) == 500
    for t in trials:
        assert (utt2spk[t.enroll] == utt2spk[t.test]) == bool(t.label)
        if t.label:
            assert t.enroll != t.test
    assert trials == sample_cohort_trials(ids, utt2spk, n_trials=1000, seed=3)
    assert trials != sample_cohort_trials(ids, utt2spk, n_trials=1000, seed=4)
    with pytest.raises(ValueError, match="at least 2 speakers"):
        sample_cohort_trials(ids, {u: "x" for u in ids})


def test_train_calibration_end_to_end():
    rng = np.random.default_rng(5)
    n_spk, per = 20, 6
    centres = rng.normal(size=(n_spk, 16))
    ids = [f"s{s}/u{k}" for s in range(n_spk) for k in range(per)]
    dur = rng.uniform(1, 10, len(ids))
    # shorter utterances are noisier
    vec = np.repeat(centres, per, axis=0) + rng.normal(size=(len(ids), 16)) * (2.0 / np.sqrt(dur))[:, None]
    table = EmbeddingTable(ids, vec, dur)
    utt2spk = {u: u.split("/")[0] for u in ids}
    cal = train_calibration(table, utt2spk, lambda t, tr: cosine_scores(t, tr), n_trials=4000)
    assert cal.info["n_target"] == 2000
    trials = sample_cohort_trials(ids, utt2spk, 2000, seed=9)
    raw = cosine_scores(table, trials)
    labels = np.array([t.label for t in trials])
    assert cllr(cal.apply(table, trials, raw), labels) < 0.5

"""Cosine scoring and AS-norm against naive per-trial loops on small random data."""

from __future__ import annotations

import numpy as np
import pytest

from spkpeft.data.trials import Trial
from spkpeft.eval.asnorm import asnorm_scores, build_cohort
from spkpeft.eval.scoring import cosine_scores
from spkpeft.eval.table import EmbeddingTable, trial_labels


def _cos(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    ids = [f"u{i}" for i in range(30)]
    table = EmbeddingTable(ids, rng.normal(size=(30, 8)) + 0.5)
    trials = [Trial(ids[rng.integers(30)], ids[rng.integers(30)], int(rng.integers(2))) for _ in range(50)]
    train_ids = [f"t{i}" for i in range(60)]
    train = EmbeddingTable(train_ids, rng.normal(size=(60, 8)) + 0.5)
    utt2spk = {u: f"s{i % 12}" for i, u in enumerate(train_ids)}
    return table, trials, train, utt2spk


def test_cosine_matches_naive(data):
    table, trials, train, _ = data
    vec = dict(zip(table.ids, table.vectors))
    got = cosine_scores(table, trials)
    want = [_cos(vec[t.enroll], vec[t.test]) for t in trials]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    mu = train.mean()
    got_c = cosine_scores(table, trials, mean=mu)
    want_c = [_cos(vec[t.enroll] - mu, vec[t.test] - mu) for t in trials]
    np.testing.assert_allclose(got_c, want_c, rtol=1e-5)
    assert not np.allclose(got, got_c)  # centring matters on this offset data


def test_unknown_trial_id_lists_missing(data):
    table, trials, _, _ = data
    bad = trials + [Trial("nobody", "u1", 1), Trial("u2", "ghost", 0)]
    with pytest.raises(ValueError, match=r"2 utterance.*first missing: \['nobody', 'ghost'\]"):
        cosine_scores(table, bad)


def test_trial_labels_require_labels():
    with pytest.raises(ValueError, match="no label"):
        trial_labels([Trial("a", "b", 1), Trial("a", "c", None)])


def test_cohort_is_per_speaker_mean(data):
    _, _, train, utt2spk = data
    cohort = build_cohort(train, utt2spk, subtract_mean=True)
    assert len(cohort) == 12
    mu = train.mean()
    x = {u: (v - mu) / np.linalg.norm(v - mu) for u, v in zip(train.ids, train.vectors)}
    members = [x[u] for u in train.ids if utt2spk[u] == "s3"]
    want = np.mean(members, axis=0)
    want /= np.linalg.norm(want)
    np.testing.assert_allclose(cohort.vectors[cohort.speakers.index("s3")], want, rtol=1e-5, atol=1e-6)


def _naive_asnorm(table, trials, cohort, k, exclude=None):
    vec = {u: v - cohort.mean for u, v in zip(table.ids, table.vectors)}

    def stats(u):
        sc = [
            _cos(vec[u], c)
            for s, c in zip(cohort.speakers, cohort.vectors)
            if exclude is None or exclude.get(u) != s
        ]
        top = sorted(sc, reverse=True)[:k]
        return np.mean(top), np.std(top)

    out = []
    for t in trials:
        s = _cos(vec[t.enroll], vec[t.test])
        (me, se), (mt, st) = stats(t.enroll), stats(t.test)
        out.append(0.5 * ((s - me) / se + (s - mt) / st))
    return np.array(out)


@pytest.mark.parametrize("k", [3, 7, 12])
def test_asnorm_matches_naive_loop(data, k):
    table, trials, train, utt2spk = data
    cohort = build_cohort(train, utt2spk)
    got = asnorm_scores(table, trials, cohort, top_k=k)
    np.testing.assert_allclose(got, _naive_asnorm(table, trials, cohort, k), rtol=1e-4, atol=1e-5)
    raw = cosine_scores(table, trials, cohort.mean)
    np.testing.assert_allclose(asnorm_scores(table, trials, cohort, top_k=k, raw=raw), got)


def test_asnorm_excludes_own_speaker(data):
    _, _, train, utt2spk = data
    cohort = build_cohort(train, utt2spk)
    trials = [Trial(train.ids[i], train.ids[i + 12], 1) for i in range(10)]  # same speaker (i % 12)
    got = asnorm_scores(train, trials, cohort, top_k=4, exclude_own_speaker=utt2spk)
    want = _naive_asnorm(train, trials, cohort, 4, exclude=utt2spk)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert not np.allclose(got, asnorm_scores(train, trials, cohort, top_k=4))


def test_asnorm_chunking_is_exact(data, monkeypatch):
    import spkpeft.eval.asnorm as mod

    table, trials, train, utt2spk = data
    cohort = build_cohort(train, utt2spk)
    full = asnorm_scores(table, trials, cohort, top_k=5)
    monkeypatch.setattr(mod, "_BLOCK_ELEMENTS", 12 * 3)  # 3 utterances per chunk
    np.testing.assert_allclose(asnorm_scores(table, trials, cohort, top_k=5), full)


def test_asnorm_large_top_k_is_clipped(data):
    table, trials, train, utt2spk = data
    cohort = build_cohort(train, utt2spk)
    np.testing.assert_allclose(
        asnorm_scores(table, trials, cohort, top_k=300), asnorm_scores(table, trials, cohort, top_k=12)
    )

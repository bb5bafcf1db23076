"""A classical reference system: mean MFCC per utterance + cosine scoring, and its EER.

Used to check that the synthetic corpus is neither trivial nor impossible; also a sanity floor for
any real corpus (a trained model must beat it by far).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from sklearn.metrics import roc_curve

from spkpeft.data.manifest import Utterance
from spkpeft.data.trials import Trial, check_trials


def mean_mfcc(utterances: Sequence[Utterance], num_ceps: int = 20) -> dict[str, np.ndarray]:
    """{id: (num_ceps - 1,) mean of MFCC c1..c(n-1) over frames} (c0, the energy, is dropped)."""
    from lhotse.features.kaldi.layers import Wav2MFCC

    mfcc = Wav2MFCC(num_ceps=num_ceps, num_filters=40)
    out = {}
    with torch.no_grad():
        for u in utterances:
            feats = mfcc(torch.from_numpy(u.load())[None])[0]  # (T, num_ceps)
            out[u.id] = feats[:, 1:].mean(0).numpy()
    return out


def cosine_scores(emb: dict[str, np.ndarray], trials: Sequence[Trial]) -> np.ndarray:
    """(N,) cosine similarity of each trial's enrolment and test vectors."""
    check_trials(trials, emb)
    a = np.stack([emb[t.enroll] for t in trials])
    b = np.stack([emb[t.test] for t in trials])
    return np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


def equal_error_rate(scores: np.ndarray, labels: np.ndarray) -> float:
    """EER in [0, 1]: where the false-accept and false-reject rates cross (ROC interpolation)."""
    if len(set(labels.tolist())) != 2:
        raise ValueError("EER needs both target (1) and non-target (0) trials")
    fpr, tpr, _ = roc_curve(labels, scores)
    fnr = 1 - tpr
    i = int(np.nanargmin(np.abs(fnr - fpr)))
    return float((fpr[i] + fnr[i]) / 2)


def mfcc_cosine_eer(utterances: Sequence[Utterance], trials: Sequence[Trial]) -> float:
    """EER (0..1) of mean-MFCC + cosine on labelled ``trials`` over ``utterances``."""
    used = {t.enroll for t in trials} | {t.test for t in trials}
    emb = mean_mfcc([u for u in utterances if u.id in used])
    labels = np.array([t.label for t in trials])
    return equal_error_rate(cosine_scores(emb, trials), labels)

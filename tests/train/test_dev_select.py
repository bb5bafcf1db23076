"""Dev-set model selection and early stopping (train.dev_*)."""

from __future__ import annotations

import itertools
import json

import pytest
from safetensors.torch import load_file

from spkpeft.config import ConfigError
from spkpeft.data.manifest import load_utterances
from spkpeft.data.trials import Trial, write_trials
from spkpeft.train.experiment import load_experiment
from spkpeft.train.trainer import train


@pytest.fixture
def dev_trials(tiny_corpus, tmp_path):
    utts = load_utterances(tiny_corpus)
    trials = [Trial(a.id, b.id, int(a.speaker == b.speaker)) for a, b in itertools.combinations(utts, 2)]
    path = tmp_path / "dev_trials.txt"
    write_trials(trials, path)
    return path


def _run(tiny_yaml, tiny_overrides, tiny_corpus, dev_trials, patience):
    cfg = load_experiment(
        tiny_yaml,
        [
            *tiny_overrides,
            "train.epochs=3",
            "train.checkpoint_every=0",
            f"train.dev_manifest={tiny_corpus}",
            f"train.dev_trials={dev_trials}",
            "train.dev_every=1",
            f"train.dev_patience={patience}",
        ],
    )
    run = train(cfg)
    return run, json.loads((run / "dev" / "state.json").read_text())


def test_dev_best_state_is_the_saved_model(tiny_yaml, tiny_overrides, tiny_corpus, dev_trials):
    run, state = _run(tiny_yaml, tiny_overrides, tiny_corpus, dev_trials, patience=0)
    history = state["history"]
    assert [h["step"] for h in history] == list(range(1, 10))  # 12 utterances / batch 4 = 3 steps x 3 epochs
    best = min(history, key=lambda h: h["eer"])  # the first of equal minima is kept
    assert state["best_step"] == best["step"] and state["best_eer"] == best["eer"]
    saved = load_file(str(run / "model" / "backend.safetensors"))
    kept = load_file(str(run / "dev" / "best.safetensors"))
    assert all((kept[f"backend/{k}"] == v).all() for k, v in saved.items())


def test_dev_patience_stops_training(tiny_yaml, tiny_overrides, tiny_corpus, dev_trials):
    run, state = _run(tiny_yaml, tiny_overrides, tiny_corpus, dev_trials, patience=1)
    history = state["history"]
    assert len(history) < 9  # stopped before the end
    assert history[-1]["eer"] >= state["best_eer"] and state["evaluations_since_best"] == 1
    assert all(h["eer"] < p["eer"] for p, h in zip(history, history[1:-1]))  # improved until the stop


def test_dev_every_needs_manifest_and_trials(tiny_yaml, tiny_overrides):
    with pytest.raises(ConfigError, match="train.dev_manifest"):
        load_experiment(tiny_yaml, [*tiny_overrides, "train.dev_every=5"])

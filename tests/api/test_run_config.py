"""The eval section of the experiment config, trial list specs and the per-speaker cohort subsample."""

from __future__ import annotations

from pathlib import Path

import pytest

from spkpeft.data.manifest import Utterance
from spkpeft.eval.config import parse_trial_specs
from spkpeft.eval.run import sample_per_speaker
from spkpeft.train.experiment import load_experiment


def test_eval_section_parses_with_scoring_options_and_data_fields() -> None:
    cfg = load_experiment(
        "tiny", ["eval.trials=[O=a.txt, b/hard.txt]", "eval.top_k=600", "eval.manifest=t.jsonl.gz"]
    )
    assert cfg.eval.manifest == "t.jsonl.gz" and cfg.eval.scoring().top_k == 600
    assert parse_trial_specs(cfg.eval.trials) == {"O": Path("a.txt"), "hard": Path("b/hard.txt")}
    with pytest.raises(ValueError, match="two trial lists named"):
        parse_trial_specs(["x/t.txt", "y/t.txt"])
    with pytest.raises(ValueError, match="unknown config key"):
        load_experiment("tiny", ["eval.topk=3"])


def test_cohort_subsample_caps_each_speaker_reproducibly() -> None:
    utts = [Utterance(f"s{s}/{i}", "x.wav", 0.0, 1.0, f"s{s}") for s in range(3) for i in range(2 + 3 * s)]
    got = sample_per_speaker(utts, cap=3, seed=1)
    counts = {s: sum(u.speaker == s for u in got) for s in ("s0", "s1", "s2")}
    assert counts == {"s0": 2, "s1": 3, "s2": 3}
    assert got == sample_per_speaker(utts, cap=3, seed=1)  # seeded
    assert [utts.index(u) for u in got] == sorted(utts.index(u) for u in got)  # manifest order kept
    assert sample_per_speaker(utts, cap=0) == utts

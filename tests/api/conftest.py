"""A tiny tone corpus (train + test + trials), a LoRA run trained on it, and that run evaluated."""

from __future__ import annotations

from pathlib import Path

import pytest
from dummies import Tones, tone_corpus

from spkpeft.data.make_trials import make_trials
from spkpeft.data.trials import write_trials

VOICES = Tones(base_hz=110, step_hz=70, noise=0.05, overtone=0.1, seed_stride=100)


def _corpus(root: Path, name: str, speakers: range, durations: tuple[float, ...]) -> Path:
    """``root/name/spkS/uttN.wav`` for S in ``speakers`` (each a tone of :data:`VOICES`), manifest
    ``root/name.jsonl.gz``."""
    layout = {f"spk{s}": durations for s in speakers}
    return tone_corpus(root / name, layout, root / f"{name}.jsonl.gz", VOICES, first_index=speakers.start)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """train: 5 speakers x 3 utterances; test: 3 other speakers x 3; trials: 6 target + 6 non-target."""
    root = tmp_path_factory.mktemp("api_corpus")
    train = _corpus(root, "train", range(5), (0.6, 0.8, 1.0))
    test = _corpus(root, "test", range(5, 8), (0.7, 0.9, 1.1))
    by_spk = {f"spk{s}": [f"spk{s}/utt{n}" for n in range(3)] for s in range(5, 8)}
    trials = root / "trials.txt"
    write_trials(make_trials(by_spk, 6, 6, seed=0), trials)
    return {"root": root, "train": train, "test": test, "trials": trials}


@pytest.fixture(scope="session")
def lora_run(corpus: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny LoRA run (2-layer WavLM, hidden 32) trained for a few steps; not evaluated."""
    from spkpeft.train.experiment import load_experiment
    from spkpeft.train.trainer import train

    out = tmp_path_factory.mktemp("api_runs") / "lora"
    cfg = load_experiment(
        "tiny",
        [
            f"data.train_manifest={corpus['train']}",
            f"train.output_dir={out}",
            "method={name: lora, r: 2}",
            "train.epochs=1",
            "train.checkpoint_every=0",
            f"eval.manifest={corpus['test']}",
            f"eval.trials=[vox={corpus['trials']}]",
            "eval.calibration_trials=2000",
        ],
    )
    return train(cfg)


@pytest.fixture(scope="session")
def evaluated_run(lora_run: Path) -> Path:
    """``lora_run`` after ``spkpeft eval`` (report, calibration, scoring state written into it)."""
    from spkpeft.cli import main

    assert main(["eval", str(lora_run)]) == 0
    return lora_run

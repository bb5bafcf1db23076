"""A tiny speaker corpus (tones per speaker) and the tiny experiment config pointing at it."""

from __future__ import annotations

from pathlib import Path

import pytest
from dummies import Tones, tone_corpus

CONFIGS = Path(__file__).resolve().parents[2] / "src" / "spkpeft" / "configs"
TINY = CONFIGS / "tiny.yaml"


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 speakers x 3 utterances of 0.6-1 s (one tone per speaker); returns the manifest path."""
    root = tmp_path_factory.mktemp("corpus")
    layout = {f"spk{s}": (0.6, 0.8, 1.0) for s in range(4)}
    voices = Tones(base_hz=150, step_hz=120, noise=0.05, seed_stride=10)
    return tone_corpus(root, layout, root / "train.jsonl.gz", voices)


@pytest.fixture
def tiny_overrides(tiny_corpus: Path, tmp_path: Path) -> list[str]:
    return [f"data.train_manifest={tiny_corpus}", f"train.output_dir={tmp_path / 'run'}"]


@pytest.fixture
def tiny_yaml() -> Path:
    return TINY

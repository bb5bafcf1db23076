"""Fixtures for the target-speaker ASR tests: a tiny local Whisper and a small synthetic mixture set."""

from __future__ import annotations

from pathlib import Path

import pytest
import transformers

transformers.logging.set_verbosity_error()


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from spkpeft.tsasr.tiny import build_tiny_whisper

    return build_tiny_whisper(tmp_path_factory.mktemp("tiny-whisper"), chunk_seconds=2)


@pytest.fixture(scope="session")
def unit_corpus(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    from spkpeft.tsasr.units import make_unit_corpus

    return make_unit_corpus(tmp_path_factory.mktemp("units"), speakers=4, utterances=4, seed=3, max_units=1)


@pytest.fixture(scope="session")
def mixtures(tmp_path_factory: pytest.TempPathFactory, unit_corpus) -> Path:  # noqa: ANN001
    from spkpeft.tsasr.simulate import SimulateConfig, simulate_mixtures

    out = tmp_path_factory.mktemp("mix")
    simulate_mixtures(unit_corpus, out, SimulateConfig(mixtures=8, seed=1, max_seconds=1.8))
    return out / "mixtures.jsonl.gz"

"""``speaker.source: verifier``: enrolment embeddings from a saved spkpeft speaker model, end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spkpeft.api import SpeakerVerifier
from spkpeft.model import save_model
from spkpeft.train.experiment import build_model, load_experiment
from spkpeft.tsasr.config import SpeakerSection, load_config
from spkpeft.tsasr.data import MixtureData, build_source, collate, read_audio


@pytest.fixture(scope="module")
def speaker_model(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    model = build_model(load_experiment("tiny", []))
    return save_model(model, tmp_path_factory.mktemp("spk") / "model")


def test_verifier_source_gives_the_speaker_models_embeddings(speaker_model, mixtures) -> None:  # noqa: ANN001
    source = build_source(SpeakerSection(source="verifier", path=str(speaker_model)))
    data = MixtureData(mixtures, source)
    cut = data.cuts[0]
    _, _, emb, _ = data[0]
    direct = SpeakerVerifier.from_pretrained(speaker_model, device="cpu").embed(cut.custom["enroll_path"])
    assert emb.shape == direct.shape and data.speaker_dim() == direct.shape[0]
    np.testing.assert_allclose(emb, direct, rtol=1e-4, atol=1e-5)  # the enrolment, not the mixture
    verifier = SpeakerVerifier.from_pretrained(speaker_model, device="cpu")
    mixed = verifier.embed(*read_audio(cut.recording.sources[0].source))
    assert not np.allclose(emb, mixed, atol=1e-3)


def test_tsasr_trains_on_verifier_embeddings(speaker_model, mixtures, tiny_whisper, tmp_path) -> None:  # noqa: ANN001
    from spkpeft.tsasr.run import load_run
    from spkpeft.tsasr.train import train

    cfg = load_config(None, data={
        "model": {"whisper": str(tiny_whisper), "prompts": {"length": 2}},
        "speaker": {"source": "verifier", "path": str(speaker_model)},
        "data": {"train": str(mixtures)},
        "optim": {"batch_size": 4, "max_steps": 2, "lr": 1e-3},
    })  # fmt: skip
    run = train(cfg, tmp_path / "run")
    model, saved = load_run(run)
    assert saved.speaker.source == "verifier" and saved.speaker.path == str(speaker_model)
    data = MixtureData(mixtures, build_source(saved.speaker))
    assert model.prompts.speaker_proj.in_features == data.speaker_dim()
    batch = collate(model, [data[i] for i in range(4)])
    args = batch["features"], batch["decoder_input_ids"], batch["labels"]
    with torch.no_grad():
        enrolled = model(args[0], batch["speaker"], *args[1:])
        other = model(args[0], torch.zeros_like(batch["speaker"]), *args[1:])
    assert torch.isfinite(enrolled) and abs(enrolled - other) > 1e-4  # the slot carries the embedding


def test_verifier_source_needs_a_path() -> None:
    with pytest.raises(ValueError, match="speaker.path"):
        build_source(SpeakerSection(source="verifier"))

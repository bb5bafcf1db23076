from __future__ import annotations

import numpy as np
import pytest
import torch

from spkpeft.data.augment import NoiseAugmenter, RirAugmenter, reverberate
from spkpeft.data.config import DataConfig
from spkpeft.data.manifest import CutSet, load_utterances, make_cut, save_manifest
from spkpeft.data.train_dataset import TrainDataset


@pytest.fixture
def noise_manifest(tmp_path, write_wav):
    cuts = [
        make_cut(write_wav(tmp_path / "musan" / "noise" / "n0.wav", 1.0), "noise-0", category="noise"),
        make_cut(write_wav(tmp_path / "musan" / "speech" / "s0.wav", 3.0), "speech-0", category="speech"),
    ]
    return save_manifest(CutSet.from_cuts(cuts), tmp_path / "musan.jsonl.gz")


def test_noise_added_at_snr_in_range(noise_manifest):
    cfg = DataConfig(
        noise_manifest=str(noise_manifest),
        noise_prob=1.0,
        noise_snr_noise=[5.0, 5.0],
        noise_snr_babble=[10.0, 10.0],
    )
    aug = NoiseAugmenter(load_utterances(noise_manifest, need_speaker=False), cfg)
    assert aug.kinds == ["noise", "babble"]  # no music in this manifest
    x = np.sin(np.linspace(0, 2000, 16000)).astype(np.float32) * 0.1
    snrs = set()
    for seed in range(6):
        y = aug(x, np.random.default_rng(seed))
        snr = 10 * np.log10(np.mean(x**2) / np.mean((y - x) ** 2))
        snrs.add(round(float(snr)))
    assert snrs == {5, 10}


def test_reverberate_delta_is_identity_and_room_smears():
    x = np.random.default_rng(0).normal(0, 0.1, 4000).astype(np.float32)
    delta = np.zeros(800, dtype=np.float32)
    delta[30] = 1.0
    assert np.allclose(reverberate(x, delta), x, atol=1e-5)
    room = (np.exp(-np.arange(3200) / 800) * np.random.default_rng(1).normal(size=3200)).astype(np.float32)
    y = reverberate(x, room)
    assert y.shape == x.shape and np.corrcoef(x, y)[0, 1] < 0.9
    assert np.mean(y**2) == pytest.approx(np.mean(x**2), rel=1e-3)


def test_dataset_with_augmentation_is_deterministic(tiny_manifest, noise_manifest, tmp_path, write_wav):
    rir = make_cut(write_wav(tmp_path / "rir" / "r.wav", 0.3), "rir-0", category="rir")
    rir_m = save_manifest(CutSet.from_cuts([rir]), tmp_path / "rir.jsonl.gz")
    cfg = DataConfig(
        train_manifest=str(tiny_manifest),
        crop_seconds=1.0,
        noise_manifest=str(noise_manifest),
        noise_prob=1.0,
        rir_manifest=str(rir_m),
        rir_prob=1.0,
        seed=4,
    )
    clean = TrainDataset(DataConfig(train_manifest=str(tiny_manifest), crop_seconds=1.0, seed=4))
    a, b = TrainDataset(cfg), TrainDataset(cfg)
    assert isinstance(a.rir, RirAugmenter)
    assert torch.equal(a[5]["wav"], b[5]["wav"])
    assert not torch.allclose(a[5]["wav"], clean[5]["wav"], atol=1e-3)
    assert a[5]["label"] == clean[5]["label"]

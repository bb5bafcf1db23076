from __future__ import annotations

import numpy as np
import pytest

from spkpeft.data.config import SAMPLE_RATE, DataConfig
from spkpeft.data.simulated_augment import SimulatedRooms, add_coloured_noise, band_limit, coloured_noise


def _tone(seconds=1.0, hz=440.0):
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.1 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _band_power(x, lo, hi):
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
    return float(spec[(f >= lo) & (f < hi)].sum())


def test_noise_snr_and_colour():
    x = _tone()
    for seed in range(5):
        y = add_coloured_noise(x, (12.0, 12.0), np.random.default_rng(seed))
        snr = 10 * np.log10(np.mean(x**2) / np.mean((y - x) ** 2))
        assert abs(snr - 12.0) < 0.2
    rng = np.random.default_rng(0)
    white, brown = coloured_noise(32000, 0.0, rng), coloured_noise(32000, 2.0, rng)
    # brown noise puts far more of its power below 500 Hz than white noise does
    low = [_band_power(n, 20, 500) / _band_power(n, 20, 8000) for n in (white, brown)]
    assert low[1] > 5 * low[0]


def test_band_limit_removes_high_band_and_keeps_length():
    rng = np.random.default_rng(1)
    x = coloured_noise(SAMPLE_RATE, 0.0, rng).astype(np.float32) * 0.1
    y = band_limit(x, (3400.0, 3400.0), np.random.default_rng(0))
    assert y.shape == x.shape and y.dtype == np.float32
    assert _band_power(y, 4500, 8000) < 1e-3 * _band_power(x, 4500, 8000)
    assert _band_power(y, 300, 3000) > 0.8 * _band_power(x, 300, 3000)


def test_simulated_rooms_seeded_and_reverberant():
    pytest.importorskip("pyroomacoustics", reason="pyroomacoustics not installed (spkpeft[augment])")
    a, b = SimulatedRooms(4, seed=3), SimulatedRooms(4, seed=3)
    assert all(np.array_equal(p, q) for p, q in zip(a.rirs, b.rirs))
    assert not np.array_equal(a.rirs[0], SimulatedRooms(1, seed=4).rirs[0])
    # an impulse comes out smeared: energy after the direct path
    impulse = np.zeros(8000, dtype=np.float32)
    impulse[100] = 1.0
    y = a(impulse, np.random.default_rng(0))
    tail = float(np.sum(y[200:] ** 2))
    assert tail > 0.05 * float(np.sum(y**2))


def test_dataset_applies_corpus_free_augmentation(tmp_path, write_wav):
    from spkpeft.data.manifest import CutSet, make_cut, save_manifest
    from spkpeft.data.train_dataset import TrainDataset

    cuts = [make_cut(write_wav(tmp_path / f"s{i}.wav", 2.0), f"u{i}", speaker=f"spk{i}") for i in range(2)]
    manifest = save_manifest(CutSet.from_cuts(cuts), tmp_path / "m.jsonl.gz")
    plain = TrainDataset(DataConfig(train_manifest=str(manifest), crop_seconds=1.0))
    aug = TrainDataset(
        DataConfig(train_manifest=str(manifest), crop_seconds=1.0, sim_noise_prob=1.0, bandlimit_prob=1.0)
    )
    x, y = plain[0]["wav"].numpy(), aug[0]["wav"].numpy()
    assert x.shape == y.shape and not np.allclose(x, y)
    assert np.array_equal(aug[0]["wav"].numpy(), y)  # a crop is a function of (seed, epoch, index)


@pytest.mark.parametrize(
    "field,value", [("sim_noise_prob", 1.5), ("sim_noise_snr", [20.0, 5.0]), ("sim_rir_rooms", 0)]
)
def test_bad_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"data.{field}"):
        DataConfig(**{field: value})

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from spkpeft.data.audio import AudioError, read_audio, to_mono_16k


def test_stereo_44k_ogg_to_mono_16k(tmp_path):
    sr = 44100
    t = np.arange(sr) / sr
    left, right = 0.5 * np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 440 * t + 0.1)
    for ext in ("wav", "flac", "ogg"):
        p = tmp_path / f"st.{ext}"
        sf.write(p, np.stack([left, right], 1), sr)
        x = read_audio(p)
        assert x.dtype == np.float32 and x.ndim == 1
        assert len(x) == pytest.approx(16000, abs=2)
        peak = np.argmax(np.abs(np.fft.rfft(x))) * 16000 / len(x)
        assert peak == pytest.approx(440, abs=2)
        assert np.abs(x).max() <= 1.0


def test_offset_duration_and_speed(tmp_path):
    p = tmp_path / "ramp.wav"
    sf.write(p, np.linspace(-0.5, 0.5, 32000), 16000, subtype="FLOAT")
    x = read_audio(p, start=1.0, duration=0.5)
    assert len(x) == 8000 and x[0] == pytest.approx(0.0, abs=1e-3)
    assert len(read_audio(p, duration=1.0, speed=1.1)) == pytest.approx(16000 / 1.1, abs=2)


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(AudioError, match="not found.*missing.wav"):
        read_audio(tmp_path / "missing.wav")
    bad = tmp_path / "corrupt.flac"
    bad.write_bytes(b"not audio at all" * 10)
    with pytest.raises(AudioError, match="corrupt.flac"):
        read_audio(bad)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0), 16000)
    with pytest.raises(AudioError, match="empty.*empty.wav"):
        read_audio(empty)


def test_reads_real_speech(real_speech):
    f = sorted((real_speech / "librispeech-test-other").rglob("*.flac"))[0]
    x = read_audio(f)
    assert len(x) > 16000 and 0.01 < np.abs(x).max() <= 1.0 and np.isfinite(x).all()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("sr,channels", [(16000, 1), (8000, 2)])
def test_non_finite_samples_are_an_error_naming_the_file(tmp_path, bad, sr, channels):
    x = np.full((sr, channels), 0.1, dtype=np.float32)
    x[sr // 2, 0] = bad
    p = tmp_path / "nan.wav"
    sf.write(p, x, sr, subtype="FLOAT")
    with pytest.raises(AudioError, match=rf"nan.wav has 1 NaN or infinite .*sample {sr // 2} \(0.500 s\)"):
        read_audio(p)
    with pytest.raises(AudioError, match="audio array has 1 NaN"):
        to_mono_16k(x, sr)


def test_non_finite_training_audio_is_skipped_naming_the_file(tiny_manifest, caplog):
    from spkpeft.data.config import DataConfig
    from spkpeft.data.manifest import load_utterances
    from spkpeft.data.train_dataset import TrainDataset

    utts = load_utterances(tiny_manifest)
    x, sr = sf.read(utts[1].path, dtype="float32")
    x[::7] = np.nan
    sf.write(utts[1].path, x, sr, subtype="FLOAT")
    item = TrainDataset(DataConfig(crop_seconds=0.5), utterances=utts)[1]
    assert item["id"] != utts[1].id and torch.isfinite(item["wav"]).all()
    assert "NaN or infinite" in caplog.text and utts[1].path in caplog.text

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from spkpeft.data.audio import AudioError, read_audio


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

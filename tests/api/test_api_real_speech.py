"""The verifier on real recordings: FLAC in, a 48 kHz stereo copy gives the same embedding, long input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from spkpeft.cli import main


def test_real_recordings_in_other_formats_and_rates(
    real_speech: Path, lora_run: Path, tmp_path: Path, capsys
) -> None:  # noqa: ANN001
    from spkpeft import SpeakerVerifier

    spk = sorted((real_speech / "librispeech-test-other").iterdir())[0]
    a, b = sorted(spk.glob("*.flac"))[:2]
    v = SpeakerVerifier.from_pretrained(lora_run / "model", device="cpu")
    mono, sr = sf.read(a, dtype="float32")
    assert sr == 16000
    wav48 = tmp_path / "a48k_stereo.wav"
    up = soxr.resample(mono, sr, 48000)
    sf.write(wav48, np.stack([up, 0.5 * up], axis=1), 48000, subtype="PCM_24")
    ref, got = v.embed(a), v.embed(wav48)
    assert float(ref @ got / (np.linalg.norm(ref) * np.linalg.norm(got))) > 0.99
    assert main(["-q", "verify", str(a), str(wav48), "--model", str(lora_run / "model"), "--json"]) == 0
    assert '"score"' in capsys.readouterr().out
    # a recording longer than a window is chunk-averaged, and stays close to the whole-utterance embedding
    v_short = SpeakerVerifier.from_pretrained(
        lora_run / "model", device="cpu", chunk_seconds=2.0, overlap_seconds=0.5
    )
    whole, chunked = v.embed(b), v_short.embed(b)
    assert sf.info(b).duration > 2.0 and not np.allclose(whole, chunked)
    assert float(whole @ chunked / (np.linalg.norm(whole) * np.linalg.norm(chunked))) > 0.9

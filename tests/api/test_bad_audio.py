"""Non-finite or too-short audio: an error naming the file (never an all-NaN embedding with exit 0, never
a NaN vector in the cache, never an index instead of a name)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from spkpeft.cli import main
from spkpeft.data.audio import AudioError
from spkpeft.data.manifest import CutSet, make_cut, save_manifest


def _wav(path: Path, seconds: float, nan: bool = False) -> Path:
    x = 0.1 * np.sin(np.arange(int(seconds * 16000)) / 5.0).astype(np.float32)
    if nan:
        x[100] = np.nan
    sf.write(path, x, 16000, subtype="FLOAT")
    return path


def test_nan_audio_is_an_error_naming_the_file(lora_run: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    from spkpeft import SpeakerVerifier

    bad = _wav(tmp_path / "bad.wav", 1.0, nan=True)
    assert main(["embed-file", str(bad), "--model", str(lora_run), "--out", str(tmp_path / "e.npy")]) == 1
    assert f"{bad} has 1 NaN" in capsys.readouterr().err and not (tmp_path / "e.npy").exists()
    v = SpeakerVerifier.from_pretrained(lora_run, device="cpu")
    with pytest.raises(AudioError, match="audio array has 16000 NaN"):
        v.embed(np.full(16000, np.nan, dtype=np.float32), sample_rate=16000)


def test_nan_audio_never_reaches_the_embedding_cache(lora_run: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    paths = [_wav(tmp_path / f"u{i}.wav", 0.8, nan=i == 1) for i in range(3)]
    manifest = save_manifest(
        CutSet.from_cuts([make_cut(p, p.stem, speaker="s") for p in paths]), tmp_path / "m.jsonl.gz"
    )
    out = tmp_path / "emb"
    assert main(["embed", str(lora_run), str(manifest), str(out)]) == 1
    assert f"{paths[1]} has 1 NaN" in capsys.readouterr().err
    assert not any("u1" in _read(shard) for shard in out.glob("emb-*.safetensors"))
    _wav(paths[1], 0.8)  # fixing the audio is enough
    assert main(["embed", str(lora_run), str(manifest), str(out)]) == 0
    vectors = {u: v for shard in out.glob("emb-*.safetensors") for u, v in _read(shard).items()}
    assert set(vectors) == {"u0", "u1", "u2"} and all(np.isfinite(v).all() for v in vectors.values())


def _manifest(paths: list[Path], tmp_path: Path) -> Path:
    return save_manifest(
        CutSet.from_cuts([make_cut(p, p.stem, speaker="s") for p in paths]), tmp_path / "m.jsonl.gz"
    )


def _read(shard: Path) -> dict:
    import json

    from safetensors import safe_open

    with safe_open(str(shard), framework="np") as f:
        return dict(zip(json.loads(f.metadata()["ids"]), f.get_tensor("embeddings")))


def test_too_short_audio_is_an_error_naming_the_file(lora_run: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    short, ok = _wav(tmp_path / "short.wav", 0.005), _wav(tmp_path / "ok.wav", 1.0)
    assert main(["verify", str(ok), str(short), "--model", str(lora_run)]) == 1
    err = capsys.readouterr().err
    assert f"audio file {short} (80 samples)" in err and "needs at least 165 samples = 10.3 ms" in err
    manifest = _manifest([ok, short], tmp_path)
    assert main(["embed", str(lora_run), str(manifest), str(tmp_path / "emb")]) == 1
    assert f"short ({short}) (80 samples)" in capsys.readouterr().err

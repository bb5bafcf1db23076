"""``spkpeft export``: a self-contained directory giving the run's embeddings and scores."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from spkpeft.cli import main


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(a))


def test_merged_lora_export_round_trip(evaluated_run: Path, corpus: dict, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    from spkpeft import SpeakerVerifier

    out = tmp_path / "export"
    assert main(["export", str(evaluated_run), str(out)]) == 0
    assert "merged" in capsys.readouterr().out
    meta = json.loads((out / "model.json").read_text())
    assert meta["method"] == "frozen" and meta["source_method"] == "lora"
    assert meta["backbone"]["name_or_path"] == "backbone"
    # a plain transformers model: no peft/LoRA tensors left in the merged backbone
    from safetensors import safe_open

    with safe_open(str(out / "backbone" / "model.safetensors"), framework="np") as f:
        assert not [k for k in f.keys() if "lora" in k]
    for name in (
        "scoring/calibration.json",
        "scoring/scoring.json",
        "scoring/cohort.safetensors",
        "README.md",
    ):
        assert (out / name).is_file(), name
    card = (out / "README.md").read_text()
    eer = json.loads((evaluated_run / "report.json").read_text())["trial_lists"]["vox"]["systems"]["cosine"]
    assert "lora" in card and f"{100 * eer['eer']:.3f}" in card and "log((1 - p) / p)" in card

    run_v = SpeakerVerifier.from_pretrained(evaluated_run, device="cpu")
    exp_v = SpeakerVerifier.from_pretrained(out, device="cpu")
    files = [corpus["root"] / "test" / f"spk{s}" / f"utt{n}.wav" for s, n in ((5, 0), (6, 2), (7, 1))]
    for f in files:
        assert _rel(run_v.embed(f), exp_v.embed(f)) < 1e-4
    r_run, r_exp = run_v.verify(files[0], files[1]), exp_v.verify(files[0], files[1])
    assert r_exp.calibrated and r_exp.score == pytest.approx(r_run.score, abs=1e-3)
    assert r_exp.threshold == r_run.threshold

    # self-contained: a moved copy loads the same (its backbone comes from its own backbone/ folder)
    moved = tmp_path / "moved"
    shutil.copytree(out, moved)
    assert (
        _rel(exp_v.embed(files[0]), SpeakerVerifier.from_pretrained(moved, device="cpu").embed(files[0]))
        < 1e-6
    )


def test_unmergeable_method_is_exported_with_its_parameters(tmp_path: Path, corpus: dict) -> None:
    import torch

    from spkpeft import SpeakerVerifier
    from spkpeft.inference.export import export_model
    from spkpeft.model import save_model
    from spkpeft.train.experiment import build_model, load_experiment

    cfg = load_experiment("tiny", ["method={name: adapter, bottleneck: 8}"])
    model = build_model(cfg)
    with torch.no_grad():  # non-zero adapters, so the check sees them
        for p in model.method.own_parameters().values():
            p.add_(0.05 * torch.randn_like(p))
    save_model(model, tmp_path / "m")
    summary = export_model(tmp_path / "m", tmp_path / "out")
    assert summary["merged"] is False and summary["max_rel_err"] < 1e-4
    meta = json.loads((tmp_path / "out" / "model.json").read_text())
    assert meta["method"] == "adapter"
    f = corpus["root"] / "test" / "spk5" / "utt0.wav"
    a = SpeakerVerifier.from_pretrained(tmp_path / "m", device="cpu").embed(f)
    b = SpeakerVerifier.from_pretrained(tmp_path / "out", device="cpu").embed(f)
    assert _rel(a, b) < 1e-4
    with pytest.raises(FileExistsError, match="--force"):
        export_model(tmp_path / "m", tmp_path / "out")
    export_model(tmp_path / "m", tmp_path / "out", overwrite=True)


def test_onnx_export_matches_pytorch_on_new_shapes(
    evaluated_run: Path, corpus: dict, tmp_path: Path, capsys
) -> None:  # noqa: ANN001
    import torch

    from spkpeft import SpeakerVerifier
    from spkpeft.inference.onnx_export import run_onnx

    out = tmp_path / "export"
    assert main(["export", str(evaluated_run), str(out), "--onnx"]) == 0
    assert "onnx:" in capsys.readouterr().out and (out / "model.onnx").is_file()
    assert "model.onnx" in (out / "README.md").read_text()
    v = SpeakerVerifier.from_pretrained(out, device="cpu")
    files = [corpus["root"] / "test" / f"spk{s}" / "utt0.wav" for s in (5, 6, 7, 5)]
    wavs = [v._load(f, None) for f in files]
    wavs[3] = wavs[3][:9000]  # four rows of four lengths: batch and length differ from the export
    lengths = torch.tensor([len(w) for w in wavs])
    batch = torch.zeros(4, int(lengths.max()))
    for i, w in enumerate(wavs):
        batch[i, : len(w)] = torch.from_numpy(w)
    got, _ = run_onnx(out / "model.onnx", batch, lengths)
    for i, w in enumerate(wavs):
        ref = v.embed(w, sample_rate=16000)
        assert np.linalg.norm(got[i] - ref) / np.linalg.norm(ref) < 1e-4


@pytest.mark.parametrize("backbone", ["tiny-hubert", "tiny-whisper", "tiny-w2v-bert"])
def test_onnx_export_of_a_hooked_method_with_a_lap_backend(tmp_path: Path, backbone: str) -> None:
    """Prompts (hooks that prepend frames), the SDPA mask, LAP's masked batch norm, Whisper's log-mel
    (its STFT as a convolution) and w2v-BERT's fbank (framing + DFT as one convolution) export too."""
    import torch

    from spkpeft.inference.onnx_export import export_onnx
    from spkpeft.train.experiment import build_model, load_experiment

    ov = [
        f"backbone.name_or_path={backbone}",
        "method={name: prompt, prompt_length: 3}",
        "backend={name: lap_astp}",
    ]
    model = build_model(load_experiment("tiny", ov)).eval()
    with torch.no_grad():
        for p in model.method.own_parameters().values():
            p.add_(0.05 * torch.randn_like(p))
    res = export_onnx(model, tmp_path / "m.onnx")  # checks against PyTorch on new batch/length itself
    assert res["max_rel_err"] < 1e-4 and (tmp_path / "m.onnx").is_file()


def test_failed_export_with_force_keeps_the_earlier_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spkpeft import SpeakerVerifier
    from spkpeft.inference import export as ex
    from spkpeft.model import save_model
    from spkpeft.train.experiment import build_model, load_experiment

    save_model(build_model(load_experiment("tiny", [])), tmp_path / "m")
    out = tmp_path / "out"
    ex.export_model(tmp_path / "m", out)
    (out / "mark.txt").write_text("the earlier export")  # gone if OUT were emptied before the new write
    before = sorted(p.name for p in out.rglob("*"))

    def mismatch(model, exported, where):  # noqa: ANN001, ANN202
        raise RuntimeError(f"the exported model in {where} gives other embeddings")

    monkeypatch.setattr(ex, "check_export", mismatch)
    with pytest.raises(RuntimeError, match=f"in {out} gives other"):  # names OUT, not a temporary folder
        ex.export_model(tmp_path / "m", out, overwrite=True)
    assert sorted(p.name for p in out.rglob("*")) == before  # the earlier export, whole
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no half export left
    wav = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    assert np.isfinite(SpeakerVerifier.from_pretrained(out, device="cpu").embed(wav, sample_rate=16000)).all()

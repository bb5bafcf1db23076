"""``spkpeft params``: meta-device parameter accounting, checked against the papers' counts."""

from __future__ import annotations

import json

import pytest

from spkpeft.backbones.hf import load_hf_model
from spkpeft.cli import main
from spkpeft.methods import METHODS
from spkpeft.params import count_for


def params_json(capsys, *args: str) -> dict:  # noqa: ANN001
    assert main(["-q", "params", *args, "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out  # exactly one JSON object
    return json.loads(out[0])


def test_spectral_on_wavlm_large_matches_the_paper(capsys) -> None:  # noqa: ANN001
    d = params_json(capsys, "--backbone", "wavlm-large", "--method", "spectral")
    assert d["method"] == 1_966_080 == d["trainable"]  # 24 layers x 2 matrices x 2 (1024*16 + 16*256)
    assert d["total"] == d["backbone_total"] + d["method"]
    assert d["backbone_cnn"] + d["backbone_transformer"] == d["backbone_total"]
    assert d["groups"] == {"spectral": 1_966_080}


def test_lora_on_wavlm_large_r16_qkv(capsys) -> None:  # noqa: ANN001
    d = params_json(capsys, "--backbone", "wavlm-large", "--method", "lora")
    assert d["method"] == 2_359_296  # 24 x 3 x 16 x (1024 + 1024)
    # The backbone count is the published architecture's, unchanged by the injected peft layers.
    base = params_json(capsys, "--backbone", "wavlm-large", "--method", "frozen")
    assert d["backbone_total"] == base["backbone_total"] == base["total"] and base["trainable"] == 0


def test_set_changes_the_config_and_dora_adds_magnitudes(capsys) -> None:  # noqa: ANN001
    lora = params_json(
        capsys, "--backbone", "hubert-base", "--method", "lora", "--set", "r=8", "--set", "targets=[q,v]"
    )
    assert lora["method"] == 12 * 2 * 8 * (768 + 768) and lora["method_config"]["targets"] == ["q", "v"]
    dora = params_json(
        capsys, "--backbone", "hubert-base", "--method", "dora", "--set", "r=8", "--set", "targets=[q,v]"
    )
    assert dora["method"] == lora["method"] + 12 * 2 * 768


def test_unknown_key_names_the_valid_ones(capsys) -> None:  # noqa: ANN001
    assert main(["-q", "params", "--backbone", "tiny-wavlm", "--method", "spectral", "--set", "rank=4"]) == 1
    err = capsys.readouterr().err
    assert "'rank'" in err and "keep_residual" in err


def test_table_lists_components(capsys) -> None:  # noqa: ANN001
    assert main(["-q", "params", "--backbone", "wavlm-base-plus", "--method", "pissa"]) == 0
    out = capsys.readouterr().out
    assert "backbone CNN" in out and "backbone Transformer" in out and "trainable fraction" in out
    assert f"{12 * 3 * 16 * (768 + 768):,}" in out


def test_model_directory_counts_like_its_preset(tmp_path) -> None:  # noqa: ANN001
    model, _ = load_hf_model("tiny-hubert")
    model.save_pretrained(tmp_path)
    a, b = count_for(tmp_path, "lora", {"r": 2}), count_for("tiny-hubert", "lora", {"r": 2})
    assert (a.total, a.trainable, a.backbone_cnn) == (b.total, b.trainable, b.backbone_cnn)
    assert a.backbone_total == sum(p.numel() for p in model.parameters())


def test_whole_whisper_directory_counts_its_encoder(tmp_path) -> None:  # noqa: ANN001
    import transformers

    from spkpeft.backbones.hf import build_config

    cfg, _ = build_config("tiny-whisper")
    transformers.WhisperForConditionalGeneration(cfg).save_pretrained(tmp_path)
    a, b = count_for(tmp_path, "lora", {"r": 2}), count_for("tiny-whisper", "lora", {"r": 2})
    assert (a.backbone_total, a.backbone_cnn, a.trainable) == (b.backbone_total, b.backbone_cnn, b.trainable)
    assert a.backbone_total == sum(p.numel() for p in load_hf_model("tiny-whisper")[0].parameters())


def test_full_counts_the_backbone_once() -> None:
    c = count_for("tiny-wavlm", "full")
    assert c.total == c.backbone_total and c.method_added == 0
    assert c.trainable == c.method == c.backbone_trainable > 0


@pytest.mark.skipif("unipet" not in METHODS, reason="unipet is not registered on this branch")
def test_unipet_on_wavlm_base_plus_is_5_4_percent(capsys) -> None:  # noqa: ANN001
    d = params_json(capsys, "--backbone", "wavlm-base-plus", "--method", "unipet")
    frac = d["method"] / (d["backbone_total"] + d["method"])
    assert abs(frac - 0.054) <= 0.003, frac
    assert d["fraction"] == pytest.approx(frac)


# Published Whisper models: (d_model, encoder layers, mel bins) and the whole model's size as the hub
# lists it for the checkpoint (encoder + decoder, in millions, rounded as listed there).
WHISPER = {
    "whisper-tiny": (384, 4, 80, 37.8),
    "whisper-base": (512, 6, 80, 72.6),
    "whisper-small": (768, 12, 80, 242),
    "whisper-medium": (1024, 24, 80, 764),
    "whisper-large-v2": (1280, 32, 80, 1540),
    "whisper-large-v3": (1280, 32, 128, 1540),
    "whisper-large-v3-turbo": (1280, 32, 128, 809),
}


def _whisper_encoder_size(d: int, layers: int, mels: int) -> tuple[int, int]:
    """(convolutions, whole encoder) parameters: conv1 and conv2 (kernel 3), the 1500-row position
    table, per layer q/v/out with bias + k without (4d^2 + 3d), FFN 4d wide (8d^2 + 5d), two norms (4d),
    and the final norm."""
    convs = (3 * mels * d + d) + (3 * d * d + d)
    return convs, convs + 1500 * d + layers * (12 * d * d + 12 * d) + 2 * d


@pytest.mark.parametrize("name", sorted(WHISPER))
def test_whisper_presets_count_the_published_encoders(name) -> None:  # noqa: ANN001
    import torch
    import transformers

    from spkpeft.backbones.hf import build_config

    d, layers, mels, whole_millions = WHISPER[name]
    c = count_for(name, "lora")
    convs, encoder = _whisper_encoder_size(d, layers, mels)
    assert (c.backbone_cnn, c.backbone_total) == (convs, encoder)
    assert c.method == layers * 3 * 16 * (d + d)  # LoRA r 16 on q, k, v
    cfg, _ = build_config(name)
    with torch.device("meta"):
        whole = transformers.WhisperForConditionalGeneration(cfg)
    n = sum(p.numel() for p in whole.parameters()) / 1e6
    assert round(n, 1 if n < 100 else 0) == pytest.approx(whole_millions, abs=0.5 if n < 1000 else 5), n

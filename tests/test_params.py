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


def _conformer_layer_size(d: int, ffn: int, kernel: int, heads: int, left: int, right: int) -> int:
    """One w2v-BERT 2.0 Conformer layer: two FFNs (2 d ffn + ffn + d each), q/k/v/out with bias
    (4d^2 + 4d), the relative_key distance table ((left + right + 1) x head size), the convolution module
    (pointwise d -> 2d and d -> d without bias, depthwise d x kernel) and six layer norms (2d each)."""
    ffns = 2 * (2 * d * ffn + ffn + d)
    attention = 4 * d * d + 4 * d + (left + right + 1) * (d // heads)
    conv = 2 * d * d + d * d + d * kernel
    return ffns + attention + conv + 6 * 2 * d


def test_w2v_bert_preset_counts_the_published_checkpoint(capsys) -> None:  # noqa: ANN001
    d = params_json(capsys, "--backbone", "w2v-bert-2.0", "--method", "frozen")
    projection = 2 * 160 + 160 * 1024 + 1024  # layer norm + linear over the stacked 160-dim fbank
    layers = 24 * _conformer_layer_size(1024, 4096, 31, 16, 64, 8)
    assert d["backbone_total"] == projection + layers + 1024 == 580_493_120  # + masked_spec_embed
    assert d["backbone_cnn"] == 0  # the fbank has no parameters
    # The published checkpoint (huggingface.co/facebook/w2v-bert-2.0, model.safetensors, float32) is
    # listed as 2.32 GB, i.e. 580 M parameters (the model card rounds to "600M").
    assert round(4 * d["backbone_total"] / 1e9, 2) == 2.32


def test_w2v_bert_lora_r64_on_q_v_is_the_wespeaker_recipe(capsys) -> None:  # noqa: ANN001
    """WeSpeaker's w2vbert_s1_lora.yaml: LoRA r 64 on linear_q / linear_v of all 24 layers."""
    d = params_json(
        capsys, "--backbone", "w2v-bert-2.0", "--method", "lora", "--set", "r=64", "--set", "targets=[q,v]"
    )
    assert d["method"] == 24 * 2 * 64 * (1024 + 1024) == 6_291_456 == d["trainable"]

"""TS-ASR's LoRA baseline is spkpeft.methods.lora's peft wrapper (the speaker models' LoRA) on Whisper:
the same factors as the former direct peft injection, runs saved in the former form still load."""

from __future__ import annotations

import pytest
import torch
import yaml
from peft import LoraConfig, inject_adapter_in_model
from safetensors.torch import load_file, save_file

from spkpeft.methods.lora import PeftLoraMethod
from spkpeft.tsasr.config import load_config
from spkpeft.tsasr.model import LoraSection, ModelConfig, TSWhisper
from spkpeft.tsasr.prompts import PromptConfig
from spkpeft.tsasr.run import CONFIG, WEIGHTS, load_run, save_run

E = 12


def _lora_model(path, **lora) -> TSWhisper:  # noqa: ANN001, ANN003
    cfg = ModelConfig(
        whisper=str(path), method="lora", prompts=PromptConfig(length=2), lora=LoraSection(**lora)
    )
    return TSWhisper.from_config(cfg, E)


def test_lora_is_the_registered_peft_method_with_the_former_factors(tiny_whisper):
    torch.manual_seed(0)
    model = _lora_model(tiny_whisper)
    assert isinstance(model.weights, PeftLoraMethod)
    ours = {id(p) for p in model.weights.own_parameters().values()}
    assert ours == {id(p) for p in model.param_groups()["lora"]}  # what the optimiser trains
    # the former code: peft.inject_adapter_in_model(r 4, alpha 8, q_proj and v_proj), adapter "default"
    torch.manual_seed(0)
    plain = TSWhisper.from_config(ModelConfig(whisper=str(tiny_whisper), method="frozen"), E).whisper
    inject_adapter_in_model(LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]), plain)
    expected = {n.replace(".default.", ".lora."): p for n, p in plain.named_parameters() if "lora_" in n}
    got = {n: p for n, p in model.whisper.named_parameters() if "lora_" in n}
    c = plain.config  # q and v (A and B) in encoder self-, decoder self- and cross-attention
    assert got.keys() == expected.keys() and len(got) == 4 * (c.encoder_layers + 2 * c.decoder_layers)
    for n, p in got.items():
        assert torch.equal(p, expected[n]), n
    assert any(p.abs().sum() > 0 for n, p in got.items() if "lora_A" in n)  # not a trivial equality
    scales = {
        m.scaling["lora"] for m in model.whisper.modules() if isinstance(getattr(m, "scaling", 0), dict)
    }
    assert scales == {2.0}  # alpha 8 / r 4


def test_dora_and_pissa_by_name_and_a_non_lora_method_refused(tiny_whisper):
    dora = _lora_model(tiny_whisper, name="dora")
    assert any("lora_magnitude_vector" in n for n in dora.trainable_parameters())
    assert set(dora.param_groups()) == {"prompt", "lora"}
    frozen = TSWhisper.from_config(ModelConfig(whisper=str(tiny_whisper), method="frozen"), E).whisper
    pissa = _lora_model(tiny_whisper, name="pissa")  # PiSSA: the residual base weight + top-r factors
    q = "model.encoder.layers.0.self_attn.q_proj"
    layer, base = pissa.whisper.get_submodule(q), frozen.get_submodule(q).weight
    rebuilt = (
        layer.base_layer.weight
        + layer.scaling["pissa"] * layer.lora_B["pissa"].weight @ layer.lora_A["pissa"].weight
    )
    assert torch.allclose(rebuilt, base, atol=1e-5) and not torch.allclose(layer.base_layer.weight, base)
    with pytest.raises(ValueError, match="model.lora.name='spectral'; valid: dora, lora, pissa"):
        _lora_model(tiny_whisper, name="spectral")


def test_run_saved_in_the_former_form_loads(tiny_whisper, tmp_path):
    """tsasr.yaml with ``lora.target_modules`` and weights under peft's adapter name ``default``."""
    model = _lora_model(tiny_whisper)
    with torch.no_grad():
        for p in model.trainable_parameters().values():
            p.normal_()
    cfg = load_config(None, data={"model": {"whisper": str(tiny_whisper), "method": "lora",
                                            "prompts": {"length": 2}}})  # fmt: skip
    save_run(model, cfg, tmp_path)
    saved = yaml.safe_load((tmp_path / CONFIG).read_text())
    assert saved["model"]["lora"]["targets"] == ["q", "v"]
    saved["model"]["lora"] = {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]}
    saved["optim"]["lr"] = 1e-4
    (tmp_path / CONFIG).write_text(yaml.safe_dump(saved))
    state = load_file(str(tmp_path / WEIGHTS))
    save_file({n.replace(".lora.", ".default."): t for n, t in state.items()}, str(tmp_path / WEIGHTS))

    loaded, lcfg = load_run(tmp_path)
    assert lcfg.model.lora.targets == ["q", "v"] and lcfg.optim.lr == {"default": 1e-4}
    mine = model.trainable_parameters()
    assert loaded.trainable_parameters().keys() == mine.keys()
    for n, p in loaded.trainable_parameters().items():
        assert torch.equal(p, mine[n]), n

"""save_method / load_method: own parameters only, fingerprint checks, strict loading."""

from __future__ import annotations

import json

import pytest
import torch

from spkpeft.backbones import load_backbone
from spkpeft.methods import METHODS
from spkpeft.methods.io import load_method, save_method


def _build(name: str, backbone, **kw):
    return METHODS.build(name, METHODS.config_cls(name)(**kw), backbone)


def test_full_roundtrip_through_save_pretrained(tmp_path):
    bb = load_backbone("tiny-hubert").eval()
    bb.model.save_pretrained(tmp_path / "bb")
    method = _build("full", bb)
    with torch.no_grad():
        for p in method.own_parameters().values():
            p.add_(0.01 * torch.randn_like(p))  # as if trained
    save_method(method, tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "method.json").read_text())
    assert meta["name"] == "full"
    assert meta["backbone"] == {"family": "hubert", "num_layers": 2, "hidden_size": 32}
    assert set(meta["shapes"]) == set(method.own_parameters())
    assert not any(k.startswith("full.feature_extractor") for k in meta["shapes"])  # CNN not trained

    fresh = load_backbone(tmp_path / "bb").eval()
    wav = torch.randn(1, 4000)
    with torch.no_grad():
        assert not torch.allclose(fresh(wav).hidden_states, bb(wav).hidden_states)
        loaded = load_method(tmp_path / "m", fresh)
        torch.testing.assert_close(fresh(wav).hidden_states, bb(wav).hidden_states)
    assert loaded.name == "full" and loaded.cfg.train_feature_encoder is False


@pytest.mark.parametrize(
    ("other", "overrides", "what"),
    [
        ("tiny-wavlm", {}, "family"),
        ("tiny-hubert", {"num_hidden_layers": 3}, "num_layers"),
        ("tiny-hubert", {"hidden_size": 48, "intermediate_size": 64}, "hidden_size"),
    ],
)
def test_mismatched_backbone_is_a_clear_error(tmp_path, other, overrides, what):
    save_method(_build("frozen", load_backbone("tiny-hubert")), tmp_path)
    with pytest.raises(ValueError, match=f"different backbone.*{what}: saved"):
        load_method(tmp_path, load_backbone(other, **overrides))


def test_missing_dir_and_tampered_tensors(tmp_path):
    with pytest.raises(FileNotFoundError, match="method.json"):
        load_method(tmp_path / "nope", load_backbone("tiny-hubert"))
    save_method(_build("full", load_backbone("tiny-hubert")), tmp_path)
    from safetensors.torch import load_file, save_file

    t = load_file(str(tmp_path / "method.safetensors"))
    t.pop(sorted(t)[0])
    save_file(t, str(tmp_path / "method.safetensors"))
    with pytest.raises(ValueError, match="missing"):
        load_method(tmp_path, load_backbone("tiny-hubert"))

"""A model directory that ships its own Python code (``auto_map``) is refused; the code never runs."""

from __future__ import annotations

import builtins
import json
from pathlib import Path

import pytest

from spkpeft.backbones import load_backbone
from spkpeft.params import meta_backbone


def _crafted(root: Path, marker: Path) -> Path:
    d = root / "crafted"
    d.mkdir()
    auto_map = {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}
    (d / "config.json").write_text(json.dumps({"model_type": "evil-wavlm", "auto_map": auto_map}))
    (d / "evil.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n"
        "from transformers import PretrainedConfig\n"
        "class EvilConfig(PretrainedConfig):\n    model_type = 'evil-wavlm'\n"
    )
    return d


@pytest.mark.parametrize("loader", [load_backbone, meta_backbone])
def test_custom_code_in_a_backbone_dir_is_never_run(tmp_path, monkeypatch, loader) -> None:  # noqa: ANN001
    marker = tmp_path / "code-ran"
    crafted = _crafted(tmp_path, marker)
    monkeypatch.setattr(builtins, "input", lambda *a: "y")  # a user answering transformers' question
    with pytest.raises(ValueError, match="trust_remote_code|never runs code"):
        loader(str(crafted))
    assert not marker.exists()

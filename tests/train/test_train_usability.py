"""What a user sees when training: log lines without a terminal, how often checkpoints are written,
random-preset and hub errors, no half-made run directory, a run that loads from any directory."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from spkpeft.backbones import load_backbone
from spkpeft.model import _warn_random_preset, load_speaker_model
from spkpeft.train import checkpoint as ck
from spkpeft.train.experiment import load_experiment
from spkpeft.train.trainer import train


def test_loss_is_logged_every_n_steps_and_checkpoints_are_rare(tiny_overrides, caplog, capsys):
    from spkpeft.cli import main

    over = [*tiny_overrides, "train.epochs=4", "train.log_every=2"]  # 12 steps; no terminal under pytest
    with caplog.at_level(logging.INFO, logger="spkpeft.train"):
        assert main(["train", "tiny", *[x for o in over for x in ("--set", o)]]) == 0
    run = Path(over[1].partition("=")[2])
    cfg = load_experiment(run / "config.yaml")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stage main step")]
    assert len(lines) == 6, lines  # steps 2, 4, ..., 12
    assert all("loss" in x and "acc" in x and "lr" in x and "utt/s" in x for x in lines)
    assert "step 12/12" in lines[-1]
    # the tiny recipe sets no step interval: only the end-of-stage checkpoint (and one per 30 min)
    assert [p.name for p in ck.list_checkpoints(run / "checkpoints")] == ["step-12"]
    assert cfg.train.checkpoint_minutes == 30


def test_checkpoint_minutes_writes_by_time(tiny_yaml, tiny_overrides):
    over = [*tiny_overrides, "train.epochs=1", "train.checkpoint_minutes=1e-9", "train.keep_checkpoints=0"]
    run = train(load_experiment(tiny_yaml, over))
    assert [p.name for p in ck.list_checkpoints(run / "checkpoints")] == ["step-1", "step-2", "step-3"]


def test_random_preset_warning_names_the_fix(caplog):
    with caplog.at_level(logging.WARNING, logger="spkpeft.model"):
        _warn_random_preset("wavlm-base-plus")
        _warn_random_preset("tiny-wavlm")  # a test architecture with no published weights: silent
    assert len(caplog.records) == 1
    msg = caplog.records[0].getMessage()
    assert "RANDOM weights" in msg and "backbone.name_or_path=microsoft/wavlm-base-plus" in msg


def test_unreachable_hub_id_explains_offline_use_and_leaves_no_run_dir(tiny_overrides, tmp_path, capsys):
    from spkpeft.cli import main

    args = ["-q", "train", "tiny", "--set", "backbone.name_or_path=no-such-org/no-such-model"]
    assert main(args + [x for o in tiny_overrides for x in ("--set", o)]) == 1
    err = capsys.readouterr().err
    assert "HF_HUB_OFFLINE" in err and "save_pretrained" in err and "hf download" in err
    assert not (tmp_path / "run").exists()


def test_relative_backbone_dir_is_stored_resolved(tiny_yaml, tiny_corpus, tmp_path, monkeypatch):
    load_backbone("tiny-wavlm").model.save_pretrained(tmp_path / "work" / "bb")
    monkeypatch.chdir(tmp_path / "work")
    over = [f"data.train_manifest={tiny_corpus}", "train.output_dir=run", "train.epochs=1",
            "backbone.name_or_path=bb"]  # fmt: skip
    run = (tmp_path / "work" / train(load_experiment(tiny_yaml, over))).resolve()
    want = str(tmp_path / "work" / "bb")
    assert load_experiment(run / "config.yaml").backbone.name_or_path == want
    assert json.loads((run / "model" / "model.json").read_text())["backbone"]["name_or_path"] == want
    monkeypatch.chdir(tmp_path)  # elsewhere: the run still finds its backbone
    assert load_speaker_model(run).backbone.num_layers == 2


@pytest.fixture(autouse=True)
def _quiet_accelerate(caplog):
    caplog.set_level(logging.WARNING, logger="accelerate")

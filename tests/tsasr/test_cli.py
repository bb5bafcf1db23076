"""The ``spkpeft tsasr`` commands end to end on a tiny Whisper and a few synthetic mixtures."""

from __future__ import annotations

import json

import yaml

from spkpeft.cli import main


def test_train_eval_transcribe(tiny_whisper, mixtures, unit_corpus, tmp_path, capsys) -> None:  # noqa: ANN001
    cfg = {
        "model": {"whisper": str(tiny_whisper), "prompts": {"length": 4, "reparam": True}},
        "data": {"train": str(mixtures)},
        "optim": {"batch_size": 4, "lr": 1e-3},
        "out_dir": str(tmp_path / "run"),
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["-q", "tsasr", "train", str(tmp_path / "c.yaml"), "--set", "optim.max_steps=3"]) == 0
    run = tmp_path / "run"
    saved = yaml.safe_load((run / "tsasr.yaml").read_text())
    assert saved["model"]["prompts"]["reparam"] is False  # folded at the end
    assert (run / "model.safetensors").is_file() and (run / "checkpoints" / "step-3" / "state.json").is_file()
    capsys.readouterr()
    assert main(["-q", "tsasr", "train", str(tmp_path / "c.yaml"), "--set", "optim.max_steps=4"]) == 1
    assert "pass --resume" in capsys.readouterr().err  # a run with checkpoints is not started over
    assert (
        main(["-q", "tsasr", "train", str(tmp_path / "c.yaml"), "--set", "optim.max_steps=4", "--resume"])
        == 0
    )
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step-4"]

    out = tmp_path / "report.json"
    assert main(["-q", "tsasr", "eval", str(run), "--data", str(mixtures), "--beams", "1", "2",
                 "--out", str(out)]) == 0  # fmt: skip
    report = json.loads(out.read_text())
    assert {"greedy", "beam2"} <= set(report) and report["greedy"]["utterances"] > 0
    assert (
        main(["-q", "tsasr", "eval", str(tiny_whisper), "--frozen", "--data", str(mixtures), "--beams", "1"])
        == 0
    )

    from lhotse import CutSet

    mix = next(iter(CutSet.from_file(mixtures)))
    capsys.readouterr()
    rc = main(["-q", "tsasr", "transcribe", mix.recording.sources[0].source, "--enroll",
               mix.custom["enroll_path"], "--model", str(run), "--beams", "2"])  # fmt: skip
    assert rc == 0
    assert "<|" not in capsys.readouterr().out  # no special tokens or slots in the text


def test_train_rejects_unknown_keys(tmp_path, capsys) -> None:  # noqa: ANN001
    (tmp_path / "c.yaml").write_text("model: {promts: {length: 3}}\n")
    assert main(["tsasr", "train", str(tmp_path / "c.yaml")]) == 1
    assert "promts" in capsys.readouterr().err


def test_train_overrides_need_set(tmp_path, capsys) -> None:  # noqa: ANN001
    """``--set`` as in ``spkpeft train``; the old positional ``a.b=c`` is refused and the error says --set."""
    (tmp_path / "c.yaml").write_text("model: {prompts: {length: 3}}\n")
    assert main(["tsasr", "train", str(tmp_path / "c.yaml"), "optim.max_steps=3"]) == 1
    err = capsys.readouterr().err
    assert "optim.max_steps=3" in err and "--set optim.max_steps=3" in err
    # --set reaches the config: a wrong type for the key is reported before any training starts
    assert main(["tsasr", "train", str(tmp_path / "c.yaml"), "--set", "optim.max_steps=abc"]) == 1
    assert "max_steps" in capsys.readouterr().err


def test_shipped_configs_parse() -> None:
    from spkpeft.tsasr.config import load_config

    for name in ("tsasr_small", "tsasr_libri2mix_large_v2"):  # by name, beside the speaker recipes
        cfg = load_config(name)
        assert cfg.model.prompts.length == 16 and cfg.model.method == "prompt"
    paper = load_config("tsasr_libri2mix_large_v2")
    assert paper.optim.lr == {"default": 1e-4} and paper.optim.epochs == 10 and paper.model.prompts.reparam


def test_training_resumes_from_checkpoint(tiny_whisper, mixtures, tmp_path, caplog) -> None:  # noqa: ANN001
    import logging

    from spkpeft.tsasr.config import load_config
    from spkpeft.tsasr.train import train

    data = {
        "model": {"whisper": str(tiny_whisper), "prompts": {"length": 2}},
        "data": {"train": str(mixtures)},
        "optim": {"batch_size": 4, "epochs": 1},
    }
    run = train(load_config(None, data=data), tmp_path / "run")  # 1 epoch = 2 steps on 8 mixtures
    first = (run / "model.safetensors").read_bytes()
    caplog.set_level(logging.INFO, logger="spkpeft")
    train(load_config(None, ["optim.epochs=2"], data=data), run, resume=True)
    assert any("resuming" in r.getMessage() and "step 2" in r.getMessage() for r in caplog.records)
    assert (run / "model.safetensors").read_bytes() != first  # the second epoch changed the prompts


def test_demo_command_runs_small_and_reports_every_view(tmp_path, capsys) -> None:  # noqa: ANN001
    sizes = ["train_speakers=3", "test_speakers=2", "utterances=3", "train_mixtures=8", "test_mixtures=4",
             "pretrain_steps=2", "tune_steps=2", "batch_size=4", "prompt_length=2", "whisper_width=32",
             "whisper_layers=1", "beams=[1]", "background_db=[5, 8]", "method=lora"]  # fmt: skip
    sets = [x for size in sizes for x in ("--set", size)]
    assert main(["-q", "tsasr", "demo", str(tmp_path), *sets]) == 0
    out = capsys.readouterr().out
    views = ("frozen  greedy", "tuned   greedy", "tuned_vs_interferer", "tuned_seen_speakers_vs_interferer")
    for key in views:
        assert key in out, out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["tuned_seen_speakers"]["greedy"]["utterances"] > 0 and report["method"] == "lora"
    assert (tmp_path / "run-lora" / "model.safetensors").is_file()
    cfg = json.loads((tmp_path / "whisper-single" / "config.json").read_text())
    assert (cfg["d_model"], cfg["encoder_layers"], cfg["decoder_attention_heads"]) == (32, 1, 1)
    capsys.readouterr()
    assert main(["tsasr", "demo", str(tmp_path), "--set", "whisper_depth=3"]) == 1
    assert "whisper_depth" in capsys.readouterr().err  # an unknown field is named
    assert main(["tsasr", "demo", str(tmp_path), "tune_steps=2", "beams=[1]"]) == 1
    assert "--set tune_steps=2 --set beams=[1]" in capsys.readouterr().err  # an override without --set
    assert main(["tsasr", "demo", str(tmp_path), "--set", "method=frozen"]) == 1
    assert "method='frozen'" in capsys.readouterr().err
    other = [f for f in sizes if not f.startswith("whisper_width")] + ["whisper_width=64"]
    other_sets = [x for size in other for x in ("--set", size)]
    assert main(["tsasr", "demo", str(tmp_path), *other_sets]) == 1  # would reuse the 32-wide model
    assert "whisper_width: built 32, asked 64" in capsys.readouterr().err

import json

from spkpeft.cli import main
from spkpeft.commands.demo import format_summary
from spkpeft.demo.content_pretrain import ContentPretrainConfig
from spkpeft.demo.pipeline import DemoConfig, run_demo


def _tiny(out):
    return DemoConfig(
        out_dir=str(out),
        pretrain_speakers=3,
        adapt_speakers=4,
        test_speakers=3,
        utterances=3,
        targets=6,
        nontargets=6,
        hidden_size=32,
        layers=2,
        adapt_epochs=1,
        batch_size=4,
        pretrain=ContentPretrainConfig(steps=3, batch_size=2, crop_seconds=1.0),
    )


def test_demo_runs_end_to_end_writes_report_and_resumes(tmp_path):
    cfg = _tiny(tmp_path / "demo")
    summary = run_demo(cfg)
    names = [s["name"] for s in summary["systems"]]
    assert names == ["frozen", "unipet"]
    frozen, unipet = summary["systems"]
    assert frozen["method_parameters"] == 0 and unipet["method_parameters"] > 0
    assert unipet["trainable_parameters"] > frozen["trainable_parameters"] > 0
    for s in summary["systems"]:
        assert set(s["eer"]) == {"cosine", "asnorm", "calibrated"}
        assert all(0 <= v <= 100 for v in s["eer"].values())
    assert summary["adapted_beats_frozen"] == (unipet["eer"]["cosine"] < frozen["eer"]["cosine"])
    report = tmp_path / "demo" / "unipet" / "report.md"
    assert report.is_file() and (tmp_path / "demo" / "unipet" / "plots" / "layers.png").is_file()
    assert json.loads((tmp_path / "demo" / "summary.json").read_text())["systems"] == summary["systems"]
    stages = summary["stage_seconds"]
    assert list(stages) == ["synthesise", "pretrain", "adapt+eval frozen", "adapt+eval unipet"]
    assert all(v >= 0 for v in stages.values())
    assert "time per stage: synthesise" in format_summary(summary)

    # resume: every finished stage is skipped (the trained models are not touched again)
    model_file = tmp_path / "demo" / "unipet" / "model" / "method" / "method.safetensors"
    pre_file = tmp_path / "demo" / "pretrained-wavlm" / "pretraining.json"
    stamps = (model_file.stat().st_mtime_ns, pre_file.stat().st_mtime_ns)
    again = run_demo(cfg)
    assert (model_file.stat().st_mtime_ns, pre_file.stat().st_mtime_ns) == stamps
    assert again["systems"] == summary["systems"]


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    assert main(["train", str(tmp_path / "missing.yaml")]) == 1
    err = capsys.readouterr().err
    assert "missing.yaml" in err and "Traceback" not in err

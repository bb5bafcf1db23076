import csv
import json

import numpy as np
from sklearn.metrics import roc_curve

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


def _eers_from_score_file(path) -> dict[str, float]:
    """EER in % per system column of an eval score file (scores/LIST.tsv), computed here with
    scikit-learn's ROC: the miss and false-alarm curves interpolated linearly to where they cross."""
    with open(path) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    labels = np.array([int(r["label"]) for r in rows])
    out = {}
    for system in [k for k in rows[0] if k not in ("enroll", "test", "label")]:
        fpr, tpr, _ = roc_curve(labels, [float(r[system]) for r in rows], drop_intermediate=False)
        fnr = 1 - tpr
        i = int(np.argmax(fpr >= fnr))  # first operating point past the crossing; point 0 is (fpr 0, fnr 1)
        gap0, gap1 = fnr[i - 1] - fpr[i - 1], fnr[i] - fpr[i]
        out[system] = 100 * (fnr[i - 1] + gap0 / (gap0 - gap1) * (fnr[i] - fnr[i - 1]))
    return out


def test_demo_runs_end_to_end_writes_report_and_resumes(tmp_path):
    cfg = _tiny(tmp_path / "demo")
    summary = run_demo(cfg)
    names = [s["name"] for s in summary["systems"]]
    assert names == ["frozen", "unipet"]
    frozen, unipet = summary["systems"]
    assert frozen["method_parameters"] == 0 and unipet["method_parameters"] > 0
    assert unipet["trainable_parameters"] > frozen["trainable_parameters"] > 0
    # the table's EERs are those of the trial scores each system wrote (rounded to 0.01 %)
    eers = {n: _eers_from_score_file(tmp_path / "demo" / n / "scores" / "test.tsv") for n in names}
    for s in summary["systems"]:
        assert set(s["eer"]) == set(eers[s["name"]]) == {"cosine", "asnorm", "calibrated"}
        for system, value in s["eer"].items():
            assert abs(value - eers[s["name"]][system]) <= 0.006, (s["name"], system)
    assert summary["adapted_beats_frozen"] == (eers["unipet"]["cosine"] < eers["frozen"]["cosine"])
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

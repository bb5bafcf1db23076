"""``spkpeft eval``: report, calibration and scoring state written; cached embeddings; bad inputs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from spkpeft.cli import main


def test_eval_writes_report_calibration_and_scoring_state(evaluated_run: Path) -> None:
    run = evaluated_run
    report = json.loads((run / "report.json").read_text())
    systems = report["trial_lists"]["vox"]["systems"]
    assert set(systems) == {"cosine", "asnorm", "calibrated"}
    for m in systems.values():
        assert 0.0 <= m["eer"] <= 1.0 and "0.01" in m["min_dcf"]
    md = (run / "report.md").read_text()
    assert "## vox" in md and "EER (%)" in md and f"{100 * systems['cosine']['eer']:.3f}" in md
    for png in ("plots/det_vox.png", "plots/scores_vox.png", "plots/layers.png"):
        assert (run / png).read_bytes()[:4] == b"\x89PNG", png
    # the linear back-end's softmax layer weights (L+1 = 3 states) reach the report
    assert len(report["layer_values"]["layer_weights"]) == 3
    assert np.isclose(sum(report["layer_values"]["layer_weights"]), 1.0)
    scorer = run / "model" / "scoring"  # saved with the model, nothing of it at the run's top level
    assert not [n for n in ("calibration.json", "scoring.json", "cohort.safetensors") if (run / n).exists()]
    cal = json.loads((scorer / "calibration.json").read_text())
    assert cal["info"]["scores"] == "asnorm" and len(cal["coef"]) == len(cal["feature_names"])
    scoring = json.loads((scorer / "scoring.json").read_text())
    assert scoring["system"] == "asnorm" and scoring["top_k"] == 5  # clipped to the 5 cohort speakers
    assert len(scoring["cohort_speakers"]) == 5


def test_second_eval_computes_no_embedding(evaluated_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from spkpeft.model import SpeakerModel

    def boom(self, wav, lengths=None):  # noqa: ANN001
        raise AssertionError("embeddings should all come from the cache")

    before = (evaluated_run / "report.json").read_text()
    monkeypatch.setattr(SpeakerModel, "embed", boom)
    assert main(["eval", str(evaluated_run), "--no-plots"]) == 0
    after = json.loads((evaluated_run / "report.json").read_text())["trial_lists"]
    before = json.loads(before)["trial_lists"]
    for lists in (after, before):  # the minute of evaluation may differ; nothing else may
        assert lists["vox"]["provenance"].pop("evaluated_at")
    assert after == before


def test_verifier_reproduces_the_reports_calibrated_scores(evaluated_run: Path, corpus: dict) -> None:
    from spkpeft import SpeakerVerifier
    from spkpeft.eval.metrics import bayes_threshold

    v = SpeakerVerifier.from_pretrained(evaluated_run, device="cpu")
    assert v.scorer.calibrated and v.threshold == pytest.approx(bayes_threshold(0.01))
    rows = list(csv.DictReader((evaluated_run / "scores" / "vox.tsv").open(), delimiter="\t"))
    for row in rows[:3]:
        a = corpus["root"] / "test" / f"{row['enroll']}.wav"
        b = corpus["root"] / "test" / f"{row['test']}.wav"
        r = v.verify(a, b)
        assert r.calibrated and r.system == "calibrated"
        assert r.score == pytest.approx(float(row["calibrated"]), abs=2e-4)
        assert r.decision == ("same" if r.score >= r.threshold else "different")


def test_unknown_trial_id_is_an_error_naming_it(lora_run: Path, corpus: dict, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    bad = tmp_path / "bad.txt"
    bad.write_text("1 spk5/utt0 spk5/nope\n0 spk5/utt0 spk6/utt1\n")
    assert main(["eval", str(lora_run), "--trials", str(bad), "--no-plots"]) == 1
    err = capsys.readouterr().err
    assert "spk5/nope" in err and str(bad) in err


def test_missing_audio_file_is_an_error_naming_it(
    lora_run: Path, corpus: dict, tmp_path: Path, capsys
) -> None:  # noqa: ANN001
    from spkpeft.data.manifest import CutSet, load_manifest, save_manifest

    cuts = list(load_manifest(corpus["test"]))
    gone = tmp_path / "gone.wav"
    gone.write_bytes((corpus["root"] / "test" / "spk5" / "utt0.wav").read_bytes())
    from spkpeft.data.manifest import make_cut

    cuts[0] = make_cut(gone, cuts[0].id, speaker="spk5")
    manifest = save_manifest(CutSet.from_cuts(cuts), tmp_path / "test.jsonl.gz")
    gone.unlink()
    argv = ["eval", str(lora_run), "--manifest", str(manifest), "--no-plots", "--cohort", str(manifest)]
    assert main(argv) == 1
    assert str(gone) in capsys.readouterr().err


def test_eval_without_manifest_says_what_to_pass(tmp_path: Path, lora_run: Path, capsys) -> None:  # noqa: ANN001
    import shutil

    run = tmp_path / "run"
    shutil.copytree(lora_run / "model", run / "model")  # no config.yaml: no eval section
    assert main(["eval", str(run), "--trials", "x.txt"]) == 1
    assert "--manifest" in capsys.readouterr().err


def test_uncalibrated_eval_gives_the_eer_threshold_to_the_verifier(
    evaluated_run: Path, corpus: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from spkpeft import SpeakerVerifier

    run = tmp_path / "run"
    shutil.copytree(evaluated_run, run)  # with its embedding caches: no forward pass needed
    monkeypatch.chdir(tmp_path)
    assert main(["eval", str(run), "--no-plots", "--set", "calibrate=false", "--set", "top_k=3"]) == 0
    assert not (run / "model" / "scoring" / "calibration.json").exists()  # the earlier one must not linger
    report = json.loads((run / "report.json").read_text())
    asnorm = report["trial_lists"]["vox"]["systems"]["asnorm"]
    assert "calibrated" not in report["trial_lists"]["vox"]["systems"]
    v = SpeakerVerifier.from_pretrained(run, device="cpu")
    assert not v.scorer.calibrated and v.scorer.top_k == 3
    assert v.threshold == pytest.approx(asnorm["eer_threshold"]) and "EER threshold" in v.threshold_meaning
    a, b = (corpus["root"] / "test" / "spk6" / f"utt{n}.wav" for n in (0, 1))
    r = v.verify(a, b)
    assert r.system == "asnorm" and r.decision == ("same" if r.score >= r.threshold else "different")

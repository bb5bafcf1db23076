"""``spkpeft eval`` as a researcher uses it: two trial lists one after the other, metrics on stdout with
-q, provenance and EER intervals in the report, cohort warnings, --out; ``verify --json`` names."""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from spkpeft.cli import main
from spkpeft.data.make_trials import make_trials
from spkpeft.data.trials import write_trials


@pytest.fixture
def run(evaluated_run: Path, tmp_path: Path) -> Path:
    """A copy of the evaluated run (with its embedding caches: no forward pass needed)."""
    shutil.copytree(evaluated_run, tmp_path / "run")
    return tmp_path / "run"


def _other_list(tmp_path: Path) -> Path:
    by_spk = {f"spk{s}": [f"spk{s}/utt{n}" for n in range(3)] for s in range(5, 8)}
    path = tmp_path / "other.txt"
    write_trials(make_trials(by_spk, 4, 5, seed=3), path)
    return path


def test_second_list_keeps_the_first_and_q_still_prints_metrics(run, tmp_path, capsys):
    first = json.loads((run / "report.json").read_text())["trial_lists"]["vox"]
    assert main(["-q", "eval", str(run), "--trials", str(_other_list(tmp_path)), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "other cosine: EER" in out and "other asnorm: EER" in out and "95 % CI" in out
    lists = json.loads((run / "report.json").read_text())["trial_lists"]
    assert set(lists) == {"vox", "other"}
    assert lists["vox"]["systems"] == first["systems"]  # untouched by the second evaluation
    assert lists["other"]["n_target"] == 4 and lists["other"]["calibration"]["coef"]
    md = (run / "report.md").read_text()
    assert "## vox" in md and "## other" in md and "plots/det_vox.png" in md  # the first list's plot kept


def test_report_says_what_produced_it_with_eer_interval(evaluated_run, corpus):
    entry = json.loads((evaluated_run / "report.json").read_text())["trial_lists"]["vox"]
    prov = entry["provenance"]
    assert prov["method"] == "lora" and prov["backbone"] == "tiny-wavlm"
    assert prov["training_data"] == str(corpus["train"]) and "(5 speakers, 15 utterances)" in prov["cohort"]
    m = entry["systems"]["cosine"]
    lo, hi = m["eer_ci95"]
    assert lo <= m["eer"] <= hi and hi - lo > 0.1  # 6 target trials: a wide interval
    md = (evaluated_run / "report.md").read_text()
    assert "- method: lora" in md and "95 % CI" in md and "5 speakers" in md


def test_cohort_overlapping_the_test_speakers_is_warned_and_embedded_once(run, corpus, caplog, capsys):
    argv = ["eval", str(run), "--cohort", str(corpus["test"]), "--no-plots"]
    with caplog.at_level(logging.WARNING):
        assert main(argv) == 0
    text = caplog.text
    assert "shares 3 of the 3 test speakers" in text
    assert "fewer than AS-norm's top_k=300" in text
    assert not list((run / "embeddings").glob("cohort-test-*"))  # the test cache served the cohort


def test_out_dir_holds_the_report_and_the_run_keeps_its_own(run, tmp_path, capsys):
    before = (run / "report.md").read_text()
    out = tmp_path / "elsewhere"
    assert (
        main(
            [
                "-q",
                "eval",
                str(run),
                "--trials",
                f"o={_other_list(tmp_path)}",
                "--no-plots",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert set(json.loads((out / "report.json").read_text())["trial_lists"]) == {"o"}
    assert (out / "scores" / "o.tsv").is_file()
    assert (run / "report.md").read_text() == before


def test_trial_ids_with_another_root_show_both_conventions(lora_run, tmp_path, capsys):
    bad = tmp_path / "rooted.txt"
    bad.write_text("1 test/spk5/utt0 test/spk5/utt1\n0 test/spk5/utt0 test/spk6/utt1\n")
    assert main(["eval", str(lora_run), "--trials", str(bad), "--no-plots"]) == 1
    err = capsys.readouterr().err
    assert "manifest ids look like" in err and "extra prefix 'test/'" in err


def test_verify_json_names_raw_cosine_apart(evaluated_run, corpus, capsys):
    a, b = (corpus["root"] / "test" / "spk6" / f"utt{n}.wav" for n in (0, 1))
    assert main(["-q", "verify", str(a), str(b), "--model", str(evaluated_run), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert "cosine" not in r and -1.0 <= r["raw_cosine"] <= 1.0 and r["system"] == "calibrated"


def test_det_plot_gets_the_min_dcf_operating_points(tmp_path, monkeypatch):
    from spkpeft.eval import plots
    from spkpeft.eval.metrics import det_curve, operating_point
    from spkpeft.eval.pipeline import evaluate
    from spkpeft.eval.report import write_report
    from spkpeft.eval.table import EmbeddingTable

    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(40, 8)).astype(np.float32)
    ids = [f"u{i}" for i in range(40)]
    from spkpeft.data.trials import Trial

    trials = [Trial(ids[i], ids[j], int((i % 4) == (j % 4))) for i in range(20) for j in range(20, 40)]
    res = evaluate(EmbeddingTable(ids, vecs), {"t": trials})
    seen = {}
    real = plots.plot_det

    def spy(curves, path, title="", eers=None, points=None):
        seen.update(points or {})
        return real(curves, path, title, eers, points)

    monkeypatch.setattr(plots, "plot_det", spy)
    write_report(tmp_path, res)
    (label, p_fa, p_miss), _ = seen["cosine"]
    m = res["trial_lists"]["t"]["systems"]["cosine"]["min_dcf"]["0.01"]
    assert label == "minDCF p=0.01"
    cost = (0.01 * p_miss + 0.99 * p_fa) / 0.01
    assert cost == pytest.approx(m["value"])  # the marked point is where minDCF is reached
    sc = res["scores"]["t"]
    assert operating_point(det_curve(sc["cosine"], sc["labels"]), None) == (0.0, 1.0)


def test_results_of_another_model_version_are_not_kept(run, tmp_path, caplog, capsys):
    report = json.loads((run / "report.json").read_text())
    assert report["trial_lists"]["vox"]["provenance"]["model_fingerprint"]
    report["trial_lists"]["vox"]["provenance"]["model_fingerprint"] = "retrained-since"
    (run / "report.json").write_text(json.dumps(report))
    with caplog.at_level(logging.WARNING):
        assert main(["-q", "eval", str(run), "--trials", str(_other_list(tmp_path)), "--no-plots"]) == 0
    assert set(json.loads((run / "report.json").read_text())["trial_lists"]) == {"other"}
    assert "dropping the earlier results of vox" in caplog.text


def test_a_bare_model_dir_evaluates_again_from_its_embedding_cache(lora_run, corpus, tmp_path, caplog):
    """Evaluating a model directory outside a run writes its embedding cache and report into it; they
    are not part of the model, so the next evaluation (after removing the scorer, as the refusal says)
    reuses the cache instead of refusing it as another model's."""
    from spkpeft.eval.embed import model_fingerprint

    bare = tmp_path / "model"
    shutil.copytree(lora_run / "model", bare, ignore=shutil.ignore_patterns("scoring"))  # a bare model
    fingerprint = model_fingerprint(bare)
    args = ["eval", str(bare), "--manifest", str(corpus["test"]), "--trials", f"vox={corpus['trials']}"]
    assert main(args) == 0
    assert any((bare / "embeddings").rglob("emb-*.safetensors"))
    assert model_fingerprint(bare) == fingerprint
    shutil.rmtree(bare / "scoring")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="spkpeft.eval.embed"):
        assert main(args) == 0
    assert re.search(r"embedding 0 utterances \([1-9]\d* already cached\)", caplog.text), caplog.text

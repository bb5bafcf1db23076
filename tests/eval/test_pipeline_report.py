"""evaluate() on synthetic speaker embeddings, then write_report(): files, numbers, plots."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from spkpeft.data.trials import Trial
from spkpeft.eval.calibration import Calibrator
from spkpeft.eval.config import EvalConfig
from spkpeft.eval.metrics import compute_metrics
from spkpeft.eval.pipeline import evaluate
from spkpeft.eval.report import write_report
from spkpeft.eval.scorer import Scorer, TrainingSet
from spkpeft.eval.table import EmbeddingTable

DIM = 16


def _speakers(rng, prefix, n_spk, per, offset):
    centres = rng.normal(size=(n_spk, DIM))
    ids = [f"{prefix}{s}/{k}" for s in range(n_spk) for k in range(per)]
    dur = rng.uniform(1.0, 12.0, len(ids))
    noise = rng.normal(size=(len(ids), DIM)) * (2.5 / np.sqrt(dur))[:, None]
    vec = offset + np.repeat(centres, per, axis=0) + noise
    return EmbeddingTable(ids, vec, dur), {u: u.split("/")[0] for u in ids}


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(0)
    offset = rng.normal(size=DIM) * 2  # a shared bias that mean subtraction removes
    train, utt2spk = _speakers(rng, "tr", 40, 6, offset)
    test, test_spk = _speakers(rng, "ev", 12, 5, offset)
    pairs = list(itertools.combinations(test.ids, 2))
    trials = [Trial(a, b, int(test_spk[a] == test_spk[b])) for a, b in pairs]
    cfg = EvalConfig(top_k=20, calibration_trials=3000)
    return test, {"synthetic-O": trials, "half": trials[::2]}, TrainingSet(train, utt2spk), cfg


def test_evaluate_all_systems(setup):
    test, lists, train, cfg = setup
    res = evaluate(test, lists, Scorer.fit(train, cfg), cfg)
    entry = res["trial_lists"]["synthetic-O"]
    assert set(entry["systems"]) == {"cosine", "asnorm", "calibrated"}
    assert entry["n_target"] == 12 * 10 and entry["n_trials"] == len(lists["synthetic-O"])
    sc = res["scores"]["synthetic-O"]
    for system, m in entry["systems"].items():
        ref = compute_metrics(sc[system], sc["labels"])
        assert m["eer"] == pytest.approx(ref.eer)
        assert m["min_dcf"]["0.01"]["value"] == pytest.approx(ref.dcf(0.01).value)
    cal = entry["systems"]["calibrated"]
    assert cal["cllr"] < 0.6  # calibrated LLRs are informative and roughly calibrated
    assert entry["systems"]["cosine"]["eer"] < 0.2
    assert res["calibrator"].info["scores"] == "asnorm"
    # without a training set only raw cosine (no centring) remains
    bare = evaluate(test, lists, Scorer.fit(None, cfg), cfg)
    assert set(bare["trial_lists"]["half"]["systems"]) == {"cosine"}


def test_given_calibrator_is_applied_not_retrained(setup):
    test, lists, train, cfg = setup
    cal = Calibrator(("score",), np.array([2.0]), -1.0, {"scores": "cosine"})
    res = evaluate(test, {"half": lists["half"]}, Scorer.fit(train, cfg, calibrator=cal), cfg)
    sc = res["scores"]["half"]
    np.testing.assert_allclose(sc["calibrated"], 2.0 * sc["cosine"] - 1.0)


def test_unlabelled_list_gets_scores_only(setup):
    test, lists, train, cfg = setup
    blind = [Trial(t.enroll, t.test, None) for t in lists["half"][:50]]
    plain = EvalConfig(calibrate=False, top_k=20)
    res = evaluate(test, {"blind": blind}, Scorer.fit(train, plain), plain)
    assert res["trial_lists"]["blind"]["systems"] == {}
    assert res["scores"]["blind"]["asnorm"].shape == (50,)
    mixed = [*lists["half"][:49], blind[0]]  # one unlabelled trial must not silence EER and minDCF
    with pytest.raises(ValueError, match="'mixed': trial 49 has no label"):
        evaluate(test, {"mixed": mixed}, Scorer.fit(train, plain), plain)


def test_report_files_numbers_and_plots(setup, tmp_path):
    test, lists, train, cfg = setup
    res = evaluate(test, lists, Scorer.fit(train, cfg), cfg)
    layers = {"gate/adapter": np.linspace(0.2, 0.9, 12), "gate/prompt": np.linspace(0.8, 0.3, 12)}
    written = write_report(tmp_path, res, layer_values=layers)
    md = (tmp_path / "report.md").read_text()
    for system in ("cosine", "asnorm", "calibrated"):
        m = res["trial_lists"]["synthetic-O"]["systems"][system]
        assert f"{100 * m['eer']:.3f}" in md
        assert f"{m['min_dcf']['0.01']['value']:.4f}" in md
        assert f"{m['min_dcf']['0.05']['value']:.4f}" in md
    assert "## synthetic-O" in md and "## half" in md and "Cllr" in md
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["trial_lists"]["half"]["systems"]["asnorm"]["eer"] == pytest.approx(
        res["trial_lists"]["half"]["systems"]["asnorm"]["eer"]
    )
    assert data["calibration"]["feature_names"][0] == "score"
    assert data["calibration"] == res["calibrator"].to_dict()
    assert not (tmp_path / "calibration.json").exists()  # the scorer's file lives with the model only
    for png in ("det_synthetic-O.png", "scores_synthetic-O.png", "det_half.png", "layers.png"):
        path = tmp_path / "plots" / png
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
        assert f"plots/{png}" in md
    rows = (tmp_path / "scores" / "half.tsv").read_text().splitlines()
    assert rows[0].split("\t") == ["enroll", "test", "label", "cosine", "asnorm", "calibrated"]
    assert len(rows) == 1 + len(lists["half"])
    assert written["markdown"] == tmp_path / "report.md"


def test_layer_plot_single_series_and_bad_values(tmp_path):
    from spkpeft.eval.plots import plot_layer_analysis

    p = plot_layer_analysis({"layer_weights": np.full(13, 1 / 13)}, tmp_path / "w.png")
    assert p.stat().st_size > 5_000
    with pytest.raises(ValueError, match="layer_weights"):
        plot_layer_analysis({"layer_weights": [1.0, float("nan")]}, tmp_path / "x.png")


def test_layer_series_groups_per_layer_scalars():
    from spkpeft.eval.plots import layer_series

    stats = {f"gate/adapter/{i}": 0.1 * i for i in range(12)} | {f"gate/prompt/{i}": 0.5 for i in range(12)}
    series = layer_series(stats | {"layer_weights": [0.2, 0.8]})
    np.testing.assert_allclose(series["gate/adapter"], 0.1 * np.arange(12))  # 10 and 11 after 9, not after 1
    assert series["gate/prompt"].shape == (12,)
    assert list(series["layer_weights"]) == [0.2, 0.8]
    with pytest.raises(ValueError, match="layer index"):
        layer_series({"gate": 0.3})


def test_eval_config_parses_from_yaml_dict():
    from spkpeft.config import ConfigError, parse

    cfg = parse(EvalConfig, {"top_k": 600, "p_targets": [0.01]})
    assert cfg.top_k == 600 and cfg.p_targets == [0.01] and cfg.asnorm
    with pytest.raises(ConfigError, match="top_k"):
        parse(EvalConfig, {"topk": 600})


def test_scorer_save_is_atomic_and_replaces_the_whole_folder(setup, tmp_path, monkeypatch):
    """A crash while writing leaves the previous scorer whole; a new save leaves no file of the old one."""
    test, lists, train, cfg = setup
    full = Scorer.fit(train, cfg)  # mean, cohort and calibrator
    model = tmp_path / "model"
    path = full.save(model / "scoring")
    before = {p.name: p.read_bytes() for p in path.parent.iterdir()}
    assert set(before) == {"scoring.json", "cohort.safetensors", "calibration.json"}

    def crash(self, where):  # noqa: ANN001, ANN202
        (where).write_text("half")
        raise OSError("disk full")

    monkeypatch.setattr(Calibrator, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        Scorer.fit(train, cfg).save(model / "scoring")
    assert {p.name: p.read_bytes() for p in path.parent.iterdir()} == before  # the old scorer, intact
    assert [p.name for p in model.iterdir()] == ["scoring"]  # no temporary folder left
    monkeypatch.undo()

    plain = Scorer.fit(None, EvalConfig(subtract_mean=False, asnorm=False, calibrate=False))
    plain.save(model / "scoring")
    assert [p.name for p in (model / "scoring").iterdir()] == ["scoring.json"]  # no stale cohort/calibrator
    loaded = Scorer.load(model)
    assert loaded.mean is None and loaded.cohort is None and loaded.calibrator is None

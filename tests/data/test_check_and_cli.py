from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from spkpeft.cli import main
from spkpeft.data.check import check_utterances
from spkpeft.data.manifest import CutSet, load_manifest, load_utterances, make_cut, save_manifest
from spkpeft.data.trials import read_trials


def test_check_finds_each_problem(tmp_path, write_wav):
    good = write_wav(tmp_path / "good.wav", 1.0)
    short = write_wav(tmp_path / "short.wav", 0.2)
    clipped = tmp_path / "clipped.wav"
    x = np.zeros(16000, dtype=np.float32)
    x[100:200] = 1.0
    sf.write(clipped, x, 16000, subtype="PCM_16")
    nan = tmp_path / "nan.wav"
    y = np.zeros(16000, dtype=np.float32)
    y[5] = np.nan
    sf.write(nan, y, 16000, subtype="FLOAT")
    gone = write_wav(tmp_path / "gone.wav", 1.0)
    cuts = [make_cut(p, p.stem, speaker="s") for p in (good, short, clipped, nan, gone)]
    gone.unlink()
    rep = check_utterances(load_utterances_from(cuts, tmp_path))
    assert rep.total == 5
    assert rep.counts == {
        "unreadable": 1,
        "empty": 0,
        "too_short": 1,
        "clipped": 1,
        "non_finite": 1,
        "duration_mismatch": 0,
    }
    assert "gone.wav" in rep.examples["unreadable"][0] and "short.wav" in rep.examples["too_short"][0]


def load_utterances_from(cuts, tmp_path):
    return load_utterances(save_manifest(CutSet.from_cuts(cuts), tmp_path / "m.jsonl.gz"))


def test_cli_synth_trials_check_baseline(tmp_path, capsys):
    out = tmp_path / "syn"
    assert (
        main(
            [
                "-q",
                "data",
                "synth",
                str(out),
                "--speakers",
                "3",
                "--utterances",
                "3",
                "--test-speakers",
                "3",
                "--targets",
                "9",
                "--nontargets",
                "9",
                "--format",
                "wav",
                "--max-seconds",
                "2.0",
            ]
        )
        == 0
    )
    train = load_manifest(out / "train.jsonl.gz")
    test = load_manifest(out / "test.jsonl.gz")
    assert len(train) == 9 and len(test) == 9
    assert len(read_trials(out / "trials.txt")) == 18
    assert (
        main(
            [
                "-q",
                "data",
                "trials",
                str(out / "train.jsonl.gz"),
                str(tmp_path / "t.txt"),
                "--targets",
                "6",
                "--nontargets",
                "10",
                "--seed",
                "1",
            ]
        )
        == 0
    )
    assert [t.label for t in read_trials(tmp_path / "t.txt")].count(1) == 6
    capsys.readouterr()
    assert main(["-q", "data", "check", str(out / "test.jsonl.gz"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["total"] == 9 and not any(rep["counts"].values())
    assert main(["-q", "data", "baseline", str(out / "test.jsonl.gz"), str(out / "trials.txt")]) == 0
    assert "EER" in capsys.readouterr().out


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert (
        main(
            [
                "-q",
                "data",
                "trials",
                str(tmp_path / "nope.jsonl.gz"),
                str(tmp_path / "t"),
                "--targets",
                "1",
                "--nontargets",
                "1",
            ]
        )
        == 1
    )
    assert "manifest not found" in capsys.readouterr().err
    assert main(["-q", "data", "prepare", "timit", str(tmp_path), str(tmp_path)]) == 1
    assert "valid corpora" in capsys.readouterr().err

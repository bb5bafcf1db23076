"""``spkpeft demo --audio DIR``: the user's recordings (one sub-folder per speaker) are prepared, split into
disjoint adaptation and test speakers, and run through the same pipeline; too little data is refused."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from spkpeft.cli import main
from spkpeft.data.manifest import cut_speaker, load_manifest
from spkpeft.data.trials import read_trials
from spkpeft.demo.pipeline import demo_config, run_demo
from spkpeft.demo.user_audio import held_out_speakers, prepare_user_audio


def _folder(root, counts):
    """``root/spkI/uttJ.wav``: ``counts[I]`` recordings of 0.6 s noise for speaker I."""
    rng = np.random.default_rng(0)
    for i, n in enumerate(counts):
        for j in range(n):
            path = root / f"spk{i}" / f"utt{j}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, (0.1 * rng.standard_normal(9600)).astype("float32"), 16000)
    return root


def _speakers(path):
    return {cut_speaker(c) for c in load_manifest(path)}


def test_user_folder_is_split_into_disjoint_speakers_with_test_trials(tmp_path):
    audio = _folder(tmp_path / "audio", [3] * 9)
    prepared = prepare_user_audio(audio, tmp_path / "data", targets=50, nontargets=20, seed=1)
    paths = prepared["paths"]
    adapt, test = _speakers(paths["adapt"]), _speakers(paths["test"])
    assert not adapt & test and adapt | test == {f"spk{i}" for i in range(9)}
    assert prepared["speakers"] == {"adapt": 7, "test": 2} and held_out_speakers(9) == 2
    trials = read_trials(paths["trials"])
    test_ids = {c.id for c in load_manifest(paths["test"])}
    assert {t.enroll for t in trials} | {t.test for t in trials} <= test_ids
    # 2 test speakers x 3 recordings: 6 target pairs exist, so 6 (not 50) are written
    assert sum(t.label for t in trials) == 6 and sum(1 - t.label for t in trials) == 9
    again = prepare_user_audio(audio, tmp_path / "data2", targets=50, nontargets=20, seed=1)
    assert _speakers(again["paths"]["test"]) == test  # seeded


def test_too_few_speakers_are_refused(tmp_path):
    audio = _folder(tmp_path / "audio", [3] * 5)
    with pytest.raises(ValueError, match=r"5 speaker folder\(s\) .*at least 6"):
        prepare_user_audio(audio, tmp_path / "data", targets=6, nontargets=6, seed=0)


def test_a_test_speaker_with_one_recording_is_refused_by_name(tmp_path, capsys):
    audio = _folder(tmp_path / "audio", [1] * 6)
    argv = ["demo", "--backbone", "tiny-whisper", "--audio", str(audio), "--out", str(tmp_path / "o")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "fewer than 2 recordings: spk" in err and "(1)" in err and "Traceback" not in err


def test_demo_on_real_recordings(tmp_path, real_speech, tiny_sizes):
    audio = real_speech / "librispeech-test-other"  # 10 speakers x 10 utterances
    out = tmp_path / "demo"
    summary = run_demo(demo_config("tiny-whisper", out_dir=str(out), audio=str(audio), **tiny_sizes))
    assert summary["audio"] == str(audio) and summary["speakers"] == {"adapt": 8, "test": 2}
    assert list(summary["stage_seconds"])[:2] == ["prepare audio", "backbone"]
    assert not _speakers(out / "data" / "adapt.jsonl.gz") & _speakers(out / "data" / "test.jsonl.gz")
    for s in summary["systems"]:
        assert all(0 <= v <= 100 for v in s["eer"].values())
    assert (out / "unipet" / "report.md").is_file()

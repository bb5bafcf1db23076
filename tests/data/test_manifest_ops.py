"""Folder preparation with a chosen speaker level and symlinks, speaker counts in the CLI, combine and
split of manifests, and the trial-id mismatch message."""

from __future__ import annotations

import json
import logging
from collections import Counter

import pytest

from spkpeft.cli import main
from spkpeft.data.corpora import prepare
from spkpeft.data.manifest import cut_speaker, load_manifest
from spkpeft.data.trials import Trial, check_trials

NESTED = {f"corpus{c}/spk{s}": [0.4, 0.5, 0.6] for c in (1, 2) for s in range(4)}


def _speakers(path) -> Counter:
    return Counter(cut_speaker(c) for c in load_manifest(path))


def test_speaker_level_two_names_corpus_and_speaker(tmp_path, audio_tree):
    audio_tree(tmp_path / "root", NESTED)
    out = prepare("folder", tmp_path / "root", tmp_path / "out", speaker_level=2)["folder"]
    assert _speakers(out) == {name: 3 for name in NESTED}
    assert "corpus1/spk0/utt0.wav" in load_manifest(out).ids


def test_level_one_on_nested_tree_warns_with_the_fix(tmp_path, caplog, audio_tree):
    audio_tree(tmp_path / "root", NESTED)
    with caplog.at_level(logging.WARNING, logger="spkpeft.data.prepare"):
        out = prepare("folder", tmp_path / "root", tmp_path / "out")["folder"]
    assert set(_speakers(out)) == {"corpus1", "corpus2"}
    assert "--speaker-level 2" in caplog.text


def test_cli_prints_speaker_count_and_check_reports_speakers(tmp_path, capsys, audio_tree):
    audio_tree(tmp_path / "root", NESTED)
    args = ["-q", "data", "prepare", "folder", str(tmp_path / "root"), str(tmp_path / "out")]
    assert main([*args, "--speaker-level", "2"]) == 0
    assert "24 utterances, 8 speakers" in capsys.readouterr().out
    check = ["-q", "data", "check", str(tmp_path / "out" / "folder.jsonl.gz"), "--min-seconds", "0.1"]
    assert main(check) == 0
    assert "24 utterances, 8 speakers" in capsys.readouterr().out
    assert main([*check, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["speakers"] == 8


def test_speaker_level_is_refused_for_other_corpora(tmp_path, capsys):
    assert main(["-q", "data", "prepare", "musan", str(tmp_path), str(tmp_path), "--speaker-level", "2"]) == 1
    assert "'folder' only" in capsys.readouterr().err


def test_symlinked_speaker_folders_are_followed(tmp_path, audio_tree):
    audio_tree(tmp_path / "real", {"spkA": [0.4, 0.5], "spkB": [0.4]})
    root = tmp_path / "root"
    root.mkdir()
    for spk in ("spkA", "spkB"):
        (root / spk).symlink_to(tmp_path / "real" / spk, target_is_directory=True)
    (root / "loop").symlink_to(root, target_is_directory=True)  # a cycle must not hang the scan
    out = prepare("folder", root, tmp_path / "out")["folder"]
    assert _speakers(out)["spkA"] == 2 and _speakers(out)["spkB"] == 1


def test_no_audio_error_says_what_was_found(tmp_path):
    (tmp_path / "spk").mkdir()
    for i in range(3):
        (tmp_path / "spk" / f"a{i}.m4a").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"no audio files found.*3 \.m4a"):
        prepare("folder", tmp_path, tmp_path / "out")


def test_combine_and_split(tmp_path, capsys, audio_tree):
    audio_tree(tmp_path / "a", {f"a{s}": [0.4, 0.5] for s in range(3)})
    audio_tree(tmp_path / "b", {f"b{s}": [0.4, 0.5] for s in range(3)})
    ma = prepare("folder", tmp_path / "a", tmp_path / "ma")["folder"]
    mb = prepare("folder", tmp_path / "b", tmp_path / "mb")["folder"]
    both = tmp_path / "both.jsonl.gz"
    assert main(["-q", "data", "combine", str(both), str(ma), str(mb)]) == 0
    assert "12 utterances, 6 speakers" in capsys.readouterr().out
    assert main(["-q", "data", "split", str(both), str(tmp_path / "sp"), "--test-speakers", "2"]) == 0
    train, test = _speakers(tmp_path / "sp" / "train.jsonl.gz"), _speakers(tmp_path / "sp" / "test.jsonl.gz")
    assert len(test) == 2 and len(train) == 4 and not set(train) & set(test)
    assert main(["-q", "data", "split", str(both), str(tmp_path / "sp2"), "--test-speakers", "2"]) == 0
    assert _speakers(tmp_path / "sp2" / "test.jsonl.gz") == test  # same seed, same draw
    assert main(["-q", "data", "split", str(both), str(tmp_path / "sp3"), "--test-speakers", "6"]) == 1
    assert "must lie in [1, 5]" in capsys.readouterr().err


def test_combine_refuses_a_shared_cut_id(tmp_path, capsys, audio_tree):
    audio_tree(tmp_path / "a", {"s": [0.4]})
    m = prepare("folder", tmp_path / "a", tmp_path / "ma")["folder"]
    assert main(["-q", "data", "combine", str(tmp_path / "c.jsonl.gz"), str(m), str(m)]) == 1
    assert "'s/utt0.wav' is in both" in capsys.readouterr().err


def test_trial_id_mismatch_shows_both_conventions_and_the_prefix():
    known = {"spk1/a.wav", "spk2/b.wav"}
    with pytest.raises(ValueError, match=r"manifest ids look like.*trial ids like.*extra prefix 'vctk/'"):
        check_trials([Trial("vctk/spk1/a.wav", "vctk/spk2/b.wav", 0)], known)
    with pytest.raises(ValueError) as e:  # a partial match is a missing-utterance problem, not naming
        check_trials([Trial("spk1/a.wav", "spk3/c.wav", 0)], known)
    assert "No trial id matches" not in str(e.value) and "spk3/c.wav" in str(e.value)

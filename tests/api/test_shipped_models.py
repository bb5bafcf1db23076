"""What a user ships is never lost or silently redirected: export never deletes its source, eval never
replaces an export's scoring state, and a model directory says when its backbone lives outside it."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from spkpeft.cli import main

STATE = ("scoring/scoring.json", "scoring/calibration.json", "scoring/cohort.safetensors")


@pytest.fixture
def run_copy(evaluated_run: Path, tmp_path: Path) -> Path:
    """A private copy of the evaluated run (tests here try to destroy it)."""
    return Path(shutil.copytree(evaluated_run, tmp_path / "run", ignore=shutil.ignore_patterns("embeddings")))


def test_export_onto_its_own_source_is_refused(run_copy: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "export"
    assert main(["export", str(run_copy), str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    capsys.readouterr()
    for src, dst in ((out, out), (run_copy, run_copy / "model"), (run_copy, run_copy), (out, out / "sub")):
        assert main(["export", str(src), str(dst), "--force"]) == 1
        assert "overlaps the model being exported" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert (run_copy / "model" / "model.json").is_file() and (
        run_copy / "model" / "backend.safetensors"
    ).is_file()
    assert main(["export", str(out), str(tmp_path / "again"), "--force"]) == 0  # an export re-exports


def test_eval_never_replaces_a_shipped_scoring_state(
    run_copy: Path, corpus: dict, tmp_path: Path, capsys
) -> None:  # noqa: ANN001
    from spkpeft import SpeakerVerifier

    out = tmp_path / "export"
    assert main(["export", str(run_copy), str(out)]) == 0
    shipped = {n: (out / n).read_bytes() for n in STATE}
    capsys.readouterr()
    rc = main(["eval", str(out), "--manifest", str(corpus["test"]), "--trials", str(corpus["trials"])])
    assert rc == 1 and "ships its own scoring state" in capsys.readouterr().err
    assert {n: (out / n).read_bytes() for n in STATE} == shipped
    assert SpeakerVerifier.from_pretrained(out, device="cpu").scorer.calibrated
    assert main(["eval", str(run_copy)]) == 0  # the training run itself is evaluated as before


def test_a_backbone_outside_the_model_dir_is_named_never_reached_by_dotdot(
    run_copy: Path, tmp_path: Path, caplog, monkeypatch
) -> None:  # noqa: ANN001
    from spkpeft.model import load_speaker_model

    out = tmp_path / "export"
    assert main(["-q", "export", str(run_copy), str(out)]) == 0
    shutil.move(out / "backbone", tmp_path / "outside")
    meta = json.loads((out / "model.json").read_text())

    def point_to(path: str) -> None:
        meta["backbone"]["name_or_path"] = path
        (out / "model.json").write_text(json.dumps(meta))

    point_to(str(tmp_path / "outside"))
    with caplog.at_level(logging.WARNING, logger="spkpeft.model"):
        load_speaker_model(out)
    assert "not self-contained" in caplog.text and str((tmp_path / "outside").resolve()) in caplog.text
    point_to("../outside")  # resolved through the model directory this would be tmp_path/outside
    (tmp_path / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a" / "b")  # where ../outside does not exist
    with pytest.raises((OSError, ValueError)):
        load_speaker_model(out)
    shutil.move(tmp_path / "outside", out / "backbone")
    point_to("backbone")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="spkpeft.model"):
        load_speaker_model(out)
    assert "not self-contained" not in caplog.text

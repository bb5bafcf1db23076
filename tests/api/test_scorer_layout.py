"""The scorer lives in the model directory (``model/scoring/``); runs and exports written before, with the
scorer files at their top level, still verify, export and re-evaluate (read as a fallback, never written)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from spkpeft.cli import main

FILES = ("scoring.json", "calibration.json", "cohort.safetensors")


def _to_old_layout(model_dir: Path, top: Path) -> None:
    """Move ``model_dir/scoring/*`` to ``top``, where spkpeft eval and export kept them before."""
    for name in FILES:
        shutil.move(model_dir / "scoring" / name, top / name)
    (model_dir / "scoring").rmdir()


@pytest.fixture
def old_run(evaluated_run: Path, tmp_path: Path) -> Path:
    """A copy of the evaluated run (embedding caches included) in the layout before model/scoring/."""
    run = Path(shutil.copytree(evaluated_run, tmp_path / "old_run"))
    _to_old_layout(run / "model", run)
    return run


def _pair(corpus: dict) -> tuple[Path, Path]:
    return corpus["root"] / "test" / "spk5" / "utt0.wav", corpus["root"] / "test" / "spk6" / "utt1.wav"


def test_an_old_run_verifies_exports_and_re_evaluates_into_the_new_layout(
    old_run: Path, evaluated_run: Path, corpus: dict, tmp_path: Path
) -> None:
    from spkpeft import SpeakerVerifier

    a, b = _pair(corpus)
    new = SpeakerVerifier.from_pretrained(evaluated_run, device="cpu").verify(a, b)
    for given in (old_run, old_run / "model"):
        old = SpeakerVerifier.from_pretrained(given, device="cpu")
        assert old.scorer.calibrated and old.scorer.system == "asnorm"
        assert old.verify(a, b).score == pytest.approx(new.score, abs=1e-6)

    out = tmp_path / "export"
    assert main(["export", str(old_run), str(out)]) == 0
    assert all((out / "scoring" / n).is_file() for n in FILES)  # written in the new layout only
    assert not any((out / n).exists() for n in FILES)
    exported = SpeakerVerifier.from_pretrained(out, device="cpu").verify(a, b)
    assert exported.calibrated and exported.score == pytest.approx(new.score, abs=1e-3)

    assert main(["eval", str(old_run), "--no-plots"]) == 0
    assert all((old_run / "model" / "scoring" / n).is_file() for n in FILES)
    assert not any((old_run / n).exists() for n in FILES)  # the superseded copies are gone
    again = SpeakerVerifier.from_pretrained(old_run, device="cpu").verify(a, b)
    assert again.score == pytest.approx(new.score, abs=1e-6)


def test_an_old_export_loads_its_scorer_and_is_never_evaluated_in_place(
    evaluated_run: Path, corpus: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from spkpeft import SpeakerVerifier

    out = tmp_path / "export"
    assert main(["export", str(evaluated_run), str(out)]) == 0
    _to_old_layout(out, out)
    a, b = _pair(corpus)
    v = SpeakerVerifier.from_pretrained(out, device="cpu")
    assert v.scorer.calibrated and v.verify(a, b).calibrated
    capsys.readouterr()
    rc = main(["eval", str(out), "--manifest", str(corpus["test"]), "--trials", str(corpus["trials"])])
    assert rc == 1 and "ships its own scoring state" in capsys.readouterr().err
    assert not (out / "scoring").exists()

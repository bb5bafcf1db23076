"""Two processes never write one run directory or one embedding cache: the second gets a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from spkpeft.cli import main


def test_embed_into_a_cache_another_process_is_writing_is_refused(
    lora_run: Path, corpus: dict, tmp_path: Path, lock_holder, capsys
) -> None:  # noqa: ANN001
    out = tmp_path / "emb"
    pid = lock_holder(out)
    assert main(["embed", str(lora_run), str(corpus["test"]), str(out)]) == 1
    err = capsys.readouterr().err
    assert f"embedding cache {out} is in use" in err and f"pid {pid}" in err
    assert not list(out.glob("emb-*"))


def test_train_into_a_run_directory_another_process_is_using_is_refused(
    corpus: dict, tmp_path: Path, lock_holder
) -> None:  # noqa: ANN001
    from spkpeft.dir_lock import DirectoryInUseError
    from spkpeft.train.experiment import load_experiment
    from spkpeft.train.trainer import train

    run = tmp_path / "run"
    pid = lock_holder(run)
    cfg = load_experiment("tiny", [f"data.train_manifest={corpus['train']}", f"train.output_dir={run}"])
    with pytest.raises(DirectoryInUseError, match=f"run directory {run} is in use .*pid {pid}"):
        train(cfg)
    assert sorted(p.name for p in run.iterdir()) == [".spkpeft.lock"]  # nothing written, nothing read

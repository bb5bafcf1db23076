"""One writer per directory: a second process is refused with the owner's pid; a killed owner frees it."""

from __future__ import annotations

import os
import signal

import pytest

from spkpeft.dir_lock import DirectoryInUseError, exclusive_dir


def test_second_process_is_refused_naming_the_owner_and_a_killed_owner_frees_it(tmp_path, lock_holder):
    pid = lock_holder(tmp_path / "run")
    with pytest.raises(DirectoryInUseError, match=rf"run directory .*run is in use .*pid {pid}"):
        with exclusive_dir(tmp_path / "run", "run directory"):
            pass
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    with exclusive_dir(tmp_path / "run") as d:  # no stale lock after SIGKILL
        assert (d / ".spkpeft.lock").read_text().strip() == str(os.getpid())


def test_lock_is_released_after_the_block_and_on_error(tmp_path):
    with pytest.raises(KeyError):
        with exclusive_dir(tmp_path):
            raise KeyError("x")
    with exclusive_dir(tmp_path):
        with pytest.raises(DirectoryInUseError):  # another open of the lock file, even in this process
            with exclusive_dir(tmp_path):
                pass

"""spkpeft.atomic: a folder or file is replaced whole or not at all, and leaves no temporary behind."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from spkpeft.atomic import replace_dir, replace_file


def _fill(files: dict[str, str]):  # noqa: ANN202
    def write(d: Path) -> str:
        for name, text in files.items():
            (d / name).write_text(text)
        return d.name

    return write


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


def test_replace_dir_swaps_the_whole_folder(tmp_path: Path) -> None:
    final = tmp_path / "model"
    tmp_name = replace_dir(final, _fill({"a.txt": "1", "stale.txt": "x"}))
    assert tmp_name.startswith(".tmp-model-")  # what write saw: a private sibling, not the final path
    replace_dir(final, _fill({"a.txt": "2"}))
    assert sorted(p.name for p in final.iterdir()) == ["a.txt"]  # nothing of the old one survives
    assert (final / "a.txt").read_text() == "2"
    assert _leftovers(tmp_path) == []


def test_a_failing_write_leaves_the_old_folder_and_no_partial(tmp_path: Path) -> None:
    final = tmp_path / "scoring"
    replace_dir(final, _fill({"a.txt": "old"}))

    def broken(d: Path) -> None:
        (d / "a.txt").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        replace_dir(final, broken)
    assert (final / "a.txt").read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_a_failing_swap_puts_the_old_folder_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import spkpeft.atomic as atomic

    final = tmp_path / "export"
    replace_dir(final, _fill({"a.txt": "old"}))
    real = atomic.os.replace
    calls = []

    def second_fails(src, dst):  # noqa: ANN001, ANN202
        calls.append(src)
        if len(calls) == 2:  # final moved aside, then the new folder cannot be renamed in
            raise OSError("rename failed")
        return real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", second_fails)
    with pytest.raises(OSError, match="rename failed"):
        replace_dir(final, _fill({"a.txt": "new"}))
    monkeypatch.setattr(atomic.os, "replace", real)
    assert (final / "a.txt").read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_keep_existing_keeps_the_first_writer(tmp_path: Path) -> None:
    final = tmp_path / "cache"
    both_written = threading.Barrier(2, timeout=60)

    def write(i: int):  # noqa: ANN202
        def w(d: Path) -> int:
            (d / "who").write_text(str(i))
            both_written.wait()  # both have their copy before either renames
            return i

        return w

    with ThreadPoolExecutor(2) as pool:
        got = sorted(pool.map(lambda i: replace_dir(final, write(i), keep_existing=True), range(2)))
    assert got == [0, 1]
    assert (final / "who").read_text() in ("0", "1")
    assert _leftovers(tmp_path) == []  # the loser's copy is gone
    replace_dir(final, _fill({"who": "late"}), keep_existing=True)
    assert (final / "who").read_text() in ("0", "1")


def test_replace_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    replace_file(path, lambda t: t.write_text("1"))
    assert path.read_text() == "1" and oct(path.stat().st_mode & 0o777) == oct(0o644)

    def broken(t: Path) -> None:
        t.write_text("half")
        raise ValueError("nan")

    with pytest.raises(ValueError, match="nan"):
        replace_file(path, broken)
    assert path.read_text() == "1"
    assert _leftovers(tmp_path) == []


def test_a_file_in_the_way_is_refused_before_writing(tmp_path: Path) -> None:
    final = tmp_path / "out"
    final.write_text("not a folder")
    called = []
    with pytest.raises(FileExistsError, match="exists and is not a directory"):
        replace_dir(final, called.append)
    assert called == [] and final.read_text() == "not a folder"
    assert _leftovers(tmp_path) == []

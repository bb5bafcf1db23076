"""Atomic writes: a file or a folder is written under a temporary name beside its final path, then renamed
into place, so a crash or an error leaves the old version or the new one, never a half-written mix.

Every writer of checkpoints, models, scorers, caches and conversions goes through these two functions.
The temporary names start with ``.tmp-NAME-PID-`` and end in a random part: two writers (processes or
threads) never share one, and :func:`spkpeft.train.checkpoint.remove_partial` can tell the leftovers of a
dead process by the PID.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def _temp_dir(final: Path) -> Path:
    """A fresh private folder beside ``final`` (same file system, so the rename into place is atomic)."""
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-{os.getpid()}-", dir=final.parent))
    tmp.chmod(0o755)  # mkdtemp makes it 0700; the result should read like any other folder
    return tmp


def replace_file(path: str | Path, write: Callable[[Path], T], suffix: str = "") -> T:
    """Call ``write(tmp)`` to write a temporary file, then rename it to ``path``; returns what ``write``
    returns. On an error the temporary file is removed and ``path`` is untouched. ``suffix`` ends the
    temporary name, for writers that pick the format by it (e.g. ``.npz``)."""
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".tmp-{path.name}-{os.getpid()}-", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        tmp.chmod(0o644)  # mkstemp makes it 0600
        result = write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return result


def replace_dir(final: str | Path, write: Callable[[Path], T], keep_existing: bool = False) -> T:
    """Call ``write(tmp)`` to fill a fresh temporary folder, then swap it in as ``final``; returns what
    ``write`` returns.

    An existing ``final`` is moved aside and deleted once the new one is in place. With
    ``keep_existing`` (a content-addressed cache that another process may have filled meanwhile), a
    ``final`` that exists by then is kept and the new copy discarded. On an error the temporary folder
    is removed and ``final`` is untouched. A ``final`` that is a file is refused before ``write`` runs.
    """
    final = Path(final)
    if final.exists() and not final.is_dir():
        raise FileExistsError(f"{final} exists and is not a directory")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_dir(final)
    old = tmp.with_name(".old-" + tmp.name[len(".tmp-") :])
    try:
        result = write(tmp)
        if final.exists() and not keep_existing:
            os.replace(final, old)
        try:
            os.replace(tmp, final)
        except OSError:
            if not (keep_existing and final.exists()):
                raise
            shutil.rmtree(tmp)  # another process filled ``final`` first: keep its copy
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not final.exists():
            os.replace(old, final)  # the swap failed half-way: put the old version back
        raise
    shutil.rmtree(old, ignore_errors=True)
    return result

"""Progress reporting that only the CLI turns on: library code wraps long loops in :func:`track`, which is
a no-op unless :func:`enable` was called (by ``spkpeft.cli``), so library code never writes to the terminal
on its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
_enabled = False


def enable(flag: bool = True) -> None:
    global _enabled
    _enabled = flag


def enabled() -> bool:
    return _enabled


def track(iterable: Iterable[T], total: int | None = None, desc: str = "", **kw: Any) -> Iterator[T]:
    """``tqdm(iterable)`` when progress is enabled, else the iterable itself.

    The returned bar (when enabled) supports ``set_postfix``; callers that need it use :func:`bar`.
    """
    if not _enabled:
        return iter(iterable)
    from tqdm.auto import tqdm

    return iter(tqdm(iterable, total=total, desc=desc, dynamic_ncols=True, **kw))


class _NullBar:
    def update(self, n: int = 1) -> None: ...

    def set_postfix(self, *a: Any, **k: Any) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> _NullBar:
        return self

    def __exit__(self, *exc: Any) -> None: ...


def bar(total: int | None = None, desc: str = "", initial: int = 0, **kw: Any) -> Any:
    """A manual progress bar (``update``/``set_postfix``/``close``); a silent one when disabled."""
    if not _enabled:
        return _NullBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, initial=initial, dynamic_ncols=True, **kw)


def sync_transformers_progress() -> None:
    """Show transformers' own weight loading/saving bars only when spkpeft shows progress bars."""
    from transformers.utils import logging as hf_logging

    if _enabled:
        hf_logging.enable_progress_bar()
    else:
        hf_logging.disable_progress_bar()

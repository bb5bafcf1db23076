"""Make ``import lhotse`` work when ``urllib3`` is not installed.

lhotse 1.33 imports ``urllib3.exceptions.TimeoutError`` at package import time (``lhotse/ais``, its
AIStore client) without declaring urllib3 as a dependency, so ``import lhotse`` fails in an
environment without ``requests``/``urllib3``. spkpeft never uses AIStore; when urllib3 is absent we
register a minimal ``urllib3.exceptions`` module holding the one name lhotse imports. With urllib3
installed (the proper fix: add it to the dependencies) this module does nothing.
"""

from __future__ import annotations

import importlib.util
import sys
import types


def ensure_lhotse_importable() -> None:
    if "urllib3" in sys.modules or importlib.util.find_spec("urllib3") is not None:
        return
    pkg = types.ModuleType("urllib3")
    exc = types.ModuleType("urllib3.exceptions")

    class TimeoutError(Exception):  # noqa: A001 - mirrors urllib3.exceptions.TimeoutError
        """Stand-in for urllib3.exceptions.TimeoutError (urllib3 is not installed)."""

    exc.TimeoutError = TimeoutError
    pkg.exceptions = exc
    pkg.__spkpeft_stub__ = True
    sys.modules["urllib3"] = pkg
    sys.modules["urllib3.exceptions"] = exc


ensure_lhotse_importable()

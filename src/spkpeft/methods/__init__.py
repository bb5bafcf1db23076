"""Parameter-efficient tuning methods. Every module in this package registers itself in ``METHODS``."""

import importlib
import pkgutil

from spkpeft.methods.base import METHODS, MergeNotSupported, Method, MethodConfig, declared_groups

for _m in pkgutil.iter_modules(__path__):
    if _m.name != "base":
        importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["METHODS", "Method", "MethodConfig", "MergeNotSupported", "declared_groups"]

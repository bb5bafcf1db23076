"""Speaker back-ends (layer aggregation + pooling + embedding). Every module registers itself in
``BACKENDS``."""

import importlib
import pkgutil

from spkpeft.backends.base import BACKENDS, BackendConfig, layer_sum_backends

for _m in pkgutil.iter_modules(__path__):
    if _m.name != "base":
        importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["BACKENDS", "BackendConfig", "layer_sum_backends"]

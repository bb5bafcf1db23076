"""Speaker classification losses (softmax family with margins) and the margin warm-up schedule.
Every module registers its losses in ``LOSSES``."""

import importlib
import pkgutil

from spkpeft.losses.base import LOSSES, LossConfig, LossOutput
from spkpeft.losses.schedule import MarginSchedule

for _m in pkgutil.iter_modules(__path__):
    if _m.name not in ("base", "schedule"):
        importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["LOSSES", "LossConfig", "LossOutput", "MarginSchedule"]

"""The experiment config lives in :mod:`spkpeft.train.experiment`; this name keeps older imports working."""

from spkpeft.train.experiment import *  # noqa: F403
from spkpeft.train.experiment import resolve_stages  # noqa: F401  (explicitly: the most imported names)

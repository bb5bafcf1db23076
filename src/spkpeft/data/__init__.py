"""Speech data: manifests (lhotse CutSets), corpus preparation, audio I/O, training crops and
augmentation, evaluation batches, trial lists and the synthetic speaker corpus."""

from spkpeft.data import _lhotse_compat  # noqa: F401  (must run before anything imports lhotse)

"""The training loop (accelerate), optimiser groups and schedules, checkpoints, resumable sampling.

``from spkpeft.train import train`` -> :func:`spkpeft.train.trainer.train` (imported lazily).
"""


def __getattr__(name: str):  # noqa: ANN202  (lazy: keep `import spkpeft.train.optim` light)
    if name in ("train", "Trainer", "NonFiniteLossError", "RunExistsError"):
        from spkpeft.train import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module 'spkpeft.train' has no attribute {name!r}")

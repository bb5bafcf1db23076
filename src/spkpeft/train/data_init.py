"""A method's data-dependent initialisation (its optional ``data_init(forward)``, e.g. the prompt methods'
``prompt_init: frames``), run by the trainer once for each freshly built method, never on resume."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader


def run_data_init(tm: Any, loader: DataLoader, set_epoch: Any) -> bool:
    """Call ``tm.model.method.data_init`` with a forward of the model on the stage's first training batch,
    in eval mode without autograd, on the model's own device. ``set_epoch()`` puts the loader at the
    stage's first batch. Run it before ``acc.prepare``: a distributed run then broadcasts rank 0's result
    to every process. Returns whether the method had a ``data_init``."""
    init = getattr(tm.model.method, "data_init", None)
    if init is None:
        return False
    set_epoch()
    batch = next(iter(loader))
    device = next(tm.parameters()).device
    wav, lengths = batch["wav"].to(device), batch["lengths"].to(device)
    was = tm.training
    tm.eval()
    try:
        with torch.no_grad():
            init(lambda: tm.model(wav, lengths))
    finally:
        tm.train(was)
    return True

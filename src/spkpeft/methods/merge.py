"""Export a method folded into its backbone: a plain transformers model directory (no spkpeft, no peft).

Only methods whose update is a change of weights can do this (lora, dora, pissa, spectral); the others
raise :class:`~spkpeft.methods.base.MergeNotSupported` from ``merge()``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

log = logging.getLogger(__name__)


def save_merged(method, out_dir: str | Path) -> Path:  # noqa: ANN001 (any Method)
    """Write ``method.merge()`` with ``save_pretrained`` into ``out_dir``; returns the directory.

    The live model is left as it is (the method merges a copy), so training can go on afterwards. The
    result loads with ``transformers.AutoModel.from_pretrained(out_dir)`` alone and gives the adapted
    model's outputs.
    """
    out = Path(out_dir)
    model: nn.Module = method.merge()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    log.info("saved %s merged into %s to %s", method.name, type(model).__name__, out)
    return out

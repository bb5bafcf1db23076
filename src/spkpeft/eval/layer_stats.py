"""Per-layer values for the evaluation report: averaged UniPET gate values and back-end layer weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch


class LayerStats:
    """Running per-utterance average of ``method.stats()`` and ``backend.layer_weights()`` over forward
    passes (UniPET gate values, LAP's input-dependent layer attention, static softmax weights).

    ``wrap(embed_fn)`` returns an embed function that records after every call. Sums and counts can be
    saved and merged with an earlier run's (cached embeddings are not recomputed, so their statistics
    come from the file).
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.sums: dict[str, np.ndarray] = {}
        self.count = 0

    def wrap(self, embed_fn: Any) -> Any:
        def recorded(wav: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            out = embed_fn(wav, lengths)
            self.record(int(wav.shape[0]))
            return out

        return recorded

    def record(self, rows: int) -> None:
        values = {k: np.array([v]) for k, v in self.model.method.stats().items()}
        layer_weights = self.model.backend.layer_weights()
        if layer_weights is not None:
            values["layer_weights"] = layer_weights.detach().float().cpu().numpy().reshape(-1)
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + rows * np.asarray(v, dtype=np.float64)
        self.count += rows

    def means(self) -> dict[str, list[float] | float]:
        """name -> average value (a list for per-layer vectors); {} before any forward."""
        if not self.count:
            return {}
        out: dict[str, list[float] | float] = {}
        for k, s in self.sums.items():
            m = s / self.count
            out[k] = float(m[0]) if k != "layer_weights" else [float(x) for x in m]
        return out

    def load_merge(self, path: Path) -> None:
        if path.is_file():
            d = json.loads(path.read_text())
            for k, v in d["sums"].items():
                self.sums[k] = self.sums.get(k, 0.0) + np.asarray(v, dtype=np.float64)
            self.count += int(d["count"])

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        sums = {k: np.asarray(v).tolist() for k, v in self.sums.items()}
        path.write_text(json.dumps({"count": self.count, "sums": sums}) + "\n")


def layer_values(stats: LayerStats, model: Any) -> dict:
    """Per-layer series for the report: averaged ``method.stats()`` keyed ``<series>/<layer>`` and the
    back-end's layer weights (the static ones even when every embedding came from the cache)."""
    means = stats.means()
    if "layer_weights" not in means:
        w = model.backend.layer_weights()
        if w is not None:
            means["layer_weights"] = [float(x) for x in w.detach().float().cpu().reshape(-1)]
    return {k: v for k, v in means.items() if k == "layer_weights" or k.rpartition("/")[2].isdigit()}

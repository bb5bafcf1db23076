"""Layer analysis values of the report: UniPET gates averaged over every utterance embedded."""

from __future__ import annotations

import numpy as np
import torch

from spkpeft.eval.layer_stats import LayerStats, layer_values
from spkpeft.train.experiment import build_model, load_experiment


def test_unipet_gates_are_averaged_per_utterance_over_batches() -> None:
    cfg = load_experiment(
        "tiny", ["method={name: unipet, bottleneck: 4, inter_bottleneck: 4, prompt_length: 2}"]
    )
    model = build_model(cfg).eval()
    with torch.no_grad():  # gates that depend on the input
        for gate in [*model.method.adapter_gates, *model.method.prompt_gates]:
            for p in gate.parameters():
                p.normal_(0, 0.5)
    stats = LayerStats(model)
    embed = stats.wrap(model.embed)
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(3, 8000, generator=g) * 0.1, torch.randn(1, 12000, generator=g)]
    per_batch = []
    for wav in batches:
        embed(wav, torch.full((wav.shape[0],), wav.shape[1]))
        per_batch.append((wav.shape[0], model.method.stats()))
    means = stats.means()
    key = "gate/adapter/1"
    expected = sum(n * s[key] for n, s in per_batch) / sum(n for n, _ in per_batch)
    assert per_batch[0][1][key] != per_batch[1][1][key]  # the gates did move with the input
    assert np.isclose(means[key], expected)
    values = layer_values(stats, model)
    assert {"gate/adapter/0", "gate/prompt/1", "layer_weights"} <= set(values)
    from spkpeft.eval.plots import layer_series

    series = layer_series(values)
    assert series["gate/adapter"].shape == (2,) and series["layer_weights"].shape == (3,)

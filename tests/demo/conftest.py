"""Shared sizes for the demo tests of the pre-trained-backbone path: a few steps on a tiny corpus."""

from __future__ import annotations

import pytest


@pytest.fixture
def tiny_sizes() -> dict:
    """DemoConfig fields that make the pre-trained-backbone path run in seconds (2 steps per system)."""
    return dict(
        adapt_speakers=4,
        test_speakers=3,
        utterances=3,
        targets=6,
        nontargets=6,
        adapt_steps=2,
        batch_size=4,
        crop_seconds=1.0,
        embed_dim=16,
        unipet={"bottleneck": 8, "inter_bottleneck": 8, "prompt_length": 3},
    )

"""``train.compile``: the training module under ``torch.compile``, with batch lengths bucketed.

The module is compiled in place (``nn.Module.compile``), so its type, parameters and hooks stay what
they were: accelerate's ``prepare`` (DDP included), checkpoints and method hooks see the same module. The
layer loop, the methods' hooks (prompts, adapters, gates) and peft's LoRA/DoRA layers trace without
graph breaks; the breaks left are the data-dependent checks before the front end and the back-end (input
validation, whether anything is padded), a handful of small graphs per step.

Shapes. Training crops have a fixed length, but utterances shorter than the crop are zero-padded, so the
longest real length of a batch (what :class:`~spkpeft.backbones.backbone.SpeechBackbone` cuts the batch
to) varies; without care every new length would compile again. The backbone rounds it up to a multiple
of :data:`LENGTH_BUCKET` samples (0.5 s: at most 6 shapes for 3 s crops); the extra samples are padding
and masked exactly. ``dynamic=False``: each bucket gets static-shape kernels.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

log = logging.getLogger(__name__)

LENGTH_BUCKET = 8000  # samples (0.5 s at 16 kHz)


def compile_train_module(tm: nn.Module, backend: str = "inductor", bucket: int = LENGTH_BUCKET) -> nn.Module:
    """Compile ``tm`` (a :class:`~spkpeft.train.module.TrainModule`) in place; returns it.

    Args:
        tm: the training module; ``tm.model.backbone`` gets ``length_bucket = bucket``.
        backend: the ``torch.compile`` backend (``inductor``; tests use ``aot_eager``).
        bucket: samples the batch length is rounded up to (0 = exact lengths).
    """
    backbone = getattr(tm.model, "backbone", None)
    if backbone is not None and hasattr(backbone, "length_bucket"):
        backbone.length_bucket = bucket
    # one compiled graph per (bucket, trainable set) and stage: allow more than the default 8 entries
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 32)
    tm.compile(backend=backend, dynamic=False)
    log.info("train.compile: %s backend, batch lengths bucketed to %d samples", backend, bucket)
    return tm

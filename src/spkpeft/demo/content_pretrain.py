"""Content pre-training of a small backbone: frame-level unit recognition on synthetic speech.

Real speaker-verification backbones (WavLM, HuBERT, wav2vec2) are pre-trained without speaker labels,
on what is said. The demo mirrors that so there is something pre-trained to adapt: a randomly
initialised tiny WavLM learns to recognise, frame by frame, which phone-like unit of the synthetic
corpus is being spoken (the synthesiser knows its own alignment, so no forced alignment is needed),
with a linear head on the last hidden state and cross-entropy. The head is thrown away; only the
backbone is kept and saved with ``save_pretrained`` like any hub checkpoint.

(CTC on the transcripts was tried first: on this budget it sat on the all-blank plateau for 250-300
steps, too long and too seed-dependent for a five-minute demo.)
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spkpeft import progress
from spkpeft.data.config import SAMPLE_RATE
from spkpeft.data.synth import HOP, synthesize_aligned
from spkpeft.data.synth_corpus import speaker_traits
from spkpeft.data.synth_units import INVENTORY, random_text

log = logging.getLogger(__name__)

NUM_CLASSES = 1 + len(INVENTORY)  # 0 = silence


@dataclass
class ContentPretrainConfig:
    """``steps`` optimiser steps of ``batch_size`` crops of ``crop_seconds``; Adam with linear warm-up
    over ``warmup`` steps, then cosine decay to 5 % of ``lr``."""

    steps: int = 300
    batch_size: int = 16
    crop_seconds: float = 1.5
    lr: float = 2e-3
    warmup: int = 30
    clip: float = 5.0
    seed: int = 0


def aligned_corpus(
    speakers: range, utterances: int, seed: int, difficulty: float, seconds: tuple[float, float] = (1.5, 4.0)
) -> list[tuple[np.ndarray, np.ndarray]]:
    """In-memory utterances of the given synthetic speakers with their (T,) 8 ms unit labels."""
    out = []
    for g in speakers:
        traits = speaker_traits(seed, g, difficulty)
        for u in range(utterances):
            rng = np.random.default_rng((seed, 3, g, u))
            text = random_text(rng, rng.uniform(*seconds) * 0.8, traits.rate)
            out.append(synthesize_aligned(traits, text, rng, difficulty=difficulty))
    return out


def frame_targets(labels: np.ndarray, frames: int, stride: int = 320, centre: int = 200) -> np.ndarray:
    """8 ms unit labels -> one label per backbone frame (the label at the frame's centre sample)."""
    idx = np.minimum((np.arange(frames) * stride + centre) // HOP, len(labels) - 1)
    return labels[idx]


def _crop_batch(
    items: list, n: int, crop: int, gen: np.random.Generator
) -> tuple[torch.Tensor, list[tuple[np.ndarray, int]]]:
    """``n`` random crops -> (n, crop) zero-padded audio and, per row, (8 ms labels from the crop's
    start, real samples)."""
    wav = torch.zeros(n, crop)
    labs = []
    for i, k in enumerate(gen.integers(len(items), size=n)):
        w, lab = items[k]
        start = int(gen.integers(0, max(1, len(w) - crop + 1)))
        seg = w[start : start + crop]
        wav[i, : len(seg)] = torch.from_numpy(seg)
        lab_seg = lab[start // HOP :]
        labs.append((lab_seg, len(seg)))
    return wav, labs


def pretrain_content(backbone: nn.Module, items: list, cfg: ContentPretrainConfig) -> dict[str, float]:
    """Train every parameter of ``backbone`` (a :class:`SpeechBackbone`, CNN included) to classify the
    unit under each frame. Returns the final smoothed loss and the frame accuracy on the last batches.
    The backbone is modified in place and left frozen in eval mode."""
    gen = np.random.default_rng(cfg.seed)
    head = nn.Linear(backbone.hidden_size, NUM_CLASSES)
    for p in backbone.parameters():
        p.requires_grad_(True)
    params = [*backbone.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=cfg.lr)

    def factor(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    crop = int(cfg.crop_seconds * SAMPLE_RATE)
    backbone.train()
    loss_avg, correct, total = float("nan"), 0, 0
    bar = progress.bar(total=cfg.steps, desc="content pre-training")
    for step in range(cfg.steps):
        wav, labs = _crop_batch(items, cfg.batch_size, crop, gen)
        lengths = torch.tensor([n for _, n in labs])
        out = backbone(wav, lengths)
        frames = out.hidden_states.shape[2]
        target = torch.from_numpy(np.stack([frame_targets(lab, frames) for lab, _ in labs]))
        target[~out.mask] = -100
        logits = head(out.hidden_states[-1])
        loss = F.cross_entropy(logits.reshape(-1, NUM_CLASSES), target.reshape(-1), ignore_index=-100)
        if not torch.isfinite(loss):
            raise RuntimeError(f"content pre-training: non-finite loss at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.clip)
        opt.step()
        sched.step()
        loss_avg = loss.item() if step == 0 else 0.9 * loss_avg + 0.1 * loss.item()
        if step >= cfg.steps - 10:
            keep = target != -100
            correct += int((logits.argmax(-1)[keep] == target[keep]).sum())
            total += int(keep.sum())
        bar.update()
        bar.set_postfix(loss=f"{loss_avg:.2f}")
        if step % 50 == 0:
            log.info("content pre-training step %d loss %.3f", step, loss_avg)
    bar.close()
    for p in backbone.parameters():
        p.requires_grad_(False)
    backbone.eval()
    acc = correct / max(1, total)
    log.info("content pre-training done: loss %.3f, frame accuracy %.3f", loss_avg, acc)
    return {"loss": loss_avg, "frame_accuracy": acc}

"""Train the target-speaker conditioning of a frozen Whisper (prompt tuning, or the LoRA / full baselines).

accelerate handles the device and mixed precision; the optimiser and schedule are the speaker trainer's
(:mod:`spkpeft.train.optim`; by default AdamW, linear warm-up then linear decay, ``optim.lr`` per group
``prompt``, ``lora``, ``backbone``); a checkpoint after every epoch in the speaker trainer's format
(``RUN/checkpoints/step-N``, atomic, with the RNG and data-order state), resumed automatically when the run
directory has one.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from spkpeft import progress
from spkpeft.train.optim import build_optimizer, build_scheduler, param_groups
from spkpeft.tsasr.config import TSASRConfig
from spkpeft.tsasr.data import MixtureData, build_source, collate
from spkpeft.tsasr.model import GROUPS, TSWhisper
from spkpeft.tsasr.run import resume_checkpoint, save_run, write_checkpoint

log = logging.getLogger(__name__)


def train(cfg: TSASRConfig, run_dir: str | Path | None = None) -> Path:
    """Train as ``cfg`` says; write the run to ``run_dir`` (default ``cfg.out_dir``); return its path."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    run = Path(run_dir or cfg.out_dir)
    run.mkdir(parents=True, exist_ok=True)
    acc = Accelerator(mixed_precision=cfg.mixed_precision)
    set_seed(cfg.seed)
    if not cfg.data.train:
        raise ValueError("data.train is empty: give the mixture manifest to train on")
    data = MixtureData(cfg.data.train, build_source(cfg.speaker), cache=cfg.data.cache)
    model = TSWhisper.from_config(cfg.model, data.speaker_dim())
    log.info(
        "method %s trains %.3f %% of Whisper's parameters", cfg.model.method, 100 * model.trainable_fraction()
    )
    o = cfg.optim
    gen = torch.Generator().manual_seed(cfg.seed)
    loader = DataLoader(
        data, o.batch_size, shuffle=True, generator=gen, collate_fn=lambda b: collate(model, b)
    )
    total = o.max_steps or o.epochs * len(loader)
    opt = build_optimizer(param_groups(model.param_groups(), o, "optim", known=GROUPS), o)
    sched = build_scheduler(opt, o, total)
    step, epoch = resume_checkpoint(run, model, opt, sched, gen)
    if step:
        log.info("resuming %s at step %d (epoch %d)", run, step, epoch)
    pmodel, opt, sched = acc.prepare(model, opt, sched)
    epochs = math.ceil(total / len(loader))
    bar = progress.bar(total=total, desc="tsasr train", initial=step)
    while epoch < epochs and step < total:
        pmodel.train()
        for batch in loader:
            loss = pmodel(
                batch["features"].to(acc.device), batch["speaker"].to(acc.device),
                batch["decoder_input_ids"].to(acc.device), batch["labels"].to(acc.device),
            )  # fmt: skip
            acc.backward(loss)
            if o.grad_clip:
                acc.clip_grad_norm_(list(model.trainable_parameters().values()), o.grad_clip)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if step % cfg.log_every == 0:
                log.info("step %d loss %.4f lr %.2e", step, loss.item(), sched.get_last_lr()[0])
            if step >= total:
                break
        epoch += 1
        write_checkpoint(run, acc.unwrap_model(pmodel), opt, sched, step, epoch, gen)
    bar.close()
    save_run(acc.unwrap_model(pmodel).train(False), cfg, run)
    log.info("finished: %s", run)
    return run

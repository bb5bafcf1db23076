"""Train the target-speaker conditioning of a frozen Whisper (prompt tuning, or the LoRA / full baselines).

The loop runs on the speaker trainer's parts: :func:`~spkpeft.train.guards.make_accelerator` (device,
mixed precision, processes), :class:`~spkpeft.train.sampler.EpochBatchSampler` (each epoch's order a
function of seed and epoch, so a resumed run draws the batches an unstopped one would, mid-epoch too),
:mod:`spkpeft.train.optim` (AdamW, linear warm-up then linear decay, ``optim.lr`` per parameter group
``prompt``, ``lora``, ``backbone``), the non-finite-loss guard and the ``--resume`` rule of
:mod:`spkpeft.train.guards`, checkpoints in :mod:`spkpeft.train.checkpoint`'s format
(``RUN/checkpoints/step-N``, atomic: every ``checkpoint_every`` steps and at each epoch's end), metrics in
``RUN/logs/metrics.jsonl`` (:class:`~spkpeft.train.metrics_log.MetricsLog`), and the run directory lock of
:mod:`spkpeft.dir_lock`.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from torch.utils.data import DataLoader

from spkpeft import progress
from spkpeft.train.guards import check_finite_loss, make_accelerator, refuse_or_resume, run_dir_lock
from spkpeft.train.metrics_log import MetricsLog
from spkpeft.train.optim import build_optimizer, build_scheduler, param_groups
from spkpeft.train.run_dir import RunDir
from spkpeft.train.sampler import EpochBatchSampler, GroupBatchSampler
from spkpeft.tsasr.config import TSASRConfig
from spkpeft.tsasr.data import MixtureData, build_source, collate
from spkpeft.tsasr.methods import declared_groups
from spkpeft.tsasr.model import TSWhisper
from spkpeft.tsasr.run import refuse_old_layout, resume_checkpoint, save_run, write_checkpoint

log = logging.getLogger(__name__)


def train(cfg: TSASRConfig, run_dir: str | Path | None = None, resume: bool = False) -> Path:
    """Train as ``cfg`` says into ``run_dir`` (default ``cfg.out_dir``); return its path.

    A directory that already holds checkpoints is continued only with ``resume=True`` (``--resume``);
    the directory is locked for the whole run (by rank 0 of a distributed run)."""
    run = RunDir(Path(run_dir or cfg.out_dir))
    with run_dir_lock(run.root):
        return _train(cfg, run, resume)


def _train(cfg: TSASRConfig, run: RunDir, resume: bool) -> Path:
    from accelerate.utils import set_seed

    refuse_old_layout(run.root)
    latest = refuse_or_resume(run.checkpoints, run.root, resume, "--out")
    acc = make_accelerator(cfg.mixed_precision)
    set_seed(cfg.seed)
    if not cfg.data.train:
        raise ValueError("data.train is empty: give the mixture manifest to train on")
    data = MixtureData(cfg.data.train, build_source(cfg.speaker), cache=cfg.data.cache)
    model = TSWhisper.from_config(cfg.model, data.speaker_dim())
    log.info(
        "method %s trains %.3f %% of Whisper's parameters", cfg.model.method, 100 * model.trainable_fraction()
    )
    o = cfg.optim
    shard = (cfg.seed, acc.process_index, acc.num_processes, "optim.batch_size")
    if cfg.data.pair_targets:
        sampler = GroupBatchSampler(data.target_pairs(), o.batch_size, *shard)
    else:
        sampler = EpochBatchSampler(len(data), o.batch_size, *shard)
    loader = DataLoader(data, batch_sampler=sampler, collate_fn=lambda b: collate(model, b))
    total = o.max_steps or o.epochs * len(sampler)
    opt = build_optimizer(param_groups(model.param_groups(), o, "optim", known=declared_groups()), o)
    sched = build_scheduler(opt, o, total)
    step, epoch, batch = 0, 0, 0
    if latest:
        step, epoch, batch = resume_checkpoint(latest, model, opt, sched, acc)
        log.info("resuming %s at step %d (epoch %d, batch %d)", run.root, step, epoch, batch)
    # the scheduler stays unprepared (as in the speaker Trainer): accelerate would step it once per process
    pmodel, opt = acc.prepare(model, opt)
    params = list(model.trainable_parameters().values())
    main = acc.is_main_process
    logs = MetricsLog(run.logs, resume_step=step if latest else None) if main else None
    bar = progress.bar(total=total, desc="tsasr train", initial=step) if main else None
    last_ckpt = latest

    def checkpoint(ep: int, b: int) -> None:
        nonlocal last_ckpt
        last_ckpt = write_checkpoint(run.root, acc.unwrap_model(pmodel), opt, sched, step, ep, b, acc)

    try:
        for ep in range(epoch, math.ceil(total / len(sampler))):
            if step >= total:
                break
            sampler.set_epoch(ep, batch)
            pmodel.train()
            for b, items in enumerate(loader, start=batch):
                loss = pmodel(
                    items["features"].to(acc.device), items["speaker"].to(acc.device),
                    items["decoder_input_ids"].to(acc.device), items["labels"].to(acc.device),
                )  # fmt: skip
                where = f"epoch {ep}, batch {b}"
                loss_sum = check_finite_loss(loss, acc, step + 1, where, last_ckpt, "optim.grad_clip")
                acc.backward(loss)
                if o.grad_clip:
                    acc.clip_grad_norm_(params, o.grad_clip)
                lrs = {f"lr/{g['name']}": g["lr"] for g in opt.param_groups}  # what this step uses
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
                step += 1
                if bar is not None:
                    bar.update()
                    bar.set_postfix(loss=f"{loss_sum / acc.num_processes:.3f}")
                if logs is not None and (step % cfg.log_every == 0 or step == total):
                    logs.log(step, {"loss": loss_sum / acc.num_processes, "epoch": ep, **lrs})
                    log.info("step %d/%d loss %.4f lr %.2e", step, total, loss_sum / acc.num_processes,
                             max(lrs.values()))  # fmt: skip
                done, last = step >= total, b + 1 == len(sampler)
                if done or last:  # the end of the run or of the epoch: always a checkpoint
                    if last:
                        checkpoint(ep + 1, 0)
                    else:
                        checkpoint(ep, b + 1)
                    if done:
                        break
                elif cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                    checkpoint(ep, b + 1)
            batch = 0
    finally:
        if bar is not None:
            bar.close()
        if logs is not None:
            logs.close()
    if main:
        save_run(acc.unwrap_model(pmodel).train(False), cfg, run.root)
        log.info("finished: %s", run.root)
    acc.wait_for_everyone()
    return run.root

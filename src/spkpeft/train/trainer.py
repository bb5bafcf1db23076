"""The training loop: stages of (trainable set, optimiser, schedule, margin, crops), on CPU, one GPU or
many (``accelerate launch`` / ``torchrun``), with exact resume from atomic checkpoints.

Per stage: build the data loader (deterministic, resumable order), the optimiser over the stage's
trainable groups and the LR schedule; then for each optimiser step run ``grad_accum`` micro-batches
(gradient sync only on the last), clip, step, log, checkpoint. The loss is checked on every micro-batch
(all processes agree): a non-finite value stops the run with :class:`NonFiniteLossError` before the
optimiser touches the weights.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from spkpeft import progress
from spkpeft.config import ConfigError, save_yaml
from spkpeft.train import checkpoint as ck
from spkpeft.train.data_init import run_data_init
from spkpeft.train.experiment import ExperimentConfig, Stage, resolve_stages
from spkpeft.train.guards import (
    NonFiniteLossError,
    RunExistsError,
    check_finite_loss,
    make_accelerator,
    refuse_or_resume,
    run_dir_lock,
)
from spkpeft.train.metrics_log import MetricsLog, StepMeter, model_stats
from spkpeft.train.optim import build_optimizer, build_scheduler, param_groups
from spkpeft.train.run_dir import RunDir
from spkpeft.train.sampler import EpochBatchSampler
from spkpeft.train.setup import (
    Position,
    build_head,
    build_train_module,
    check_paths,
    margin_schedule,
    switch_stage,
)

log = logging.getLogger(__name__)

StepCallback = Callable[[int, float], None]


class Trainer:
    """Runs every stage of an experiment; ``run()`` returns the run directory.

    ``on_step(global_step, loss)`` is called after every optimiser step (tests use it to interrupt a run).
    """

    def __init__(self, cfg: ExperimentConfig, resume: bool = False, on_step: StepCallback | None = None):
        from spkpeft.model import resolve_backbone_path

        # config.yaml records the backbone directory as an absolute path: the run loads from anywhere
        cfg = dataclasses.replace(cfg, backbone=resolve_backbone_path(cfg.backbone))
        self.cfg, self.resume, self.on_step = cfg, resume, on_step
        self.stages = resolve_stages(cfg)
        self.run_dir = RunDir(Path(cfg.train.output_dir))
        self.last_checkpoint: Path | None = None
        self.dev = None  # DevSelector when train.dev_every > 0
        self._stop = False  # early stopping on the dev set
        self._created_run_dir = False  # this process made the run directory (removed if nothing trained)
        self._dir_existed = self.run_dir.root.exists()  # before train() creates it to hold its lock file
        self._steps_done = 0
        self._fresh_method = False  # the stage about to run built a new method (data_init is due)
        self._last_checkpoint_time = time.monotonic()

    # ----------------------------------------------------------------- setup
    def _accelerator(self) -> Any:
        t = self.cfg.train
        return make_accelerator(t.mixed_precision, t.find_unused_parameters)

    def _start(self, acc: Any) -> tuple[Position, dict | None]:
        """Find the checkpoint to resume from (or refuse to overwrite one); write config.yaml."""
        ckpt_dir = refuse_or_resume(
            self.run_dir.checkpoints, self.run_dir.root, self.resume, "train.output_dir"
        )
        if ckpt_dir is not None:
            loaded = ck.load_checkpoint(ckpt_dir)
            self.last_checkpoint = ckpt_dir
            pos = Position.from_state(loaded["state"])
            self._warn_config_changes()
            if loaded["state"].get("world_size") != acc.num_processes:
                log.warning(
                    "resuming with %d processes, checkpoint written by %s: the data order changes",
                    acc.num_processes,
                    loaded["state"].get("world_size"),
                )
            log.info("resuming from %s (stage %d, step %d)", ckpt_dir, pos.stage, pos.global_step)
            return pos, loaded
        if acc.is_main_process:
            self._created_run_dir = not self._dir_existed
            self.run_dir.root.mkdir(parents=True, exist_ok=True)
            save_yaml(self.cfg, self.run_dir.config)
        return Position(), None

    def _warn_config_changes(self) -> None:
        from spkpeft.config import load_yaml, to_dict

        if not self.run_dir.config.is_file():
            return
        saved, now = load_yaml(self.run_dir.config), to_dict(self.cfg)
        changed = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
        if changed:
            log.warning("resuming with a config that differs from %s in: %s (the result will not match an "
                        "uninterrupted run)", self.run_dir.config, ", ".join(changed))  # fmt: skip

    # ----------------------------------------------------------------- run
    def run(self) -> Path:
        check_paths(self.stages)
        acc = self._accelerator()
        torch.manual_seed(self.cfg.train.seed + acc.process_index)  # model randomness (dropout), per rank
        pos, loaded = self._start(acc)
        try:
            return self._run(acc, pos, loaded)
        except BaseException:
            if self._created_run_dir and self._steps_done == 0 and self.last_checkpoint is None:
                # failed before training anything (e.g. the backbone could not be loaded): leave no
                # half-made run directory that a rerun would have to be told about
                log.info("removing %s: the run failed before its first step", self.run_dir.root)
                shutil.rmtree(self.run_dir.root, ignore_errors=True)
            raise

    def _run(self, acc: Any, pos: Position, loaded: dict | None) -> Path:
        if self.cfg.train.dev_every and acc.is_main_process:
            from spkpeft.train.dev_select import DevSelector

            t = self.cfg.train
            self.dev = DevSelector(t.dev_manifest, t.dev_trials, self.run_dir.root, t.dev_patience)
        from spkpeft.data.speakers import SpeakerMap

        speaker_map = SpeakerMap.load(self.run_dir.speakers) if loaded else None
        tm, entered = None, -1
        if loaded is not None:  # rebuild the checkpoint's stage, then carry on from its weights
            tm, speaker_map = self._enter_stage(self.stages[pos.stage], None, speaker_map, acc)
            tm.load_state_tensors(loaded["trainable"])
            self._fresh_method = False  # its state comes from the checkpoint
            entered = pos.stage
        resume_step = pos.global_step if loaded is not None else None
        logs = (
            MetricsLog(self.run_dir.logs, self.cfg.train.tensorboard, resume_step)
            if acc.is_main_process
            else None
        )
        try:
            for stage in self.stages[pos.stage + int(pos.stage_complete) :]:
                if self._stop:
                    break
                if stage.index != entered:
                    tm, speaker_map = self._enter_stage(stage, tm, speaker_map, acc)
                if pos.stage != stage.index or pos.stage_complete:
                    pos, loaded = pos.fresh_stage(stage.index), None
                pos = self._run_stage(stage, tm, pos, loaded, acc, logs)
                loaded = None
                acc.free_memory()
                acc = self._accelerator()  # a fresh DDP wrapper for the next stage's trainable set
        finally:
            if logs is not None:
                logs.close()
        if acc.is_main_process and tm is not None:
            from spkpeft.model import save_model

            if self.dev is not None:
                self.dev.restore_best(tm)
            tm.set_trainable(None)  # methods such as `full` report only parameters that require grad
            save_model(tm.model, self.run_dir.model)
        acc.wait_for_everyone()
        return self.run_dir.root

    def _enter_stage(self, stage: Stage, tm: Any, speaker_map: Any, acc: Any) -> tuple[Any, Any]:
        from spkpeft.data.train_dataset import TrainDataset

        cached = getattr(self, "_dataset", None)
        same = cached is not None and cached.cfg == stage.data
        ds = cached if same else TrainDataset(stage.data, speaker_map)  # one manifest read per data config
        if speaker_map is None:
            speaker_map = ds.speaker_map
            if acc.is_main_process:
                speaker_map.save(self.run_dir.speakers)
        elif ds.num_classes != speaker_map.num_classes:
            raise ConfigError(
                f"stage {stage.name!r} changes the number of classes ({ds.num_classes} vs "
                f"{speaker_map.num_classes}): speed_perturb must stay the same in every stage"
            )
        self._dataset = ds
        before = None if tm is None else tm.model.method
        if tm is None:
            tm = build_train_module(self.cfg, stage, speaker_map.num_classes)
        else:
            switch_stage(tm, self.cfg, stage)
        self._fresh_method = tm.model.method is not before
        tm.set_trainable(stage.trainable, f"stages[{stage.index}].trainable")
        n_train = sum(p.numel() for p in tm.parameters() if p.requires_grad)
        log.info(
            "stage %s: %d trainable parameters, %d classes", stage.name, n_train, speaker_map.num_classes
        )
        return tm, speaker_map

    def _loader(self, stage: Stage, acc: Any) -> tuple[DataLoader, EpochBatchSampler]:
        from spkpeft.data.train_dataset import collate_train

        sampler = EpochBatchSampler(
            len(self._dataset),
            stage.batch_size,
            stage.data.seed,
            acc.process_index,
            acc.num_processes,
        )
        loader = DataLoader(
            self._dataset,
            batch_sampler=sampler,
            collate_fn=collate_train,
            num_workers=stage.data.num_workers,
            generator=torch.Generator().manual_seed(stage.data.seed),
        )
        return loader, sampler

    def _epoch_base(self, stage: Stage) -> int:
        return sum(s.epochs for s in self.stages[: stage.index])

    def _stage_length(self, stage: Stage, sampler: EpochBatchSampler) -> tuple[int, int]:
        """(optimiser steps per epoch, optimiser steps in the stage)."""
        accum = self.cfg.train.grad_accum
        per_epoch = len(sampler) // accum
        if per_epoch < 1:
            raise ConfigError(
                f"stage {stage.name!r}: {len(sampler)} batches per epoch < train.grad_accum "
                f"({accum}): lower train.batch_size or train.grad_accum"
            )
        total = stage.epochs * per_epoch
        return per_epoch, min(total, stage.max_steps) if stage.max_steps else total

    def _optimiser(self, stage: Stage, tm: Any, total: int, loaded: dict | None) -> tuple[Any, Any, list]:
        groups = param_groups(tm.groups(), stage.optim, f"stages[{stage.index}].optim", tm.known_groups())
        optimizer = build_optimizer(groups, stage.optim)
        scheduler = build_scheduler(optimizer, stage.optim, total)
        if loaded is not None:
            optimizer.load_state_dict(loaded["optimizer"])
            scheduler.load_state_dict(loaded["scheduler"])
        return optimizer, scheduler, [p for g in groups for p in g["params"]]

    # ----------------------------------------------------------------- one stage
    def _run_stage(
        self, stage: Stage, tm: Any, pos: Position, loaded: dict | None, acc: Any, logs: MetricsLog | None
    ) -> Position:
        accum = self.cfg.train.grad_accum
        loader, sampler = self._loader(stage, acc)
        per_epoch, total = self._stage_length(stage, sampler)
        optimizer, scheduler, params = self._optimiser(stage, tm, total, loaded)
        margins = margin_schedule(stage, tm.head, total)
        if self._fresh_method:  # a method built for this stage (not restored), before its first step

            def first_batch() -> None:
                self._dataset.set_epoch(self._epoch_base(stage))
                sampler.set_epoch(self._epoch_base(stage), 0)

            run_data_init(tm, loader, first_batch)
        self._fresh_method = False
        if self.cfg.train.compile:
            from spkpeft.train.compile import compile_train_module

            compile_train_module(tm)  # in place, per stage (the trainable set changes what is traced)
        model, optimizer = acc.prepare(tm, optimizer)
        if loaded is not None:
            ck.restore_runtime(loaded, acc)
        meter = StepMeter()
        main = acc.is_main_process
        bar = progress.bar(total=total, desc=stage.name, initial=pos.stage_step) if main else None
        model.train()
        for epoch in range(pos.epoch, stage.epochs):
            if pos.stage_step >= total or self._stop:
                break
            global_epoch = self._epoch_base(stage) + epoch
            self._dataset.set_epoch(global_epoch)
            sampler.set_epoch(global_epoch, pos.batch)
            for b, batch in enumerate(loader, start=pos.batch):
                if b >= per_epoch * accum or pos.stage_step >= total or self._stop:
                    break
                sync = (b + 1) % accum == 0
                if margins is not None and b % accum == 0:
                    tm.head.set_margin(margins(pos.stage_step))
                self._micro_step(model, batch, sync, acc, meter, pos, stage)
                if sync:
                    self._optimizer_step(optimizer, scheduler, params, acc)
                    pos = pos.advanced(epoch, b + 1)
                    self._after_step(stage, tm, optimizer, scheduler, pos, acc, meter, logs, bar, total)
            pos = pos.next_epoch(epoch + 1)
        if bar is not None:
            bar.close()
        pos = pos.completed()
        self._checkpoint(tm, optimizer, scheduler, pos, acc)
        return pos

    def _optimizer_step(self, optimizer: Any, scheduler: Any, params: list, acc: Any) -> None:
        if self.cfg.train.clip_grad_norm:
            acc.clip_grad_norm_(params, self.cfg.train.clip_grad_norm)
        self._lrs = {f"lr/{g['name']}": g["lr"] for g in optimizer.param_groups}  # what this step uses
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)

    def _micro_step(
        self, model: Any, batch: dict, sync: bool, acc: Any, meter: StepMeter, pos: Position, stage: Stage
    ) -> None:
        wav, lengths, labels = (
            batch["wav"].to(acc.device),
            batch["lengths"].to(acc.device),
            batch["labels"].to(acc.device),
        )
        ctx = contextlib.nullcontext() if sync else acc.no_sync(model)
        with ctx:
            out = model(wav, lengths, labels)
            where = f"stage {stage.name!r}, epoch {pos.epoch}, batch {pos.batch}"
            loss_sum = check_finite_loss(
                out.loss, acc, pos.global_step + 1, where, self.last_checkpoint, "train.clip_grad_norm"
            )
            acc.backward(out.loss / self.cfg.train.grad_accum)
        correct = (out.logits.detach().argmax(-1) == labels).sum()
        meter.add(loss_sum / acc.num_processes, correct, labels.numel())

    def _after_step(
        self,
        stage: Stage,
        tm: Any,
        optimizer: Any,
        scheduler: Any,
        pos: Position,
        acc: Any,
        meter: StepMeter,
        logs: MetricsLog | None,
        bar: Any,
        total: int,
    ) -> None:
        tcfg = self.cfg.train
        self._steps_done += 1
        if bar is not None:
            bar.update(1)
        if pos.stage_step % tcfg.log_every == 0 or pos.stage_step == total:
            row = meter.flush(acc)
            row.update(self._lrs)  # the rates this step used
            row.update(stage=stage.index, epoch=pos.epoch, margin=float(getattr(tm.head, "margin", 0.0)))
            row.update(model_stats(tm))
            lr = max(self._lrs.values())
            if logs is not None:
                logs.log(pos.global_step, row)
                log.info(
                    "stage %s step %d/%d (epoch %d): loss %.4f, acc %.3f, lr %.2e, %.1f utt/s",
                    stage.name, pos.stage_step, total, pos.epoch + 1, row["loss"], row["acc"], lr,
                    row["utt_per_s"],
                )  # fmt: skip
            if bar is not None:
                bar.set_postfix(
                    loss=f"{row['loss']:.3f}",
                    acc=f"{row['acc']:.3f}",
                    lr=f"{lr:.2e}",
                    utt_s=f"{row['utt_per_s']:.1f}",
                )
        if pos.stage_step < total and self._checkpoint_due(pos, acc):
            self._checkpoint(tm, optimizer, scheduler, pos, acc)
        if tcfg.dev_every and pos.global_step % tcfg.dev_every == 0:
            self._dev_step(tm, pos, acc)
        if self.on_step is not None:
            self.on_step(pos.global_step, meter.last_loss)

    def _dev_step(self, tm: Any, pos: Position, acc: Any) -> None:
        """Dev evaluation on the main process; every process learns whether to stop."""
        from accelerate.utils import broadcast_object_list

        stop = [self.dev.evaluate(tm, pos.global_step) if self.dev is not None else False]
        if acc.num_processes > 1:
            broadcast_object_list(stop)
        if stop[0]:
            log.info("early stop at step %d: no dev improvement in %d evaluations", pos.global_step,
                     self.cfg.train.dev_patience)  # fmt: skip
        self._stop = bool(stop[0])

    def _checkpoint_due(self, pos: Position, acc: Any) -> bool:
        """Every ``train.checkpoint_every`` steps and/or ``train.checkpoint_minutes`` minutes after the
        last checkpoint; all processes agree (the slowest clock counts)."""
        tcfg = self.cfg.train
        if tcfg.checkpoint_every and pos.global_step % tcfg.checkpoint_every == 0:
            return True
        if not tcfg.checkpoint_minutes:
            return False
        late = time.monotonic() - self._last_checkpoint_time >= 60 * tcfg.checkpoint_minutes
        if acc.num_processes > 1:
            late = bool(acc.reduce(torch.tensor([float(late)], device=acc.device), "sum").item() > 0)
        return late

    def _checkpoint(self, tm: Any, optimizer: Any, scheduler: Any, pos: Position, acc: Any) -> None:
        from accelerate.utils import gather_object

        rngs = gather_object([ck.rng_state()])
        path = self.run_dir.checkpoint(pos.global_step)
        if acc.is_main_process:
            state = {**pos.to_state(), "world_size": acc.num_processes}
            ck.save_checkpoint(path, tm.state_tensors(), optimizer, scheduler, state, rngs, acc.scaler)
            ck.prune_checkpoints(self.run_dir.checkpoints, self.cfg.train.keep_checkpoints)
        acc.wait_for_everyone()
        self.last_checkpoint = path
        self._last_checkpoint_time = time.monotonic()


def train(cfg: ExperimentConfig, resume: bool = False, on_step: StepCallback | None = None) -> Path:
    """Train ``cfg`` (all stages); returns the run directory (final model in ``RUN/model``).

    The run directory is locked for the whole run (by rank 0 of a distributed run), so a second
    ``spkpeft train`` into it fails at once with :class:`spkpeft.dir_lock.DirectoryInUseError`."""
    trainer = Trainer(cfg, resume=resume, on_step=on_step)
    with run_dir_lock(trainer.run_dir.root):
        return trainer.run()


__all__ = ["NonFiniteLossError", "RunExistsError", "Trainer", "build_head", "train"]

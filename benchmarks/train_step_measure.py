"""What one worker process of ``train_step.py`` measures for one (backbone, method): a training step
(time, peak memory, executed FLOPs) and, for spkpeft's methods, a no-grad inference forward (unmerged,
and merged where the method can merge).

FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode`` over one eager step (forward and
backward; the optimiser's elementwise update is not a matmul and is not counted), so MFU = FLOPs / step
time / measured matmul peak counts what the step executed, recomputation and method overheads included.
"""

from __future__ import annotations

import os
import threading
import time
from argparse import Namespace
from collections.abc import Callable

import torch


class RssPeak:
    """High-water mark of this process's RSS (bytes) above the level at ``__enter__``, sampled every ms."""

    def __init__(self) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.peak = 0

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def __enter__(self) -> RssPeak:
        self.base = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss() - self.base)
            time.sleep(0.001)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss() - self.base)


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def median_seconds(fn: Callable[[], object], steps: int, dev: torch.device, warmup: int = 1) -> float:
    """Median wall seconds of ``fn`` over ``steps`` calls after ``warmup`` calls (robust to neighbours)."""
    for _ in range(warmup):
        fn()
    sync(dev)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        sync(dev)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def matmul_peak_flops(dev: torch.device, steps: int = 10) -> tuple[float, str]:
    """Measured dense matmul rate (FLOP/s): bf16 8192^3 on CUDA, fp32 1024^3 on the CPU (its threads)."""
    n, dtype = (8192, torch.bfloat16) if dev.type == "cuda" else (1024, torch.float32)
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    dt = median_seconds(lambda: a @ b, steps, dev, warmup=3)
    return 2 * n**3 / dt, f"{str(dtype).removeprefix('torch.')} {n}x{n} matmul"


def batch(args: Namespace, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(wav (B, S), lengths (B,), labels (B,)): full-length random crops, seeded."""
    n = int(args.crop_seconds * 16000)
    g = torch.Generator().manual_seed(0)
    wav = (0.1 * torch.randn(args.batch_size, n, generator=g)).to(dev)
    lengths = torch.full((args.batch_size,), n, dtype=torch.long, device=dev)
    labels = torch.randint(0, args.classes, (args.batch_size,), generator=g).to(dev)
    return wav, lengths, labels


def backend_and_head(
    args: Namespace, num_states: int, hidden_size: int
) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The benchmark's back-end (``args.backend``, defaults) and AAM head over ``args.classes``."""
    from spkpeft.backends import BACKENDS
    from spkpeft.config import parse_named
    from spkpeft.losses import LOSSES

    backend_cfg = parse_named(BACKENDS, {"name": args.backend}, "backend")
    backend = BACKENDS.build(args.backend, backend_cfg, num_states=num_states, hidden_size=hidden_size)
    loss_cfg = parse_named(LOSSES, {"name": "aam"}, "loss")
    head = LOSSES.build("aam", loss_cfg, embed_dim=backend.embed_dim, num_classes=args.classes)
    return backend, head


def train_step_fn(
    loss_fn: Callable[[], torch.Tensor], opt: torch.optim.Optimizer, amp: bool, dev: torch.device
):  # noqa: ANN201
    """One training step: forward under autocast (bf16 when ``amp``), backward, optimiser step."""

    def step() -> None:
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            loss = loss_fn()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def count_flops(step: Callable[[], None]) -> int:
    """Executed FLOPs of one call of ``step`` (matmuls, convolutions, attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return int(counter.get_total_flops())


def measure_training(
    build: Callable[[], tuple[torch.nn.Module, torch.optim.Optimizer, Callable[[], torch.Tensor]]],
    args: Namespace,
) -> dict:
    """Build (module, optimiser, loss function) inside the memory window, count one step's FLOPs (eager),
    optionally compile (``args.compile``), then time ``args.steps`` steps."""
    dev = torch.device(args.device)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with RssPeak() as rss:
        module, opt, loss_fn = build()
        step = train_step_fn(loss_fn, opt, args.amp == "bf16", dev)
        flops = count_flops(step)  # also the eager warm-up: optimiser state, allocator
        if args.compile:
            from spkpeft.train.compile import compile_train_module

            compile_train_module(module)
        # compiled: the first call compiles, the second recompiles once (methods fill their stats dicts)
        dt = median_seconds(step, args.steps, dev, warmup=2 if args.compile else 1)
    peak = torch.cuda.max_memory_allocated() if dev.type == "cuda" else rss.peak
    return {
        "module": module,
        "step_s": dt,
        "peak_mem_bytes": int(peak),
        "flops_per_step": flops,
        "trainable_params": sum(p.numel() for g in opt.param_groups for p in g["params"]),
    }


def measure_inference(model: torch.nn.Module, args: Namespace) -> float:
    """Median seconds of a no-grad eval forward (B, S) -> (B, E) of the speaker model, AMP as training."""
    dev = torch.device(args.device)
    wav, lengths, _ = batch(args, dev)
    was = model.training
    model.eval()

    @torch.no_grad()
    def forward() -> None:
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=args.amp == "bf16"):
            model(wav, lengths)

    try:
        return median_seconds(forward, args.steps, dev)
    finally:
        model.train(was)

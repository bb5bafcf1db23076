"""Training-step cost of every method on a WavLM Base+ sized model (random weights, preset
``wavlm-base-plus``; ``--backbone`` for another preset, e.g. ``w2v-bert-2.0``): trainable parameters,
step time and peak memory for a batch of 2 s crops, each as a
ratio to full fine-tuning measured in the same run.

Every method runs in its own subprocess (fresh allocator, so peak memory is that method's alone). A step
is what the trainer does: forward through backbone + method + back-end + AAM head, backward, Adam step.
Peak memory is everything training holds (weights, gradients, optimiser state, activations): from
before the model is built to the end of the timed steps, ``torch.cuda.max_memory_allocated`` on CUDA;
on CPU the high-water mark of the process RSS (sampled every millisecond) above its level before the
build.

    python benchmarks/train_step.py                                 # CPU, batch 8, 3 timed steps
    python benchmarks/train_step.py --device cuda --batch-size 32 --steps 10 --amp bf16
    python benchmarks/train_step.py --batch-size 2 --steps 1 --methods frozen full unipet   # quick CPU
    python benchmarks/train_step.py --backbone w2v-bert-2.0 --backend adapter_mfa --methods full lora \
        --method-set r=64 "targets=[q,v]" --device cuda --batch-size 64 --crop-seconds 3 --amp bf16
        # WeSpeaker's w2v-BERT 2.0 recipe (stage 1: LoRA r 64 on q, v; stage 2: full)

Writes benchmarks/results/train_step.json and .md for the default backbone, train_step_BACKBONE.* for
another (``--out`` to change). ``--method-set`` settings apply to every method that has the key.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

METHODS = [
    "full",
    "frozen",
    "adapter",
    "inner_inter",
    "prompt",
    "deep_prompt",
    "unipet",
    "lora",
    "dora",
    "pissa",
    "spectral",
]
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BACKBONE = "wavlm-base-plus"


def _parse_settings(items: list[str]) -> dict:
    """``["r=64", "targets=[q,v]"]`` -> ``{"r": 64, "targets": ["q", "v"]}`` (values read as YAML)."""
    import yaml

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--method-set takes KEY=VALUE, got {item!r}")
        out[key] = yaml.safe_load(value)
    return out


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


def measure(method: str, args: argparse.Namespace) -> dict:
    """One method's numbers (runs in the worker subprocess)."""
    import torch

    from spkpeft.methods import METHODS
    from spkpeft.train.experiment import experiment_from_dict, resolve_stages
    from spkpeft.train.module import TrainModule
    from spkpeft.train.optim import build_optimizer, param_groups
    from spkpeft.train.setup import build_train_module

    torch.set_num_threads(args.threads)
    fields = METHODS.config_cls(method).__dataclass_fields__
    settings = {k: v for k, v in json.loads(args.method_json).items() if k in fields}
    cfg = experiment_from_dict(
        {
            "backbone": {"name_or_path": args.backbone},
            "method": {"name": method, **settings},
            "backend": {"name": args.backend},
            "loss": {"name": "aam"},
            "optim": {"lr": {"default": 1e-4}},
        }
    )
    stage = resolve_stages(cfg)[0]
    dev = torch.device(args.device)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with RssPeak() as rss:
        tm: TrainModule = build_train_module(cfg, stage, num_classes=args.classes)
        tm.to(dev).train()
        groups = param_groups(tm.groups(), stage.optim)
        opt = build_optimizer(groups, stage.optim)
        dt = _time_steps(tm, opt, dev, args)
    peak = torch.cuda.max_memory_allocated() if dev.type == "cuda" else rss.peak
    own = sum(p.numel() for p in tm.model.method.own_parameters().values())
    return {
        "method": method,
        "method_settings": settings,
        "method_params": own,
        "trainable_params": sum(p.numel() for g in groups for p in g["params"]),
        "backbone_params": sum(p.numel() for p in tm.model.backbone.parameters()),
        "step_s": dt,
        "peak_mem_bytes": int(peak),
    }


def _time_steps(tm, opt, dev, args: argparse.Namespace) -> float:  # noqa: ANN001
    """Seconds per training step (median of ``args.steps`` after one warm-up step)."""
    import torch

    n = int(args.crop_seconds * 16000)
    g = torch.Generator().manual_seed(0)
    wav = (0.1 * torch.randn(args.batch_size, n, generator=g)).to(dev)
    lengths = torch.full((args.batch_size,), n, dtype=torch.long, device=dev)
    labels = torch.randint(0, args.classes, (args.batch_size,), generator=g).to(dev)

    def step() -> None:
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=args.amp == "bf16"):
            loss = tm(wav, lengths, labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    step()  # warm-up: optimiser state, allocator, kernels
    sync()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]  # median: robust to other processes on a shared machine


def run_all(args: argparse.Namespace) -> list[dict]:
    rows = []
    for m in args.methods:
        cmd = [
            sys.executable,
            __file__,
            "--worker",
            m,
            "--device",
            args.device,
            "--batch-size",
            str(args.batch_size),
            "--steps",
            str(args.steps),
            "--crop-seconds",
            str(args.crop_seconds),
            "--amp",
            args.amp,
            "--classes",
            str(args.classes),
            "--backend",
            args.backend,
            "--threads",
            str(args.threads),
            "--backbone",
            args.backbone,
            "--method-json",
            args.method_json,
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"method {m} failed:\n{proc.stderr[-3000:]}")
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        print(
            f"{m:12s} trainable {row['trainable_params']:>11,}  step {row['step_s']:.3f} s  "
            f"peak {row['peak_mem_bytes'] / 2**20:8.1f} MiB",
            file=sys.stderr,
        )
        rows.append(row)
    ref = next((r for r in rows if r["method"] == "full"), None)
    for r in rows:
        r["pct_backbone_updated"] = 100.0 * r["method_params"] / r["backbone_params"]
        if ref is not None:
            r["params_vs_full"] = r["trainable_params"] / ref["trainable_params"]
            r["time_vs_full"] = r["step_s"] / ref["step_s"]
            r["mem_vs_full"] = r["peak_mem_bytes"] / max(ref["peak_mem_bytes"], 1)
    return rows


def _settings_note(settings: dict | None) -> str:
    if not settings:
        return ""
    return (
        " Method settings (where a method has the key): "
        + ", ".join(f"{k} {v}" for k, v in settings.items())
        + "."
    )


def markdown(rows: list[dict], meta: dict) -> str:
    m = meta
    head = (
        f"# Training step per method ({m['backbone']}, random weights)\n\n"
        f"Device {m['device']} ({m['platform']}), batch {m['batch_size']} x {m['crop_seconds']} s, "
        f"median of {m['steps']} timed steps after one warm-up, AMP {m['amp']}, back-end {m['backend']}, "
        f"AAM over {m['classes']} classes, torch {m['torch']}. Peak memory: {m['memory']}."
        f"{_settings_note(m.get('method_settings'))}\n\n"
        "| method | method params | % of backbone | trainable (incl. back-end) | x full | step s | x full "
        "| peak MiB | x full |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    nan = float("nan")
    lines = []
    for r in rows:
        cells = [
            r["method"],
            f"{r['method_params']:,}",
            f"{r['pct_backbone_updated']:.2f}",
            f"{r['trainable_params']:,}",
            f"{r.get('params_vs_full', nan):.4f}",
            f"{r['step_s']:.3f}",
            f"{r.get('time_vs_full', nan):.2f}",
            f"{r['peak_mem_bytes'] / 2**20:.0f}",
            f"{r.get('mem_vs_full', nan):.2f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return head + "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--crop-seconds", type=float, default=2.0)
    p.add_argument("--amp", choices=["no", "bf16"], default="no")
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--backend", default="linear")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    p.add_argument("--backbone", default=DEFAULT_BACKBONE, help="backbone preset (random weights)")
    p.add_argument("--method-set", nargs="*", default=[], metavar="KEY=VALUE", help="method settings")
    p.add_argument("--out", type=Path, help="output stem (default benchmarks/results/train_step[_BACKBONE])")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--method-json", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.method_json is None:
        args.method_json = json.dumps(_parse_settings(args.method_set))
    if args.out is None:
        suffix = "" if args.backbone == DEFAULT_BACKBONE else f"_{args.backbone}"
        args.out = ROOT / "benchmarks" / "results" / f"train_step{suffix}"
    if args.worker:
        print(json.dumps(measure(args.worker, args)))
        return
    import torch

    rows = run_all(args)
    meta = {
        "backbone": args.backbone,
        "method_settings": json.loads(args.method_json),
        "device": args.device,
        "batch_size": args.batch_size,
        "crop_seconds": args.crop_seconds,
        "steps": args.steps,
        "amp": args.amp,
        "classes": args.classes,
        "backend": args.backend,
        "torch": torch.__version__,
        "platform": platform.processor() or platform.machine(),
        "memory": "torch.cuda.max_memory_allocated from model build to the last step"
        if args.device.startswith("cuda")
        else "process RSS high-water mark above its level before the model build (sampled every ms)",
    }
    if args.device.startswith("cuda"):
        meta["platform"] = torch.cuda.get_device_name()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # a stem such as train_step_w2v-bert-2.0 has a dot: append the suffix, never replace it
    args.out.parent.joinpath(args.out.name + ".json").write_text(
        json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n"
    )
    args.out.parent.joinpath(args.out.name + ".md").write_text(markdown(rows, meta))
    print(markdown(rows, meta))


if __name__ == "__main__":
    main()

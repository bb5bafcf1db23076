"""``spkpeft eval RUN --trials FILE [--trials FILE ...] [--manifest M]``: evaluate a trained run.

Embeds the utterances the trials use (cached in RUN/embeddings/), builds the AS-norm cohort from the
run's training manifest (per-speaker means of a per-speaker subsample), trains the quality-aware
calibration on cohort trials and saves this scorer with the model (RUN/model/scoring/, used by
`spkpeft verify`, SpeakerVerifier and `spkpeft export`), and writes RUN/report.md, report.json, scores/
and plots/ (or into --out DIR).
A trial list evaluated earlier and not named now keeps its results in the report; one named again is
re-evaluated. The metrics are printed (also with -q). Defaults come from the ``eval`` section of
RUN/config.yaml; see docs/eval.md and docs/inference.md.
"""

from __future__ import annotations

import argparse

from spkpeft.commands import add_set_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a run on trial lists; write its report", description=__doc__)
    p.add_argument("run", help="run directory (config.yaml + model/)")
    p.add_argument("--trials", action="append", default=[], metavar="[NAME=]FILE",
                   help="trial list (label enroll test), repeatable (default: eval.trials)")  # fmt: skip
    p.add_argument("--manifest", help="test manifest holding the trial utterances (default: eval.manifest)")
    p.add_argument("--cohort", help="cohort/calibration manifest (default: eval.cohort_manifest, "
                   "else data.train_manifest)")  # fmt: skip
    add_set_option(p, "top_k=600 --set calibrate=false")
    p.add_argument("--out", help="write report.md/report.json/scores/plots here instead of into RUN")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--progress", action="store_true", help="progress bars even when stderr is not a tty")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spkpeft.progress import sync_transformers_progress

    sync_transformers_progress()
    from spkpeft.config import apply_overrides, parse, to_dict
    from spkpeft.eval.config import RunEvalConfig, run_eval_config
    from spkpeft.eval.run import evaluate_run
    from spkpeft.model import default_device

    cfg = None
    if args.overrides:
        base, _ = run_eval_config(args.run)
        cfg = parse(RunEvalConfig, apply_overrides(to_dict(base), args.overrides), "eval")
    written = evaluate_run(
        args.run,
        trials=args.trials,
        manifest=args.manifest,
        cohort_manifest=args.cohort,
        config=cfg,
        device=args.device or default_device(),
        plots=not args.no_plots,
        out=args.out,
    )
    print(format_metrics(written["json"]))
    print(f"report: {written['markdown']}")
    print(f"metrics: {written['json']}")
    if "calibration" in written:
        print(f"calibration: {written['calibration']}")
    return 0


def format_metrics(report_json: str) -> str:
    """One line per trial list and system: EER with its 95 % interval and minDCF (from report.json)."""
    import json
    from pathlib import Path

    lines = []
    for name, entry in json.loads(Path(report_json).read_text())["trial_lists"].items():
        if not entry["systems"]:
            lines.append(f"{name}: {entry['n_trials']} unlabelled trials (scores only)")
        for system, m in entry["systems"].items():
            lo, hi = m.get("eer_ci95") or (float("nan"), float("nan"))
            dcf = ", ".join(f"minDCF({p}) {d['value']:.4f}" for p, d in m["min_dcf"].items())
            lines.append(
                f"{name} {system}: EER {100 * m['eer']:.2f} % (95 % CI {100 * lo:.2f}-{100 * hi:.2f}), {dcf}"
            )
    return "\n".join(lines)

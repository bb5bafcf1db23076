"""``spkpeft verify A B --model DIR [--json]``: do two recordings have the same speaker?

Prints the score (a calibrated log-likelihood ratio when the run was evaluated with calibration, else
the uncalibrated score), the decision and the threshold with its meaning (docs/inference.md). DIR is a
run directory or an `spkpeft export` directory. Exit status 0 either way (the decision is in the output).
"""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="score a pair of recordings: same speaker?", description=__doc__)
    p.add_argument("a", help="first audio file (any soundfile format and sample rate)")
    p.add_argument("b", help="second audio file")
    p.add_argument("--model", required=True, help="run directory or exported model directory")
    p.add_argument("--p-target", type=float, default=0.01,
                   help="target prior of the Bayes decision on calibrated scores (default 0.01)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spkpeft.progress import sync_transformers_progress

    sync_transformers_progress()
    from spkpeft.api import SpeakerVerifier

    verifier = SpeakerVerifier.from_pretrained(args.model, device=args.device, p_target=args.p_target)
    r = verifier.verify(args.a, args.b)
    if args.json:
        print(json.dumps({"a": str(args.a), "b": str(args.b), **r.to_dict()}))
        return 0
    kind = "LLR" if r.calibrated else f"{r.system} score"
    decision = r.decision or "undecided (no threshold)"
    thr = "none" if r.threshold is None else f"{r.threshold:.4f}"
    print(f"{decision}: {kind} {r.score:.4f}, threshold {thr}")
    print(f"threshold: {r.threshold_meaning}")
    return 0

"""``spkpeft export RUN OUT [--onnx]``: a self-contained model directory for inference.

OUT holds the backbone (merged weights when the method can merge), the method's parameters otherwise,
the back-end, the scoring state and calibration from `spkpeft eval`, and a model card (README.md).
Load it with ``SpeakerVerifier.from_pretrained(OUT)`` or ``spkpeft verify --model OUT``. ``--onnx``
adds model.onnx (wav (B, S), lengths (B,) -> embeddings (B, E)), checked against PyTorch.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a run as a self-contained model directory", description=__doc__)
    p.add_argument("run", help="run directory (or saved model directory)")
    p.add_argument("out", help="output directory (new, or an earlier export with --force)")
    p.add_argument("--onnx", action="store_true", help="also write model.onnx and check it")
    p.add_argument("--force", action="store_true", help="replace an earlier export in OUT")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spkpeft.progress import sync_transformers_progress

    sync_transformers_progress()
    from spkpeft.inference.export import export_model

    s = export_model(args.run, args.out, onnx=args.onnx, overwrite=args.force)
    how = "merged into the backbone" if s["merged"] else "kept apart from the backbone"
    print(f"exported to {s['out']} (method {s['method']} {how}; max relative embedding error vs the run "
          f"{s['max_rel_err']:.1e})")  # fmt: skip
    if "onnx" in s:
        o = s["onnx"]
        err, checker = o["max_rel_err"], o["checker"]
        print(f"onnx: {o['path']} (max relative error vs PyTorch {err:.1e}, checked with {checker})")
    print(f"model card: {s['out']}/README.md")
    return 0

"""``spkpeft params``: total and trainable parameters of a backbone + method, built on the meta device."""

from __future__ import annotations

import argparse
import json
from typing import Any

# the names registered in spkpeft.methods.METHODS, listed here so that `--help` needs no torch import
# (tests/core/test_cli_help.py checks that the two agree)
METHOD_NAMES = (
    "adapter", "deep_prompt", "dora", "frozen", "full", "inner_inter", "lora", "pissa", "prompt",
    "spectral", "unipet",
)  # fmt: skip


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "params",
        help="count total / trainable parameters of a backbone + method (no weights, no memory)",
        description=__doc__,
    )
    p.add_argument("--backbone", required=True, help="backbone preset (e.g. wavlm-large) or model directory")
    p.add_argument(
        "--method", required=True, help=f"method name: {', '.join(METHOD_NAMES)} (docs/methods.md)"
    )
    p.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="method config field, repeatable (e.g. --set r=8 --set targets=[q,v])",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spkpeft.config import apply_overrides
    from spkpeft.params import count_for

    counts = count_for(args.backbone, args.method, apply_overrides({}, args.settings))
    if args.json:
        print(json.dumps(counts.as_dict()))
    else:
        print(format_table(counts))
    return 0


def format_table(c: Any) -> str:
    """A readable table of a :class:`spkpeft.params.ParamCount`: one row per backbone component and per
    method parameter group."""
    rows = [
        ("backbone CNN", c.backbone_cnn, None),
        ("backbone Transformer", c.backbone_transformer, None),
        ("backbone total", c.backbone_total, c.backbone_trainable),
    ]
    if len(c.groups) > 1:
        rows += [(f"  {c.method_name} group {g}", n, n) for g, n in sorted(c.groups.items())]
    rows += [
        (f"method {c.method_name} (new / trained)", c.method_added, c.method),
        ("total", c.total, c.trainable),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [
        f"backbone {c.backbone_name}, method {c.method_name}",
        f"{'component':<{width}}  {'parameters':>14}  {'trainable':>14}",
    ]
    for name, total, trainable in rows:
        tr = "" if trainable is None else f"{trainable:,}"
        lines.append(f"{name:<{width}}  {total:>14,}  {tr:>14}")
    lines.append(f"trainable fraction: {100 * c.fraction:.3f} % of {c.total:,}")
    return "\n".join(lines)

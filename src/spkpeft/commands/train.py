"""``spkpeft train CONFIG [--set a.b=c ...] [--resume]``: train a speaker model from a YAML recipe.

Runs the same on CPU, one GPU, or many processes: ``accelerate launch [--num_processes N] -m spkpeft.cli
train CONFIG`` or ``torchrun --nproc_per_node N -m spkpeft.cli train CONFIG``.
"""

from __future__ import annotations

import argparse
import os
import sys

from spkpeft.commands import add_set_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a speaker model from a YAML recipe", description=__doc__)
    p.add_argument("config", nargs="?", help="YAML file or shipped recipe name (see --list)")
    p.add_argument(
        "--list", action="store_true", help="list the shipped recipes with their first line and exit"
    )
    add_set_option(p, "optim.lr.backend=1e-3")
    p.add_argument("--resume", action="store_true", help="continue from the run's latest checkpoint")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("--progress", action="store_true", help="progress bars even when stderr is not a tty")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.list:
        print(format_recipes())
        return 0
    if not args.config:
        raise ValueError(
            "train: give a CONFIG (a YAML file or a recipe name; `spkpeft train --list` shows them)"
        )
    import yaml

    from spkpeft.config import to_dict
    from spkpeft.train.experiment import load_experiment

    cfg = load_experiment(args.config, args.overrides)
    if args.print_config:
        sys.stdout.write(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        return 0
    from spkpeft.train.trainer import train

    run_dir = train(cfg, resume=args.resume)
    if os.environ.get("RANK", "0") == "0":  # once, not per process, under torchrun / accelerate launch
        print(f"run finished: {run_dir} (model: {run_dir / 'model'})")
    return 0


def format_recipes() -> str:
    """One line per shipped recipe: its name and the first line of its header comment."""
    from pathlib import Path

    recipes = Path(__file__).resolve().parent.parent / "configs"
    lines = ["recipes (spkpeft train NAME; files in " + str(recipes) + "):"]
    for path in sorted(recipes.glob("*.yaml")):
        first = next((ln for ln in path.read_text().splitlines() if ln.startswith("#")), "#")
        lines.append(f"  {path.stem:36s} {first.lstrip('# ').strip()}")
    return "\n".join(lines)

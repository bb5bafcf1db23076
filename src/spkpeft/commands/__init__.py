"""CLI sub-commands. Each module here defines ``register(subparsers)`` which adds its parsers and sets
``func`` (called with the parsed args; returns an exit code). ``spkpeft.cli`` discovers them all."""

from __future__ import annotations

import argparse


def add_set_option(parser: argparse.ArgumentParser, example: str) -> None:
    """The ``--set KEY=VALUE`` option (repeatable) of every command that reads a typed config; the values
    land in ``args.overrides``, in order, for :func:`spkpeft.config.apply_overrides`."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a config value, e.g. --set {example} (repeatable)")  # fmt: skip


def reject_positional_overrides(command: str, stray: list[str]) -> None:
    """Refuse ``a.b=c`` given as positional arguments (the old TS-ASR form): name them and say ``--set``."""
    if stray:
        sets = " ".join(f"--set {s}" for s in stray)
        raise ValueError(
            f"{command}: unexpected positional argument(s) {' '.join(stray)}; config overrides are given "
            f"with --set KEY=VALUE, e.g. {sets}"
        )

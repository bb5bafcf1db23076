"""The ``spkpeft`` command line: parse, set up logging and progress bars, call library functions."""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from spkpeft import progress


def build_parser() -> argparse.ArgumentParser:
    import spkpeft.commands as commands

    parser = argparse.ArgumentParser(prog="spkpeft", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings only, no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"spkpeft.commands.{mod.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    progress.enable(not args.quiet and sys.stderr.isatty() or bool(getattr(args, "progress", False)))
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError, KeyError, RuntimeError) as e:
        if args.verbose:
            raise
        print(f"spkpeft {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

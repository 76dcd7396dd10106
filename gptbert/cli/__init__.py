"""Command-line interface: ``gptbert COMMAND ...``.

Every module in this package that defines ``register(subparsers)`` adds its commands;
each command sets ``func`` to a function taking the parsed namespace and returning an
exit code. Modules import torch only inside those functions, so ``gptbert --help``
stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from gptbert import __version__


class CLIError(Exception):
    """A user error: printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gptbert",
        description="BERT or GPT? Build, train, measure, compare, compress and serve both families.",
    )
    parser.add_argument("--version", action="version", version=f"gptbert {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(args.func(args) or 0)
    except CLIError as e:
        print(f"gptbert {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gptbert {args.command}: interrupted", file=sys.stderr)
        return 130

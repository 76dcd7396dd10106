"""Command-line interface: ``gptbert COMMAND ...``.

:data:`COMMANDS` lists every command and the module of this package that adds it: the module's
``register(subparsers)`` adds the parsers of its commands, each setting ``func`` to a function
that takes the parsed namespace and returns an exit code. Modules import torch only inside
those functions, so ``gptbert --help`` stays fast.

To add a command: write its parser in a module's ``register`` (a new module for a new group)
and add a row here; ``tests/cli/test_parser.py`` checks that the table and the parser agree.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from gptbert import __version__
from gptbert.cli.errors import CLIError, user_error_message

__all__ = ["COMMANDS", "CLIError", "build_parser", "main"]

COMMANDS: dict[str, str] = {
    # command        module of gptbert.cli that registers it (in the order of --help)
    "data": "data",
    "tokenizer": "tokenizer",
    "pretrain": "train",
    "finetune": "train",
    "predict": "predict",
    "evaluate": "predict",
    "fill-mask": "interact",
    "embed": "interact",
    "chat": "interact",
    "info": "info",
    "compare": "compare",
    "demo": "compare",
    "recommend": "recommend",
    "results": "results",
    "compress": "compress",
    "serve": "serve",
}
"""Every ``gptbert`` command -> the module (``gptbert.cli.<module>``) whose ``register`` adds it."""




def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gptbert",
        description="BERT or GPT? Build, train, measure, compare, compress and serve both families.",
    )
    parser.add_argument("--version", action="version", version=f"gptbert {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in dict.fromkeys(COMMANDS.values()):  # each module once, in table order
        importlib.import_module(f"{__name__}.{module}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.command is not None:
        from gptbert.cli._args import given_options

        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
        args.given = given_options(sub.choices[args.command], argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(args.func(args) or 0)
    except CLIError as e:
        print(f"gptbert {args.command}: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        message = user_error_message(e)
        if message is None:
            raise
        print(f"gptbert {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gptbert {args.command}: interrupted", file=sys.stderr)
        return 130

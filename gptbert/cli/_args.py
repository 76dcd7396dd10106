"""Shared option plumbing of the commands: dataclass fields as options (help from the field's
docstring) and the one JSON output convention (``--json`` prints JSON on standard output and
nothing else; ``--json-out PATH`` also writes it to a file, never replacing one without ``--force``)."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import sys
import textwrap
import typing
from pathlib import Path
from typing import Any


@functools.lru_cache(maxsize=None)
def field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings (a string literal right after a field) of a dataclass (parsed once per class)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = ast.parse(source).body[0].body  # type: ignore[attr-defined]
        for node, nxt in zip(body, body[1:]):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


class NegatedFlag(argparse.Action):
    """The switch pair of a boolean whose name is already negative (``no_decay_x``): ``--no-decay-x``
    sets it, ``--decay-x`` clears it (instead of ``--no-no-decay-x``)."""

    def __init__(self, option_strings: list[str], dest: str, default: Any = None, help: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=default, help=help, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        setattr(namespace, self.dest, option_string == self.option_strings[0])

    def format_usage(self) -> str:
        return " | ".join(self.option_strings)


def _base_type(tp: Any) -> tuple[Any, bool]:
    """(scalar type, optional?) of an annotation such as ``int | None``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _base_type(non_none[0])[0], True
        return str, True
    if origin is typing.Literal:
        return type(args[0]), False
    return tp, False


def add_dataclass_arguments(
    parser: argparse.ArgumentParser, cls: type, *, skip: tuple[str, ...] = (), group: str | None = None
) -> None:
    """Add ``--field-name`` options for each init field of ``cls`` (default: the field's default)."""
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls)
    target = parser.add_argument_group(group) if group else parser
    for f in dataclasses.fields(cls):
        if not f.init or f.name in skip:
            continue
        tp, _ = _base_type(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None  # type: ignore[misc]
        )
        option = "--" + f.name.replace("_", "-")
        help_text = docs.get(f.name, "")
        choices = None
        if typing.get_origin(hints[f.name]) is typing.Literal:
            choices = list(typing.get_args(hints[f.name]))
        if tp is bool and f.name.startswith("no_"):
            positive = "--" + f.name[3:].replace("_", "-")
            target.add_argument(option, positive, dest=f.name, action=NegatedFlag, default=default,
                                help=help_text + f" (default: %(default)s; {positive} turns it off)")
        elif tp is bool:
            target.add_argument(option, dest=f.name, action=argparse.BooleanOptionalAction,
                                default=default, help=help_text + " (default: %(default)s)")
        else:
            conv = tp if tp in (int, float, str) else str
            target.add_argument(option, dest=f.name, type=conv, default=default, choices=choices,
                                help=help_text + " (default: %(default)s)")


def dataclass_from_args(cls: type, args: argparse.Namespace, **extra: Any) -> Any:
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    kwargs = {k: v for k, v in vars(args).items() if k in names}
    kwargs.update(extra)
    return cls(**kwargs)


def add_json_options(parser: argparse.ArgumentParser, what: str) -> None:
    """``--json`` and ``--json-out PATH`` for a command whose result is ``what`` (a noun phrase);
    the command needs a ``--force`` option too (see :func:`check_json_out`)."""
    parser.add_argument("--json", action="store_true",
                        help=f"print {what} as JSON on standard output (and nothing else)")
    parser.add_argument("--json-out", default=None, metavar="PATH",
                        help=f"also write {what} as JSON to PATH (an existing file is replaced only with --force)")


def check_json_out(args: argparse.Namespace) -> Path | None:
    """The ``--json-out`` path, checked before any work: CLIError when it exists without ``--force``."""
    from gptbert.cli.errors import CLIError
    from gptbert.io.files import OutputExistsError, check_new_output

    if args.json_out is None:
        return None
    try:
        return check_new_output(args.json_out, force=args.force, option="--json-out")
    except OutputExistsError as e:
        raise CLIError(str(e)) from None


def add_force_option(parser: argparse.ArgumentParser, what: str = "--out") -> None:
    parser.add_argument("--force", action="store_true", help=f"replace an existing {what} file")


def check_out_file(path: str | Path, *, force: bool, option: str = "--out") -> Path:
    """An output file path checked before any work: CLIError when it exists without ``force``,
    is a folder, or cannot be written (the same rule as :func:`check_json_out`)."""
    from gptbert.cli.errors import CLIError
    from gptbert.io.files import OutputExistsError, OutputPathError, check_new_output

    try:
        return check_new_output(path, force=force, option=option)
    except (OutputExistsError, OutputPathError) as e:
        raise CLIError(str(e)) from None


def read_text_option(path: str | Path, option: str) -> str:
    """The text of a file named by ``option`` (the one text-file check; CLIError naming both)."""
    from gptbert.cli.errors import CLIError
    from gptbert.io.files import NotTextError, read_text_file

    try:
        return read_text_file(path, option=option)
    except NotTextError as e:
        raise CLIError(str(e)) from None


def write_json_out(path: Path, data: Any, args: argparse.Namespace) -> None:
    """Write ``data`` as JSON to ``path`` atomically and say so (on stderr under ``--json``,
    whose standard output is the JSON alone)."""
    from gptbert.cli.errors import CLIError
    from gptbert.io.files import atomic_write_text, to_json

    try:
        atomic_write_text(path, to_json(data))
    except OSError as e:
        raise CLIError(f"--json-out {path}: cannot write: {e}") from None
    print(f"\nwrote {path}", file=sys.stderr if args.json else sys.stdout)


DATA_FORMATS_HELP = ("TSV, CSV, JSONL, JSON, Parquet or a Hugging Face datasets folder (save_to_disk; "
                     "FOLDER:SPLIT or --split picks a split)")
"""What a task-file argument may name, for the help of the commands that take one."""


def add_column_options(parser: argparse.ArgumentParser, *, labels: bool = True, from_run: bool = False) -> None:
    """``--text-column``, ``--text-pair-column``, ``--label-column`` (with ``labels``) and ``--split``:
    the column mapping of a command that reads a task file in any format (see :func:`column_options`).
    ``from_run``: the command reads a file for a trained run, whose own columns are the defaults (None)."""
    run = "the run's own columns, else " if from_run else ""
    parser.add_argument("--text-column", default=None if from_run else "text",
                        help=f"text column (header name, key or table column; default: {run}text)")
    parser.add_argument("--text-pair-column", default=None, help="second-text column for pair tasks"
                        + (" (default: the run's own)" if from_run else ""))
    if labels:
        parser.add_argument("--label-column", default=None if from_run else "label",
                            help=f"label column (default: {run}label)")
    parser.add_argument("--split", default=None, metavar="NAME",
                        help="the split of a Hugging Face DatasetDict folder (or write FOLDER:NAME)")


def column_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``read_task_file`` that :func:`add_column_options` gave."""
    out = {"text_column": args.text_column, "text_pair_column": args.text_pair_column, "split": args.split}
    if hasattr(args, "label_column"):
        out["label_column"] = args.label_column
    return out


def data_spec(path: str, split: str | None) -> str:
    """``path`` with ``--split`` folded in as ``FOLDER:SPLIT`` (what every reader takes); CLIError
    when ``split`` is given for something that is not a folder."""
    from gptbert.cli.errors import CLIError

    if split is None:
        return path
    if not Path(path).is_dir():
        raise CLIError(f"--split {split}: names a split of a Hugging Face datasets folder, and {path} is "
                       f"{'a file' if Path(path).exists() else 'not there'}")
    return f"{path}:{split}"


def given_options(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The ``dest`` of every option written on the command line ``argv`` (abbreviations included),
    so that a command can tell a value the user chose from a default it may plan itself."""
    actions = parser._option_string_actions  # noqa: SLF001  (argparse keeps the table here)
    given: set[str] = set()
    for token in argv:
        if token == "--":
            break
        if not token.startswith("-") or token == "-":
            continue
        name = token.split("=", 1)[0]
        if name in actions:
            given.add(actions[name].dest)
            continue
        matches = {a.dest for opt, a in actions.items() if opt.startswith(name) and name.startswith("--")}
        if len(matches) == 1:
            given |= matches
    return given

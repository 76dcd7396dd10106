"""Turn a dataclass into argparse options whose help is the field's docstring."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import textwrap
import typing
from typing import Any


def field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings (a string literal right after a field) of a dataclass."""
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
        if tp is bool:
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

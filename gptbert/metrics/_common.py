"""What the metric modules share: optional dependencies imported when used, the length check."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType
from typing import Any

_INSTALL_HINT = "pip install 'gptbert[metrics]'"


def require(module: str, package: str, caller: str) -> ModuleType:
    """Import an optional dependency, or fail with a message naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"gptbert.metrics.{caller} needs the optional package {package!r}; "
            f"install the metrics extra: {_INSTALL_HINT}"
        ) from exc


def check_lengths(refs: Sequence[Any], preds: Sequence[Any], what: str) -> None:
    if isinstance(preds, str) or isinstance(refs, str):
        raise TypeError("pass lists of strings, not a single string")
    if len(preds) != len(refs):
        raise ValueError(f"length mismatch: {len(preds)} predictions vs {len(refs)} {what}")
    if len(preds) == 0:
        raise ValueError("empty inputs: need at least one example")

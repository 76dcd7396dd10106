"""Every checkpoint loader on every broken run directory of tests/reliability/_runs.py: a clean
error (ValueError or OSError, one line, naming the folder or file) and never a half-loaded model."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

BROKEN: dict[str, str] = {
    # run name -> what the message must name
    "emptydir": "emptydir", "truncated": "model.safetensors", "headeronly": "model.safetensors",
    "zeroweights": "model.safetensors", "noweights": "model.safetensors", "garbageweights": "model.safetensors",
    "bigvocab": "vocab", "gptbigvocab": "vocab", "huge": "n_layer", "hugewidth": "n_embd", "negconfig": "n_layer",
    "badjsonconfig": "config.json", "listconfig": "config.json", "badtask": "task.json", "badlabels": "labels.json",
    "badtokenizer": "tokenizer.json", "unfinished": "--resume", "evilbin": "pytorch_model.bin",
    "garbagebin": "pytorch_model.bin", "foreignconfig": "foreignconfig",
}
"""Only the loaders that read that part are asked about it (see _LOADERS)."""


def _load_run(path: Path) -> Any:
    from gptbert.run import load_run

    return load_run(path)


def _lm(path: Path) -> Any:
    from gptbert.api import LM

    return LM.load(path)


def _load_any(path: Path) -> Any:
    from gptbert.io.checkpoint import load_any

    return load_any(path)


def _read_config(path: Path) -> Any:
    from gptbert.io.checkpoint import read_config

    return read_config(path)


_MODEL_ONLY = {"emptydir", "truncated", "headeronly", "zeroweights", "noweights", "garbageweights", "huge",
               "hugewidth", "negconfig", "badjsonconfig", "listconfig", "unfinished", "evilbin", "garbagebin",
               "foreignconfig"}
_CONFIG_ONLY = {"emptydir", "negconfig", "badjsonconfig", "listconfig", "unfinished", "foreignconfig"}
_LOADERS: dict[str, tuple[Callable[[Path], Any], set[str]]] = {
    "load_run": (_load_run, set(BROKEN)),
    "LM.load": (_lm, set(BROKEN)),
    "load_any": (_load_any, _MODEL_ONLY),
    "read_config": (_read_config, _CONFIG_ONLY),
}
CASES = [(loader, run) for loader, (_, names) in _LOADERS.items() for run in BROKEN if run in names]


@pytest.mark.parametrize("loader,run", CASES, ids=[f"{a}-{b}" for a, b in CASES])
def test_loader_refuses(loader: str, run: str, runs: dict[str, Path]) -> None:
    load, _ = _LOADERS[loader]
    with pytest.raises((ValueError, OSError)) as info:
        load(runs[run])
    message = str(info.value)
    assert "\n" not in message.strip(), f"{loader}({run}): message of several lines: {message!r}"
    assert BROKEN[run].lower() in message.lower(), f"{loader}({run}): {message!r} does not name {BROKEN[run]!r}"


@pytest.mark.parametrize("loader", list(_LOADERS))
def test_loader_accepts_good_runs(loader: str, runs: dict[str, Path]) -> None:
    """The checks refuse only what is broken: the intact runs load with every loader."""
    load, _ = _LOADERS[loader]
    for name in ("cls", "mlm", "gpt"):
        assert load(runs[name]) is not None

"""safetensors state dicts with tied weights stored once: the one writer and the one reader.

safetensors refuses tensors that share memory, and a tied GPT LM head or BERT MLM decoder
shares the word-embedding matrix. Each shared tensor is therefore stored once and the file's
metadata records ``{alias: stored name}`` under :data:`gptbert.io.layout.TIED_KEY`, which
:func:`read_weights` restores. Used by checkpoints, run directories and training state.
:func:`load_state` puts a state dict into a model, naming every tensor that does not fit.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from gptbert.io.files import atomic_write
from gptbert.io.layout import TIED_KEY


class WeightsError(ValueError):
    """A weights file that cannot be read (truncated, not safetensors, inconsistent)."""


def dedupe_tensors(state: Mapping[str, Tensor], prefix: str = "") -> tuple[dict[str, Tensor], dict[str, str]]:
    """CPU tensors ready for safetensors, plus ``{alias: stored name}`` for tied (identical) tensors.

    Two names are tied when they are the same view of the same memory; a tensor that only
    partly shares memory with another is copied (safetensors refuses shared memory).
    """
    tensors: dict[str, Tensor] = {}
    aliases: dict[str, str] = {}
    views: dict[tuple[Any, ...], str] = {}
    storages: set[tuple[str, int]] = set()
    for name, t in state.items():
        t = t.detach()
        shared = False
        if t.numel() > 0:
            view = (str(t.device), t.data_ptr(), t.dtype, tuple(t.shape), t.stride())
            if view in views:
                aliases[prefix + name] = prefix + views[view]
                continue
            views[view] = name
            storage = (str(t.device), t.untyped_storage().data_ptr())
            shared = storage in storages
            storages.add(storage)
        t = t.to("cpu")
        tensors[prefix + name] = t.clone() if shared else t.contiguous()
    return tensors, aliases


def write_weights(path: str | os.PathLike[str], state: Mapping[str, Tensor],
                  metadata: Mapping[str, Any] | None = None) -> Path:
    """Write ``state`` to a safetensors file atomically, tied tensors once.

    ``metadata`` values are stored as strings (JSON for non-strings).
    """
    from safetensors.torch import save_file

    tensors, aliases = dedupe_tensors(state)
    meta = {"format": "pt", TIED_KEY: json.dumps(aliases)}
    for k, v in (metadata or {}).items():
        meta[str(k)] = v if isinstance(v, str) else json.dumps(v)
    return atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def _unreadable(path: str | os.PathLike[str], e: Exception) -> WeightsError:
    text = str(e).strip().splitlines()
    reason = text[0] if text else type(e).__name__
    return WeightsError(f"{path}: not a readable safetensors file ({reason}); the file may be truncated "
                        "or not safetensors")


def _read_header(path: str | os.PathLike[str]) -> tuple[list[str], dict[str, str]]:
    """(tensor names, metadata) of a safetensors file, reading only its header."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return list(f.keys()), dict(f.metadata() or {})
    except FileNotFoundError:
        raise
    except Exception as e:  # SafetensorError and friends: a truncated or foreign file
        raise _unreadable(path, e) from None


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The metadata of a safetensors file, reading only its header."""
    return _read_header(path)[1]


def read_tensor_names(path: str | os.PathLike[str]) -> list[str]:
    """The names of the tensors stored in a safetensors file (tied aliases not included), header only."""
    return _read_header(path)[0]


def read_weights(path: str | os.PathLike[str], *, device: str | torch.device = "cpu"
                 ) -> tuple[dict[str, Tensor], dict[str, str]]:
    """(state dict with tied aliases restored, metadata) of a safetensors file."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except FileNotFoundError:
        raise
    except Exception as e:
        raise _unreadable(path, e) from None
    try:
        aliases = json.loads(meta.get(TIED_KEY, "{}"))
    except json.JSONDecodeError:
        raise WeightsError(f"{path}: metadata {TIED_KEY!r} is not valid JSON") from None
    for alias, stored in aliases.items():
        if stored not in tensors:
            raise WeightsError(f"{path}: tied tensor {alias!r} refers to missing {stored!r}")
        tensors[alias] = tensors[stored]
    return tensors, meta


# --------------------------------------------------------------------------- into a model


def float_dtype(tensors: Iterable[Tensor]) -> torch.dtype | None:
    """The one floating-point dtype of ``tensors`` (None when there are none, or several)."""
    dtypes = {t.dtype for t in tensors if t.is_floating_point()}
    return dtypes.pop() if len(dtypes) == 1 else None


def _shape(t: Tensor) -> list[int]:
    return list(t.shape)


def check_state(model: nn.Module, state: Mapping[str, Tensor], source: str) -> None:
    """Raise one ValueError naming every missing, unexpected or mis-shaped tensor of ``state``."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    problems = []
    if missing:
        problems.append("missing tensor(s): " + ", ".join(f"{k!r} {_shape(expected[k])}" for k in missing))
    if unexpected:
        problems.append("unexpected tensor(s): " + ", ".join(f"{k!r} {_shape(state[k])}" for k in unexpected))
    for k in expected:
        if k in state and state[k].shape != expected[k].shape:
            problems.append(f"tensor {k!r} has shape {_shape(state[k])}, the config expects {_shape(expected[k])}")
    if problems:
        raise ValueError(f"{source}: " + "; ".join(problems))


def load_state(model: nn.Module, state: Mapping[str, Tensor], source: str, *,
               device: str | torch.device = "cpu", dtype: torch.dtype | None = None) -> nn.Module:
    """``model`` holding ``state`` (checked by :func:`check_state`), on ``device``, in eval mode.

    The model takes the stored floating-point dtype; ``dtype`` (if given) converts it afterwards.
    """
    stored = float_dtype(state.values())
    if stored is not None:
        model = model.to(dtype=stored)
    check_state(model, state, source)
    model.load_state_dict(state, strict=True)
    if dtype is not None:
        model = model.to(dtype=dtype)
    return model.to(device).eval()

"""Saving and loading compressed models.

A compressed model is saved as an ordinary gptbert checkpoint directory (``config.json`` +
``model.safetensors``, written by :func:`gptbert.io.checkpoint.save_model`) plus
``compression.json``, which says how to rebuild the module structure before the weights load:

``{"format": "gptbert-compressed", "version": 1,
   "methods": ["prune-heads", "int8-dynamic"],    # what was applied, in order
   "dtype": "float32" | "bfloat16",               # dtype of the floating-point tensors
   "heads_per_layer": [12, 9, ...] | null,        # attention heads kept in each layer
   "quantized": {"blocks.0.attn.qkv": "int8-dynamic", ...},
   "info": {...}}                                 # what compress() reported (sparsity, ...)``

Every tensor is an ordinary safetensors tensor (int8 weights and their fp32/bf16 scales for
quantised layers); no pickled objects. Loading builds the model from ``config.json``, shrinks
its attention layers to ``heads_per_layer``, casts it to ``dtype``, swaps the quantised layers
for empty ones of the same shape, then loads the weights strictly (tied weights, stored once by
``save_model``, are checked to share memory in the rebuilt model).

Magnitude pruning needs nothing extra: the zeros are stored, and
:func:`gptbert.compress.prune.masks_from_zeros` recovers the masks.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from gptbert.compress.prune import heads_per_layer, resize_heads
from gptbert.compress.quantize import empty_quantized_like, quantized_modules
from gptbert.config import ModelConfig
from gptbert.io.checkpoint import load_model, save_model
from gptbert.io.layout import CONFIG_FILE, WEIGHTS_FILE

__all__ = ["COMPRESSION_NAME", "compression_meta", "is_compressed", "load_compressed", "read_compression", "save_compressed"]

COMPRESSION_NAME = "compression.json"
_FORMAT = "gptbert-compressed"
_VERSION = 1
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _dtype_name(model: nn.Module) -> str:
    """The dtype of the model's floating-point parameters (quantised layers hold buffers only)."""
    dtypes = {p.dtype for p in model.parameters() if p.is_floating_point()}
    if not dtypes:
        dtypes = {b.dtype for b in model.buffers() if b.is_floating_point()} or {torch.float32}
    if len(dtypes) != 1:
        raise ValueError(f"cannot save a model with mixed parameter dtypes {sorted(map(str, dtypes))}")
    name = str(dtypes.pop()).removeprefix("torch.")
    if name not in _DTYPES:
        raise ValueError(f"unsupported floating-point dtype {name}")
    return name


def _default_heads(model: nn.Module) -> list[int] | None:
    config = getattr(model, "config", None)
    try:
        heads = heads_per_layer(model)
    except TypeError:
        return None  # ELMo: no attention
    if isinstance(config, ModelConfig) and all(h == config.n_head for h in heads):
        return None
    return heads


def compression_meta(model: nn.Module, info: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``compression.json`` content describing ``model``'s current structure."""
    info = dict(info or {})
    methods = info.get("methods")
    if methods is None:
        methods = [info["method"]] if "method" in info else []
    return {
        "format": _FORMAT,
        "version": _VERSION,
        "methods": list(methods),
        "dtype": _dtype_name(model),
        "heads_per_layer": _default_heads(model),
        "quantized": quantized_modules(model),
        "info": info,
    }


def save_compressed(
    model: nn.Module,
    directory: str | os.PathLike,
    info: Mapping[str, Any] | None = None,
    extra_files: Mapping[str, Any] | None = None,
) -> Path:
    """Save a (compressed) gptbert model with its ``compression.json``; returns the directory.

    ``info``: what :func:`gptbert.compress.compress` returned (kept under ``"info"``);
    ``extra_files``: as for :func:`gptbert.io.checkpoint.save_model` (tokenizer, labels...).
    """
    extra = dict(extra_files or {})
    if COMPRESSION_NAME in extra:
        raise ValueError(f"extra_files may not replace {COMPRESSION_NAME}")
    extra[COMPRESSION_NAME] = compression_meta(model, info)
    return save_model(model, directory, extra_files=extra)


def read_compression(directory: str | os.PathLike) -> dict[str, Any] | None:
    """The parsed ``compression.json`` of a checkpoint directory, or None when there is none."""
    path = Path(directory) / COMPRESSION_NAME
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON (line {e.lineno}): {e.msg}") from None
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise ValueError(f"{path}: not a gptbert compression record")
    if int(meta.get("version", 0)) > _VERSION:
        raise ValueError(f"{path}: version {meta.get('version')} is newer than this gptbert understands ({_VERSION})")
    return meta


def is_compressed(directory: str | os.PathLike) -> bool:
    return (Path(directory) / COMPRESSION_NAME).is_file()


def _load_state(model: nn.Module, weights: Path) -> None:
    from safetensors.torch import load_file

    state = load_file(str(weights))
    expected = model.state_dict()
    unexpected = sorted(set(state) - set(expected))
    problems = []
    if unexpected:
        problems.append(f"unexpected tensor(s) {unexpected}")
    for name, t in state.items():
        if name in expected and tuple(t.shape) != tuple(expected[name].shape):
            problems.append(f"tensor {name!r} has shape {list(t.shape)}, the rebuilt model expects {list(expected[name].shape)}")
        elif name in expected and t.dtype != expected[name].dtype:
            problems.append(f"tensor {name!r} is {t.dtype}, the rebuilt model expects {expected[name].dtype}")
    # Tensors absent from the file must be tied (share memory) with one that is present.
    present_ptrs = {expected[n].data_ptr() for n in state if n in expected}
    missing = [n for n in expected if n not in state and expected[n].data_ptr() not in present_ptrs]
    if missing:
        problems.append(f"missing tensor(s) {missing}")
    if problems:
        raise ValueError(f"{weights}: " + "; ".join(problems))
    model.load_state_dict(state, strict=False)


def load_compressed(directory: str | os.PathLike, *, device: str | torch.device = "cpu") -> nn.Module:
    """Load a directory written by :func:`save_compressed` (or a plain gptbert checkpoint); eval mode.

    The module structure (head counts, quantised layers, dtype) is rebuilt from
    ``compression.json`` before the stored weights load, so outputs equal those before saving.
    """
    from gptbert.models import build_model

    directory = Path(directory)
    meta = read_compression(directory)
    if meta is None:
        return load_model(directory, device=device)
    if not (directory / CONFIG_FILE).is_file() or not (directory / WEIGHTS_FILE).is_file():
        raise FileNotFoundError(f"{directory}: needs {CONFIG_FILE} and {WEIGHTS_FILE}")
    config = ModelConfig.load(directory / CONFIG_FILE)
    dtype_name = meta.get("dtype", "float32")
    if dtype_name not in _DTYPES:
        raise ValueError(f"{directory / COMPRESSION_NAME}: unknown dtype {dtype_name!r}")
    dtype = _DTYPES[dtype_name]
    model = build_model(config)
    if meta.get("heads_per_layer"):
        resize_heads(model, meta["heads_per_layer"])
    model.to(dtype)
    quantized = meta.get("quantized") or {}
    if quantized:
        empty_quantized_like(model, quantized, dtype)
    _load_state(model, directory / WEIGHTS_FILE)
    return model.to(device).eval()

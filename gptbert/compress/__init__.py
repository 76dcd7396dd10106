"""Compression and fast inference: bf16, int8 quantisation, pruning, distillation, export.

One entry point for the command line and the library::

    model, info = compress(model, "int8-dynamic")
    save_compressed(model, "out/", info, extra_files={...})
    model = load_compressed("out/")

Methods (:data:`METHODS`) and their options:

* ``bf16``: weights stored and run in bfloat16.
* ``int8-dynamic``: Linear layers with int8 weights, activations quantised per call (fbgemm).
* ``int8-weight-only`` (``dtype="bfloat16"``): int8 weights, bf16 (or fp32) activations.
* ``prune-magnitude`` (``sparsity=0.5``, ``scope="global"|"layer"``): zero the smallest Linear
  weights; ``schedule=[...]`` with ``finetune_fn(model, masks)`` prunes gradually.
* ``prune-heads`` (``heads=N``, optional ``batches`` and ``loss_fn``): remove N attention heads.

Methods can be chained (``compress(compress(m, "prune-heads", heads=4)[0], "int8-dynamic")``);
``info["methods"]`` accumulates when the previous ``info`` is passed as ``previous=``.
Distillation (:func:`distill`) and export (:func:`export_onnx`, :func:`export_torchscript`)
are separate functions: they need data or a path.

Whole run directories (what ``gptbert compress`` does): :mod:`gptbert.compress.runs` saves a
compressed run, recovers a pruned one by fine-tuning, distills into a student run and exports;
:mod:`gptbert.compress.evaluate` measures a run and its compressed copy side by side.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch.nn as nn

from gptbert.compress.distill import DistillLoss, DistillResult, distill, distillation_loss, paired_collate
from gptbert.compress.export import ExportError, export_onnx, export_torchscript, quantize_onnx_dynamic
from gptbert.compress.io import COMPRESSION_NAME, load_compressed, read_compression, save_compressed
from gptbert.compress.prune import (
    KeepPrunedZero,
    head_importance,
    heads_per_layer,
    masks_from_zeros,
    prune_heads,
    prune_magnitude,
    prune_magnitude_iterative,
    sparsity,
)
from gptbert.compress.quantize import (
    DynamicInt8Linear,
    Int8Linear,
    quantize_dynamic_int8,
    quantize_weight_only_int8,
    to_bf16,
)

__all__ = [
    "COMPRESSION_NAME",
    "METHODS",
    "DistillLoss",
    "DistillResult",
    "DynamicInt8Linear",
    "ExportError",
    "Int8Linear",
    "KeepPrunedZero",
    "compress",
    "distill",
    "distillation_loss",
    "export_onnx",
    "export_torchscript",
    "head_importance",
    "heads_per_layer",
    "load_compressed",
    "masks_from_zeros",
    "paired_collate",
    "prune_heads",
    "prune_magnitude",
    "prune_magnitude_iterative",
    "quantize_dynamic_int8",
    "quantize_onnx_dynamic",
    "quantize_weight_only_int8",
    "read_compression",
    "save_compressed",
    "sparsity",
    "to_bf16",
]

METHODS = ("bf16", "int8-dynamic", "int8-weight-only", "prune-magnitude", "prune-heads")

_DTYPE_NAMES = {"bfloat16": "bfloat16", "bf16": "bfloat16", "float32": "float32", "fp32": "float32"}


def _count(model: nn.Module) -> int:
    """Unique parameters, counting the weights and biases of quantised layers (buffers) too."""
    from gptbert.models import count_parameters

    extra = 0
    for m in model.modules():
        if isinstance(m, (DynamicInt8Linear, Int8Linear)):
            extra += m.weight.numel() + (m.bias.numel() if m.bias is not None else 0)
    return count_parameters(model) + extra


def _weights_mb(model: nn.Module) -> float:
    """Bytes of the state dict (each tensor once) in MB (MiB)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for t in model.state_dict().values():
        key = (t.data_ptr(), t.numel())
        if key in seen:
            continue
        seen.add(key)
        total += t.numel() * t.element_size()
    return total / 2**20


def compress(
    model: nn.Module, method: str, *, previous: Mapping[str, Any] | None = None, **opts: Any
) -> tuple[nn.Module, dict[str, Any]]:
    """Apply ``method`` to ``model`` (in place) and return ``(model, info)``.

    ``info`` is JSON-serialisable: ``{"method", "methods", "params_before", "params_after", ...}``
    plus what the method reports (``sparsity``, ``heads_per_layer``, ``removed``...). Options:
    see the module doc. Unknown options raise ``TypeError``. ``previous``: the info of an earlier
    call on the same model, whose ``methods`` list is extended.
    """
    import torch

    if method not in METHODS:
        raise ValueError(f"unknown compression method {method!r}; choose from {', '.join(METHODS)}")
    allowed = {
        "bf16": set(),
        "int8-dynamic": {"include_tied"},
        "int8-weight-only": {"dtype", "include_tied"},
        "prune-magnitude": {"sparsity", "scope", "schedule", "finetune_fn", "include_tied"},
        "prune-heads": {"heads", "batches", "loss_fn"},
    }[method]
    unknown = sorted(set(opts) - allowed)
    if unknown:
        raise TypeError(f"{method}: unknown option(s) {unknown}; allowed: {sorted(allowed) or 'none'}")
    before, mb_before = _count(model), _weights_mb(model)
    info: dict[str, Any] = {"method": method}
    if method == "bf16":
        to_bf16(model)
    elif method == "int8-dynamic":
        quantize_dynamic_int8(model, include_tied=opts.get("include_tied", False))
        info["layers"] = len([m for m in model.modules() if isinstance(m, DynamicInt8Linear)])
    elif method == "int8-weight-only":
        name = _DTYPE_NAMES.get(str(opts.get("dtype", "bfloat16")).removeprefix("torch."))
        if name is None:
            raise ValueError(f"int8-weight-only: dtype must be bfloat16 or float32, got {opts.get('dtype')!r}")
        quantize_weight_only_int8(model, dtype=getattr(torch, name), include_tied=opts.get("include_tied", False))
        info["layers"] = len([m for m in model.modules() if isinstance(m, Int8Linear)])
        info["dtype"] = name
    elif method == "prune-magnitude":
        scope = opts.get("scope", "global")
        include_tied = opts.get("include_tied", False)
        if opts.get("schedule"):
            masks = prune_magnitude_iterative(
                model, list(opts["schedule"]), opts.get("finetune_fn"), scope=scope, include_tied=include_tied
            )
            info["schedule"] = [float(s) for s in opts["schedule"]]
        else:
            masks = prune_magnitude(model, float(opts.get("sparsity", 0.5)), scope=scope, include_tied=include_tied)
        info["scope"] = scope
        info["sparsity"] = sparsity(model, list(masks))
        info["pruned_weights"] = len(masks)
    else:  # prune-heads
        if "heads" not in opts:
            raise TypeError("prune-heads needs heads=N (the number of heads to remove)")
        report = prune_heads(model, int(opts["heads"]), batches=opts.get("batches"), loss_fn=opts.get("loss_fn"))
        info.update(report)
    info["params_before"] = before
    info["params_after"] = _count(model)
    info["weights_mb_before"] = round(mb_before, 3)
    info["weights_mb_after"] = round(_weights_mb(model), 3)
    info["methods"] = [*(previous or {}).get("methods", []), method]
    return model, info

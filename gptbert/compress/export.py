"""Export to ONNX and TorchScript, each verified against PyTorch right after writing.

Both exporters trace the model on an example batch (a dict of tensors as the collators build
it, e.g. ``{"idx", "attention_mask"}``; ``targets`` is ignored). The exported program takes the
batch's tensors as inputs, in the batch's key order and under the same names, and returns the
model's logits (the first element of ``model(**batch)``; a tuple of logits, as BERT's
'pretrain' head gives, becomes several outputs named ``logits_0``, ``logits_1``...).

After writing, the file is loaded back (ONNX Runtime for ONNX, ``torch.jit.load`` for
TorchScript) and run on the example batch and on a second batch of another batch size and
sequence length (rows and positions taken from the example), and the outputs are compared with
the PyTorch model's. A difference beyond ``atol + rtol * |expected|`` raises :class:`ExportError`.

ONNX: the batch and sequence axes of every input (dims 0 and 1) are dynamic. Two exporters:
the TorchScript-based one (``dynamo=False``, default: about 30x faster to run here and fine for
these models; torch marks it as legacy) and the ``torch.export``-based one (``dynamo=True``).
Quantised gptbert modules do not export; export the float model and quantise the ONNX file with
:func:`quantize_onnx_dynamic` (ONNX Runtime's dynamic int8 quantisation).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

__all__ = ["ExportError", "export_onnx", "export_torchscript", "quantize_onnx_dynamic", "DEFAULT_OPSET"]

DEFAULT_OPSET = 17
"""ONNX opset of the TorchScript-based exporter (the dynamo exporter picks its own, >= 18)."""


class ExportError(RuntimeError):
    """The exported model's outputs differ from PyTorch's beyond the tolerance."""


class _Adapter(nn.Module):
    """Positional tensors in -> logits (a tensor or a tuple of tensors) out."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *inputs: Tensor) -> Tensor | tuple[Tensor, ...]:
        out = self.model(**dict(zip(self.names, inputs)))
        logits = out[0] if isinstance(out, tuple) and len(out) == 2 and (out[1] is None or isinstance(out[1], Tensor)) else out
        return tuple(logits) if isinstance(logits, (tuple, list)) else logits


def _inputs(batch: Mapping[str, Any]) -> tuple[list[str], list[Tensor]]:
    names = [k for k, v in batch.items() if isinstance(v, Tensor) and k not in ("targets", "labels")]
    if not names:
        raise ValueError("example_batch holds no input tensors")
    return names, [batch[k] for k in names]


def _variant(tensors: list[Tensor]) -> list[Tensor]:
    """The same inputs with one more row (a copy of row 0) and one position fewer (when long enough)."""
    out = []
    for t in tensors:
        t = torch.cat([t, t[:1]], dim=0)
        if t.dim() >= 2 and t.size(1) > 2:
            t = t[:, : t.size(1) - 1]
        out.append(t.contiguous())
    return out


def _as_list(out: Any) -> list[Tensor]:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _compare(expected: list[Tensor], got: list[Any], what: str, rtol: float, atol: float) -> float:
    if len(expected) != len(got):
        raise ExportError(f"{what}: {len(got)} outputs, PyTorch gives {len(expected)}")
    worst = 0.0
    for i, (e, g) in enumerate(zip(expected, got)):
        g = torch.as_tensor(g).float()
        e = e.detach().float()
        if tuple(e.shape) != tuple(g.shape):
            raise ExportError(f"{what}: output {i} has shape {tuple(g.shape)}, PyTorch {tuple(e.shape)}")
        diff = (g - e).abs()
        worst = max(worst, float(diff.max()) if diff.numel() else 0.0)
        if not bool((diff <= atol + rtol * e.abs()).all()):
            raise ExportError(
                f"{what}: output {i} differs from PyTorch by up to {float(diff.max()):.3g} "
                f"(tolerance atol={atol:g}, rtol={rtol:g})"
            )
    return worst


def _reference(adapter: nn.Module, tensors: list[Tensor]) -> list[Tensor]:
    with torch.no_grad():
        return _as_list(adapter(*tensors))


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    example_batch: Mapping[str, Any],
    *,
    dynamo: bool = False,
    opset: int | None = None,
    rtol: float = 1e-3,
    atol: float = 1e-4,
) -> dict[str, Any]:
    """Write ``model`` (eval mode, fp32 recommended) as an ONNX file and verify it with ONNX Runtime.

    Returns ``{"path", "inputs", "outputs", "opset", "max_abs_diff"}``; raises :class:`ExportError`
    when ONNX Runtime's outputs differ from PyTorch's.
    """
    import onnxruntime as ort

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    names, tensors = _inputs(example_batch)
    adapter = _Adapter(model, names).eval()
    expected = _reference(adapter, tensors)
    out_names = ["logits"] if len(expected) == 1 else [f"logits_{i}" for i in range(len(expected))]
    seq_len = tensors[0].size(1) if tensors[0].dim() >= 2 else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and deprecation chatter
            if dynamo:
                batch_dim, seq_dim = torch.export.Dim("batch"), torch.export.Dim("sequence")
                # One entry: the adapter's *inputs, a tuple with one spec per tensor.
                shapes = tuple({0: batch_dim, 1: seq_dim} if t.dim() >= 2 else {0: batch_dim} for t in tensors)
                program = torch.onnx.export(
                    adapter, tuple(tensors), input_names=names, output_names=out_names,
                    dynamic_shapes=(shapes,), dynamo=True, opset_version=opset, verbose=False,
                )
                program.save(str(path))
                used_opset = opset
            else:
                axes: dict[str, dict[int, str]] = {}
                for n, t in zip(names, tensors):
                    axes[n] = {0: "batch", 1: "sequence"} if t.dim() >= 2 else {0: "batch"}
                for n, e in zip(out_names, expected):
                    axes[n] = {0: "batch"}
                    if e.dim() >= 3 and seq_len is not None and e.size(1) == seq_len:
                        axes[n][1] = "sequence"
                used_opset = opset or DEFAULT_OPSET
                torch.onnx.export(
                    adapter, tuple(tensors), str(path), input_names=names, output_names=out_names,
                    dynamic_axes=axes, opset_version=used_opset, dynamo=False,
                )
    finally:
        model.train(was_training)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    worst = 0.0
    for label, inputs in (("example batch", tensors), ("resized batch", _variant(tensors))):
        ref = expected if inputs is tensors else _reference(adapter, inputs)
        feeds = {n: t.cpu().numpy() for n, t in zip(names, inputs)}
        got = session.run(None, feeds)
        worst = max(worst, _compare(ref, got, f"ONNX export {path} ({label})", rtol, atol))
    if used_opset is None:
        import onnx

        used_opset = next((o.version for o in onnx.load(str(path), load_external_data=False).opset_import
                           if o.domain in ("", "ai.onnx")), None)
    return {"path": str(path), "inputs": names, "outputs": out_names, "opset": used_opset, "max_abs_diff": worst}


def export_torchscript(
    model: nn.Module,
    path: str | os.PathLike,
    example_batch: Mapping[str, Any],
    *,
    rtol: float = 1e-4,
    atol: float = 1e-5,
) -> dict[str, Any]:
    """Trace ``model`` (eval mode) with ``torch.jit.trace``, save it, reload it and verify it.

    The saved module is called with the batch's tensors positionally (order: ``inputs`` of the
    returned dict). Returns ``{"path", "inputs", "max_abs_diff"}``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    names, tensors = _inputs(example_batch)
    adapter = _Adapter(model, names).eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.no_grad():
                traced = torch.jit.trace(adapter, tuple(tensors), check_trace=False)
            torch.jit.save(traced, str(path))
            loaded = torch.jit.load(str(path), map_location="cpu")
        worst = 0.0
        for label, inputs in (("example batch", tensors), ("resized batch", _variant(tensors))):
            ref = _reference(adapter, inputs)
            with torch.no_grad():
                got = _as_list(loaded(*inputs))
            worst = max(worst, _compare(ref, got, f"TorchScript export {path} ({label})", rtol, atol))
    finally:
        model.train(was_training)
    return {"path": str(path), "inputs": names, "max_abs_diff": worst}


def quantize_onnx_dynamic(source: str | os.PathLike, target: str | os.PathLike, *, per_channel: bool = True) -> Path:
    """ONNX Runtime's dynamic int8 quantisation of an exported model (weights int8, activations per call)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=per_channel)
    return target

"""Reduced-precision forms of a model: bf16 weights, dynamic int8 and weight-only int8 Linear layers.

Three forms, each a plain ``nn.Module`` whose ``state_dict`` holds only ordinary tensors (so it
saves to safetensors with no pickled objects and reloads exactly):

* ``bf16``: every floating-point tensor cast to ``torch.bfloat16``; activations run in bf16.
* ``int8-dynamic``: each ``nn.Linear`` becomes a :class:`DynamicInt8Linear`: int8 weights with
  one scale per output channel (symmetric), and activations quantised to uint8 per call from
  their observed range (per tensor). The matrix product runs in fbgemm/oneDNN's int8 kernels
  (``torch.ops.quantized.linear_dynamic``, the kernel behind
  ``torch.ao.quantization.quantize_dynamic``); inputs and outputs stay fp32.
* ``int8-weight-only``: each ``nn.Linear`` becomes an :class:`Int8Linear`: the same int8 weights
  and per-channel scales, but the activations stay floating point (bf16 by default) and the
  weights are dequantised inside the product: ``y = (x @ W_q^T) * scale + bias``.

Linear layers whose weight is tied to an embedding (GPT's LM head, BERT's MLM decoder) are left
alone by default: quantising them would untie and duplicate the vocabulary matrix.

Which kernel is fastest depends on the CPU. On an AVX2-only CPU (no native bf16; measured on the
development machine, see ``benchmarks/inference.py``) fbgemm's int8 GEMM is the fastest path,
fp32 next, and bf16 matrix products are several times slower than fp32. For bf16 activations
:class:`Int8Linear` uses ``torch._weight_int8pack_mm`` (about 4x faster there than a bf16
``F.linear`` on dequantised weights), but only for the shapes it is known to handle (see
:func:`int8pack_mm_supported`); for fp32 activations, and any other shape, it multiplies by the
int8 weights cast to the activation dtype and scales the output.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "DynamicInt8Linear",
    "Int8Linear",
    "int8pack_mm_supported",
    "quantize_int8_per_channel",
    "quantize_dynamic_int8",
    "quantize_weight_only_int8",
    "to_bf16",
    "quantizable_linears",
    "quantized_modules",
]

INT8_MAX = 127
"""Symmetric int8 range [-127, 127] (-128 unused, so that -q is always representable)."""


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence torch's deprecation notices about quantised tensors (the kernels work as ever)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*quantiz.*", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*quantiz.*", category=DeprecationWarning)
        yield


def quantize_int8_per_channel(weight: Tensor) -> tuple[Tensor, Tensor]:
    """Symmetric int8 quantisation with one scale per row. weight (N, K) -> (int8 (N, K), fp32 scale (N,))

    ``scale = max|w_row| / 127`` (1 for all-zero rows) and ``q = round(w / scale)``, so
    ``|w - q * scale| <= scale / 2`` element-wise.
    """
    w = weight.detach().float()
    scale = w.abs().amax(dim=1) / INT8_MAX  # (N,)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.round(w / scale[:, None]).clamp_(-INT8_MAX, INT8_MAX).to(torch.int8)  # (N, K)
    return q, scale


def _quantized_engine_reduce_range() -> bool:
    """fbgemm/x86 quantise activations to 7 bits (avoids int16 saturation in their AVX2 kernels)."""
    return torch.backends.quantized.engine in ("fbgemm", "x86")


class DynamicInt8Linear(nn.Module):
    """Linear layer with int8 weights (per output channel) and dynamically quantised activations.

    State: ``weight`` int8 (out, in), ``weight_scale`` fp32 (out,), ``bias`` fp32 (out,) or
    absent. The packed form the kernel needs is rebuilt from them on first use after any load
    or move, and is never part of the state dict. CPU only (the int8 kernels are CPU kernels).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("weight", torch.zeros(out_features, in_features, dtype=torch.int8))
        self.register_buffer("weight_scale", torch.ones(out_features, dtype=torch.float32))
        self.bias: Tensor | None
        if bias:
            self.register_buffer("bias", torch.zeros(out_features, dtype=torch.float32))
        else:
            self.bias = None
        self.reduce_range = _quantized_engine_reduce_range()
        self._packed: object | None = None

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> "DynamicInt8Linear":
        m = cls(linear.in_features, linear.out_features, bias=linear.bias is not None)
        q, scale = quantize_int8_per_channel(linear.weight)
        m.weight.copy_(q)
        m.weight_scale.copy_(scale)
        if linear.bias is not None:
            assert m.bias is not None
            m.bias.copy_(linear.bias.detach().float())
        return m

    def _pack(self) -> object:
        if self._packed is None:
            zero_points = torch.zeros(self.out_features, dtype=torch.long)
            with _quiet():
                qweight = torch._make_per_channel_quantized_tensor(
                    self.weight.cpu(), self.weight_scale.cpu().double(), zero_points, 0
                )
                bias = self.bias.float().cpu() if self.bias is not None else None
                self._packed = torch.ops.quantized.linear_prepack(qweight, bias)
        return self._packed

    def _load_from_state_dict(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        self._packed = None
        super()._load_from_state_dict(*args, **kwargs)

    def _apply(self, fn: Callable, *args, **kwargs):  # type: ignore[no-untyped-def, override]
        self._packed = None
        out = super()._apply(fn, *args, **kwargs)
        # .to(dtype) must not turn the scales or the bias into bf16: the kernel works in fp32.
        self.weight_scale.data = self.weight_scale.data.float()
        if self.bias is not None:
            self.bias.data = self.bias.data.float()
        return out

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_packed"] = None  # rebuilt lazily (deepcopy / pickle)
        return state

    def dequantized_weight(self) -> Tensor:
        return self.weight.float() * self.weight_scale[:, None]  # (out, in)

    def forward(self, x: Tensor) -> Tensor:
        dtype = x.dtype
        y = torch.ops.quantized.linear_dynamic(x.float(), self._pack(), self.reduce_range)  # (..., out) fp32
        return y if dtype == torch.float32 else y.to(dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, int8 dynamic"


INT8PACK_BLOCK = 64
"""``torch._weight_int8pack_mm`` is a private op whose CPU kernels read whole vector blocks with
aligned loads. On an Intel Xeon with AMX it segfaulted for a (10, 32) x (24, 32) product (24
output features, as after head pruning) while 32 and 64 worked; so it is used only when both
weight dimensions are multiples of 64 and both operands are contiguous and 64-byte aligned."""


def int8pack_mm_supported(x: Tensor, weight: Tensor) -> bool:
    """Whether ``torch._weight_int8pack_mm(x, weight, scale)`` may be called: x (M, K) bf16, weight (N, K) int8.

    A private op is not a stable interface: anything outside the shapes known to work takes the
    plain (dequantised) product instead.
    """
    if not hasattr(torch, "_weight_int8pack_mm") or x.device.type != "cpu" or x.dtype != torch.bfloat16:
        return False
    n, k = weight.shape
    return (x.dim() == 2 and x.shape[1] == k and n % INT8PACK_BLOCK == 0 and k % INT8PACK_BLOCK == 0
            and x.is_contiguous() and weight.is_contiguous()
            and x.data_ptr() % INT8PACK_BLOCK == 0 and weight.data_ptr() % INT8PACK_BLOCK == 0)


class Int8Linear(nn.Module):
    """Weight-only int8 Linear: int8 weights with per-output-channel scales, float activations.

    State: ``weight`` int8 (out, in), ``weight_scale`` (out,) and ``bias`` (out,) in the compute
    dtype. ``y = (x @ W_q^T) * weight_scale + bias`` computed in ``x.dtype``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype: torch.dtype = torch.bfloat16) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("weight", torch.zeros(out_features, in_features, dtype=torch.int8))
        self.register_buffer("weight_scale", torch.ones(out_features, dtype=dtype))
        self.bias: Tensor | None
        if bias:
            self.register_buffer("bias", torch.zeros(out_features, dtype=dtype))
        else:
            self.bias = None

    @classmethod
    def from_linear(cls, linear: nn.Linear, dtype: torch.dtype = torch.bfloat16) -> "Int8Linear":
        m = cls(linear.in_features, linear.out_features, bias=linear.bias is not None, dtype=dtype)
        q, scale = quantize_int8_per_channel(linear.weight)
        m.weight.copy_(q)
        m.weight_scale.copy_(scale.to(dtype))
        if linear.bias is not None:
            assert m.bias is not None
            m.bias.copy_(linear.bias.detach().to(dtype))
        return m.to(linear.weight.device)

    def dequantized_weight(self) -> Tensor:
        return self.weight.to(self.weight_scale.dtype) * self.weight_scale[:, None]  # (out, in)

    def forward(self, x: Tensor) -> Tensor:
        scale = self.weight_scale.to(x.dtype)
        x2d = x.reshape(-1, self.in_features).contiguous()  # (M, in)
        if int8pack_mm_supported(x2d, self.weight):
            y = torch._weight_int8pack_mm(x2d, self.weight, scale)  # (M, out)
            y = y.view(*x.shape[:-1], self.out_features)  # (..., out)
        else:
            y = F.linear(x, self.weight.to(x.dtype)) * scale  # (..., out)
        if self.bias is not None:
            y = y + self.bias.to(x.dtype)
        return y

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, int8 weight-only, {self.weight_scale.dtype}")


# ---------------------------------------------------------------------------------------------
# Conversions of a whole model
# ---------------------------------------------------------------------------------------------


def _embedding_weights(model: nn.Module) -> set[int]:
    return {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}


def quantizable_linears(model: nn.Module, *, include_tied: bool = False) -> list[str]:
    """Names of the ``nn.Linear`` modules to quantise: all, less those tied to an embedding."""
    tied = _embedding_weights(model) if not include_tied else set()
    return [name for name, m in model.named_modules() if type(m) is nn.Linear and id(m.weight) not in tied]


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def quantized_modules(model: nn.Module) -> dict[str, str]:
    """``{module name: 'int8-dynamic' | 'int8-weight-only'}`` for the quantised layers of ``model``."""
    kinds = {DynamicInt8Linear: "int8-dynamic", Int8Linear: "int8-weight-only"}
    return {name: kinds[type(m)] for name, m in model.named_modules() if type(m) in kinds}


def to_bf16(model: nn.Module) -> nn.Module:
    """Every floating-point parameter and buffer to bfloat16, in place; returns the model."""
    return model.to(torch.bfloat16)


@torch.no_grad()
def quantize_dynamic_int8(model: nn.Module, *, names: list[str] | None = None, include_tied: bool = False) -> nn.Module:
    """Replace Linear layers (``names``, default :func:`quantizable_linears`) by
    :class:`DynamicInt8Linear`, in place; the rest of the model becomes fp32. Returns the model.
    """
    model.float()
    for name in names if names is not None else quantizable_linears(model, include_tied=include_tied):
        linear = model.get_submodule(name)
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"{name} is a {type(linear).__name__}, not an nn.Linear")
        _set_submodule(model, name, DynamicInt8Linear.from_linear(linear))
    return model.cpu()


@torch.no_grad()
def quantize_weight_only_int8(
    model: nn.Module,
    *,
    dtype: torch.dtype = torch.bfloat16,
    names: list[str] | None = None,
    include_tied: bool = False,
) -> nn.Module:
    """Replace Linear layers by :class:`Int8Linear` computing in ``dtype`` and cast the rest of
    the model to ``dtype``, in place. Returns the model."""
    for name in names if names is not None else quantizable_linears(model, include_tied=include_tied):
        linear = model.get_submodule(name)
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"{name} is a {type(linear).__name__}, not an nn.Linear")
        _set_submodule(model, name, Int8Linear.from_linear(linear, dtype=dtype))
    return model.to(dtype)


def empty_quantized_like(model: nn.Module, layers: dict[str, str], dtype: torch.dtype) -> nn.Module:
    """Swap the named Linear layers for empty quantised ones of the same shape (before loading weights)."""
    for name, kind in layers.items():
        linear = model.get_submodule(name)
        if not isinstance(linear, nn.Linear):
            raise ValueError(f"quantised layer {name!r} is a {type(linear).__name__} in the rebuilt model, not an nn.Linear")
        bias = linear.bias is not None
        if kind == "int8-dynamic":
            new: nn.Module = DynamicInt8Linear(linear.in_features, linear.out_features, bias=bias)
        elif kind == "int8-weight-only":
            new = Int8Linear(linear.in_features, linear.out_features, bias=bias, dtype=dtype)
        else:
            raise ValueError(f"unknown quantisation {kind!r} for layer {name!r}")
        _set_submodule(model, name, new)
    return model

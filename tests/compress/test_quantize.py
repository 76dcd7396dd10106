"""bf16 and int8 forms: closeness to fp32, exact save/load round trips, sizes."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from gptbert.compress import (
    DynamicInt8Linear,
    Int8Linear,
    compress,
    load_compressed,
    read_compression,
    save_compressed,
)
from gptbert.compress.quantize import int8pack_mm_supported, quantize_int8_per_channel
from gptbert.io.checkpoint import load_model, save_model
from gptbert.io.layout import WEIGHTS_FILE
from gptbert.models.transformer import KVCache

from tests.compress._models import batch, rel_err, tiny

# int8 / bf16 kernels are native code that differs per CPU: a crash must fail a test, not the run.
pytestmark = pytest.mark.native_kernel


# Tolerances (relative L2 error of the final hidden states of the tiny 2-layer model, vs fp32).
BF16_TOL = 2e-2  # bf16 keeps 8 significant bits: ~0.4% per rounding, accumulated over the layers
INT8_TOL = 3e-2  # int8 weights (per-channel) and, for int8-dynamic, 7-bit activations


def _hidden(model: nn.Module, b: dict) -> torch.Tensor:
    with torch.no_grad():
        return model(**b)[0]


def _size(directory: Path) -> int:
    return (directory / WEIGHTS_FILE).stat().st_size


def test_per_channel_quantisation_error_bound() -> None:
    w = torch.randn(16, 40) * torch.linspace(0.01, 3.0, 16)[:, None]
    w[3] = 0.0  # an all-zero row gets scale 1, not a division by zero
    q, scale = quantize_int8_per_channel(w)
    assert q.dtype == torch.int8 and scale.shape == (16,)
    assert int(q.abs().max()) <= 127
    err = (w - q.float() * scale[:, None]).abs()
    assert bool((err <= scale[:, None] / 2 + 1e-7).all())
    assert bool((q[3] == 0).all())


@pytest.mark.parametrize("family", ["bert", "gpt"])
def test_bf16_close_and_round_trip(tmp_path: Path, family: str) -> None:
    b = batch()
    ref = _hidden(tiny(family, head=None), b)
    model, info = compress(tiny(family, head=None), "bf16")
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    out = _hidden(model, b)
    assert out.dtype == torch.bfloat16
    assert rel_err(out, ref) < BF16_TOL
    save_compressed(model, tmp_path / "bf16", info)
    save_model(tiny(family, head=None), tmp_path / "fp32")
    ratio = _size(tmp_path / "bf16") / _size(tmp_path / "fp32")
    assert 0.45 < ratio < 0.55, ratio  # half the bytes (plus the same header)
    again = load_compressed(tmp_path / "bf16")
    assert all(p.dtype == torch.bfloat16 for p in again.parameters())
    assert torch.equal(_hidden(again, b), out)
    # A bf16 directory is also a plain checkpoint: load_model keeps the stored dtype.
    assert torch.equal(_hidden(load_model(tmp_path / "bf16"), b), out)


@pytest.mark.parametrize("method,opts", [
    ("int8-dynamic", {}),
    ("int8-weight-only", {}),
    ("int8-weight-only", {"dtype": "float32"}),
])
@pytest.mark.parametrize("family", ["bert", "gpt"])
def test_int8_close_and_round_trip(tmp_path: Path, family: str, method: str, opts: dict) -> None:
    b = batch()
    ref = _hidden(tiny(family, head=None), b)
    model, info = compress(tiny(family, head=None), method, **opts)
    kind = DynamicInt8Linear if method == "int8-dynamic" else Int8Linear
    layers = [m for m in model.modules() if isinstance(m, kind)]
    expected = 2 * 4 + (family == "bert")  # qkv, proj, fc, proj per layer (+ BERT's pooler)
    assert len(layers) == expected and info["layers"] == expected
    assert not any(type(m) is nn.Linear for m in model.modules())
    assert all(m.weight.dtype == torch.int8 for m in layers)
    out = _hidden(model, b)
    assert rel_err(out, ref) < INT8_TOL
    assert info["weights_mb_after"] < info["weights_mb_before"]

    save_compressed(model, tmp_path / "q", info)
    save_model(tiny(family, head=None), tmp_path / "fp32")
    assert _size(tmp_path / "q") < 0.6 * _size(tmp_path / "fp32")
    meta = read_compression(tmp_path / "q")
    assert meta is not None and meta["methods"] == [method]
    assert set(meta["quantized"].values()) == {method}
    again = load_compressed(tmp_path / "q")
    assert torch.equal(_hidden(again, b), out)
    for name, m in again.named_modules():
        if isinstance(m, kind):
            assert torch.equal(m.weight, model.get_submodule(name).weight)


def test_dynamic_int8_matches_torch_quantize_dynamic() -> None:
    """Our layer runs the same int8 kernel as torch.ao's quantize_dynamic (per-channel weights)."""
    torch.manual_seed(0)
    linear = nn.Linear(48, 24)
    x = torch.randn(5, 7, 48)
    ours = DynamicInt8Linear.from_linear(linear)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:  # deprecated in favour of torchao; gone in some future torch
            from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
        except ImportError:
            pytest.skip("torch.ao.quantization.quantize_dynamic is not available")

        theirs = quantize_dynamic(nn.Sequential(linear), {nn.Linear: per_channel_dynamic_qconfig})
        expected = theirs(x)
    with torch.no_grad():
        got = ours(x)
        exact = linear(x)
    # Both within int8 error of the float layer, and much closer to each other than to it.
    assert rel_err(got, exact) < 2e-2
    assert rel_err(got, expected) < 0.5 * rel_err(expected, exact) + 1e-3


def test_int8_weight_only_kernels_agree() -> None:
    """bf16 activations take torch._weight_int8pack_mm; fp32 ones the dequantised product."""
    torch.manual_seed(0)
    layer = Int8Linear.from_linear(nn.Linear(64, 40), dtype=torch.bfloat16)
    x = torch.randn(2, 9, 64)
    with torch.no_grad():
        fast = layer(x.bfloat16())
        exact = torch.nn.functional.linear(x, layer.dequantized_weight().float(), layer.bias.float())
    assert fast.shape == (2, 9, 40) and fast.dtype == torch.bfloat16
    assert rel_err(fast, exact) < 1e-2


def test_int8pack_mm_only_for_shapes_known_to_work() -> None:
    """The private op segfaulted on an AMX CPU for 24 output features: such shapes take the plain product."""
    x = torch.randn(10, 32).bfloat16()
    assert not int8pack_mm_supported(x, torch.zeros(24, 32, dtype=torch.int8))  # the AMX crash shape
    assert not int8pack_mm_supported(x, torch.zeros(32, 32, dtype=torch.int8))  # not a multiple of 64
    assert not int8pack_mm_supported(x.float(), torch.zeros(64, 32, dtype=torch.int8))  # fp32 activations
    x64 = torch.randn(10, 64).bfloat16()
    w64 = torch.zeros(128, 64, dtype=torch.int8)
    assert int8pack_mm_supported(x64, w64) == hasattr(torch, "_weight_int8pack_mm")
    offset = torch.randn(10 * 64 + 1).bfloat16()[1:].view(10, 64)  # contiguous, but 2 bytes off alignment
    assert not int8pack_mm_supported(offset, w64)
    assert not int8pack_mm_supported(x64.t().contiguous().t(), w64)  # not contiguous


def test_int8_weight_only_odd_shapes_match_the_dequantised_product() -> None:
    """24 output / 24 input features (a pruned attention block) give the exact dequantised product."""
    torch.manual_seed(0)
    for n_in, n_out in ((32, 24), (24, 32), (24, 72)):
        layer = Int8Linear.from_linear(nn.Linear(n_in, n_out), dtype=torch.bfloat16)
        x = torch.randn(10, n_in).bfloat16()
        with torch.no_grad():
            got = layer(x)
            want = torch.nn.functional.linear(x, layer.weight.bfloat16()) * layer.weight_scale + layer.bias
        assert got.shape == (10, n_out)
        assert torch.equal(got, want)


def test_gpt_int8_keeps_tied_lm_head_and_decodes(tmp_path: Path) -> None:
    model, info = compress(tiny("gpt", head="lm"), "int8-dynamic")
    assert type(model.lm_head) is nn.Linear and model.lm_head.weight is model.embeddings.wte.weight
    idx = batch(b=2, t=10, pad=False)["idx"]
    with torch.no_grad():
        full = model(idx)[0]
        cache = KVCache.for_model(model, 2, 10)
        steps = [model(idx[:, :6], cache=cache)[0]] + [model(idx[:, t : t + 1], cache=cache)[0] for t in range(6, 10)]
    # Activations are quantised with one range per call, so decoding step by step is not
    # bit-identical to the full pass (other rows, other ranges), only equal within int8 error.
    assert rel_err(torch.cat(steps, dim=1), full) < INT8_TOL
    save_compressed(model, tmp_path / "q", info)
    again = load_compressed(tmp_path / "q")
    assert again.lm_head.weight is again.embeddings.wte.weight
    with torch.no_grad():
        assert torch.equal(again(idx)[0], full)


def test_chained_prune_heads_then_int8_round_trip(tmp_path: Path) -> None:
    b = batch()
    model, info = compress(tiny("bert"), "prune-heads", heads=3)
    model, info = compress(model, "int8-weight-only", previous=info)
    assert info["methods"] == ["prune-heads", "int8-weight-only"]
    out = _hidden(model, b)
    save_compressed(model, tmp_path / "c", info, extra_files={"labels.json": ["a", "b", "c"]})
    assert (tmp_path / "c" / "labels.json").is_file()
    meta = read_compression(tmp_path / "c")
    assert meta is not None and sum(meta["heads_per_layer"]) == 2 * 4 - 3
    again = load_compressed(tmp_path / "c")
    assert [blk.attn.n_head for blk in again.blocks] == meta["heads_per_layer"]
    assert torch.equal(_hidden(again, b), out)


def test_load_compressed_of_plain_checkpoint_and_bad_options(tmp_path: Path) -> None:
    model = tiny("bert")
    save_model(model, tmp_path / "plain")
    assert read_compression(tmp_path / "plain") is None
    b = batch()
    assert torch.equal(_hidden(load_compressed(tmp_path / "plain"), b), _hidden(model, b))
    with pytest.raises(ValueError, match="unknown compression method"):
        compress(model, "int4")
    with pytest.raises(TypeError, match="unknown option"):
        compress(model, "bf16", sparsity=0.5)

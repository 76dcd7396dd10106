"""The shared transformer pieces: masks, KV cache, positions, head-count override."""

from __future__ import annotations

import math

import pytest
import torch

from gptbert.config import ModelConfig
from gptbert.models import build_model, count_parameters
from gptbert.models.transformer import Block, KVCache, attention_mask_for, sinusoidal_table


def _config(**kw) -> ModelConfig:
    base = dict(family="gpt", n_layer=2, n_head=4, n_embd=32, intermediate_size=37, block_size=64,
                vocab_size=99, dropout=0.0)
    base.update(kw)
    return ModelConfig(**base)


def test_mask_is_none_when_sdpa_needs_none():
    assert attention_mask_for(None, causal=False, q_len=5) is None
    assert attention_mask_for(None, causal=True, q_len=5) is None  # is_causal is used instead
    assert attention_mask_for(None, causal=True, q_len=1, past_len=7) is None  # one query sees all the past


def test_mask_shapes_and_values():
    pad = torch.tensor([[1, 1, 1, 0], [0, 1, 1, 1]])
    m = attention_mask_for(pad, causal=False, q_len=4)
    assert m.shape == (2, 1, 1, 4) and m.dtype == torch.bool
    assert m[0, 0, 0].tolist() == [True, True, True, False]
    c = attention_mask_for(pad, causal=True, q_len=4)
    assert c.shape == (2, 1, 4, 4)
    assert c[0, 0, 2].tolist() == [True, True, True, False]
    # Row 1, query 0 is a pad before the first real token: it may look everywhere (no NaN).
    assert c[1, 0, 0].all() and c[1, 0, 1].tolist() == [False, True, False, False]
    # Causal with a past: queries at positions 2 and 3 of 4.
    p = attention_mask_for(None, causal=True, q_len=2, past_len=2)
    assert p[0, 0].tolist() == [[True, True, True, False], [True, True, True, True]]
    with pytest.raises(ValueError, match="covers 3 positions, expected 4"):
        attention_mask_for(torch.ones(1, 3), causal=True, q_len=2, past_len=2)


def test_kv_cache_update_and_overflow():
    cache = KVCache([2, 1], batch_size=3, max_len=4, head_size=5)
    k = torch.randn(3, 2, 3, 5)
    keys, values = cache.update(0, k, k + 1)
    assert keys.shape == (3, 2, 3, 5) and torch.equal(keys, k) and torch.equal(values, k + 1)
    cache.advance(3)
    assert cache.length == 3
    with pytest.raises(ValueError, match="KV cache full: 5 positions needed, 4 allocated"):
        cache.update(0, torch.randn(3, 2, 2, 5), torch.randn(3, 2, 2, 5))
    cache.reorder(torch.tensor([2, 2, 0]))
    assert torch.equal(cache.k[0][1, :, :3], k[2]) and torch.equal(cache.k[0][2, :, :3], k[0])


def test_sinusoidal_table_values():
    table = sinusoidal_table(50, 8)
    assert table.shape == (50, 8)
    assert torch.allclose(table[0], torch.tensor([0.0, 1.0] * 4))
    p, i = 7, 2  # dims 2i and 2i + 1 hold sin / cos of p / 10000^(2i/d)
    angle = p / 10000 ** (2 * i / 8)
    assert math.isclose(table[p, 2 * i].item(), math.sin(angle), abs_tol=1e-6)
    assert math.isclose(table[p, 2 * i + 1].item(), math.cos(angle), abs_tol=1e-6)


@pytest.mark.parametrize("family", ["gpt", "bert"])
def test_sinusoidal_positions_model(family):
    torch.manual_seed(0)
    learned = build_model(_config(family=family))
    model = build_model(_config(family=family, position="sinusoidal")).eval()
    assert model.embeddings.wpe is None
    assert count_parameters(learned) - count_parameters(model) == 64 * 32
    assert not any("sinusoid" in k for k in model.state_dict())  # a fixed buffer, not saved
    idx = torch.randint(0, 99, (2, 10))
    out, _ = model(idx)
    assert out.shape == (2, 10, 32) and torch.isfinite(out).all()
    # Positions matter: the same token at two positions gets two different vectors.
    same = torch.full((1, 2), 5)
    h, _ = model(same)
    assert not torch.allclose(h[0, 0], h[0, 1])


def test_head_count_override_is_pruning():
    """A block built with fewer heads equals the full block with the other heads switched off."""
    torch.manual_seed(0)
    config = _config(n_layer=1)
    full = Block(config, causal=True).eval()
    keep = [0, 2]
    pruned = Block(config, causal=True, n_head=len(keep)).eval()
    hs = config.head_size
    assert pruned.attn.qkv.weight.shape == (3 * len(keep) * hs, 32)
    assert pruned.attn.proj.weight.shape == (32, len(keep) * hs)
    rows = torch.cat([torch.arange(h * hs, (h + 1) * hs) for h in keep])  # within one of q, k, v
    qkv_rows = torch.cat([rows + j * config.n_embd for j in range(3)])
    state = full.state_dict()
    state["attn.qkv.weight"] = state["attn.qkv.weight"][qkv_rows]
    state["attn.qkv.bias"] = state["attn.qkv.bias"][qkv_rows]
    state["attn.proj.weight"] = state["attn.proj.weight"][:, rows]
    pruned.load_state_dict(state)
    with torch.no_grad():
        drop = torch.ones(config.n_embd, dtype=torch.bool)
        drop[rows] = False
        full.attn.proj.weight[:, drop] = 0.0  # heads 1 and 3 contribute nothing
    x = torch.randn(2, 9, 32)
    torch.testing.assert_close(pruned(x), full(x), atol=1e-6, rtol=0)


def test_cache_for_model_with_mixed_head_counts():
    """KVCache.for_model follows each block's own head count."""
    torch.manual_seed(0)
    config = _config()
    model = build_model(config.replace(head="lm")).eval()
    model.blocks[1] = Block(config, causal=True, n_head=2).eval()
    cache = KVCache.for_model(model, batch_size=1, max_len=8)
    assert [k.shape[1] for k in cache.k] == [4, 2]
    idx = torch.randint(0, 99, (1, 6))
    with torch.no_grad():
        full, _ = model(idx)
        first, _ = model(idx[:, :4], cache=cache)
        step, _ = model(idx[:, 4:5], cache=cache)
    torch.testing.assert_close(step[:, 0], full[:, 4], atol=1e-5, rtol=0)

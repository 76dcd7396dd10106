"""GPT invariants: causality, KV-cache decoding == full recomputation, heads and losses."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gptbert.config import ModelConfig
from gptbert.models import build_model
from gptbert.models.transformer import KVCache

ATOL = dict(atol=1e-5, rtol=0.0)
T = 12


def _model(head: str | None = "lm", **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    base = dict(family="gpt", n_layer=2, n_head=4, n_embd=32, intermediate_size=37, block_size=32,
                vocab_size=99, head=head, num_labels=3)
    base.update(kw)
    return build_model(ModelConfig(**base)).eval()


def _ids(b: int = 2, t: int = T, seed: int = 0) -> torch.Tensor:
    return torch.randint(1, 99, (b, t), generator=torch.Generator().manual_seed(seed))


def _padding(kind: str) -> torch.Tensor | None:
    if kind == "none":
        return None
    mask = torch.ones(2, T, dtype=torch.long)
    if kind == "right":
        mask[1, 8:] = 0
    else:
        mask[1, :4] = 0
    return mask


@pytest.mark.parametrize("position", ["learned", "sinusoidal"])
@pytest.mark.parametrize("padding", ["none", "right", "left"])
@torch.no_grad()
def test_future_tokens_never_change_the_past(position, padding):
    model = _model(position=position)
    idx, mask = _ids(), _padding(padding)
    base, _ = model(idx, attention_mask=mask)  # (2, T, V)
    # One batch holding, for every t, the input with token t + 1 changed.
    changed = idx.repeat(T - 1, 1)  # ((T-1)*2, T): row block t changes position t + 1
    for t in range(T - 1):
        changed[2 * t : 2 * t + 2, t + 1] = (changed[2 * t : 2 * t + 2, t + 1] + 17) % 99
    out, _ = model(changed, attention_mask=None if mask is None else mask.repeat(T - 1, 1))
    real = torch.ones(2, T, dtype=torch.bool) if mask is None else mask.bool()
    for t in range(T - 1):
        got = out[2 * t : 2 * t + 2]
        # Real positions <= t (pad queries may look anywhere; their outputs are unused).
        seen = real.clone()
        seen[:, t + 1 :] = False
        torch.testing.assert_close(got[seen], base[seen], **ATOL, msg=f"position {t}")
        # ... and the model is not trivially constant: the changed position itself moves.
        assert not torch.allclose(got[0, t + 1], base[0, t + 1])


@pytest.mark.parametrize("position", ["learned", "sinusoidal"])
@torch.no_grad()
def test_kv_cache_step_by_step_equals_full_recomputation(position):
    model = _model(position=position)
    idx = _ids()
    full, _ = model(idx)  # (B, T, V)
    cache = KVCache.for_model(model, batch_size=2, max_len=T)
    for t in range(T):
        step, _ = model(idx[:, t : t + 1], cache=cache)
        torch.testing.assert_close(step[:, 0], full[:, t], **ATOL, msg=f"step {t}")
    assert cache.length == T


@torch.no_grad()
def test_kv_cache_prefix_then_steps():
    model = _model()
    idx = _ids()
    full, _ = model(idx)
    cache = KVCache.for_model(model, batch_size=2, max_len=T)
    prefix, _ = model(idx[:, :5], cache=cache)
    torch.testing.assert_close(prefix, full[:, :5], **ATOL)
    chunk, _ = model(idx[:, 5:8], cache=cache)  # several new tokens at once
    torch.testing.assert_close(chunk, full[:, 5:8], **ATOL)
    for t in range(8, T):
        step, _ = model(idx[:, t : t + 1], cache=cache, last_only=True)
        torch.testing.assert_close(step[:, 0], full[:, t], **ATOL)


@torch.no_grad()
def test_kv_cache_with_left_padding_mask_and_positions():
    """Batched generation: left-padded prompts, then one token per step for every row."""
    model = _model()
    lengths = [7, 4]
    prompt_len, new = 7, 4
    seqs = [_ids(1, n + new, seed=i)[0] for i, n in enumerate(lengths)]
    # Reference: each row alone, no padding.
    ref = [model(s[None])[0][0] for s in seqs]  # (n + new, V)

    idx = torch.zeros(2, prompt_len + new, dtype=torch.long)
    mask = torch.zeros(2, prompt_len + new, dtype=torch.long)
    for i, (s, n) in enumerate(zip(seqs, lengths)):
        idx[i, prompt_len - n :] = s
        mask[i, prompt_len - n :] = 1
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    cache = KVCache.for_model(model, batch_size=2, max_len=prompt_len + new)
    out, _ = model(idx[:, :prompt_len], attention_mask=mask[:, :prompt_len], position_ids=positions[:, :prompt_len],
                   cache=cache)
    for i, n in enumerate(lengths):
        torch.testing.assert_close(out[i, prompt_len - n :], ref[i][:n], **ATOL)
    for t in range(prompt_len, prompt_len + new):
        step, _ = model(idx[:, t : t + 1], attention_mask=mask[:, : t + 1], position_ids=positions[:, t : t + 1],
                        cache=cache)
        for i, n in enumerate(lengths):
            torch.testing.assert_close(step[i, 0], ref[i][n + t - prompt_len], **ATOL, msg=f"row {i} step {t}")


@torch.no_grad()
def test_right_padding_does_not_change_real_positions():
    model = _model()
    idx = _ids()
    mask = _padding("right")
    out, _ = model(idx, attention_mask=mask)
    alone, _ = model(idx[1:, :8])
    torch.testing.assert_close(out[1, :8], alone[0], **ATOL)


@torch.no_grad()
def test_classify_pools_the_last_real_token():
    model = _model("classify")
    idx = _ids()
    for kind in ("right", "left"):
        mask = _padding(kind)
        pos = (mask.cumsum(1) - 1).clamp(min=0)
        logits, _ = model(idx, attention_mask=mask, position_ids=pos)
        assert logits.shape == (2, 3)
        real = idx[1][mask[1].bool()]
        alone, _ = model(real[None])
        torch.testing.assert_close(logits[1], alone[0], **ATOL)
    assert model.task.out.out.bias is None  # GPT-2's "score" layer has no bias


def test_lm_loss_ignores_masked_targets_and_head_is_tied():
    model = _model()
    assert model.lm_head.weight is model.embeddings.wte.weight
    idx = _ids()
    targets = torch.roll(idx, -1, dims=1)
    targets[:, -1] = -100
    targets[1, 8:] = -100
    logits, loss = model(idx, targets)
    keep = targets != -100
    expected = F.cross_entropy(logits[keep], targets[keep])
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert model.embeddings.wte.weight.grad is not None


@pytest.mark.parametrize("head,shape", [(None, (2, T, 32)), ("tokens", (2, T, 3)), ("qa", (2, T, 2))])
def test_head_shapes(head, shape):
    out, loss = _model(head)(_ids())
    assert out.shape == shape and loss is None


def test_too_long_sequence_is_a_clear_error():
    with pytest.raises(ValueError, match="33 tokens exceeds block_size 32"):
        _model()(_ids(1, 33))

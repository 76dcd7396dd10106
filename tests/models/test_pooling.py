"""Configurable pooling of the 'classify' head (ModelConfig.pooling / pool_normalize / classifier_bias)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gptbert.config import ModelConfig
from gptbert.models import build_model
from gptbert.models.heads import init_head_from_probe, last_token_pool, max_pool, mean_pool, pool_tokens

TINY = {
    "bert": dict(family="bert", n_layer=1, n_head=2, n_embd=16, block_size=16, vocab_size=50),
    "gpt": dict(family="gpt", n_layer=1, n_head=2, n_embd=16, block_size=16, vocab_size=50),
    "elmo": dict(family="elmo", n_layer=1, n_head=1, n_embd=8, intermediate_size=16, block_size=16, vocab_size=50,
                 use_char_cnn=False),
}


def _model(family: str, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(ModelConfig(**TINY[family], head="classify", num_labels=3, **kw)).eval()


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    idx = torch.randint(1, 50, (3, 7), generator=torch.Generator().manual_seed(0))
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[1, 4:] = 0
    mask[2, 2:] = 0
    return idx, mask


def test_pooling_is_validated_and_round_trips():
    with pytest.raises(ValueError, match="pooling"):
        ModelConfig(pooling="sum")
    config = ModelConfig(family="bert", pooling="mean", pool_normalize=True, classifier_bias=True)
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert ModelConfig(family="gpt").classifier_bias is False and ModelConfig(family="bert").classifier_bias is True


@pytest.mark.parametrize("family", ["bert", "gpt", "elmo"])
@pytest.mark.parametrize("pooling", ["mean", "cls", "last", "max"])
@torch.no_grad()
def test_classify_logits_are_the_head_on_the_chosen_normalised_pooling(family, pooling):
    idx, mask = _batch()
    model = _model(family, pooling=pooling, pool_normalize=True, classifier_bias=True)
    logits, _ = model(idx, attention_mask=mask)  # (3, 3)
    hidden = model.encode(idx, attention_mask=mask)  # (3, 7, C)
    expected_vec = F.normalize(pool_tokens(hidden, mask, pooling), dim=-1)
    torch.testing.assert_close(model.pool(hidden, mask), expected_vec)
    torch.testing.assert_close(logits, model.task.out.out(expected_vec))
    assert model.task.out.out.bias is not None


@torch.no_grad()
def test_default_pooling_is_unchanged():
    idx, mask = _batch()
    bert = _model("bert")
    hidden = bert.encode(idx, attention_mask=mask)
    torch.testing.assert_close(bert(idx, attention_mask=mask)[0], bert.task.out.out(bert.pooler(hidden)), rtol=0, atol=0)
    gpt = _model("gpt")
    hidden = gpt.encode(idx, attention_mask=mask)
    torch.testing.assert_close(gpt(idx, attention_mask=mask)[0], gpt.task.out.out(last_token_pool(hidden, mask)),
                               rtol=0, atol=0)
    assert gpt.task.out.out.bias is None  # GPT-2's score layer, as before


def test_poolings_ignore_padding():
    hidden = torch.randn(2, 5, 4)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    padded = hidden.clone()
    padded[0, 3:] = 1e6  # pad positions hold garbage
    for pool in (mean_pool, max_pool, last_token_pool):
        torch.testing.assert_close(pool(padded, mask)[0], pool(hidden[:1, :3], None)[0])


def test_init_head_from_probe_sets_the_logits():
    idx, mask = _batch()
    model = _model("gpt", pooling="mean", pool_normalize=True, classifier_bias=True)
    coef = np.random.default_rng(0).normal(size=(3, 16)).astype(np.float32)
    intercept = np.array([0.5, -1.0, 0.25], dtype=np.float32)
    init_head_from_probe(model, coef, intercept)
    with torch.no_grad():
        vec = model.pool(model.encode(idx, attention_mask=mask), mask).numpy()
        logits = model(idx, attention_mask=mask)[0].numpy()
    np.testing.assert_allclose(logits, vec @ coef.T + intercept, atol=1e-5)
    with pytest.raises(ValueError, match="do not fit"):
        init_head_from_probe(model, coef[:2], intercept[:2])
    with pytest.raises(ValueError, match="classifier_bias=True"):
        init_head_from_probe(_model("gpt"), coef, intercept)

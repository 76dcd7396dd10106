"""BERT invariants: padding is invisible, attention is bidirectional, heads and losses."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gptbert.config import ModelConfig
from gptbert.models import build_model

ATOL = dict(atol=1e-5, rtol=0.0)


def _model(head: str | None = None, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    base = dict(family="bert", n_layer=2, n_head=4, n_embd=32, intermediate_size=37, block_size=32,
                vocab_size=99, head=head, num_labels=3)
    base.update(kw)
    return build_model(ModelConfig(**base)).eval()


def _ids(b: int, t: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(1, 99, (b, t), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("position", ["learned", "sinusoidal"])
@torch.no_grad()
def test_padding_does_not_change_real_outputs(position):
    model = _model(position=position)
    lengths = [10, 6, 3]
    rows = [_ids(1, n, seed=i)[0] for i, n in enumerate(lengths)]
    types = [torch.arange(n) % 2 for n in lengths]
    idx = _ids(3, 10, seed=9)  # pads hold arbitrary token ids: only the mask may hide them
    tt = torch.zeros(3, 10, dtype=torch.long)
    mask = torch.zeros(3, 10, dtype=torch.long)
    for i, n in enumerate(lengths):
        idx[i, :n], tt[i, :n], mask[i, :n] = rows[i], types[i], 1
    batch, _ = model(idx, token_type_ids=tt, attention_mask=mask)
    for i, n in enumerate(lengths):
        alone, _ = model(rows[i][None], token_type_ids=types[i][None])
        torch.testing.assert_close(batch[i, :n], alone[0], **ATOL, msg=f"row {i}")
    # Without the mask the pads are seen (the test would be vacuous otherwise).
    unmasked, _ = model(idx, token_type_ids=tt)
    assert not torch.allclose(unmasked[2, :3], batch[2, :3], atol=1e-4)


@torch.no_grad()
def test_attention_is_bidirectional_and_token_types_matter():
    model = _model()
    idx = _ids(1, 8)
    base, _ = model(idx)
    later = idx.clone()
    later[0, -1] = (later[0, -1] + 1) % 99
    out, _ = model(later)
    assert not torch.allclose(out[0, 0], base[0, 0])  # the first token sees the last
    typed, _ = model(idx, token_type_ids=torch.ones_like(idx))
    assert not torch.allclose(typed, base)


@torch.no_grad()
def test_classify_uses_the_pooled_cls_token():
    model = _model("classify")
    idx = _ids(2, 8)
    logits, _ = model(idx)
    hidden = model.encode(idx)
    expected = model.task.out.out(torch.tanh(model.pooler.dense(hidden[:, 0])))
    torch.testing.assert_close(logits, expected, **ATOL)


def test_pretraining_losses_and_tied_decoder():
    model = _model("pretrain")
    assert model.mlm.decoder.weight is model.embeddings.wte.weight
    idx = _ids(2, 8)
    targets = torch.full_like(idx, -100)
    targets[:, 2] = idx[:, 2]
    nsp = torch.tensor([0, 1])
    (mlm_logits, nsp_logits), loss = model(idx, targets, next_sentence_label=nsp)
    assert mlm_logits.shape == (2, 8, 99) and nsp_logits.shape == (2, 2)
    expected = F.cross_entropy(mlm_logits[:, 2], idx[:, 2]) + F.cross_entropy(nsp_logits, nsp)
    torch.testing.assert_close(loss, expected)
    _, mlm_only = model(idx, targets)
    torch.testing.assert_close(mlm_only, F.cross_entropy(mlm_logits[:, 2], idx[:, 2]))


@pytest.mark.parametrize("head,shape", [
    (None, (2, 8, 32)), ("mlm", (2, 8, 99)), ("classify", (2, 3)), ("tokens", (2, 8, 3)), ("qa", (2, 8, 2)),
])
def test_head_shapes(head, shape):
    out, loss = _model(head)(_ids(2, 8))
    assert out.shape == shape and loss is None


def test_heads_without_pooler():
    model = _model("tokens", add_pooler=False)
    assert model.pooler is None
    targets = torch.randint(0, 3, (2, 8))
    targets[0, :2] = -100
    logits, loss = model(_ids(2, 8), targets)
    keep = targets != -100
    torch.testing.assert_close(loss, F.cross_entropy(logits[keep], targets[keep]))


def test_qa_span_loss_and_regression():
    model = _model("qa")
    logits, loss = model(_ids(2, 8), torch.tensor([[1, 3], [0, 0]]))
    expected = (F.cross_entropy(logits[..., 0], torch.tensor([1, 0]))
                + F.cross_entropy(logits[..., 1], torch.tensor([3, 0]))) / 2
    torch.testing.assert_close(loss, expected)
    reg = _model("classify", num_labels=1)
    out, loss = reg(_ids(2, 8), torch.tensor([0.5, -1.0]))
    torch.testing.assert_close(loss, F.mse_loss(out[:, 0], torch.tensor([0.5, -1.0])))


def test_wrong_family_is_rejected():
    from gptbert.models.bert import BERT

    with pytest.raises(ValueError, match="family 'bert'"):
        BERT(ModelConfig(family="gpt", n_layer=1, n_head=1, n_embd=8, block_size=8, vocab_size=10))

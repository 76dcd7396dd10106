"""ELMo-style biLSTM: directions, padding, scalar mix, token encoders, heads, freezing, training."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from gptbert.config import ModelConfig
from gptbert.models import build_model, count_parameters
from gptbert.models.elmo import (
    ELMo,
    Highway,
    ScalarMix,
    lm_targets,
    reading_orders,
)
from gptbert.models.heads import IGNORE_INDEX

V, C, B, T, W = 40, 16, 3, 7, 9



def char_ids_for_words(words: list[str], max_chars: int) -> torch.Tensor:
    """Test-local encoding (the real one lives in the data code): [1, byte + 6 ..., 2, 0 ...]."""
    out = torch.zeros(len(words), max_chars, dtype=torch.long)
    for i, word in enumerate(words):
        ids = [1, *(b + 6 for b in word.encode("utf-8")[: max_chars - 2]), 2]
        out[i, : len(ids)] = torch.tensor(ids)
    return out


def tiny(**overrides) -> ModelConfig:
    kwargs = dict(
        family="elmo", n_layer=2, n_head=1, n_embd=C, intermediate_size=24, vocab_size=V, dropout=0.0,
        use_char_cnn=False, char_embd=8, char_filters=((1, 4), (2, 4), (3, 8)), max_word_chars=W,
    )
    kwargs.update(overrides)
    return ModelConfig(**kwargs)


def make(seed: int = 0, **overrides) -> ELMo:
    torch.manual_seed(seed)
    return ELMo(tiny(**overrides)).eval()


def inputs(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(1, V, (B, T), generator=g)
    chars = torch.randint(1, 262, (B, T, W), generator=g)
    return idx, chars


def directions(model: ELMo, idx, chars=None, mask=None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Forward and backward halves of representation layers 1..L."""
    with torch.no_grad():
        layers = model.layers(idx, char_ids=chars, attention_mask=mask)[1:]
    return [h[..., :C] for h in layers], [h[..., C:] for h in layers]


# --------------------------------------------------------------------------- directions


@pytest.mark.parametrize("char_cnn", [False, True])
@pytest.mark.parametrize("padded", [False, True])
def test_forward_never_sees_future_backward_never_sees_past(char_cnn: bool, padded: bool) -> None:
    model = make(use_char_cnn=char_cnn)
    idx, chars = inputs()
    mask = None
    if padded:  # rows of length 7, 5, 6: the changed position 3 is real everywhere
        mask = torch.ones(B, T, dtype=torch.long)
        mask[1, 5:] = 0
        mask[2, 6:] = 0
    t = 3
    idx2, chars2 = idx.clone(), chars.clone()
    idx2[:, t] = (idx[:, t] % (V - 1)) + 1
    chars2[:, t] = (chars[:, t] % 261) + 1
    fwd1, bwd1 = directions(model, idx, chars, mask)
    fwd2, bwd2 = directions(model, idx2, chars2, mask)
    for f1, f2, b1, b2 in zip(fwd1, fwd2, bwd1, bwd2):
        torch.testing.assert_close(f1[:, :t], f2[:, :t], rtol=0, atol=0)  # forward: past unaffected
        torch.testing.assert_close(b1[:, t + 1 :], b2[:, t + 1 :], rtol=0, atol=0)  # backward: future unaffected
        assert not torch.allclose(f1[:, t], f2[:, t])  # ... but both see position t itself
        assert not torch.allclose(b1[:, t], b2[:, t])
        assert not torch.allclose(f1[0, t + 1 :], f2[0, t + 1 :])
        assert not torch.allclose(b1[:, :t], b2[:, :t])


def test_lm_logits_respect_directions() -> None:
    model = make(head="lm")
    idx, _ = inputs()
    idx2 = idx.clone()
    idx2[:, 4] = (idx[:, 4] % (V - 1)) + 1
    with torch.no_grad():
        (f1, b1), _ = model(idx)
        (f2, b2), _ = model(idx2)
    assert f1.shape == b1.shape == (B, T, V)
    torch.testing.assert_close(f1[:, :4], f2[:, :4], rtol=0, atol=0)
    torch.testing.assert_close(b1[:, 5:], b2[:, 5:], rtol=0, atol=0)


# --------------------------------------------------------------------------- padding


def test_reading_orders_right_and_left_padding() -> None:
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    fwd, bwd = reading_orders(mask)
    assert fwd.tolist() == [[0, 1, 2, 3, 4], [2, 3, 4, 0, 1], [0, 1, 2, 3, 4]]
    assert bwd.tolist() == [[2, 1, 0, 3, 4], [4, 3, 2, 0, 1], [4, 3, 2, 1, 0]]


@pytest.mark.parametrize("char_cnn", [False, True])
@pytest.mark.parametrize("side", ["right", "left"])
def test_padded_row_equals_unpadded_row(char_cnn: bool, side: str) -> None:
    model = make(use_char_cnn=char_cnn)
    idx, chars = inputs()
    n = 4  # real length of row 1
    alone = model.layers(idx[1:2, :n], char_ids=chars[1:2, :n])
    mask = torch.ones(B, T, dtype=torch.long)
    idx_p, chars_p = idx.clone(), chars.clone()
    if side == "right":
        real = slice(0, n)
        idx_p[1, :n], chars_p[1, :n] = idx[1, :n], chars[1, :n]
        mask[1, n:] = 0
    else:
        real = slice(T - n, T)
        idx_p[1, real], chars_p[1, real] = idx[1, :n], chars[1, :n]
        mask[1, : T - n] = 0
    with torch.no_grad():
        batched = model.layers(idx_p, char_ids=chars_p, attention_mask=mask)
        # Whatever sits in the pad positions never reaches a real output.
        idx_q, chars_q = idx_p.clone(), chars_p.clone()
        idx_q[mask == 0] = 7
        chars_q[mask == 0] = 0
        batched_q = model.layers(idx_q, char_ids=chars_q, attention_mask=mask)
    for a, b, q in zip(alone, batched, batched_q):
        torch.testing.assert_close(b[1, real], a[0].detach(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(q, b, rtol=0, atol=0)
        assert (b[1][mask[1] == 0] == 0).all()  # pad positions are zeroed


def test_mixed_lengths_each_row_as_alone() -> None:
    model = make(head="lm")
    idx, _ = inputs()
    lengths = [7, 2, 5]
    mask = (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).long()
    with torch.no_grad():
        (fb, bb), _ = model(idx, attention_mask=mask)
        for i, n in enumerate(lengths):
            (fa, ba), _ = model(idx[i : i + 1, :n])
            torch.testing.assert_close(fb[i, :n], fa[0], rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(bb[i, :n], ba[0], rtol=1e-5, atol=1e-5)


def test_lm_targets() -> None:
    idx = torch.tensor([[5, 6, 7, 0], [0, 8, 9, 3]])
    mask = torch.tensor([[1, 1, 1, 0], [0, 1, 1, 1]])
    y = lm_targets(idx, mask)
    I = IGNORE_INDEX
    assert y[..., 0].tolist() == [[6, 7, I, I], [I, 9, 3, I]]
    assert y[..., 1].tolist() == [[I, 5, 6, I], [I, I, 8, 9]]


# --------------------------------------------------------------------------- scalar mix


def test_scalar_mix_weights_and_gradients() -> None:
    mix = ScalarMix(3)
    torch.testing.assert_close(mix.weights().sum(), torch.tensor(1.0))
    layers = [torch.randn(2, 4, 6, requires_grad=True) for _ in range(3)]
    out = mix(layers)
    torch.testing.assert_close(out, sum(layers) / 3)  # uniform weights, gamma 1 at start
    with torch.no_grad():
        mix.scalars.copy_(torch.tensor([2.0, -1.0, 0.5]))
    torch.testing.assert_close(mix.weights().sum(), torch.tensor(1.0))
    (mix(layers) * torch.randn(2, 4, 6)).sum().backward()
    assert mix.scalars.grad is not None and mix.scalars.grad.abs().sum() > 0
    assert mix.gamma.grad is not None and mix.gamma.grad.abs() > 0
    assert all(t.grad is not None for t in layers)
    with pytest.raises(ValueError, match="expected 3 layers"):
        mix(layers[:2])


def test_scalar_mix_mask_and_layer_norm() -> None:
    mix = ScalarMix(2, layer_norm=True)
    layers = [torch.randn(2, 5, 8) * 10 + 3 for _ in range(2)]
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    out = mix(layers, mask)
    assert (out[0, 3:] == 0).all()
    # Per-position normalisation: a row's result does not depend on the rest of the batch.
    torch.testing.assert_close(out[1:], mix([h[1:] for h in layers], mask[1:]))
    assert out[1].mean(-1).abs().max() < 1e-5


# --------------------------------------------------------------------------- token encoders


def test_highway_starts_close_to_carry() -> None:
    torch.manual_seed(0)
    hw = Highway(10, 2)
    x = torch.randn(4, 10)
    assert hw(x).shape == (4, 10)
    gate_bias = hw.layers[0].bias[10:]
    assert torch.all(gate_bias == 1.0)


def test_char_cnn_requires_char_ids_and_handles_short_words() -> None:
    model = make(use_char_cnn=True)
    idx, chars = inputs()
    with pytest.raises(ValueError, match="char_ids"):
        model(idx)
    short = chars[:, :, :2]  # narrower than the widest filter (3): padded inside
    assert model(idx, char_ids=short)[0].shape == (B, T, 2 * C)
    assert model.wte is None and model.char_cnn is not None


def test_word_embedding_variant_ties_lm_softmax() -> None:
    tied = make(head="lm")
    untied = make(head="lm", tie_word_embeddings=False)
    assert tied.lm_head.weight is tied.wte.weight
    assert count_parameters(untied) - count_parameters(tied) == V * C
    assert count_parameters(tied) == sum(p.numel() for p in tied.parameters())
    with_cnn = make(head="lm", use_char_cnn=True)
    assert with_cnn.wte is None and with_cnn.lm_head.weight.shape == (V, C)


def test_forget_gate_bias_is_one() -> None:
    model = make()
    lstm = model.forward_lm.layers[0].lstm
    H = lstm.hidden_size
    total = lstm.bias_ih_l0 + lstm.bias_hh_l0
    assert torch.all(total[H : 2 * H] == 1.0)
    assert torch.all(total[:H] == 0) and torch.all(total[2 * H :] == 0)
    assert lstm.proj_size == C  # cell 24 > projection 16: LSTM with a recurrent projection
    narrow = make(intermediate_size=8).forward_lm.layers[0]
    assert narrow.lstm.proj_size == 0 and narrow.proj is not None
    assert narrow(torch.randn(2, 3, C)).shape == (2, 3, C)


# --------------------------------------------------------------------------- heads


def test_backbone_only_and_pool() -> None:
    model = make()
    idx, _ = inputs()
    mask = torch.ones(B, T, dtype=torch.long)
    mask[0, 4:] = 0
    hidden, loss = model(idx, attention_mask=mask, token_type_ids=torch.zeros_like(idx))
    assert hidden.shape == (B, T, 2 * C) and loss is None
    torch.testing.assert_close(hidden, model.encode(idx, attention_mask=mask))
    assert len(model.layers(idx)) == 3
    assert model.pool(hidden, mask).shape == (B, 2 * C)


def test_lm_head_loss_is_mean_of_directions() -> None:
    model = make(head="lm")
    idx, _ = inputs()
    mask = torch.ones(B, T, dtype=torch.long)
    mask[2, 5:] = 0
    targets = lm_targets(idx, mask)
    (fwd, bwd), loss = model(idx, targets, attention_mask=mask)
    assert fwd.shape == bwd.shape == (B, T, V)
    parts = model.last_losses
    assert set(parts) == {"fwd", "bwd"}
    torch.testing.assert_close(loss.detach(), (parts["fwd"] + parts["bwd"]) / 2)
    assert abs(parts["fwd"].item() - math.log(V)) < 0.5  # near-uniform at initialisation
    # GPT-style (B, T) next-token targets: previous-token targets come from idx.
    _, loss2 = model(idx, targets[..., 0], attention_mask=mask)
    torch.testing.assert_close(loss2, loss)
    with pytest.raises(ValueError, match="targets"):
        model(idx, targets[:, :, :1].squeeze(-1)[:, :3])
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None and not n.startswith("scalar_mix")]
    assert missing == []


@pytest.mark.parametrize("head", ["classify", "tokens", "qa"])
def test_task_heads(head: str) -> None:
    model = make(head=head, num_labels=3, use_char_cnn=True)
    idx, chars = inputs()
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1, 3:] = 0
    if head == "classify":
        targets, shape = torch.tensor([0, 2, 1]), (B, 3)
    elif head == "tokens":
        targets, shape = torch.randint(0, 3, (B, T)).masked_fill(mask == 0, IGNORE_INDEX), (B, T, 3)
    else:
        targets, shape = torch.tensor([[1, 2], [0, 1], [3, 5]]), (B, T, 2)
    logits, loss = model(idx, targets, char_ids=chars, attention_mask=mask, token_type_ids=torch.zeros_like(idx))
    assert logits.shape == shape
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert model.scalar_mix.scalars.grad is not None and model.char_cnn.proj.weight.grad is not None


def test_classify_ignores_padding() -> None:
    model = make(head="classify", num_labels=2)
    idx, _ = inputs()
    mask = torch.ones(B, T, dtype=torch.long)
    mask[0, 3:] = 0
    with torch.no_grad():
        batched, _ = model(idx, attention_mask=mask)
        alone, _ = model(idx[:1, :3])
    torch.testing.assert_close(batched[0], alone[0], rtol=1e-5, atol=1e-6)


def test_unsupported_head_and_family() -> None:
    with pytest.raises(ValueError, match="heads"):
        ELMo(tiny(head="mlm"))
    with pytest.raises(ValueError, match="family"):
        ELMo(ModelConfig(family="gpt", n_layer=1, n_head=1, n_embd=8, vocab_size=10))


def test_freeze_backbone() -> None:
    model = make(head="classify", freeze_backbone=True, use_char_cnn=True).train()
    frozen = [p for m in model.backbone_modules() for p in m.parameters()]
    assert frozen and not any(p.requires_grad for p in frozen)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"scalar_mix.scalars", "scalar_mix.gamma", "task.out.out.weight", "task.out.out.bias"}
    idx, chars = inputs()
    _, loss = model(idx, torch.tensor([0, 1, 1]), char_ids=chars)
    loss.backward()
    assert all(p.grad is None for p in frozen)
    assert model.scalar_mix.scalars.grad is not None and model.task.out.out.weight.grad is not None
    model.freeze_backbone(False)
    assert all(p.requires_grad for p in model.parameters())


# --------------------------------------------------------------------------- presets and training


def test_build_model_elmo_small_lm() -> None:
    config = ModelConfig.from_name("elmo-small", head="lm")
    model = build_model(config).eval()
    assert isinstance(model, ELMo)
    n = count_parameters(model)
    print(f"elmo-small (head='lm'): {n:,} parameters, {count_parameters(model, non_embedding=True):,} non-embedding")
    assert 15_000_000 < n < 25_000_000
    idx = torch.randint(0, config.vocab_size, (2, 5))
    chars = torch.stack([char_ids_for_words(["To", "be", "or", "not", "."], config.max_word_chars)] * 2)
    with torch.no_grad():
        (fwd, bwd), loss = model(idx, lm_targets(idx), char_ids=chars)
    assert fwd.shape == bwd.shape == (2, 5, config.vocab_size)
    assert abs(loss.item() - math.log(config.vocab_size)) < 1.0


def _shakespeare_chars(shared_data: Path) -> tuple[torch.Tensor, int]:
    text = (shared_data / "tinyshakespeare" / "input.txt").read_text()
    vocab = sorted(set(text))
    stoi = {c: i for i, c in enumerate(vocab)}
    return torch.tensor([stoi[c] for c in text], dtype=torch.long), len(vocab)


def test_pretraining_loss_falls_on_tinyshakespeare(shared_data: Path) -> None:
    """A tiny word-embedding ELMo over characters: both LM directions learn in 40 Adam steps."""
    data, vocab_size = _shakespeare_chars(shared_data)
    split = int(0.9 * len(data))
    train, val = data[:split], data[split:]
    torch.manual_seed(0)
    config = tiny(vocab_size=vocab_size, n_embd=32, intermediate_size=64, head="lm", dropout=0.1)
    model = ELMo(config)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)

    def batch(src: torch.Tensor, size: int, length: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
        starts = torch.randint(0, len(src) - length, (size,), generator=g)
        x = torch.stack([src[s : s + length] for s in starts.tolist()])  # (B, T)
        # Right-pad a few rows to train through the padding path too.
        mask = torch.ones_like(x)
        mask[: size // 4, length // 2 :] = 0
        return x, mask

    xv, mv = batch(val, 64)

    def val_losses() -> dict[str, float]:
        model.eval()
        with torch.no_grad():
            model(xv, lm_targets(xv, mv), attention_mask=mv)
        model.train()
        return {k: v.item() for k, v in model.last_losses.items()}

    before = val_losses()
    for _ in range(40):
        x, m = batch(train, 16)
        _, loss = model(x, lm_targets(x, m), attention_mask=m)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = val_losses()
    print(f"char biLM val loss: {before} -> {after}")
    for d in ("fwd", "bwd"):
        assert before[d] == pytest.approx(math.log(vocab_size), abs=0.2)
        assert after[d] < 0.85 * before[d], (d, before, after)


@pytest.mark.slow
def test_char_cnn_pretraining_on_tinyshakespeare_words(shared_data: Path) -> None:
    """Word-level biLM with the character CNN (separate output softmax) learns."""
    words = (shared_data / "tinyshakespeare" / "input.txt").read_text().split()
    counts: dict[str, int] = {}
    for w in words:
        counts[w] = counts.get(w, 0) + 1
    vocab = ["<unk>"] + sorted(counts, key=lambda w: -counts[w])[:1999]
    stoi = {w: i for i, w in enumerate(vocab)}
    ids = torch.tensor([stoi.get(w, 0) for w in words])
    chars = char_ids_for_words(words, 16)  # (N, 16)
    torch.manual_seed(0)
    config = tiny(vocab_size=len(vocab), n_embd=64, intermediate_size=128, head="lm", use_char_cnn=True,
                  char_filters=((1, 16), (2, 16), (3, 32), (4, 32)), max_word_chars=16)
    model = ELMo(config)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)

    def batch(size: int = 16, length: int = 32):
        starts = torch.randint(0, len(ids) - length, (size,), generator=g).tolist()
        x = torch.stack([ids[s : s + length] for s in starts])
        c = torch.stack([chars[s : s + length] for s in starts])
        return x, c

    losses = []
    for _ in range(150):
        x, c = batch()
        _, loss = model(x, lm_targets(x), char_ids=c)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    print(f"char-CNN word biLM: loss {first:.2f} -> {last:.2f}")
    assert last < first - 0.7, (first, last)

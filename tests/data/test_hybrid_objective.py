"""The hybrid (GPT-BERT) objective: masked next-token targets, the causal:masked mix, and fit() over it."""

from __future__ import annotations

import pytest
import torch

from gptbert.config import ModelConfig
from gptbert.data.objectives import (
    IGNORE_INDEX,
    PAPER_CAUSAL_FRACTION,
    HybridLMCollator,
    mask_tokens,
    masked_next_token_targets,
)
from gptbert.tokenizer import Tokenizer

TEXTS = [
    "the film is a gripping and funny ride",
    "a dull, lifeless script sinks the cast",
    "the cast is funny and the script is sharp",
    "gripping, sharp and never dull",
] * 8


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer.from_texts(TEXTS, "wordpiece", 120, show_progress=False)


def test_masked_next_token_targets_hand_case():
    # Sequence [CLS] a b c d [SEP] with b and d masked: MLM targets sit at positions 2 and 4 ...
    mlm = torch.tensor([[-100, -100, 11, -100, 13, -100]])
    # ... masked next-token moves each to the position before it.
    assert masked_next_token_targets(mlm).tolist() == [[-100, 11, -100, 13, -100, -100]]
    # A mask at position 1 (right after the start token) is predicted from position 0.
    assert masked_next_token_targets(torch.tensor([[-100, 9, -100]])).tolist() == [[9, -100, -100]]


def test_masked_batch_hand_checked(tok):
    ids = tok.encode("gripping and funny", add_special_tokens=False).ids
    n = len(ids)
    every = HybridLMCollator(tok, 16, causal_fraction=0.0, mlm_probability=1.0, mask_frac=1.0, random_frac=0.0)
    batch = every([ids])
    assert batch["mode"] == "masked"
    # Every ordinary token becomes [MASK]; [CLS] and [SEP] stay; the target of position i is token i + 1.
    assert batch["idx"].tolist() == [[tok.cls_id] + [tok.mask_id] * n + [tok.sep_id]]
    assert batch["targets"].tolist() == [ids + [IGNORE_INDEX, IGNORE_INDEX]]
    assert batch["attention_mask"].tolist() == [[1] * (n + 2)]


def test_masked_batch_is_mask_tokens_shifted(tok):
    """The collator's corruption is mask_tokens' (same generator), its targets mask_tokens' shifted left by one."""
    collate = HybridLMCollator(tok, 12, causal_fraction=0.0, seed=7)
    batch = collate(TEXTS[:6])
    seqs = [[tok.cls_id, *tok.encode(t, add_special_tokens=False).ids[:10], tok.sep_id] for t in TEXTS[:6]]
    T = max(map(len, seqs))
    idx = torch.tensor([s + [tok.pad_id] * (T - len(s)) for s in seqs])
    attention = (torch.arange(T)[None, :] < torch.tensor([len(s) for s in seqs])[:, None]).long()
    corrupted, mlm = mask_tokens(idx, mask_id=tok.mask_id, vocab_size=tok.vocab_size, special_ids=tok.special_ids,
                                 attention_mask=attention, generator=7)
    assert torch.equal(batch["idx"], corrupted) and torch.equal(batch["attention_mask"], attention)
    assert torch.equal(batch["targets"][:, :-1], mlm[:, 1:]) and (batch["targets"][:, -1] == IGNORE_INDEX).all()
    # Targets are the original tokens, and never point at padding or specials.
    chosen = batch["targets"] != IGNORE_INDEX
    assert chosen.any()
    assert torch.equal(batch["targets"][chosen], idx[:, 1:][chosen[:, :-1]])


def test_causal_batch_and_the_mix(tok):
    collate = HybridLMCollator(tok, 8, causal_fraction=1.0)
    batch = collate(["gripping and funny", "a dull, lifeless script sinks the cast and the film"])
    seq = [tok.cls_id, *tok.encode("gripping and funny", add_special_tokens=False).ids, tok.sep_id]
    assert batch["mode"] == "causal"
    assert batch["idx"][0, : len(seq) - 1].tolist() == seq[:-1]
    assert batch["targets"][0, : len(seq) - 1].tolist() == seq[1:]
    assert (batch["targets"][0, len(seq) - 1:] == IGNORE_INDEX).all()
    assert batch["idx"].shape[1] == 8 and batch["targets"][1, -1] == tok.sep_id  # cut to max_len, end kept
    # The default mix: 1 causal batch in 16, spread evenly; any other fraction likewise.
    assert PAPER_CAUSAL_FRACTION == 1 / 16
    mixed = HybridLMCollator(tok, 8)
    modes = [mixed(TEXTS[:2])["mode"] for _ in range(64)]
    assert modes.count("causal") == 4 and all(modes[i] == "causal" for i in (15, 31, 47, 63))
    quarter = HybridLMCollator(tok, 8, causal_fraction=0.25)
    assert [quarter(TEXTS[:1])["mode"] for _ in range(8)].count("causal") == 2


def test_checks(tok):
    bpe = Tokenizer.from_texts(TEXTS, "bpe", 300, show_progress=False)
    with pytest.raises(ValueError, match="no mask token"):
        HybridLMCollator(bpe, 8)
    with pytest.raises(ValueError, match="causal_fraction"):
        HybridLMCollator(tok, 8, causal_fraction=1.5)


def test_fit_trains_a_hybrid_on_both_modes(tok):
    from gptbert.models import build_model
    from gptbert.training import TrainArgs, fit
    from gptbert.training.evaluation import evaluate_loss

    torch.manual_seed(0)
    config = ModelConfig(family="hybrid", n_layer=1, n_head=2, n_embd=32, block_size=32,
                         vocab_size=tok.vocab_size, pad_token_id=tok.pad_id, head="lm", dropout=0.0)
    model = build_model(config)
    causal_dev = HybridLMCollator(tok, 16, causal_fraction=1.0)
    masked_dev = HybridLMCollator(tok, 16, causal_fraction=0.0, seed=1)
    before = [evaluate_loss(model, TEXTS, c, batch_size=8)["loss"]
              for c in (causal_dev, HybridLMCollator(tok, 16, causal_fraction=0.0, seed=1))]
    args = TrainArgs(out_dir=None, max_steps=24, batch_size=8, lr=3e-3, device="cpu", progress=False,
                     tensorboard=False)
    fit(model, args, TEXTS, HybridLMCollator(tok, 16, causal_fraction=0.5))
    after = [evaluate_loss(model, TEXTS, c, batch_size=8)["loss"] for c in (causal_dev, masked_dev)]
    assert after[0] < before[0] and after[1] < before[1]

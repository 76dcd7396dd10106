"""Pre-training objectives on real text: MLM statistics, NSP pairs, causal and ELMo targets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gptbert.data.objectives import (
    CHAR_BOS,
    CHAR_BOW,
    CHAR_BYTE_OFFSET,
    CHAR_EOS,
    CHAR_EOW,
    CHAR_VOCAB_SIZE,
    IGNORE_INDEX,
    BertPretrainCollator,
    CausalLMCollator,
    ElmoLMCollator,
    MLMCollator,
    PairExample,
    continuation_table,
    create_nsp_examples,
    documents_from_text,
    join_documents,
    mask_tokens,
    pack_blocks,
    split_sentences,
    tokenize_documents,
    word_ids_from_pieces,
)
from gptbert.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def rt_lines(shared_data: Path) -> list[str]:
    return [l for l in (shared_data / "sst2" / "rt_snippets.txt").read_text(encoding="utf-8").splitlines() if l.strip()]


@pytest.fixture(scope="module")
def rt_batch(tok: Tokenizer, rt_lines: list[str]) -> dict[str, torch.Tensor]:
    """The first 5000 snippets of rt_snippets.txt as one padded (B, T) batch with [CLS]/[SEP]
    (about 130k ordinary tokens)."""
    enc = tok.encode_batch(rt_lines[:5000], max_length=128, padding="longest")
    return enc.to_tensors()


# --------------------------------------------------------------------------------------
# Masked LM
# --------------------------------------------------------------------------------------


def test_mask_tokens_statistics_on_real_tokens(tok: Tokenizer, rt_batch: dict[str, torch.Tensor]) -> None:
    idx, attn = rt_batch["idx"], rt_batch["attention_mask"]  # (B, T)
    original = idx.clone()
    g = torch.Generator().manual_seed(1234)
    masked, targets = mask_tokens(idx, mask_id=tok.mask_id, vocab_size=tok.vocab_size,
                                  special_ids=tok.special_ids, attention_mask=attn, generator=g)
    assert torch.equal(idx, original), "mask_tokens must not modify its input"
    special = torch.isin(idx, torch.tensor(sorted(tok.special_ids))) | (attn == 0)
    ordinary = ~special
    n_ordinary = int(ordinary.sum())
    assert n_ordinary >= 100_000

    chosen = targets != IGNORE_INDEX
    assert not (chosen & special).any(), "a special or padding token was chosen"
    assert torch.equal(targets[chosen], idx[chosen])
    assert torch.equal(masked[special], idx[special]), "special/padding positions changed"
    assert torch.equal(masked[~chosen], idx[~chosen]), "an unchosen token changed"

    share = chosen.sum().item() / n_ordinary
    assert abs(share - 0.15) < 0.01, share
    n = int(chosen.sum())
    to_mask = (masked == tok.mask_id) & chosen
    replaced = (masked != idx) & (masked != tok.mask_id) & chosen
    kept = (masked == idx) & chosen
    assert abs(to_mask.sum().item() / n - 0.8) < 0.01
    assert abs(replaced.sum().item() / n - 0.1) < 0.01
    assert abs(kept.sum().item() / n - 0.1) < 0.01
    random_ids = masked[replaced]
    assert not torch.isin(random_ids, torch.tensor(sorted(tok.special_ids))).any(), "random token is special"
    assert int(random_ids.min()) >= 0 and int(random_ids.max()) < tok.vocab_size
    # Random replacements spread over the vocabulary.
    assert random_ids.unique().numel() > 1000


def test_mask_tokens_is_deterministic(tok: Tokenizer, rt_batch: dict[str, torch.Tensor]) -> None:
    idx = rt_batch["idx"][:64]
    kw = dict(mask_id=tok.mask_id, vocab_size=tok.vocab_size, special_ids=tok.special_ids)
    a = mask_tokens(idx, generator=torch.Generator().manual_seed(7), **kw)
    b = mask_tokens(idx, generator=7, **kw)
    c = mask_tokens(idx, generator=8, **kw)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])


def test_mask_tokens_special_mask_and_argument_checks(tok: Tokenizer) -> None:
    idx = torch.tensor([[tok.cls_id, 2000, 2001, 2002, tok.sep_id, tok.pad_id]])
    special = torch.tensor([[True, False, False, False, True, True]])
    masked, targets = mask_tokens(idx, mask_id=tok.mask_id, vocab_size=tok.vocab_size, special_mask=special,
                                  mlm_probability=1.0, mask_frac=1.0, random_frac=0.0, generator=0)
    assert targets.tolist() == [[-100, 2000, 2001, 2002, -100, -100]]
    assert masked.tolist() == [[tok.cls_id, tok.mask_id, tok.mask_id, tok.mask_id, tok.sep_id, tok.pad_id]]
    with pytest.raises(ValueError):
        mask_tokens(idx, mask_id=tok.mask_id, vocab_size=tok.vocab_size)
    with pytest.raises(ValueError):
        mask_tokens(idx, mask_id=tok.mask_id, vocab_size=tok.vocab_size, special_mask=special,
                    mask_frac=0.9, random_frac=0.2)


def test_whole_word_masking_masks_complete_words(tok: Tokenizer, rt_lines: list[str]) -> None:
    lines = rt_lines[:1500]
    encs = [tok.encode(l, max_length=128) for l in lines]
    T = max(len(e.ids) for e in encs)
    idx = torch.full((len(encs), T), tok.pad_id, dtype=torch.long)  # (B, T)
    wids = torch.full((len(encs), T), -1, dtype=torch.long)  # (B, T)
    for i, e in enumerate(encs):
        idx[i, : len(e.ids)] = torch.tensor(e.ids)
        wids[i, : len(e.ids)] = torch.tensor([-1 if w is None else w for w in e.word_ids])
    masked, targets = mask_tokens(idx, mask_id=tok.mask_id, vocab_size=tok.vocab_size,
                                  special_ids=tok.special_ids, word_ids=wids, generator=3)
    chosen = targets != IGNORE_INDEX
    real = wids >= 0
    key = (torch.arange(len(encs))[:, None] * T + wids)[real]  # one key per (row, word)
    pieces = torch.bincount(key, minlength=len(encs) * T)
    hit = torch.bincount(key, weights=chosen[real].double(), minlength=len(encs) * T).long()
    assert ((hit == 0) | (hit == pieces)).all(), "a word was partly masked"
    assert ((hit == pieces) & (pieces > 1)).sum() > 50  # words of several pieces masked as a whole
    share = chosen.sum().item() / real.sum().item()
    assert abs(share - 0.15) < 0.015, share

    # The same words come out of the bare ids through the ## continuation table.
    table = continuation_table(tok)
    special = torch.isin(idx, torch.tensor(sorted(tok.special_ids)))
    derived = word_ids_from_pieces(idx, table, special)
    for i in range(50):
        n = len(encs[i].ids)
        a, b = derived[i, :n].tolist(), wids[i, :n].tolist()
        # Same partition into words (the BERT pre-tokenizer also splits punctuation).
        assert [x == y for x, y in zip(a[1:], a[:-1])] == [x == y for x, y in zip(b[1:], b[:-1])]


def test_mlm_collator(tok: Tokenizer, rt_lines: list[str]) -> None:
    coll = MLMCollator(tok, 32, seed=0, whole_word_mask=True)
    batch = coll(rt_lines[:16])
    assert set(batch) == {"idx", "attention_mask", "targets", "token_type_ids"}
    assert batch["idx"].shape == batch["targets"].shape and batch["idx"].shape[1] <= 32
    assert (batch["targets"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()
    assert (batch["idx"][:, 0] == tok.cls_id).all()


# --------------------------------------------------------------------------------------
# Next-sentence prediction
# --------------------------------------------------------------------------------------


def test_split_sentences() -> None:
    text = ("The Rock is J.R.R. Tolkien's hero. Mr. Smith said \"Hi!\" Then he left... "
            "Was it good? Yes! it was 3.5 times better.\nA new line starts here.")
    assert split_sentences(text) == [
        "The Rock is J.R.R. Tolkien's hero.", 'Mr. Smith said "Hi!"', "Then he left...",
        "Was it good?", "Yes! it was 3.5 times better.", "A new line starts here.",
    ]
    assert split_sentences("   ") == []


def test_documents_from_text(shared_data: Path) -> None:
    text = (shared_data / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")[:2000]
    docs = documents_from_text(text, doc_split="blank_line", sentence_split="line")
    assert docs[0] == ["First Citizen:", "Before we proceed any further, hear me speak."]
    assert all(docs)
    per_line = documents_from_text("One. Two!\n\nThree", doc_split="line")
    assert per_line == [["One.", "Two!"], ["Three"]]


@pytest.fixture(scope="module")
def shakespeare_docs(tok: Tokenizer, shared_data: Path) -> list[list[list[int]]]:
    text = (shared_data / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")[:400_000]
    return tokenize_documents(documents_from_text(text, doc_split="blank_line", sentence_split="line"), tok)


def _contiguous_in(hay: np.ndarray, needle: list[int]) -> list[int]:
    """Start positions where ``needle`` occurs in ``hay`` (int32 arrays compared as bytes)."""
    h, n = hay.astype(np.int32).tobytes(), np.asarray(needle, dtype=np.int32).tobytes()
    out, pos = [], h.find(n)
    while pos != -1:
        if pos % 4 == 0:
            out.append(pos // 4)
        pos = h.find(n, pos + 1)
    return out


def test_nsp_balance_lengths_and_true_continuations(shakespeare_docs: list[list[list[int]]]) -> None:
    max_len = 64
    pairs = create_nsp_examples(shakespeare_docs, max_len, rng=0, dupe_factor=2)
    assert len(pairs) >= 5000
    share = np.mean([p.is_random_next for p in pairs])
    assert abs(share - 0.5) < 0.02, share
    assert all(1 <= len(p.a_ids) and 1 <= len(p.b_ids) and len(p.a_ids) + len(p.b_ids) <= max_len - 3
               for p in pairs)
    # Short sequences occur (short_seq_prob) but most pairs fill the budget.
    lengths = np.array([len(p.a_ids) + len(p.b_ids) for p in pairs])
    assert lengths.max() == max_len - 3 and lengths.min() < 20 and lengths.mean() > 25

    # A true pair is a piece of one document followed (later in that document) by B.
    streams = [np.array([t for s in d for t in s]) for d in shakespeare_docs]
    checked = 0
    for p in pairs[:160]:
        if p.is_random_next:
            continue
        ok = False
        for stream in streams:
            a_pos = _contiguous_in(stream, p.a_ids)
            if not a_pos:
                continue
            b_pos = _contiguous_in(stream, p.b_ids)
            if any(b >= a + len(p.a_ids) for a in a_pos for b in b_pos):
                ok = True
                break
        assert ok, p
        checked += 1
    assert checked > 50


def test_nsp_paper_rule_and_determinism(shakespeare_docs: list[list[list[int]]]) -> None:
    docs = shakespeare_docs[:300]
    a = create_nsp_examples(docs, 48, rng=5)
    b = create_nsp_examples(docs, 48, rng=np.random.default_rng(5))
    assert a == b
    paper = create_nsp_examples(docs, 48, rng=5, single_sentence="random")
    # The paper's rule never drops chunks, and skews toward random pairs on short documents.
    assert len(paper) >= len(a)
    assert np.mean([p.is_random_next for p in paper]) > np.mean([p.is_random_next for p in a])
    with pytest.raises(ValueError):
        create_nsp_examples(docs[:1], 48)


def test_bert_pretrain_collator(tok: Tokenizer, shakespeare_docs: list[list[list[int]]]) -> None:
    max_len = 64
    pairs = create_nsp_examples(shakespeare_docs[:400], max_len, rng=1)[:32]
    pairs.append(PairExample(list(range(2000, 2100)), list(range(3000, 3050)), True))  # needs truncation
    batch = BertPretrainCollator(tok, max_len, seed=0)(pairs)
    assert set(batch) == {"idx", "token_type_ids", "attention_mask", "targets", "next_sentence_label"}
    B, T = batch["idx"].shape
    assert B == len(pairs) and T <= max_len
    assert batch["next_sentence_label"].tolist() == [int(p.is_random_next) for p in pairs]
    for i, p in enumerate(pairs):
        n = int(batch["attention_mask"][i].sum())
        la = min(len(p.a_ids), n - 3)
        row_types = batch["token_type_ids"][i].tolist()
        lb = n - 3 - la
        if i < len(pairs) - 1:  # not truncated: lengths are the pair's own
            assert (la, lb) == (len(p.a_ids), len(p.b_ids))
            assert row_types[:n] == [0] * (la + 2) + [1] * (lb + 1)
        assert row_types[n:] == [0] * (T - n)
        ids = batch["idx"][i]
        seps = (ids == tok.sep_id).nonzero().flatten().tolist()
        assert ids[0] == tok.cls_id and seps[-1] == n - 1 and len(seps) == 2
        assert row_types[: seps[0] + 1] == [0] * (seps[0] + 1)
        assert row_types[seps[0] + 1: n] == [1] * (n - seps[0] - 1)
        tg = batch["targets"][i]
        assert tg[0] == IGNORE_INDEX and (tg[seps] == IGNORE_INDEX).all() and (tg[n:] == IGNORE_INDEX).all()
    # Token budget of the truncated pair was respected, longer side trimmed.
    assert int(batch["attention_mask"][-1].sum()) == max_len


# --------------------------------------------------------------------------------------
# Causal LM
# --------------------------------------------------------------------------------------


def test_pack_blocks_sequential_and_random(bpe: Tokenizer, shared_data: Path) -> None:
    lines = (shared_data / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8").split("\n\n")[:300]
    docs = [bpe.encode(t, add_special_tokens=False).ids for t in lines]
    stream = join_documents(docs, bpe.eos_id)
    assert len(stream) == sum(len(d) + 1 for d in docs) and (stream == bpe.eos_id).sum() >= 300
    T = 32
    ds = pack_blocks(docs, T, eos_id=bpe.eos_id)
    assert len(ds) == (len(stream) - 1) // T
    for i in (0, 1, len(ds) - 1):
        item = ds[i]
        assert item["idx"].shape == (T,) and item["targets"].dtype == torch.long
        assert torch.equal(item["targets"][:-1], item["idx"][1:])
        assert item["idx"].tolist() == stream[i * T: i * T + T].tolist()
        assert item["targets"].tolist() == stream[i * T + 1: i * T + T + 1].tolist()
    # Every token but the first is a target exactly once.
    all_targets = torch.cat([ds[i]["targets"] for i in range(len(ds))])
    assert all_targets.tolist() == stream[1: 1 + len(ds) * T].tolist()

    rnd = pack_blocks(stream, T, mode="random", num_samples=100, seed=3)
    again = pack_blocks(stream, T, mode="random", num_samples=100, seed=3)
    assert len(rnd) == 100
    offs = [rnd.offset(i) for i in range(100)]
    assert offs == [again.offset(i) for i in range(100)]
    assert all(0 <= o <= len(stream) - T - 1 for o in offs)
    item = rnd[5]
    assert item["idx"].tolist() == stream[offs[5]: offs[5] + T].tolist()
    assert torch.equal(item["targets"][:-1], item["idx"][1:])
    rnd.set_epoch(1)
    assert [rnd.offset(i) for i in range(100)] != offs
    batch = torch.utils.data.default_collate([ds[0], ds[1]])
    assert batch["idx"].shape == (2, T)
    with pytest.raises(ValueError):
        pack_blocks(stream[:T], T)


@pytest.mark.parametrize("side", ["right", "left"])
def test_causal_lm_collator(bpe: Tokenizer, shared_data: Path, side: str) -> None:
    texts = (shared_data / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8").split("\n\n")[:8]
    coll = CausalLMCollator(bpe, 48, padding_side=side)  # type: ignore[arg-type]
    batch = coll(texts)
    idx, targets, attn = batch["idx"], batch["targets"], batch["attention_mask"]  # (B, T)
    assert idx.shape == targets.shape == attn.shape and idx.shape[1] <= 48
    for i, text in enumerate(texts):
        seq = (bpe.encode(text, add_special_tokens=False).ids + [bpe.eos_id])[:49]
        real = attn[i].bool()
        assert idx[i][real].tolist() == seq[:-1]
        assert targets[i][real].tolist() == seq[1:]
        assert (targets[i][~real] == IGNORE_INDEX).all()
        r_idx, r_tg = idx[i][real], targets[i][real]
        assert torch.equal(r_tg[:-1], r_idx[1:]), "targets must be idx shifted by one"
    if side == "left":
        assert (attn[:, -1] == 1).all()
    short = coll(["", "a"])
    assert short["targets"][0, 0].item() == bpe.eos_id  # an empty text still has one target


# --------------------------------------------------------------------------------------
# ELMo
# --------------------------------------------------------------------------------------


def test_elmo_targets_and_char_ids(tok: Tokenizer, rt_lines: list[str]) -> None:
    texts = rt_lines[:12] + ["Naïve café — ünïcödé!"]
    C = 20
    batch = ElmoLMCollator(tok, 40, max_word_chars=C)(texts)
    idx, attn, targets, chars = batch["idx"], batch["attention_mask"], batch["targets"], batch["char_ids"]
    B, T = idx.shape
    assert targets.shape == (B, T, 2) and chars.shape == (B, T, C)
    assert int(chars.max()) < CHAR_VOCAB_SIZE == 262
    for i, text in enumerate(texts):
        n = int(attn[i].sum())
        ids = idx[i, :n].tolist()
        fwd, bwd = targets[i, :, 0].tolist(), targets[i, :, 1].tolist()
        assert fwd[: n - 1] == ids[1:] and fwd[n - 1] == IGNORE_INDEX
        assert bwd[1:n] == ids[:-1] and bwd[0] == IGNORE_INDEX
        assert all(t == IGNORE_INDEX for t in fwd[n:] + bwd[n:])
        assert (chars[i, n:] == 0).all()
        enc = tok.encode(text, max_length=40)
        assert chars[i, 0, :3].tolist() == [CHAR_BOW, CHAR_BOS, CHAR_EOW]
        assert chars[i, n - 1, :3].tolist() == [CHAR_BOW, CHAR_EOS, CHAR_EOW]
        for p in range(1, n - 1):
            row = chars[i, p].tolist()
            assert row[0] == CHAR_BOW
            end = row.index(CHAR_EOW)
            word = bytes(c - CHAR_BYTE_OFFSET for c in row[1:end])
            s, e = enc.offsets[p]
            assert word == text[s:e].encode("utf-8")[: C - 2]

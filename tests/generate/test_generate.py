"""Generation: parity with transformers' GPT-2 generate(), cache vs recomputation, processors, text helpers."""

from __future__ import annotations

import warnings

import pytest
import torch

from gptbert.generate import (
    GenerationConfig,
    apply_repetition_penalty,
    generate,
    generate_text,
    stream,
    top_k_filter,
    top_p_filter,
)
from gptbert.generate.beam import _beam_search
from gptbert.generate.text import _IncrementalDecoder

transformers = pytest.importorskip("transformers")

VOCAB, BLOCK = 99, 64
PAD = 1  # non-zero on purpose: HF's beam search fills finished rows with eos when pad_token_id is 0



@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, torch.nn.Module]:
    """A tiny random GPT-2 (vocab 99, 2 layers, hidden 32) as HF model and as ours, same weights."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from gptbert.io.checkpoint import load_any

    torch.manual_seed(0)
    # A wide init spreads the logits so float noise between the two cannot flip an argmax.
    config = GPT2Config(vocab_size=VOCAB, n_positions=BLOCK, n_embd=32, n_layer=2, n_head=4,
                        initializer_range=0.2, bos_token_id=0, eos_token_id=2, pad_token_id=PAD)
    hf = GPT2LMHeadModel(config).eval()
    directory = tmp_path_factory.mktemp("tiny-gpt2")
    hf.save_pretrained(directory)
    ours = load_any(directory)
    return hf, ours


def hf_generate(hf: torch.nn.Module, idx: torch.Tensor, mask: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
    kwargs.setdefault("eos_token_id", None)
    mask = torch.ones_like(idx) if mask is None else mask
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hf.generate(idx, attention_mask=mask, do_sample=False, pad_token_id=PAD, **kwargs)


def left_padded(prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    T = max(map(len, prompts))
    idx = torch.full((len(prompts), T), PAD)
    mask = torch.zeros(len(prompts), T, dtype=torch.long)
    for i, p in enumerate(prompts):
        idx[i, T - len(p):] = torch.tensor(p)
        mask[i, T - len(p):] = 1
    return idx, mask


PROMPTS = [[5], [17, 42, 8, 91, 3], [60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71]]


# ---------------------------------------------------------------------------------------
# Parity with transformers and with recomputation
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_matches_hf(models, prompt):
    hf, ours = models
    idx = torch.tensor([prompt])
    got = generate(ours, idx, max_new_tokens=20, pad_token_id=PAD)
    assert torch.equal(got, hf_generate(hf, idx, max_new_tokens=20))


def test_left_padded_batch_matches_hf_row_by_row(models):
    hf, ours = models
    idx, mask = left_padded(PROMPTS)
    got = generate(ours, idx, attention_mask=mask, max_new_tokens=16, pad_token_id=PAD)
    ref = hf_generate(hf, idx, mask, max_new_tokens=16)
    for i, prompt in enumerate(PROMPTS):
        assert got[i].tolist() == ref[i].tolist()
        # and each row is what the prompt gives on its own
        alone = generate(ours, torch.tensor([prompt]), max_new_tokens=16)
        assert got[i, idx.size(1):].tolist() == alone[0, len(prompt):].tolist()
    # the list-of-prompts form pads on the left itself and returns the new tokens only
    assert generate(ours, PROMPTS, max_new_tokens=16) == got[:, idx.size(1):].tolist()


def test_eos_and_padding_match_hf(models):
    hf, ours = models
    idx, mask = left_padded(PROMPTS)
    greedy = generate(ours, idx, attention_mask=mask, max_new_tokens=12)
    eos = [int(greedy[0, idx.size(1) + 3]), int(greedy[1, idx.size(1) + 6])]  # tokens that do come up
    got = generate(ours, idx, attention_mask=mask, max_new_tokens=12, eos_token_id=eos, pad_token_id=PAD)
    assert torch.equal(got, hf_generate(hf, idx, mask, max_new_tokens=12, eos_token_id=eos))
    # rows stop at their first eos and are padded after it
    T = idx.size(1)
    for row in got[:, T:].tolist():
        hits = [j for j, t in enumerate(row) if t in eos]
        if hits:
            assert all(t == PAD for t in row[hits[0] + 1:])
    lists = generate(ours, PROMPTS, max_new_tokens=12, eos_token_id=eos, pad_token_id=PAD)
    for row, ids in zip(got[:, T:].tolist(), lists):
        assert row[: len(ids)] == ids and (ids[-1] in eos or len(ids) == 12)


def test_repetition_penalty_matches_hf(models):
    hf, ours = models
    idx = torch.tensor([PROMPTS[1]])
    got = generate(ours, idx, max_new_tokens=15, repetition_penalty=1.5)
    assert torch.equal(got, hf_generate(hf, idx, max_new_tokens=15, repetition_penalty=1.5))
    assert not torch.equal(got, generate(ours, idx, max_new_tokens=15))


def reference_greedy(model, idx: torch.Tensor, mask: torch.Tensor, n: int) -> torch.Tensor:
    """No cache: run the whole (left-padded) sequence again for every new token."""
    with torch.no_grad():
        for _ in range(n):
            positions = (mask.cumsum(-1) - 1).clamp_min(0)
            logits, _ = model(idx, attention_mask=mask, position_ids=positions)
            nxt = logits[:, -1].argmax(-1, keepdim=True)
            idx = torch.cat((idx, nxt), dim=1)
            mask = torch.cat((mask, torch.ones_like(nxt)), dim=1)
    return idx


def test_cached_equals_uncached(models):
    _, ours = models
    idx, mask = left_padded(PROMPTS)
    got = generate(ours, idx, attention_mask=mask, max_new_tokens=20)
    assert torch.equal(got, reference_greedy(ours, idx, mask, 20))
    plain = torch.tensor([PROMPTS[2]])
    reference = reference_greedy(ours, plain, torch.ones_like(plain), 20)
    assert torch.equal(generate(ours, plain, max_new_tokens=20), reference)


# ---------------------------------------------------------------------------------------
# Beam search
# ---------------------------------------------------------------------------------------


def test_beam_width_one_is_greedy(models):
    _, ours = models
    idx, mask = left_padded(PROMPTS)
    greedy = generate(ours, idx, attention_mask=mask, max_new_tokens=12)
    cfg = GenerationConfig(max_new_tokens=12, num_beams=1)
    with torch.inference_mode():
        beam, lengths = _beam_search(ours, idx, mask.bool(), cfg)
    assert torch.equal(beam, greedy) and lengths.tolist() == [12, 12, 12]
    assert torch.equal(generate(ours, idx, attention_mask=mask, max_new_tokens=12, num_beams=1), greedy)


@pytest.mark.parametrize(
    "num_beams, length_penalty, early_stopping",
    [(3, 1.0, False), (3, 0.0, "never"), (3, 2.0, True), (2, -0.5, False), (4, 1.0, "never")],
)
def test_beam_search_matches_hf(models, num_beams, length_penalty, early_stopping):
    hf, ours = models
    idx, mask = left_padded(PROMPTS)
    greedy = generate(ours, idx, attention_mask=mask, max_new_tokens=10)
    eos = [int(greedy[0, idx.size(1) + 2]), int(greedy[2, idx.size(1) + 1])]  # likely tokens: beams do finish
    kwargs = dict(max_new_tokens=10, num_beams=num_beams, length_penalty=length_penalty,
                  early_stopping=early_stopping, eos_token_id=eos)
    got = generate(ours, idx, attention_mask=mask, pad_token_id=PAD, **kwargs)
    assert torch.equal(got, hf_generate(hf, idx, mask, **kwargs))
    plain = torch.tensor([PROMPTS[1]])
    got = generate(ours, plain, pad_token_id=PAD, **{**kwargs, "eos_token_id": None})
    assert torch.equal(got, hf_generate(hf, plain, **{**kwargs, "eos_token_id": None}))


# ---------------------------------------------------------------------------------------
# Sampling and logits processors
# ---------------------------------------------------------------------------------------


def test_sampling_is_seeded_and_top_k_one_is_greedy(models):
    _, ours = models
    idx, mask = left_padded(PROMPTS)
    cfg = GenerationConfig(max_new_tokens=20, do_sample=True, temperature=1.5, top_k=40, top_p=0.95, seed=7)
    a = generate(ours, idx, cfg, attention_mask=mask)
    assert torch.equal(a, generate(ours, idx, cfg, attention_mask=mask))
    assert not torch.equal(a, generate(ours, idx, cfg.replace(seed=8), attention_mask=mask))
    g = torch.Generator().manual_seed(7)
    assert torch.equal(a, generate(ours, idx, cfg.replace(seed=None), attention_mask=mask, generator=g))
    greedy = generate(ours, idx, attention_mask=mask, max_new_tokens=20)
    assert torch.equal(generate(ours, idx, cfg.replace(top_k=1, top_p=None), attention_mask=mask), greedy)
    assert torch.equal(generate(ours, idx, cfg.replace(temperature=0.0), attention_mask=mask), greedy)


def test_top_p_keeps_the_minimal_nucleus():
    probs = torch.tensor([[0.05, 0.5, 0.15, 0.3]])  # ranks: 1, 3, 2, 0
    logits = probs.log()
    kept = lambda p: torch.isfinite(top_p_filter(logits.clone(), p))[0].tolist()  # noqa: E731
    assert kept(0.3) == [False, True, False, False]  # 0.5 alone reaches 0.3
    assert kept(0.5) == [False, True, False, False]
    assert kept(0.75) == [False, True, False, True]  # 0.5 + 0.3
    assert kept(0.9) == [False, True, True, True]  # 0.5 + 0.3 + 0.15
    assert kept(0.99) == [True, True, True, True]
    assert kept(1.0) == [True, True, True, True]
    filtered = top_p_filter(logits.clone(), 0.75)
    assert torch.allclose(filtered.softmax(-1), torch.tensor([[0.0, 0.625, 0.0, 0.375]]))


def test_top_k_filter():
    scores = torch.tensor([[1.0, 4.0, 3.0, 2.0], [0.0, -1.0, 5.0, 6.0]])
    kept = torch.isfinite(top_k_filter(scores.clone(), 2)).tolist()
    assert kept == [[False, True, True, False], [False, False, True, True]]
    assert torch.equal(top_k_filter(scores.clone(), 0), scores)


def test_repetition_penalty_hand_case():
    scores = torch.tensor([[2.0, -1.0, 0.5, -3.0, 0.0]])
    out = apply_repetition_penalty(scores.clone(), torch.tensor([[0, 1, 1, 4]]), 2.0)
    assert out.tolist() == [[1.0, -2.0, 0.5, -3.0, 0.0]]  # 1 counted once; 2 and 3 untouched


# ---------------------------------------------------------------------------------------
# Prompts, errors, modes
# ---------------------------------------------------------------------------------------


def test_long_prompt_keeps_its_end_and_too_many_new_tokens_fail(models):
    _, ours = models
    long = torch.arange(3, 3 + 60)[None] % VOCAB  # 60 tokens, block 64
    with pytest.warns(UserWarning, match="truncated"):
        got = generate(ours, long, max_new_tokens=10)
    assert torch.equal(got, generate(ours, long[:, -54:], max_new_tokens=10))
    with pytest.raises(ValueError, match="block_size"):
        generate(ours, long, max_new_tokens=64)


def test_inputs_are_checked_and_modes_restored(models):
    _, ours = models
    idx = torch.tensor([[5, 6, 7]])
    with pytest.raises(ValueError, match="left-padded"):
        generate(ours, idx, attention_mask=torch.tensor([[1, 1, 0]]))
    with pytest.raises(ValueError, match="tokenizer"):
        generate(ours, idx, stop_strings=["x"])
    with pytest.raises(ValueError, match="top_p"):
        GenerationConfig(top_p=0.0)
    ours.train()
    try:
        out = generate(ours, idx, max_new_tokens=3)
        assert ours.training
    finally:
        ours.eval()
    out[0, 0] = 1  # an ordinary tensor, not an inference-mode one
    assert not out.requires_grad


# ---------------------------------------------------------------------------------------
# Text: stop strings and streaming
# ---------------------------------------------------------------------------------------


class ByteTokenizer:
    """A byte-level toy tokenizer over the 99 ids: 0-2 special, then ASCII, then the bytes
    of a few multi-byte characters, so that one character can span several tokens."""

    eos_id = 2
    pad_id = PAD

    def __init__(self) -> None:
        ascii_part = [bytes([c]) for c in b" abcdefghijklmnopqrstuvwxyz.,!?ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"]
        multi = sorted({b for ch in "é€ü😀ñ中" for b in ch.encode()})
        table = [b"<pad>", b"<bos>", b"<eos>"] + ascii_part + [bytes([b]) for b in multi]
        table += [b"-"] * (VOCAB - len(table))
        assert len(table) == VOCAB
        self.table = table
        self.ids = {t: i for i, t in enumerate(table) if i > 2}

    def encode(self, text: str) -> list[int]:
        return [self.ids[bytes([b])] for b in text.encode()]

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return b"".join(self.table[i] for i in ids if not (skip_special_tokens and i < 3)).decode("utf-8", "replace")


def test_incremental_decoder_never_splits_a_character():
    tok = ByteTokenizer()
    ids = tok.encode("aé€b 😀!")
    dec = _IncrementalDecoder(tok)
    pieces = [p for p in (dec.push(i) for i in ids) if p] + [dec.flush()]
    assert pieces[:-1] == ["a", "é", "€", "b", " ", "😀", "!"] and pieces[-1] == ""
    dec = _IncrementalDecoder(tok)
    for i in tok.encode("x€")[:-1]:  # ends inside a character
        dec.push(i)
    assert dec.text == "x" and dec.flush() == "\ufffd"


@pytest.mark.parametrize("prompt", ["hello", "é", "the cat"])
def test_stream_concatenates_to_the_full_text(models, prompt):
    _, ours = models
    tok = ByteTokenizer()
    cfg = GenerationConfig(max_new_tokens=40, do_sample=True, seed=3, temperature=2.0)  # diverse tokens
    full = generate_text(ours, tok, [prompt], cfg)[0]
    pieces = list(stream(ours, tok, prompt, cfg))
    assert len(pieces) > 1 and "".join(pieces) == full
    new_ids = generate(ours, [tok.encode(prompt)], cfg.replace(eos_token_id=tok.eos_id, pad_token_id=PAD))[0]
    assert full == tok.decode(new_ids)


def test_stop_strings(models):
    _, ours = models
    tok = ByteTokenizer()
    cfg = GenerationConfig(max_new_tokens=30, do_sample=True, seed=5, temperature=2.0)
    full = generate_text(ours, tok, ["abc"], cfg)[0]
    stop = full[8:10]  # a string that does come up
    assert stop and "\ufffd" not in stop
    cut = full[: full.find(stop)]
    assert generate_text(ours, tok, ["abc"], cfg, stop_strings=[stop, "never there"]) == [cut]
    assert "".join(stream(ours, tok, "abc", cfg, stop_strings=[stop])) == cut
    # ids: generation ends on the token that completes the stop string
    ids = generate(ours, [tok.encode("abc")], cfg, tokenizer=tok, stop_strings=[stop])[0]
    assert stop in tok.decode(ids) and stop not in tok.decode(ids[:-1])
    # batched text: each prompt stops on its own
    texts = generate_text(ours, tok, ["abc", "zz"], cfg.replace(do_sample=False), stop_strings=["e"])
    assert all("e" not in t for t in texts)

"""Masked language modelling: BERT's 80/10/10 corruption (optionally whole-word) and :class:`MLMCollator`."""

from __future__ import annotations

from functools import lru_cache
from typing import Iterable, Literal, Sequence

import torch

from gptbert.data.objectives.common import IGNORE_INDEX, TokenizerLike, as_generator, pad_sequences


@lru_cache(maxsize=16)
def _replacement_pool(vocab_size: int, excluded: frozenset[int]) -> torch.Tensor:
    keep = torch.ones(vocab_size, dtype=torch.bool)  # (V,)
    ids = [i for i in excluded if 0 <= i < vocab_size]
    if ids:
        keep[torch.tensor(ids, dtype=torch.long)] = False
    pool = torch.nonzero(keep).squeeze(1)  # (V',)
    if pool.numel() == 0:
        raise ValueError("no ordinary token is left to use as a random replacement")
    return pool


def word_ids_to_tensor(word_ids: Sequence[Sequence[int | None]], length: int | None = None,
                       *, padding_side: Literal["right", "left"] = "right") -> torch.Tensor:
    """Per-example word ids (``None`` for specials) to a (B, T) tensor with -1 for no word."""
    rows = [[-1 if w is None else int(w) for w in ws] for ws in word_ids]
    return pad_sequences(rows, -1, length=length, padding_side=padding_side)


def renumber_words(word_ids: torch.Tensor) -> torch.Tensor:
    """Give every word of a row a distinct index 0..W-1 in order of appearance.

    ``word_ids`` (B, T): -1 for positions outside any word; a run of equal non-negative
    values is one word. Runs are renumbered so that ids that restart (e.g. in the second
    text of a pair, after [SEP]) do not collide with words of the first text.
    """
    valid = word_ids >= 0  # (B, T)
    prev = torch.cat([torch.full_like(word_ids[:, :1], -1), word_ids[:, :-1]], dim=1)  # (B, T)
    starts = valid & (word_ids != prev)  # (B, T)
    index = torch.cumsum(starts.long(), dim=1) - 1  # (B, T)
    return torch.where(valid, index, torch.full_like(index, -1))


def mask_tokens(
    idx: torch.Tensor,
    *,
    mask_id: int,
    vocab_size: int,
    special_ids: Iterable[int] | None = None,
    special_mask: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    pad_id: int | None = None,
    mlm_probability: float = 0.15,
    mask_frac: float = 0.8,
    random_frac: float = 0.1,
    generator: torch.Generator | int | None = None,
    word_ids: torch.Tensor | Sequence[Sequence[int | None]] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masked-LM corruption.

    Each ordinary token (not special, not padding) is chosen with probability
    ``mlm_probability``; a chosen token becomes ``mask_id`` with probability ``mask_frac``,
    a uniformly drawn ordinary token (never a special id, never the mask or pad id) with
    probability ``random_frac``, and stays as it is otherwise.

    With ``word_ids`` (B, T) (-1 or None where there is no word), whole words are chosen
    with probability ``mlm_probability`` and all their pieces become targets; the 80/10/10
    decision is still made per piece.

    Returns ``(masked_idx, targets)``, both (B, T) long; ``targets`` holds the original id
    at chosen positions and -100 elsewhere. ``idx`` is not modified.
    """
    if special_ids is None and special_mask is None:
        raise ValueError("mask_tokens: pass special_ids or special_mask so that specials are never masked")
    if not 0.0 <= mlm_probability <= 1.0:
        raise ValueError(f"mlm_probability: expected a value in [0, 1], got {mlm_probability}")
    if mask_frac < 0 or random_frac < 0 or mask_frac + random_frac > 1.0 + 1e-9:
        raise ValueError(f"mask_frac + random_frac must lie in [0, 1], got {mask_frac} + {random_frac}")
    if idx.dim() != 2:
        raise ValueError(f"mask_tokens: idx must be (B, T), got shape {tuple(idx.shape)}")
    g = as_generator(generator)
    idx = idx.long()
    B, T = idx.shape

    specials = set(int(i) for i in special_ids) if special_ids is not None else set()
    candidates = torch.ones_like(idx, dtype=torch.bool)  # (B, T)
    if specials:
        candidates &= ~torch.isin(idx, torch.tensor(sorted(specials), dtype=torch.long))
    if special_mask is not None:
        special_mask = special_mask.bool()  # (B, T)
        candidates &= ~special_mask
        specials |= set(idx[special_mask].unique().tolist())
    if attention_mask is not None:
        candidates &= attention_mask.bool()
    if pad_id is not None:
        candidates &= idx != pad_id
        specials.add(int(pad_id))
    specials.add(int(mask_id))

    if word_ids is None:
        chosen = (torch.rand(B, T, generator=g) < mlm_probability) & candidates  # (B, T)
    else:
        if not isinstance(word_ids, torch.Tensor):
            word_ids = word_ids_to_tensor(word_ids, length=T)
        if word_ids.shape != idx.shape:
            raise ValueError(f"word_ids shape {tuple(word_ids.shape)} != idx shape {tuple(idx.shape)}")
        words = renumber_words(word_ids.long())  # (B, T), -1 outside words
        W = int(words.max().item()) + 1 if words.numel() else 0
        picked = torch.rand(B, max(W, 1), generator=g) < mlm_probability  # (B, W)
        chosen = picked.gather(1, words.clamp(min=0)) & (words >= 0) & candidates  # (B, T)

    u = torch.rand(B, T, generator=g)  # (B, T)
    to_mask = chosen & (u < mask_frac)
    to_random = chosen & (u >= mask_frac) & (u < mask_frac + random_frac)
    pool = _replacement_pool(int(vocab_size), frozenset(specials))  # (V',)
    random_tokens = pool[torch.randint(0, pool.numel(), (B, T), generator=g)]  # (B, T)

    targets = torch.where(chosen, idx, torch.full_like(idx, IGNORE_INDEX))  # (B, T)
    masked = torch.where(to_mask, torch.full_like(idx, mask_id), idx)  # (B, T)
    masked = torch.where(to_random, random_tokens, masked)
    return masked, targets


def continuation_table(tokenizer: TokenizerLike) -> torch.Tensor:
    """(V,) bool: True for vocabulary entries that continue the previous word.

    WordPiece marks continuations with a ``##`` prefix; byte-level BPE marks word *starts*
    with ``Ġ`` (a space), so there every piece without it continues a word. Used to derive
    word ids from bare token ids for whole-word masking.
    """
    backend = getattr(tokenizer, "backend", None)
    if backend is None or not hasattr(backend, "get_vocab"):
        raise ValueError("whole-word masking from ids needs tokenizer.backend.get_vocab()")
    vocab: dict[str, int] = backend.get_vocab()
    table = torch.zeros(int(tokenizer.vocab_size), dtype=torch.bool)  # (V,)
    if getattr(tokenizer, "kind", "wordpiece") == "wordpiece":
        ids = [i for tok, i in vocab.items() if tok.startswith("##") and i < table.numel()]
    else:
        special = set(getattr(tokenizer, "special_ids", ()))
        ids = [i for tok, i in vocab.items()
               if not tok.startswith("\u0120") and i not in special and i < table.numel()]
    if ids:
        table[torch.tensor(ids, dtype=torch.long)] = True
    return table


def word_ids_from_pieces(idx: torch.Tensor, is_continuation: torch.Tensor,
                         special_mask: torch.Tensor) -> torch.Tensor:
    """Word index per position (B, T), -1 at specials/padding, from a continuation table."""
    valid = ~special_mask.bool()  # (B, T)
    cont = is_continuation[idx.clamp(0, is_continuation.numel() - 1)]  # (B, T)
    prev_valid = torch.cat([torch.zeros_like(valid[:, :1]), valid[:, :-1]], dim=1)  # (B, T)
    starts = valid & (~cont | ~prev_valid)
    index = torch.cumsum(starts.long(), dim=1) - 1  # (B, T)
    return torch.where(valid, index, torch.full_like(index, -1))


class MLMCollator:
    """Masked LM on single texts (RoBERTa-style, no NSP).

    Examples are strings or lists of token ids (without specials). Returns ``idx``,
    ``attention_mask``, ``token_type_ids`` (all zeros, BERT-family tokenizers) and
    ``targets`` (B, T) with -100 at unmasked positions.
    """

    def __init__(self, tokenizer: TokenizerLike, max_len: int, *, mlm_probability: float = 0.15,
                 mask_frac: float = 0.8, random_frac: float = 0.1, whole_word_mask: bool = False,
                 seed: int | torch.Generator | None = 0, pad_to_multiple_of: int | None = None) -> None:
        if tokenizer.mask_id is None:
            raise ValueError("MLMCollator: the tokenizer has no mask token")
        self.tokenizer = tokenizer
        self.max_len = int(max_len)
        self.mlm_probability, self.mask_frac, self.random_frac = mlm_probability, mask_frac, random_frac
        self.whole_word_mask = whole_word_mask
        self.generator = as_generator(seed)
        self.pad_to_multiple_of = pad_to_multiple_of
        self._cont = continuation_table(tokenizer) if whole_word_mask else None

    def _ids(self, example: str | Sequence[int]) -> list[int]:
        tok = self.tokenizer
        if isinstance(example, str):
            return list(tok.encode(example, max_length=self.max_len).ids)
        body = list(example)[: self.max_len - 2]
        if tok.cls_id is not None and tok.sep_id is not None:
            return [tok.cls_id, *body, tok.sep_id]
        return body

    def __call__(self, examples: Sequence[str | Sequence[int]]) -> dict[str, torch.Tensor]:
        tok = self.tokenizer
        seqs = [self._ids(e) for e in examples]
        idx = pad_sequences(seqs, tok.pad_id, pad_to_multiple_of=self.pad_to_multiple_of)  # (B, T)
        attention = pad_sequences([[1] * len(s) for s in seqs], 0, length=idx.shape[1])  # (B, T)
        special = torch.isin(idx, torch.tensor(sorted(tok.special_ids), dtype=torch.long)) | (attention == 0)
        word_ids = word_ids_from_pieces(idx, self._cont, special) if self._cont is not None else None
        masked, targets = mask_tokens(
            idx, mask_id=tok.mask_id, vocab_size=tok.vocab_size, special_ids=tok.special_ids,
            special_mask=special, attention_mask=attention, mlm_probability=self.mlm_probability,
            mask_frac=self.mask_frac, random_frac=self.random_frac, generator=self.generator,
            word_ids=word_ids)
        batch = {"idx": masked, "attention_mask": attention, "targets": targets}
        if getattr(tok, "kind", "wordpiece") == "wordpiece":
            batch["token_type_ids"] = torch.zeros_like(idx)
        return batch

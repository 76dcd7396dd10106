"""Helpers every objective shares: the tokenizer protocol, seeded generators, padding, the end id."""

from __future__ import annotations

from typing import Any, Literal, Protocol, Sequence

import numpy as np
import torch

IGNORE_INDEX = -100
"""Target value the models' cross-entropy ignores."""


class TokenizerLike(Protocol):
    """The part of :class:`gptbert.tokenizer.Tokenizer` the builders use."""

    kind: str
    vocab_size: int
    pad_id: int
    unk_id: int | None
    cls_id: int | None
    sep_id: int | None
    mask_id: int | None
    bos_id: int | None
    eos_id: int | None
    special_ids: frozenset[int]

    def encode(self, text: str, pair: str | None = None, **kwargs: Any) -> Any: ...


def as_generator(seed_or_generator: int | torch.Generator | None) -> torch.Generator:
    """A ``torch.Generator``: the one given, or a fresh one seeded with the int (0 if None)."""
    if isinstance(seed_or_generator, torch.Generator):
        return seed_or_generator
    g = torch.Generator()
    g.manual_seed(0 if seed_or_generator is None else int(seed_or_generator))
    return g


def as_rng(seed_or_rng: int | np.random.Generator | None) -> np.random.Generator:
    """A ``numpy.random.Generator``: the one given, or one seeded with the int (0 if None)."""
    if isinstance(seed_or_rng, np.random.Generator):
        return seed_or_rng
    return np.random.default_rng(0 if seed_or_rng is None else int(seed_or_rng))


def pad_sequences(
    seqs: Sequence[Sequence[int]],
    pad_value: int,
    *,
    padding_side: Literal["right", "left"] = "right",
    length: int | None = None,
    pad_to_multiple_of: int | None = None,
    dtype: torch.dtype = torch.long,
) -> torch.Tensor:
    """Stack ragged integer sequences into a (B, T) tensor, T = longest (or ``length``)."""
    if padding_side not in ("right", "left"):
        raise ValueError(f"padding_side: expected 'right' or 'left', got {padding_side!r}")
    longest = max((len(s) for s in seqs), default=0)
    T = max(longest, length or 0)
    if pad_to_multiple_of:
        T = -(-T // pad_to_multiple_of) * pad_to_multiple_of
    out = torch.full((len(seqs), T), pad_value, dtype=dtype)  # (B, T)
    for i, s in enumerate(seqs):
        n = len(s)
        if n == 0:
            continue
        row = torch.as_tensor(list(s) if not isinstance(s, torch.Tensor) else s, dtype=dtype)  # (n,)
        if padding_side == "right":
            out[i, :n] = row
        else:
            out[i, T - n :] = row
    return out


def eos_or_sep(tokenizer: TokenizerLike) -> int:
    """The id that ends a text: EOS for GPT-style vocabularies, SEP for BERT-style ones."""
    for name in ("eos_id", "sep_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            return int(value)
    raise ValueError("tokenizer has neither an end-of-text (eos_id) nor a separator (sep_id) token")

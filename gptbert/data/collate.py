"""Batch pieces every fine-tuning collator shares (the collators live with their tasks in
:mod:`gptbert.tasks`): where a tokenizer puts its special tokens (:func:`special_template`,
derived from the tokenizer, not hard-coded), whether batches carry token type ids, and
padding of ELMo character ids. Sequence padding is :func:`gptbert.data.objectives.pad_sequences`.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from gptbert.data.objectives import TokenizerLike


@dataclass(frozen=True)
class SpecialTemplate:
    """Where a tokenizer puts its special tokens: ``prefix A suffix`` for one text,
    ``prefix A middle B pair_suffix`` for a pair; type ids of each part."""

    prefix: tuple[int, ...]
    suffix: tuple[int, ...]
    middle: tuple[int, ...]
    pair_suffix: tuple[int, ...]
    type_a: int = 0
    type_b: int = 1


_TEMPLATES: weakref.WeakKeyDictionary[Any, SpecialTemplate] = weakref.WeakKeyDictionary()
"""Probed templates by tokenizer object. Weak keys, not ``id()``: an id is reused once its
object is collected, and a new tokenizer must never get a dead one's special tokens."""


def _find(haystack: Sequence[int], needle: Sequence[int], start: int = 0) -> int:
    n = len(needle)
    for i in range(start, len(haystack) - n + 1):
        if list(haystack[i: i + n]) == list(needle):
            return i
    raise ValueError("probe text not found in its own encoding with special tokens")


def special_template(tokenizer: TokenizerLike) -> SpecialTemplate:
    """Probe the tokenizer once: which special ids surround one text and a pair of texts."""
    try:
        return _TEMPLATES[tokenizer]
    except (KeyError, TypeError):  # TypeError: not weak-referenceable, probed every time
        pass
    a_txt, b_txt = "hello", "world"
    a = list(tokenizer.encode(a_txt, add_special_tokens=False).ids)
    b = list(tokenizer.encode(b_txt, add_special_tokens=False).ids)
    single = list(tokenizer.encode(a_txt).ids)
    i = _find(single, a)
    pair_enc = tokenizer.encode(a_txt, b_txt)
    pair = list(pair_enc.ids)
    ia = _find(pair, a)
    ib = _find(pair, b, ia + len(a))
    types = list(pair_enc.type_ids)
    tmpl = SpecialTemplate(
        prefix=tuple(single[:i]), suffix=tuple(single[i + len(a):]),
        middle=tuple(pair[ia + len(a): ib]), pair_suffix=tuple(pair[ib + len(b):]),
        type_a=int(types[ia]) if types else 0, type_b=int(types[ib]) if types else 0,
    )
    try:
        _TEMPLATES[tokenizer] = tmpl
    except TypeError:
        pass
    return tmpl


def wants_token_types(tokenizer: TokenizerLike, flag: bool | None) -> bool:
    """Whether batches carry ``token_type_ids``: as asked, else for WordPiece (BERT-style) vocabularies."""
    return getattr(tokenizer, "kind", "wordpiece") == "wordpiece" if flag is None else bool(flag)


def pad_chars(chars: Sequence[torch.Tensor], T: int, C: int, side: str) -> torch.Tensor:
    """Character ids (n_i, C) of each example padded to (B, T, C) on ``side`` ('right' or 'left')."""
    out = torch.zeros(len(chars), T, C, dtype=torch.long)  # (B, T, C)
    for i, c in enumerate(chars):
        n = c.shape[0]
        if side == "right":
            out[i, :n] = c
        else:
            out[i, T - n:] = c
    return out

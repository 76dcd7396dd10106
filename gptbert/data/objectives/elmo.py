"""ELMo: bidirectional LM targets and character ids for a character CNN (:class:`ElmoLMCollator`)."""

from __future__ import annotations

from typing import Sequence

import torch

from gptbert.data.objectives.common import IGNORE_INDEX, TokenizerLike, pad_sequences


CHAR_PAD = 0
"""Padding inside a word and for padding tokens."""
CHAR_BOW = 1
"""Beginning of word."""
CHAR_EOW = 2
"""End of word."""
CHAR_BOS = 3
"""The only character of a sentence-start token ([CLS] / BOS)."""
CHAR_EOS = 4
"""The only character of a sentence-end token ([SEP] / EOS)."""
CHAR_SPECIAL = 5
"""The only character of any other special token ([MASK], ...)."""
CHAR_BYTE_OFFSET = 6
"""Byte ``b`` of a token's UTF-8 text has character id ``b + 6``."""
CHAR_VOCAB_SIZE = 256 + CHAR_BYTE_OFFSET  # 262


def word_char_ids(word: str | int, max_word_chars: int = 50) -> list[int]:
    """Character ids of one token: ``[BOW, byte+6 ..., EOW, PAD ...]`` of length ``max_word_chars``.

    ``word`` is the token's text, or one of ``CHAR_BOS``/``CHAR_EOS``/``CHAR_SPECIAL`` for
    a special token. Texts longer than ``max_word_chars - 2`` bytes are cut.
    """
    if max_word_chars < 3:
        raise ValueError("max_word_chars must be >= 3")
    if isinstance(word, int):
        body = [word]
    else:
        body = [b + CHAR_BYTE_OFFSET for b in word.encode("utf-8")[: max_word_chars - 2]]
    row = [CHAR_BOW, *body, CHAR_EOW]
    return row + [CHAR_PAD] * (max_word_chars - len(row))


def char_ids_for_words(words: Sequence[str | int], max_word_chars: int = 50) -> torch.Tensor:
    """(N, max_word_chars) character ids of a list of token texts."""
    if not words:
        return torch.zeros(0, max_word_chars, dtype=torch.long)
    return torch.tensor([word_char_ids(w, max_word_chars) for w in words], dtype=torch.long)


def token_texts(text: str, ids: Sequence[int], offsets: Sequence[tuple[int, int]],
                special_tokens_mask: Sequence[int], tokenizer: TokenizerLike) -> list[str | int]:
    """Surface text of every token (from the offsets), or a char marker for special tokens."""
    starts = {tokenizer.cls_id, tokenizer.bos_id} - {None}
    ends = {tokenizer.sep_id, tokenizer.eos_id} - {None}
    out: list[str | int] = []
    for tid, (s, e), special in zip(ids, offsets, special_tokens_mask):
        if special:
            out.append(CHAR_BOS if tid in starts else CHAR_EOS if tid in ends else CHAR_SPECIAL)
        else:
            out.append(text[s:e] if e > s else CHAR_SPECIAL)
    return out


class ElmoLMCollator:
    """Bidirectional LM batches for ELMo-style models.

    Each text is encoded with the tokenizer's special tokens ([CLS] ... [SEP] play the role
    of ELMo's <S> ... </S>) and cut to ``max_len``. Returns:

    * ``idx`` (B, T), ``attention_mask`` (B, T);
    * ``targets`` (B, T, 2): ``[..., 0]`` forward target (the next token), ``[..., 1]``
      backward target (the previous token); -100 where there is none (first/last token,
      padding);
    * ``char_ids`` (B, T, max_word_chars): per-token character ids (see
      :func:`word_char_ids`, vocabulary of :data:`CHAR_VOCAB_SIZE` = 262); all zeros at padding.
    """

    def __init__(self, tokenizer: TokenizerLike, max_len: int, *, max_word_chars: int = 50,
                 add_special_tokens: bool = True, pad_to_multiple_of: int | None = None) -> None:
        self.tokenizer = tokenizer
        self.max_len = int(max_len)
        self.max_word_chars = int(max_word_chars)
        self.add_special_tokens = add_special_tokens
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, examples: Sequence[str]) -> dict[str, torch.Tensor]:
        tok = self.tokenizer
        seqs: list[list[int]] = []
        chars: list[torch.Tensor] = []
        for text in examples:
            enc = tok.encode(text, add_special_tokens=self.add_special_tokens, max_length=self.max_len)
            ids = list(enc.ids)
            seqs.append(ids)
            texts = token_texts(text, ids, enc.offsets, enc.special_tokens_mask, tok)
            chars.append(char_ids_for_words(texts, self.max_word_chars))  # (n, C)
        idx = pad_sequences(seqs, tok.pad_id, pad_to_multiple_of=self.pad_to_multiple_of)  # (B, T)
        B, T = idx.shape
        attention = pad_sequences([[1] * len(s) for s in seqs], 0, length=T)  # (B, T)
        fwd = pad_sequences([s[1:] + [IGNORE_INDEX] if s else [] for s in seqs], IGNORE_INDEX, length=T)  # (B, T)
        bwd = pad_sequences([[IGNORE_INDEX] + s[:-1] if s else [] for s in seqs], IGNORE_INDEX, length=T)  # (B, T)
        char_ids = torch.zeros(B, T, self.max_word_chars, dtype=torch.long)  # (B, T, C)
        for i, c in enumerate(chars):
            char_ids[i, : c.shape[0]] = c
        return {"idx": idx, "attention_mask": attention, "targets": torch.stack([fwd, bwd], dim=-1),
                "char_ids": char_ids}

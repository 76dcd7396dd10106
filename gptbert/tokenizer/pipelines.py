"""The two tokenizer kinds and their pipelines: normalizer, pre-tokenizer, post-processor, decoder.

* ``"wordpiece"``: BERT style. ``[PAD] [UNK] [CLS] [SEP] [MASK]``, the BERT normalizer
  (optionally lowercasing), the BERT pre-tokenizer, ``[CLS] A [SEP] B [SEP]`` with segment ids
  0/1, and a ``##`` WordPiece decoder.
* ``"bpe"``: GPT-2 style byte-level BPE with ``<|endoftext|>``; no special tokens are added when
  encoding (as GPT-2 does).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import tokenizers
from tokenizers import decoders, models, normalizers, pre_tokenizers, processors

from gptbert.tokenizer.errors import TokenizerError

Kind = Literal["wordpiece", "bpe"]
KINDS: tuple[str, ...] = ("wordpiece", "bpe")
ENDOFTEXT = "<|endoftext|>"
ROLES: tuple[str, ...] = ("pad", "unk", "cls", "sep", "mask", "bos", "eos")

WORDPIECE_SPECIAL_TOKENS: dict[str, str | None] = {
    "pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]", "bos": None, "eos": None,
}
BPE_SPECIAL_TOKENS: dict[str, str | None] = {
    "pad": None, "unk": None, "cls": None, "sep": None, "mask": None, "bos": ENDOFTEXT, "eos": ENDOFTEXT,
}


def check_kind(kind: str) -> str:
    """``kind`` itself when it is one of :data:`KINDS`, else a TokenizerError."""
    if kind not in KINDS:
        raise TokenizerError(f"unknown tokenizer kind {kind!r}; expected one of {', '.join(KINDS)}")
    return kind


def default_special_tokens(kind: str) -> dict[str, str | None]:
    """The special token of every role for ``kind`` (a new dict)."""
    return dict(WORDPIECE_SPECIAL_TOKENS if kind == "wordpiece" else BPE_SPECIAL_TOKENS)


def wordpiece_normalizer(lowercase: bool) -> normalizers.Normalizer:
    return normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None,
                                      lowercase=lowercase)


def bpe_normalizer(lowercase: bool) -> normalizers.Normalizer | None:
    return normalizers.Lowercase() if lowercase else None


def wordpiece_pipeline(backend: tokenizers.Tokenizer, lowercase: bool) -> None:
    backend.normalizer = wordpiece_normalizer(lowercase)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=True)


def wordpiece_post_processor(backend: tokenizers.Tokenizer, cls: str, sep: str, source: str) -> None:
    """``[CLS] A [SEP]`` and ``[CLS] A [SEP] B [SEP]`` with segment ids 0 / 1."""
    cls_id, sep_id = backend.token_to_id(cls), backend.token_to_id(sep)
    if cls_id is None or sep_id is None:
        missing = cls if cls_id is None else sep
        raise TokenizerError(f"{source}: WordPiece vocabulary has no {missing!r} token")
    backend.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A:0 {sep}:0",
        pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, cls_id), (sep, sep_id)],
    )


def bpe_pipeline(backend: tokenizers.Tokenizer, lowercase: bool) -> None:
    backend.normalizer = bpe_normalizer(lowercase)
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    # Adds no tokens (GPT-2 convention); trims the leading space out of token offsets.
    backend.post_processor = processors.ByteLevel(trim_offsets=True)


def new_backend(kind: str, lowercase: bool) -> tokenizers.Tokenizer:
    """An empty (untrained) backend of ``kind`` with its pipeline."""
    if kind == "wordpiece":
        backend = tokenizers.Tokenizer(
            models.WordPiece(unk_token="[UNK]", continuing_subword_prefix="##", max_input_chars_per_word=100)
        )
        wordpiece_pipeline(backend, lowercase)
    else:
        backend = tokenizers.Tokenizer(models.BPE(fuse_unk=False))
        bpe_pipeline(backend, lowercase)
    return backend


def mark_special(backend: tokenizers.Tokenizer, tokens: Iterable[str | None]) -> None:
    """Register the tokens among ``tokens`` that exist in the vocabulary as special (never split)."""
    present = [t for t in dict.fromkeys(tokens) if t is not None and backend.token_to_id(t) is not None]
    if present:
        backend.add_special_tokens([tokenizers.AddedToken(t, special=True, normalized=False) for t in present])

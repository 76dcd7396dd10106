"""Pre-training objectives as batch builders.

The models are objective-free: they take ``idx`` and ``targets`` (ignore index -100) and
compute a plain cross-entropy. Everything that makes an objective (masking, next-sentence
pairs, shifting, packing) happens here, before the batch reaches the model.

* BERT (``masking``, ``nsp``): :func:`mask_tokens` (MLM with 80/10/10 replacement, optional
  whole-word masking), :func:`create_nsp_examples` (next-sentence pairs),
  :class:`BertPretrainCollator`, :class:`MLMCollator`.
* GPT (``causal``): :func:`pack_blocks` / :class:`PackedBlocks` (a corpus as one token stream
  cut into blocks; memmap-friendly) and :class:`CausalLMCollator` (one example per row, padded).
* ELMo (``elmo``): :class:`ElmoLMCollator` (forward and backward next-token targets plus
  character ids for a character CNN).
* GPT-BERT hybrid (``hybrid``): :class:`HybridLMCollator` (causal and masked next-token batches
  mixed at a causal fraction, ``batch["mode"]`` naming each) and :func:`masked_next_token_targets`.
* ``common``: the tokenizer protocol, seeded generators, padding.

Batches are dicts of tensors, called as ``model(**batch)``. Every builder is
deterministic given its seed or generator; nothing here touches the global RNG.
This package face re-exports the public names of its modules.
"""

from __future__ import annotations

from gptbert.data.objectives.common import (
    IGNORE_INDEX,
    TokenizerLike,
    as_generator,
    as_rng,
    eos_or_sep,
    pad_sequences,
)
from gptbert.data.objectives.masking import (
    MLMCollator,
    continuation_table,
    mask_tokens,
    renumber_words,
    word_ids_from_pieces,
    word_ids_to_tensor,
)
from gptbert.data.objectives.nsp import (
    BertPretrainCollator,
    PairExample,
    create_nsp_examples,
    documents_from_text,
    split_sentences,
    tokenize_documents,
)
from gptbert.data.objectives.causal import (
    CausalLMCollator,
    PackedBlocks,
    join_documents,
    pack_blocks,
)
from gptbert.data.objectives.hybrid import (
    PAPER_CAUSAL_FRACTION,
    HybridLMCollator,
    masked_next_token_targets,
)
from gptbert.data.objectives.elmo import (
    CHAR_BOS,
    CHAR_BOW,
    CHAR_BYTE_OFFSET,
    CHAR_EOS,
    CHAR_EOW,
    CHAR_PAD,
    CHAR_SPECIAL,
    CHAR_VOCAB_SIZE,
    ElmoLMCollator,
    char_ids_for_words,
    token_texts,
    word_char_ids,
)

__all__ = [
    "BertPretrainCollator",
    "CHAR_BOS",
    "CHAR_BOW",
    "CHAR_BYTE_OFFSET",
    "CHAR_EOS",
    "CHAR_EOW",
    "CHAR_PAD",
    "CHAR_SPECIAL",
    "CHAR_VOCAB_SIZE",
    "CausalLMCollator",
    "ElmoLMCollator",
    "HybridLMCollator",
    "IGNORE_INDEX",
    "MLMCollator",
    "PAPER_CAUSAL_FRACTION",
    "PackedBlocks",
    "PairExample",
    "TokenizerLike",
    "as_generator",
    "as_rng",
    "char_ids_for_words",
    "continuation_table",
    "create_nsp_examples",
    "documents_from_text",
    "eos_or_sep",
    "join_documents",
    "mask_tokens",
    "masked_next_token_targets",
    "pack_blocks",
    "pad_sequences",
    "renumber_words",
    "split_sentences",
    "token_texts",
    "tokenize_documents",
    "word_char_ids",
    "word_ids_from_pieces",
    "word_ids_to_tensor",
]

"""Text generation for GPT models (and hybrids in causal mode, and encoder-decoders given their
sources): greedy, sampling and beam search over a KV cache.

Reads top to bottom: the config -> logits processors (repetition penalty, top-k,
top-p) -> input preparation (left padding, truncation) -> the decoding loop
(greedy / sampling, one token per step over one pre-allocated ``KVCache``) ->
beam search -> the public ``generate`` -> text helpers (``generate_text``,
``stream``) that take any tokenizer with ``encode``/``decode``.

The core works on token ids: a (B, T) tensor, optionally with a left-padded
``attention_mask``, or a list of prompt id lists (padded on the left here). Left
padding is handled the standard way: the attention mask covers past + new tokens
and position ids are ``cumsum(mask) - 1`` so that a padded row sees exactly the
positions it would see alone.
"""

from gptbert.generate.core import generate
from gptbert.generate.processing import GenerationConfig, apply_repetition_penalty, top_k_filter, top_p_filter
from gptbert.generate.text import generate_text, stream

__all__ = [
    "GenerationConfig",
    "generate",
    "generate_text",
    "stream",
    "apply_repetition_penalty",
    "top_k_filter",
    "top_p_filter",
]

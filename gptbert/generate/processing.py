"""Generation settings and the logits processors (repetition penalty, top-k, top-p)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import torch
from torch import Tensor



class TokenizerLike(Protocol):
    """What the text helpers need: ``encode(text)`` (an object with ``.ids`` or a list) and ``decode``."""

    def encode(self, text: str) -> Any: ...

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str: ...


# ----------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------


@dataclass
class GenerationConfig:
    """How to decode. The defaults give greedy decoding of up to 32 new tokens."""

    max_new_tokens: int = 32
    do_sample: bool = False
    """Sample from the (filtered) distribution instead of taking the argmax."""
    temperature: float = 1.0
    """Divides the logits before sampling; 0 means greedy."""
    top_k: int | None = None
    """Sample among the k most likely tokens only (None or 0: off)."""
    top_p: float | None = None
    """Nucleus sampling: the smallest set of tokens whose probability reaches top_p (None or 1: off)."""
    repetition_penalty: float = 1.0
    """CTRL (Keskar et al. 2019): divide positive / multiply negative logits of tokens already present."""
    num_beams: int = 1
    length_penalty: float = 1.0
    """Beam search: a finished hypothesis scores sum(log p) / generated_length ** length_penalty."""
    early_stopping: bool | str = False
    """Beam search: True stops once num_beams hypotheses are finished; False stops when no running
    beam can still beat the finished ones (judged at the current length); 'never' judges at the
    longest possible length when length_penalty > 0."""
    eos_token_id: int | list[int] | None = None
    """Token(s) that end a sequence."""
    pad_token_id: int | None = None
    """Fills finished rows; default the first eos id, else 0."""
    stop_strings: list[str] | None = None
    """End a sequence when its decoded new text contains one of these (needs a tokenizer)."""
    seed: int | None = None
    """Seed of a private ``torch.Generator`` for sampling (None: the global RNG)."""
    eos_ids: tuple[int, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        if isinstance(self.stop_strings, str):
            self.stop_strings = [self.stop_strings]
        if self.eos_token_id is None:
            self.eos_ids = ()
        elif isinstance(self.eos_token_id, int):
            self.eos_ids = (self.eos_token_id,)
        else:
            self.eos_ids = tuple(int(i) for i in self.eos_token_id)
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ValueError(
                f"GenerationConfig.max_new_tokens: expected a positive integer, got {self.max_new_tokens!r}"
            )
        if self.temperature < 0:
            raise ValueError(f"GenerationConfig.temperature: expected >= 0, got {self.temperature!r}")
        if self.top_k is not None and self.top_k < 0:
            raise ValueError(f"GenerationConfig.top_k: expected >= 0 or None, got {self.top_k!r}")
        if self.top_p is not None and not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"GenerationConfig.top_p: expected a value in (0, 1], got {self.top_p!r}")
        if self.repetition_penalty <= 0:
            raise ValueError(f"GenerationConfig.repetition_penalty: expected > 0, got {self.repetition_penalty!r}")
        if not isinstance(self.num_beams, int) or self.num_beams < 1:
            raise ValueError(f"GenerationConfig.num_beams: expected a positive integer, got {self.num_beams!r}")
        if self.num_beams > 1 and self.do_sample:
            raise ValueError("GenerationConfig: beam search with do_sample=True is not supported")
        if self.early_stopping not in (True, False, "never"):
            raise ValueError(
                f"GenerationConfig.early_stopping: expected True, False or 'never', got {self.early_stopping!r}"
            )
        if self.stop_strings is not None and not all(isinstance(s, str) and s for s in self.stop_strings):
            raise ValueError("GenerationConfig.stop_strings: expected non-empty strings")

    @property
    def pad_id(self) -> int:
        if self.pad_token_id is not None:
            return self.pad_token_id
        return self.eos_ids[0] if self.eos_ids else 0

    @property
    def sampling(self) -> bool:
        return self.do_sample and self.temperature > 0

    def replace(self, **changes: Any) -> "GenerationConfig":
        return replace(self, **changes)


# ----------------------------------------------------------------------------------------
# Logits processors: (B, V) scores -> (B, V) scores
# ----------------------------------------------------------------------------------------


def apply_repetition_penalty(scores: Tensor, ids: Tensor, penalty: float) -> Tensor:
    """Penalise every token of ``ids`` (B, L) in ``scores`` (B, V), in place.

    A positive score is divided by ``penalty``, a negative one multiplied, so that
    penalty > 1 always makes the token less likely. Duplicates in ``ids`` count once.
    """
    picked = scores.gather(1, ids)  # (B, L)
    picked = torch.where(picked < 0, picked * penalty, picked / penalty)
    return scores.scatter_(1, ids, picked)


def top_k_filter(scores: Tensor, k: int) -> Tensor:
    """Set everything below the k-th largest score of each row to -inf, in place. (B, V)"""
    if k <= 0 or k >= scores.size(-1):
        return scores
    kth = scores.topk(k, dim=-1).values[:, -1:]  # (B, 1)
    return scores.masked_fill_(scores < kth, float("-inf"))


def top_p_filter(scores: Tensor, p: float) -> Tensor:
    """Keep, per row, the smallest set of most likely tokens whose probability reaches ``p``.

    A token is dropped when the tokens ranked above it already hold ``p`` of the mass;
    the most likely token is always kept. In place. (B, V)
    """
    if p >= 1.0:
        return scores
    sorted_scores, order = scores.sort(dim=-1, descending=True)  # (B, V)
    probs = sorted_scores.softmax(dim=-1)
    mass_above = probs.cumsum(dim=-1) - probs  # (B, V): probability of the better-ranked tokens
    drop_sorted = mass_above >= p
    drop_sorted[:, 0] = False
    drop = torch.empty_like(drop_sorted).scatter_(1, order, drop_sorted)  # back to vocabulary order
    return scores.masked_fill_(drop, float("-inf"))


def _process(scores: Tensor, history: Tensor | None, cfg: GenerationConfig) -> Tensor:
    """Repetition penalty, then temperature / top-k / top-p when sampling. (B, V) float32."""
    if history is not None:
        apply_repetition_penalty(scores, history, cfg.repetition_penalty)
    if cfg.sampling:
        if cfg.temperature != 1.0:
            scores.div_(cfg.temperature)
        if cfg.top_k:
            top_k_filter(scores, cfg.top_k)
        if cfg.top_p is not None and cfg.top_p < 1.0:
            top_p_filter(scores, cfg.top_p)
    return scores

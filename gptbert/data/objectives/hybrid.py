"""GPT-BERT's hybrid objective (Charpentier & Samuel 2024): causal-LM batches and masked
next-token batches for one model (:class:`gptbert.models.hybrid.Hybrid`).

Every batch has one mode, named in ``batch["mode"]`` (the model picks its attention mask
from it), and in both the target at position t is about token t + 1:

* ``'causal'``: ``idx = seq[:-1]``, ``targets = seq[1:]`` (GPT).
* ``'masked'``: BERT's corruption (:func:`gptbert.data.objectives.masking.mask_tokens`: 15 % of
  the ordinary tokens chosen, 80 % of those become [MASK], 10 % a random token, 10 % stay);
  ``idx`` is the whole corrupted sequence and the target of a chosen position i sits at
  position i - 1 (:func:`masked_next_token_targets`). Attention is bidirectional.

Mixing: a fraction ``causal_fraction`` of the batches is causal (default 1/16, the paper's
1 causal : 15 masked), interleaved evenly in call order, so the training loss is the
weighted sum ``p * L_causal + (1 - p) * L_masked``; 1.0 or 0.0 give collators of one mode
(held-out causal loss, masked accuracy). The best ratio on our data is measured, not assumed.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from gptbert.data.objectives.common import IGNORE_INDEX, TokenizerLike, as_generator, eos_or_sep, pad_sequences
from gptbert.data.objectives.masking import mask_tokens

PAPER_CAUSAL_FRACTION = 1 / 16
"""Charpentier & Samuel (2024): about 1 causal batch for 15 masked ones worked best on BabyLM."""


def masked_next_token_targets(targets: torch.Tensor) -> torch.Tensor:
    """Shift MLM targets one place left: (B, T) -> (B, T), ``out[:, t] = targets[:, t + 1]``, -100 last.

    The original token of a masked position i becomes the target of position i - 1, aligned
    with causal next-token prediction.
    """
    out = torch.full_like(targets, IGNORE_INDEX)  # (B, T)
    out[:, :-1] = targets[:, 1:]
    return out


class HybridLMCollator:
    """Causal and masked next-token batches for the hybrid, from texts or id lists (without specials).

    A text becomes ``[start] ids [end]`` ([CLS] ... [SEP] for WordPiece, BOS ... EOS else): at most
    ``max_len + 1`` tokens in causal mode (``idx`` has ``max_len``), ``max_len`` in masked mode.
    Batches: ``idx``, ``targets`` (-100 where nothing is predicted, padding included),
    ``attention_mask`` (B, T), and ``mode`` ('causal' | 'masked').
    """

    def __init__(self, tokenizer: TokenizerLike, max_len: int, *,
                 causal_fraction: float = PAPER_CAUSAL_FRACTION, mlm_probability: float = 0.15,
                 mask_frac: float = 0.8, random_frac: float = 0.1, seed: int | torch.Generator | None = 0) -> None:
        if tokenizer.mask_id is None:
            raise ValueError("HybridLMCollator: the tokenizer has no mask token (use a WordPiece vocabulary)")
        if not 0.0 <= causal_fraction <= 1.0:
            raise ValueError(f"causal_fraction: expected a value in [0, 1], got {causal_fraction}")
        start = tokenizer.cls_id if tokenizer.cls_id is not None else tokenizer.bos_id
        if start is None:
            raise ValueError("HybridLMCollator: the tokenizer has no start token ([CLS] or BOS)")
        self.tokenizer = tokenizer
        self.max_len = int(max_len)
        self.start_id, self.end_id = int(start), eos_or_sep(tokenizer)
        self.causal_fraction = causal_fraction
        self.mlm_probability, self.mask_frac, self.random_frac = mlm_probability, mask_frac, random_frac
        self.generator = as_generator(seed)
        self.calls = 0

    def sequence(self, example: str | Sequence[int], length: int) -> list[int]:
        """``[start] ids [end]`` of at most ``length`` tokens (the body is cut, the end token kept)."""
        if isinstance(example, str):
            ids = list(self.tokenizer.encode(example, add_special_tokens=False).ids)
        else:
            ids = list(example)
        return [self.start_id, *ids[: max(length - 2, 0)], self.end_id]

    def next_mode(self) -> str:
        """'causal' for a fraction ``causal_fraction`` of calls, spread evenly (call n is causal when
        floor((n + 1) p) > floor(n p)), else 'masked'."""
        n, p = self.calls, self.causal_fraction
        self.calls += 1
        return "causal" if math.floor((n + 1) * p + 1e-9) > math.floor(n * p + 1e-9) else "masked"

    def causal(self, examples: Sequence[str | Sequence[int]]) -> dict[str, torch.Tensor | str]:
        seqs = [self.sequence(e, self.max_len + 1) for e in examples]
        idx = pad_sequences([s[:-1] for s in seqs], self.tokenizer.pad_id)  # (B, T)
        T = idx.shape[1]
        targets = pad_sequences([s[1:] for s in seqs], IGNORE_INDEX, length=T)  # (B, T)
        attention = pad_sequences([[1] * (len(s) - 1) for s in seqs], 0, length=T)  # (B, T)
        return {"idx": idx, "targets": targets, "attention_mask": attention, "mode": "causal"}

    def masked(self, examples: Sequence[str | Sequence[int]]) -> dict[str, torch.Tensor | str]:
        tok = self.tokenizer
        seqs = [self.sequence(e, self.max_len) for e in examples]
        idx = pad_sequences(seqs, tok.pad_id)  # (B, T)
        attention = pad_sequences([[1] * len(s) for s in seqs], 0, length=idx.shape[1])  # (B, T)
        corrupted, targets = mask_tokens(
            idx, mask_id=tok.mask_id, vocab_size=tok.vocab_size, special_ids=tok.special_ids,
            attention_mask=attention, mlm_probability=self.mlm_probability, mask_frac=self.mask_frac,
            random_frac=self.random_frac, generator=self.generator)  # (B, T), (B, T)
        return {"idx": corrupted, "targets": masked_next_token_targets(targets), "attention_mask": attention,
                "mode": "masked"}

    def __call__(self, examples: Sequence[str | Sequence[int]]) -> dict[str, torch.Tensor | str]:
        return self.causal(examples) if self.next_mode() == "causal" else self.masked(examples)

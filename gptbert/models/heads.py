"""Task heads shared by every family, and their losses.

A backbone gives hidden states (B, T, C) and a pooled vector (B, C); a head turns them
into logits and, given targets (ignore index -100), a loss. By default BERT pools with its
pooler on [CLS], GPT takes the last real token, ELMo a masked mean; ``config.pooling`` and
``config.pool_normalize`` choose another sentence vector (:func:`sentence_vector`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from gptbert.config import ModelConfig
from gptbert.models.transformer import IGNORE_INDEX


def cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy over non-ignored targets; logits (..., V), targets (...)."""
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1), ignore_index=IGNORE_INDEX)


class MLMHead(nn.Module):
    """dense -> activation -> LayerNorm -> decoder tied to the word embeddings (+ bias)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        C = config.n_embd
        self.dense = nn.Linear(C, C)
        self.ln = nn.LayerNorm(C, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(C, config.vocab_size)
        self.activation = config.activation

    def forward(self, h: Tensor) -> Tensor:
        h = F.gelu(self.dense(h), approximate="tanh" if self.activation == "gelu_tanh" else "none")  # (B, T, C)
        return self.decoder(self.ln(h))  # (B, T, V)


class ClassifierHead(nn.Module):
    """Dropout + linear: on pooled vectors (sequence labels) or on every token (token labels)."""

    def __init__(self, n_in: int, num_labels: int, dropout: float, bias: bool = True) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(n_in, num_labels, bias=bias)

    def forward(self, h: Tensor) -> Tensor:
        return self.out(self.drop(h))  # (B, L) or (B, T, L)


def classification_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Cross-entropy, or mean squared error for a single output (regression)."""
    if logits.size(-1) == 1:
        return F.mse_loss(logits.squeeze(-1).float(), targets.float())
    return cross_entropy(logits, targets)


def span_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Extractive QA: logits (B, T, 2) start/end, targets (B, 2) token positions."""
    T = logits.size(1)
    start, end = targets[:, 0].clone(), targets[:, 1].clone()  # (B,)
    start[(start < 0) | (start >= T)] = IGNORE_INDEX
    end[(end < 0) | (end >= T)] = IGNORE_INDEX
    return (cross_entropy(logits[..., 0], start) + cross_entropy(logits[..., 1], end)) / 2


class TaskHead(nn.Module):
    """The head named by ``config.head`` for 'classify', 'tokens' or 'qa' (any family).

    Language-model heads ('pretrain', 'mlm', 'lm') are tied to embeddings and live in
    the family's model file.
    """

    def __init__(self, config: ModelConfig, n_in: int) -> None:
        super().__init__()
        self.kind = config.head
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.dropout
        if self.kind == "qa":
            self.out = ClassifierHead(n_in, 2, 0.0, bias=True)
        else:
            bias = config.classifier_bias is not False if self.kind == "classify" else True
            self.out = ClassifierHead(n_in, config.num_labels, dropout, bias=bias)

    def forward(self, hidden: Tensor, pooled: Tensor | None, targets: Tensor | None) -> tuple[Tensor, Tensor | None]:
        if self.kind == "classify":
            assert pooled is not None
            logits = self.out(pooled)  # (B, L)
            loss = classification_loss(logits, targets) if targets is not None else None
        elif self.kind == "tokens":
            logits = self.out(hidden)  # (B, T, L)
            loss = cross_entropy(logits, targets) if targets is not None else None
        else:  # qa
            logits = self.out(hidden)  # (B, T, 2)
            loss = span_loss(logits, targets) if targets is not None else None
        return logits, loss


def last_token_pool(hidden: Tensor, attention_mask: Tensor | None) -> Tensor:
    """Hidden state of the last real token of each row (left or right padding). (B, C)"""
    B, T, _ = hidden.shape
    if attention_mask is None:
        return hidden[:, -1]
    positions = torch.arange(T, device=hidden.device)[None, :] * attention_mask  # (B, T)
    last = positions.argmax(dim=1)  # (B,)
    return hidden[torch.arange(B, device=hidden.device), last]


def mean_pool(hidden: Tensor, attention_mask: Tensor | None) -> Tensor:
    """Mean of the real tokens' hidden states. (B, C)"""
    if attention_mask is None:
        return hidden.mean(dim=1)
    m = attention_mask[..., None].to(hidden.dtype)  # (B, T, 1)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)


def max_pool(hidden: Tensor, attention_mask: Tensor | None) -> Tensor:
    """Element-wise maximum over the real tokens. (B, C)"""
    if attention_mask is None:
        return hidden.amax(dim=1)
    pad = attention_mask[..., None] == 0  # (B, T, 1)
    return hidden.masked_fill(pad, torch.finfo(hidden.dtype).min).amax(dim=1)


def pool_tokens(hidden: Tensor, attention_mask: Tensor | None, pooling: str) -> Tensor:
    """'mean', 'cls' (first token), 'last' (last real token) or 'max' of hidden (B, T, C) -> (B, C)."""
    if pooling == "mean":
        return mean_pool(hidden, attention_mask)
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "last":
        return last_token_pool(hidden, attention_mask)
    if pooling == "max":
        return max_pool(hidden, attention_mask)
    raise ValueError(f"pooling: expected 'mean', 'cls', 'last' or 'max', got {pooling!r}")


def sentence_vector(
    config: ModelConfig, hidden: Tensor, attention_mask: Tensor | None,
    family_default: Callable[[Tensor, Tensor | None], Tensor],
) -> Tensor:
    """The pooled vector (B, C) that ``config`` asks for: ``family_default(hidden, mask)`` for
    pooling 'default' (today's behaviour, unchanged), else :func:`pool_tokens`; L2-normalised
    when ``config.pool_normalize``."""
    if config.pooling == "default":
        pooled = family_default(hidden, attention_mask)  # (B, C)
    else:
        pooled = pool_tokens(hidden, attention_mask, config.pooling)  # (B, C)
    return F.normalize(pooled, dim=-1) if config.pool_normalize else pooled


def init_head_from_probe(model: nn.Module, coef: Any, intercept: Any) -> nn.Module:
    """Set a 'classify' model's output layer to a linear probe: logits = pooled @ coef.T + intercept.

    ``coef`` (L, C) and ``intercept`` (L,) in softmax form (for two labels, scikit-learn's single
    vector w becomes [-w/2, w/2], see ``gptbert.baselines.logreg.softmax_form``). The probe must
    have been fitted on the model's own sentence vectors (``model.pool``: same pooling, same
    normalisation). Also the start of a "linear probe, then fine-tune" recipe. Returns ``model``.
    """
    config: ModelConfig = model.config  # type: ignore[assignment]
    task = getattr(model, "task", None)
    if config.head != "classify" or not isinstance(task, TaskHead):
        raise ValueError(f"init_head_from_probe: needs a model with a 'classify' head, got head {config.head!r}")
    linear = task.out.out
    weight = torch.as_tensor(np.asarray(coef), dtype=linear.weight.dtype)  # (L, C)
    bias = torch.as_tensor(np.asarray(intercept), dtype=linear.weight.dtype).reshape(-1)  # (L,)
    if tuple(weight.shape) != tuple(linear.weight.shape) or bias.numel() != weight.shape[0]:
        raise ValueError(f"init_head_from_probe: coef {tuple(weight.shape)} / intercept {tuple(bias.shape)} do not fit "
                         f"the head ({config.num_labels} labels x {linear.in_features} features)")
    if linear.bias is None and bool(bias.abs().max() > 0):
        raise ValueError("init_head_from_probe: this head has no bias (GPT's default); build the model with "
                         "classifier_bias=True to take the probe's intercept")
    with torch.no_grad():
        linear.weight.copy_(weight)
        if linear.bias is not None:
            linear.bias.copy_(bias)
    return model

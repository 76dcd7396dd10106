"""BERT: a bidirectional post-LN encoder with a pooler and MLM / NSP / task heads."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from gptbert.config import ModelConfig
from gptbert.models.heads import MLMHead, TaskHead, cross_entropy, sentence_vector
from gptbert.models.transformer import Block, Embeddings, attention_mask_for, init_weights


class Pooler(nn.Module):
    """dense + tanh on the first ([CLS]) token."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.n_embd, config.n_embd)

    def forward(self, hidden: Tensor) -> Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))  # (B, C)


class BERT(nn.Module):
    """Devlin et al. 2019. ``config.head`` picks the output:

    None -> hidden states (B, T, C); 'pretrain' -> (MLM logits, NSP logits);
    'mlm' -> MLM logits (B, T, V); 'classify' -> (B, L) on the pooled vector
    (the pooler on [CLS] unless ``config.pooling`` says otherwise);
    'tokens' -> (B, T, L); 'qa' -> start/end logits (B, T, 2).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.family != "bert":
            raise ValueError(f"BERT needs a config of family 'bert', got {config.family!r}")
        self.config = config
        self.embeddings = Embeddings(config)
        self.blocks = nn.ModuleList([Block(config, causal=False) for _ in range(config.n_layer)])
        self.pooler = Pooler(config) if config.add_pooler else None
        self.mlm: MLMHead | None = None
        self.nsp: nn.Linear | None = None
        self.task: TaskHead | None = None
        if config.head in ("pretrain", "mlm"):
            self.mlm = MLMHead(config)
        if config.head == "pretrain":
            self.nsp = nn.Linear(config.n_embd, 2)
        if config.head in ("classify", "tokens", "qa"):
            self.task = TaskHead(config, config.n_embd)
        init_weights(self, config)
        self.tie_weights()

    def tie_weights(self) -> None:
        if self.mlm is not None and self.config.tie_word_embeddings:
            self.mlm.decoder.weight = self.embeddings.wte.weight

    def encode(
        self, idx: Tensor, *, token_type_ids: Tensor | None = None, attention_mask: Tensor | None = None
    ) -> Tensor:
        """Last hidden states. idx (B, T) -> (B, T, C)"""
        x = self.embeddings(idx, token_type_ids=token_type_ids)  # (B, T, C)
        mask = attention_mask_for(attention_mask, causal=False, q_len=idx.size(1))  # (B, 1, 1, T) or None
        for block in self.blocks:
            x = block(x, mask)
        return x

    def pool(self, hidden: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Sentence vector (B, C) as ``config.pooling`` says (default: the pooler on [CLS])."""
        return sentence_vector(self.config, hidden, attention_mask, self._pool_first)

    def _pool_first(self, hidden: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        if self.pooler is None:
            return hidden[:, 0]  # (B, C)
        return self.pooler(hidden)  # (B, C)

    def forward(
        self,
        idx: Tensor,
        targets: Tensor | None = None,
        *,
        token_type_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        next_sentence_label: Tensor | None = None,
    ) -> tuple[Tensor | tuple[Tensor, Tensor], Tensor | None]:
        hidden = self.encode(idx, token_type_ids=token_type_ids, attention_mask=attention_mask)  # (B, T, C)
        head = self.config.head
        if head is None:
            return hidden, None
        if head in ("pretrain", "mlm"):
            assert self.mlm is not None
            mlm_logits = self.mlm(hidden)  # (B, T, V)
            loss = cross_entropy(mlm_logits, targets) if targets is not None else None
            if head == "mlm":
                return mlm_logits, loss
            assert self.nsp is not None
            nsp_logits = self.nsp(self.pool(hidden, attention_mask))  # (B, 2)
            if next_sentence_label is not None:
                nsp_loss = cross_entropy(nsp_logits, next_sentence_label)
                loss = nsp_loss if loss is None else loss + nsp_loss
            return (mlm_logits, nsp_logits), loss
        assert self.task is not None
        pooled = self.pool(hidden, attention_mask) if head == "classify" else None
        return self.task(hidden, pooled, targets)

"""GPT: a causal pre-LN decoder in the GPT-2 layout with a tied LM head and a KV cache."""

from __future__ import annotations

import torch.nn as nn
from torch import Tensor

from gptbert.config import ModelConfig
from gptbert.models.heads import TaskHead, cross_entropy, last_token_pool, sentence_vector
from gptbert.models.transformer import Block, Embeddings, KVCache, attention_mask_for, init_weights


class GPT(nn.Module):
    """Radford et al. 2019. ``config.head`` picks the output:

    None -> hidden states after the final LayerNorm (B, T, C); 'lm' -> next-token
    logits (B, T, V) with targets already shifted by the data code; 'classify' -> (B, L)
    from the last real token (or ``config.pooling``); 'tokens' -> (B, T, L); 'qa' -> start/end logits (B, T, 2).

    With ``config.cross_attention`` every block also attends to ``encoder_states``
    (B, S, C_enc) under ``encoder_mask`` (B, S): the decoder of an encoder-decoder
    (:mod:`gptbert.models.encdec`).
    """

    family = "gpt"
    """The config family this class builds (the hybrid subclass builds 'hybrid')."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.family != self.family:
            raise ValueError(f"{type(self).__name__} needs a config of family {self.family!r}, got {config.family!r}")
        self.config = config
        self.embeddings = Embeddings(config)
        self.blocks = nn.ModuleList([Block(config, causal=True, cross_attention=config.cross_attention)
                                     for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias)
        self.lm_head: nn.Linear | None = None
        self.task: TaskHead | None = None
        if config.head == "lm":
            self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        elif config.head in ("classify", "tokens", "qa"):
            # GPT-2's sequence-classification "score" layer has no bias (config.classifier_bias False).
            self.task = TaskHead(config, config.n_embd)
        elif config.head is not None:
            raise ValueError(f"{type(self).__name__} supports heads None, 'lm', 'classify', 'tokens', 'qa'; "
                             f"got {config.head!r}")
        init_weights(self, config)
        self.tie_weights()

    def tie_weights(self) -> None:
        if self.lm_head is not None and self.config.tie_word_embeddings:
            self.lm_head.weight = self.embeddings.wte.weight

    def encode(
        self,
        idx: Tensor,
        *,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        cache: KVCache | None = None,
        encoder_states: Tensor | None = None,
        encoder_mask: Tensor | None = None,
        causal: bool = True,
        prefix_len: int | Tensor | None = None,
    ) -> Tensor:
        """Hidden states after ln_f. idx (B, T) -> (B, T, C).

        With a cache, ``idx`` holds only the new tokens, ``attention_mask`` covers the
        past and the new tokens, and the cache advances by T. ``encoder_states`` (B, S, C_enc)
        and ``encoder_mask`` (B, S) feed the cross-attention. ``causal=False`` and
        ``prefix_len`` are the other masks of the hybrid subclass; a GPT is causal.
        """
        T = idx.size(1)
        past_len = cache.length if cache is not None else 0
        x = self.embeddings(idx, position_ids=position_ids, past_len=past_len)  # (B, T, C)
        mask = attention_mask_for(attention_mask, causal=causal, q_len=T, past_len=past_len, prefix_len=prefix_len)
        cross_mask = None
        if encoder_states is not None and encoder_mask is not None:  # keys: the S encoder positions
            cross_mask = attention_mask_for(encoder_mask, causal=False, q_len=encoder_mask.size(1))  # (B, 1, 1, S)
        for i, block in enumerate(self.blocks):
            x = block(x, mask, cache, i, causal=causal, encoder_states=encoder_states, encoder_mask=cross_mask)
        if cache is not None:
            cache.advance(T)
        return self.ln_f(x)

    def pool(self, hidden: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Sentence vector (B, C) as ``config.pooling`` says (default: the last real token)."""
        return sentence_vector(self.config, hidden, attention_mask, last_token_pool)

    def forward(
        self,
        idx: Tensor,
        targets: Tensor | None = None,
        *,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        cache: KVCache | None = None,
        last_only: bool = False,
        encoder_states: Tensor | None = None,
        encoder_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        hidden = self.encode(idx, attention_mask=attention_mask, position_ids=position_ids, cache=cache,
                             encoder_states=encoder_states, encoder_mask=encoder_mask)
        return self.head_outputs(hidden, targets, attention_mask=attention_mask, last_only=last_only)

    def head_outputs(
        self, hidden: Tensor, targets: Tensor | None = None, *, attention_mask: Tensor | None = None,
        last_only: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """(logits, loss) of ``config.head`` on hidden states (B, T, C); the hidden states themselves without a head."""
        head = self.config.head
        if head is None:
            return hidden, None
        if head == "lm":
            assert self.lm_head is not None
            if last_only and targets is None:
                hidden = hidden[:, -1:]  # (B, 1, C): only the next token is needed when decoding
            logits = self.lm_head(hidden)  # (B, T, V)
            loss = cross_entropy(logits, targets) if targets is not None else None
            return logits, loss
        assert self.task is not None
        pooled = self.pool(hidden, attention_mask) if head == "classify" else None
        return self.task(hidden, pooled, targets)

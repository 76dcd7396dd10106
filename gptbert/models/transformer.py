"""The one transformer both families share.

Reads top to bottom: masks -> KV cache -> embeddings -> attention (self, cross) -> MLP
-> Block. GPT-2 is a stack of pre-LN causal blocks, BERT a stack of post-LN bidirectional
blocks; the difference is two flags on the same ``Block``. A third flag,
``cross_attention``, gives a block a sublayer that attends to an encoder's states (the
decoder of an encoder-decoder); the hybrid (GPT-BERT) overrides ``causal`` per call.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from gptbert.config import ModelConfig

IGNORE_INDEX = -100


def attention_mask_for(
    attention_mask: Tensor | None, *, causal: bool, q_len: int, past_len: int = 0,
    prefix_len: int | Tensor | None = None,
) -> Tensor | None:
    """Boolean mask (True = may attend) for ``F.scaled_dot_product_attention``.

    ``attention_mask`` is (B, past_len + q_len) with 1 for real tokens. Returns None
    when SDPA needs no explicit mask: no padding and either bidirectional, a single
    causal query, or a causal prefix with no past (then ``is_causal`` is used).
    ``prefix_len`` (an int or (B,), causal only) makes a prefix LM: the keys before it
    are visible to every query, the rest causally.
    """
    k_len = past_len + q_len
    if prefix_len is not None and not causal:
        raise ValueError("prefix_len is for causal masks (a prefix LM); a bidirectional mask sees everything")
    if attention_mask is None and prefix_len is None and (not causal or q_len == 1 or past_len == 0):
        return None
    if attention_mask is not None:
        if attention_mask.size(-1) != k_len:
            raise ValueError(f"attention_mask covers {attention_mask.size(-1)} positions, expected {k_len}")
        keep = attention_mask[:, None, None, :].bool()  # (B, 1, 1, Tk)
    else:
        keep = torch.ones(1, 1, 1, k_len, dtype=torch.bool)
    if causal:
        device = keep.device
        q_pos = torch.arange(past_len, k_len, device=device)[:, None]  # (Tq, 1)
        k_pos = torch.arange(k_len, device=device)[None, :]  # (1, Tk)
        visible = k_pos <= q_pos  # (Tq, Tk)
        if prefix_len is not None:
            prefix = torch.as_tensor(prefix_len, device=device).reshape(-1, 1, 1, 1)  # (B or 1, 1, 1, 1)
            visible = visible | (k_pos < prefix)  # (B, 1, Tq, Tk)
        keep = keep & visible  # (B, 1, Tq, Tk)
    # A row with nothing to attend to (a pad query before the first real token under
    # left padding) would give NaN; let it attend everywhere, its output is ignored.
    return keep | ~keep.any(dim=-1, keepdim=True)


class KVCache:
    """Pre-allocated keys and values of every layer for incremental decoding.

    Buffers are allocated once for ``max_len`` positions; ``update`` writes the new
    step in place and returns views of everything filled so far. Cross-attention keys
    and values (an encoder-decoder's decoder) depend on the encoder states only: ``cross``
    computes them once per layer and returns the same tensors at every later step.
    """

    def __init__(
        self,
        n_heads: list[int],
        batch_size: int,
        max_len: int,
        head_size: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> None:
        self.max_len = max_len
        self.k = [torch.zeros(batch_size, nh, max_len, head_size, dtype=dtype, device=device) for nh in n_heads]
        self.v = [torch.zeros_like(k) for k in self.k]
        self.cross_kv: list[tuple[Tensor, Tensor] | None] = [None] * len(n_heads)
        self.length = 0

    @classmethod
    def for_model(cls, model: nn.Module, batch_size: int, max_len: int, **kwargs) -> "KVCache":
        blocks = model.blocks  # type: ignore[attr-defined]
        n_heads = [b.attn.n_head for b in blocks]
        return cls(n_heads, batch_size, max_len, blocks[0].attn.head_size, **kwargs)

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        start, end = self.length, self.length + k.size(2)
        if end > self.max_len:
            raise ValueError(f"KV cache full: {end} positions needed, {self.max_len} allocated")
        self.k[layer][:, :, start:end] = k
        self.v[layer][:, :, start:end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]  # (B, nh, end, hs)

    def cross(self, layer: int, compute: Callable[[], tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
        """Cross-attention keys and values of ``layer``: ``compute()`` on the first call, then cached."""
        kv = self.cross_kv[layer]
        if kv is None:
            kv = self.cross_kv[layer] = compute()  # 2 x (B, nh, S, hs)
        return kv

    def advance(self, n: int) -> None:
        self.length += n

    def reorder(self, index: Tensor) -> None:
        """Select batch rows (beam search): row i becomes old row ``index[i]``."""
        for i in range(len(self.k)):
            self.k[i] = self.k[i].index_select(0, index)
            self.v[i] = self.v[i].index_select(0, index)
            kv = self.cross_kv[i]
            if kv is not None:
                self.cross_kv[i] = (kv[0].index_select(0, index), kv[1].index_select(0, index))


def sinusoidal_table(n_pos: int, dim: int) -> Tensor:
    """Fixed sin/cos position encodings (Vaswani et al. 2017). (n_pos, dim)"""
    pos = torch.arange(n_pos, dtype=torch.float32)[:, None]  # (P, 1)
    inv_freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(n_pos, dim)
    table[:, 0::2] = torch.sin(pos * inv_freq)
    table[:, 1::2] = torch.cos(pos * inv_freq[: dim // 2])
    return table


class Embeddings(nn.Module):
    """Token + position (+ token type) embeddings; post-LN models normalise them (BERT)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        C = config.n_embd
        self.wte = nn.Embedding(config.vocab_size, C)
        if config.position == "learned":
            self.wpe: nn.Embedding | None = nn.Embedding(config.block_size, C)
        else:
            self.wpe = None
            self.register_buffer("sinusoid", sinusoidal_table(config.block_size, C), persistent=False)
        self.wtt = nn.Embedding(config.type_vocab_size, C) if config.type_vocab_size else None
        self.ln = nn.LayerNorm(C, eps=config.layer_norm_eps, bias=config.bias) if config.norm == "post" else None
        self.drop = nn.Dropout(config.dropout)
        self.block_size = config.block_size

    def forward(
        self, idx: Tensor, *, position_ids: Tensor | None = None, token_type_ids: Tensor | None = None,
        past_len: int = 0,
    ) -> Tensor:
        B, T = idx.shape
        if position_ids is None:
            if past_len + T > self.block_size:
                raise ValueError(f"sequence of {past_len + T} tokens exceeds block_size {self.block_size}")
            position_ids = torch.arange(past_len, past_len + T, device=idx.device)[None, :]  # (1, T)
        x = self.wte(idx)  # (B, T, C)
        x = x + (self.wpe(position_ids) if self.wpe is not None else self.sinusoid[position_ids])
        if self.wtt is not None:
            if token_type_ids is None:
                token_type_ids = torch.zeros_like(idx)
            x = x + self.wtt(token_type_ids)
        if self.ln is not None:
            x = self.ln(x)
        return self.drop(x)


class SelfAttention(nn.Module):
    """Multi-head self-attention through ``F.scaled_dot_product_attention``.

    q, k and v come from one fused projection. ``n_head`` may be smaller than the
    config's after structured head pruning.
    """

    def __init__(self, config: ModelConfig, causal: bool, n_head: int | None = None) -> None:
        super().__init__()
        self.n_head = n_head or config.n_head
        self.head_size = config.head_size
        inner = self.n_head * self.head_size
        self.qkv = nn.Linear(config.n_embd, 3 * inner, bias=config.bias)
        self.proj = nn.Linear(inner, config.n_embd, bias=config.bias)
        self.resid_drop = nn.Dropout(config.dropout)
        self.attn_dropout = config.dropout
        self.causal = causal

    def forward(
        self, x: Tensor, mask: Tensor | None = None, cache: KVCache | None = None, layer: int = 0,
        causal: bool | None = None,
    ) -> Tensor:
        """``causal`` None: the layer's own; True / False override it for this call (the hybrid)."""
        B, T, _ = x.shape
        q, k, v = self.qkv(x).split(self.n_head * self.head_size, dim=2)  # 3 x (B, T, nh*hs)
        q = q.view(B, T, self.n_head, self.head_size).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, self.head_size).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, self.head_size).transpose(1, 2)  # (B, nh, T, hs)
        past_len = 0
        if cache is not None:
            past_len = cache.length
            k, v = cache.update(layer, k, v)  # (B, nh, past+T, hs)
        causal = self.causal if causal is None else causal
        is_causal = causal and mask is None and T > 1 and past_len == 0
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.attn_dropout if self.training else 0.0, is_causal=is_causal
        )  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, self.n_head * self.head_size)  # (B, T, nh*hs)
        return self.resid_drop(self.proj(y))  # (B, T, C)


class CrossAttention(nn.Module):
    """Multi-head attention from a decoder's states (queries) to an encoder's states (keys, values).

    Keys and values come from one fused projection of the encoder states, whose width
    ``config.cross_attention_dim`` may differ from the decoder's ``n_embd``. With a
    ``KVCache`` they are computed on the first step and reused after.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.n_head, self.head_size = config.n_head, config.head_size
        inner = self.n_head * self.head_size
        enc_dim = config.cross_attention_dim or config.n_embd
        self.q = nn.Linear(config.n_embd, inner, bias=config.bias)
        self.kv = nn.Linear(enc_dim, 2 * inner, bias=config.bias)
        self.proj = nn.Linear(inner, config.n_embd, bias=config.bias)
        self.resid_drop = nn.Dropout(config.dropout)
        self.attn_dropout = config.dropout

    def keys_values(self, encoder_states: Tensor) -> tuple[Tensor, Tensor]:
        B, S, _ = encoder_states.shape
        k, v = self.kv(encoder_states).split(self.n_head * self.head_size, dim=2)  # 2 x (B, S, nh*hs)
        k = k.view(B, S, self.n_head, self.head_size).transpose(1, 2)  # (B, nh, S, hs)
        v = v.view(B, S, self.n_head, self.head_size).transpose(1, 2)  # (B, nh, S, hs)
        return k, v

    def forward(
        self, x: Tensor, encoder_states: Tensor, encoder_mask: Tensor | None = None,
        cache: KVCache | None = None, layer: int = 0,
    ) -> Tensor:
        """x (B, T, C), encoder_states (B, S, C_enc), encoder_mask (B, 1, 1, S) bool or None."""
        B, T, _ = x.shape
        q = self.q(x).view(B, T, self.n_head, self.head_size).transpose(1, 2)  # (B, nh, T, hs)
        if cache is not None:
            k, v = cache.cross(layer, lambda: self.keys_values(encoder_states))  # (B, nh, S, hs)
        else:
            k, v = self.keys_values(encoder_states)  # (B, nh, S, hs)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=encoder_mask, dropout_p=self.attn_dropout if self.training else 0.0
        )  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, self.n_head * self.head_size)  # (B, T, nh*hs)
        return self.resid_drop(self.proj(y))  # (B, T, C)


class MLP(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        assert config.intermediate_size is not None
        self.fc = nn.Linear(config.n_embd, config.intermediate_size, bias=config.bias)
        self.proj = nn.Linear(config.intermediate_size, config.n_embd, bias=config.bias)
        self.drop = nn.Dropout(config.dropout)
        self.activation = config.activation

    def forward(self, x: Tensor) -> Tensor:
        h = self.fc(x)  # (B, T, I)
        if self.activation == "relu":
            h = F.relu(h)
        else:
            h = F.gelu(h, approximate="tanh" if self.activation == "gelu_tanh" else "none")
        return self.drop(self.proj(h))  # (B, T, C)


class Block(nn.Module):
    """One transformer layer. ``causal`` picks the mask, ``config.norm`` pre- or post-LN.

    ``cross_attention`` adds a sublayer between self-attention and the MLP that attends to
    ``encoder_states`` (B, S, C_enc) under ``encoder_mask`` (B, 1, 1, S), normalised like
    the other two (its LayerNorm is ``ln_cross``).
    """

    def __init__(self, config: ModelConfig, causal: bool, n_head: int | None = None, *,
                 cross_attention: bool = False) -> None:
        super().__init__()
        C, eps = config.n_embd, config.layer_norm_eps
        self.pre_norm = config.norm == "pre"
        self.ln_1 = nn.LayerNorm(C, eps=eps, bias=config.bias)
        self.attn = SelfAttention(config, causal, n_head)
        self.ln_2 = nn.LayerNorm(C, eps=eps, bias=config.bias)
        self.mlp = MLP(config)
        self.ln_cross = nn.LayerNorm(C, eps=eps, bias=config.bias) if cross_attention else None
        self.cross_attn = CrossAttention(config) if cross_attention else None

    def forward(
        self, x: Tensor, mask: Tensor | None = None, cache: KVCache | None = None, layer: int = 0, *,
        causal: bool | None = None, encoder_states: Tensor | None = None, encoder_mask: Tensor | None = None,
    ) -> Tensor:
        cross = self.cross_attn
        if cross is not None and encoder_states is None:
            raise ValueError("this block has cross-attention: pass encoder_states")
        if self.pre_norm:  # GPT-2
            x = x + self.attn(self.ln_1(x), mask, cache, layer, causal)
            if cross is not None:
                x = x + cross(self.ln_cross(x), encoder_states, encoder_mask, cache, layer)
            x = x + self.mlp(self.ln_2(x))
        else:  # BERT
            x = self.ln_1(x + self.attn(x, mask, cache, layer, causal))
            if cross is not None:
                x = self.ln_cross(x + cross(x, encoder_states, encoder_mask, cache, layer))
            x = self.ln_2(x + self.mlp(x))
        return x  # (B, T, C)


def init_weights(module: nn.Module, config: ModelConfig) -> None:
    """Normal(0, initializer_range) for weights, zeros for biases; GPT-2 scales residual projections."""
    std = config.initializer_range
    for name, m in module.named_modules():
        if isinstance(m, nn.Linear):
            scale = 1.0
            if config.family in ("gpt", "hybrid") and name.endswith(("attn.proj", "mlp.proj")):
                scale = 1.0 / math.sqrt(2 * config.n_layer)
            nn.init.normal_(m.weight, mean=0.0, std=std * scale)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, mean=0.0, std=std)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

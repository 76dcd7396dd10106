"""bert2gpt: a bidirectional encoder and a GPT decoder whose blocks cross-attend to it.

Both halves are the existing models on the shared ``Block``: the encoder is a BERT (or a
hybrid, read bidirectionally) without a head; the decoder is a GPT built with
``config.cross_attention`` (every block gets a cross-attention sublayer) and its tied LM
head. The two sides may use different vocabularies (a source tokenizer for the encoder, a
target tokenizer for the decoder): each sub-config carries its own ``vocab_size`` and pad id.

* :meth:`EncoderDecoder.forward` trains: ``(src_idx, idx, targets) -> (logits, loss)``, the
  targets shifted by the data code as for a GPT.
* :meth:`EncoderDecoder.from_models` starts from a pre-trained encoder and decoder (any
  gptbert BERT / GPT, e.g. loaded from a run directory or a Hugging Face checkpoint;
  :func:`gptbert.io.checkpoint.load_encoder_decoder` takes their paths). Only the
  cross-attention is new, and its output projection starts at zero: the decoder first
  computes exactly what the GPT it came from computed.
* :meth:`EncoderDecoder.conditioned` binds a batch of sources and returns a module that
  decodes like a GPT, which ``gptbert.generate`` uses: the encoder runs once, and each
  layer's cross-attention keys / values are computed once into the ``KVCache``.
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn
from torch import Tensor

from gptbert.config import ModelConfig
from gptbert.models.bert import BERT
from gptbert.models.hybrid import Hybrid
from gptbert.models.gpt import GPT

NEW_IN_DECODER = ("ln_cross.", "cross_attn.")
"""Parameter names of a decoder block that a plain GPT does not have."""


def _copy_weights(target: nn.Module, source: nn.Module, *, new: tuple[str, ...] = ()) -> None:
    """Load ``source``'s tensors into ``target`` by name; source tensors ``target`` has no place for
    (a head it does not use) are dropped, and only names containing one of ``new`` may be missing."""
    wanted = target.state_dict()
    state = {k: v for k, v in source.state_dict().items() if k in wanted}
    missing = [k for k in wanted if k not in state and not any(n in k for n in new)]
    if missing:
        raise ValueError(f"{type(source).__name__} lacks {len(missing)} tensor(s) the part needs: {missing[:5]}")
    bad = [k for k, v in state.items() if v.shape != wanted[k].shape]
    if bad:
        raise ValueError(f"shape mismatch for {bad[:5]}")
    target.load_state_dict(state, strict=False)


class EncoderDecoder(nn.Module):
    """``config.encoder`` (family 'bert' or 'hybrid') -> states (B, S, C_enc) -> ``config.decoder``
    (family 'gpt', cross-attention on) -> next-token logits (B, T, V_dec)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.family != "encdec" or config.encoder is None or config.decoder is None:
            raise ValueError(f"EncoderDecoder needs a config of family 'encdec', got {config.family!r}")
        self.config = config
        self.encoder = (Hybrid if config.encoder.family == "hybrid" else BERT)(config.encoder)
        self.decoder = GPT(config.decoder)

    @classmethod
    def from_models(cls, encoder: nn.Module, decoder: nn.Module) -> "EncoderDecoder":
        """An encoder-decoder whose halves start from ``encoder`` (a BERT / hybrid) and ``decoder`` (a GPT).

        Their heads are dropped (the decoder keeps or gains the tied LM head); the new
        cross-attention is randomly initialised with a zero output projection.
        """
        enc, dec = ModelConfig.of(encoder), ModelConfig.of(decoder)
        config = ModelConfig(name=f"{enc.name}2{dec.name}", family="encdec", encoder=enc, decoder=dec)
        model = cls(config)
        _copy_weights(model.encoder, encoder)
        _copy_weights(model.decoder, decoder, new=NEW_IN_DECODER)
        for block in model.decoder.blocks:
            nn.init.zeros_(block.cross_attn.proj.weight)
            if block.cross_attn.proj.bias is not None:
                nn.init.zeros_(block.cross_attn.proj.bias)
        return model

    def encode(self, src_idx: Tensor, *, src_mask: Tensor | None = None) -> Tensor:
        """Encoder states, bidirectional. src_idx (B, S) -> (B, S, C_enc)."""
        return self.encoder.encode(src_idx, attention_mask=src_mask)

    def forward(
        self,
        src_idx: Tensor,
        idx: Tensor,
        targets: Tensor | None = None,
        *,
        src_mask: Tensor | None = None,
        attention_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """src_idx (B, S) with src_mask (B, S); idx (B, T) with attention_mask (B, T) -> logits (B, T, V)."""
        states = self.encode(src_idx, src_mask=src_mask)  # (B, S, C_enc)
        return self.decoder(idx, targets, attention_mask=attention_mask, encoder_states=states, encoder_mask=src_mask)

    def conditioned(self, src_idx: Tensor, src_mask: Tensor | None = None) -> "ConditionedDecoder":
        """The decoder bound to these sources (B, S): call it like a GPT, hand it to ``gptbert.generate``."""
        return ConditionedDecoder(self, src_idx, src_mask)


class ConditionedDecoder(nn.Module):
    """An encoder-decoder's decoder with its sources bound: ``forward`` has GPT's signature.

    The encoder runs on the first call (under whatever mode the caller set, e.g. generate's
    inference mode) and its states are reused at every step. A decoding batch that repeats
    each source k times (beam search: B * num_beams rows) gets the states repeated to match.
    ``config`` and ``blocks`` are the decoder's, so ``KVCache.for_model`` sizes the cache.
    """

    def __init__(self, model: EncoderDecoder, src_idx: Tensor, src_mask: Tensor | None = None) -> None:
        super().__init__()
        self.model = model
        self.config = model.config.decoder
        device = next(model.parameters()).device
        self.src_idx = src_idx.to(device)  # (B, S)
        self.src_mask = src_mask.to(device) if src_mask is not None else None  # (B, S)
        self._states: Tensor | None = None
        self._expanded: tuple[Tensor, Tensor | None] | None = None
        self.train(model.training)

    @property
    def blocks(self) -> nn.ModuleList:
        return self.model.decoder.blocks

    def encoder_states(self, batch_size: int) -> tuple[Tensor, Tensor | None]:
        """(states (batch_size, S, C_enc), mask (batch_size, S) or None), encoding on the first call."""
        if self._states is None:
            self._states = self.model.encode(self.src_idx, src_mask=self.src_mask)  # (B, S, C_enc)
        B = self._states.size(0)
        if batch_size == B:
            return self._states, self.src_mask
        if batch_size % B:
            raise ValueError(f"a decoding batch of {batch_size} rows does not repeat the {B} sources")
        if self._expanded is None or self._expanded[0].size(0) != batch_size:
            k = batch_size // B
            mask = self.src_mask.repeat_interleave(k, dim=0) if self.src_mask is not None else None
            self._expanded = (self._states.repeat_interleave(k, dim=0), mask)  # (B*k, S, C_enc), (B*k, S)
        return self._expanded

    def forward(self, idx: Tensor, targets: Tensor | None = None, **kwargs: Any) -> tuple[Tensor, Tensor | None]:
        """The decoder's forward (``attention_mask``, ``position_ids``, ``cache``, ``last_only``) on the bound sources."""
        states, mask = self.encoder_states(idx.size(0))
        return self.model.decoder(idx, targets, encoder_states=states, encoder_mask=mask, **kwargs)

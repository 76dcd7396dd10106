"""Input preparation (left padding, truncation) and the greedy / sampling loop over one KV cache."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch import Tensor

from gptbert.models.transformer import KVCache
from gptbert.generate.processing import GenerationConfig, TokenizerLike, _process


# ----------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------


DECODER_FAMILIES = ("gpt", "hybrid")
"""Families that decode causally with an 'lm' head (a hybrid in its causal mode)."""


def _model_info(model: nn.Module) -> tuple[int, torch.dtype, torch.device]:
    config = getattr(model, "config", None)
    family = getattr(config, "family", None)
    if family == "encdec":
        raise ValueError("an encoder-decoder generates from sources: pass generate(..., source=src_ids)")
    if config is None or family not in DECODER_FAMILIES or getattr(config, "head", None) != "lm":
        raise ValueError("generate() needs a GPT or hybrid model with an 'lm' head "
                         "(ModelConfig(family='gpt', head='lm')), or an encoder-decoder with source=")
    p = next(model.parameters())
    return config.block_size, p.dtype, p.device


def _left_pad(prompts: Sequence[Sequence[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """Prompt id lists -> ids (B, T) and mask (B, T), padded on the left."""
    if not prompts:
        raise ValueError("generate(): no prompts")
    T = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), T), pad_id, dtype=torch.long)
    mask = torch.zeros(len(prompts), T, dtype=torch.long)
    for i, p in enumerate(prompts):
        if not len(p):
            raise ValueError(f"generate(): prompt {i} is empty; give at least one token (e.g. a BOS/EOS id)")
        ids[i, T - len(p):] = torch.as_tensor(list(p), dtype=torch.long)
        mask[i, T - len(p):] = 1
    return ids, mask


def _prepare(
    idx: Tensor, attention_mask: Tensor | None, cfg: GenerationConfig, block_size: int, device: torch.device
) -> tuple[Tensor, Tensor | None]:
    """Check and truncate the prompt; returns ids (B, T) and a bool mask (B, T) or None without padding."""
    if idx.dim() != 2:
        raise ValueError(f"generate(): expected prompt ids of shape (B, T), got {tuple(idx.shape)}")
    if cfg.max_new_tokens >= block_size:
        raise ValueError(
            f"max_new_tokens ({cfg.max_new_tokens}) must be smaller than the model's block_size ({block_size}): "
            "no room would be left for the prompt"
        )
    if attention_mask is not None and attention_mask.shape != idx.shape:
        raise ValueError(
            f"attention_mask shape {tuple(attention_mask.shape)} differs from the prompt's {tuple(idx.shape)}"
        )
    room = block_size - cfg.max_new_tokens
    if idx.size(1) > room:
        warnings.warn(
            f"prompt of {idx.size(1)} tokens truncated to its last {room} (block_size {block_size} - "
            f"max_new_tokens {cfg.max_new_tokens})",
            stacklevel=3,
        )
        idx = idx[:, -room:]
        attention_mask = attention_mask[:, -room:] if attention_mask is not None else None
    if idx.size(1) == 0:
        raise ValueError("generate(): empty prompt; give at least one token (e.g. a BOS/EOS id)")
    idx = idx.to(device=device, dtype=torch.long)
    if attention_mask is None:
        return idx, None
    mask = attention_mask.to(device=device).bool()
    if not bool(mask[:, -1].all()) or bool((mask[:, 1:] < mask[:, :-1]).any()):
        raise ValueError("attention_mask must be left-padded: zeros (if any) first, then ones up to the last column")
    if bool(mask.all()):
        return idx, None  # no padding: the fast path
    return idx, mask


# ----------------------------------------------------------------------------------------
# Decoding loop: greedy and sampling
# ----------------------------------------------------------------------------------------


class _StopStrings:
    """Checks the decoded tail of each row's new tokens for stop strings."""

    def __init__(self, tokenizer: TokenizerLike, stop_strings: list[str]) -> None:
        self.tokenizer = tokenizer
        self.stop_strings = stop_strings
        # A character is at most 4 bytes, i.e. at most 4 byte-level tokens.
        self.window = 4 * max(len(s) for s in stop_strings) + 4

    def hit(self, new_ids: Sequence[int]) -> bool:
        text = self.tokenizer.decode(list(new_ids[-self.window:]), skip_special_tokens=True)
        return any(s in text for s in self.stop_strings)


@dataclass
class _Run:
    """State shared by the decoding loop and its consumer."""

    out: Tensor  # (B, T + max_new) prompt then new tokens, pad after a row finished
    lengths: Tensor  # (B,) new tokens of each row up to and including its stop token
    n_new: int = 0  # columns generated so far


def _decode_steps(
    model: nn.Module,
    idx: Tensor,
    mask: Tensor | None,
    cfg: GenerationConfig,
    run: _Run,
    *,
    stopper: _StopStrings | None = None,
    generator: torch.Generator | None = None,
) -> Iterator[Tensor]:
    """Greedy or sampled decoding; yields the new token of every row (B,) after each step.

    One ``KVCache`` holds prompt + new tokens; the prompt is run once (prefill), then
    one token per step with ``last_only=True``. Work is done inside ``inference_mode``
    blocks that do not span a ``yield``, so a consumer is never left in inference mode.
    """
    B, T = idx.shape
    max_new = cfg.max_new_tokens
    out = run.out
    dtype, device = next(model.parameters()).dtype, idx.device
    with torch.inference_mode():
        cache = KVCache.for_model(model, B, T + max_new - 1, dtype=dtype, device=device)
        if mask is not None:
            full_mask = torch.ones(B, T + max_new, dtype=torch.bool, device=device)  # (B, T + max_new)
            full_mask[:, :T] = mask
            positions = (mask.long().cumsum(-1) - 1).clamp_min(0)  # (B, T); pads get 0 like HF
            step_positions = positions[:, -1:] + torch.arange(1, max_new + 1, device=device)  # (B, max_new)
            logits, _ = model(idx, attention_mask=mask, position_ids=positions, cache=cache, last_only=True)
        else:
            full_mask = step_positions = None
            logits, _ = model(idx, cache=cache, last_only=True)  # (B, 1, V)
        history = None
        if cfg.repetition_penalty != 1.0:
            history = out.clone()  # left pads replaced by a real token of the row: they are not "present"
            if mask is not None:
                history[:, :T] = torch.where(mask, idx, idx[:, -1:])
        eos = torch.tensor(cfg.eos_ids, device=device) if cfg.eos_ids else None
        finished = torch.zeros(B, dtype=torch.bool, device=device) if (eos is not None or stopper) else None
        pad = cfg.pad_id
        needs_float = history is not None or cfg.sampling
    for step in range(max_new):
        col = T + step
        with torch.inference_mode():
            scores = logits[:, -1, :]  # (B, V)
            if needs_float:
                scores = _process(scores.float(), history[:, :col] if history is not None else None, cfg)
            if cfg.sampling:
                nxt = torch.multinomial(scores.softmax(dim=-1), 1, generator=generator).squeeze(1)  # (B,)
            else:
                nxt = scores.argmax(dim=-1)  # (B,)
            if finished is not None:
                nxt = nxt.masked_fill(finished, pad)
                run.lengths += ~finished
            out[:, col] = nxt
            if history is not None:
                history[:, col] = nxt
            run.n_new = step + 1
            if finished is not None:
                if eos is not None:
                    finished |= (nxt[:, None] == eos).any(-1)
                if stopper is not None:
                    for b in (~finished).nonzero().flatten().tolist():
                        if stopper.hit(out[b, T:col + 1].tolist()):
                            finished[b] = True
        yield nxt
        if step + 1 == max_new or (finished is not None and bool(finished.all())):
            return
        with torch.inference_mode():
            if full_mask is not None:
                logits, _ = model(
                    nxt[:, None], attention_mask=full_mask[:, : col + 1],
                    position_ids=step_positions[:, step : step + 1], cache=cache, last_only=True,
                )
            else:
                logits, _ = model(nxt[:, None], cache=cache, last_only=True)

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

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from gptbert.models.transformer import KVCache

__all__ = [
    "GenerationConfig",
    "generate",
    "generate_text",
    "stream",
    "apply_repetition_penalty",
    "top_k_filter",
    "top_p_filter",
]


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


# ----------------------------------------------------------------------------------------
# Beam search
# ----------------------------------------------------------------------------------------


def _beam_search(
    model: nn.Module, idx: Tensor, mask: Tensor | None, cfg: GenerationConfig, *, stopper: _StopStrings | None = None
) -> tuple[Tensor, Tensor]:
    """Beam search with a length penalty; returns (best sequences (B, T + n), new lengths (B,)).

    Each step takes the best K = max(2, 1 + n_eos) * num_beams continuations over all
    beams of a row; those among the first num_beams that end (eos, a stop string or the
    last step) become finished hypotheses scored sum(log p) / length ** length_penalty,
    the best num_beams unfinished ones keep running, and the cache rows are reordered
    to follow them. A row stops once no running beam can beat its finished ones.
    """
    B, T = idx.shape
    nb, max_new, lp = cfg.num_beams, cfg.max_new_tokens, cfg.length_penalty
    dtype, device = next(model.parameters()).dtype, idx.device
    L = T + max_new
    K = max(2, 1 + len(cfg.eos_ids)) * nb
    neg = float("-inf")

    cache = KVCache.for_model(model, B * nb, L - 1, dtype=dtype, device=device)
    flat_idx = idx.repeat_interleave(nb, dim=0)  # (B*nb, T)
    full_mask = step_positions = None
    if mask is not None:
        flat_mask = mask.repeat_interleave(nb, dim=0)
        full_mask = torch.ones(B * nb, L, dtype=torch.bool, device=device)
        full_mask[:, :T] = flat_mask
        positions = (flat_mask.long().cumsum(-1) - 1).clamp_min(0)
        step_positions = positions[:, -1:] + torch.arange(1, max_new + 1, device=device)
        logits, _ = model(flat_idx, attention_mask=flat_mask, position_ids=positions, cache=cache, last_only=True)
    else:
        logits, _ = model(flat_idx, cache=cache, last_only=True)

    pad = cfg.pad_id
    running = torch.full((B, nb, L), pad, dtype=torch.long, device=device)  # (B, nb, L)
    running[:, :, :T] = idx[:, None, :]
    run_scores = torch.zeros(B, nb, device=device)
    run_scores[:, 1:] = neg  # all beams start identical: expand only the first
    done_seq = running.clone()  # finished hypotheses, best first
    done_scores = torch.full((B, nb), neg, device=device)
    done_len = torch.zeros(B, nb, dtype=torch.long, device=device)
    done_flag = torch.zeros(B, nb, dtype=torch.bool, device=device)
    can_improve = torch.ones(B, dtype=torch.bool, device=device)
    eos = torch.tensor(cfg.eos_ids, device=device) if cfg.eos_ids else None
    in_top = torch.arange(K, device=device) < nb  # (K,)
    row_offset = torch.arange(B, device=device)[:, None] * nb  # (B, 1)
    prompt_hist = flat_idx if mask is None else torch.where(flat_mask, flat_idx, flat_idx[:, -1:])  # pads not 'present'

    for step in range(max_new):
        col = T + step
        logp = F.log_softmax(logits[:, -1, :].float(), dim=-1)  # (B*nb, V)
        if cfg.repetition_penalty != 1.0:
            hist = torch.cat((prompt_hist, running[:, :, T:col].reshape(B * nb, step)), dim=1)  # (B*nb, col)
            apply_repetition_penalty(logp, hist, cfg.repetition_penalty)
        V = logp.size(-1)
        total = (logp.view(B, nb, V) + run_scores[:, :, None]).view(B, nb * V)
        top_scores, top_idx = total.topk(K, dim=-1)  # (B, K)
        src = top_idx // V  # (B, K) beam each candidate extends
        tok = top_idx % V
        cand = running.gather(1, src[:, :, None].expand(B, K, L))  # (B, K, L), a new tensor
        cand[:, :, col] = tok
        ends = torch.full((B, K), step + 1 == max_new, dtype=torch.bool, device=device)
        if eos is not None:
            ends |= (tok[:, :, None] == eos).any(-1)
        if stopper is not None:
            for b, k in (~ends).nonzero().tolist():
                if stopper.hit(cand[b, k, T : col + 1].tolist()):
                    ends[b, k] = True

        # Finished hypotheses: only candidates ranked within the first nb count.
        fin_scores = top_scores / float(step + 1) ** lp
        allowed = ends & in_top & can_improve[:, None]
        if cfg.early_stopping is True:
            allowed &= ~done_flag.all(dim=1, keepdim=True)
        fin_scores = fin_scores.masked_fill(~allowed, neg)
        m_scores = torch.cat((done_scores, fin_scores), dim=1)  # (B, nb + K)
        keep = m_scores.topk(nb, dim=-1).indices  # (B, nb)
        done_scores = m_scores.gather(1, keep)
        done_flag = torch.cat((done_flag, allowed), dim=1).gather(1, keep)
        done_len = torch.cat((done_len, torch.full_like(fin_scores, step + 1, dtype=torch.long)), dim=1).gather(1, keep)
        done_seq = torch.cat((done_seq, cand), dim=1).gather(1, keep[:, :, None].expand(B, nb, L))

        # Running beams: the best nb candidates that did not end.
        r_scores = top_scores.masked_fill(ends, neg)
        nxt = r_scores.topk(nb, dim=-1).indices  # (B, nb)
        run_scores = r_scores.gather(1, nxt)
        running = cand.gather(1, nxt[:, :, None].expand(B, nb, L))
        beam_src = src.gather(1, nxt)  # (B, nb)

        # Can a running beam still beat the worst finished hypothesis?
        length = max_new if (cfg.early_stopping == "never" and lp > 0) else step + 1
        best_possible = run_scores[:, 0] / float(length) ** lp
        worst = torch.where(done_flag.all(dim=1), done_scores.min(dim=1).values, torch.full_like(best_possible, neg))
        can_improve &= best_possible > worst
        if step + 1 == max_new or not bool(can_improve.any()) or bool(ends.all()):
            break
        if cfg.early_stopping is True and bool(done_flag.all()):
            break
        cache.reorder((beam_src + row_offset).flatten())
        tokens = running[:, :, col].reshape(B * nb, 1)
        if full_mask is not None:
            logits, _ = model(
                tokens, attention_mask=full_mask[:, : col + 1], position_ids=step_positions[:, step : step + 1],
                cache=cache, last_only=True,
            )
        else:
            logits, _ = model(tokens, cache=cache, last_only=True)

    best_len = done_len[:, 0]
    n = int(best_len.max())
    return done_seq[:, 0, : T + n], best_len


# ----------------------------------------------------------------------------------------
# Public entry points
# ----------------------------------------------------------------------------------------


def _resolve_config(config: GenerationConfig | None, overrides: dict[str, Any]) -> GenerationConfig:
    cfg = config if config is not None else GenerationConfig()
    return cfg.replace(**overrides) if overrides else cfg


def _make_generator(
    cfg: GenerationConfig, device: torch.device, generator: torch.Generator | None
) -> torch.Generator | None:
    if generator is not None or not cfg.sampling or cfg.seed is None:
        return generator
    return torch.Generator(device=device).manual_seed(cfg.seed)


def _stopper(cfg: GenerationConfig, tokenizer: TokenizerLike | None) -> _StopStrings | None:
    if not cfg.stop_strings:
        return None
    if tokenizer is None:
        raise ValueError("stop_strings need a tokenizer: pass generate(..., tokenizer=...)")
    return _StopStrings(tokenizer, cfg.stop_strings)


def generate(
    model: nn.Module,
    idx: Tensor | Sequence[Sequence[int]],
    config: GenerationConfig | None = None,
    *,
    attention_mask: Tensor | None = None,
    source: Tensor | None = None,
    source_mask: Tensor | None = None,
    tokenizer: TokenizerLike | None = None,
    generator: torch.Generator | None = None,
    **overrides: Any,
) -> Tensor | list[list[int]]:
    """Continue prompts with a GPT or hybrid model (``head='lm'``), or an encoder-decoder.

    An encoder-decoder (bert2gpt) needs ``source``, the encoder's ids (B, S) with
    ``source_mask`` (B, S) where they are padded; it decodes through
    ``model.conditioned(source, source_mask)`` (the encoder runs once).

    ``idx`` is either a (B, T) tensor of ids, left-padded with ``attention_mask`` (B, T)
    where rows differ in length, or a list of prompt id lists (padded here). Keyword
    ``overrides`` replace fields of ``config`` (e.g. ``max_new_tokens=20``).

    Returns, for a tensor, a (B, T + n) tensor of prompt then new tokens (rows that
    stopped early are filled with the pad id; n <= max_new_tokens); for lists, the new
    tokens of each prompt up to and including the one that stopped it. A prompt longer
    than ``block_size - max_new_tokens`` keeps its end. ``tokenizer`` is needed only
    for ``stop_strings``; ``generator`` overrides ``config.seed``.
    """
    cfg = _resolve_config(config, overrides)
    if source is not None:
        model = model.conditioned(source, source_mask)  # type: ignore[operator]
    block_size, _, device = _model_info(model)
    as_lists = not isinstance(idx, Tensor)
    if as_lists:
        if attention_mask is not None:
            raise ValueError("attention_mask is only for a (B, T) tensor of ids; lists are padded here")
        idx, attention_mask = _left_pad(idx, cfg.pad_id)  # type: ignore[arg-type]
    assert isinstance(idx, Tensor)
    ids, mask = _prepare(idx, attention_mask, cfg, block_size, device)
    stopper = _stopper(cfg, tokenizer)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            if cfg.num_beams > 1:
                out, lengths = _beam_search(model, ids, mask, cfg, stopper=stopper)
            else:
                B, T = ids.shape
                run = _Run(
                    out=torch.full((B, T + cfg.max_new_tokens), cfg.pad_id, dtype=torch.long, device=device),
                    lengths=torch.zeros(B, dtype=torch.long, device=device),
                )
                run.out[:, :T] = ids
                for _ in _decode_steps(model, ids, mask, cfg, run, stopper=stopper,
                                       generator=_make_generator(cfg, device, generator)):
                    pass
                if not cfg.eos_ids and stopper is None:
                    run.lengths.fill_(run.n_new)
                out, lengths = run.out[:, : T + run.n_new], run.lengths
    finally:
        model.train(was_training)
    out = out.clone()  # a normal tensor, not an inference-mode one
    if not as_lists:
        return out
    T = ids.size(1)
    return [row[T : T + n] for row, n in zip(out.tolist(), lengths.tolist())]


def _end_id(tokenizer: TokenizerLike) -> int | None:
    """The id that ends a text: EOS, or [SEP] for a WordPiece tokenizer (which has no EOS)."""
    eos = getattr(tokenizer, "eos_id", None)
    if eos is None and getattr(tokenizer, "kind", None) == "wordpiece":
        eos = getattr(tokenizer, "sep_id", None)
    return eos


def _ids_of(tokenizer: TokenizerLike, text: str) -> list[int]:
    """A prompt's ids. WordPiece encodes ``[CLS] text [SEP]``: the [SEP] would end the text, so it is dropped."""
    enc = tokenizer.encode(text)
    ids = list(enc.ids if hasattr(enc, "ids") else enc)
    if getattr(tokenizer, "kind", None) == "wordpiece" and len(ids) > 1 and ids[-1] == _end_id(tokenizer):
        ids.pop()
    return ids


def _with_tokenizer_defaults(cfg: GenerationConfig, tokenizer: TokenizerLike) -> GenerationConfig:
    """Use the tokenizer's eos / pad ids where the config names none."""
    changes: dict[str, Any] = {}
    eos = _end_id(tokenizer)
    if cfg.eos_token_id is None and eos is not None:
        changes["eos_token_id"] = eos
    pad = getattr(tokenizer, "pad_id", None)
    if cfg.pad_token_id is None and pad is not None:
        changes["pad_token_id"] = pad
    return cfg.replace(**changes) if changes else cfg


def _cut_at_stop(text: str, stop_strings: list[str] | None) -> str:
    """The text before the first stop string (stop strings are not returned)."""
    if not stop_strings:
        return text
    cut = min((i for i in (text.find(s) for s in stop_strings) if i >= 0), default=len(text))
    return text[:cut]


def generate_text(
    model: nn.Module,
    tokenizer: TokenizerLike,
    prompts: Sequence[str],
    config: GenerationConfig | None = None,
    **overrides: Any,
) -> list[str]:
    """The new text of each prompt (batched, left-padded), cut before any stop string."""
    if isinstance(prompts, str):
        raise ValueError("generate_text() expects a list of prompts, got a single str")
    cfg = _with_tokenizer_defaults(_resolve_config(config, overrides), tokenizer)
    new_ids = generate(model, [_ids_of(tokenizer, p) for p in prompts], cfg, tokenizer=tokenizer)
    return [_cut_at_stop(tokenizer.decode(ids, skip_special_tokens=True), cfg.stop_strings) for ids in new_ids]


class _IncrementalDecoder:
    """Turns a growing list of token ids into text pieces that will not change.

    Each step decodes only a short window: the tokens of the previous piece (as
    context, so tokenizers that drop a leading space decode the same) and the new ones.
    A window ending in U+FFFD is an incomplete character: wait for the next token.
    """

    def __init__(self, tokenizer: TokenizerLike) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.prefix = 0  # ids[prefix:read] is context already emitted, ids[read:] is not
        self.read = 0
        self.text = ""  # everything emitted

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def push(self, token: int) -> str:
        self.ids.append(token)
        context = self._decode(self.ids[self.prefix : self.read])
        window = self._decode(self.ids[self.prefix :])
        if len(window) <= len(context) or window.endswith("\ufffd"):
            return ""
        piece = window[len(context) :]
        self.text += piece
        self.prefix, self.read = self.read, len(self.ids)
        return piece

    def flush(self) -> str:
        """What is left at the end (e.g. an incomplete character, shown as U+FFFD)."""
        final = self._decode(self.ids)
        if not final.startswith(self.text):
            return ""
        piece, self.text = final[len(self.text) :], final
        return piece


def _held_back(text: str, stop_strings: list[str]) -> int:
    """Length of the longest end of ``text`` that could still grow into a stop string."""
    held = 0
    for s in stop_strings:
        for n in range(min(len(s) - 1, len(text)), held, -1):
            if text.endswith(s[:n]):
                held = n
                break
    return held


def stream(
    model: nn.Module,
    tokenizer: TokenizerLike,
    prompt: str | Sequence[int],
    config: GenerationConfig | None = None,
    **overrides: Any,
) -> Iterator[str]:
    """Yield the new text of one prompt piece by piece as tokens are generated.

    Decoding is incremental (``_IncrementalDecoder``): a character split over several
    byte-level tokens comes out whole. Text that could be the start of a stop string is
    held back until it is known not to be; the stop string itself is never emitted. The
    pieces concatenate to ``generate_text``'s result for the same prompt and config.
    """
    cfg = _with_tokenizer_defaults(_resolve_config(config, overrides), tokenizer)
    if cfg.num_beams > 1:
        raise ValueError("stream() decodes one token at a time; beam search is not supported")
    block_size, _, device = _model_info(model)
    ids = _ids_of(tokenizer, prompt) if isinstance(prompt, str) else list(prompt)
    prompt_ids, _ = _prepare(torch.tensor([ids], dtype=torch.long), None, cfg, block_size, device)
    T = prompt_ids.size(1)
    run = _Run(
        out=torch.full((1, T + cfg.max_new_tokens), cfg.pad_id, dtype=torch.long, device=device),
        lengths=torch.zeros(1, dtype=torch.long, device=device),
    )
    run.out[:, :T] = prompt_ids
    stops = cfg.stop_strings or []
    # Stop strings are checked here on the text; the id-level loop stops on eos only.
    steps = _decode_steps(model, prompt_ids, None, cfg.replace(stop_strings=None), run,
                          generator=_make_generator(cfg, device, None))
    decoder = _IncrementalDecoder(tokenizer)
    emitted = 0  # characters of decoder.text already yielded
    was_training = model.training
    model.eval()
    try:
        for nxt in steps:
            decoder.push(int(nxt[0]))
            text = decoder.text
            if stops:
                hits = [i for i in (text.find(s) for s in stops) if i >= 0]
                if hits:
                    if min(hits) > emitted:
                        yield text[emitted : min(hits)]
                    return
                safe = len(text) - _held_back(text, stops)
            else:
                safe = len(text)
            if safe > emitted:
                yield text[emitted:safe]
                emitted = safe
        decoder.flush()
        final = _cut_at_stop(decoder.text, stops)
        if len(final) > emitted:
            yield final[emitted:]
    finally:
        steps.close()
        model.train(was_training)

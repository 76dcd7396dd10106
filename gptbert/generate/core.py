"""The public ``generate``: one entry for greedy, sampling and beam search over token ids."""


from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from gptbert.generate.beam import _beam_search
from gptbert.generate.decoding import _left_pad, _model_info, _prepare, _Run, _StopStrings, _decode_steps
from gptbert.generate.processing import (
    GenerationConfig, TokenizerLike,
)






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

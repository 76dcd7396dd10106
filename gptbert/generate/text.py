"""Text in, text out: ``generate_text`` and ``stream`` over any tokenizer with encode / decode."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn as nn

from gptbert.generate.core import _make_generator, _resolve_config, generate
from gptbert.generate.decoding import _decode_steps, _model_info, _prepare, _Run
from gptbert.generate.processing import GenerationConfig, TokenizerLike


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

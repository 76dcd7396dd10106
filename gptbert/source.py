"""Where a model starts: a preset (random init) or a saved run / Hugging Face directory, with its tokenizer.

:func:`resolve_source` builds or loads the model with the head a task needs;
:func:`family_of` names the family of any of the three; :func:`tokenizer_kind` is the
tokenizer a preset of a family gets (WordPiece for BERT and ELMo, byte-level BPE for GPT).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from gptbert.config import PRESETS, ModelConfig
from gptbert.run import load_run, with_head
from gptbert.tokenizer import Tokenizer

DEFAULT_VOCAB = 8000
"""Entries of a tokenizer trained for a preset when no size is given."""


@dataclass
class Source:
    """Where a model starts: a preset (random init) or a saved run / Hugging Face directory."""

    model: nn.Module
    tokenizer: Tokenizer
    pretrained: bool
    name: str


def tokenizer_kind(family: str) -> str:
    """The tokenizer a preset of ``family`` gets: 'bpe' for GPT, 'wordpiece' for BERT and ELMo."""
    return "bpe" if family == "gpt" else "wordpiece"


def family_of(spec: str) -> str:
    """'bert', 'gpt' or 'elmo' of a preset name or a run / Hugging Face directory."""
    if spec in PRESETS:
        return ModelConfig.from_name(spec).family
    path = Path(spec)
    if not path.is_dir():
        raise ValueError(f"{spec!r} is neither a preset ({', '.join(PRESETS)}) nor a directory")
    from gptbert.io.checkpoint import read_config

    return read_config(path).family


def resolve_source(
    spec: str,
    *,
    head: str | None,
    num_labels: int = 2,
    tokenizer: str | Tokenizer | None = None,
    vocab_size: int | None = None,
    texts: Sequence[str] | None = None,
    files: Sequence[str] | None = None,
    max_len: int = 128,
    seed: int = 0,
    overrides: dict[str, Any] | None = None,
) -> Source:
    """Build or load the model named by ``spec`` with ``head`` on top.

    A preset gets a tokenizer from ``tokenizer`` (a directory) or one trained on
    ``files``/``texts`` with ``vocab_size`` entries; a run or HF directory keeps its own.
    """
    from gptbert.models import build_model

    if spec in PRESETS:
        config = ModelConfig.from_name(spec, **(overrides or {}))
        if isinstance(tokenizer, Tokenizer):
            tok = tokenizer
        elif tokenizer:
            tok = Tokenizer.load(tokenizer)
        else:
            kind = tokenizer_kind(config.family)
            size = vocab_size or DEFAULT_VOCAB
            if files:
                tok = Tokenizer.train(list(files), kind=kind, vocab_size=size, show_progress=False)
            elif texts:
                tok = Tokenizer.from_texts(list(texts), kind=kind, vocab_size=size, show_progress=False)
            else:
                raise ValueError(f"preset {spec!r} needs --tokenizer DIR or training text to build one")
        if max_len > config.block_size:
            raise ValueError(f"max_len {max_len} exceeds {spec}'s block_size {config.block_size}")
        config = config.replace(vocab_size=tok.vocab_size, pad_token_id=tok.pad_id, head=head, num_labels=num_labels)
        torch.manual_seed(seed)
        return Source(build_model(config), tok, pretrained=False, name=spec)
    path = Path(spec)
    if not path.is_dir():
        raise ValueError(f"{spec!r} is neither a preset ({', '.join(PRESETS)}) nor a directory")
    run = load_run(path)
    if run.tokenizer is None:
        raise ValueError(f"{path}: no tokenizer files (tokenizer.json, vocab.txt or vocab.json)")
    model = run.model
    config: ModelConfig = model.config  # type: ignore[no-redef]
    if config.head != head or (head in ("classify", "tokens") and config.num_labels != num_labels):
        torch.manual_seed(seed)
        model = with_head(model, head, num_labels=num_labels)
    if max_len > model.config.block_size:  # type: ignore[union-attr]
        raise ValueError(f"max_len {max_len} exceeds the model's block_size {model.config.block_size}")  # type: ignore[union-attr]
    return Source(model, run.tokenizer, pretrained=True, name=path.name)

"""Models: one shared transformer (``transformer.py``), BERT, GPT, an ELMo-style biLSTM, the GPT-BERT
hybrid (``hybrid.py``) and the BERT-encoder + GPT-decoder ``encdec.py``."""

from __future__ import annotations

import torch.nn as nn

from gptbert.config import ModelConfig


def build_model(config: ModelConfig) -> nn.Module:
    """The model of ``config.family`` with the head ``config.head``, randomly initialised."""
    if config.family == "bert":
        from gptbert.models.bert import BERT

        return BERT(config)
    if config.family == "gpt":
        from gptbert.models.gpt import GPT

        return GPT(config)
    if config.family == "elmo":
        from gptbert.models.elmo import ELMo

        return ELMo(config)
    if config.family == "hybrid":
        from gptbert.models.hybrid import Hybrid

        return Hybrid(config)
    if config.family == "encdec":
        from gptbert.models.encdec import EncoderDecoder

        return EncoderDecoder(config)
    raise ValueError(f"unknown model family {config.family!r}")


def config_of(model: nn.Module) -> ModelConfig:
    """The ``ModelConfig`` a gptbert model carries in ``.config`` (a TypeError for any other module)."""
    return ModelConfig.of(model)


def count_parameters(model: nn.Module, *, non_embedding: bool = False) -> int:
    """Unique parameters (tied weights counted once); optionally without embedding tables."""
    seen: set[int] = set()
    total = 0
    for module in model.modules():
        for p in module.parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            if non_embedding and isinstance(module, nn.Embedding):
                continue
            total += p.numel()
    return total

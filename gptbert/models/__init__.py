"""Models: one shared transformer (``transformer.py``), BERT, GPT, an ELMo-style biLSTM, the GPT-BERT
hybrid (``hybrid.py``) and the BERT-encoder + GPT-decoder ``encdec.py``."""

from __future__ import annotations

import torch.nn as nn

from gptbert.config import ModelConfig


def available_memory_bytes() -> int | None:
    """Memory this process could still allocate (Linux MemAvailable), None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_model_fits(config: ModelConfig) -> None:
    """ValueError naming the config's size fields when the fp32 weights of ``config`` alone would
    not fit in the memory available now, checked from the config before anything is allocated."""
    import torch

    from gptbert.flops import count_parameters_analytic

    if torch.get_default_device().type == "meta":  # shapes only: nothing is allocated
        return
    count = count_parameters_analytic(config)
    available = available_memory_bytes()
    if count is None or available is None:
        return
    need = 4 * count.total
    if need > available:
        raise ValueError(
            f"ModelConfig: n_layer={config.n_layer}, n_embd={config.n_embd}, vocab_size={config.vocab_size} "
            f"make {count.total:,} parameters ({need / 1e9:,.1f} GB in fp32), more than the "
            f"{available / 1e9:,.1f} GB of memory available; check the config")


def build_model(config: ModelConfig) -> nn.Module:
    """The model of ``config.family`` with the head ``config.head``, randomly initialised
    (after :func:`check_model_fits`)."""
    check_model_fits(config)
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

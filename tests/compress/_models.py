"""Tiny models and batches shared by the compression tests."""

from __future__ import annotations

import torch

from gptbert.config import ModelConfig
from gptbert.models import build_model

VOCAB = 97


def tiny(family: str = "bert", head: str | None = "classify", **kw) -> torch.nn.Module:
    """A 2-layer, 4-head, 32-wide model in eval mode, seeded."""
    torch.manual_seed(0)
    base = dict(family=family, n_layer=2, n_head=4, n_embd=32, intermediate_size=64, block_size=32,
                vocab_size=VOCAB, head=head, num_labels=3, dropout=0.0)
    base.update(kw)
    return build_model(ModelConfig(**base)).eval()


def batch(b: int = 3, t: int = 12, *, pad: bool = True, seed: int = 0) -> dict[str, torch.Tensor]:
    """{"idx": (b, t), "attention_mask": (b, t)} with the second row right-padded when ``pad``."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(1, VOCAB, (b, t), generator=g)
    mask = torch.ones_like(idx)
    if pad:
        mask[1, t - 4 :] = 0
    return {"idx": idx, "attention_mask": mask}


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b|| in fp32."""
    a, b = a.float(), b.float()
    return float((a - b).norm() / b.norm())

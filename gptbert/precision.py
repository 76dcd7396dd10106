"""Numeric precision: the one autocast switch used by training, evaluation, inference and serving.

``fp32`` runs as stored; ``bf16`` runs matrix products under ``torch.autocast`` to bfloat16
(weights stay fp32). Which one is faster depends on the machine (AMX and GPUs: bf16; AVX2-only
CPUs emulate bf16 and are several times slower), so it is chosen by measurement, never assumed.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

PRECISIONS = ("fp32", "bf16")
"""Compute precisions of training and inference (int8 is a compression method, see gptbert.compress)."""


def autocast(precision: str, device: torch.device | str = "cpu") -> contextlib.AbstractContextManager[Any]:
    """The context that runs ``precision`` on ``device``: bf16 autocast, or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    if precision != "fp32":
        raise ValueError(f"precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")
    return contextlib.nullcontext()

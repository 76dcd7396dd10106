"""Numeric precision: the one autocast switch used by training, evaluation, inference and serving.

``fp32`` runs as stored; ``bf16`` runs matrix products under ``torch.autocast`` to bfloat16
(weights stay fp32). Which one is faster depends on the machine (AMX and GPUs: bf16; AVX2-only
CPUs emulate bf16 and are several times slower), so it is chosen by measurement, never assumed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
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


# --------------------------------------------------------------------------- 'auto': pick by measurement

PROBE_SIZE = 384
"""Side of the square matrices the probe multiplies (a transformer-sized product, ~0.11 GFLOP)."""
CLEARLY_FASTER = 1.3
"""bf16 is picked only when its measured matmul rate is at least this many times fp32's."""


@dataclasses.dataclass(frozen=True)
class PrecisionChoice:
    """What ``--precision auto`` picked, and the measurement it picked from."""

    precision: str
    """'fp32' or 'bf16'."""
    reason: str
    fp32_gflops: float | None = None
    bf16_gflops: float | None = None
    device: str = "cpu"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _matmul_gflops(dtype: torch.dtype, device: torch.device, *, n: int, seconds: float) -> float:
    """Measured GFLOP/s of an n x n matrix product in ``dtype`` (best of short rounds)."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    flop = 2.0 * n**3
    a @ b  # warm-up: kernel selection, packing
    best = float("inf")
    deadline = time.perf_counter() + seconds
    reps = 0
    while reps < 2 or (time.perf_counter() < deadline and reps < 50):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - t0)
        reps += 1
    return flop / best / 1e9


def probe(device: torch.device | str = "cpu", *, n: int = PROBE_SIZE, seconds: float = 0.15) -> tuple[float, float]:
    """(fp32 GFLOP/s, bf16 GFLOP/s) of a matrix product on ``device``: a sub-second measurement."""
    dev = torch.device(device)
    with torch.inference_mode():
        return (_matmul_gflops(torch.float32, dev, n=n, seconds=seconds),
                _matmul_gflops(torch.bfloat16, dev, n=n, seconds=seconds))


_CHOICES: dict[str, PrecisionChoice] = {}


def choose(fp32_gflops: float, bf16_gflops: float, device: str = "cpu") -> PrecisionChoice:
    """The precision the measured rates call for: bf16 only when clearly faster."""
    ratio = bf16_gflops / fp32_gflops if fp32_gflops > 0 else float("inf")
    if ratio >= CLEARLY_FASTER:
        return PrecisionChoice("bf16", f"bf16 matmul measured {ratio:.1f}x fp32 on {device} "
                               f"({bf16_gflops:.0f} vs {fp32_gflops:.0f} GFLOP/s)", fp32_gflops, bf16_gflops, device)
    how = f"{1 / ratio:.1f}x slower than" if ratio < 1 else f"only {ratio:.2f}x"
    return PrecisionChoice("fp32", f"bf16 matmul measured {how} fp32 on {device} ({bf16_gflops:.0f} vs "
                           f"{fp32_gflops:.0f} GFLOP/s): bf16 is not clearly faster here", fp32_gflops, bf16_gflops,
                           device)


def resolve(precision: str, device: torch.device | str = "cpu") -> PrecisionChoice:
    """``precision`` as given, or for 'auto' the one a probe measures faster on ``device`` (cached per device)."""
    dev = str(torch.device(device))
    if precision != "auto":
        if precision not in PRECISIONS:
            raise ValueError(f"precision: expected auto or one of {', '.join(PRECISIONS)}, got {precision!r}")
        return PrecisionChoice(precision, "given", device=dev)
    if dev not in _CHOICES:
        fp32, bf16 = probe(dev)
        _CHOICES[dev] = choose(fp32, bf16, dev)
    return _CHOICES[dev]

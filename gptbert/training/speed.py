"""Which fast paths a training run takes: ``--compile auto`` and ``--optimizer-impl auto``.

Both defaults come from ``benchmarks/train_step_profile.py`` (GPT 6x384, B16 T256, fp32, one
step profiled with ``torch.profiler``), measured on the development machine (AMD EPYC, AVX2 only,
2 cores), whose figures are in :data:`MEASURED`:

* AdamW: ``fused=True`` ran the optimizer step many times faster than torch's CPU default (a loop
  over the tensors) and than ``foreach``; it is the same update (tests/training/test_fast_paths.py),
  so ``auto`` is fused everywhere.
* ``torch.compile``: the first call compiles (minutes on 2 cores), which a time budget pays. It
  pays back only when the run is long enough: ``planned seconds x (1 - 1/speedup)`` must exceed
  :data:`PAYBACK` times the compile time. A device without a measured speed-up (:data:`MEASURED`)
  is not compiled by ``auto``; ``--compile on`` compiles anyway.

The decision is taken once, after :data:`EAGER_STEPS` eager steps have measured the step time
(the remaining time is the time budget left, or the remaining steps at that pace), and recorded
in the training log (``kind: "compile"``).
"""

from __future__ import annotations

import dataclasses

import torch

EAGER_STEPS = 2
"""Eager steps timed before ``--compile auto`` decides (the first one carries one-time costs)."""
PAYBACK = 2.0
"""The time compiling saves must be at least this many times the compile time."""


@dataclasses.dataclass(frozen=True)
class CompileCost:
    """A measured torch.compile trade: step-time speed-up and the first call's compile time."""

    speedup: float
    compile_s: float
    measured: str
    """Where and how it was measured."""


MEASURED: dict[str, CompileCost] = {
    # benchmarks/train_step_profile.py --no-profile --no-optimizer --eager fused --steps 2 --threads 1,
    # AMD EPYC AVX2, GPT 6x384 B16 T256 fp32: eager 33.5 s/step vs compiled 24.0 s/step (load 2.8 / 2.3);
    # the first compiled call took 746 s with a cold inductor cache under load 10 (a step: 86 s), 29 s warm.
    "cpu": CompileCost(speedup=1.40, compile_s=660.0, measured="GPT 6x384 B16 T256 fp32, 2-core AVX2 EPYC, cold cache"),
}
"""torch.compile's measured trade per device type."""


@dataclasses.dataclass(frozen=True)
class CompileDecision:
    compile: bool
    reason: str

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def compile_decision(mode: str, device: torch.device, *, planned_s: float | None,
                     costs: dict[str, CompileCost] | None = None) -> CompileDecision:
    """Whether to torch.compile a run in ``mode`` ('on' / 'off' / 'auto') on ``device`` that has
    about ``planned_s`` seconds of training left (None: unknown); ``costs``: :data:`MEASURED`."""
    if mode in ("on", "off"):
        return CompileDecision(mode == "on", f"--compile {mode}")
    cost = (MEASURED if costs is None else costs).get(device.type)
    if cost is None:
        return CompileDecision(False, f"no measured torch.compile speed-up on {device.type}: eager")
    if cost.speedup <= 1.0:
        return CompileDecision(False, f"torch.compile measured no faster per step on {device.type.upper()} "
                                      f"({cost.speedup:.2f}x; {cost.measured}): eager")
    if planned_s is None:
        return CompileDecision(False, "the run's length is unknown: eager")
    saved = planned_s * (1.0 - 1.0 / cost.speedup)
    if saved >= PAYBACK * cost.compile_s:
        return CompileDecision(True, f"{planned_s:.0f} s of training left at {cost.speedup:.2f}x saves ~{saved:.0f} s: "
                                     f"pays back ~{cost.compile_s:.0f} s of compiling")
    return CompileDecision(False, f"{planned_s:.0f} s of training left saves ~{saved:.0f} s at {cost.speedup:.2f}x, "
                                  f"less than {PAYBACK:g}x the ~{cost.compile_s:.0f} s compile time: eager")

"""What the loop shares with the outside: hooks, the state they see, the run's position, signals.

:class:`Callback` hooks run on every process with a :class:`TrainState`; :class:`FitResult`
is what :func:`gptbert.training.fit` returns; :class:`Progress` is the training position and
the results so far (JSON in the checkpoint); :class:`SignalFlag` turns SIGINT / SIGTERM into a
"save and stop" request.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from gptbert.training.args import TrainArgs

__all__ = ["Callback", "FitResult", "Progress", "SignalFlag", "StopReason", "TrainState", "call_hooks"]

StopReason = Literal["max_steps", "max_epochs", "time_budget", "early_stopping", "interrupted"]


@dataclass
class FitResult:
    """What :func:`fit` returns (also stored, so far, in every checkpoint)."""

    steps: int
    epochs: float
    """Passes over the training data, fractional (2.5 = in the middle of the third epoch)."""
    stop_reason: StopReason
    best_metric: float | None
    best_step: int | None
    metric_name: str | None
    wall_time: float
    """Seconds of wall-clock time, all runs of a resumed job together."""
    train_time: float
    """Seconds spent in training steps (no evaluation, no checkpointing)."""
    tokens: int
    tokens_per_s: float
    train_loss: float | None
    """Mean training loss over the last logging window."""
    eval_metrics: dict[str, float] = field(default_factory=dict)
    """The last evaluation's metrics."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """Every metrics.jsonl record."""
    out_dir: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainState:
    """What callbacks see. ``model`` is the wrapped (DDP/compiled) module, ``raw_model`` the plain one."""

    args: TrainArgs
    model: nn.Module
    raw_model: nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    rank: int
    world_size: int
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    lr: float = 0.0


class Callback:
    """Base class of training hooks; override any subset. Hooks run on every process."""

    def on_train_begin(self, state: TrainState) -> None:
        """After setup (and after loading a checkpoint when resuming)."""

    def on_before_optimizer_step(self, state: TrainState) -> None:
        """Gradients are accumulated, all-reduced and clipped; ``state.step`` is the update's index."""

    def on_step_end(self, state: TrainState, loss: Tensor) -> None:
        """After update ``state.step`` (counted from 1); ``loss``: the step's mean loss (over processes too)."""

    def on_log(self, state: TrainState, record: dict[str, Any]) -> None:
        """A metrics record was written (train or eval)."""

    def on_evaluate(self, state: TrainState, metrics: dict[str, float]) -> None:
        """After an evaluation."""

    def on_save(self, state: TrainState, path: Path) -> None:
        """After a checkpoint was written (rank 0)."""

    def on_train_end(self, state: TrainState, result: FitResult) -> None:
        """Just before :func:`fit` returns."""


def call_hooks(callbacks: Sequence[Any], hook: str, *args: Any) -> None:
    """Call ``hook`` on every callback that has it (duck typing: no need to subclass :class:`Callback`)."""
    for cb in callbacks:
        fn = getattr(cb, hook, None)
        if fn is not None:
            fn(*args)


@dataclass
class Progress:
    """Training position and results so far: JSON in the checkpoint."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    tokens: int = 0
    train_time: float = 0.0
    elapsed: float = 0.0
    best_metric: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    last_eval_step: int | None = None
    last_eval: dict[str, float] = field(default_factory=dict)
    train_loss: float | None = None
    window_loss: float = 0.0
    window_steps: int = 0
    window_tokens: int = 0
    window_time: float = 0.0
    window_grad_norm: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


class SignalFlag:
    """SIGINT/SIGTERM set a flag (the loop saves and stops); a second SIGINT raises KeyboardInterrupt."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> SignalFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.getsignal(sig)
                signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

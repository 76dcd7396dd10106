"""The arguments of :func:`gptbert.training.fit`: :class:`TrainArgs` and durations.

The field docstrings are the ``--help`` texts of ``gptbert pretrain`` / ``finetune``
(:mod:`gptbert.cli._args` reads them); keep one per field. No torch import here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["TrainArgs", "format_duration", "parse_duration"]


@dataclass
class TrainArgs:
    """Everything :func:`fit` needs besides the model and the data."""

    out_dir: str | None = None
    """Directory for checkpoints, metrics.jsonl, TensorBoard events and the final model; unset: write no files."""
    max_steps: int | None = None
    """Stop after this many optimizer steps."""
    max_epochs: int | None = None
    """Stop after this many passes over the training data."""
    time_budget: str | None = None
    """Stop once this much wall-clock time is spent, e.g. '90s', '10m', '1h30m' (evaluations and the
    earlier runs of a resumed job count)."""
    batch_size: int = 32
    """Examples per micro-batch on each process; a step sees batch_size x grad_accum x processes examples."""
    grad_accum: int = 1
    """Micro-batches whose gradients are accumulated before each optimizer step."""
    drop_last: bool = False
    """Drop the last, incomplete micro-batch of each epoch."""
    shuffle: bool = True
    """Shuffle the training examples each epoch (permutation seeded by seed + epoch)."""
    group_by_length: bool = False
    """Batch examples of similar length together (less padding, faster steps on short texts); the
    batches still come in a random order. Needs the examples' lengths (the task provides them)."""
    lr: float = 3e-4
    """Peak learning rate (AdamW)."""
    head_lr: float | None = None
    """Peak learning rate of the task head (parameters named task.*) when it should differ from lr: a
    freshly initialised head can take larger steps than a pre-trained body (default: lr)."""
    layer_decay: float | None = None
    """Layer-wise learning-rate decay: block i of n learns at lr x layer_decay ** (n - i) and the
    embeddings at lr x layer_decay ** (n + 1); the head keeps head_lr (default: off, one lr)."""
    min_lr: float = 0.0
    """Learning rate at the end of the decay (linear, cosine) and floor of the exponential decay."""
    weight_decay: float = 0.01
    """AdamW decoupled weight decay."""
    no_decay_norm_bias_embed: bool = True
    """No weight decay for biases, normalisation layers and embeddings."""
    beta1: float = 0.9
    """AdamW beta1."""
    beta2: float = 0.999
    """AdamW beta2."""
    eps: float = 1e-8
    """AdamW epsilon."""
    schedule: Literal["constant", "linear", "cosine", "exponential"] = "linear"
    """Learning-rate schedule after the linear warmup."""
    warmup_steps: int = 0
    """Steps of linear warmup from 0 to lr."""
    warmup_ratio: float = 0.0
    """Warmup as a fraction of the total steps (used when warmup_steps is 0)."""
    decay_gamma: float = 0.9999
    """Per-step factor of the exponential schedule: lr x gamma^(step - warmup)."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this value; 0 = no clipping."""
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """bf16: autocast matmuls to bfloat16 (weights and optimizer stay fp32). auto: bf16 only where a
    sub-second probe measures bf16 matmuls clearly faster than fp32 (CPUs with AMX, GPUs), else fp32;
    the run records what was picked."""
    compile: Literal["auto", "on", "off"] = "auto"
    """torch.compile the model: on, off, or auto (decided after 2 timed eager steps: on only where
    compiling measured faster per step and the rest of the run pays back the compile time twice;
    see gptbert/training/speed.py). True / False are accepted as on / off."""
    optimizer_impl: Literal["auto", "fused", "foreach", "single"] = "auto"
    """AdamW's kernels: fused (one kernel over all parameters, CPU and CUDA), foreach (batched
    tensor ops), single (a loop over the tensors, torch's CPU default); auto = fused (the same
    update, measured 4.5x faster than either on 23M parameters on a 2-core AVX2 CPU)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where to train: auto = cuda when available, else cpu."""
    seed: int = 0
    """Seed of all random generators (initial state of fit, shuffling, collate randomness)."""
    eval_every: int = 0
    """Evaluate every N steps; 0 = at the end of each epoch. Training always ends with an evaluation."""
    eval_metric: str = "loss"
    """Metric (a key returned by the evaluation) used for early stopping and the best model."""
    metric_mode: Literal["auto", "max", "min"] = "auto"
    """Whether eval_metric improves upwards or downwards; auto = min for loss/perplexity/error-like names, else max."""
    patience: int = 0
    """Early stopping: stop after this many evaluations without improvement; 0 = off."""
    save_every: int = 0
    """Save a resumable checkpoint every N steps; 0 = only at the end and on interruption."""
    keep_best: bool = True
    """Keep the best evaluated weights (best/) and load them into the model at the end."""
    log_every: int = 10
    """Write a metrics record every N steps."""
    progress: bool = True
    """Show progress: a bar on a terminal, otherwise a plain line every ``progress_interval`` seconds."""
    progress_interval: float = 30.0
    """Seconds between plain progress lines (step, loss, lr, tokens/s, ETA) on stderr when it is not a
    terminal (a log file, nohup, CI) and progress is on; 0 = after every step."""
    tensorboard: bool = True
    """Write TensorBoard events under out_dir/tb when tensorboard is installed."""
    resume: bool = False
    """Continue from out_dir/checkpoint.safetensors when it exists (start fresh otherwise)."""
    num_workers: int = 0
    """DataLoader worker processes building batches; 0 = in the training process."""
    find_unused_parameters: bool = False
    """Multi-process: let DistributedDataParallel tolerate parameters that get no gradient."""

    def __post_init__(self) -> None:
        if isinstance(self.compile, bool):  # the older switch
            self.compile = "on" if self.compile else "off"

        def bad(name: str, expected: str) -> ValueError:
            return ValueError(f"TrainArgs.{name}: expected {expected}, got {getattr(self, name)!r}")

        for name in ("batch_size", "grad_accum", "log_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise bad(name, "a positive integer")
        for name in ("max_steps", "max_epochs"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise bad(name, "a positive integer or None")
        for name in ("warmup_steps", "eval_every", "patience", "save_every", "num_workers"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise bad(name, "a non-negative integer")
        if not self.lr > 0:
            raise bad("lr", "a positive number")
        if not 0 <= self.min_lr <= self.lr:
            raise bad("min_lr", f"a number in [0, lr={self.lr}]")
        if not 0 <= self.warmup_ratio < 1:
            raise bad("warmup_ratio", "a number in [0, 1)")
        if not 0 < self.decay_gamma <= 1:
            raise bad("decay_gamma", "a number in (0, 1]")
        if self.grad_clip < 0:
            raise bad("grad_clip", "a non-negative number")
        if not (isinstance(self.progress_interval, (int, float)) and 0 <= self.progress_interval < math.inf):
            raise bad("progress_interval", "a non-negative number of seconds")
        if self.weight_decay < 0:
            raise bad("weight_decay", "a non-negative number")
        choices = {
            "schedule": ("constant", "linear", "cosine", "exponential"),
            "precision": ("auto", "fp32", "bf16"),
            "metric_mode": ("auto", "max", "min"),
            "compile": ("auto", "on", "off"),
            "optimizer_impl": ("auto", "fused", "foreach", "single"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise bad(name, " | ".join(allowed))
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", str(self.device)):
            raise bad("device", "auto | cpu | cuda | cuda:N")
        if self.time_budget is not None:
            parse_duration(self.time_budget)  # raises a clear error
        if self.resume and not self.out_dir:
            raise ValueError("TrainArgs.resume needs out_dir (where the checkpoint lives)")

    @property
    def time_budget_s(self) -> float | None:
        """The time budget in seconds (None when unset)."""
        return None if self.time_budget is None else parse_duration(self.time_budget)


_DURATION_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([dhms])")


def parse_duration(text: str | float | int) -> float:
    """Seconds in a duration such as ``"90s"``, ``"10m"``, ``"1h30m"``, ``"1.5h"`` or ``"45"`` (s)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        s = str(text).strip().lower()
        error = ValueError(
            f"invalid duration {text!r}: expected e.g. '90s', '10m', '1h30m', '2d' or a number of seconds"
        )
        if re.fullmatch(r"\d+(?:\.\d*)?|\.\d+", s):
            seconds = float(s)
        else:
            seconds, pos = 0.0, 0
            for m in _DURATION_PART.finditer(s):
                if m.start() != pos:
                    raise error
                seconds += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
                pos = m.end()
            if pos == 0 or s[pos:].strip():
                raise error
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: must be positive")
    return seconds


def format_duration(seconds: float) -> str:
    """``"45s"``, ``"2m05s"``, ``"1h02m03s"``: whole seconds, readable back by :func:`parse_duration`."""
    total = max(0, int(round(seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"

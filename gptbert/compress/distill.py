"""Knowledge distillation (Hinton et al. 2015) through the shared training loop.

The student is trained by :func:`gptbert.training.fit` with a loss that mixes the teacher's soft
targets and the hard labels::

    loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(student, labels)

The teacher runs in eval mode under ``no_grad`` and is never updated. What is distilled is the
classification logits (B, L) of both models (same label set, same order); logits of any equal
shape (..., L) work the same way (the KL is averaged over all leading positions).

Data: one data set, two collators
---------------------------------
``train_data`` yields *raw* examples (e.g. ``{"text": ..., "label": ...}``). When teacher and
student share a tokenizer, one ``collate_fn`` builds one batch that both models read. When they
do not (a BERT teacher with a WordPiece vocabulary and a GPT student with a BPE one, say), pass
``student_collate`` too: ``collate_fn`` then builds the teacher's batch and ``student_collate``
the student's, both from the same list of raw examples, so every step the two models see the
same sentences. The combined batch given to ``fit`` is the student's batch with the teacher's
entries added under a ``teacher.`` prefix (flat, so the loop moves every tensor to the device
and counts the student's tokens). The student batch must hold the hard labels (``targets``);
the teacher's ``targets`` are dropped before calling it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from gptbert.training import Callback, FitResult, TrainArgs, fit, resolve_device

__all__ = ["TEACHER_PREFIX", "DistillLoss", "DistillResult", "distill", "distillation_loss", "paired_collate", "split_batch"]

TEACHER_PREFIX = "teacher."
Collate = Callable[[list[Any]], Mapping[str, Any]]


def distillation_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    targets: Tensor | None,
    *,
    temperature: float = 2.0,
    alpha: float = 0.5,
    hard_loss: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """(total loss, soft loss). Logits (..., L); ``targets`` (...) class ids (-100 ignored).

    soft = T^2 * KL(p_teacher^T || p_student^T), mean over positions; hard = cross-entropy of the
    student on ``targets`` (or the given ``hard_loss``, e.g. the model's own loss).
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"distillation needs logits of the same shape; student {tuple(student_logits.shape)}, "
            f"teacher {tuple(teacher_logits.shape)} (same label set?)"
        )
    L = student_logits.size(-1)
    s = student_logits.float().reshape(-1, L) / temperature  # (N, L)
    t = teacher_logits.float().reshape(-1, L) / temperature  # (N, L)
    kl = F.kl_div(F.log_softmax(s, dim=-1), F.log_softmax(t, dim=-1), log_target=True, reduction="none").sum(-1)  # (N,)
    if targets is not None and targets.numel() == kl.numel() and not targets.is_floating_point():
        keep = targets.reshape(-1) != -100
        kl = kl[keep] if bool(keep.any()) else kl
    soft = kl.mean() * temperature**2
    if alpha >= 1.0:
        return soft, soft
    if hard_loss is None:
        if targets is None:
            raise ValueError("distillation with alpha < 1 needs hard labels (targets)")
        hard_loss = F.cross_entropy(student_logits.float().reshape(-1, L), targets.reshape(-1), ignore_index=-100)
    return alpha * soft + (1.0 - alpha) * hard_loss, soft


def split_batch(batch: Mapping[str, Any], *, paired: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """(teacher batch, student batch) of a combined batch; the teacher's never holds ``targets``."""
    if not paired:
        student = dict(batch)
        teacher = {k: v for k, v in batch.items() if k != "targets"}
        return teacher, student
    n = len(TEACHER_PREFIX)
    teacher = {k[n:]: v for k, v in batch.items() if k.startswith(TEACHER_PREFIX) and k[n:] != "targets"}
    student = {k: v for k, v in batch.items() if not k.startswith(TEACHER_PREFIX)}
    return teacher, student


def paired_collate(teacher_collate: Collate, student_collate: Collate) -> Collate:
    """A collator building both models' batches from the same raw examples (see the module doc)."""

    def collate(examples: list[Any]) -> dict[str, Any]:
        student = dict(student_collate(examples))
        clash = [k for k in student if k.startswith(TEACHER_PREFIX)]
        if clash:
            raise ValueError(f"student batch keys may not start with {TEACHER_PREFIX!r}: {clash}")
        for k, v in teacher_collate(examples).items():
            student[TEACHER_PREFIX + k] = v
        return student

    return collate


def _logits_and_loss(out: Any) -> tuple[Tensor, Tensor | None]:
    if isinstance(out, tuple) and len(out) == 2:
        return out[0], out[1]
    if isinstance(out, Tensor):
        return out, None
    raise TypeError(f"expected a model returning (logits, loss) or logits, got {type(out).__name__}")


class DistillLoss:
    """``loss_fn(student, batch)`` for :func:`gptbert.training.fit`; remembers the last soft/hard losses."""

    def __init__(self, teacher: nn.Module, *, temperature: float = 2.0, alpha: float = 0.5, paired: bool = False) -> None:
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.teacher, self.temperature, self.alpha, self.paired = teacher, temperature, alpha, paired
        self.last_soft: float | None = None
        self.last_hard: float | None = None

    def __call__(self, student: nn.Module, batch: Mapping[str, Any]) -> Tensor:
        teacher_batch, student_batch = split_batch(batch, paired=self.paired)
        self.teacher.eval()
        with torch.no_grad():
            teacher_logits, _ = _logits_and_loss(self.teacher(**teacher_batch))
        student_logits, hard = _logits_and_loss(student(**student_batch))
        targets = student_batch.get("targets")
        loss, soft = distillation_loss(
            student_logits, teacher_logits.detach(), targets,
            temperature=self.temperature, alpha=self.alpha, hard_loss=hard,
        )
        self.last_soft = float(soft.detach())
        self.last_hard = float(hard.detach()) if hard is not None else None
        return loss


class _SoftLossLog(Callback):
    """Keeps the soft (KL) part of the loss of every step, for inspection (``history``)."""

    def __init__(self, loss: DistillLoss) -> None:
        self.loss = loss
        self.history: list[float] = []

    def on_step_end(self, state: Any, loss: Tensor) -> None:
        if self.loss.last_soft is not None:
            self.history.append(self.loss.last_soft)


@dataclass
class DistillResult(FitResult):
    """:class:`gptbert.training.FitResult` plus the soft (KL, times T^2) loss of every training step
    (of its last micro-batch when ``grad_accum`` > 1)."""

    soft_losses: list[float] = field(default_factory=list)


def distill(
    teacher: nn.Module,
    student: nn.Module,
    train_data: Any,
    collate_fn: Collate,
    args: TrainArgs,
    *,
    temperature: float = 2.0,
    alpha: float = 0.5,
    student_collate: Collate | None = None,
    eval_fn: Callable[[nn.Module], Mapping[str, float]] | None = None,
    dev_data: Any | None = None,
    callbacks: Sequence[Any] = (),
) -> DistillResult:
    """Train ``student`` (in place) to match ``teacher`` on ``train_data``.

    ``collate_fn`` builds the batch of both models, or only the teacher's when ``student_collate``
    (the student's) is given; see the module doc. Evaluation as in ``fit``: ``eval_fn(student)``,
    or the student's own loss on ``dev_data`` collated by the student's collator. The teacher is
    moved to the training device and frozen for the run (its ``requires_grad`` flags are put back).
    """
    paired = student_collate is not None
    collate = paired_collate(collate_fn, student_collate) if student_collate is not None else collate_fn
    teacher.to(resolve_device(args.device))
    flags = [(p, p.requires_grad) for p in teacher.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    loss = DistillLoss(teacher, temperature=temperature, alpha=alpha, paired=paired)
    log = _SoftLossLog(loss)
    try:
        result = fit(
            student, args, train_data, collate,
            loss_fn=loss, eval_fn=eval_fn, dev_data=dev_data, dev_collate_fn=student_collate or collate_fn,
            callbacks=[log, *callbacks],
        )
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
    values = {f.name: getattr(result, f.name) for f in dataclasses.fields(FitResult)}
    return DistillResult(**values, soft_losses=log.history)

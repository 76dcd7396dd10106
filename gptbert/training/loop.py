"""The one training loop: pre-training, fine-tuning and distillation all go through :func:`fit`.

Contract
--------
* A batch is a ``dict[str, Tensor]`` built by the caller's ``collate_fn(list_of_examples)``.
* The model is called ``logits, loss = model(**batch)`` (``logits`` may be anything, e.g. a
  tuple); ``loss`` is a scalar mean over the non-ignored targets. A ``loss_fn(model, batch)``
  can replace that call (e.g. distillation: teacher + student).
* ``fit`` owns the sampling (:mod:`gptbert.training.sampling`): the example order of epoch ``e``
  is a permutation drawn from ``seed + e``; every process takes its strided slice of it. The data
  position (epoch, batch within the epoch) is part of the checkpoint, so resuming is exact.

Step semantics
--------------
One *step* is one optimizer update. It consumes ``grad_accum`` micro-batches of ``batch_size``
examples on every process (fewer at the end of an epoch: steps never straddle epochs), so the
effective batch is ``batch_size * grad_accum * world_size`` examples. Micro-batch losses are
weighted by their number of examples, which makes ``2 x B/2`` equal ``1 x B``. The learning
rate of each step comes from :mod:`gptbert.training.schedule`.

Randomness
----------
A fresh run seeds python/numpy/torch from ``seed`` (+ rank); a resumed run restores every
process's generator states from the checkpoint (:mod:`gptbert.training.state`). Batches are
built under their own generators, so they do not shift the training generators (dropout).

Files under ``out_dir`` (rank 0): the checkpoint, ``best/`` and the final model
(:mod:`gptbert.training.state`), ``metrics.jsonl`` and ``tb/`` (:mod:`gptbert.training.reporting`).
"""

from __future__ import annotations

import warnings

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict
from itertools import islice
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from gptbert.io.layout import BEST_DIR, CHECKPOINT_FILE, WEIGHTS_FILE
from gptbert.precision import autocast, resolve
from gptbert.training.args import TrainArgs
from gptbert.training.callbacks import Callback, FitResult, Progress, SignalFlag, TrainState, call_hooks
from gptbert.training.distributed import (
    agree_on_clock,
    all_gather,
    barrier,
    process_group,
    reduce_step,
    resolve_device,
    world_info,
    wrap_model,
)
from gptbert.training.evaluation import evaluate_loss, extract_loss, improved, metric_mode, run_eval_fn
from gptbert.training.reporting import ProgressDisplay, RunLog
from gptbert.training.sampling import BatchSource, epoch_batches, group_by_length, iterate_batches, to_device
from gptbert.training.schedule import build_optimizer, lr_for_step, schedule_total
from gptbert.training.speed import EAGER_STEPS, CompileDecision, compile_decision
from gptbert.training.state import (
    apply_checkpoint,
    check_resumable,
    load_model_weights,
    prepare_out_dir,
    read_checkpoint,
    rng_snapshot,
    save_best,
    save_checkpoint,
    save_model_dir,
    seed_everything,
)

__all__ = ["fit"]

log = logging.getLogger(__name__)

Batch = dict[str, Any]
MicroBatch = tuple[Batch, int, int]
"""(batch dict, examples in it, tokens in it)."""



class DivergedError(FloatingPointError):
    """Training stopped because the loss became NaN or infinite (one line: the step and what to change)."""


def resolve_precision(args: TrainArgs, device: torch.device | str | None = None) -> str:
    """Turn ``args.precision='auto'`` into the precision a probe measures faster (in place); returns it."""
    if args.precision == "auto":
        choice = resolve("auto", device if device is not None else resolve_device(args.device))
        args.precision = choice.precision  # type: ignore[assignment]
        log.info("precision auto -> %s: %s", choice.precision, choice.reason)
    return args.precision


def fit(
    model: nn.Module,
    args: TrainArgs,
    train_data: Any,
    collate_fn: Callable[[list[Any]], Mapping[str, Any]],
    *,
    eval_fn: Callable[[nn.Module], Mapping[str, float]] | None = None,
    dev_data: Any | None = None,
    dev_collate_fn: Callable[[list[Any]], Mapping[str, Any]] | None = None,
    callbacks: Sequence[Callback | Any] = (),
    loss_fn: Callable[[nn.Module, dict[str, Any]], Any] | None = None,
    lengths: Sequence[int] | None = None,
) -> FitResult:
    """Train ``model`` in place and return a :class:`FitResult`.

    ``train_data``: map-style data set (``len`` + ``[i]`` → one example); ``collate_fn`` turns a
    list of examples into a batch dict. Evaluation: ``eval_fn(model) -> {metric: value}`` (called
    on rank 0 with the plain model in eval mode, under no_grad and the run's autocast; the result
    is broadcast) or, if absent, the mean loss over ``dev_data`` (collated by ``dev_collate_fn``,
    default ``collate_fn``). ``loss_fn(model, batch)`` replaces ``model(**batch)``; it receives the
    wrapped (DDP/compiled) model and returns a loss tensor (or ``(logits, loss)``). ``lengths``
    (one per training example; default ``train_data.lengths``) is what ``group_by_length`` sorts by.

    Stops at ``max_steps``, ``max_epochs``, the ``time_budget``, early stopping, or SIGINT/SIGTERM
    (the current step finishes, a checkpoint is saved, stop_reason = "interrupted"). Under torchrun
    (``WORLD_SIZE`` > 1) it initialises torch.distributed if needed, wraps the model in
    DistributedDataParallel, shards the data, and logs/saves on rank 0 only.

    The global RNGs are reseeded from ``args.seed`` (+ rank) on a fresh start (and restored from
    the checkpoint when resuming); seed and build the model before calling ``fit``.
    """
    if args.max_steps is None and args.max_epochs is None and args.time_budget is None:
        raise ValueError("fit: set at least one of max_steps, max_epochs or time_budget")
    if args.patience > 0 and eval_fn is None and dev_data is None:
        raise ValueError("fit: early stopping (patience > 0) needs eval_fn or dev_data")
    if not hasattr(train_data, "__len__") or not hasattr(train_data, "__getitem__"):
        raise TypeError("fit: train_data must be a map-style data set (with __len__ and __getitem__)")
    device = resolve_device(args.device)
    resolve_precision(args, device)
    with process_group(device):
        trainer = _Trainer(
            model, args, train_data, collate_fn, device,
            eval_fn=eval_fn, dev_data=dev_data, dev_collate_fn=dev_collate_fn or collate_fn,
            callbacks=list(callbacks), loss_fn=loss_fn, lengths=lengths,
        )
        return trainer.run()


class _Trainer:
    """One call of :func:`fit`: setup, then steps until a limit, then the end of training."""

    def __init__(
        self,
        model: nn.Module,
        args: TrainArgs,
        train_data: Any,
        collate_fn: Callable[[list[Any]], Mapping[str, Any]],
        device: torch.device,
        *,
        eval_fn: Callable[[nn.Module], Mapping[str, float]] | None,
        dev_data: Any | None,
        dev_collate_fn: Callable[[list[Any]], Mapping[str, Any]],
        callbacks: list[Any],
        loss_fn: Callable[[nn.Module, dict[str, Any]], Any] | None,
        lengths: Sequence[int] | None = None,
    ) -> None:
        self.args, self.device = args, device
        self.train_data, self.collate_fn = train_data, collate_fn
        self.eval_fn, self.dev_data, self.dev_collate_fn = eval_fn, dev_data, dev_collate_fn
        self.callbacks, self.loss_fn = callbacks, loss_fn
        self.rank, _, self.world = world_info()
        self.main = self.rank == 0
        self.distributed = self.world > 1 and dist.is_initialized()
        self.out_dir = Path(args.out_dir) if args.out_dir else None
        self.budget = args.time_budget_s
        self.metric_name = args.eval_metric.removeprefix("eval_")
        self.mode = metric_mode(self.metric_name, args.metric_mode)
        self.has_eval = eval_fn is not None or dev_data is not None
        self.n = len(train_data)
        if args.batch_size > self.n:
            warnings.warn(f"batch_size={args.batch_size} is larger than the {self.n} training examples: each "
                          f"batch holds at most {self.n}, so this is batch_size={self.n} (with its step count)",
                          stacklevel=2)
        self.lengths = lengths if lengths is not None else getattr(train_data, "lengths", None)
        if args.group_by_length and (self.lengths is None or len(self.lengths) != self.n):
            raise ValueError("fit: group_by_length needs the length of every training example (pass lengths= "
                             "or a data set with a .lengths sequence)")
        self.batches_per_epoch = len(self._batches(0))
        if self.batches_per_epoch == 0:
            raise ValueError(
                f"fit: no complete batch: {self.n} examples over {self.world} process(es) with "
                f"batch_size={args.batch_size} and drop_last=True"
            )
        self.steps_per_epoch = -(-self.batches_per_epoch // args.grad_accum)
        self.raw_model = model.to(device)
        self.optimizer = build_optimizer(self.raw_model, args)
        self.progress = Progress()
        self.best_in_memory: dict[str, Tensor] | None = None
        self.run_log = RunLog()
        self.display: ProgressDisplay | None = None

    # ---- helpers -----------------------------------------------------------------------------

    def _batches(self, epoch: int) -> list[list[int]]:
        a = self.args
        batches = epoch_batches(
            self.n, epoch=epoch, seed=a.seed, batch_size=a.batch_size, shuffle=a.shuffle,
            drop_last=a.drop_last, rank=self.rank, world_size=self.world,
        )
        if a.group_by_length:
            batches = group_by_length(batches, self.lengths, epoch=epoch, seed=a.seed)
        return batches

    def _elapsed(self) -> float:
        return self.elapsed_base + (time.monotonic() - self.t0)

    def _time_up(self, elapsed: float) -> bool:
        return self.budget is not None and elapsed >= self.budget

    def _lr(self, step: int, elapsed: float) -> tuple[float, float | None]:
        """(learning rate of update ``step``, the total steps the schedule decays over)."""
        total = schedule_total(self.args, step, elapsed, self.steps_per_epoch)
        return lr_for_step(self.args, step, total), total

    def _epochs_float(self) -> float:
        p = self.progress
        return p.epoch + p.batch_in_epoch / self.batches_per_epoch

    def _tokens_per_s(self) -> float:
        p = self.progress
        return p.tokens / p.train_time if p.train_time > 0 else 0.0

    def _sync_state(self) -> None:
        """Copy the position into what callbacks see."""
        p = self.progress
        self.state.step, self.state.epoch, self.state.batch_in_epoch = p.step, p.epoch, p.batch_in_epoch

    def _write_record(self, record: dict[str, Any]) -> None:
        self.progress.history.append(record)
        if self.main:
            self.run_log.write(record)
        call_hooks(self.callbacks, "on_log", self.state, record)

    def _compute_loss(self, batch: dict[str, Any]) -> Tensor:
        if self.loss_fn is not None:
            return extract_loss(self.loss_fn(self.model, batch), "loss_fn")
        return extract_loss(self.model(**batch), "model")

    # ---- setup -------------------------------------------------------------------------------

    def _try_resume(self) -> bool:
        if not self.args.resume or self.out_dir is None:
            return False
        path = self.out_dir / CHECKPOINT_FILE
        if not path.exists():
            if self.main:
                log.info("resume: no checkpoint at %s, starting fresh", path)
            return False
        tensors, state = read_checkpoint(path)
        check_resumable(state, self.args, world=self.world, dataset_len=self.n)
        apply_checkpoint(tensors, state, self.raw_model, self.optimizer, self.rank)
        self.progress = Progress(**state["progress"])
        if self.main:
            log.info("resumed from %s at step %d (epoch %d, batch %d)", path, self.progress.step,
                     self.progress.epoch, self.progress.batch_in_epoch)
        return True

    def _setup(self) -> None:
        """Resume or seed, open the outputs, wrap the model; ends with ``on_train_begin``."""
        a = self.args
        resumed = self._try_resume()
        if not resumed:
            seed_everything(a.seed + self.rank)
        p = self.progress
        self.last_save_step = p.step if resumed else -1
        if self.out_dir is not None and self.main:
            prepare_out_dir(self.out_dir)
            self.run_log = RunLog.open(self.out_dir, history=p.history, step=p.step, resumed=resumed,
                                       tensorboard=a.tensorboard)
        # --compile auto decides after EAGER_STEPS timed eager steps (_decide_compile)
        self.compiling = None if a.compile == "auto" else compile_decision(a.compile, self.device, planned_s=None)
        self.first_step = p.step
        self.model, self.ddp = wrap_model(self.raw_model, self.device, distributed=self.distributed,
                                          find_unused_parameters=a.find_unused_parameters,
                                          compile=self.compiling is not None and self.compiling.compile)
        self.state = TrainState(a, self.model, self.raw_model, self.optimizer, self.device, self.rank, self.world)
        self.trainable = [q for g in self.optimizer.param_groups for q in g["params"]]
        self.raw_model.train()  # evaluations switch to eval() and back

        self.t0 = time.monotonic()
        self.elapsed_base = p.elapsed
        self.display = ProgressDisplay(
            enabled=a.progress and self.main, step=p.step, interval=a.progress_interval,
            total=schedule_total(a, p.step, self._elapsed(), self.steps_per_epoch),
        )
        self._sync_state()
        call_hooks(self.callbacks, "on_train_begin", self.state)

        self.clock = self._agree(False)[1]  # elapsed time as of the end of the last step
        self.lr = self._lr(p.step, self.clock)[0]
        self.window_loss = torch.zeros((), dtype=torch.float64, device=self.device)  # sum of step losses
        self.window_loss += p.window_loss
        self.iterator: Iterator[MicroBatch] | None = None
        self.clip_norm: Tensor | None = None  # the last step's gradient norm (when clipping)

    def _agree(self, signalled: bool) -> tuple[bool, float]:
        return agree_on_clock(signalled, self._elapsed(), distributed=self.distributed, device=self.device)

    # ---- one step ----------------------------------------------------------------------------

    def _next_micro_batches(self) -> list[MicroBatch]:
        a, p = self.args, self.progress
        if self.iterator is None:
            source = BatchSource(self.train_data, self._batches(p.epoch), self.collate_fn,
                                 (a.seed, p.epoch, self.rank, 0))
            self.iterator = iterate_batches(source, p.batch_in_epoch, a.num_workers, self.device.type == "cuda")
        micro = list(islice(self.iterator, a.grad_accum))
        if not micro:
            raise RuntimeError(f"internal: epoch {p.epoch} ran out of batches at {p.batch_in_epoch}")
        return micro

    def _forward_backward(self, micro: list[MicroBatch]) -> tuple[Tensor, int]:
        """Accumulate the gradients of the micro-batches; (the step's mean loss, its tokens)."""
        n_examples = sum(n for _, n, _ in micro)
        step_loss = torch.zeros((), device=self.device)
        step_tokens = 0
        for i, (batch, n_ex, n_tok) in enumerate(micro):
            batch = to_device(batch, self.device)
            sync = self.ddp is None or i == len(micro) - 1  # DDP all-reduces on the last one only
            with contextlib.nullcontext() if sync else self.ddp.no_sync():  # type: ignore[union-attr]
                with autocast(self.args.precision, self.device):
                    loss = self._compute_loss(batch)  # scalar
                if not loss.requires_grad:
                    raise RuntimeError("the loss does not require grad: are all parameters frozen?")
                weight = n_ex / n_examples
                (loss * weight).backward()
            step_loss += loss.detach().float() * weight
            step_tokens += n_tok
        return step_loss, step_tokens

    def _optimizer_step(self) -> Tensor | None:
        """Clip, ``on_before_optimizer_step``, update; the gradient norm before clipping (when known)."""
        a, p = self.args, self.progress
        grad_norm: Tensor | None = None
        if a.grad_clip > 0:
            grad_norm = self.clip_norm = torch.nn.utils.clip_grad_norm_(self.trainable, a.grad_clip)
        elif (p.step + 1) % a.log_every == 0:  # only needed for the record
            grads = [q.grad for q in self.trainable if q.grad is not None]
            grad_norm = torch.nn.utils.get_total_norm(grads) if grads else None
        self.state.step = p.step
        call_hooks(self.callbacks, "on_before_optimizer_step", self.state)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return grad_norm

    def _train_step(self) -> None:
        """One optimizer update, then its record, evaluation and checkpoint when they are due."""
        a, p = self.args, self.progress
        t_step = time.monotonic()
        micro = self._next_micro_batches()
        lr, total = self._lr(p.step, self.clock)
        for g in self.optimizer.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)
        self.lr = self.state.lr = lr
        step_loss, step_tokens = self._forward_backward(micro)
        grad_norm = self._optimizer_step()

        p.step += 1
        p.batch_in_epoch += len(micro)
        epoch_end = p.batch_in_epoch >= self.batches_per_epoch
        if epoch_end:
            p.epoch, p.batch_in_epoch, self.iterator = p.epoch + 1, 0, None
        step_loss, step_tokens = reduce_step(step_loss, step_tokens, distributed=self.distributed, world=self.world)
        dt = time.monotonic() - t_step
        p.tokens += step_tokens
        p.train_time += dt
        self.window_loss += step_loss
        p.window_steps += 1
        p.window_tokens += step_tokens
        p.window_time += dt
        self._sync_state()
        call_hooks(self.callbacks, "on_step_end", self.state, step_loss)
        if self.compiling is None and p.step - self.first_step >= EAGER_STEPS:
            self._decide_compile(dt)
        assert self.display is not None
        self.display.step(step=p.step, total=total, loss=step_loss, lr=lr, tokens_per_s=self._tokens_per_s(),
                          elapsed=self._elapsed())

        if p.step % a.log_every == 0:
            p.window_grad_norm = None if grad_norm is None else float(grad_norm)
            p.window_loss = float(self.window_loss.item())
            self.window_loss.zero_()
            self._log_train(lr)
        if self.has_eval and (p.step % a.eval_every == 0 if a.eval_every > 0 else epoch_end):
            self._run_eval()
        if a.save_every > 0 and p.step % a.save_every == 0:
            p.window_loss = float(self.window_loss.item())
            self._save()

    def _decide_compile(self, step_s: float) -> None:
        """``--compile auto``: compile now when the rest of the run (at ``step_s`` a step) pays it back."""
        p = self.progress
        total = schedule_total(self.args, p.step, self._elapsed(), self.steps_per_epoch)
        left = [(total - p.step) * step_s] if total is not None and math.isfinite(total) else []
        if self.budget is not None:
            left.append(self.budget - self._elapsed())
        self.compiling: CompileDecision | None = compile_decision("auto", self.device,
                                                                  planned_s=min(left) if left else None)
        log.info("--compile auto at step %d: %s", p.step, self.compiling.reason)
        if self.compiling.compile:
            self.model = self.state.model = torch.compile(self.ddp or self.raw_model)  # type: ignore[assignment]

    def _log_train(self, lr: float) -> None:
        p = self.progress
        if p.window_steps == 0:
            return
        loss = p.window_loss / p.window_steps
        if not math.isfinite(loss):
            raise DivergedError(
                f"training diverged: non-finite training loss ({loss}) at step {p.step}; lower --lr, "
                "set --grad-clip or use --precision fp32"
            )
        p.train_loss = loss
        record = {
            "kind": "train",
            "step": p.step,
            "epoch": self._epochs_float(),
            "loss": loss,
            "lr": lr,
            "grad_norm": p.window_grad_norm,
            "tokens": p.tokens,
            "tokens_per_s": p.window_tokens / p.window_time if p.window_time > 0 else 0.0,
            "elapsed": self._elapsed(),
        }
        self._write_record(record)
        if self.display is not None:
            self.display.logged(loss=loss, lr=lr, tokens_per_s=record["tokens_per_s"])
        p.window_loss, p.window_steps, p.window_tokens, p.window_time = 0.0, 0, 0, 0.0

    def _limit_reached(self, signalled: bool, time_up: bool) -> str | None:
        a, p = self.args, self.progress
        if a.max_steps is not None and p.step >= a.max_steps:
            return "max_steps"
        if a.max_epochs is not None and p.epoch >= a.max_epochs:
            return "max_epochs"
        if a.patience > 0 and p.bad_evals >= a.patience:
            return "early_stopping"
        if time_up:
            return "time_budget"
        if signalled:
            return "interrupted"
        return None

    # ---- evaluation and the best model ------------------------------------------------------

    def _evaluate(self) -> dict[str, float]:
        if self.eval_fn is not None:
            return run_eval_fn(self.raw_model, self.eval_fn, device=self.device, precision=self.args.precision,
                               main=self.main, distributed=self.distributed)
        return evaluate_loss(
            self.raw_model, self.dev_data, self.dev_collate_fn, batch_size=self.args.batch_size, device=self.device,
            precision=self.args.precision, seed=self.args.seed, num_workers=self.args.num_workers,
        )

    def _run_eval(self) -> None:
        """Evaluate, track the best model and the evaluations without improvement."""
        p = self.progress
        t = time.monotonic()
        metrics = self._evaluate()
        if self.metric_name not in metrics:
            raise KeyError(
                f"eval_metric {self.metric_name!r} not among the evaluation's metrics {sorted(metrics)}"
            )
        value = metrics[self.metric_name]
        better = improved(value, p.best_metric, self.mode)
        if better and math.isfinite(value):
            p.best_metric, p.best_step, p.bad_evals = value, p.step, 0
            if self.args.keep_best:
                self._save_best(metrics)
        else:
            p.bad_evals += 1
        p.last_eval_step, p.last_eval = p.step, metrics
        record: dict[str, Any] = {"kind": "eval", "step": p.step, "epoch": self._epochs_float()}
        record.update({f"eval_{k}": v for k, v in metrics.items()})
        record.update(best=bool(better), eval_seconds=time.monotonic() - t, elapsed=self._elapsed())
        self._write_record(record)
        call_hooks(self.callbacks, "on_evaluate", self.state, metrics)

    def _save_best(self, metrics: dict[str, float]) -> None:
        p = self.progress
        if self.out_dir is None:
            self.best_in_memory = {k: v.detach().to("cpu", copy=True) for k, v in self.raw_model.state_dict().items()}
            return
        if self.main:
            meta = {"step": p.step, "epoch": self._epochs_float(), "metric": self.metric_name,
                    "value": metrics[self.metric_name], "metrics": metrics}
            save_best(self.out_dir, self.raw_model, meta)

    def _restore_best(self) -> None:
        p = self.progress
        if p.best_step is None or p.best_step == p.step:
            return
        if self.best_in_memory is not None:
            self.raw_model.load_state_dict(self.best_in_memory)
        elif self.out_dir is not None:
            barrier(distributed=self.distributed)  # rank 0 has finished writing best/
            load_model_weights(self.raw_model, self.out_dir / BEST_DIR / WEIGHTS_FILE)

    # ---- checkpoints -------------------------------------------------------------------------

    def _save(self) -> None:
        if self.out_dir is None:
            return
        p = self.progress
        p.elapsed = self._elapsed()
        rng_all = all_gather(rng_snapshot(), distributed=self.distributed, world=self.world)
        if self.main:
            state = {
                "progress": asdict(p),
                "args": asdict(self.args),
                "world_size": self.world,
                "dataset_len": self.n,
            }
            path = self.out_dir / CHECKPOINT_FILE
            save_checkpoint(path, self.raw_model, self.optimizer, state, rng_all)
            call_hooks(self.callbacks, "on_save", self.state, path)
        self.last_save_step = p.step

    # ---- the loop and its end ----------------------------------------------------------------

    def run(self) -> FitResult:
        stop: str | None = None
        try:
            self._setup()
            with SignalFlag() as signals:
                stop = self._limit_reached(False, self._time_up(self.clock))
                while stop is None:
                    self._train_step()
                    # Checked last, so evaluation time counts and a signal during this step is seen now.
                    signalled, self.clock = self._agree(signals.signum is not None)
                    stop = self._limit_reached(signalled, self._time_up(self.clock))
                self._end_of_steps(stop)
        finally:
            if self.display is not None:
                self.display.close()
            self.run_log.close()
        return self._finish(stop)

    def _end_of_steps(self, stop: str) -> None:
        """The last record, evaluation and checkpoint (an interrupted run keeps its open window)."""
        p = self.progress
        p.window_loss = float(self.window_loss.item())
        # The steps since the last record; an interrupted run keeps them in its checkpoint
        # instead, so that a resumed run writes the same records as an uninterrupted one.
        if p.window_steps and stop != "interrupted":
            p.window_grad_norm = float(self.clip_norm) if self.clip_norm is not None else None
            self._log_train(self.lr)
            self.window_loss.zero_()
        if stop != "interrupted" and self.has_eval and p.last_eval_step != p.step and p.step > 0:
            self._run_eval()
        if self.last_save_step != p.step:
            self._save()

    def _finish(self, stop: str | None) -> FitResult:
        """The best weights back in the model, the final model directory, the result."""
        p = self.progress
        if stop != "interrupted":
            if self.args.keep_best:
                self._restore_best()
            if self.out_dir is not None and self.main:
                meta = {"step": p.step, "stop_reason": stop, "best_step": p.best_step}
                save_model_dir(self.out_dir, self.raw_model, {"gptbert_final": meta})
        barrier(distributed=self.distributed)
        wall = self._elapsed()
        result = FitResult(
            steps=p.step,
            epochs=self._epochs_float(),
            stop_reason=stop or "max_steps",  # type: ignore[arg-type]
            best_metric=p.best_metric,
            best_step=p.best_step,
            metric_name=self.metric_name if self.has_eval else None,
            wall_time=wall,
            train_time=p.train_time,
            tokens=p.tokens,
            tokens_per_s=self._tokens_per_s(),
            train_loss=p.train_loss,
            eval_metrics=dict(p.last_eval),
            history=list(p.history),
            out_dir=str(self.out_dir) if self.out_dir else None,
        )
        if self.main and stop is not None:
            log.info("training stopped (%s) at step %d after %.1fs", stop, p.step, wall)
        call_hooks(self.callbacks, "on_train_end", self.state, result)
        return result

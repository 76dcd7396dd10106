"""How a run reports itself while it trains: the training log, TensorBoard, progress on stderr.

``out_dir/metrics.jsonl`` (:data:`gptbert.io.layout.TRAIN_LOG_FILE`) holds one JSON object per
log step (``"kind": "train"``) and per evaluation (``"kind": "eval"``, metrics prefixed
``eval_``); ``out_dir/tb/`` the same as TensorBoard events, when ``torch.utils.tensorboard``
imports. Progress goes to stderr: a tqdm bar on a terminal, else (a log file, nohup, CI) a plain
line every ``interval`` seconds, so that a redirected run is not silent until it ends.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import IO, Any

from torch import Tensor

from gptbert.io.files import atomic_write_text
from gptbert.io.layout import TRAIN_LOG_FILE
from gptbert.training.args import format_duration

__all__ = ["ProgressDisplay", "RunLog", "progress_line"]

TENSORBOARD_DIR = "tb"


class RunLog:
    """``metrics.jsonl`` and TensorBoard events of rank 0 (an empty log: writes nothing)."""

    def __init__(self) -> None:
        self.file: IO[str] | None = None
        self.tb: Any = None

    @classmethod
    def open(cls, out_dir: Path, *, history: list[dict[str, Any]], step: int, resumed: bool,
             tensorboard: bool) -> RunLog:
        """Start (or, ``resumed``, continue at ``step`` with the checkpoint's ``history``) the log of ``out_dir``."""
        log = cls()
        path = out_dir / TRAIN_LOG_FILE
        if resumed:  # drop records written after the checkpoint by the run that died
            atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in history))
        log.file = open(path, "a" if resumed else "w", encoding="utf-8")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except Exception:  # tensorboard not installed (or broken): skip silently
                SummaryWriter = None  # noqa: N806
            if SummaryWriter is not None:
                purge = step + 1 if resumed else None
                log.tb = SummaryWriter(log_dir=str(out_dir / TENSORBOARD_DIR), purge_step=purge)
        return log

    def write(self, record: dict[str, Any]) -> None:
        """One record: a line of metrics.jsonl, its numbers as TensorBoard scalars (train/*, eval/*)."""
        if self.file is not None:
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()
        if self.tb is not None:
            kind = record["kind"]
            for k, v in record.items():
                if k in ("kind", "step") or not isinstance(v, (int, float)) or isinstance(v, bool):
                    continue
                tag = f"eval/{k.removeprefix('eval_')}" if kind == "eval" else f"train/{k}"
                self.tb.add_scalar(tag, v, record["step"])

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
        if self.tb is not None:
            self.tb.close()
            self.tb = None


def _finite_total(total: float | None) -> int | None:
    return math.ceil(total) if total and math.isfinite(total) else None


def progress_line(*, step: int, total: float | None, loss: float, lr: float, tokens_per_s: float,
                  elapsed: float) -> str:
    """``step 120/1000 (12%)  loss 2.3412  lr 2.95e-04  5123 tok/s  elapsed 1m02s  eta 8m10s``.

    Without a known total (an unfinished first step under a time budget) the step count stands
    alone and there is no ETA; the ETA assumes the pace so far.
    """
    n = _finite_total(total)
    where = f"step {step}/{n} ({100 * step / n:.0f}%)" if n else f"step {step}"
    parts = [where, f"loss {loss:.4f}", f"lr {lr:.2e}", f"{tokens_per_s:.0f} tok/s",
             f"elapsed {format_duration(elapsed)}"]
    if n and step > 0:
        parts.append(f"eta {format_duration(max(0, n - step) * elapsed / step)}")
    return "  ".join(parts)


class ProgressDisplay:
    """Training progress on ``stream`` (stderr): a tqdm bar on a terminal, plain lines elsewhere.

    ``enabled`` False (no ``progress``, or not rank 0): shows nothing. ``interval``: seconds
    between plain lines (0 = every step).
    """

    def __init__(self, *, enabled: bool, step: int, total: float | None, interval: float,
                 stream: IO[str] | None = None) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.interval = interval
        self.bar: Any = None
        self.lines = False
        self.last_line = time.monotonic()
        if not enabled:
            return
        isatty = getattr(self.stream, "isatty", None)
        if callable(isatty) and isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=_finite_total(total), initial=step, unit="step", dynamic_ncols=True,
                            file=self.stream)
        else:
            self.lines = True

    def step(self, *, step: int, total: float | None, loss: Tensor | float, lr: float, tokens_per_s: float,
             elapsed: float) -> None:
        """After an optimizer step (``loss``: that step's; a tensor is read only when a line is due)."""
        if self.bar is not None:
            if total is not None and math.isfinite(total):
                self.bar.total = math.ceil(total)
            self.bar.update(1)
        elif self.lines:
            now = time.monotonic()
            if now - self.last_line >= self.interval:
                self.last_line = now
                line = progress_line(step=step, total=total, loss=float(loss), lr=lr, tokens_per_s=tokens_per_s,
                                     elapsed=elapsed)
                print(line, file=self.stream, flush=True)

    def logged(self, *, loss: float, lr: float, tokens_per_s: float) -> None:
        """A training record was written: show its figures beside the bar."""
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{tokens_per_s:.0f}", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

"""How a run reports itself while it trains: the training log, TensorBoard, progress on stderr.

``out_dir/metrics.jsonl`` (:data:`gptbert.io.layout.TRAIN_LOG_FILE`) holds one JSON object per
log step (``"kind": "train"``) and per evaluation (``"kind": "eval"``, metrics prefixed
``eval_``); ``out_dir/tb/`` the same as TensorBoard events, when ``torch.utils.tensorboard``
imports. Progress goes to stderr as a tqdm bar, on a terminal.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import IO, Any

from gptbert.io.files import atomic_write_text
from gptbert.io.layout import TRAIN_LOG_FILE

__all__ = ["ProgressDisplay", "RunLog"]

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


class ProgressDisplay:
    """Training progress on ``stream`` (stderr): a tqdm bar, only on a terminal.

    ``enabled`` False (no ``progress``, or not rank 0): shows nothing.
    """

    def __init__(self, *, enabled: bool, step: int, total: float | None, stream: IO[str] | None = None) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.bar: Any = None
        isatty = getattr(self.stream, "isatty", None)
        if enabled and callable(isatty) and isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=_finite_total(total), initial=step, unit="step", dynamic_ncols=True,
                            file=self.stream)

    def step(self, total: float | None) -> None:
        """After an optimizer step (``total``: the steps the schedule expects now)."""
        if self.bar is not None:
            if total is not None and math.isfinite(total):
                self.bar.total = math.ceil(total)
            self.bar.update(1)

    def logged(self, *, loss: float, lr: float, tokens_per_s: float) -> None:
        """A training record was written: show its figures beside the bar."""
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{tokens_per_s:.0f}", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

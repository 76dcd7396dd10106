"""Small models and data for the training-loop tests, and a command line for subprocess tests.

Run as a script (``python tests/training/_train_helpers.py run|ddp ...``) it trains the toy character LM
on TinyShakespeare with :func:`gptbert.training.fit`; the tests start it in subprocesses (to kill
it for real) and under ``torch.distributed.run``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # running as a script from tests/training/
    sys.path.insert(0, str(REPO))

from gptbert.io.layout import TRAIN_LOG_FILE  # noqa: E402
from gptbert.training import Callback, TrainArgs, TrainState, fit  # noqa: E402

SHAKESPEARE = Path("tinyshakespeare") / "input.txt"


def load_chars(path: Path, n_chars: int = 120_000) -> tuple[Tensor, list[str]]:
    """The first ``n_chars`` characters of a text file as ids (shape (n_chars,)) and the vocabulary."""
    text = path.read_text(encoding="utf-8")[:n_chars]
    vocab = sorted(set(text))
    stoi = {c: i for i, c in enumerate(vocab)}
    return torch.tensor([stoi[c] for c in text], dtype=torch.long), vocab


class CharBlocks:
    """Map-style data set of non-overlapping blocks: {"idx": (T,), "targets": (T,) shifted by one}."""

    def __init__(self, ids: Tensor, block: int = 32) -> None:
        self.ids, self.block = ids, block

    def __len__(self) -> int:
        return (len(self.ids) - 1) // self.block

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        s = i * self.block
        return {"idx": self.ids[s : s + self.block], "targets": self.ids[s + 1 : s + self.block + 1]}


def collate(examples: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Stack examples: {"idx": (B, T), "targets": (B, T)}."""
    return {k: torch.stack([e[k] for e in examples]) for k in examples[0]}


def random_mask_collate(examples: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Like :func:`collate`, but ignores a random half of the targets (randomness in collate)."""
    batch = collate(examples)
    drop = torch.rand(batch["targets"].shape) < 0.5  # (B, T)
    batch["targets"] = batch["targets"].masked_fill(drop, -100)
    return batch


class TinyCharLM(nn.Module):
    """Causal MLP language model: position t sees the embeddings of characters t-k+1 .. t."""

    def __init__(
        self, vocab_size: int, n_embd: int = 24, context: int = 4, hidden: int = 96,
        dropout: float = 0.1, tuple_logits: bool = False,
    ) -> None:
        super().__init__()
        self.context, self.tuple_logits = context, tuple_logits
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.ln = nn.LayerNorm(context * n_embd)
        self.fc = nn.Linear(context * n_embd, hidden)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, idx: Tensor, targets: Tensor | None = None) -> tuple[Any, Tensor | None]:
        x = self.wte(idx)  # (B, T, C)
        B, T, C = x.shape
        padded = F.pad(x, (0, 0, self.context - 1, 0))  # (B, T+k-1, C): zeros before the start
        window = padded.unfold(1, self.context, 1)  # (B, T, C, k)
        window = window.transpose(2, 3).reshape(B, T, self.context * C)  # (B, T, k*C)
        h = self.drop(F.gelu(self.fc(self.ln(window))))  # (B, T, H)
        logits = self.head(h)  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T), ignore_index=-100)
        return ((logits, h) if self.tuple_logits else logits), loss


class SleepPerStep(Callback):
    """Slow every step down (so that a subprocess can be killed in the middle of a run)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_step_end(self, state: TrainState, loss: Tensor) -> None:
        time.sleep(self.seconds)


class GradRecorder(Callback):
    """Keeps a copy of every parameter's gradient right before each optimizer step."""

    def __init__(self) -> None:
        self.grads: list[dict[str, Tensor]] = []

    def on_before_optimizer_step(self, state: TrainState) -> None:
        self.grads.append({n: p.grad.detach().clone() for n, p in state.raw_model.named_parameters()
                           if p.grad is not None})


def make_model(vocab_size: int, seed: int, dropout: float) -> TinyCharLM:
    torch.manual_seed(seed)
    return TinyCharLM(vocab_size, dropout=dropout)


def toy_run(
    data: Path, out: str | Path | None, *, max_steps: int = 30, batch_size: int = 8, save_every: int = 0,
    dropout: float = 0.1, resume: bool = False, callbacks: list[Any] | None = None, n_chars: int = 40_000,
) -> tuple[TinyCharLM, Any]:
    """The configuration shared by the subprocess runs and their in-process references."""
    ids, vocab = load_chars(Path(data), n_chars)
    model = make_model(len(vocab), 0, dropout)
    args = TrainArgs(
        out_dir=None if out is None else str(out), max_steps=max_steps, batch_size=batch_size, lr=3e-3,
        schedule="cosine", warmup_steps=3, save_every=save_every, log_every=1, progress=False,
        tensorboard=False, resume=resume, device="cpu", seed=1, grad_clip=1.0,
    )
    return model, fit(model, args, CharBlocks(ids, 32), collate, callbacks=callbacks or [])


def targs(**kw) -> TrainArgs:
    base = dict(device="cpu", progress=False, tensorboard=False, lr=3e-3, batch_size=8, log_every=1, seed=3)
    base.update(kw)
    return TrainArgs(**base)


def train_losses(history: list[dict]) -> list[tuple[int, float, float]]:
    return [(r["step"], r["loss"], r["lr"]) for r in history if r["kind"] == "train"]


def read_metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / TRAIN_LOG_FILE).read_text().splitlines()]


def scramble_rngs() -> None:
    torch.manual_seed(987654)
    np.random.seed(4321)
    random.seed(1234)


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["run", "ddp"])
    parser.add_argument("--data", required=True, help="path of tinyshakespeare/input.txt")
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--save-every", type=int, default=0)
    parser.add_argument("--step-sleep", type=float, default=0.0)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    ns = parser.parse_args(argv)
    torch.set_num_threads(ns.threads)
    callbacks: list[Any] = [SleepPerStep(ns.step_sleep)] if ns.step_sleep else []
    recorder = GradRecorder()
    if ns.mode == "ddp":
        callbacks.append(recorder)
    model, result = toy_run(
        Path(ns.data), ns.out, max_steps=ns.max_steps, batch_size=ns.batch_size, save_every=ns.save_every,
        dropout=ns.dropout, resume=ns.resume, callbacks=callbacks,
    )
    rank = int(os.environ.get("RANK", "0"))
    if ns.mode == "ddp" and rank == 0:
        losses = [r["loss"] for r in result.history if r["kind"] == "train"]
        torch.save({"grads": recorder.grads, "weights": model.state_dict(), "losses": losses},
                   Path(ns.out) / "ddp_rank0.pt")
    if rank == 0:
        print("RESULT " + json.dumps({"steps": result.steps, "stop_reason": result.stop_reason}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main())

"""Run directories: what ``pretrain`` and ``finetune`` write and every other command loads.

A run directory holds the model (``config.json`` + ``model.safetensors``), the tokenizer
files, ``task.json`` (what the model was trained for and how its inputs are built),
``labels.json`` (label names, for labelled tasks), ``metrics.json`` (final figures),
``train_args.json`` (the arguments used) and ``metrics.jsonl`` (the training log).
Hugging Face directories (BERT / GPT-2) load through the same function.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from gptbert.config import ModelConfig
from gptbert.io.checkpoint import load_any, save_model
from gptbert.io.layout import is_hf_directory
from gptbert.tokenizer import Tokenizer

TASK_FILE = "task.json"
METRICS_FILE = "metrics.json"
ARGS_FILE = "train_args.json"
LABELS_FILE = "labels.json"

TASK_HEADS = {"pretrain": None, "classify": "classify", "tokens": "tokens", "qa": "qa", "generate": "lm"}
"""Task name -> model head (pretraining picks the head from the family)."""


def pretrain_head(family: str) -> str:
    return {"bert": "pretrain", "gpt": "lm", "elmo": "lm"}[family]


@dataclass
class TaskInfo:
    """How a run's model was trained and how its inputs are built."""

    task: str = "none"
    """'pretrain', 'classify', 'tokens', 'qa', 'generate' or 'none' (a bare checkpoint)."""
    max_len: int = 128
    text_column: str = "text"
    text_pair_column: str | None = None
    label_column: str = "label"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TaskInfo":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class Run:
    """A loaded run: model (eval mode), tokenizer, task info, label names."""

    path: Path
    model: nn.Module
    tokenizer: Tokenizer | None
    task: TaskInfo
    labels: list[str] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> ModelConfig:
        return self.model.config  # type: ignore[return-value]


def _json_default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):
        return o.item()
    return str(o)


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temp file then rename)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
    os.replace(tmp, path)


def save_run(
    directory: str | os.PathLike,
    model: nn.Module,
    tokenizer: Tokenizer | None,
    task: TaskInfo,
    *,
    labels: list[str] | None = None,
    metrics: dict[str, Any] | None = None,
    args: dict[str, Any] | None = None,
) -> Path:
    """Write a run directory (files written to temp names and renamed into place)."""
    extra: dict[str, Any] = {TASK_FILE: task.to_dict()}
    if labels is not None:
        extra[LABELS_FILE] = {"labels": list(labels)}
    if metrics is not None:
        extra[METRICS_FILE] = json.loads(json.dumps(metrics, default=_json_default))
    if args is not None:
        extra[ARGS_FILE] = json.loads(json.dumps(args, default=_json_default))
    path = save_model(model, directory, extra_files=extra)
    if tokenizer is not None:
        tokenizer.save(path)
    return Path(path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON (line {e.lineno}): {e.msg}") from None


def load_run(
    path: str | os.PathLike, *, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> Run:
    """Load a run directory, one of our model directories, or a Hugging Face directory."""
    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(f"{p}: no such run directory")
    if (p / "compression.json").exists():  # bf16 / int8 / pruned models keep their shrunk structure
        from gptbert.compress import load_compressed

        model = load_compressed(p, device=device).eval()
    else:
        model = load_any(p, device=device, dtype=dtype).eval()
    tokenizer = None
    if any((p / f).exists() for f in ("tokenizer.json", "vocab.txt", "vocab.json")):
        tokenizer = Tokenizer.load(p)
    config: ModelConfig = model.config  # type: ignore[assignment]
    if (p / TASK_FILE).exists():
        task = TaskInfo.from_dict(_read_json(p / TASK_FILE))
    else:
        head_task = {"classify": "classify", "tokens": "tokens", "qa": "qa", "lm": "generate",
                     "pretrain": "pretrain", "mlm": "pretrain"}
        task = TaskInfo(task=head_task.get(config.head or "", "none"), max_len=min(config.block_size, 512))
    labels = None
    if (p / LABELS_FILE).exists():
        data = _read_json(p / LABELS_FILE)
        labels = list(data["labels"] if isinstance(data, dict) else data)
    elif is_hf_directory(p):
        from gptbert.io.checkpoint import read_labels

        labels = read_labels(p)
    metrics = _read_json(p / METRICS_FILE) if (p / METRICS_FILE).exists() else {}
    return Run(path=p, model=model, tokenizer=tokenizer, task=task, labels=labels, metrics=metrics)


def with_head(model: nn.Module, head: str | None, *, num_labels: int = 2, **overrides: Any) -> nn.Module:
    """A new model of the same family and backbone weights with another head.

    Only head parameters may be missing or left over; anything else is an error that
    names the tensors.
    """
    from gptbert.models import build_model

    old: ModelConfig = model.config  # type: ignore[assignment]
    config = old.replace(head=head, num_labels=num_labels, **overrides)
    new = build_model(config)
    state = {k: v for k, v in model.state_dict().items()}
    result = new.load_state_dict(state, strict=False)
    head_prefixes = ("mlm.", "nsp.", "task.", "lm_head.", "scalar_mix")
    bad_missing = [k for k in result.missing_keys if not k.startswith(head_prefixes) and "pooler" not in k]
    if bad_missing:
        raise ValueError(f"with_head: backbone tensors missing from the source model: {bad_missing[:5]}")
    return new

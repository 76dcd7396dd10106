"""Run directories: what ``pretrain`` and ``finetune`` write and every other command loads.

A run directory holds the model (``config.json`` + ``model.safetensors``), the tokenizer
files, ``task.json`` (what the model was trained for and how its inputs are built: a
:class:`TaskInfo` with the task's typed options), ``labels.json`` (label names, for labelled
tasks), ``metrics.json`` (final figures), ``train_args.json`` (the arguments used) and
``metrics.jsonl`` (the training log); the names are in :mod:`gptbert.io.layout`.
Hugging Face directories (BERT / GPT-2) load through the same function.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from gptbert.baselines.tfidf import KIND as BASELINE_KIND
from gptbert.baselines.tfidf import SETTINGS_FILE as BASELINE_SETTINGS_FILE
from gptbert.config import ModelConfig
from gptbert.io.checkpoint import load_any, save_model
from gptbert.io.files import to_json
from gptbert.io.layout import (
    COMPRESSION_FILE,
    LABELS_FILE,
    METRICS_FILE,
    ONNX_META_FILE,
    TASK_FILE,
    TRAIN_ARGS_FILE,
    has_tokenizer,
    is_hf_directory,
)
from gptbert.tasks import TaskOptions, options_type
from gptbert.tokenizer import Tokenizer

_HEAD_TASKS = {"classify": "classify", "tokens": "tokens", "qa": "qa", "lm": "generate", "pretrain": "pretrain",
               "mlm": "pretrain"}
"""The task of a model directory without ``task.json``, by its head."""
_OLD_PROVENANCE = ("source", "train", "dev")
_OLD_COLUMNS = ("text_column", "text_pair_column", "label_column")


@dataclass
class Distillation:
    """How a distilled run was taught."""

    teacher: str
    """The teacher's run directory."""
    temperature: float = 2.0
    alpha: float = 0.5


@dataclass
class TaskInfo:
    """How a run's model was trained and how its inputs are built."""

    task: str = "none"
    """A :data:`gptbert.tasks.TASKS` name ('pretrain', 'classify', 'tokens', 'qa', 'generate', ...)
    or 'none' (a bare checkpoint)."""
    max_len: int = 128
    options: TaskOptions = field(default_factory=TaskOptions)
    """The task's typed options (e.g. :class:`gptbert.tasks.qa.QAOptions`)."""
    source: str | None = None
    """What fine-tuning started from: a preset, a run or a Hugging Face directory."""
    train: str | None = None
    dev: str | None = None
    distillation: Distillation | None = None

    def __post_init__(self) -> None:
        if type(self.options) is TaskOptions:  # not given: the task's defaults
            self.options = options_type(self.task)()

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "max_len": self.max_len, "source": self.source, "train": self.train,
                "dev": self.dev, "options": self.options.to_dict(),
                "distillation": None if self.distillation is None else vars(self.distillation).copy()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskInfo:
        """A ``task.json``, also in the older form (``extra`` dict, classification columns at the top)."""
        task = str(data.get("task", "none"))
        if "options" in data:
            options = dict(data.get("options") or {})
            provenance = {k: data.get(k) for k in _OLD_PROVENANCE}
            distillation = data.get("distillation")
        else:  # before typed options: settings in "extra", classification columns beside it
            extra = dict(data.get("extra") or {})
            options = {**extra, **{k: data[k] for k in _OLD_COLUMNS if k in data}}
            provenance = {k: extra.get(k) for k in _OLD_PROVENANCE}
            distillation = ({"teacher": extra["distilled_from"], "temperature": extra.get("temperature", 2.0),
                             "alpha": extra.get("alpha", 0.5)} if "distilled_from" in extra else None)
        return cls(task=task, max_len=int(data.get("max_len", 128)), options=options_type(task).from_dict(options),
                   distillation=Distillation(**distillation) if distillation else None, **provenance)


@dataclass
class Run:
    """A loaded run: model (eval mode), tokenizer, task info, label names."""

    path: Path
    model: nn.Module
    tokenizer: Tokenizer | None
    task: TaskInfo
    labels: list[str] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    baseline: Any = None
    """A run whose model is not a network (``tfidf-lr``, :class:`gptbert.baselines.tfidf.TfidfLR`): it predicts
    through ``baseline.predict_proba(texts, pairs)``, and ``model`` and ``tokenizer`` are None."""

    @property
    def config(self) -> ModelConfig:
        if self.model is None:
            raise ValueError(f"{self.path}: a {BASELINE_KIND} run (TF-IDF + logistic regression) has no network; it "
                             "classifies raw text only")
        return self.model.config  # type: ignore[return-value]


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
    extra: dict[str, Any] = {TASK_FILE: to_json(task.to_dict())}
    if labels is not None:
        extra[LABELS_FILE] = to_json({"labels": list(labels)})
    if metrics is not None:
        extra[METRICS_FILE] = to_json(metrics)
    if args is not None:
        extra[TRAIN_ARGS_FILE] = to_json(args)
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
    """Load a run directory (an ONNX one included), one of our model directories, or a Hugging Face directory."""
    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(f"{p}: no such run directory" if not p.exists() else f"{p}: not a run directory")
    if (p / BASELINE_SETTINGS_FILE).is_file():
        return _load_tfidf_run(p)
    if isinstance(device, str):
        from gptbert.training.distributed import resolve_device

        device = resolve_device(device)
    if (p / ONNX_META_FILE).exists():  # an exported graph, run by ONNX Runtime
        from gptbert.io.onnx_engine import load_onnx_model

        model = load_onnx_model(p, device=device)
    elif (p / COMPRESSION_FILE).exists():  # bf16 / int8 / pruned models keep their shrunk structure
        from gptbert.compress.io import load_compressed

        model = load_compressed(p, device=device).eval()
    else:
        model = load_any(p, device=device, dtype=dtype).eval()
    tokenizer = Tokenizer.load(p) if has_tokenizer(p) else None
    config: ModelConfig = model.config  # type: ignore[assignment]
    if tokenizer is not None:
        check_vocab_fits(p, config, tokenizer)
    if (p / TASK_FILE).exists():
        task = TaskInfo.from_dict(_read_json(p / TASK_FILE))
    else:
        task = TaskInfo(task=_HEAD_TASKS.get(config.head or "", "none"), max_len=min(config.block_size, 512))
    labels = None
    if (p / LABELS_FILE).exists():
        data = _read_json(p / LABELS_FILE)
        labels = list(data["labels"] if isinstance(data, dict) else data)
    elif is_hf_directory(p):
        from gptbert.io.checkpoint import read_labels

        labels = read_labels(p)
    metrics = _read_json(p / METRICS_FILE) if (p / METRICS_FILE).exists() else {}
    return Run(path=p, model=model, tokenizer=tokenizer, task=task, labels=labels, metrics=metrics)


def _load_tfidf_run(p: Path) -> Run:
    """A ``tfidf-lr`` run directory (JSON + safetensors: loading it runs no code)."""
    from gptbert.baselines.tfidf import TfidfLR

    model = TfidfLR.load(p)
    metrics = _read_json(p / METRICS_FILE) if (p / METRICS_FILE).exists() else {}
    return Run(path=p, model=None, tokenizer=None, task=TaskInfo(task="classify", max_len=0),  # type: ignore[arg-type]
               labels=list(model.labels), metrics=metrics, baseline=model)


def check_vocab_fits(path: Path, config: ModelConfig, tokenizer: Tokenizer) -> None:
    """ValueError when the tokenizer can produce ids past the model's embedding: the one check of
    vocabulary / model agreement, made when a run is loaded (every command and the server load so)."""
    size = config.vocab_size if config.family != "encdec" or config.encoder is None else config.encoder.vocab_size
    if tokenizer.vocab_size > size:
        raise ValueError(f"{path}: the tokenizer has {tokenizer.vocab_size:,} tokens but the model's embedding has "
                         f"{size:,} rows (config.json vocab_size); ids from {size:,} on would index past it. "
                         "Use the tokenizer the model was trained with")


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

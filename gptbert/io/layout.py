"""The name of every file in a gptbert run directory, in one place.

A run directory (what ``pretrain``, ``finetune``, ``compress`` and ``compare`` write, and what
every command loads) holds:

================================  ============================================================
``config.json``                   the model's ``ModelConfig`` (or a Hugging Face config)
``model.safetensors``             the weights, every tied tensor once (see :mod:`gptbert.io.weights`)
``tokenizer.json`` / ``vocab.txt`` / ``vocab.json`` + ``merges.txt``   the tokenizer
``gptbert_tokenizer.json``        gptbert's notes on the tokenizer (kind, special tokens)
``task.json``                     what the model was trained for and how its inputs are built
``labels.json``                   label names of a labelled task
``metrics.json``                  final figures of the run
``train_args.json``               the training arguments used
``metrics.jsonl``                 the training log, one JSON record per line
``checkpoint.safetensors``        the resumable training state (optimizer, RNG, step)
``best/``                         the best weights seen on dev (early stopping)
``compression.json``              how a compressed model was made (bf16 / int8 / pruned)
``model.onnx`` + ``onnx.json``    an exported run: the graph ONNX Runtime runs instead of the weights
================================  ============================================================

:func:`is_our_directory` and :func:`is_hf_directory` tell the two kinds of model directory apart
by their ``config.json`` (a gptbert ``family``, or Hugging Face's ``model_type``).
"""

from __future__ import annotations

import os
from pathlib import Path

from gptbert.io.files import read_json_object

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TASK_FILE = "task.json"
LABELS_FILE = "labels.json"
METRICS_FILE = "metrics.json"
"""Final figures of a run (one JSON object)."""
TRAIN_ARGS_FILE = "train_args.json"
TRAIN_LOG_FILE = "metrics.jsonl"
"""The training loop's log, one JSON record per line (the name older runs already carry)."""
CHECKPOINT_FILE = "checkpoint.safetensors"
BEST_DIR = "best"
BEST_META_FILE = "meta.json"
"""Inside ``best/``: the step and metric of the kept weights."""
COMPRESSION_FILE = "compression.json"
ONNX_FILE = "model.onnx"
ONNX_META_FILE = "onnx.json"
"""An exported run (:mod:`gptbert.io.onnx_engine`): the graph and how it was exported."""
TOKENIZER_META_FILE = "gptbert_tokenizer.json"
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json")
"""Any of these marks a directory as carrying a tokenizer."""

TIED_KEY = "gptbert.tied"
"""safetensors metadata entry: JSON ``{alias name: stored name}`` of tied tensors."""


def has_tokenizer(directory: "object") -> bool:
    d = Path(str(directory))
    return any((d / name).exists() for name in TOKENIZER_FILES)


def _config_keys(directory: str | os.PathLike[str]) -> set[str] | None:
    """The top-level keys of ``directory``'s config.json (None: no such file, or not a JSON object)."""
    config = Path(directory) / CONFIG_FILE
    if not config.is_file():
        return None
    try:
        return set(read_json_object(config))
    except ValueError:
        return None


def is_our_directory(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a gptbert model directory (config.json with a 'family')."""
    keys = _config_keys(path)
    return keys is not None and "family" in keys


def is_hf_directory(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a Hugging Face model directory (config.json with 'model_type' or 'architectures')."""
    keys = _config_keys(path)
    return keys is not None and "family" not in keys and bool(keys & {"model_type", "architectures"})

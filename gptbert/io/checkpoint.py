"""Model checkpoints: our directory format, and loading any model directory (ours or Hugging Face).

Our format is a directory holding ``config.json`` (``ModelConfig`` field names),
``model.safetensors`` (every tensor once; tied names are recorded in the file's metadata, see
:mod:`gptbert.io.weights`) and whatever extra files the caller adds (tokenizer files,
``labels.json``). Hugging Face directories are read and written by :mod:`gptbert.io.hf`;
:func:`load_any`, :func:`read_config` and :func:`read_labels` take either kind.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
import torch.nn as nn

from gptbert.config import ModelConfig
from gptbert.io.files import ExtraFile, content_writer, read_json_object, write_files
from gptbert.io.hf import load_hf, read_hf_config, read_hf_labels
from gptbert.io.layout import CONFIG_FILE, LABELS_FILE, WEIGHTS_FILE, is_hf_directory, is_our_directory
from gptbert.io.weights import load_state, read_weights, write_weights
from gptbert.models import build_model, config_of

__all__ = ["load_any", "load_encoder_decoder", "load_model", "read_config", "read_labels", "save_model"]


def save_model(model: nn.Module, directory: str | os.PathLike, *, extra_files: Mapping[str, ExtraFile] | None = None) -> Path:
    """Save ``model`` (config + weights + ``extra_files``) as a gptbert checkpoint directory.

    Writes are atomic per file (a new directory appears at once). An existing
    directory keeps its other files; a Hugging Face checkpoint is never overwritten.
    """
    directory = Path(directory)
    config = config_of(model)
    if is_hf_directory(directory):
        raise FileExistsError(f"{directory} holds a Hugging Face checkpoint; refusing to overwrite it")
    extra = dict(extra_files or {})
    for reserved in (CONFIG_FILE, WEIGHTS_FILE):
        if reserved in extra:
            raise ValueError(f"extra_files may not replace {reserved}")
    state = model.state_dict()
    writers: dict[str, Callable[[Path], None]] = {WEIGHTS_FILE: lambda path: write_weights(path, state)}
    writers.update({name: content_writer(content) for name, content in extra.items()})
    writers[CONFIG_FILE] = config.save  # last: the file that marks the directory as a checkpoint
    write_files(directory, writers)
    return directory


UNFINISHED_RUN_FILES = ("checkpoint.safetensors", "metrics.jsonl")
"""What a training run writes before its end (a resumable checkpoint, the metrics log)."""


def not_a_checkpoint(path: Path, detail: str = "") -> Exception:
    """The error for a folder that is not a loadable checkpoint: an unfinished run (only what
    training writes before its end) says so and how to finish it; anything else says what was expected."""
    if (path / CONFIG_FILE).is_file():
        try:
            read_json_object(path / CONFIG_FILE)
        except ValueError as e:  # say what is wrong with the file rather than that it is foreign
            return ValueError(str(e))
    found = [name for name in UNFINISHED_RUN_FILES if (path / name).is_file()]
    if found and not (path / WEIGHTS_FILE).is_file():
        return ValueError(f"{path}: unfinished run (it holds {', '.join(found)} but no {WEIGHTS_FILE}): "
                          "finish it by running the same `gptbert pretrain` / `gptbert finetune` command "
                          "again with --resume")
    return ValueError(f"{path}: not a gptbert or Hugging Face checkpoint directory{detail}")


def load_model(directory: str | os.PathLike, *, device: str | torch.device = "cpu", dtype: torch.dtype | None = None) -> nn.Module:
    """Load a gptbert checkpoint directory; returns the model in eval mode.

    ``dtype`` None keeps the stored floating-point dtype. A truncated or foreign weights file
    raises :class:`gptbert.io.weights.WeightsError`.
    """
    directory = Path(directory)
    if not (directory / CONFIG_FILE).is_file():
        error = not_a_checkpoint(directory)
        if "unfinished" in str(error):
            raise error
        raise FileNotFoundError(f"{directory}: no {CONFIG_FILE}; not a gptbert checkpoint directory")
    if not is_our_directory(directory):
        raise ValueError(f"{directory}: {CONFIG_FILE} is not a gptbert config (use load_any for Hugging Face directories)")
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        if any((directory / name).is_file() for name in UNFINISHED_RUN_FILES):
            raise not_a_checkpoint(directory)
        raise FileNotFoundError(f"{directory}: no {WEIGHTS_FILE}")
    config = ModelConfig.load(directory / CONFIG_FILE)
    try:
        model = build_model(config)  # refuses a config too large for this machine before allocating
    except ValueError as e:
        raise ValueError(f"{directory / CONFIG_FILE}: {e}") from None
    state, _ = read_weights(weights)
    return load_state(model, state, str(weights), device=device, dtype=dtype)


def load_any(path: str | os.PathLike, *, device: str | torch.device = "cpu", dtype: torch.dtype | None = None) -> nn.Module:
    """Load a gptbert or a Hugging Face (BERT / GPT-2) checkpoint directory; eval mode."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such checkpoint directory")
    if is_our_directory(path):
        return load_model(path, device=device, dtype=dtype)
    if is_hf_directory(path):
        return load_hf(path, device=device, dtype=dtype)
    raise not_a_checkpoint(path, f" (expected {CONFIG_FILE} with a 'family', or with 'model_type'/'architectures')")


def load_encoder_decoder(
    encoder: str | os.PathLike | nn.Module, decoder: str | os.PathLike | nn.Module, *,
    device: str | torch.device = "cpu",
) -> nn.Module:
    """A bert2gpt encoder-decoder whose halves start from two checkpoints (or loaded models).

    ``encoder``: a BERT (or hybrid) run directory, gptbert checkpoint or Hugging Face BERT
    directory; ``decoder``: the same for a GPT (a Hugging Face GPT-2 directory included).
    Their heads are dropped; the cross-attention is new (see
    :meth:`gptbert.models.encdec.EncoderDecoder.from_models`). Returned in eval mode.
    """
    from gptbert.models.encdec import EncoderDecoder

    parts = [load_any(p) if not isinstance(p, nn.Module) else p for p in (encoder, decoder)]
    return EncoderDecoder.from_models(*parts).to(device).eval()


def read_config(path: str | os.PathLike) -> ModelConfig:
    """The ``ModelConfig`` of a gptbert or Hugging Face checkpoint directory, without loading weights."""
    path = Path(path)
    if is_our_directory(path):
        return ModelConfig.load(path / CONFIG_FILE)
    if is_hf_directory(path):
        return read_hf_config(path)
    raise not_a_checkpoint(path)


def read_labels(path: str | os.PathLike) -> list[str] | None:
    """Label names of a checkpoint: our ``labels.json`` (a list) or a Hugging Face ``id2label``."""
    path = Path(path)
    if (path / LABELS_FILE).is_file():
        labels = json.loads((path / LABELS_FILE).read_text())
        if isinstance(labels, dict) and isinstance(labels.get("labels"), list):  # what save_run writes
            return [str(x) for x in labels["labels"]]
        if isinstance(labels, dict):  # {"0": "neg", ...} or {"neg": 0, ...}
            if all(str(k).isdigit() for k in labels):
                return [str(labels[k]) for k in sorted(labels, key=int)]
            return [k for k, _ in sorted(labels.items(), key=lambda kv: kv[1])]
        return [str(x) for x in labels]
    if is_hf_directory(path):
        return read_hf_labels(path)
    return None

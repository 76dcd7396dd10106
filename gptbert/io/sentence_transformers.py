"""How a sentence-transformers checkpoint pools its token vectors, read from its own files.

A sentence-transformers directory is a Hugging Face model plus ``modules.json`` (the module
chain: Transformer -> Pooling -> optional Normalize), the Pooling module's
``1_Pooling/config.json`` (``pooling_mode_mean_tokens``, ``..._cls_token``,
``..._max_tokens``, ``..._lasttoken``) and ``sentence_bert_config.json``
(``max_seq_length``). :func:`read_pooling` turns them into a :class:`PoolingSpec` whose
``pooling`` is a :data:`gptbert.config.POOLINGS` name; a plain checkpoint gives ``None``
(the caller then uses the family's default). No torch import: only JSON is read.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODULES_FILE = "modules.json"
SBERT_CONFIG_FILE = "sentence_bert_config.json"
POOLING_DIR = "1_Pooling"
"""The Pooling module's folder when ``modules.json`` does not name one."""
POOLING_CONFIG_FILE = "config.json"

POOLING_MODES = {
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_lasttoken": "last",
}
"""sentence-transformers pooling flags -> our pooling names."""
UNSUPPORTED_MODES = ("pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens")


@dataclass(frozen=True)
class PoolingSpec:
    """How a checkpoint was trained to make one sentence vector."""

    pooling: str
    """'mean', 'cls', 'last' or 'max' (see ``ModelConfig.pooling``)."""
    normalize: bool
    """A Normalize module follows the pooling (unit-length embeddings)."""
    max_len: int | None
    """``max_seq_length`` of ``sentence_bert_config.json`` (tokens), when given."""
    source: str
    """The file the pooling mode was read from."""


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON (line {e.lineno}): {e.msg}") from None


def _modules(directory: Path) -> list[dict[str, Any]]:
    path = directory / MODULES_FILE
    if not path.is_file():
        return []
    data = _read_json(path)
    if not isinstance(data, list) or not all(isinstance(m, dict) for m in data):
        raise ValueError(f"{path}: expected a list of module objects")
    return data


def _pooling_config_path(directory: Path, modules: list[dict[str, Any]]) -> Path:
    for m in modules:
        if str(m.get("type", "")).endswith(".Pooling") and m.get("path"):
            return directory / str(m["path"]) / POOLING_CONFIG_FILE
    return directory / POOLING_DIR / POOLING_CONFIG_FILE


def _pooling_mode(path: Path) -> str:
    data = _read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    unsupported = [k for k in UNSUPPORTED_MODES if data.get(k)]
    chosen = [name for key, name in POOLING_MODES.items() if data.get(key)]
    if unsupported or len(chosen) != 1:
        flags = ", ".join(unsupported + [k for k, v in POOLING_MODES.items() if v in chosen]) or "none"
        raise ValueError(f"{path}: exactly one of {', '.join(POOLING_MODES)} must be true (set: {flags}); "
                         "other or combined pooling modes are not supported")
    return chosen[0]


def read_pooling(directory: str | os.PathLike[str]) -> PoolingSpec | None:
    """The pooling a sentence-transformers directory was trained with, or None for a plain checkpoint."""
    directory = Path(directory)
    modules = _modules(directory)
    path = _pooling_config_path(directory, modules)
    if not path.is_file():
        return None
    max_len = None
    sbert = directory / SBERT_CONFIG_FILE
    if sbert.is_file():
        value = _read_json(sbert).get("max_seq_length")
        max_len = int(value) if value else None
    normalize = any(str(m.get("type", "")).endswith(".Normalize") for m in modules)
    return PoolingSpec(pooling=_pooling_mode(path), normalize=normalize, max_len=max_len, source=str(path))

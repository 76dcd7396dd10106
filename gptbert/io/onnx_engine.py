"""ONNX run directories: an exported graph that every command loads, run by ONNX Runtime.

``gptbert compress RUN --method export --format onnx --out DIR`` writes a run directory whose
model is ``model.onnx`` instead of ``model.safetensors``:

=====================  =====================================================================
``model.onnx``         the graph (inputs: the collator's tensors, e.g. ``idx``, ``attention_mask``;
                       outputs: the logits), fp32 or int8-dynamic (``--format onnx-int8``)
``onnx.json``          :data:`ONNX_FORMAT` record: inputs, outputs, opset, weights, where it came from
``config.json``        the source model's ``ModelConfig`` (what the tasks read: head, labels, sizes)
tokenizer, ``task.json``, ``labels.json``   as in any run directory
=====================  =====================================================================

:func:`load_onnx_model` returns an :class:`OnnxModel`: an ``nn.Module`` with the model interface
the tasks call (``model(**batch) -> (logits, None)``, ``model.config``), so ``predict``,
``evaluate``, ``serve`` and the API run it unchanged. It offers only what the logits give
(:data:`LOGIT_CAPABILITIES`): no hidden states (``embed``) and no KV cache (``generate``).
ONNX Runtime is imported when such a directory loads (``pip install 'gptbert[onnx]'``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from gptbert.config import ModelConfig
from gptbert.io.layout import CONFIG_FILE, ONNX_FILE, ONNX_META_FILE

__all__ = ["LOGIT_CAPABILITIES", "ONNX_FORMAT", "OnnxModel", "is_onnx_directory", "load_onnx_model", "onnx_meta",
           "read_onnx_meta"]

ONNX_FORMAT = "gptbert-onnx"
_VERSION = 1
LOGIT_CAPABILITIES = frozenset({"classify", "tag", "fill_mask"})
"""What a model that returns only logits can do (:data:`gptbert.api.CAPABILITIES`)."""


def onnx_meta(export: dict[str, Any], *, weights: str, source: str, config: ModelConfig) -> dict[str, Any]:
    """The ``onnx.json`` record of an export (``export``: what :func:`gptbert.compress.export.export_onnx`
    returned; ``weights``: 'fp32' or 'int8-dynamic')."""
    import onnxruntime

    return {"format": ONNX_FORMAT, "version": _VERSION, "file": ONNX_FILE, "inputs": list(export["inputs"]),
            "outputs": list(export["outputs"]), "opset": export.get("opset"), "weights": weights,
            "exported_from": source, "family": config.family, "head": config.head,
            "max_abs_diff_vs_pytorch": export.get("max_abs_diff"), "onnxruntime": onnxruntime.__version__}


def is_onnx_directory(path: str | os.PathLike[str]) -> bool:
    return (Path(path) / ONNX_META_FILE).is_file()


def read_onnx_meta(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed ``onnx.json`` of ``directory``; ValueError naming the file when it is not one of ours."""
    path = Path(directory) / ONNX_META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON (line {e.lineno}): {e.msg}") from None
    if not isinstance(meta, dict) or meta.get("format") != ONNX_FORMAT:
        raise ValueError(f"{path}: not a gptbert ONNX record (expected \"format\": \"{ONNX_FORMAT}\")")
    if int(meta.get("version", 0)) > _VERSION:
        raise ValueError(f"{path}: version {meta.get('version')} is newer than this gptbert understands ({_VERSION})")
    return meta


class OnnxModel(nn.Module):
    """An ONNX graph run by ONNX Runtime on the CPU, called like a gptbert model.

    ``forward(**inputs)`` takes the collator's tensors by name (those the graph does not use are
    ignored) and returns ``(logits, None)``; several graph outputs come back as a tuple of logits.
    """

    engine = "onnxruntime"

    def __init__(self, path: str | os.PathLike[str], config: ModelConfig, meta: dict[str, Any], *,
                 threads: int | None = None) -> None:
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError:
            raise ValueError(f"{path}: running an ONNX run directory needs ONNX Runtime "
                             "(pip install 'gptbert[onnx]')") from None
        self.config, self.meta, self.path = config, meta, Path(path)
        # Zero-size marker: code that asks next(model.parameters()).device finds the CPU.
        self.anchor = nn.Parameter(torch.zeros(0), requires_grad=False)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # ORT raises its own exception types for a damaged or foreign file
            raise ValueError(f"{path}: ONNX Runtime cannot load it: {str(e).splitlines()[0]}") from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    @property
    def capabilities(self) -> frozenset[str]:
        return LOGIT_CAPABILITIES

    def forward(self, **inputs: Any) -> tuple[Tensor | tuple[Tensor, ...], None]:
        missing = [n for n in self.input_names if inputs.get(n) is None]
        if missing:
            raise ValueError(f"{self.path}: the graph needs input(s) {missing}; got {sorted(inputs)}")
        feeds = {n: np.ascontiguousarray(inputs[n].detach().cpu().numpy()) for n in self.input_names}
        outs = [torch.from_numpy(o) for o in self.session.run(self.output_names, feeds)]  # each (B, ...) fp32
        return (outs[0] if len(outs) == 1 else tuple(outs)), None


def load_onnx_model(directory: str | os.PathLike[str], *, device: str | torch.device = "cpu",
                    threads: int | None = None) -> OnnxModel:
    """The :class:`OnnxModel` of an ONNX run directory (eval mode); ONNX Runtime runs on the CPU only."""
    directory = Path(directory)
    if torch.device(device).type != "cpu":
        raise ValueError(f"{directory}: an ONNX run directory runs on the CPU (ONNX Runtime's CPU provider), "
                         f"not on {device}")
    meta = read_onnx_meta(directory)
    graph = directory / str(meta.get("file") or ONNX_FILE)
    if not graph.is_file() or not (directory / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{directory}: an ONNX run directory needs {graph.name} and {CONFIG_FILE}")
    return OnnxModel(graph, ModelConfig.load(directory / CONFIG_FILE), meta, threads=threads).eval()

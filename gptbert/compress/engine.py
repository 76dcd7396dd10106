"""``--precision auto`` for inference: PyTorch at the probed precision, or ONNX Runtime, by measurement.

:func:`pick_engine` exports the run's model to ONNX (checked against PyTorch, as ``compress
--method export`` does), loads it into ONNX Runtime, times batch-1 calls of both engines on the
same short texts (interleaved, the median of each) and keeps ONNX Runtime only when it measured
:data:`CLEARLY_FASTER` than PyTorch. Only the logits go through the chosen engine (classify,
tag, fill-mask); embeddings and generation stay on PyTorch. The graph is fp32 (no quantisation:
``auto`` never changes what the model computes beyond float rounding). The choice and both
timings are returned as an :class:`EngineChoice`, which the API and the server record.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from gptbert.compress.evaluate import PROBE_TEXTS
from gptbert.precision import autocast

__all__ = ["CLEARLY_FASTER", "EngineChoice", "pick_engine"]

CLEARLY_FASTER = 1.1
"""ONNX Runtime is picked only when its batch-1 median is at least this many times faster."""
_LOGIT_TASKS = frozenset({"classify", "tag", "fill_mask"})


@dataclasses.dataclass(frozen=True)
class EngineChoice:
    """Which engine runs the logits, and the measurement behind it."""

    engine: str
    """'torch' or 'onnxruntime'."""
    precision: str
    """PyTorch's precision (fp32 / bf16); the ONNX graph is fp32."""
    reason: str
    torch_ms: float | None = None
    onnx_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _median_ms(fn: Any, batches: list[dict[str, torch.Tensor]], calls: int) -> float:
    samples = []
    for i in range(calls):
        t0 = time.perf_counter()
        fn(batches[i % len(batches)])
        samples.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(samples)


def pick_engine(run: Any, precision: str, capabilities: set[str], *, calls: int = 9,
                rounds: int = 2) -> tuple[torch.nn.Module | None, EngineChoice]:
    """(ONNX Runtime model or None, the choice) for the logits of ``run`` (a PyTorch run on the CPU).

    ``capabilities``: what the run serves; nothing to gain (None) when none of them is logit-based.
    Batch-1 medians of ``calls`` calls, ``rounds`` interleaved rounds, the best round of each.
    """
    device = next(run.model.parameters()).device
    if getattr(run.model, "engine", "torch") != "torch":
        return None, EngineChoice(str(run.model.engine), "fp32", "the run is an ONNX export")
    if device.type != "cpu":
        return None, EngineChoice("torch", precision, f"ONNX Runtime is used on the CPU only; the model is on {device}")
    if not capabilities & _LOGIT_TASKS:
        return None, EngineChoice("torch", precision, "none of the run's capabilities runs on logits alone")
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return None, EngineChoice("torch", precision, "ONNX Runtime is not installed (pip install 'gptbert[onnx]')")
    from gptbert.compress.export import ExportError, export_onnx
    from gptbert.io.onnx_engine import OnnxModel
    from gptbert.tasks.classify import make_collator

    collate = make_collator(run.tokenizer, run.config, min(run.task.max_len or 128, run.config.block_size))
    batches = [{k: v for k, v in collate([(t, None, None)]).items() if k not in ("targets", "next_sentence_label")}
               for t in PROBE_TEXTS]  # each (1, T)
    with tempfile.TemporaryDirectory(prefix="gptbert-engine-") as tmp:  # ORT holds the graph once loaded
        path = Path(tmp) / "model.onnx"
        try:
            export = export_onnx(run.model, path, batches[0])
        except (ExportError, RuntimeError, ValueError) as e:
            return None, EngineChoice("torch", precision, f"the ONNX export failed: {str(e).splitlines()[0]}")
        meta = {"inputs": export["inputs"], "outputs": export["outputs"], "opset": export["opset"], "weights": "fp32",
                "exported_from": str(run.path)}
        onnx_model = OnnxModel(path, run.config, meta).eval()

    def ours(batch: dict[str, torch.Tensor]) -> Any:
        with torch.inference_mode(), autocast(precision, device):
            return run.model(**batch)

    ours(batches[0]), onnx_model(**batches[0])  # warm-up: packing, allocation
    torch_ms = onnx_ms = float("inf")
    for _ in range(rounds):
        torch_ms = min(torch_ms, _median_ms(ours, batches, calls))
        onnx_ms = min(onnx_ms, _median_ms(lambda b: onnx_model(**b), batches, calls))
    measured = f"batch-1 median {onnx_ms:.2f} ms (ONNX Runtime fp32) vs {torch_ms:.2f} ms (PyTorch {precision})"
    if onnx_ms * CLEARLY_FASTER <= torch_ms:
        return onnx_model, EngineChoice("onnxruntime", precision, f"{measured}: ONNX Runtime {torch_ms / onnx_ms:.2f}x "
                                        f"faster", round(torch_ms, 3), round(onnx_ms, 3))
    return None, EngineChoice("torch", precision, f"{measured}: ONNX Runtime not clearly faster",
                              round(torch_ms, 3), round(onnx_ms, 3))

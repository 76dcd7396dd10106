"""ONNX (checked with ONNX Runtime) and TorchScript exports match PyTorch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gptbert.compress import ExportError, export_onnx, export_torchscript
from gptbert.compress import export as export_module

from tests.compress._models import batch, tiny

ort = pytest.importorskip("onnxruntime", reason="the 'export' extra (onnx, onnxruntime) is not installed")
pytest.importorskip("onnx")

# ONNX Runtime runs native kernels chosen per CPU: a crash must fail a test, not the run.
pytestmark = pytest.mark.native_kernel


@pytest.mark.parametrize("family,head", [("bert", "classify"), ("gpt", "lm"), ("gpt", "classify")])
def test_onnx_matches_pytorch_with_dynamic_axes(tmp_path: Path, family: str, head: str) -> None:
    model = tiny(family, head=head)
    example = {**batch(), "targets": torch.zeros(3, dtype=torch.long)}  # targets are not an input
    report = export_onnx(model, tmp_path / "m.onnx", example)
    assert report["inputs"] == ["idx", "attention_mask"] and report["outputs"] == ["logits"]
    assert report["max_abs_diff"] < 1e-4
    # Independently: another batch size and length, with padding, through ONNX Runtime.
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    other = batch(b=5, t=17, seed=4)
    other["attention_mask"][2, 9:] = 0
    (got,) = session.run(None, {k: v.numpy() for k, v in other.items()})
    with torch.no_grad():
        expected = model(**other)[0].numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-3)


def test_onnx_bert_pretrain_has_two_outputs(tmp_path: Path) -> None:
    model = tiny("bert", head="pretrain")
    report = export_onnx(model, tmp_path / "p.onnx", batch())
    assert report["outputs"] == ["logits_0", "logits_1"]


@pytest.mark.parametrize("family,head", [("bert", "classify"), ("gpt", "lm")])
def test_torchscript_matches_pytorch(tmp_path: Path, family: str, head: str) -> None:
    model = tiny(family, head=head)
    report = export_torchscript(model, tmp_path / "m.pt", batch())
    assert report["max_abs_diff"] < 1e-5
    loaded = torch.jit.load(str(tmp_path / "m.pt"))
    other = batch(b=2, t=9, seed=5)
    with torch.no_grad():
        torch.testing.assert_close(loaded(other["idx"], other["attention_mask"]), model(**other)[0])


def test_a_mismatch_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the exported file computed something else, the check after export must say so."""
    model = tiny("bert")
    real = export_module._reference

    def shifted(adapter, tensors):  # noqa: ANN001, ANN202
        return [t + 1.0 for t in real(adapter, tensors)]

    monkeypatch.setattr(export_module, "_reference", shifted)
    with pytest.raises(ExportError, match="differs from PyTorch"):
        export_onnx(model, tmp_path / "m.onnx", batch())
    with pytest.raises(ExportError, match="differs from PyTorch"):
        export_torchscript(model, tmp_path / "m.pt", batch())


@pytest.mark.slow
def test_onnx_dynamo_exporter(tmp_path: Path) -> None:
    """The torch.export-based exporter (slow to start: about a minute on a loaded 2-core machine)."""
    report = export_onnx(tiny("gpt", head="classify"), tmp_path / "d.onnx", batch(), dynamo=True)
    assert report["max_abs_diff"] < 1e-4 and report["opset"] >= 18

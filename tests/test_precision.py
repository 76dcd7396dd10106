"""--precision auto picks from a measurement, never from an assumption (the probe is mocked here)."""

from __future__ import annotations

import contextlib

import pytest
import torch

from gptbert import precision


def test_autocast_fp32_and_bf16() -> None:
    assert isinstance(precision.autocast("fp32"), contextlib.nullcontext)
    with precision.autocast("bf16"):
        y = torch.nn.functional.linear(torch.randn(2, 4), torch.randn(3, 4))
    assert y.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="precision"):
        precision.autocast("fp16")


@pytest.mark.parametrize("fp32,bf16,picked", [
    (150.0, 1.2, "fp32"),      # AVX2-only EPYC: bf16 emulated
    (384.0, 2372.0, "bf16"),   # Xeon with AMX: bf16 6x fp32
    (100.0, 120.0, "fp32"),    # 1.2x: not clearly faster
    (100.0, 130.0, "bf16"),    # at the threshold
])
def test_choice_follows_the_measured_rates(fp32: float, bf16: float, picked: str) -> None:
    choice = precision.choose(fp32, bf16)
    assert choice.precision == picked
    assert f"{bf16:.0f} vs {fp32:.0f} GFLOP/s" in choice.reason
    assert choice.to_dict()["fp32_gflops"] == fp32


def test_resolve_auto_uses_the_probe_once_per_device(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def fake_probe(device: str, **_: object) -> tuple[float, float]:
        calls.append(device)
        return 384.0, 2372.0

    monkeypatch.setattr(precision, "probe", fake_probe)
    monkeypatch.setattr(precision, "_CHOICES", {})
    assert precision.resolve("auto").precision == "bf16"
    assert precision.resolve("auto").precision == "bf16"
    assert calls == ["cpu"]
    assert precision.resolve("fp32").precision == "fp32" and precision.resolve("fp32").reason == "given"
    with pytest.raises(ValueError, match="auto or one of fp32, bf16"):
        precision.resolve("int4")


def test_the_real_probe_returns_rates() -> None:
    fp32, bf16 = precision.probe("cpu", n=64, seconds=0.01)
    assert fp32 > 0 and bf16 > 0

"""Measurement primitives: hardware profile, timing, latency stats, peak RSS, sizes, budgets."""

from __future__ import annotations

import time

import numpy as np
import pytest

from gptbert.measure import (
    CPU_FLAGS_OF_INTEREST,
    MB,
    PeakRSS,
    hardware_profile,
    latency_stats,
    parse_budget,
    saved_size_mb,
    size_on_disk,
    throughput,
    time_callable,
)


def test_hardware_profile_keys():
    hw = hardware_profile()
    for key in ("cpu_model", "physical_cores", "logical_cores", "usable_cores", "cpu_flags", "ram_total_mb",
                "os", "machine", "python", "torch", "torch_threads", "gpu"):
        assert key in hw, key
    assert set(hw["cpu_flags"]) == set(CPU_FLAGS_OF_INTEREST)
    assert all(isinstance(v, bool) for v in hw["cpu_flags"].values())
    assert hw["logical_cores"] >= 1
    assert hw["ram_total_mb"] is None or hw["ram_total_mb"] > 100
    assert hw["python"].count(".") == 2


def test_latency_stats_known_samples():
    stats = latency_stats([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    # numpy linear interpolation: p50 between 5 and 6, p95 at rank 8.55 -> 9 + 0.55.
    assert stats == {"p50_ms": 5.5, "p95_ms": pytest.approx(9.55), "mean_ms": 5.5, "n": 10}
    assert latency_stats([4.0]) == {"p50_ms": 4.0, "p95_ms": 4.0, "mean_ms": 4.0, "n": 1}
    skewed = latency_stats([1.0] * 19 + [101.0])
    assert skewed["p50_ms"] == 1.0 and skewed["mean_ms"] == pytest.approx(6.0)
    assert skewed["p95_ms"] == pytest.approx(np.percentile([1.0] * 19 + [101.0], 95))
    with pytest.raises(ValueError, match="no samples"):
        latency_stats([])
    with pytest.raises(ValueError, match="finite"):
        latency_stats([1.0, float("nan")])


def test_time_callable_counts_calls():
    calls = []
    samples = time_callable(lambda: calls.append(1), warmup=2, repeats=5)
    assert len(samples) == 5 and len(calls) == 7
    assert all(s >= 0 for s in samples)
    synced = []
    time_callable(lambda: None, warmup=0, repeats=3, sync=lambda: synced.append(1))
    assert len(synced) == 3
    # min_time_s extends the number of repeats (no assertion on the time itself).
    more = time_callable(lambda: time.sleep(0.002), warmup=0, repeats=1, min_time_s=0.01)
    assert len(more) >= 2
    capped = time_callable(lambda: None, warmup=0, repeats=1, min_time_s=100.0, max_repeats=7)
    assert len(capped) == 7
    with pytest.raises(ValueError):
        time_callable(lambda: None, repeats=0)


def test_throughput_positive():
    tp = throughput(lambda: sum(range(1000)), 32, warmup=1, repeats=3)
    assert tp > 0
    with pytest.raises(ValueError):
        throughput(lambda: None, 0)


def test_peak_rss_sees_200mb():
    with PeakRSS() as probe:
        block = np.ones(200 * 2**20 // 8)  # 200 MB, touched
        deadline = time.monotonic() + 5.0  # on a busy machine the sampling thread may wait its turn
        while probe.peak_mb < probe.start_mb + 180 and time.monotonic() < deadline:
            time.sleep(0.02)
        del block
    assert probe.delta_mb >= 180, (probe.start_mb, probe.peak_mb)
    assert probe.peak_mb >= probe.start_mb + 180
    with PeakRSS() as idle:
        pass
    assert idle.delta_mb < 180


def test_size_on_disk_from_counts_and_module():
    sizes = size_on_disk(1_000_000)
    assert sizes["fp32"] == pytest.approx(4e6 / MB)
    assert sizes["bf16"] == pytest.approx(2e6 / MB)
    assert sizes["int8"] == pytest.approx(1e6 / MB)
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Linear(100, 50), torch.nn.LayerNorm(50))
    sizes = size_on_disk(model)
    n = 100 * 50 + 50 + 50 + 50
    assert sizes["fp32"] == pytest.approx(4 * n / MB)
    # int8: the 50x100 matrix at 1 byte + 50 fp32 row scales; vectors stay fp32.
    assert sizes["int8"] == pytest.approx((5000 + 4 * 50 + 4 * 150) / MB)
    tied = torch.nn.Linear(10, 10)
    shared = torch.nn.Sequential(tied, tied)
    assert size_on_disk(shared)["fp32"] == pytest.approx(4 * 110 / MB)
    with pytest.raises(TypeError):
        size_on_disk("model")


def test_size_from_real_checkpoint(tmp_path):
    torch = pytest.importorskip("torch")
    model = torch.nn.Linear(256, 256)
    path = tmp_path / "w.pt"
    torch.save(model.state_dict(), path)
    measured = saved_size_mb(path)
    assert measured == pytest.approx(size_on_disk(model)["fp32"], rel=0.05)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.bin").write_bytes(b"x" * 2**20)
    assert saved_size_mb(tmp_path / "sub") == pytest.approx(1.0)
    with pytest.raises(FileNotFoundError):
        saved_size_mb(tmp_path / "missing")


@pytest.mark.parametrize("text,seconds", [
    ("90", 90.0), (90, 90.0), ("45s", 45.0), ("5m", 300.0), ("5min", 300.0), ("1.5h", 5400.0),
    ("1h30m", 5400.0), ("2h 15m 30s", 8130.0), ("1d", 86400.0), (" 10M ", 600.0),
])
def test_parse_budget(text, seconds):
    assert parse_budget(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "m5", "5x", "0", "-3", "5m3", "abc", "nan", True])
def test_parse_budget_errors(text):
    with pytest.raises(ValueError, match="budget"):
        parse_budget(text)

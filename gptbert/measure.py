"""Measurement primitives: hardware profile, timing, latency statistics, peak memory, sizes.

Everything here is model-agnostic: timings take a zero-argument callable, sizes take a
module (or a parameter count) or a path. torch is imported only inside the functions
that need it, so this module is cheap to import from the CLI.

Units: times are milliseconds (``*_ms``) or seconds (``*_s``); sizes and memory are
MB meaning MiB (2**20 bytes) throughout, for both disk and RSS, so they compare directly.
"""

from __future__ import annotations

import os
import platform
import re
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

__all__ = [
    "MB",
    "PeakRSS",
    "current_rss_mb",
    "hardware_profile",
    "latency_stats",
    "parse_budget",
    "saved_size_mb",
    "size_on_disk",
    "throughput",
    "time_callable",
]

MB = float(2**20)
"""Bytes in one MB as used in every report (MiB)."""

CPU_FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")

# --------------------------------------------------------------------------- hardware


def _read_text(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return None


def _cpuinfo() -> dict[str, Any]:
    """Model name, CPU flags and physical core count from /proc/cpuinfo (Linux)."""
    text = _read_text("/proc/cpuinfo")
    out: dict[str, Any] = {"model": None, "flags": set(), "physical_cores": None}
    if not text:
        return out
    cores: set[tuple[str, str]] = set()
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        if not fields:
            continue
        if out["model"] is None:
            out["model"] = fields.get("model name") or fields.get("Model") or fields.get("cpu model")
        flags = fields.get("flags") or fields.get("Features")
        if flags:
            out["flags"].update(flags.split())
        if "core id" in fields:
            cores.add((fields.get("physical id", "0"), fields["core id"]))
    if cores:
        out["physical_cores"] = len(cores)
    return out


def _ram_total_mb() -> float | None:
    try:
        import psutil

        return psutil.virtual_memory().total / MB
    except Exception:  # psutil missing or unsupported platform
        pass
    text = _read_text("/proc/meminfo")
    if text:
        m = re.search(r"^MemTotal:\s+(\d+)\s*kB", text, re.MULTILINE)
        if m:
            return int(m.group(1)) * 1024 / MB
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / MB
    except (ValueError, OSError, AttributeError):
        return None


def hardware_profile() -> dict[str, Any]:
    """What the measurements ran on: CPU, cores, ISA flags, RAM, OS, Python, torch, GPU.

    Keys: ``cpu_model``, ``physical_cores``, ``logical_cores``, ``usable_cores`` (CPU
    affinity), ``cpu_flags`` (``{flag: bool}`` for avx2, avx512f, avx512_bf16, amx_tile,
    amx_bf16, amx_int8), ``ram_total_mb``, ``os``, ``machine``, ``python``, ``torch``,
    ``torch_threads``, ``gpu`` (``None`` or ``{"name", "memory_mb", "count"}``). Values
    that cannot be found are ``None``; the function never raises.
    """
    info = _cpuinfo()
    physical = info["physical_cores"]
    try:
        import psutil

        physical = psutil.cpu_count(logical=False) or physical
    except Exception:
        pass
    try:
        usable: int | None = len(os.sched_getaffinity(0))  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        usable = os.cpu_count()
    profile: dict[str, Any] = {
        "cpu_model": info["model"] or platform.processor() or None,
        "physical_cores": physical,
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "cpu_flags": {flag: flag in info["flags"] for flag in CPU_FLAGS_OF_INTEREST},
        "ram_total_mb": _ram_total_mb(),
        "os": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "torch": None,
        "torch_threads": None,
        "gpu": None,
    }
    try:
        import torch

        profile["torch"] = torch.__version__
        profile["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            profile["gpu"] = {
                "name": props.name,
                "memory_mb": props.total_memory / MB,
                "count": torch.cuda.device_count(),
            }
    except Exception:  # torch missing or CUDA query failing must not break a report
        pass
    return profile


# --------------------------------------------------------------------------- timing


def time_callable(
    fn: Callable[[], Any],
    *,
    warmup: int = 3,
    repeats: int = 20,
    min_time_s: float | None = None,
    max_repeats: int = 10_000,
    sync: Callable[[], Any] | None = None,
) -> list[float]:
    """Wall-clock time of each call of ``fn()`` in milliseconds.

    ``warmup`` untimed calls come first. Then ``fn`` runs ``repeats`` times, and more
    if ``min_time_s`` is given and the timed calls have not yet added up to it (at most
    ``max_repeats`` calls in all). ``sync`` (e.g. ``torch.cuda.synchronize``) is called
    after each call inside the timed region, so asynchronous devices are timed fully.
    """
    if warmup < 0 or repeats < 1:
        raise ValueError(f"time_callable: need warmup >= 0 and repeats >= 1, got {warmup}, {repeats}")
    if min_time_s is not None and min_time_s < 0:
        raise ValueError(f"time_callable: min_time_s must be >= 0, got {min_time_s}")
    for _ in range(warmup):
        fn()
        if sync is not None:
            sync()
    samples: list[float] = []
    total = 0.0
    while True:
        start = time.perf_counter()
        fn()
        if sync is not None:
            sync()
        elapsed = time.perf_counter() - start
        samples.append(elapsed * 1000.0)
        total += elapsed
        if len(samples) >= max_repeats:
            break
        if len(samples) >= repeats and (min_time_s is None or total >= min_time_s):
            break
    return samples


def latency_stats(samples: Iterable[float]) -> dict[str, float | int]:
    """``{"p50_ms", "p95_ms", "mean_ms", "n"}`` of latency samples in ms.

    Percentiles use numpy's default (linear interpolation between order statistics).
    """
    arr = np.asarray(list(samples), dtype=float)
    if arr.size == 0:
        raise ValueError("latency_stats: no samples")
    if not np.all(np.isfinite(arr)):
        raise ValueError("latency_stats: samples must be finite numbers")
    return {
        "p50_ms": float(np.percentile(arr, 50)),
        "p95_ms": float(np.percentile(arr, 95)),
        "mean_ms": float(arr.mean()),
        "n": int(arr.size),
    }


def throughput(
    fn: Callable[[], Any],
    n_items: int,
    *,
    warmup: int = 2,
    repeats: int = 5,
    min_time_s: float | None = None,
    sync: Callable[[], Any] | None = None,
) -> float:
    """Items per second when each call of ``fn()`` processes ``n_items`` items (e.g. a batch).

    Computed as total items over total timed wall time, so slow outliers count.
    """
    if n_items < 1:
        raise ValueError(f"throughput: n_items must be >= 1, got {n_items}")
    samples = time_callable(fn, warmup=warmup, repeats=repeats, min_time_s=min_time_s, sync=sync)
    total_s = sum(samples) / 1000.0
    if total_s <= 0:
        raise ValueError("throughput: the timed calls took no measurable time")
    return n_items * len(samples) / total_s


# --------------------------------------------------------------------------- memory


def _maxrss_mb() -> float:
    """Peak RSS of this process so far (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value / MB if sys.platform == "darwin" else value * 1024 / MB


def current_rss_mb() -> float:
    """Resident set size of this process now, in MB."""
    text = _read_text("/proc/self/statm")
    if text:
        try:
            return int(text.split()[1]) * os.sysconf("SC_PAGE_SIZE") / MB
        except (IndexError, ValueError, OSError):
            pass
    try:
        import psutil

        return psutil.Process().memory_info().rss / MB
    except Exception:
        return _maxrss_mb()  # last resort: an upper bound


class PeakRSS:
    """Peak resident memory of this process while the ``with`` block runs.

    A background thread samples RSS every ``interval_s``; on exit, if the process-wide
    ``ru_maxrss`` grew during the block, that value is a floor for the peak (it catches
    spikes shorter than the sampling interval). After the block:

    * ``peak_mb``: highest RSS of the process during the block;
    * ``start_mb``: RSS when the block began;
    * ``delta_mb``: ``peak_mb - start_mb`` (what the block itself added at its peak).

    Measure in a fresh process for numbers that do not depend on earlier work: the
    allocator may keep freed memory, and ``ru_maxrss`` never goes down.
    """

    def __init__(self, interval_s: float = 0.005) -> None:
        if interval_s <= 0:
            raise ValueError(f"PeakRSS: interval_s must be > 0, got {interval_s}")
        self.interval_s = interval_s
        self.start_mb: float = 0.0
        self.peak_mb: float = 0.0
        self._maxrss_start = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _sample(self) -> None:
        rss = current_rss_mb()
        with self._lock:
            if rss > self.peak_mb:
                self.peak_mb = rss

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> "PeakRSS":
        self._maxrss_start = _maxrss_mb()
        self.start_mb = current_rss_mb()
        self.peak_mb = self.start_mb
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="gptbert-peak-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._sample()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        maxrss_end = _maxrss_mb()
        if maxrss_end > self._maxrss_start:
            self.peak_mb = max(self.peak_mb, maxrss_end)

    @property
    def delta_mb(self) -> float:
        return max(0.0, self.peak_mb - self.start_mb)


# --------------------------------------------------------------------------- sizes


def size_on_disk(model_or_params: Any) -> dict[str, float]:
    """Estimated weight size in MB at fp32, bf16 and int8, from parameter counts.

    ``model_or_params``: an ``nn.Module`` (unique parameters; tied weights once) or a
    total parameter count. fp32 is 4 bytes per parameter and bf16 2. int8 follows
    dynamic quantisation: matrices (parameters with 2 or more dimensions) take 1 byte
    per element plus one fp32 scale per row, vectors (biases, norms) stay fp32. With
    only a count, every parameter is assumed to be a matrix element. File headers and
    buffers are not counted; use :func:`saved_size_mb` for a real file.
    """
    if isinstance(model_or_params, bool):
        raise TypeError("size_on_disk: expected an nn.Module or a parameter count")
    if isinstance(model_or_params, (int, np.integer)):
        n = int(model_or_params)
        if n < 0:
            raise ValueError(f"size_on_disk: parameter count must be >= 0, got {n}")
        return {"fp32": 4 * n / MB, "bf16": 2 * n / MB, "int8": n / MB}
    parameters = getattr(model_or_params, "parameters", None)
    if parameters is None:
        raise TypeError(
            f"size_on_disk: expected an nn.Module or a parameter count, got {type(model_or_params).__name__}"
        )
    total = matrix = rows = 0
    for p in parameters():  # nn.Module.parameters() yields shared tensors once
        n = int(p.numel())
        total += n
        if p.dim() >= 2:
            matrix += n
            rows += int(p.shape[0])
    vector = total - matrix
    return {
        "fp32": 4 * total / MB,
        "bf16": 2 * total / MB,
        "int8": (matrix + 4 * rows + 4 * vector) / MB,
    }


def saved_size_mb(path: str | os.PathLike[str]) -> float:
    """Measured size in MB of a saved file, or of all files under a directory."""
    p = Path(path)
    if p.is_file():
        return p.stat().st_size / MB
    if p.is_dir():
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) / MB
    raise FileNotFoundError(f"saved_size_mb: no such file or directory: {p}")


# --------------------------------------------------------------------------- budgets

_BUDGET_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_BUDGET_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(s|sec|min|m|h|d)", re.IGNORECASE)


def parse_budget(text: str | float | int) -> float:
    """Seconds in a time budget: ``"90"``/``90`` (seconds), ``"45s"``, ``"5m"``, ``"1.5h"``, ``"1h30m"``."""
    if isinstance(text, bool):
        raise ValueError(f"invalid time budget {text!r}")
    if isinstance(text, (int, float)):
        seconds = float(text)
    else:
        s = text.strip().replace(" ", "")
        try:
            seconds = float(s)
        except ValueError:
            pos = 0
            seconds = 0.0
            for m in _BUDGET_PART.finditer(s):
                if m.start() != pos:
                    break
                seconds += float(m.group(1)) * _BUDGET_UNITS[m.group(2).lower()]
                pos = m.end()
            if pos != len(s) or pos == 0:
                raise ValueError(
                    f"invalid time budget {text!r}; use seconds or units s/m/h/d, e.g. '90s', '5m', '1h30m'"
                ) from None
    if not np.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"invalid time budget {text!r}: must be a positive duration")
    return seconds

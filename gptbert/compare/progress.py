"""Progress lines, CPU clocks and memory release shared by the comparison's phases."""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import time
from collections.abc import Callable, Iterator

# --------------------------------------------------------------------------- progress


class _Log:
    """One line per candidate and phase on stderr: ``[2/4 gpt-mini] fine-tune (budget 60s) ...``."""

    def __init__(self, write: Callable[[str], None] | None) -> None:
        self.write = write or (lambda line: print(line, file=sys.stderr, flush=True))
        self.prefix = ""
        self.phase = "setup"

    def __call__(self, line: str) -> None:
        self.write(f"{self.prefix}{line}")

    def start(self, phase: str, detail: str = "") -> None:
        self.phase = phase
        self(f"{phase}{f' ({detail})' if detail else ''} ...")


@contextlib.contextmanager
def _cpu_clock() -> Iterator[dict[str, float]]:
    box: dict[str, float] = {}
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        yield box
    finally:
        box["wall_s"] = time.perf_counter() - t0
        box["cpu_s"] = time.process_time() - c0


def _release_memory() -> None:
    """Give freed heap memory back to the OS between candidates (glibc), so RSS numbers stay honest."""
    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass


class _Interrupted(KeyboardInterrupt):
    """Ctrl-C seen by the training loop, which stopped early and returned."""


def load_average() -> float | None:
    """The 1-minute load average (None where the OS does not give one)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None

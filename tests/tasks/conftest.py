from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory) -> Path:
    """Where the shared tiny runs of tests/tasks/_runs.py are written."""
    return tmp_path_factory.mktemp("task_runs")


@pytest.fixture(autouse=True)
def _one_thread():
    """Two cores shared with other jobs: one thread per test process is fastest overall."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

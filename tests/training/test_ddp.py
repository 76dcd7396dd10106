"""Two CPU processes under torch.distributed.run train exactly like one process with twice the batch."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.training._train_helpers import REPO, SHAKESPEARE, GradRecorder, toy_run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_two_processes_equal_one_with_double_batch(shared_data: Path, tmp_path: Path) -> None:
    data = shared_data / SHAKESPEARE
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    env.pop("WORLD_SIZE", None)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
        "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
        str(REPO / "tests" / "training" / "_train_helpers.py"), "ddp", "--data", str(data), "--out", str(out),
        "--batch-size", "8", "--max-steps", "2", "--dropout", "0",
    ]
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert '"stop_reason": "max_steps"' in proc.stdout
    ddp = torch.load(out / "ddp_rank0.pt", weights_only=True)

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        recorder = GradRecorder()
        model, result = toy_run(data, None, max_steps=2, batch_size=16, dropout=0.0, callbacks=[recorder])
    finally:
        torch.set_num_threads(before)

    losses = [r["loss"] for r in result.history if r["kind"] == "train"]
    assert len(losses) == len(ddp["losses"]) == 2
    for single, multi in zip(losses, ddp["losses"]):
        assert multi == pytest.approx(single, rel=1e-6)
    assert len(ddp["grads"]) == len(recorder.grads) == 2
    for step, (g_single, g_multi) in enumerate(zip(recorder.grads, ddp["grads"])):
        assert g_single.keys() == g_multi.keys()
        for name in g_single:
            assert _rel_err(g_multi[name], g_single[name]) < 1e-6, (step, name)
    for name, w in model.state_dict().items():
        assert _rel_err(ddp["weights"][name], w) < 1e-6, name
    # the two processes really saw different halves: a second step moved the weights
    assert not torch.equal(ddp["grads"][0]["fc.weight"], ddp["grads"][1]["fc.weight"])

"""A failed run never blocks the next attempt (issue 15, item 12): a diverged pre-training run
stops with one line and leaves no --out folder, and the same command with a sane --lr then works."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability._inputs import write_inputs
from tests.reliability.test_corpus import run_cli

ARGS = "--max-steps 3 --batch-size 4 --no-progress --no-tensorboard --vocab-size 300 --max-len 16"


@pytest.mark.parametrize("command", ["pretrain --model gpt-nano --data {t}/good.txt",
                                     "finetune --model bert-tiny --recipe none --train {t}/good.tsv"])
def test_diverged_run_leaves_nothing_and_the_retry_works(command: str, tmp_path: Path) -> None:
    write_inputs(tmp_path)
    out = tmp_path / "run"
    base = command.format(t=tmp_path).split() + ["--out", str(out), *ARGS.split()]
    code, _, err = run_cli([*base, "--lr", "1e30"])
    assert code == 2, err[-2000:]
    assert "diverged" in err.splitlines()[-1] and "step" in err.splitlines()[-1]
    assert not out.exists(), f"the failed run left {sorted(p.name for p in out.iterdir())}"
    code, _, err = run_cli([*base, "--lr", "1e-3"])
    assert code == 0, err[-2000:]
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()


def test_failed_run_keeps_a_folder_it_did_not_create(tmp_path: Path) -> None:
    """--force into an existing folder: a failure must not delete what the user had there."""
    write_inputs(tmp_path)
    out = tmp_path / "outdir"
    code, _, err = run_cli(["pretrain", "--model", "gpt-nano", "--data", str(tmp_path / "good.txt"), "--out",
                            str(out), "--force", *ARGS.split(), "--lr", "1e30"])
    assert code == 2, err[-2000:]
    assert (out / "keep.txt").read_text() == "keep me\n"

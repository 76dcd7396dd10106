"""Tests of gptbert.training.args: durations, TrainArgs validation and its command-line options."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from gptbert.cli._args import add_dataclass_arguments, dataclass_from_args, field_docs
from gptbert.training import TrainArgs, parse_duration
from gptbert.training.args import format_duration


@pytest.mark.parametrize(
    "text, seconds",
    [("10m", 600), ("90s", 90), ("1h30m", 5400), ("1.5h", 5400), ("45", 45), (" 2d ", 172800), (2, 2.0),
     ("1h 5s", 3605)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10x", "m", "10m5", "-5s", "0s", "1h-30m", "abc"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_train_args_cli_roundtrip():
    docs = field_docs(TrainArgs)
    missing = [f.name for f in dataclasses.fields(TrainArgs) if f.name not in docs]
    assert not missing, f"fields without a docstring: {missing}"
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, TrainArgs)
    assert "--time-budget" in parser.format_help()  # every help text formats
    ns = parser.parse_args(["--time-budget", "1h30m", "--schedule", "cosine", "--no-progress", "--max-steps", "5",
                            "--precision", "bf16", "--lr", "1e-4", "--out-dir", "/tmp/x", "--metric-mode", "max"])
    args = dataclass_from_args(TrainArgs, ns)
    assert (args.time_budget_s, args.schedule, args.progress, args.max_steps, args.precision, args.lr) == (
        5400.0, "cosine", False, 5, "bf16", 1e-4)
    assert args.max_epochs is None and args.out_dir == "/tmp/x" and args.metric_mode == "max"
    with pytest.raises(SystemExit):
        parser.parse_args(["--schedule", "step"])


@pytest.mark.parametrize(
    "kw, match",
    [(dict(batch_size=0), "batch_size"), (dict(schedule="poly"), "schedule"), (dict(time_budget="soon"), "duration"),
     (dict(min_lr=1.0, lr=0.1), "min_lr"), (dict(device="tpu"), "device"), (dict(resume=True), "out_dir"),
     (dict(max_steps=0), "max_steps")],
)
def test_train_args_validation(kw, match):
    with pytest.raises(ValueError, match=match):
        TrainArgs(**kw)


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (45.4, "45s"), (125, "2m05s"), (3723, "1h02m03s")])
def test_format_duration_reads_back(seconds, text):
    assert format_duration(seconds) == text
    if seconds:
        assert parse_duration(text) == round(seconds)


def test_progress_interval_validation():
    assert TrainArgs().progress_interval == 30.0
    with pytest.raises(ValueError, match="progress_interval"):
        TrainArgs(progress_interval=-1)

"""Data fixtures of the training tests: TinyShakespeare as blocks of 32 characters."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.training._train_helpers import SHAKESPEARE, CharBlocks, load_chars


@pytest.fixture(scope="module")
def chars(shared_data: Path) -> tuple[torch.Tensor, list[str]]:
    return load_chars(shared_data / SHAKESPEARE, 60_000)


@pytest.fixture(scope="module")
def train_set(chars) -> CharBlocks:
    return CharBlocks(chars[0][:50_000], 32)


@pytest.fixture(scope="module")
def dev_set(chars) -> CharBlocks:
    return CharBlocks(chars[0][50_000:], 32)


@pytest.fixture(scope="module")
def vocab_size(chars) -> int:
    return len(chars[1])

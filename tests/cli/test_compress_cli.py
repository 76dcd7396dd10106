"""gptbert compress on a small real run directory: the output loads and keeps the task."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gptbert.cli import main


@pytest.fixture(scope="module")
def clf_run(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gptbert.source import resolve_source
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
                 "--dev", str(shared_data / "sst2" / "dev.tsv"), "--max-examples", "40", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert 0.0 <= report["compressed"]["dev"] <= 1.0 and report["original"]["size_mb"] > 0
    for side in ("original", "compressed"):
        speed = report[side]
        assert speed["throughput_bs32"] > 0 and 0 < speed["latency_ms_bs1"] <= speed["latency_ms_bs1_p95"]
    lm = LM.load(out)
    assert lm.classify(["a moving , funny film"])[0]["label"] in ("0", "1")
    if method == "int8-dynamic":
        assert report["compressed"]["size_mb"] < report["original"]["size_mb"]
    if method == "prune-heads":
        assert count_parameters(lm.model) < count_parameters(LM.load(clf_run).model)


def test_export_onnx_checked(clf_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compress", str(clf_run), "--method", "export", "--format", "onnx", "--out", str(tmp_path / "x"),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["checked_against_pytorch"] is True
    assert (tmp_path / "x" / "model.onnx").is_file()


def test_refuses_nonempty_out(clf_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "keep.txt").write_text("user data")
    assert main(["compress", str(clf_run), "--method", "bf16", "--out", str(tmp_path)]) == 2
    assert (tmp_path / "keep.txt").read_text() == "user data"


@pytest.fixture(scope="module")
def small_train(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    lines = (shared_data / "sst2" / "train.tsv").read_text().splitlines()[:161]  # header + 160 rows
    path = tmp_path_factory.mktemp("data") / "train.tsv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("student", ["bert-tiny", "gpt-micro"])
def test_distill_trains_a_student_run(student: str, clf_run: Path, small_train: Path, shared_data: Path,
                                      tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gptbert.api import LM
    from gptbert.run import load_run

    out = tmp_path / student
    assert main(["compress", str(clf_run), "--method", "distill", "--student", student, "--train", str(small_train),
                 "--dev", str(shared_data / "sst2" / "dev.tsv"), "--max-examples", "40", "--max-steps", "6",
                 "--batch-size", "16", "--vocab-size", "300", "--no-progress", "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["steps"] == 6 and 0.0 <= report["student_dev_accuracy"] <= 1.0
    assert 0.0 <= report["teacher_dev_accuracy"] <= 1.0
    run = load_run(out)
    assert run.task.distillation.teacher == str(clf_run) and run.labels == ["0", "1"]
    assert run.config.family == ("gpt" if student == "gpt-micro" else "bert")
    teacher = load_run(clf_run)
    # Same tokenizer kind: the student reads the teacher's vocabulary; across families it has its own.
    same_vocab = run.tokenizer.vocab_size == teacher.tokenizer.vocab_size and run.tokenizer.kind == teacher.tokenizer.kind
    assert same_vocab == (student == "bert-tiny")
    soft = run.metrics["soft_loss_first_last"]
    assert len(soft) == 2 and all(v >= 0 for v in soft)
    assert LM.load(out).classify(["a moving , funny film"])[0]["label"] in ("0", "1")


def test_distill_needs_a_student_and_data(clf_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compress", str(clf_run), "--method", "distill", "--out", str(tmp_path / "s")]) == 2
    assert "--student" in capsys.readouterr().err


@pytest.mark.parametrize("method,extra", [("prune-magnitude", ["--sparsity", "0.5"]), ("prune-heads", ["--heads", "2"])])
def test_pruning_with_recovery_fine_tuning(method: str, extra: list[str], clf_run: Path, small_train: Path,
                                           tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gptbert.compress import sparsity
    from gptbert.models import count_parameters
    from gptbert.run import load_run

    out = tmp_path / method
    assert main(["compress", str(clf_run), "--method", method, *extra, "--train", str(small_train),
                 "--max-steps", "4", "--batch-size", "16", "--no-progress", "--out", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)["info"]
    assert info["recovery"]["steps"] == 4
    pruned = load_run(out).model
    before = load_run(clf_run).model
    if method == "prune-magnitude":
        # Zeros survive four optimizer steps of recovery, and the other weights did move.
        assert info["recovery"]["sparsity_after"] == pytest.approx(0.5, abs=0.01)
        assert sparsity(pruned) == pytest.approx(0.5, abs=0.01)
        changed = [not torch_equal(a, b) for a, b in zip(pruned.parameters(), before.parameters())]
        assert any(changed)
    else:
        assert info["importance"] == "gradient"
        assert count_parameters(pruned) < count_parameters(before)


def torch_equal(a, b) -> bool:  # noqa: ANN001
    import torch

    return a.shape == b.shape and bool(torch.equal(a, b))


def test_dev_scores_every_row_and_says_how_many(clf_run: Path, shared_data: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Without --max-examples the whole dev file is scored; the summary and the JSON give the count."""
    dev = shared_data / "sst2" / "dev.tsv"
    rows = len(dev.read_text(encoding="utf-8").splitlines()) - 1  # 872 in SST-2
    json_out = tmp_path / "report.json"
    assert main(["compress", str(clf_run), "--method", "int8-dynamic", "--out", str(tmp_path / "q"),
                 "--dev", str(dev), "--json-out", str(json_out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"compressed {clf_run} with int8-dynamic in ")
    assert re.search(rf"dev accuracy +\d\.\d{{3}} -> \d\.\d{{3}} \({rows:,} rows; ", text)
    assert re.search(r"size on disk +[\d.]+ -> [\d.]+ MB \([\d.]+x smaller\)", text)
    assert re.search(r"latency, batch 1 +p50 [\d.]+ -> [\d.]+ ms \(.*\); p95 ", text)
    assert re.search(r"throughput, batch 32 +[\d,.]+ -> [\d,.]+ items/s \(", text)
    assert f"run: {tmp_path / 'q'}" in text and '"loss"' not in text and "{" not in text
    report = json.loads(json_out.read_text(encoding="utf-8"))
    assert report["original"]["dev_rows"] == report["compressed"]["dev_rows"] == rows


def test_max_examples_is_reported(clf_run: Path, shared_data: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compress", str(clf_run), "--method", "bf16", "--out", str(tmp_path / "b"),
                 "--dev", str(shared_data / "sst2" / "dev.tsv"), "--max-examples", "25"]) == 0
    assert "(25 rows; " in capsys.readouterr().out


def test_summary_of_recovery_and_distillation(clf_run: Path, small_train: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compress", str(clf_run), "--method", "prune-heads", "--heads", "1", "--train", str(small_train),
                 "--max-steps", "2", "--batch-size", "16", "--no-progress", "--out", str(tmp_path / "p")]) == 0
    text = capsys.readouterr().out
    # No --dev: the recovery's dev is a 10 % split of the 160 training rows; no dev accuracy of the runs.
    assert re.search(r"recovery fine-tuning +2 steps in \d+s \(stopped: max steps\), best dev accuracy "
                     r"\d\.\d{3} \(16 rows\)", text)
    assert "dev accuracy          not measured (give --dev FILE" in text
    assert main(["compress", str(clf_run), "--method", "distill", "--student", "bert-tiny", "--train",
                 str(small_train), "--max-steps", "2", "--batch-size", "16", "--vocab-size", "300",
                 "--no-progress", "--out", str(tmp_path / "d")]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"distilled {clf_run} into bert-tiny in ")
    assert re.search(r"teacher dev accuracy +\d\.\d{3} \(16 rows\)", text)
    assert re.search(r"student dev accuracy +\d\.\d{3} \(16 rows\)", text)
    assert f"run: {tmp_path / 'd'}" in text

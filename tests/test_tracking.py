"""gptbert.tracking against a real local MLflow file store (read back with ``mlflow.search_runs`` and
``MlflowClient``) and real TensorBoard event files; ``finetune`` / ``pretrain --track mlflow``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from gptbert.cli import main
from gptbert.tracking import TrackingCallback, log_candidate, log_run, open_tracker

mlflow = pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402


def _runs(uri: str, experiment: str = "gptbert") -> Any:
    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(experiment_names=[experiment], output_format="pandas")


def test_mlflow_tracker_params_metric_history_files_and_nested_candidates(tmp_path: Path) -> None:
    store = tmp_path / "mlruns"
    report = tmp_path / "report.md"
    report.write_text("# comparison\n")
    run_dir = tmp_path / "cand-a"
    run_dir.mkdir()
    (run_dir / "metrics.json").write_text(json.dumps({"dev": {"accuracy": 0.8}}))
    (run_dir / "model.safetensors").write_bytes(b"weights")  # not a tracked file
    with open_tracker("mlflow", uri=str(store), experiment="cmp", run_name="comparison") as parent:
        parent.log_params({"task": "classify", "budget": {"time": "60s", "steps": None}, "weird key!": 1})
        for step, loss in enumerate([2.0, 1.5, 1.25], 1):
            parent.log_metrics({"train/loss": loss, "train/note": "text is not a metric"}, step=step)
        log_candidate(parent, "tfidf", {"lr": None, "C": 4.0}, {"dev": {"accuracy": 0.71, "n": 60}, "latency_ms": 0.3},
                      [run_dir])
        log_candidate(parent, "bert-mini", {"lr": 3e-4}, {"dev": {"accuracy": 0.75}}, [report])
        parent.log_files([report])
    uri = store.resolve().as_uri()
    runs = _runs(uri, "cmp")
    assert sorted(runs["tags.mlflow.runName"]) == ["bert-mini", "comparison", "tfidf"]
    by_name = {r["tags.mlflow.runName"]: r for _, r in runs.iterrows()}
    top = by_name["comparison"]
    assert top["params.task"] == "classify" and top["params.budget.time"] == "60s"
    assert "params.budget.steps" not in runs or runs["params.budget.steps"].isna().all()
    assert top["params.weird key_"] == "1" and top["status"] == "FINISHED"
    assert "metrics.train/note" not in runs
    for name in ("tfidf", "bert-mini"):
        assert by_name[name]["tags.mlflow.parentRunId"] == top["run_id"]
    assert by_name["tfidf"]["metrics.dev/accuracy"] == pytest.approx(0.71)
    assert by_name["tfidf"]["params.C"] == "4.0" and by_name["bert-mini"]["params.lr"] == "0.0003"
    client = MlflowClient(tracking_uri=uri)
    history = client.get_metric_history(top["run_id"], "train/loss")
    assert [(m.step, m.value) for m in history] == [(1, 2.0), (2, 1.5), (3, 1.25)]
    assert [a.path for a in client.list_artifacts(top["run_id"])] == ["report.md"]
    assert [a.path for a in client.list_artifacts(by_name["tfidf"]["run_id"], "run")] == ["run/metrics.json"]
    assert [a.path for a in client.list_artifacts(by_name["bert-mini"]["run_id"])] == ["report.md"]


def test_failed_candidate_is_marked_and_the_error_names_the_file(tmp_path: Path) -> None:
    store = tmp_path / "mlruns"
    with open_tracker("mlflow", uri=str(store), run_name="cmp") as parent:
        with pytest.raises(FileNotFoundError, match=r"nope\.md: no such file \(a file of candidate 'x'\)"):
            log_candidate(parent, "x", {"a": 1}, {"m": 1.0}, [tmp_path / "nope.md"])
    runs = _runs(store.resolve().as_uri())
    assert dict(zip(runs["tags.mlflow.runName"], runs["status"])) == {"cmp": "FINISHED", "x": "FAILED"}


def test_tensorboard_tracker_writes_scalars_text_and_files(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    f = tmp_path / "notes.txt"
    f.write_text("x")
    with open_tracker("tensorboard", log_dir=tmp_path / "tb") as tb:
        tb.log_params({"lr": 0.1})
        tb.log_metrics({"train/loss": 2.0}, step=1)
        tb.log_metrics({"train/loss": 1.0}, step=5)
        tb.log_metrics({"dev": {"accuracy": 0.9}})  # a final figure: at the last step
        log_candidate(tb, "cand/a", {"lr": 0.2}, {"acc": 0.5}, [f])
    acc = EventAccumulator(str(tmp_path / "tb")).Reload()
    assert [(e.step, e.value) for e in acc.Scalars("train/loss")] == [(1, 2.0), (5, 1.0)]
    assert [(e.step, pytest.approx(e.value)) for e in acc.Scalars("dev/accuracy")] == [(5, pytest.approx(0.9))]
    assert (tmp_path / "tb" / "cand_a" / "files" / "notes.txt").read_text() == "x"
    assert EventAccumulator(str(tmp_path / "tb" / "cand_a")).Reload().Scalars("acc")[0].value == 0.5


def test_tracking_callback_only_on_rank_0(tmp_path: Path) -> None:
    from gptbert.tracking import Tracker

    class Recorder(Tracker):
        def __init__(self) -> None:
            self.calls: list[tuple[Any, ...]] = []

        def log_metrics(self, metrics: Any, step: int | None = None) -> None:
            self.calls.append((dict(metrics), step))

    class State:
        rank = 1

    rec = Recorder()
    cb = TrackingCallback(rec)
    cb.on_log(State(), {"kind": "train", "step": 3, "loss": 1.0})
    assert rec.calls == []
    State.rank = 0
    cb.on_log(State(), {"kind": "eval", "step": 4, "eval_accuracy": 0.5, "best": True})
    cb.on_log(State(), {"kind": "train", "step": 4, "loss": 0.9, "grad_norm": None})
    assert rec.calls == [({"eval/accuracy": 0.5}, 4), ({"train/loss": 0.9, "train/grad_norm": None}, 4)]


def _finetune(tmp_path: Path, shared_data: Path, *track: str) -> tuple[int, Path, Path]:
    lines = (shared_data / "sst2" / "train.tsv").read_text(encoding="utf-8").splitlines()
    tmp_path.mkdir(parents=True, exist_ok=True)
    train = tmp_path / "train.tsv"
    train.write_text("\n".join(lines[:161]) + "\n")
    out = tmp_path / "run"
    store = tmp_path / "mlruns"
    code = main(["finetune", "--model", "bert-tiny", "--train", str(train), "--out", str(out), "--recipe", "none",
                 "--vocab-size", "400", "--max-len", "32", "--max-steps", "6", "--batch-size", "16", "--log-every", "2",
                 "--no-progress", "--device", "cpu", *track, "--track-uri", str(store), "--json"])
    return code, out, store


def test_finetune_track_mlflow(tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, store = _finetune(tmp_path, shared_data, "--track", "mlflow")
    summary = json.loads(capsys.readouterr().out)
    assert code == 0
    assert not (out / "tb").exists()  # --track without tensorboard turns the events off
    runs = _runs(store.resolve().as_uri())
    assert len(runs) == 1
    run = runs.iloc[0]
    assert run["tags.mlflow.runName"] == "run" and run["status"] == "FINISHED"
    assert run["params.model"] == "bert-tiny" and run["params.task"] == "classify"
    assert run["params.train.max_steps"] == "6" and run["params.train.batch_size"] == "16"
    assert run["params.max_len"] == "32"
    assert run["metrics.dev/accuracy"] == pytest.approx(summary["dev"]["accuracy"])
    assert run["metrics.steps"] == 6 and run["metrics.fit/steps"] == 6
    client = MlflowClient(tracking_uri=store.resolve().as_uri())
    log = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    train_records = [r for r in log if r["kind"] == "train"]
    history = client.get_metric_history(run["run_id"], "train/loss")
    assert [(m.step, m.value) for m in history] == [(r["step"], pytest.approx(r["loss"])) for r in train_records]
    assert len(history) == 3
    files = {a.path for a in client.list_artifacts(run["run_id"], "run")}
    assert {"run/metrics.json", "run/metrics.jsonl", "run/config.json", "run/labels.json"} <= files
    assert not any(f.endswith(".safetensors") for f in files)


def test_finetune_track_both_and_missing_mlflow(tmp_path: Path, shared_data: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)  # as if mlflow were not installed
    code, out, _ = _finetune(tmp_path, shared_data, "--track", "mlflow")
    err = capsys.readouterr().err
    assert code == 2 and "--track mlflow needs MLflow: pip install 'gptbert[track]'" in err
    monkeypatch.undo()
    pytest.importorskip("tensorboard")
    code, out, store = _finetune(tmp_path / "both", shared_data, "--track", "mlflow", "--track", "tensorboard")
    assert code == 0 and (out / "tb").is_dir() and len(_runs(store.resolve().as_uri())) == 1


def test_pretrain_track_mlflow(tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (shared_data / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8").splitlines()[:400]
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(text) + "\n")
    store = tmp_path / "mlruns"
    code = main(["pretrain", "--model", "gpt-nano", "--data", str(corpus), "--out", str(tmp_path / "lm"),
                 "--vocab-size", "300", "--max-len", "32", "--max-steps", "4", "--batch-size", "8", "--log-every", "2",
                 "--no-progress", "--device", "cpu", "--track", "mlflow", "--track-uri", str(store), "--json"])
    assert code == 0, capsys.readouterr().err
    run = _runs(store.resolve().as_uri()).iloc[0]
    assert run["params.command"] == "pretrain" and run["params.model"] == "gpt-nano"
    client = MlflowClient(tracking_uri=store.resolve().as_uri())
    assert [m.step for m in client.get_metric_history(run["run_id"], "train/loss")] == [2, 4]
    assert "run/metrics.json" in {a.path for a in client.list_artifacts(run["run_id"], "run")}


def test_log_run_copies_only_small_run_files(tmp_path: Path) -> None:
    from gptbert.tracking import Tracker

    class Files(Tracker):
        got: list[str] = []

        def log_files(self, paths: Any, folder: str | None = None) -> None:
            self.got = [Path(p).name for p in paths]

    d = tmp_path / "r"
    d.mkdir()
    for name in ("config.json", "task.json", "model.safetensors", "checkpoint.safetensors", "notes.txt"):
        (d / name).write_text("{}")
    t = Files()
    log_run(t, d)
    assert t.got == ["config.json", "task.json"]


def test_track_none_cannot_go_with_another(tmp_path: Path, shared_data: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _finetune(tmp_path, shared_data, "--track", "none", "--track", "mlflow")
    assert code == 2 and "--track none: cannot go with another --track" in capsys.readouterr().err
    assert not out.exists()

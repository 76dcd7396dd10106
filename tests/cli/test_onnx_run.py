"""``compress --method export --format onnx`` writes a run directory that predict / evaluate / serve /
info load and ONNX Runtime executes, with the predictions of the PyTorch run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gptbert.cli import main

TEXTS = ["a gripping , funny film", "dull and far too long", "the acting is strong but the plot is thin"]


@pytest.fixture(scope="module")
def clf_run(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gptbert.run import TaskInfo, save_run
    from gptbert.source import resolve_source

    texts = [line.split("\t")[0] for line in (shared_data / "sst2" / "dev.tsv").read_text().splitlines()[1:300]]
    src = resolve_source("bert-tiny", head="classify", num_labels=2, texts=texts, vocab_size=400, max_len=32)
    out = tmp_path_factory.mktemp("run") / "clf"
    save_run(out, src.model, src.tokenizer, TaskInfo(task="classify", max_len=32), labels=["0", "1"])
    return out


@pytest.fixture(scope="module")
def onnx_runs(clf_run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for fmt in ("onnx", "onnx-int8"):
        d = tmp_path_factory.mktemp("export") / fmt
        assert main(["compress", str(clf_run), "--method", "export", "--format", fmt, "--out", str(d),
                     "--json"]) == 0
        out[fmt] = d
    return out


def test_export_is_a_run_directory(onnx_runs: dict[str, Path], clf_run: Path) -> None:
    from gptbert.api import LM

    torch_lm, onnx_lm = LM.load(clf_run), LM.load(onnx_runs["onnx"])
    assert onnx_lm.engine == "onnxruntime" and torch_lm.engine == "torch"
    assert onnx_lm.labels == ["0", "1"] and onnx_lm.run.task.task == "classify"
    ours, theirs = torch_lm.classify(TEXTS), onnx_lm.classify(TEXTS)
    for a, b in zip(ours, theirs):
        assert a["label"] == b["label"]
        assert np.allclose([a["scores"][k] for k in ("0", "1")], [b["scores"][k] for k in ("0", "1")],
                           atol=1e-4)
    # int8: same labels' probabilities within int8 noise
    q = LM.load(onnx_runs["onnx-int8"]).classify(TEXTS)
    assert max(abs(a["score"] - b["scores"][a["label"]]) for a, b in zip(ours, q)) < 0.1
    assert onnx_lm.capabilities == {"classify"}
    with pytest.raises(ValueError, match="cannot embed"):
        onnx_lm.embed(TEXTS)
    with pytest.raises(ValueError, match="precision"):
        LM.load(onnx_runs["onnx"], precision="bf16")


def test_predict_evaluate_info(onnx_runs: dict[str, Path], clf_run: Path, shared_data: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    d = onnx_runs["onnx"]
    assert main(["predict", str(d), "--text", *TEXTS]) == 0
    got = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert main(["predict", str(clf_run), "--text", *TEXTS]) == 0
    want = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [g["label"] for g in got] == [w["label"] for w in want]
    assert np.allclose([g["score"] for g in got], [w["score"] for w in want], atol=1e-4)

    dev = tmp_path / "dev.tsv"
    dev.write_text("\n".join((shared_data / "sst2" / "dev.tsv").read_text().splitlines()[:41]) + "\n")
    scores = []
    for run in (d, clf_run):
        assert main(["evaluate", str(run), "--data", str(dev), "--json"]) == 0
        scores.append(json.loads(capsys.readouterr().out)["accuracy"])
    assert scores[0] == scores[1]

    assert main(["info", str(d), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["engine"]["name"] == "onnxruntime" and info["engine"]["weights"] == "fp32"
    assert info["checkpoint_bytes"] == (d / "model.onnx").stat().st_size
    assert main(["info", str(onnx_runs["onnx-int8"])]) == 0
    text = capsys.readouterr().out
    assert "ONNX Runtime" in text and "int8-dynamic" in text


def test_serve_runs_the_onnx_run(onnx_runs: dict[str, Path]) -> None:
    from fastapi.testclient import TestClient

    from gptbert.api import LM
    from gptbert.serve.app import create_app
    from gptbert.serve.settings import ServeSettings

    lm = LM.load(onnx_runs["onnx"])
    with TestClient(create_app(ServeSettings(), lm)) as client:
        r = client.post("/v1/classify", json={"texts": TEXTS})
        assert r.status_code == 200, r.text
        assert [x["label"] for x in r.json()["results"]] == [x["label"] for x in lm.classify(TEXTS)]
        info = client.get("/v1/info").json()
        assert info["engine"]["engine"] == "onnxruntime" and info["capabilities"] == ["classify"]


def test_cuda_and_damaged_graph_refused(onnx_runs: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    from gptbert.run import load_run

    with pytest.raises(ValueError, match="CPU|CUDA is not available"):
        load_run(onnx_runs["onnx"], device="cuda")
    broken = tmp_path / "broken"
    shutil.copytree(onnx_runs["onnx"], broken)
    (broken / "model.onnx").write_bytes(b"not a graph")
    with pytest.raises(ValueError, match="ONNX Runtime cannot load it"):
        load_run(broken)


def test_precision_auto_picks_the_engine_by_measurement(clf_run: Path) -> None:
    """auto measures both engines at batch 1 and records the choice; either way the labels agree."""
    from gptbert.api import LM

    auto, plain = LM.load(clf_run, precision="auto"), LM.load(clf_run)
    choice = auto.choice
    assert choice["engine"] in ("torch", "onnxruntime") and choice["engine"] == auto.engine
    assert choice["torch_ms"] > 0 and choice["onnx_ms"] > 0 and "batch-1 median" in choice["reason"]
    assert (choice["engine"] == "onnxruntime") == (choice["onnx_ms"] * 1.1 <= choice["torch_ms"])
    assert choice["precision_probe"]["precision"] == auto.precision
    assert auto.capabilities == plain.capabilities  # embed stays on PyTorch
    a, b = auto.classify(TEXTS), plain.classify(TEXTS)
    assert [x["label"] for x in a] == [x["label"] for x in b]
    assert np.allclose([x["score"] for x in a], [x["score"] for x in b], atol=1e-4)
    assert auto.embed(TEXTS[:1]).shape[0] == 1


def test_serve_settings_accept_auto() -> None:
    from gptbert.serve.settings import ServeSettings

    ServeSettings(precision="auto").validate()
    with pytest.raises(ValueError, match="auto"):
        ServeSettings(precision="int4").validate()  # type: ignore[arg-type]

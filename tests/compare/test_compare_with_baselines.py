"""A real (small) comparison with both baselines: they are measured like the others, saved as run
directories without pickle, and predict / evaluate / serve / info use them (issue #14, item 1)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gptbert.compare import CompareSettings, parse_candidates, run_comparison
from gptbert.compare.settings import DEMO_DIR


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cmp")
    dev = tmp / "dev.tsv"
    dev.write_text("".join((DEMO_DIR / "dev.tsv").read_text().splitlines(keepends=True)[:61]))
    s = CompareSettings(train=str(DEMO_DIR / "train.tsv"), dev=str(dev), max_train=120, budget="3s",
                        candidates=parse_candidates("tfidf-lr,embed-lr:minilm,minilm,bert-tiny"), precisions=["fp32"],
                        out_dir=str(tmp / "out"), db=None, vocab_size=400, latency_repeats=6, latency_max_s=2.0,
                        isolate_inference=False, progress=False)
    return run_comparison(s, log=lambda line: None)


def test_baselines_are_measured_like_every_candidate(outcome):
    by = {c.name: c for c in outcome.comparison.candidates}
    assert list(by) == ["tfidf-lr", "embed-lr(minilm)", "minilm", "bert-tiny"]
    for name in ("tfidf-lr", "embed-lr(minilm)"):
        c = by[name]
        assert c.ok, c.error
        assert c.family == "baseline" and c.extra["baseline"] in ("tfidf-lr", "embed-lr")
        assert c.quality.dev is not None and c.quality.dev_ci[0] <= c.quality.dev <= c.quality.dev_ci[1]
        assert c.latency["fp32"].p50_ms > 0 and c.throughput["fp32"] > 0
        assert c.peak_rss_mb["train"] > 0 and c.peak_rss_mb["inference"] > 0
        assert c.finetune.wall_s > 0 and c.n_params > 0 and c.size_mb["fp32"] > 0
        assert c.extra["recipe"]["C"] in c.extra["recipe"]["C_search"]["grid"]
        assert "interleaved" in c.extra["latency_method"]
        assert c.extra["calibration"]["ece_before"] >= 0 and len(c.extra["reliability"]["raw"]) == 15
    # the transformers went through the recipe; MiniLM starts from embed-lr's head (no second probe)
    assert by["bert-tiny"].extra["recipe"]["kind"] == "preset"
    minilm = by["minilm"]
    assert minilm.ok, minilm.error
    assert minilm.extra["head_from"] == "embed-lr(minilm)" and "not counted in this budget" in minilm.extra["init"]
    assert minilm.extra["recipe"]["kind"] == "pretrained" and minilm.extra["recipe"]["probe"] is False
    assert minilm.extra["recipe"]["pooling"] == "mean"
    assert "baseline" in " ".join(outcome.recommendation.reasons)


def test_the_tfidf_run_is_json_and_safetensors_and_predicts_as_in_the_comparison(outcome):
    from gptbert.baselines.tfidf import TfidfLR
    from gptbert.recipes import evaluate, predict

    run_dir = Path(outcome.comparison.candidates[0].extra["run_dir"])
    assert not [p for p in run_dir.iterdir() if p.suffix in (".pkl", ".pickle", ".joblib", ".bin")]
    texts = ["a moving , beautiful film", "dull and far too long"]
    a = TfidfLR.load(run_dir).predict_proba(texts)
    b = TfidfLR.load(run_dir).predict_proba(texts)
    np.testing.assert_array_equal(a, b)
    got = predict(run_dir, texts)
    assert [g["label"] for g in got] == [TfidfLR.load(run_dir).labels[i] for i in a.argmax(1)]
    assert got[0]["score"] == pytest.approx(float(a[0].max()))
    scores = evaluate(run_dir, str(DEMO_DIR / "dev.tsv"))
    assert 0.0 <= scores["accuracy"] <= 1.0 and scores["n"] == 400


def test_the_tfidf_run_is_served_and_described(outcome, capsys):
    from fastapi.testclient import TestClient

    from gptbert.api import LM
    from gptbert.cli import main
    from gptbert.serve.app import create_app
    from gptbert.serve.settings import ServeSettings

    run_dir = outcome.comparison.candidates[0].extra["run_dir"]
    lm = LM.load(run_dir)
    assert lm.capabilities == {"classify"} and lm.family == "baseline"
    with TestClient(create_app(ServeSettings(), lm)) as client:
        r = client.post("/v1/classify", json={"texts": ["a moving film"]})
        assert r.status_code == 200, r.text
        assert r.json()["results"][0]["label"] == lm.classify(["a moving film"])[0]["label"]
        assert client.post("/v1/embed", json={"texts": ["x"]}).status_code == 404
    assert main(["info", run_dir, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "tfidf-lr" and info["features"] > 0

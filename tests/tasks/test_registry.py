"""evaluate_run / predict_run across tasks, language-model metrics, fine-tuning errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gptbert.run import load_run
from gptbert.tasks import registry
from tests.tasks import _runs


def test_classify_metrics_and_confusion_matrix(runs_root, shared_data):
    run = _runs.classify_run(runs_root, shared_data)
    r = registry.evaluate_run(run["path"], run["dev"])
    assert r["task"] == "classify" and r["n"] == 60
    cm = np.array(r["confusion_matrix"])
    assert cm.shape == (2, 2) and cm.sum() == 60
    assert r["accuracy"] == pytest.approx(np.trace(cm) / 60)
    assert -1.0 <= r["mcc"] <= 1.0 and 0.0 <= r["macro_f1"] <= 1.0
    assert r["accuracy"] == pytest.approx(run["extra"]["dev"]["accuracy"])
    preds = registry.predict_run(run["path"], ["a gripping , funny film", {"text": "dull and lifeless"}])
    assert [set(p) for p in preds] == [{"text", "label", "score", "scores"}] * 2
    assert all(p["label"] in ("0", "1") and sum(p["scores"].values()) == pytest.approx(1.0) for p in preds)


def test_gpt_perplexity_and_bits_per_character(runs_root, shared_data):
    run = _runs.pretrain_run(runs_root, shared_data, "gpt")
    r = registry.evaluate_run(run["path"], run["corpus"], max_chars=5000)
    assert r["task"] == "pretrain" and r["objective"] == "causal-lm" and r["n_chars"] == 5000
    assert r["perplexity"] == pytest.approx(math.exp(r["loss"]))
    assert r["bits_per_token"] == pytest.approx(r["loss"] / math.log(2))
    assert r["bits_per_character"] == pytest.approx(r["loss"] * r["n_tokens"] / (5000 * math.log(2)))
    # Every token of the text is predicted once (the text starts after an end-of-text token).
    tok = load_run(run["path"]).tokenizer
    text = run["corpus"].read_text(encoding="utf-8")[:5000]
    assert r["n_tokens"] == len(tok.encode(text, add_special_tokens=False).ids)
    # A trained model beats the uniform distribution over its vocabulary.
    assert r["loss"] < math.log(tok.vocab_size)


def test_bert_mlm_accuracy(runs_root, shared_data):
    run = _runs.pretrain_run(runs_root, shared_data, "bert")
    r = registry.evaluate_run(run["path"], run["corpus"], max_chars=8000)
    assert r["objective"] == "mlm" and 0.0 <= r["mlm_accuracy"] <= 1.0 and r["n_masked"] > 100
    assert r["mlm_perplexity"] == pytest.approx(math.exp(r["mlm_loss"]))
    again = registry.evaluate_run(run["path"], run["corpus"], max_chars=8000)
    assert again["mlm_accuracy"] == r["mlm_accuracy"]  # seeded masks


def test_predict_with_pretraining_runs(runs_root, shared_data):
    bert = _runs.pretrain_run(runs_root, shared_data, "bert")
    fills = registry.predict_run(bert["path"], ["the movie was [MASK] ."], top_k=3)[0]["fills"]
    assert len(fills) == 3 and fills[0]["score"] >= fills[1]["score"] >= fills[2]["score"]
    gpt = _runs.pretrain_run(runs_root, shared_data, "gpt")
    out = registry.predict_run(gpt["path"], ["the movie"], max_new_tokens=4)
    assert out[0]["prompt"] == "the movie" and isinstance(out[0]["output"], str)


def test_errors_name_the_problem(runs_root, shared_data, tmp_path):
    gpt = _runs.pretrain_run(runs_root, shared_data, "gpt")
    with pytest.raises(FileNotFoundError, match="no such file"):
        registry.evaluate_run(gpt["path"], tmp_path / "missing.txt")
    tokens_run = _runs.tokens_run(runs_root, shared_data, "bert")
    (tmp_path / "t.txt").write_text("some text\n")
    with pytest.raises(ValueError, match="needs an LM head"):
        registry.evaluate_run(tokens_run["path"], tmp_path / "t.txt")
    with pytest.raises(ValueError, match="unknown task 'ner'"):
        registry.finetune("bert-tiny", "ner", "x", tmp_path / "o", _runs.train_args(1))
    with pytest.raises(ValueError, match="ELMo has no generation"):
        registry.finetune("elmo-small", "generate", str(_runs.pair_files(runs_root, shared_data)["train"]),
                          tmp_path / "o", _runs.train_args(1))

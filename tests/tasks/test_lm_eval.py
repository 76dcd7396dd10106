"""Language-model metrics of pre-training runs on a text file: GPT perplexity / bits, BERT MLM accuracy."""

from __future__ import annotations

import math

import pytest

from gptbert import recipes
from gptbert.run import load_run
from tests.tasks import _runs


def test_gpt_perplexity_and_bits_per_character(runs_root, shared_data):
    run = _runs.pretrain_run(runs_root, shared_data, "gpt")
    r = recipes.evaluate(run["path"], run["corpus"], max_chars=5000)
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
    r = recipes.evaluate(run["path"], run["corpus"], max_chars=8000)
    assert r["objective"] == "mlm" and 0.0 <= r["mlm_accuracy"] <= 1.0 and r["n_masked"] > 100
    assert r["mlm_perplexity"] == pytest.approx(math.exp(r["mlm_loss"]))
    again = recipes.evaluate(run["path"], run["corpus"], max_chars=8000)
    assert again["mlm_accuracy"] == r["mlm_accuracy"]  # seeded masks

"""Predictions of pre-training runs: BERT fills the mask, GPT continues the prompt."""

from __future__ import annotations

from gptbert import recipes
from tests.tasks import _runs


def test_predict_with_pretraining_runs(runs_root, shared_data):
    bert = _runs.pretrain_run(runs_root, shared_data, "bert")
    fills = recipes.predict(bert["path"], ["the movie was [MASK] ."], top_k=3)[0]["fills"]
    assert len(fills) == 3 and fills[0]["score"] >= fills[1]["score"] >= fills[2]["score"]
    gpt = _runs.pretrain_run(runs_root, shared_data, "gpt")
    out = recipes.predict(gpt["path"], ["the movie"], max_new_tokens=4)
    assert out[0]["prompt"] == "the movie" and isinstance(out[0]["output"], str)

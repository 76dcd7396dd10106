"""Generate-then-rerank: candidates and their log-probs, the fusion, λ tuning, the rerank task's
run (saved, loaded, predicted with, served) and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn as nn

from gptbert import recipes
from gptbert.api import LM
from gptbert.cli import main
from gptbert.config import ModelConfig
from gptbert.run import load_run
from gptbert.tasks import TASKS
from gptbert.tasks import rerank as rr
from tests.tasks import _runs


def rerank_run(root: Path, shared: Path) -> dict[str, Any]:
    """A bert-tiny scorer of gen_run('gpt')'s candidates on the speech -> first-line pairs."""
    gen = _runs.gen_run(root, shared, "gpt")
    files = _runs.pair_files(root, shared)

    def build(d: Path) -> dict[str, Any]:
        path, result, extra = recipes.finetune(
            "bert-tiny", "rerank", str(files["train"]), d / "run", _runs.train_args(12),
            dev_path=str(files["dev"]), options={"generator": str(gen["path"]), "num_candidates": 3},
            vocab_size=600, max_len=64, overrides=_runs.TINY, max_train=40)
        return {"path": path, "result": result, "extra": extra, "generator": gen["path"]}

    return _runs.cached("rerank_bert", root, build)


class PreferOne(nn.Module):
    """A 2-label scorer that says "good" (logit 10) only for the pair whose ids are ``ids``."""

    def __init__(self, ids: list[int]) -> None:
        super().__init__()
        self.config = ModelConfig(family="bert", head="classify", num_labels=2, n_layer=1, n_head=1, n_embd=8,
                                  block_size=128, vocab_size=1000, type_vocab_size=0)
        self.ids = ids
        self.unused = nn.Parameter(torch.zeros(1))  # a device to run on

    def forward(self, idx: torch.Tensor, attention_mask: torch.Tensor | None = None, **_: Any):
        rows = []
        for i in range(idx.size(0)):
            real = idx[i][attention_mask[i].bool()].tolist() if attention_mask is not None else idx[i].tolist()
            rows.append([0.0, 10.0 if real == self.ids else -10.0])
        return torch.tensor(rows), None


def test_fusion_and_pick_hand_checked():
    assert rr.fuse(np.array([-1.0, -2.0]), np.array([-3.0, -0.5]), 0.5).tolist() == [-2.0, -1.25]
    cands = [rr.Candidates("a", ["x", "y"], [-1.0, -2.0]), rr.Candidates("b", ["z"], [-0.1])]
    flat = np.array([-3.0, -0.5, -9.0])
    assert rr.pick(cands, flat, 1.0) == [0, 0]  # the generator alone
    assert rr.pick(cands, flat, 0.0) == [1, 0]  # the scorer alone
    assert rr.pick(cands, flat, 0.8) == [0, 0]  # 0.8 * -1 + 0.2 * -3 = -1.4 > 0.8 * -2 + 0.2 * -0.5 = -1.7


def test_tune_weight_picks_the_lambda_whose_outputs_match_the_references():
    cands = [rr.Candidates("s1", ["the cat sat", "a dog ran far"], [-0.5, -1.5]),
             rr.Candidates("s2", ["blue sky", "green grass grows"], [-0.2, -2.0])]
    scorer = np.array([-5.0, -0.1, -5.0, -0.1])  # the scorer prefers the second candidates (the references)
    weight, table = rr.tune_weight(cands, scorer, ["a dog ran far", "green grass grows"])
    assert set(table) == {f"{w:g}" for w in rr.WEIGHTS}
    assert table["0"] == pytest.approx(100.0) and table["1"] < 50.0
    # both references win while 5.9 λ < 4.9 (λ < 0.83) and 6.7 λ < 4.9 (λ < 0.73): ties go to the larger λ
    assert weight == 0.7


def test_sequence_logprobs_equal_the_generators_own_step_probabilities():
    from gptbert.models import build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(family="gpt", head="lm", n_layer=1, n_head=2, n_embd=16, block_size=32,
                                    vocab_size=40)).eval()
    prompt, cont = [3, 4, 5], [6, 7]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([prompt + cont]))[0][0], -1)
    expected = float((logp[2, 6] + logp[3, 7]) / 2)
    assert rr.sequence_logprobs(model, [prompt], [cont])[0] == pytest.approx(expected, abs=1e-5)


def test_a_scorer_that_prefers_a_known_candidate_gets_it(runs_root, shared_data):
    gen_run = load_run(_runs.gen_run(runs_root, shared_data, "gpt")["path"])
    gen = rr.Generator.of_run(gen_run)
    source = "Now is the winter of our discontent made glorious summer"
    cands = rr.propose(gen, [source], 6, temperature=1.5, seed=3)[0]
    assert len(cands.texts) >= 2 and len(set(cands.texts)) == len(cands.texts)
    known = cands.texts[-1]  # a sample, not the generator's own (greedy) output
    scorer_tok = gen_run.tokenizer
    ids = list(scorer_tok.encode(source, known, max_length=128).ids)
    scorer = PreferOne(ids)
    for weight in (0.0, 0.5):
        out = rr.rerank(gen, scorer, scorer_tok, [source], num_candidates=6, weight=weight, temperature=1.5, seed=3)[0]
        assert out["output"] == known and out["plain"] == cands.texts[0]
        assert out["candidates"][0]["text"] == known and out["candidates"][0]["scorer"] > -1e-3
    alone = rr.rerank(gen, scorer, scorer_tok, [source], num_candidates=6, weight=1.0, temperature=1.5, seed=3)[0]
    assert alone["output"] == cands.texts[int(np.argmax(cands.logprobs))]


def test_beam_candidates_start_with_the_beam_searchs_output(runs_root, shared_data):
    from gptbert.tasks.generate import predict

    gen_run = load_run(_runs.gen_run(runs_root, shared_data, "gpt")["path"])
    gen = rr.Generator.of_run(gen_run)
    source = "My lord, I have news of the king"
    cands = rr.propose(gen, [source], 4, method="beam")[0]
    best = predict(gen_run.model, gen_run.tokenizer, [source], separator=gen.separator, max_len=gen.max_len,
                   max_new_tokens=gen.max_new_tokens, num_beams=4)[0]
    assert cands.texts[0] == best and 1 <= len(cands.texts) <= 4


def test_rerank_task_trains_tunes_lambda_and_saves(runs_root, shared_data):
    run = rerank_run(runs_root, shared_data)
    dev = run["extra"]["dev"]
    assert {"chrf", "plain_chrf", "oracle_chrf", "bleu", "weight", "scorer_accuracy"} <= set(dev)
    assert dev["weight"] in rr.WEIGHTS and dev["chrf"] == pytest.approx(dev["weights"][f"{dev['weight']:g}"])
    assert dev["chrf"] >= max(dev["weights"].values()) - 1e-9
    assert dev["oracle_chrf"] >= dev["chrf"] - 1e-9
    loaded = load_run(run["path"])
    assert loaded.task.task == "rerank" and loaded.labels == rr.RERANK_LABELS
    assert loaded.task.options.weight == dev["weight"]
    assert Path(loaded.task.options.generator) == Path(run["generator"]).resolve()
    assert "rerank" in TASKS and TASKS["rerank"].finetunable


def test_rerank_run_predicts_and_api_generate_reranks(runs_root, shared_data):
    run = rerank_run(runs_root, shared_data)
    sources = ["Now is the winter of our discontent", "Good morrow, kind sir"]
    out = recipes.predict(run["path"], sources, seed=1)
    assert [r["source"] for r in out] == sources
    for r in out:
        assert r["output"] == r["candidates"][0]["text"] and r["plain"] in [c["text"] for c in r["candidates"]]
        scores = [c["score"] for c in r["candidates"]]
        assert scores == sorted(scores, reverse=True)
    lm = LM.load(run["path"])
    assert "generate" in lm.capabilities
    assert lm.generate(sources, seed=1) == [r["output"] for r in out]
    # The generator with the scorer given: the same answers.
    gen = LM.load(run["generator"])
    assert gen.generate(sources, rerank=lm, seed=1) == [r["output"] for r in out]
    assert [r["output"] for r in recipes.predict(run["generator"], sources, rerank=run["path"], seed=1)] == \
        [r["output"] for r in out]
    with pytest.raises(ValueError, match="cannot stream"):
        next(lm.stream(sources[0]))


def test_rerank_run_is_served(runs_root, shared_data):
    from fastapi.testclient import TestClient

    from gptbert.serve import ServeSettings
    from gptbert.serve.app import create_app

    run = rerank_run(runs_root, shared_data)
    lm = LM.load(run["path"])
    with TestClient(create_app(ServeSettings(), lm)) as client:
        r = client.post("/v1/generate", json={"prompts": ["Now is the winter of our discontent"], "seed": 1,
                                              "num_candidates": 3})
        assert r.status_code == 200, r.text
        expected = lm.generate(["Now is the winter of our discontent"], seed=1, num_candidates=3, max_new_tokens=32)
        assert r.json()["results"][0]["text"] == expected[0]
        r = client.post("/v1/generate", json={"prompts": ["x"], "stream": True, "num_candidates": 3})
        assert r.status_code == 422 and "num_candidates" in r.text
    with TestClient(create_app(ServeSettings(), LM.load(run["generator"]))) as client:  # no scorer here
        r = client.post("/v1/generate", json={"prompts": ["x"], "num_candidates": 3})
        assert r.status_code == 422 and "num_candidates is for reranking" in r.text


def test_cli_finetune_rerank_and_predict_with_rerank(capsys, runs_root, shared_data, tmp_path):
    gen = _runs.gen_run(runs_root, shared_data, "gpt")
    files = _runs.pair_files(runs_root, shared_data)
    out = tmp_path / "scorer"
    code = main(["finetune", "--model", "bert-tiny", "--task", "rerank", "--generator", str(gen["path"]),
                 "--num-candidates", "2", "--train", str(files["train"]), "--dev", str(files["dev"]),
                 "--max-train", "16", "--out", str(out), "--vocab-size", "500", "--max-len", "48", "--max-steps", "3",
                 "--batch-size", "8", "--recipe", "none", "--no-progress", "--no-tensorboard", "--device", "cpu",
                 "--json"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert "chrf" in json.loads(stdout)["dev"]
    code = main(["predict", str(gen["path"]), "--rerank", str(out), "--num-candidates", "3", "--seed", "0",
                 "--text", "Now is the winter of our discontent"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    line = json.loads(stdout)
    assert line["output"] and 1 <= len(line["candidates"]) <= 3
    code = main(["finetune", "--model", "bert-tiny", "--task", "rerank", "--train", str(files["train"]),
                 "--out", str(tmp_path / "x"), "--max-steps", "1", "--no-progress", "--no-tensorboard"])
    _, err = capsys.readouterr()
    assert code == 2 and "--generator RUN" in err and "Traceback" not in err
    code = main(["predict", str(gen["path"]), "--num-candidates", "3", "--text", "x"])
    _, err = capsys.readouterr()
    assert code == 2 and "--rerank" in err

"""A GPT-BERT hybrid run through the same commands as the plain families: pre-training on the
mixed objective, generate / stream (causal), fill-mask and LM metrics of both heads, embed,
and fine-tuning for classify / tokens / qa (bidirectional) and generate (causal)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gptbert import recipes
from gptbert.api import LM
from gptbert.cli import main
from tests.tasks import _runs


def hybrid_pretrain_run(root: Path, shared: Path) -> dict[str, Any]:
    def build(d: Path) -> dict[str, Any]:
        corpus = d / "rt.txt"
        lines = (shared / "sst2" / "rt_snippets.txt").read_text(encoding="utf-8", errors="replace").splitlines()
        corpus.write_text("\n".join(lines[:800]) + "\n")
        path, result = recipes.pretrain("hybrid-micro", [str(corpus)], d / "run", _runs.train_args(30),
                                        vocab_size=600, max_len=48, overrides=_runs.TINY, causal_fraction=0.5)
        return {"path": path, "result": result, "corpus": corpus}

    return _runs.cached("pretrain_hybrid", root, build)


def test_hybrid_pretraining_learns_both_objectives_and_keeps_the_mix(runs_root, shared_data):
    run = hybrid_pretrain_run(runs_root, shared_data)
    result = run["result"]
    losses = _runs.train_losses(result)
    assert losses[-1] < losses[0]
    dev = result.eval_metrics
    assert {"perplexity", "mlm_accuracy", "causal_loss", "masked_loss"} <= set(dev)
    assert dev["loss"] == pytest.approx(0.5 * dev["causal_loss"] + 0.5 * dev["masked_loss"])
    task = json.loads((run["path"] / "task.json").read_text())
    assert task["task"] == "pretrain"
    assert task["options"]["objective"] == "causal+masked-next-token" and task["options"]["causal_fraction"] == 0.5


def test_hybrid_run_generates_streams_fills_and_embeds(runs_root, shared_data):
    run = hybrid_pretrain_run(runs_root, shared_data)
    lm = LM.load(run["path"])
    assert {"generate", "fill_mask", "embed"} <= lm.capabilities
    out = lm.generate(["the movie"], max_new_tokens=5)
    assert len(out) == 1 and isinstance(out[0], str)
    pieces = list(lm.stream("the movie", max_new_tokens=5))
    assert "".join(pieces).strip() == out[0].strip()  # greedy: stream and generate agree
    fills = lm.fill_mask("the movie was [MASK] .", top_k=3)
    assert len(fills) == 3 and fills[0]["score"] >= fills[1]["score"] >= fills[2]["score"]
    vec = lm.embed(["a fine film", "a fine film and more"])
    assert vec.shape == (2, lm.config.n_embd) and np.allclose(np.linalg.norm(vec, axis=1), 1.0, atol=1e-5)
    # predict: inputs with the mask token are filled, the others continued.
    filled, cont = recipes.predict(run["path"], ["the movie was [MASK] .", "the movie"], top_k=2,
                                   max_new_tokens=5)
    assert len(filled["fills"]) == 2 and "output" not in filled
    assert cont["prompt"] == "the movie" and cont["output"].strip() == out[0].strip()


def test_hybrid_fill_mask_reads_the_masked_mode(runs_root, shared_data):
    """The fills are the masked next-token predictions: the logits of the position before the mask,
    computed with bidirectional attention (a word after the mask changes them)."""
    run = hybrid_pretrain_run(runs_root, shared_data)
    lm = LM.load(run["path"])
    tok = lm.tokenizer
    text = "the movie was [MASK] and the end"
    ids = torch.tensor([tok.encode(text).ids])
    pos = int((ids[0] == tok.mask_id).nonzero()[0])
    with torch.no_grad():
        logits, _ = lm.model(ids, mode="masked")
    probs = torch.softmax(logits[0, pos - 1], -1)
    probs[sorted(tok.special_ids)] = 0.0
    best = lm.fill_mask(text, top_k=1)[0]
    assert best["token_id"] == int(probs.argmax()) and best["score"] == pytest.approx(float(probs.max()), rel=1e-4)


def test_hybrid_lm_metrics_report_both_heads(runs_root, shared_data, tmp_path):
    run = hybrid_pretrain_run(runs_root, shared_data)
    held = tmp_path / "held.txt"
    held.write_text("\n".join(run["corpus"].read_text().splitlines()[:40]) + "\n")
    res = recipes.evaluate(run["path"], held)
    assert res["objective"] == "causal+masked-next-token"
    assert res["perplexity"] > 1.0 and 0.0 <= res["mlm_accuracy"] <= 1.0 and res["n_masked"] > 0
    assert res["bits_per_character"] > 0


@pytest.mark.parametrize("task", ["classify", "tokens", "qa", "generate"])
def test_hybrid_finetunes_for_every_task(task, runs_root, shared_data, tmp_path):
    from gptbert.models.hybrid import Hybrid

    base = hybrid_pretrain_run(runs_root, shared_data)["path"]
    if task == "classify":
        lines = (shared_data / "sst2" / "train.tsv").read_text(encoding="utf-8").splitlines()
        (tmp_path / "train.tsv").write_text("\n".join(lines[:201]) + "\n")
        files = {"train": tmp_path / "train.tsv", "dev": tmp_path / "train.tsv"}
    else:
        files = {"tokens": _runs.tagging_files, "qa": _runs.qa_files, "generate": _runs.pair_files}[task](
            runs_root, shared_data)
    path, result, extra = recipes.finetune(str(base), task, str(files["train"]), tmp_path / "run",
                                           _runs.train_args(6), dev_path=str(files["dev"]), max_len=48)
    lm = LM.load(path)
    assert isinstance(lm.model, Hybrid)
    expected = {"classify": "classify", "tokens": "tokens", "qa": "qa", "generate": "lm"}[task]
    assert lm.config.head == expected
    # Task heads read both directions; the generation head is causal.
    assert lm.model.default_mode == ("causal" if task == "generate" else "bidirectional")
    if task == "classify":
        out = lm.classify(["a gripping, funny film"])
        assert out[0]["label"] in lm.labels
    elif task == "tokens":
        assert [w for w, _ in lm.tag(["I took out 30 pounds"])[0]] == ["I", "took", "out", "30", "pounds"]
    elif task == "qa":
        a = lm.answer("What does the index add?", "The misery index adds the inflation rate.")
        assert isinstance(a["answer"], str)
    else:
        assert "generate" in lm.capabilities
        assert extra["dev"]["n"] > 0 and "rougeL" in extra["dev"]
        out = recipes.predict(path, ["Now is the winter of our discontent"], max_new_tokens=4)
        assert isinstance(out[0]["output"], str)


def test_cli_pretrains_a_hybrid_with_a_causal_fraction(capsys, runs_root, shared_data, tmp_path):
    corpus = hybrid_pretrain_run(runs_root, shared_data)["corpus"]
    out = tmp_path / "run"
    code = main(["pretrain", "--model", "hybrid-micro", "--data", str(corpus), "--out", str(out),
                 "--vocab-size", "500", "--max-len", "32", "--max-steps", "3", "--batch-size", "8",
                 "--causal-fraction", "0.25", "--no-progress", "--no-tensorboard", "--device", "cpu", "--json"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    dev = json.loads(stdout)["dev"]
    assert "perplexity" in dev and "mlm_accuracy" in dev
    assert json.loads((out / "task.json").read_text())["options"]["causal_fraction"] == 0.25
    code = main(["predict", str(out), "--text", "the film was [MASK] .", "--top-k", "2"])
    stdout, err = capsys.readouterr()
    assert code == 0, err and len(json.loads(stdout)["fills"]) == 2

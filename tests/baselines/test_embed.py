"""embed-lr: pooled as the checkpoint was trained, an ordinary classify run with the LR's probabilities."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gptbert.baselines import embed
from gptbert.baselines.embed import EmbedLR, Encoder, choose_precision
from tests.baselines._helpers import checkpoint_copy, pickle_files

GRID = (10.0, 100.0)


@pytest.fixture(scope="module")
def fitted(minilm_dir, banking_small):
    torch.set_num_threads(1)
    return EmbedLR.fit(minilm_dir, banking_small.train_texts, banking_small.train_labels, grid=GRID,
                       precision="fp32", batch_size=32)


@pytest.fixture(scope="module")
def run_dir(fitted, tmp_path_factory):
    return fitted.save(tmp_path_factory.mktemp("embed_lr") / "run")


def _scores(results, labels) -> np.ndarray:
    return np.array([[r["scores"][lab] for lab in labels] for r in results])


def test_fit_pools_minilm_by_its_files_and_predicts_real_intents(fitted, banking_small):
    config = fitted.model.config
    assert (config.head, config.pooling, config.pool_normalize, config.num_labels) == ("classify", "mean", True, 8)
    assert fitted.encoder.pooling_from.endswith("1_Pooling/config.json") and fitted.encoder.max_len == 256
    assert list(fitted.search.heldout_accuracy) == ["10.0", "100.0"]
    assert {"load", "embed", "logreg", "fit"} <= set(fitted.seconds)
    vectors = fitted.embed(banking_small.dev_texts)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    probs = fitted.proba_from_embeddings(vectors)
    np.testing.assert_allclose(probs, fitted.estimator.predict_proba(vectors), atol=1e-5)
    predicted = np.array([fitted.labels[i] for i in probs.argmax(axis=1)])
    assert np.mean(predicted == np.array(banking_small.dev_labels)) > 0.8


def test_sorted_batches_embed_like_one_text_at_a_time(fitted, banking_small):
    texts = banking_small.dev_texts[:12]
    batched = fitted.embed(texts)
    one = Encoder(fitted.model, fitted.encoder.tokenizer, fitted.encoder.max_len, "x", "x", batch_size=1,
                  precision="fp32").embed(texts)
    np.testing.assert_allclose(batched, one, atol=1e-5)


def test_run_directory_loads_everywhere_with_the_lr_probabilities(fitted, run_dir, banking_small, no_pickle):
    from gptbert.api import LM
    from gptbert.run import load_run

    assert pickle_files(run_dir) == []
    texts = banking_small.dev_texts[:16]
    expected = fitted.estimator.predict_proba(fitted.embed(texts))  # scikit-learn on the same embeddings
    run = load_run(run_dir)
    assert run.task.task == "classify" and run.labels == fitted.labels and run.config.pooling == "mean"
    lm = LM.load(run_dir)
    np.testing.assert_allclose(_scores(lm.classify(texts), fitted.labels), expected, atol=1e-5)
    loaded = EmbedLR.load(run_dir, precision="fp32")
    assert loaded.search == fitted.search and loaded.encoder.pooling_from == fitted.encoder.pooling_from
    after, before = loaded.predict_proba(texts), fitted.predict_proba(texts)
    np.testing.assert_allclose(after, before, atol=1e-6, rtol=0)
    assert np.array_equal(after.argmax(axis=1), before.argmax(axis=1))


def test_pooling_follows_the_checkpoint_files(minilm_dir, tmp_path):
    cls_dir = checkpoint_copy(minilm_dir, tmp_path / "cls",
                              pooling={"pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True})
    encoder = Encoder.load(cls_dir)
    assert encoder.model.config.pooling == "cls" and encoder.pooling_from.startswith(str(cls_dir))
    plain = Encoder.load(checkpoint_copy(minilm_dir, tmp_path / "plain", sentence_transformers=False), max_len=64)
    assert plain.model.config.pooling == "mean" and plain.pooling_from == "family default"
    assert plain.max_len == 64


def test_gpt_source_pools_the_last_token_and_keeps_its_intercept(banking_small, tmp_path):
    from gptbert.api import LM
    from gptbert.config import ModelConfig
    from gptbert.models import build_model
    from gptbert.run import TaskInfo, save_run
    from gptbert.tokenizer import Tokenizer

    torch.manual_seed(0)
    tok = Tokenizer.from_texts(banking_small.train_texts, "bpe", 300, show_progress=False)
    gpt = build_model(ModelConfig(family="gpt", n_layer=1, n_head=2, n_embd=16, block_size=64,
                                  vocab_size=tok.vocab_size, head="lm"))
    source = save_run(tmp_path / "gpt", gpt, tok, TaskInfo(task="pretrain", max_len=64))
    texts, labels = banking_small.train_texts[:60], banking_small.train_labels[:60]
    model = EmbedLR.fit(source, texts, labels, grid=(10.0,), precision="fp32")
    config = model.model.config
    assert (config.pooling, config.classifier_bias, model.encoder.pooling_from) == ("last", True, "family default")
    lm = LM.load(model.save(tmp_path / "probe"))
    expected = model.estimator.predict_proba(model.embed(texts[:8]))
    np.testing.assert_allclose(_scores(lm.classify(texts[:8]), model.labels), expected, atol=1e-5)


def test_precision_probe_picks_the_faster_one(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(embed.time, "perf_counter", lambda: clock[0])

    def work(cost: dict[str, float]):
        def run(precision: str) -> None:
            clock[0] += cost[precision]
        return run

    emulated = choose_precision(work({"fp32": 1.0, "bf16": 7.0}))  # an AVX2-only CPU
    assert emulated == ("fp32", {"fp32": 1.0, "bf16": 7.0})
    assert choose_precision(work({"fp32": 1.0, "bf16": 0.3}))[0] == "bf16"  # AMX / GPU
    assert choose_precision(work({"fp32": 1.0, "bf16": 0.9}))[0] == "fp32"  # not clearly faster

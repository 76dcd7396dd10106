"""Sequence and pair classification: the collator on real SST-2 text, a run's metrics and predictions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gptbert import recipes
from gptbert.tasks.classify import ClassificationCollator
from gptbert.tokenizer import Tokenizer
from tests.tasks import _runs


def test_classify_metrics_and_confusion_matrix(runs_root, shared_data):
    run = _runs.classify_run(runs_root, shared_data)
    r = recipes.evaluate(run["path"], run["dev"])
    assert r["task"] == "classify" and r["n"] == 60
    cm = np.array(r["confusion_matrix"])
    assert cm.shape == (2, 2) and cm.sum() == 60
    assert r["accuracy"] == pytest.approx(np.trace(cm) / 60)
    assert -1.0 <= r["mcc"] <= 1.0 and 0.0 <= r["macro_f1"] <= 1.0
    assert r["accuracy"] == pytest.approx(run["extra"]["dev"]["accuracy"])
    preds = recipes.predict(run["path"], ["a gripping , funny film", {"text": "dull and lifeless"}])
    assert [set(p) for p in preds] == [{"text", "label", "score", "scores"}] * 2
    assert all(p["label"] in ("0", "1") and sum(p["scores"].values()) == pytest.approx(1.0) for p in preds)


def test_classification_single_and_pairs(tok: Tokenizer, sst2: list[tuple[str, int]]) -> None:
    coll = ClassificationCollator(tok, 24)
    batch = coll(sst2[:16])
    assert set(batch) == {"idx", "attention_mask", "token_type_ids", "targets"}
    assert batch["targets"].tolist() == [l for _, l in sst2[:16]] and batch["targets"].dtype == torch.long
    assert batch["idx"].shape[1] <= 24
    for i, (text, _) in enumerate(sst2[:16]):
        ids = tok.encode(text, max_length=24).ids
        assert batch["idx"][i, : len(ids)].tolist() == ids
        assert batch["attention_mask"][i].sum().item() == len(ids)
        assert (batch["idx"][i, len(ids):] == tok.pad_id).all()

    pairs = [{"text": a, "text_pair": b, "label": la} for (a, la), (b, _) in zip(sst2[:8], sst2[8:16])]
    pb = coll(pairs)
    for i, ex in enumerate(pairs):
        enc = tok.encode(ex["text"], ex["text_pair"], max_length=24)
        n = len(enc.ids)
        assert pb["idx"][i, :n].tolist() == enc.ids
        assert pb["token_type_ids"][i, :n].tolist() == enc.type_ids
        assert 1 in enc.type_ids
    unlabeled = coll([t for t, _ in sst2[:4]])
    assert "targets" not in unlabeled
    reg = coll([("a b", 0.5), ("c", 3.25)])
    assert reg["targets"].dtype == torch.float


def test_classification_left_padding_for_gpt(bpe: Tokenizer, sst2: list[tuple[str, int]]) -> None:
    coll = ClassificationCollator(bpe, 32, padding_side="left")
    batch = coll(sst2[:8])
    assert "token_type_ids" not in batch
    assert (batch["attention_mask"][:, -1] == 1).all()
    for i, (text, _) in enumerate(sst2[:8]):
        ids = bpe.encode(text, max_length=32).ids
        assert batch["idx"][i, -len(ids):].tolist() == ids


def test_classification_char_ids_for_elmo(tok: Tokenizer) -> None:
    batch = ClassificationCollator(tok, 16, return_char_ids=True, max_word_chars=12)([("Hello there", "Pair!", 1)])
    chars = batch["char_ids"]
    assert chars.shape == (1, batch["idx"].shape[1], 12)
    # [CLS] hello there [SEP] pair ! [SEP]: token 4 is "Pair" from the second text.
    word = bytes(c - 6 for c in chars[0, 4, 1:5].tolist())
    assert word == b"Pair"

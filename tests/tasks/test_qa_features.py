"""Extractive QA windows on real squad-mini questions: features, spans, n-best answers, batches."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from gptbert.data.readers import DataWarning, read_squad
from gptbert.tasks.qa_features import (
    QACollator,
    locate_answer,
    normalize_answer,
    postprocess_qa,
    prepare_qa_features,
    qa_nbest,
    squad_examples,
)
from gptbert.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def squad(shared_data: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return read_squad(shared_data / "squad-mini" / "dev-v1.1-subset.json")


@pytest.fixture(scope="module")
def qa_features(squad, tok: Tokenizer):
    return prepare_qa_features(squad.examples, tok, max_len=384, doc_stride=128, max_query_len=64)


def test_locate_answer() -> None:
    ctx = "PEOPLE FACE TRADEOFFS. Later, people face  tradeoffs again."
    assert locate_answer(ctx, "PEOPLE FACE", 0) == (0, 11)
    assert locate_answer(ctx, "people face tradeoffs", 3) == (0, 21)  # case-insensitive, nearest to 3
    assert locate_answer(ctx, "Face Tradeoffs again", None) == (37, 58)  # case and runs of spaces
    assert locate_answer(ctx, "not there", None) is None
    assert locate_answer(ctx, "again. ", None) == (53, 59)
    # A given start inside a longer word loses to a word-aligned occurrence.
    ctx2 = "financial intermediaries. The term of a bond"
    assert locate_answer(ctx2, "term", 15) == (30, 34)
    assert locate_answer("intermediaries", "term", 2) is None  # only inside a word
    assert locate_answer("利率上升了", "上升", 2) == (2, 4)  # CJK characters are words of their own


def test_qa_features_reproduce_gold_spans(squad, qa_features, tok: Tokenizer) -> None:
    feats = qa_features
    ids = {e.id for e in squad.examples}
    assert {f.example_id for f in feats} == ids and len(ids) == 158
    answerable = 0
    windows_with_answer = 0
    for ex in squad.examples:
        mine = [f for f in feats if f.example_id == ex.id]
        assert [f.window for f in mine] == list(range(len(mine)))
        gold = mine[0].answer_text  # the first answer found in the context, word-aligned
        if gold is None:
            # Most answers of this subset are not spans of their context (multiple-choice texts).
            assert all(f.targets == (0, 0) for f in mine), ex.id
            continue
        assert normalize_answer(gold) in {normalize_answer(a["text"]) for a in ex.answers}
        answerable += 1
        hits = [f for f in mine if f.targets != (0, 0)]
        assert hits, f"{ex.id}: no window contains {gold!r}"
        for f in hits:
            s, e = f.targets
            assert f.context_start <= s <= e < f.context_start + f.num_context_tokens
            span = f.offset_mapping
            text = f.context[span[s][0]: span[e][1]]
            assert normalize_answer(text) == normalize_answer(gold), (ex.id, text, gold)
            windows_with_answer += 1
    # The reader located 34 answers; 2 of them only inside longer words ("8 percent" in "28 percent").
    reader_spans = sum(any(a["answer_start"] is not None for a in ex.answers) for ex in squad.examples)
    assert reader_spans - 3 <= answerable <= reader_spans and answerable >= 30
    assert windows_with_answer >= 2 * answerable  # windows overlap: answers appear in several
    # Window geometry: at most max_len tokens; consecutive windows start doc_stride apart.
    f0, f1 = feats[0], feats[1]
    assert len(f0) == 384 and f0.idx[0] == tok.cls_id and f0.idx[-1] == tok.sep_id
    assert f1.char_span(f1.context_start) == f0.char_span(f0.context_start + 128)
    q_len = len(f0.question_ids)
    assert f0.token_type_ids == [0] * (q_len + 2) + [1] * (384 - q_len - 2)
    assert f0.offset_mapping[: q_len + 2] == [None] * (q_len + 2) and f0.offset_mapping[-1] is None


def test_qa_features_from_raw_squad_json_match_reader(shared_data: Path, qa_features, tok: Tokenizer) -> None:
    raw = squad_examples(shared_data / "squad-mini" / "dev-v1.1-subset.json")
    assert len(raw) == 158
    again = prepare_qa_features(raw[:40], tok)
    assert [(f.example_id, f.targets) for f in again] == [(f.example_id, f.targets) for f in qa_features[: len(again)]]


def test_postprocess_one_hot_logits_give_gold_text(squad, qa_features) -> None:
    feats = qa_features
    T = max(len(f) for f in feats)
    start = np.zeros((len(feats), T), dtype=np.float32)
    end = np.zeros((len(feats), T), dtype=np.float32)
    for i, f in enumerate(feats):
        s, e = f.targets
        start[i, s] = 10.0
        end[i, e] = 10.0
    best = postprocess_qa(feats, torch.from_numpy(start), torch.from_numpy(end), n_best=20, max_answer_len=30)
    assert set(best) == {e.id for e in squad.examples}
    checked = 0
    for ex in squad.examples:
        mine = [f for f in feats if f.example_id == ex.id]
        gold = mine[0].answer_text
        if gold is None:
            continue
        s, e = next(f.targets for f in mine if f.targets != (0, 0))
        if e - s + 1 > 30:
            continue  # longer than max_answer_len: not a valid prediction
        assert normalize_answer(best[ex.id]) == normalize_answer(gold), ex.id
        checked += 1
    assert checked >= 30
    nbest = qa_nbest(feats[:50], start[:50], end[:50], n_best=5)
    for preds in nbest.values():
        assert len(preds) <= 5
        assert all(a.score >= b.score for a, b in zip(preds, preds[1:]))
        assert abs(sum(p.probability for p in preds) - 1.0) < 1e-6 if preds else True


def test_postprocess_respects_validity() -> None:
    from gptbert.data.collate import SpecialTemplate
    from gptbert.tasks.qa_features import QAFeature

    ctx = "alpha beta gamma delta"
    ids = np.arange(4)
    offs = np.array([[0, 5], [6, 10], [11, 16], [17, 22]])
    tmpl = SpecialTemplate((101,), (102,), (102,), (102,))
    f = QAFeature("q", 0, ctx, [7, 8], ids, offs, 0, 4, tmpl, (0, 0), None)
    assert f.context_start == 4 and len(f) == 9
    s = np.full((1, 9), -5.0)
    e = np.full((1, 9), -5.0)
    s[0, 0] = e[0, 0] = 100.0  # CLS: outside the context, never chosen
    s[0, 6], e[0, 5] = 9.0, 9.0  # end before start: invalid
    e[0, 7], e[0, 6] = 2.0, 0.5
    assert postprocess_qa([f], s, e)["q"] == "gamma delta"  # 9 + 2
    assert postprocess_qa([f], s, e, max_answer_len=1)["q"] == "gamma"  # 9 + 0.5
    nbest = qa_nbest([f], s, e, n_best=3)["q"]
    assert [p.text for p in nbest][:2] == ["gamma delta", "gamma"]
    assert (nbest[0].start_char, nbest[0].end_char, nbest[0].feature_index) == (11, 22, 0)
    assert qa_nbest([f], np.full((1, 9), -np.inf), e)["q"] == []


def test_qa_collator(qa_features, tok: Tokenizer) -> None:
    feats = qa_features[:6]
    batch = QACollator(tok)(feats)
    assert set(batch) == {"idx", "attention_mask", "token_type_ids", "targets"}
    assert batch["targets"].shape == (6, 2)
    assert batch["idx"][0].tolist() == feats[0].idx
    assert batch["targets"].tolist() == [list(f.targets) for f in feats]

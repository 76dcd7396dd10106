"""Tests for gptbert.metrics: hand-checked cases, cross-checks and real-data checks."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptbert import metrics as M

ROOT = Path(__file__).resolve().parents[1]
approx = pytest.approx

# Shared small classification case, counted by hand:
#   y_true 0 0 0 1 1 2
#   y_pred 0 0 1 1 2 2
# class 0: tp 2, support 3, predicted 2 -> P 1,   R 2/3, F1 2*2/(3+2) = 4/5
# class 1: tp 1, support 2, predicted 2 -> P 1/2, R 1/2, F1 2*1/(2+2) = 1/2
# class 2: tp 1, support 1, predicted 2 -> P 1/2, R 1,   F1 2*1/(1+2) = 2/3
# accuracy 4/6; macro F1 (4/5 + 1/2 + 2/3)/3 = 59/90; weighted (3*4/5 + 2*1/2 + 1*2/3)/6 = 61/90
Y_TRUE = [0, 0, 0, 1, 1, 2]
Y_PRED = [0, 0, 1, 1, 2, 2]


# --------------------------------------------------------------------------- classification


def test_accuracy_hand() -> None:
    assert M.accuracy([0, 1, 2, 2, 1], [0, 2, 2, 2, 1]) == approx(4 / 5)
    assert M.accuracy(Y_TRUE, Y_PRED) == approx(4 / 6)
    assert M.accuracy(["a", "b"], ["a", "a"]) == 0.5
    assert isinstance(M.accuracy(np.array([1]), np.array([1])), float)


def test_confusion_matrix_hand() -> None:
    cm = M.confusion_matrix(Y_TRUE, Y_PRED)
    # rows = true, columns = predicted
    np.testing.assert_array_equal(cm, [[2, 1, 0], [0, 1, 1], [0, 0, 1]])
    assert cm.dtype == np.int64
    cm4 = M.confusion_matrix(Y_TRUE, Y_PRED, num_labels=4)
    assert cm4.shape == (4, 4) and cm4[3].sum() == 0 and cm4[:, 3].sum() == 0
    # string labels are ordered by sorted(): cat, dog
    np.testing.assert_array_equal(
        M.confusion_matrix(["cat", "dog", "cat"], ["dog", "dog", "cat"]), [[1, 1], [0, 1]]
    )
    # booleans and integral floats are integer labels
    np.testing.assert_array_equal(M.confusion_matrix([True, False], [1.0, 1.0]), [[0, 1], [0, 1]])


def test_f1_averages_hand() -> None:
    assert M.macro_f1(Y_TRUE, Y_PRED) == approx(59 / 90)
    assert M.macro_f1(Y_TRUE, Y_PRED, average="weighted") == approx(61 / 90)
    assert M.macro_f1(Y_TRUE, Y_PRED, average="micro") == approx(4 / 6)
    # with num_labels=4 the absent class 3 counts as F1 0 in the macro mean: 59/30 / 4
    assert M.macro_f1(Y_TRUE, Y_PRED, num_labels=4) == approx(59 / 120)
    # without num_labels only classes present in y_true or y_pred are averaged: labels 0 and 5
    # class 0: tp 1, support 1, predicted 2 -> F1 2/3; class 5: tp 0 -> 0; macro 1/3
    assert M.macro_f1([0, 5], [0, 0]) == approx(1 / 3)


def test_macro_f1_equals_mean_of_report_f1() -> None:
    report = M.classification_report(Y_TRUE, Y_PRED)
    per_class = [report[k]["f1"] for k in ("0", "1", "2")]
    assert M.macro_f1(Y_TRUE, Y_PRED) == approx(sum(per_class) / 3)
    assert report["macro avg"]["f1"] == approx(M.macro_f1(Y_TRUE, Y_PRED))
    assert report["weighted avg"]["f1"] == approx(M.macro_f1(Y_TRUE, Y_PRED, average="weighted"))


def test_classification_report_hand() -> None:
    report = M.classification_report(Y_TRUE, Y_PRED, target_names=["neg", "neu", "pos"])
    assert list(report) == ["neg", "neu", "pos", "accuracy", "macro avg", "weighted avg"]
    assert report["neg"] == approx({"precision": 1.0, "recall": 2 / 3, "f1": 4 / 5, "support": 3})
    assert report["neu"] == approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert report["pos"] == approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})
    assert report["accuracy"] == approx(4 / 6)
    # macro precision (1 + 1/2 + 1/2)/3 = 2/3; macro recall (2/3 + 1/2 + 1)/3 = 13/18
    assert report["macro avg"] == approx(
        {"precision": 2 / 3, "recall": 13 / 18, "f1": 59 / 90, "support": 6}
    )
    # weighted precision (3*1 + 2*1/2 + 1*1/2)/6 = 3/4; weighted recall = accuracy
    assert report["weighted avg"] == approx(
        {"precision": 3 / 4, "recall": 4 / 6, "f1": 61 / 90, "support": 6}
    )
    assert isinstance(report["neg"]["support"], int)
    with_absent = M.classification_report(Y_TRUE, Y_PRED, num_labels=4)
    assert with_absent["3"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert with_absent["macro avg"]["f1"] == approx(59 / 120)


def test_mcc_hand() -> None:
    # binary: TP 3 (idx 0,1,7), FN 1 (idx 2), TN 3 (idx 3,4,6), FP 1 (idx 5)
    # (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (9 - 1) / sqrt(4^4) = 1/2
    assert M.mcc([1, 1, 1, 0, 0, 0, 0, 1], [1, 1, 0, 0, 0, 1, 0, 1]) == approx(0.5)
    # Gorodkin on the shared case: s 6, c 4, t (3,2,1), p (2,2,2), sum t*p 12,
    # (6*4 - 12) / sqrt((36 - 12)(36 - 14)) = 12 / sqrt(528)
    assert M.mcc(Y_TRUE, Y_PRED) == approx(12 / math.sqrt(528))
    assert M.mcc([0, 1, 2], [0, 1, 2]) == approx(1.0)
    assert M.mcc([0, 1, 0, 1], [1, 0, 1, 0]) == approx(-1.0)
    assert M.mcc([0, 1, 1], [1, 1, 1]) == 0.0  # constant prediction: denominator 0


def _mcc_closed_form(t: np.ndarray, p: np.ndarray) -> float:
    tp = float(np.sum((t == 1) & (p == 1)))
    tn = float(np.sum((t == 0) & (p == 0)))
    fp = float(np.sum((t == 0) & (p == 1)))
    fn = float(np.sum((t == 1) & (p == 0)))
    den = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return 0.0 if den == 0 else (tp * tn - fp * fn) / den


def _onehot_correlation(t: np.ndarray, p: np.ndarray, k: int) -> float:
    """R_K as the Pearson correlation of the centred one-hot matrices (Gorodkin 2004)."""
    x = np.eye(k)[t] - np.eye(k)[t].mean(axis=0)
    y = np.eye(k)[p] - np.eye(k)[p].mean(axis=0)
    den = math.sqrt(float((x * x).sum()) * float((y * y).sum()))
    return 0.0 if den == 0 else float((x * y).sum()) / den


label_pairs = st.integers(1, 40).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 3), min_size=n, max_size=n),
        st.lists(st.integers(0, 3), min_size=n, max_size=n),
    )
)


@settings(max_examples=60, deadline=None)
@given(label_pairs)
def test_mcc_cross_checks(pair: tuple[list[int], list[int]]) -> None:
    t, p = np.array(pair[0]), np.array(pair[1])
    assert M.mcc(t, p) == approx(_onehot_correlation(t, p, 4), abs=1e-12)
    tb, pb = t % 2, p % 2
    assert M.mcc(tb, pb) == approx(_mcc_closed_form(tb, pb), abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(label_pairs)
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_classification_cross_check_against_sklearn(pair: tuple[list[int], list[int]]) -> None:
    try:
        from sklearn import metrics as skm
    except ImportError:  # an optional cross-check only; the hand-checked tests always run
        pytest.skip("scikit-learn not installed")
    t, p = pair
    assert M.accuracy(t, p) == approx(skm.accuracy_score(t, p))
    for average in ("macro", "micro", "weighted"):
        expected = skm.f1_score(t, p, average=average, zero_division=0)
        assert M.macro_f1(t, p, average=average) == approx(expected, abs=1e-12)
    assert M.macro_f1(t, p, num_labels=5) == approx(
        skm.f1_score(t, p, labels=range(5), average="macro", zero_division=0), abs=1e-12
    )
    assert M.mcc(t, p) == approx(skm.matthews_corrcoef(t, p), abs=1e-12)
    np.testing.assert_array_equal(
        M.confusion_matrix(t, p, num_labels=4), skm.confusion_matrix(t, p, labels=range(4))
    )


def test_classification_errors() -> None:
    with pytest.raises(ValueError, match="length mismatch"):
        M.accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="empty"):
        M.macro_f1([], [])
    with pytest.raises(ValueError, match="out of range"):
        M.confusion_matrix([0, 3], [0, 1], num_labels=3)
    with pytest.raises(ValueError, match="non-negative"):
        M.mcc([0, -1], [0, 1])
    with pytest.raises(ValueError, match="non-integral"):
        M.macro_f1([0.5, 1.0], [0, 1])
    with pytest.raises(ValueError, match="one-dimensional"):
        M.accuracy([[0, 1]], [[0, 1]])
    with pytest.raises(ValueError, match="average"):
        M.macro_f1([0, 1], [0, 1], average="samples")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="integer labels"):
        M.confusion_matrix(["a"], ["b"], num_labels=2)
    with pytest.raises(ValueError, match="target_names"):
        M.classification_report([0, 1], [0, 1], target_names=["only one"])
    with pytest.raises(TypeError):
        M.accuracy("ab", "ab")


# --------------------------------------------------------------------------- language modelling


def test_lm_metrics_hand() -> None:
    assert M.perplexity(0.0) == 1.0
    assert M.perplexity(math.log(50.0)) == approx(50.0)  # uniform over 50 tokens
    assert M.perplexity(1e4) == math.inf
    assert M.perplexity(np.float32(math.log(2.0))) == approx(2.0)
    # 10 characters at ln(256) nats each = 8 bits a character
    assert M.bits_per_character(10 * math.log(256.0), 10) == approx(8.0)
    assert M.bits_per_character(0.0, 3) == 0.0
    # bits per token is log2 of the perplexity
    total, n = 123.4, 50
    assert M.bits_per_token(total, n) == approx(math.log2(M.perplexity(total / n)))
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError):
            M.perplexity(bad)
    with pytest.raises(ValueError, match="n_chars"):
        M.bits_per_character(1.0, 0)
    with pytest.raises(ValueError, match="n_tokens"):
        M.bits_per_token(1.0, 2.5)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- question answering


def test_squad_normalize_hand() -> None:
    # lower -> "the  quick, brown-fox!"; punctuation -> "the  quick brownfox";
    # articles -> "  quick brownfox"; whitespace -> "quick brownfox"
    assert M.squad_normalize("The  Quick, brown-fox!") == "quick brownfox"
    assert M.squad_normalize("An apple a day") == "apple day"
    assert M.squad_normalize("Theory of the anthem") == "theory of anthem"  # whole words only
    assert M.squad_normalize("  A\tthe\nan ") == ""
    # only ASCII punctuation goes, as in the official script: curly quotes stay
    assert M.squad_normalize("“One who manages a household.”") == "“one who manages household”"


def test_squad_em_f1_hand() -> None:
    assert M.squad_exact_match("the Eiffel Tower.", ["Eiffel tower", "Paris"]) == 1.0
    assert M.squad_exact_match("Eiffel", "Eiffel Tower") == 0.0
    # "cat sat on mat" vs "cat on mat today": 3 shared of 4 and 4 -> P = R = F1 = 3/4
    assert M.squad_f1("the cat sat on the mat", "a cat on a mat today") == approx(0.75)
    assert M.squad_f1("the cat sat on the mat", ["dog", "a cat on a mat today"]) == approx(0.75)
    # multiset overlap: "x x y" vs "x y y" share one x and one y -> 2/3 both ways
    assert M.squad_f1("x x y", "x y y") == approx(2 / 3)
    # "Bureau" vs 4 tokens: P 1, R 1/4 -> 2 * 1/4 / (5/4) = 2/5
    assert M.squad_f1("Bureau", "Bureau of Labor Statistics") == approx(0.4)
    # both normalise to "": EM 1 but F1 0, as the v1.1 script scores it
    assert M.squad_exact_match("the", "a") == 1.0
    assert M.squad_f1("the", "a") == 0.0
    with pytest.raises(ValueError, match="gold"):
        M.squad_f1("x", [])
    with pytest.raises(TypeError):
        M.squad_normalize(None)  # type: ignore[arg-type]


def test_squad_scores_hand_and_formats() -> None:
    records = [
        {"id": "q1", "answers": [{"text": "Denver Broncos", "answer_start": 0}]},
        {"id": "q2", "answers": [{"text": "a cat on a mat today"}, {"text": "dog"}]},
        {"id": "q3", "answers": [{"text": "1990"}]},
    ]
    preds = {"q1": "the Denver Broncos", "q2": "the cat sat on the mat", "extra": "ignored"}
    # q1 EM 1 F1 1; q2 EM 0 F1 3/4; q3 missing -> 0: EM 100/3, F1 100 * 1.75/3
    with pytest.warns(UserWarning, match="1 of 3"):
        scores = M.squad_scores(preds, records)
    assert scores == approx({"exact_match": 100 / 3, "f1": 175 / 3})
    official = {"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": "c", "qas": records}]}]}
    as_mapping = {"q1": ["Denver Broncos"], "q2": ["a cat on a mat today", "dog"], "q3": "1990"}
    hf_style = [{"id": r["id"], "answers": {"text": [a["text"] for a in r["answers"]]}} for r in records]
    for examples in (official, official["data"], as_mapping, hf_style):
        with pytest.warns(UserWarning):
            assert M.squad_scores(preds, examples) == approx(scores)
    with pytest.raises(ValueError, match="no gold answer"):
        M.squad_scores({}, [{"id": "q", "answers": []}])
    with pytest.raises(ValueError, match="empty"):
        M.squad_scores({}, [])


def _squad_questions(shared_data: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    path = shared_data / "squad-mini" / "dev-v1.1-subset.json"
    dataset = json.loads(path.read_text(encoding="utf-8"))
    questions = [qa for art in dataset["data"] for par in art["paragraphs"] for qa in par["qas"]]
    return dataset, questions


def test_squad_real_subset(shared_data: Path) -> None:
    dataset, questions = _squad_questions(shared_data)
    assert len(questions) == 158
    # This subset has exactly one gold answer per question (and mostly null answer_start),
    # so "first answer vs the other answers" cannot be measured on it.
    assert all(len(q["answers"]) == 1 for q in questions)
    gold = {q["id"]: q["answers"][0]["text"] for q in questions}

    assert M.squad_scores(gold, dataset) == {"exact_match": 100.0, "f1": 100.0}
    shouted = {qid: "The " + text.upper() + "." for qid, text in gold.items()}
    assert M.squad_scores(shouted, dataset) == {"exact_match": 100.0, "f1": 100.0}
    assert M.squad_scores({qid: "" for qid in gold}, dataset) == {"exact_match": 0.0, "f1": 0.0}

    # Predicting the first normalised token of an n-token gold gives P 1, R 1/n,
    # F1 2/(n+1), and EM only when n = 1.
    first = {qid: M.squad_normalize(text).split()[0] for qid, text in gold.items()}
    lengths = np.array([len(M.squad_normalize(gold[q["id"]]).split()) for q in questions])
    scores = M.squad_scores(first, dataset)
    assert scores["exact_match"] == approx(100 * np.mean(lengths == 1))
    assert scores["f1"] == approx(100 * np.mean(2 / (lengths + 1)))
    assert 10 < scores["exact_match"] < scores["f1"] < 60

    # Hand-checked pairs of real answers:
    # "people face tradeoffs" vs gold "people must face tradeoffs": P 3/3, R 3/4 -> 6/7
    assert gold["28d4eccc-408b-457d-96f7-d46a9f585a4b"] == "people must face tradeoffs"
    must, plain = "28d4eccc-408b-457d-96f7-d46a9f585a4b", "32bfb837-f517-4fde-ac6a-cbf4c629c84c"
    assert gold[plain] == "people face tradeoffs"
    assert M.squad_f1(gold[plain], gold[must]) == approx(6 / 7)
    # "All of the above are correct" ("all of above are correct") vs gold "all of the above"
    # ("all of above"): P 3/5, R 3/3 -> 3/4
    above = gold["062c0356-090c-4ec2-a33b-095e6ddd583a"]
    assert above == "all of the above"
    assert M.squad_f1("All of the above are correct", above) == approx(0.75)

    # one missing prediction costs exactly 1/158 of each score
    partial = dict(gold)
    del partial[questions[0]["id"]]
    with pytest.warns(UserWarning, match="1 of 158"):
        assert M.squad_scores(partial, dataset)["f1"] == approx(100 * 157 / 158)


# --------------------------------------------------------------------------- generation


def test_rouge_hand() -> None:
    same = "the quick brown fox jumps over the lazy dog"
    assert M.rouge([same, "a b"], [same, "a b"]) == approx({"rouge1": 100.0, "rouge2": 100.0, "rougeL": 100.0})
    # "the cat sat" vs "the cat ran": unigrams 2/3 both ways; bigrams 1/2; LCS "the cat" 2/3
    assert M.rouge(["the cat sat"], ["the cat ran"]) == approx(
        {"rouge1": 200 / 3, "rouge2": 50.0, "rougeL": 200 / 3}
    )
    # stemming on: cats->cat, running->run, runs->run
    assert M.rouge(["cats running"], ["cat runs"])["rouge1"] == approx(100.0)
    # several references: the best one counts; mean over predictions (100 + 0) / 2
    assert M.rouge(["the cat sat", "xyz"], [["dogs bark", "the cat sat"], "abc"])["rougeL"] == approx(50.0)


def test_bleu_chrf_hand() -> None:
    same = ["the quick brown fox jumps over the lazy dog", "it is raining in the north"]
    assert M.bleu(same, same) == approx(100.0)
    assert M.chrf(same, same) == approx(100.0)
    assert M.chrf(same, same, word_order=2) == approx(100.0)
    # hyp "the cat sat on the mat", ref "the cat sat on a mat": clipped n-gram precisions
    # 5/6, 3/5, 2/4, 1/3; same length so BP 1: BLEU = (5/6 * 3/5 * 1/2 * 1/3)^(1/4) = (1/12)^(1/4)
    assert M.bleu(["the cat sat on the mat"], ["the cat sat on a mat"]) == approx(100 * (1 / 12) ** 0.25)
    assert M.chrf(["abc"], ["xyz"]) == 0.0
    # several references, and a variable number of them per prediction
    refs: list[list[str]] = [["a completely different sentence here", same[0]], [same[1]]]
    assert M.bleu(same, refs) == approx(100.0)
    assert M.chrf(same, refs) == approx(100.0)
    # a duplicated reference changes nothing
    hyps = ["the cat sat on the mat", "a dog barked at night"]
    one = ["the cat sat on a mat", "the dog barked all night"]
    assert M.bleu(hyps, [[r, r] for r in one]) == approx(M.bleu(hyps, one))
    assert M.chrf(hyps, [[r, r] for r in one]) == approx(M.chrf(hyps, one))


def test_generation_errors() -> None:
    with pytest.raises(TypeError, match="single string"):
        M.bleu("the cat", "the cat")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="length mismatch"):
        M.rouge(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="empty"):
        M.chrf([], [])
    with pytest.raises(ValueError, match="no reference"):
        M.bleu(["a"], [[]])
    with pytest.raises(TypeError):
        M.rouge([None], ["a"])  # type: ignore[list-item]


# --------------------------------------------------------------------------- token classification


def test_extract_entities_hand() -> None:
    tags = ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "I-LOC", "B-LOC"]
    assert M.extract_entities(tags) == [("PER", 0, 2), ("LOC", 3, 6), ("LOC", 6, 7)]
    assert M.extract_entities(tags, mode="strict") == M.extract_entities(tags)
    iob1 = ["I-PER", "I-PER", "O", "I-LOC", "B-LOC"]
    assert M.extract_entities(iob1) == [("PER", 0, 2), ("LOC", 3, 4), ("LOC", 4, 5)]
    assert M.extract_entities(iob1, mode="strict") == [("LOC", 4, 5)]
    assert M.extract_entities(["B-PER", "I-LOC"]) == [("PER", 0, 1), ("LOC", 1, 2)]
    assert M.extract_entities(["B-PER", "I-LOC"], mode="strict") == [("PER", 0, 1)]
    assert M.extract_entities(["B-ORG-X", "I-ORG-X"]) == [("ORG-X", 0, 2)]
    assert M.extract_entities([]) == []
    for bad in (["E-PER"], ["B-"], ["X"], ["b-PER"]):
        with pytest.raises(ValueError, match="BIO"):
            M.extract_entities(bad)


def test_entity_f1_hand() -> None:
    true = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-MISC"], ["B-ORG", "I-ORG"]]
    # true PER(0,2) LOC(3,4) ORG(0,1); predicted PER(0,2) ok, MISC(3,4), ORG(0,2) -> 1 of 3 each way
    assert M.entity_f1(true, pred) == approx({"precision": 1 / 3, "recall": 1 / 3, "f1": 1 / 3})
    assert M.entity_f1(true, true) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    # a stray I- starts an entity in default mode but not in strict IOB2
    assert M.entity_f1([["B-PER", "I-PER"]], [["I-PER", "I-PER"]])["f1"] == 1.0
    assert M.entity_f1([["B-PER", "I-PER"]], [["I-PER", "I-PER"]], mode="strict") == {
        "precision": 0.0, "recall": 0.0, "f1": 0.0
    }
    # 2 true, 1 predicted and correct: P 1, R 1/2, F1 2/3
    assert M.entity_f1([["B-A", "O", "B-B"]], [["B-A", "O", "O"]]) == approx(
        {"precision": 1.0, "recall": 0.5, "f1": 2 / 3}
    )
    with pytest.raises(ValueError, match="sequence 0"):
        M.entity_f1([["O", "O"]], [["O"]])
    with pytest.raises(ValueError, match="length mismatch"):
        M.entity_f1([["O"]], [])
    with pytest.raises(ValueError, match="BIO"):
        M.entity_f1([["S-PER"]], [["O"]])


tag_seqs = st.lists(
    st.lists(st.sampled_from(["O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC"]), min_size=0, max_size=12),
    min_size=1,
    max_size=6,
)


@settings(max_examples=80, deadline=None)
@given(tag_seqs, st.randoms(use_true_random=False), st.sampled_from(["default", "strict"]))
def test_entity_f1_matches_own_extraction(true: list[list[str]], rnd: Any, mode: Any) -> None:
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    pred = [[t if rnd.random() < 0.6 else rnd.choice(tags) for t in seq] for seq in true]
    gold_set = {(i, *e) for i, s in enumerate(true) for e in M.extract_entities(s, mode)}
    pred_set = {(i, *e) for i, s in enumerate(pred) for e in M.extract_entities(s, mode)}
    hit = len(gold_set & pred_set)
    p = hit / len(pred_set) if pred_set else 0.0
    r = hit / len(gold_set) if gold_set else 0.0
    f = 2 * hit / (len(pred_set) + len(gold_set)) if hit else 0.0
    expected = {"precision": p, "recall": r, "f1": f}
    assert M.entity_f1(true, pred, mode=mode) == approx(expected)  # type: ignore[arg-type]
    if mode == "default":
        from seqeval.metrics.sequence_labeling import get_entities

        for seq in true + pred:
            assert [(k, s, e + 1) for k, s, e in get_entities(seq)] == M.extract_entities(seq)


# --------------------------------------------------------------------------- registry


def test_registry() -> None:
    assert M.higher_is_better("accuracy") and M.higher_is_better("rougeL") and M.higher_is_better("mcc")
    assert not M.higher_is_better("perplexity") and not M.higher_is_better("bits_per_character")
    with pytest.raises(KeyError, match="unknown metric"):
        M.higher_is_better("bogus")
    # non-LM entries are fn(y_true, y_pred) -> float
    assert M.METRICS["accuracy"](Y_TRUE, Y_PRED) == approx(4 / 6)
    assert M.METRICS["weighted_f1"](Y_TRUE, Y_PRED) == approx(61 / 90)
    assert M.METRICS["micro_f1"](Y_TRUE, Y_PRED) == approx(4 / 6)
    assert M.METRICS["f1"]([["Denver Broncos", "Broncos"], "x"], ["broncos", "y"]) == approx(50.0)
    assert M.METRICS["exact_match"](["Denver Broncos"], ["the denver broncos"]) == 100.0
    assert M.METRICS["rougeL"](["the cat ran"], ["the cat sat"]) == approx(200 / 3)
    assert M.METRICS["entity_f1"]([["B-PER", "O"]], [["B-PER", "O"]]) == 1.0
    bleu = M.METRICS["bleu"](["the cat sat on a mat"], ["the cat sat on the mat"])
    assert bleu == approx(100 * (1 / 12) ** 0.25)
    assert M.METRICS["chrf"](["abc"], ["abc"]) == approx(100.0)
    assert M.METRICS["perplexity"](math.log(7.0)) == approx(7.0)


# --------------------------------------------------------------------------- bootstrap


def _noisy(n: int, seed: int, k: int = 2, acc: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    wrong = (y + rng.integers(1, k, n)) % k
    return y, np.where(rng.random(n) < acc, y, wrong)


def test_bootstrap_contains_point_and_narrows() -> None:
    widths = []
    for n in (200, 5000):
        y, p = _noisy(n, seed=n)
        point, low, high = M.bootstrap_ci(M.accuracy, y, p)
        assert point == M.accuracy(y, p)
        assert low <= point <= high
        widths.append(high - low)
    # width shrinks like 1/sqrt(n): sqrt(5000/200) = 5
    assert widths[1] < widths[0] / 3
    assert M.bootstrap_ci(M.accuracy, [1, 2, 3], [1, 2, 3]) == (1.0, 1.0, 1.0)


def test_bootstrap_seeded_and_paths_agree() -> None:
    y, p = _noisy(300, seed=1, k=3, acc=0.7)
    a = M.bootstrap_ci(M.accuracy, y, p, n_resamples=200, seed=3)
    assert M.bootstrap_ci("accuracy", y, p, n_resamples=200, seed=3) == a
    assert M.bootstrap_ci(M.accuracy, y, p, n_resamples=200, seed=4) != a
    # the vectorised paths draw exactly the resamples the generic loop draws
    for fn in (M.accuracy, M.macro_f1, M.mcc, M.METRICS["weighted_f1"], M.METRICS["micro_f1"]):
        fast = M.bootstrap_ci(fn, y, p, n_resamples=200, seed=3)
        slow = M.bootstrap_ci(lambda t, q, fn=fn: fn(t, q), list(y), list(p), n_resamples=200, seed=3)
        assert fast == approx(slow, abs=1e-12)
    names = np.array(["neg", "neu", "pos"])
    assert M.bootstrap_ci(M.macro_f1, names[y], names[p], n_resamples=200, seed=3) == approx(
        M.bootstrap_ci(M.macro_f1, y, p, n_resamples=200, seed=3)
    )
    golds = [["Denver Broncos"], ["cat on mat"], ["x"], ["a b c d"]] * 10
    preds = ["broncos", "the cat sat", "x", "b c"] * 10
    fast = M.bootstrap_ci("f1", golds, preds, n_resamples=100, seed=0)
    slow = M.bootstrap_ci(lambda g, q: M.METRICS["f1"](g, q), golds, preds, n_resamples=100, seed=0)
    assert fast == approx(slow)
    refs, hyps = ["the cat sat on the mat", "a dog", "hello world"] * 5, ["the cat sat", "a dog", "bye"] * 5
    fast = M.bootstrap_ci("rougeL", refs, hyps, n_resamples=30, seed=0)
    slow = M.bootstrap_ci(lambda r, h: M.METRICS["rougeL"](r, h), refs, hyps, n_resamples=30, seed=0)
    assert fast == approx(slow)


def test_bootstrap_speed() -> None:
    y, p = _noisy(10_000, seed=0)
    M.bootstrap_ci(M.accuracy, y[:100], p[:100], n_resamples=10)  # warm-up
    start = time.perf_counter()
    point, low, high = M.bootstrap_ci(M.accuracy, y, p, n_resamples=1000)
    assert time.perf_counter() - start < 1.0
    assert low < point < high


def test_bootstrap_errors() -> None:
    with pytest.raises(ValueError, match="length mismatch"):
        M.bootstrap_ci(M.accuracy, [0, 1], [0])
    with pytest.raises(ValueError, match="empty"):
        M.bootstrap_ci(M.accuracy, [], [])
    with pytest.raises(ValueError, match="alpha"):
        M.bootstrap_ci(M.accuracy, [0], [0], alpha=1.5)
    with pytest.raises(ValueError, match="n_resamples"):
        M.bootstrap_ci(M.accuracy, [0], [0], n_resamples=0)
    with pytest.raises(KeyError, match="unknown metric"):
        M.bootstrap_ci("bogus", [0], [0])


# --------------------------------------------------------------------------- SST-2 (real data)


def _sst2_dev_labels(shared_data: Path) -> list[int]:
    lines = (shared_data / "sst2" / "dev.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t") == ["text", "label"]
    return [int(line.rsplit("\t", 1)[1]) for line in lines[1:] if line.strip()]


def test_sst2_majority_class(shared_data: Path) -> None:
    labels = _sst2_dev_labels(shared_data)
    assert len(labels) == 872
    majority = [1] * len(labels)  # 444 positive vs 428 negative
    assert M.accuracy(labels, majority) == 444 / 872
    np.testing.assert_array_equal(M.confusion_matrix(labels, majority), [[0, 428], [0, 444]])
    # class 1: P 444/872, R 1, F1 2*444/(872+444) = 888/1316; class 0: F1 0 -> macro 444/1316
    assert M.macro_f1(labels, majority) == approx(444 / 1316)
    assert M.macro_f1(labels, majority, average="weighted") == approx(888 / 1316 * 444 / 872)
    assert M.mcc(labels, majority) == 0.0  # a constant predictor
    point, low, high = M.bootstrap_ci(M.accuracy, labels, majority, seed=0)
    assert point == 444 / 872 and low < point < high
    # normal approximation: 2 * 1.96 * sqrt(p (1 - p) / 872) = 0.066
    assert 0.05 < high - low < 0.085
    assert M.bootstrap_ci(lambda t, q: M.accuracy(t, q), labels, majority, n_resamples=200) == approx(
        M.bootstrap_ci(M.accuracy, labels, majority, n_resamples=200)
    )


# --------------------------------------------------------------------------- optional dependencies


def test_import_is_light() -> None:
    code = (
        "import sys, gptbert.metrics\n"
        "heavy = [m for m in ('torch', 'sacrebleu', 'seqeval', 'rouge_score', 'nltk', 'sklearn')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.parametrize(
    ("modules", "call"),
    [
        (("sacrebleu",), lambda: M.bleu(["a"], ["a"])),
        (("sacrebleu",), lambda: M.chrf(["a"], ["a"])),
        (("rouge_score", "rouge_score.rouge_scorer"), lambda: M.rouge(["a"], ["a"])),
        (("seqeval", "seqeval.metrics"), lambda: M.entity_f1([["O"]], [["O"]])),
    ],
)
def test_missing_optional_dependency_message(
    monkeypatch: pytest.MonkeyPatch, modules: tuple[str, ...], call: Any
) -> None:
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"pip install 'gptbert\[metrics\]'"):
        call()

"""Token classification: the synthetic MONEY/NUM tagging of real Banking77 queries."""

from __future__ import annotations

import json

import pytest
import torch

from gptbert.data.objectives import IGNORE_INDEX
from gptbert.data.readers import DataError, read_token_file
from gptbert import recipes
from gptbert.tasks import tokens
from gptbert.tokenizer import Tokenizer
from tests.tasks import _runs


def test_split_words_keeps_amounts_whole():
    assert tokens.split_words("I paid €10,000. Why?") == ["I", "paid", "€10,000", ".", "Why", "?"]
    assert tokens.split_words("there's a 1£ fee") == ["there's", "a", "1£", "fee"]


@pytest.mark.parametrize("text, expected", [
    ("charged $1 twice", ["O", "B-MONEY", "O"]),
    ("took out 30 pounds", ["O", "O", "B-MONEY", "I-MONEY"]),
    ("a 500 dollar withdrawal", ["O", "B-MONEY", "I-MONEY", "O"]),
    ("only 10 of 30 arrived", ["O", "B-NUM", "O", "B-NUM", "O"]),
    ("£ 20 please", ["B-MONEY", "I-MONEY", "O"]),
    ("pounds and euros", ["O", "O", "O"]),
    ("€1.50 euros", ["B-MONEY", "I-MONEY"]),
])
def test_number_rule_hand_checked(text, expected):
    assert tokens.number_tags(tokens.split_words(text)) == expected


def test_tagging_files_are_real_banking77_text(runs_root, shared_data):
    files = _runs.tagging_files(runs_root, shared_data)
    train = read_token_file(files["train"])  # CoNLL
    dev = read_token_file(files["dev"])  # JSONL
    assert len(train) + len(dev) == files["n"] > 250
    assert set(train.tag_set) == {"O", "B-MONEY", "I-MONEY", "B-NUM"}
    for words, tags in zip(train.tokens, train.tags):
        assert any(t != "O" for t in tags)
        assert tags == tokens.number_tags(words)
    raw = (shared_data / "banking77" / "test.tsv").read_text()
    assert sum(" ".join(w) .replace(" ", "") in raw.replace(" ", "").replace("\t", "") for w in dev.tokens[:10]) >= 8


def test_word_predictions_first_or_last_piece():
    pred = torch.tensor([[9, 1, 2, 3, 4, 9]])  # (1, T)
    word_ids = torch.tensor([[-1, 0, 0, 1, 1, -1]])
    assert tokens.word_predictions(pred, word_ids, [3], last_piece=False) == [[1, 3, 0]]
    assert tokens.word_predictions(pred, word_ids, [2], last_piece=True) == [[2, 4]]


def test_per_type_scores_hand_checked():
    true = [["B-MONEY", "I-MONEY", "O", "B-NUM"], ["B-NUM", "O"]]
    pred = [["B-MONEY", "O", "O", "B-NUM"], ["B-NUM", "B-MONEY"]]
    s = tokens.per_type_scores(true, pred)
    assert s["NUM"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    assert s["MONEY"]["precision"] == 0.0 and s["MONEY"]["recall"] == 0.0 and s["MONEY"]["support"] == 1


@pytest.mark.parametrize("family", ["bert", "gpt"])
def test_finetune_tokens_learns_and_scores(runs_root, shared_data, family):
    run = _runs.tokens_run(runs_root, shared_data, family)
    losses = _runs.train_losses(run["result"])
    assert losses[-1] < 0.5 * losses[0], losses
    dev = run["extra"]["dev"]
    for k in ("precision", "recall", "f1", "token_accuracy"):
        assert 0.0 <= dev[k] <= 1.0
    assert dev["n"] == 40 and dev["token_accuracy"] > 0.85
    task = json.loads((run["path"] / "task.json").read_text())
    assert task["task"] == "tokens"
    assert task["options"]["read_tag_on"] == ("last piece" if family == "gpt" else "first piece")
    # The stored run scores the same on the dev file.
    again = recipes.evaluate(run["path"], _runs.tagging_files(runs_root, shared_data)["dev"])
    assert again["f1"] == pytest.approx(dev["f1"]) and again["n"] == 40
    # Predictions in the evaluation are the tags of every word.
    assert all(len(p) == len(w) for p, w in zip(again["predictions"], read_token_file(
        _runs.tagging_files(runs_root, shared_data)["dev"]).tokens))


def test_tag_and_predict_run(runs_root, shared_data):
    run = _runs.tokens_run(runs_root, shared_data, "bert")
    from gptbert.run import load_run

    r = load_run(run["path"])
    out = tokens.tag(r.model, r.tokenizer, ["I withdrew 30 pounds", ["a", "$5", "fee"]], r.labels)
    assert [w for w, _ in out[0]] == ["I", "withdrew", "30", "pounds"]
    assert [w for w, _ in out[1]] == ["a", "$5", "fee"]
    assert all(t in r.labels for row in out for _, t in row)
    preds = recipes.predict(r, ["I was charged $5 twice"])
    assert preds[0]["tags"][3][0] == "$5" and isinstance(preds[0]["entities"], list)


def test_unknown_dev_tag_names_file_and_line(tmp_path, runs_root, shared_data):
    files = _runs.tagging_files(runs_root, shared_data)
    bad = tmp_path / "bad.conll"
    bad.write_text("I O\npaid O\n$5 B-MONEY\n\nmy O\nPIN B-SECRET\n")
    train = read_token_file(files["train"])
    with pytest.raises(DataError, match=r"bad\.conll:6: tag 'B-SECRET'"):
        tokens.encode_tags(read_token_file(bad), tokens.label_list(train))


# --------------------------------------------------------------------------------------
# The collator
# --------------------------------------------------------------------------------------


def test_token_classification_first_subword(tok: Tokenizer, sst2: list[tuple[str, int]]) -> None:
    examples = []
    for text, _ in sst2[:20]:
        words = text.split()
        examples.append((words, [len(w) % 3 for w in words]))
    examples.append((["Unaffable", "Schwarzenegger", "x"], [1, 2, 0]))
    coll = tokens.TokenClassificationCollator(tok, 64)
    batch = coll(examples)
    assert set(batch) == {"idx", "attention_mask", "token_type_ids", "targets", "word_ids"}
    inputs, meta = tokens.split_batch(batch)
    assert "word_ids" not in inputs and set(meta) == {"word_ids"}
    tg, wid = batch["targets"], batch["word_ids"]
    for i, (words, tags) in enumerate(examples):
        row_w = wid[i].tolist()
        labelled = [(p, w) for p, w in enumerate(row_w) if tg[i, p] != IGNORE_INDEX]
        # Exactly one labelled position per word: its first piece.
        assert [w for _, w in labelled] == list(range(len(words)))
        for p, w in labelled:
            assert row_w.index(w) == p and tg[i, p].item() == tags[w]
        assert batch["idx"][i, 0] == tok.cls_id and wid[i, 0] == -1
        # The pieces of each word are the word's own pieces.
        for w, word in enumerate(words):
            pieces = [batch["idx"][i, p].item() for p, x in enumerate(row_w) if x == w]
            assert pieces == tok.encode(word, add_special_tokens=False).ids
    last = wid[-1].tolist()
    assert last.count(0) == 3  # "Unaffable" -> 3 pieces, only the first labelled
    preds = tokens.word_predictions(tg.clamp(min=0), wid, [len(w) for w, _ in examples])
    assert preds == [list(t) for _, t in examples]


def test_token_classification_truncation_and_bpe(tok: Tokenizer, bpe: Tokenizer) -> None:
    words = ["word"] * 20
    batch = tokens.TokenClassificationCollator(tok, 8)([(words, [1] * 20)])
    assert batch["idx"].shape[1] == 8 and batch["idx"][0, -1] == tok.sep_id
    preds = tokens.word_predictions(batch["targets"].clamp(min=0), batch["word_ids"], [20], fill=-1)
    assert preds[0][:6] == [1] * 6 and preds[0][6:] == [-1] * 14
    b = tokens.TokenClassificationCollator(bpe, 32)([(["Hello", "world"], [3, 4])])
    assert "token_type_ids" not in b
    ids = b["idx"][0][b["attention_mask"][0].bool()].tolist()
    assert ids == bpe.encode("Hello world", add_special_tokens=False).ids  # leading space handled

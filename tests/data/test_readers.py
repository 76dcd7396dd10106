"""Readers: real task files (bad rows included), corpora, SQuAD, pairs, token files, label maps, splits."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptbert.data.readers import (
    DataError,
    DataWarning,
    LabelMap,
    PairData,
    TaskData,
    detect_format,
    iter_corpus,
    read_corpus,
    read_pairs_file,
    read_squad,
    read_task_file,
    read_token_file,
    train_dev_split,
)

BANKING_BAD_LINES = [273, 2148, 2149, 2150, 2151, 2546, 4459, 4726, 6061, 6584, 7090, 7296, 7866]


# ---------------------------------------------------------------------------------------------
# Real TSV task files
# ---------------------------------------------------------------------------------------------


def test_banking77_train_bad_rows_raise_by_default(shared_data: Path) -> None:
    with pytest.raises(DataError) as info:
        read_task_file(shared_data / "banking77" / "train.tsv")
    msg = str(info.value)
    assert "\n" not in msg
    assert "13 bad rows" in msg
    assert "train.tsv:273: no tab separator" in msg
    assert "train.tsv:2150: empty line" in msg
    assert "(+8 more)" in msg and "skip_bad_rows" in msg
    assert [p.line for p in info.value.problems] == BANKING_BAD_LINES


def test_banking77_train_skip_bad_rows(shared_data: Path) -> None:
    path = shared_data / "banking77" / "train.tsv"
    data = read_task_file(path, skip_bad_rows=True)
    assert data.n_bad_rows == len(data.bad_rows) == 13
    assert [p.line for p in data.bad_rows] == BANKING_BAD_LINES
    physical_rows = len(path.read_text(encoding="utf-8").splitlines()) - 1  # minus header
    assert len(data) == physical_rows - 13 == 9003
    assert data.pairs is None and data.labels is not None
    assert len(set(data.labels)) == 77
    assert data.texts[0] == "Could you help my figure out the exchange fee?"
    assert data.labels[0] == "exchange_charge"
    assert data.lines[0] == 2 and data.where(0) == "train.tsv:2"
    # The row right after a broken text is read as written (its text is the tail of the broken one).
    i = data.lines.index(274)
    assert data.texts[i] == 'How do I unblock my PIN?"' and data.labels[i] == "pin_blocked"


@pytest.mark.parametrize(
    ("rel", "rows", "n_labels"),
    [
        ("sst2/dev.tsv", 872, 2),
        ("banking77/dev.tsv", 1000, 77),
        ("banking77/test.tsv", 3080, 77),
        ("snips/train.tsv", 13084, 7),
        ("snips/dev.tsv", 700, 7),
        ("snips/test.tsv", 700, 7),
    ],
)
def test_clean_task_files(shared_data: Path, rel: str, rows: int, n_labels: int) -> None:
    data = read_task_file(shared_data / rel)
    assert len(data) == rows and data.n_bad_rows == 0
    assert len(set(data.labels or [])) == n_labels


def test_sst2_train_keeps_quotes(shared_data: Path) -> None:
    data = read_task_file(shared_data / "sst2" / "train.tsv")
    assert len(data) == 67349
    assert Counter(data.labels) == {"0": 29780, "1": 37569}
    assert any('"' in t for t in data.texts) or any("``" in t for t in data.texts)
    raw = (shared_data / "sst2" / "train.tsv").read_text(encoding="utf-8").splitlines()
    assert data.texts[100] == raw[101].split("\t")[0]


def test_unlabelled_read(shared_data: Path) -> None:
    data = read_task_file(shared_data / "snips" / "dev.tsv", label_column=None)
    assert data.labels is None and len(data) == 700


def test_missing_column_names_header(shared_data: Path) -> None:
    with pytest.raises(DataError, match=r"dev\.tsv:1: no label column 'intent' in the header \(columns: 'text', 'label'\)"):
        read_task_file(shared_data / "snips" / "dev.tsv", label_column="intent")


# ---------------------------------------------------------------------------------------------
# Made-up malformed files in every format
# ---------------------------------------------------------------------------------------------


def _write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_tsv_row_problems(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.tsv", b"text\tlabel\ngood one\tpos\nno separator here\n"
                                      b"\tneg\nempty label\t \nthree\tcols\there\ncaf\xe9 latin1\tpos\nlast\tneg\n")
    with pytest.raises(DataError) as info:
        read_task_file(path)
    got = {p.line: p.message for p in info.value.problems}
    assert set(got) == {3, 4, 5, 6, 7}
    assert got[3].startswith("no tab separator")
    assert got[4] == "empty text" and got[5] == "empty label"
    assert got[6] == "expected 2 tab-separated columns, found 3"
    assert got[7].startswith("undecodable bytes")
    data = read_task_file(path, skip_bad_rows=True)
    assert data.texts == ["good one", "last"] and data.lines == [2, 8] and data.n_bad_rows == 5


def test_tsv_pair_columns_and_no_header(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.tsv", "premise\thypothesis\tlabel\nA man.\tA person.\t1\nA cat.\tA dog.\t0\n")
    data = read_task_file(path, text_column="premise", text_pair_column="hypothesis")
    assert data.pairs == ["A person.", "A dog."] and data.labels == ["1", "0"]
    nohead = _write(tmp_path / "n.tsv", "first text\tsecond\tyes\nother\tthing\tno\n")
    data = read_task_file(nohead, has_header=False, text_pair_column=1)
    assert data.texts == ["first text", "other"] and data.pairs == ["second", "thing"] and data.labels == ["yes", "no"]


def test_csv_quoting_and_bad_rows(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.csv", 'text,label\n"hello, world",pos\n"multi\nline text",neg\nbad,row,extra\n'
                                      'ok,\n"fine ""quoted"" text",pos\n')
    with pytest.raises(DataError, match=r"c\.csv: 2 bad rows: c\.csv:5: expected 2 comma-separated columns, found 3; "
                                        r"c\.csv:6: empty label"):
        read_task_file(path)
    data = read_task_file(path, skip_bad_rows=True)
    assert data.texts == ["hello, world", "multi\nline text", 'fine "quoted" text']
    assert data.lines == [2, 3, 7]


def test_jsonl_problems(tmp_path: Path) -> None:
    path = _write(tmp_path / "j.jsonl", '{"text": "one", "label": 1}\n{"text": "two", "label": "b"}\n'
                                        '{"text": "three"\n\n{"label": "x"}\n["not", "object"]\n'
                                        '{"text": 5, "label": "x"}\n{"text": "four", "label": true}\n')
    with pytest.raises(DataError) as info:
        read_task_file(path)
    got = {p.line: p.message for p in info.value.problems}
    assert set(got) == {3, 5, 6, 7}
    assert got[3].startswith("invalid JSON") and got[5] == "missing key 'text'"
    assert got[6] == "expected a JSON object, found list" and "expected a string" in got[7]
    data = read_task_file(path, skip_bad_rows=True)
    assert data.texts == ["one", "two", "four"] and data.labels == ["1", "b", "true"]


def test_json_array_and_format_override(tmp_path: Path) -> None:
    arr = _write(tmp_path / "a.json", json.dumps([{"text": "x", "label": "a"}, {"text": "y", "label": "b"}]))
    assert read_task_file(arr).texts == ["x", "y"]
    odd = _write(tmp_path / "data.txt", "text\tlabel\nhi\tpos\n")
    with pytest.raises(DataError, match=r"cannot tell the format"):
        read_task_file(odd)
    assert read_task_file(odd, format="tsv").labels == ["pos"]
    assert detect_format("x/train.jsonl.gz") == "jsonl"


def test_all_rows_bad_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.tsv", "text\tlabel\nnope\n")
    with pytest.raises(DataError, match="no valid rows"):
        read_task_file(path, skip_bad_rows=True)
    with pytest.raises(FileNotFoundError, match="missing.tsv"):
        read_task_file(tmp_path / "missing.tsv")


# ---------------------------------------------------------------------------------------------
# Label maps
# ---------------------------------------------------------------------------------------------


def test_label_map_numeric_order_and_round_trip(tmp_path: Path, shared_data: Path) -> None:
    lm = LabelMap.from_labels(["10", "2", "1", "2", "0"])
    assert lm.labels == ["0", "1", "2", "10"]
    assert lm.encode("10") == 3 and lm.decode(3) == "10"
    sst = LabelMap.from_data(read_task_file(shared_data / "sst2" / "dev.tsv"))
    assert sst.label2id == {"0": 0, "1": 1}
    bank = LabelMap.from_data(read_task_file(shared_data / "banking77" / "train.tsv", skip_bad_rows=True))
    assert len(bank) == 77 and bank.labels == sorted(bank.labels)
    saved = bank.save(tmp_path)
    assert saved.name == "labels.json"
    assert LabelMap.load(tmp_path) == bank
    assert LabelMap.load(saved).id2label[0] == bank.labels[0]


def test_unseen_dev_label_names_file_and_line(shared_data: Path, tmp_path: Path) -> None:
    lm = LabelMap.from_data(read_task_file(shared_data / "snips" / "train.tsv"))
    dev = read_task_file(shared_data / "snips" / "dev.tsv")
    assert len(lm.encode_all(dev)) == 700
    rows = (shared_data / "snips" / "dev.tsv").read_text(encoding="utf-8").splitlines()[:4]
    rows[2] = rows[2].split("\t")[0] + "\tOrderPizza"
    bad = _write(tmp_path / "dev.tsv", "\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"1 label\(s\) not seen in the training data: dev\.tsv:3: label 'OrderPizza'"):
        lm.encode_all(read_task_file(bad))
    with pytest.raises(DataError, match="here: label 'nope'"):
        lm.encode("nope", where="here")


# ---------------------------------------------------------------------------------------------
# Corpora
# ---------------------------------------------------------------------------------------------


def test_corpus_line_and_blank_modes(shared_data: Path) -> None:
    snippets = read_corpus(shared_data / "sst2" / "rt_snippets.txt")
    assert len(snippets) == 10605
    shakespeare = shared_data / "tinyshakespeare" / "input.txt"
    lines = read_corpus(shakespeare)
    raw = shakespeare.read_text(encoding="utf-8")
    assert len(lines) == sum(1 for ln in raw.splitlines() if ln.strip())
    docs = read_corpus(shakespeare, mode="blank")
    expected = [b for b in raw.split("\n\n") if b.strip()]
    assert len(docs) == len(expected)
    assert docs[0] == expected[0].strip("\n")
    assert docs[0].startswith("First Citizen:\nBefore we proceed")
    it = iter_corpus([shakespeare, shared_data / "sst2" / "rt_snippets.txt"])
    assert next(it) == "First Citizen:"  # lazy: nothing else read yet


def test_corpus_bad_bytes(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.txt", b"ok\nbad \xff byte\n\nnext\n")
    with pytest.raises(DataError, match=r"c\.txt:2: undecodable bytes at column 5"):
        read_corpus(path)
    assert read_corpus(path, errors="replace") == ["ok", "bad \ufffd byte", "next"]
    assert read_corpus(tmp_path, mode="blank", errors="replace") == ["ok\nbad \ufffd byte", "next"]


# ---------------------------------------------------------------------------------------------
# SQuAD
# ---------------------------------------------------------------------------------------------


def test_squad_mini(shared_data: Path) -> None:
    path = shared_data / "squad-mini" / "dev-v1.1-subset.json"
    with pytest.warns(DataWarning, match="124 answer"):
        data = read_squad(path)
    assert len(data) == 158
    assert len(data.problems) == 130 and len(data.unfixed) == 124
    ids = {e.id for e in data}
    assert all(p.question_id in ids for p in data.problems)
    assert str(data.problems[0]).startswith("question f156a96c-80b7-4267-a01b-b337607817a4: answer 'Bureau")
    for ex in data:
        for ans in ex.answers:
            if ans["answer_start"] is not None:
                assert ex.context[ans["answer_start"]:ans["answer_start"] + len(ans["text"])] == ans["text"]
    moved = next(p for p in data.problems if p.question_id == "32bfb837-f517-4fde-ac6a-cbf4c629c84c")
    assert moved.fixed and "found at 7099" in moved.message
    assert sum(e.answerable for e in data) == 34
    assert {e.title for e in data} >= {"TEN PRINCIPLES OF ECONOMICS"}

    with pytest.warns(DataWarning):
        kept = read_squad(path, on_bad_answer="skip")
    assert len(kept) == 34 and all(e.answerable for e in kept)
    with pytest.raises(DataError, match=r"124 answer\(s\) not found in their context: question f156a96c"):
        read_squad(path, on_bad_answer="raise")


def test_squad_structure_errors(tmp_path: Path) -> None:
    bad = _write(tmp_path / "s.json", json.dumps({"data": [{"title": "t", "paragraphs": [{"context": "abc", "qas": [
        {"id": "q1", "answers": [{"text": "b", "answer_start": 1}]}]}]}]}))
    with pytest.raises(DataError, match=r"data\[0\]\.paragraphs\[0\]\.qas\[0\]: missing 'question'"):
        read_squad(bad)
    with pytest.raises(DataError, match=r"s2\.json:1: invalid JSON"):
        read_squad(_write(tmp_path / "s2.json", "{nope"))


# ---------------------------------------------------------------------------------------------
# Generation pairs and token classification
# ---------------------------------------------------------------------------------------------


def test_pairs_tsv_and_jsonl(shared_data: Path, tmp_path: Path) -> None:
    lines = [ln for ln in (shared_data / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8").splitlines()
             if ln.strip()][:201]
    tsv = _write(tmp_path / "p.tsv", "source\ttarget\n" + "".join(f"{a}\t{b}\n" for a, b in zip(lines, lines[1:])))
    data = read_pairs_file(tsv)
    assert isinstance(data, PairData) and len(data) == 200 and data.targets[0] == lines[1]
    jl = _write(tmp_path / "p.jsonl", "".join(json.dumps({"article": a, "summary": b}) + "\n"
                                              for a, b in zip(lines, lines[1:])) + '{"article": "x"}\n')
    with pytest.raises(DataError, match=r"p\.jsonl:201: missing key 'summary'"):
        read_pairs_file(jl, source_column="article", target_column="summary")
    assert len(read_pairs_file(jl, "article", "summary", skip_bad_rows=True)) == 200


def test_conll_and_jsonl_token_files(tmp_path: Path) -> None:
    conll = _write(tmp_path / "ner.conll", "-DOCSTART- -X- O O\n\nEU NNP B-ORG\nrejects VBZ O\n\n"
                                           "Peter NNP B-PER\nBlackburn NNP I-PER\n\nbroken\nline O\n")
    with pytest.raises(DataError, match=r"ner\.conll:9: expected 'token tag'"):
        read_token_file(conll)
    data = read_token_file(conll, skip_bad_rows=True)
    assert data.tokens == [["EU", "rejects"], ["Peter", "Blackburn"]]
    assert data.tags == [["B-ORG", "O"], ["B-PER", "I-PER"]]
    assert data.lines == [3, 6] and data.n_bad_rows == 1
    assert data.tag_set == ["B-ORG", "B-PER", "I-PER", "O"]
    jl = _write(tmp_path / "ner.jsonl", json.dumps({"tokens": ["a", "b"], "tags": ["O", "B-X"]}) + "\n"
                + json.dumps({"tokens": ["a"], "tags": ["O", "O"]}) + "\n")
    with pytest.raises(DataError, match=r"ner\.jsonl:2: 1 tokens but 2 tags"):
        read_token_file(jl)


# ---------------------------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------------------------


def test_train_dev_split_stratified(shared_data: Path) -> None:
    data = read_task_file(shared_data / "banking77" / "train.tsv", skip_bad_rows=True)
    train, dev = train_dev_split(data, 0.1, seed=0)
    assert isinstance(train, TaskData) and len(train) + len(dev) == len(data)
    assert abs(len(dev) - 0.1 * len(data)) < 77
    assert set(dev.labels) <= set(train.labels) and len(set(train.labels)) == 77
    assert train.lines == sorted(train.lines) and not set(train.lines) & set(dev.lines)
    again = train_dev_split(data, 0.1, seed=0)[1]
    assert again.texts == dev.texts
    assert train_dev_split(data, 0.1, seed=1)[1].texts != dev.texts


@settings(max_examples=50, deadline=None)
@given(n=st.integers(2, 300), frac=st.floats(0.01, 0.99), seed=st.integers(0, 10))
def test_train_dev_split_plain_list(n: int, frac: float, seed: int) -> None:
    items = list(range(n))
    train, dev = train_dev_split(items, frac, seed)
    assert sorted(train + dev) == items and train and dev
    assert train_dev_split(items, frac, seed) == (train, dev)


@settings(max_examples=40, deadline=None)
@given(labels=st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=2, max_size=80))
def test_train_dev_split_keeps_every_label_in_train(labels: list[str]) -> None:
    data = TaskData(texts=[f"t{i}" for i in range(len(labels))], labels=labels)
    train, dev = train_dev_split(data, 0.3)
    assert len(dev) >= 1
    if max(Counter(labels).values()) > 1:  # otherwise no split can keep every label in train
        assert set(train.labels) == set(labels)
    assert sorted(train.texts + dev.texts) == sorted(data.texts)

"""TSV / JSONL writers: what they write, the readers read back unchanged; what TSV cannot hold is an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from gptbert.data.readers import DataError, TaskData, read_pairs_file, read_task_file
from gptbert.data.writers import format_tsv, task_records, write_jsonl, write_task_file, write_tsv

QUOTED = ['he said "hi" twice', '"starts" and ends with "quotes"', "it's", 'a lone " quote', "back\\slash"]


def test_tsv_is_written_literally_and_reads_back(tmp_path: Path) -> None:
    data = TaskData(texts=QUOTED, pairs=[t.upper() for t in QUOTED], labels=["a", "b", "a", "b", "a"])
    path = write_task_file(tmp_path / "quoted.tsv", data)
    assert path.read_text(encoding="utf-8").splitlines()[:2] == ["text\ttext_pair\tlabel",
                                                                 'he said "hi" twice\tHE SAID "HI" TWICE\ta']
    back = read_task_file(path, text_pair_column="text_pair")
    assert back.texts == data.texts and back.pairs == data.pairs and back.labels == data.labels


@pytest.mark.parametrize("text,name", [("a\tb", "a tab"), ("two\nlines", "a line feed"), ("cr\rhere", "a carriage return")])
def test_what_tsv_cannot_hold_is_an_error_and_nothing_is_written(tmp_path: Path, text: str, name: str) -> None:
    data = TaskData(texts=["fine", text], labels=["0", "1"])
    with pytest.raises(DataError, match=rf"bad\.tsv: line 3, column 'text': the text holds {name}.*JSONL"):
        write_task_file(tmp_path / "bad.tsv", data)
    assert not list(tmp_path.iterdir())
    with pytest.raises(DataError, match="line 1, column '0'"):
        format_tsv([[text]])


def test_jsonl_holds_any_text(tmp_path: Path) -> None:
    texts = QUOTED + ["a\tb", "two\nlines", "cr\rhere", "unicode \u2028 é"]
    data = TaskData(texts=texts, labels=[str(i % 3) for i in range(len(texts))])
    back = read_task_file(write_task_file(tmp_path / "any.jsonl", data))
    assert back.texts == texts and back.labels == data.labels
    pairs = write_jsonl(tmp_path / "pairs.jsonl", ({"source": t, "target": t[::-1]} for t in texts))
    read = read_pairs_file(pairs)
    assert read.sources == texts and read.targets == [t[::-1] for t in texts]


def test_write_tsv_of_pairs_reads_back(tmp_path: Path) -> None:
    rows = [(s, s + " -> done") for s in QUOTED]
    back = read_pairs_file(write_tsv(tmp_path / "pairs.tsv", rows, header=["source", "target"]))
    assert list(zip(back.sources, back.targets)) == rows


def test_task_records_needs_matching_parts() -> None:
    labelled = TaskData(texts=["x"], labels=["1"])
    assert task_records(labelled, labelled) == (["text", "label"], [["x", "1"], ["x", "1"]])
    with pytest.raises(ValueError, match="same columns"):
        task_records(labelled, TaskData(texts=["y"]))
    with pytest.raises(ValueError, match="format='csv'"):
        write_task_file("x.csv", labelled, format="csv")

"""Every task-file format through the one reader registry, on real files written in the test by
pandas, pyarrow and ``datasets`` from rows of SST-2: detection, column mapping, a wrong column
name, bad rows by row index, ClassLabel names, splits, the optional-extra message, and the CLI."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

from gptbert.cli import main
from gptbert.data.readers import (
    FORMATS,
    DataError,
    detect_format,
    read_pairs_file,
    read_task_file,
    read_token_file,
)

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
datasets = pytest.importorskip("datasets")

N = 12


@pytest.fixture(scope="module")
def sst2(shared_data: Path) -> pd.DataFrame:
    """The first rows of SST-2 dev as a frame: text, label (ints 0 / 1) and idx."""
    data = read_task_file(shared_data / "sst2" / "dev.tsv")
    return pd.DataFrame({"text": data.texts[:N], "label": [int(x) for x in data.labels[:N]], "idx": range(N)})


def _write(df: pd.DataFrame, path: Path) -> Path:
    fmt = path.suffix
    if fmt == ".csv":
        df.to_csv(path, index=False)
    elif fmt == ".tsv":
        df.to_csv(path, sep="\t", index=False, quoting=csv.QUOTE_NONE)  # TSV is read line by line
    elif fmt == ".jsonl":
        df.to_json(path, orient="records", lines=True)
    elif fmt == ".json":
        df.to_json(path, orient="records")
    else:
        df.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".json", ".parquet"])
def test_each_format_written_by_pandas(sst2: pd.DataFrame, tmp_path: Path, suffix: str) -> None:
    path = _write(sst2, tmp_path / f"train{suffix}")
    assert detect_format(path) == suffix[1:]
    data = read_task_file(path)
    assert data.texts == list(sst2.text) and data.labels == [str(x) for x in sst2.label]
    # the column mapping works the same in every format
    pairs = sst2.assign(second=sst2.text.str.upper()).rename(columns={"text": "sentence", "label": "gold"})
    mapped = read_task_file(_write(pairs, tmp_path / f"pairs{suffix}"), text_column="sentence",
                            text_pair_column="second", label_column="gold")
    assert mapped.texts == data.texts and mapped.labels == data.labels
    assert mapped.pairs == [t.upper() for t in data.texts]
    with pytest.raises(DataError, match=r"no text column 'sentence'.*\(columns: 'text', 'label', 'idx'\)"):
        read_task_file(path, text_column="sentence")
    assert read_task_file(path, format=suffix[1:]).texts == data.texts


def test_wrong_typed_value_is_a_bad_row(sst2: pd.DataFrame, tmp_path: Path) -> None:
    path = _write(sst2, tmp_path / "t.parquet")
    with pytest.raises(DataError, match=r"t\.parquet: 12 bad rows: t\.parquet: row 0: 'idx' is a int"):
        read_task_file(path, text_pair_column="idx")


def test_parquet_bad_rows_by_row_index(sst2: pd.DataFrame, tmp_path: Path) -> None:
    texts: list[str | None] = list(sst2.text)
    labels: list[int | None] = list(sst2.label)
    texts[3], labels[7] = "  ", None
    texts[9] = None
    path = tmp_path / "train.parquet"
    pq.write_table(pa.table({"text": texts, "label": labels}), path)
    with pytest.raises(DataError) as info:
        read_task_file(path)
    assert (f"{path}: 3 bad rows: train.parquet: row 3: empty text; train.parquet: row 7: empty label; "
            "train.parquet: row 9: empty text;") in str(info.value)
    assert [(p.line, p.message, p.unit) for p in info.value.problems] == [
        (3, "empty text", "row"), (7, "empty label", "row"), (9, "empty text", "row")]
    data = read_task_file(path, skip_bad_rows=True)
    assert len(data) == N - 3 and data.n_bad_rows == 3
    assert data.lines == [i for i in range(N) if i not in (3, 7, 9)]
    assert data.where(3) == "train.parquet: row 4"
    assert data.subset([3]).where(0) == "train.parquet: row 4"


def test_datasets_folder_single_dataset(sst2: pd.DataFrame, tmp_path: Path) -> None:
    folder = tmp_path / "sst2_hf"
    datasets.Dataset.from_dict({"sentence": list(sst2.text), "label": list(sst2.label)}).save_to_disk(folder)
    assert detect_format(folder) == "datasets"
    data = read_task_file(folder, text_column="sentence")
    assert data.texts == list(sst2.text) and data.labels == [str(x) for x in sst2.label]
    with pytest.raises(DataError, match=r"no text column 'text' \(columns: 'sentence', 'label'\)"):
        read_task_file(folder)
    with pytest.raises(DataError, match="a single Dataset"):
        read_task_file(f"{folder}:train", text_column="sentence")


def test_datasets_dict_with_splits_and_class_label(sst2: pd.DataFrame, tmp_path: Path) -> None:
    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["negative", "positive"])})
    part = {"text": list(sst2.text), "label": list(sst2.label)}
    labels = [["negative", "positive"][x] for x in sst2.label]
    full = datasets.Dataset.from_dict(part, features=features)
    folder = tmp_path / "hf"
    datasets.DatasetDict(train=full, dev=full.select(range(4))).save_to_disk(folder)
    train = read_task_file(folder, split="train")
    assert train.labels == labels and train.source == f"{folder}:train"
    dev = read_task_file(f"{folder}:dev")
    assert dev.texts == list(sst2.text[:4]) and dev.labels == labels[:4]
    with pytest.raises(DataError, match=r"a DatasetDict with splits train, dev; name one"):
        read_task_file(folder)
    with pytest.raises(DataError, match=r"no split 'test' \(splits: train, dev\)"):
        read_task_file(folder, split="test")
    # Dataset.to_parquet keeps the features: the Parquet file gives the names too
    full.to_parquet(str(tmp_path / "hf.parquet"))
    assert read_task_file(tmp_path / "hf.parquet").labels == labels
    # -1 is "no label" in datasets: a bad row
    unlabelled = datasets.Dataset.from_dict({"text": ["a", "b"], "label": [1, -1]}, features=features)
    unlabelled.save_to_disk(tmp_path / "u")
    with pytest.raises(DataError, match=r"u: row 1: empty label"):
        read_task_file(tmp_path / "u")


def test_pairs_and_tokens_from_tables(tmp_path: Path) -> None:
    pq.write_table(pa.table({"source": ["a long text", "another"], "target": ["short", None]}), tmp_path / "p.parquet")
    pairs = read_pairs_file(tmp_path / "p.parquet", skip_bad_rows=True)
    assert pairs.sources == ["a long text"] and pairs.bad_rows[0].line == 1
    tags = datasets.Sequence(datasets.ClassLabel(names=["O", "B-PER", "I-PER"]))
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")), "ner_tags": tags})
    conll = datasets.Dataset.from_dict({"tokens": [["Ada", "Lovelace", "wrote"], ["hi"]], "ner_tags": [[1, 2, 0], [0]]},
                                       features=features)
    datasets.DatasetDict(train=conll).save_to_disk(tmp_path / "conll")
    data = read_token_file(tmp_path / "conll", tags_key="ner_tags")
    assert data.tokens[0] == ["Ada", "Lovelace", "wrote"] and data.tags == [["B-PER", "I-PER", "O"], ["O"]]
    assert data.unit == "row" and data.lines == [0, 1]
    with pytest.raises(DataError, match=r"no tags column 'tags' \(columns: 'tokens', 'ner_tags'\)"):
        read_token_file(tmp_path / "conll")


@pytest.mark.parametrize(("module", "extra", "suffix"), [("pyarrow", "parquet", ".parquet"),
                                                         ("datasets", "datasets", "")])
def test_missing_extra_names_it(sst2: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                module: str, extra: str, suffix: str) -> None:
    if suffix:
        path = _write(sst2, tmp_path / f"t{suffix}")
    else:
        path = tmp_path / "hf"
        datasets.Dataset.from_dict({"text": ["a"], "label": [0]}).save_to_disk(path)
    assert FORMATS[detect_format(path)].extra == extra
    for name in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
        monkeypatch.setitem(sys.modules, name, None)  # "import pyarrow" now fails as if not installed
    with pytest.raises(DataError, match=rf"needs the optional package '{module}': pip install 'gptbert\[{extra}\]'"):
        read_task_file(path)


def test_split_only_for_datasets_and_missing_paths(sst2: pd.DataFrame, tmp_path: Path) -> None:
    path = _write(sst2, tmp_path / "t.csv")
    with pytest.raises(DataError, match="a split"):
        read_task_file(path, split="train")
    with pytest.raises(FileNotFoundError, match="nothing.parquet"):
        read_task_file(tmp_path / "nothing.parquet")
    (tmp_path / "plain").mkdir()
    with pytest.raises(DataError, match="not a Hugging Face datasets folder"):
        read_task_file(tmp_path / "plain")


def test_data_profile_cli_on_parquet_and_datasets(sst2: pd.DataFrame, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(sst2, tmp_path / "train.parquet")
    assert main(["data", "profile", str(path), "--json"]) == 0
    profile = json.loads(capsys.readouterr().out)
    assert profile["n_examples"] == N and profile["n_labels"] == 2
    folder = tmp_path / "hf"
    ds = datasets.Dataset.from_dict({"sentence": list(sst2.text), "label": list(sst2.label)})
    datasets.DatasetDict(train=ds, dev=ds.select(range(5))).save_to_disk(folder)
    assert main(["data", "profile", f"{folder}:dev", "--text-column", "sentence", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_examples"] == 5
    assert main(["data", "profile", str(folder), "--split", "train", "--text-column", "sentence", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_examples"] == N
    assert main(["data", "profile", str(path), "--label-column", "gold"]) == 2
    assert "no label column 'gold' (columns: 'text', 'label', 'idx')" in capsys.readouterr().err


def test_recommend_profiles_a_datasets_split(sst2: pd.DataFrame, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from gptbert.recommend import profile_data_file

    folder = tmp_path / "hf"
    ds = datasets.Dataset.from_dict({"sentence": list(sst2.text), "label": list(sst2.label)})
    datasets.DatasetDict(train=ds, dev=ds.select(range(5))).save_to_disk(folder)
    profile = profile_data_file(folder, split="dev", text_column="sentence")
    assert profile["n_examples"] == 5 and profile["has_labels"]
    with pytest.raises(ValueError, match="no label column 'gold'"):
        profile_data_file(f"{folder}:dev", text_column="sentence", label_column="gold")
    assert main(["recommend", "--task", "sentiment", "--data", f"{folder}:train", "--text-column", "sentence",
                 "--json"]) in (0, 1)
    assert json.loads(capsys.readouterr().out)


def test_tokenizer_train_on_a_parquet_file(sst2: pd.DataFrame, tmp_path: Path) -> None:
    path = _write(sst2, tmp_path / "t.parquet")
    out = tmp_path / "tok"
    assert main(["tokenizer", "train", str(path), "--kind", "wordpiece", "--vocab-size", "120", "--out", str(out),
                 "--quiet"]) == 0
    assert (out / "tokenizer.json").is_file()

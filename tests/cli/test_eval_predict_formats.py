"""``gptbert evaluate`` and ``predict --input`` read every task-file format through the one reader
registry: the same dev rows of SST-2 written as TSV, CSV, JSONL, JSON, Parquet (pandas / pyarrow)
and a Hugging Face DatasetDict folder (``datasets``) give the same scores and the same predictions;
``--text-column`` / ``--label-column`` map renamed columns; ``--split`` and ``FOLDER:SPLIT`` pick a
split; a wrong column or a misplaced ``--split`` is a one-line error (exit 2)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from gptbert.cli import main
from tests.tasks import _runs

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")
datasets = pytest.importorskip("datasets")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def classifier(runs_root: Path, shared_data: Path) -> dict[str, Any]:
    return _runs.classify_run(runs_root, shared_data)


@pytest.fixture(scope="module")
def dev_frame(classifier: dict[str, Any]) -> pd.DataFrame:
    """The run's 60 dev rows, with the columns renamed (sentence, gold) so that mapping is needed."""
    from gptbert.data.readers import read_task_file

    dev = read_task_file(classifier["dev"])
    return pd.DataFrame({"sentence": dev.texts, "gold": [int(x) for x in dev.labels]})


def _write(df: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        df.to_csv(path, index=False)
    elif path.suffix == ".tsv":
        df.to_csv(path, sep="\t", index=False, quoting=csv.QUOTE_NONE)
    elif path.suffix == ".jsonl":
        df.to_json(path, orient="records", lines=True)
    elif path.suffix == ".json":
        df.to_json(path, orient="records")
    elif path.suffix == ".parquet":
        df.to_parquet(path, index=False)
    else:  # a DatasetDict folder with two splits
        full = datasets.Dataset.from_pandas(df, preserve_index=False)
        datasets.DatasetDict(dev=full, head=full.select(range(min(10, len(df))))).save_to_disk(path)
    return path


def _evaluate(capsys: pytest.CaptureFixture[str], run: Path, *argv: str) -> dict[str, Any]:
    code, out, err = _run(capsys, "evaluate", str(run), *argv, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("name", ["dev.csv", "dev.tsv", "dev.jsonl", "dev.json", "dev.parquet", "dev_hf"])
def test_evaluate_reads_each_format(capsys: pytest.CaptureFixture[str], classifier: dict[str, Any],
                                    dev_frame: pd.DataFrame, tmp_path: Path, name: str) -> None:
    run = classifier["path"]
    reference = _evaluate(capsys, run, "--data", str(classifier["dev"]))
    assert reference["n"] == 60
    path = _write(dev_frame, tmp_path / name)
    split = ["--split", "dev"] if name == "dev_hf" else []
    result = _evaluate(capsys, run, "--data", str(path), *split, "--text-column", "sentence", "--label-column", "gold")
    assert result["n"] == 60
    assert result["y_pred"] == reference["y_pred"] and result["y_true"] == reference["y_true"]
    assert result["accuracy"] == pytest.approx(reference["accuracy"])
    # the run's own columns are the defaults: the renamed file needs the mapping, and says what it has
    code, _, err = _run(capsys, "evaluate", str(run), "--data", str(path), *split, "--json")
    assert code == 2 and "no text column 'text'" in err and "'sentence', 'gold'" in err
    assert "Traceback" not in err


def test_evaluate_datasets_split_forms(capsys: pytest.CaptureFixture[str], classifier: dict[str, Any],
                                      dev_frame: pd.DataFrame, tmp_path: Path) -> None:
    run = classifier["path"]
    folder = _write(dev_frame, tmp_path / "hf")
    columns = ["--text-column", "sentence", "--label-column", "gold"]
    by_option = _evaluate(capsys, run, "--data", str(folder), "--split", "head", *columns)
    by_path = _evaluate(capsys, run, "--data", f"{folder}:head", *columns)
    assert by_option["n"] == by_path["n"] == 10 and by_option["y_pred"] == by_path["y_pred"]
    # without --json the result is kept in the run directory under a name without the colon
    code, out, err = _run(capsys, "evaluate", str(run), "--data", str(folder), "--split", "head", *columns)
    assert code == 0, err
    assert json.loads((run / "eval-hf-head.json").read_text())["n"] == 10
    code, _, err = _run(capsys, "evaluate", str(run), "--data", str(folder), *columns)
    assert code == 2 and "splits dev, head; name one" in err
    code, _, err = _run(capsys, "evaluate", str(run), "--data", str(classifier["dev"]), "--split", "dev")
    assert code == 2 and "--split dev: names a split of a Hugging Face datasets folder" in err
    code, _, err = _run(capsys, "evaluate", str(run), "--data", str(folder), "--split", "head",
                        "--text-column", "sentence", "--label-column", "nope")
    assert code == 2 and "no label column 'nope'" in err


@pytest.mark.parametrize("name", ["in.csv", "in.jsonl", "in.parquet", "in_hf"])
def test_predict_input_reads_each_format(capsys: pytest.CaptureFixture[str], classifier: dict[str, Any],
                                         dev_frame: pd.DataFrame, tmp_path: Path, name: str) -> None:
    run = classifier["path"]
    texts = list(dev_frame.sentence[:8])
    code, out, err = _run(capsys, "predict", str(run), "--text", *texts)
    assert code == 0, err
    reference = [json.loads(x)["label"] for x in out.splitlines()]
    path = _write(dev_frame.iloc[:8], tmp_path / name)
    split = ["--split", "dev"] if name == "in_hf" else []
    code, out, err = _run(capsys, "predict", str(run), "--input", str(path), *split, "--text-column", "sentence")
    assert code == 0, err
    lines = [json.loads(x) for x in out.splitlines()]
    assert [r["text"] for r in lines] == texts and [r["label"] for r in lines] == reference
    code, _, err = _run(capsys, "predict", str(run), "--input", str(path), *split, "--text-column", "body")
    assert code == 2 and "no text column 'body'" in err and "'sentence'" in err


def test_predict_jsonl_of_strings_and_text_records(capsys: pytest.CaptureFixture[str], classifier: dict[str, Any],
                                                   tmp_path: Path) -> None:
    """JSONL of bare strings (no table) and of records with the run's text column both still work."""
    run = classifier["path"]
    strings = tmp_path / "s.jsonl"
    strings.write_text('"a fine film"\n"dull and long"\n')
    records = tmp_path / "r.jsonl"
    records.write_text('{"text": "a fine film"}\n{"text": "dull and long"}\n')
    outs = []
    for path in (strings, records):
        code, out, err = _run(capsys, "predict", str(run), "--input", str(path))
        assert code == 0, err
        outs.append([(r["text"], r["label"]) for r in map(json.loads, out.splitlines())])
    assert outs[0] == outs[1] and [t for t, _ in outs[0]] == ["a fine film", "dull and long"]


def test_predict_tables_for_generation_and_qa_runs(capsys: pytest.CaptureFixture[str], runs_root: Path,
                                                   shared_data: Path, tmp_path: Path) -> None:
    """A generation run reads the ``source`` column of a Parquet file; a QA run the question and
    context columns of a CSV file."""
    gen = _runs.gen_run(runs_root, shared_data, "gpt")
    sources = ["Good morrow, sir.", "Where is the king?"]
    path = tmp_path / "src.parquet"
    pd.DataFrame({"id": [1, 2], "source": sources}).to_parquet(path, index=False)
    code, out, err = _run(capsys, "predict", str(gen["path"]), "--input", str(path), "--max-new-tokens", "3")
    assert code == 0, err
    assert [json.loads(x)["source"] for x in out.splitlines()] == sources
    qa = _runs.qa_run(runs_root, shared_data, "bert")
    context = "The misery index adds the inflation rate and the unemployment rate."
    table = tmp_path / "q.csv"
    pd.DataFrame({"question": ["What does the index add?"], "context": [context]}).to_csv(table, index=False)
    code, out, err = _run(capsys, "predict", str(qa["path"]), "--input", str(table))
    assert code == 0, err
    answer = json.loads(out)
    assert answer["question"] == "What does the index add?" and answer["answer"] in context
    pd.DataFrame({"query": ["x"], "context": [context]}).to_csv(table, index=False)
    code, _, err = _run(capsys, "predict", str(qa["path"]), "--input", str(table))
    assert code == 2 and "no question column 'question'" in err and "'query', 'context'" in err


def test_column_options_for_a_task_without_columns_name_what_it_has(tmp_path: Path) -> None:
    from gptbert.recipes import _with_options
    from gptbert.run import Run, TaskInfo
    from gptbert.tasks import TASKS
    from gptbert.tasks.classify import ClassifyOptions

    run = Run(tmp_path, model=None, tokenizer=None, task=TaskInfo(task="classify", options=ClassifyOptions()))  # type: ignore[arg-type]
    mapped = _with_options(run, TASKS["classify"], {"text_column": "sentence"})
    assert mapped.task.options.text_column == "sentence" and mapped.task.options.label_column == "label"
    assert run.task.options.text_column == "text"  # the loaded run is left as it was
    qa = Run(tmp_path, model=None, tokenizer=None, task=TaskInfo(task="qa"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"--label-column: the qa task reads no such column"):
        _with_options(qa, TASKS["qa"], {"label_column": "gold"})

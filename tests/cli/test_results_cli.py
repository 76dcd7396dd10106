"""``gptbert results`` and ``gptbert recommend`` run in-process."""

from __future__ import annotations

import csv
import json

import pytest

from gptbert.cli import main
from gptbert.results import ResultsStore, save_results_json
from tests.test_results import make_comparison


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "runs.db"
    store = ResultsStore(path)
    store.append(make_comparison(id="20250101-000000-aaaaaa", created_at="2025-01-01T00:00:00+00:00"))
    store.append(make_comparison(task="tokens", id="20250102-000000-bbbbbb",
                                 created_at="2025-01-02T00:00:00+00:00"))
    return path


def test_results_list_and_show(db, capsys):
    assert main(["results", "list", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "20250101-000000-aaaaaa" in out and "20250102-000000-bbbbbb" in out and "3/4" in out
    assert main(["results", "list", "--db", str(db), "--task", "tokens"]) == 0
    out = capsys.readouterr().out
    assert "aaaaaa" not in out and "bbbbbb" in out
    assert main(["results", "show", "20250101", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "bert-mini" in out and "0.862" in out and "Recommendation: bert-mini" in out
    assert "elmo-small failed" in out
    assert main(["results", "show", "20250102-000000-bbbbbb", "--db", str(db), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["task"] == "tokens"


def test_results_errors(db, tmp_path, capsys):
    assert main(["results", "show", "zzz", "--db", str(db)]) == 2
    assert "no comparison 'zzz'" in capsys.readouterr().err
    assert main(["results", "list", "--db", str(tmp_path / "none.db")]) == 2
    assert "no results store" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()


def test_results_export(db, tmp_path, capsys):
    out_csv = tmp_path / "out.csv"
    assert main(["results", "export", "--format", "csv", "--out", str(out_csv), "--db", str(db)]) == 0
    with out_csv.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 and rows[0]["name"] == "bert-mini"
    out_json = tmp_path / "out.json"
    assert main(["results", "export", "--format", "json", "--out", str(out_json), "--db", str(db)]) == 0
    assert len(json.loads(out_json.read_text())["comparisons"]) == 2
    capsys.readouterr()
    assert main(["results", "export", "--format", "json", "--out", "-", "--db", str(db)]) == 0
    assert json.loads(capsys.readouterr().out)["schema_version"] == 1


def test_recommend_from_results_json_and_run_dir(tmp_path, capsys):
    comp = make_comparison()
    save_results_json(comp, tmp_path / "run" / "results.json")
    assert main(["recommend", "--results", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Recommendation: bert-mini") and "6.50 ms" in out
    assert main(["recommend", "--results", str(tmp_path / "run" / "results.json"), "--needs-generation",
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["choice"] == "gpt-mini" and data["measured"] is True
    # Nothing fits: exit code 1, each candidate listed with its failed constraint.
    assert main(["recommend", "--results", str(tmp_path / "run"), "--max-latency-ms", "1"]) == 1
    out = capsys.readouterr().out
    assert "No candidate meets the constraints" in out and "bert-tiny: p95 latency 1.90 ms" in out


def test_recommend_from_db(db, capsys):
    assert main(["recommend", "--results", str(db), "--task", "classify", "--max-latency-ms", "5"]) == 0
    assert "Recommendation: bert-tiny" in capsys.readouterr().out
    assert main(["recommend", "--results", str(db), "--task", "qa"]) == 2
    assert "no stored comparison for task qa" in capsys.readouterr().err


def test_recommend_priors(tmp_path, capsys):
    data = tmp_path / "train.tsv"
    data.write_text("text\tlabel\n" + "a fine film\t1\n" * 40 + "awful\t0\n" * 5)
    assert main(["recommend", "--task", "sentiment", "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Nothing was measured") and "45 labelled examples" in out and "macro-F1" in out
    assert main(["recommend"]) == 2
    assert "--task" in capsys.readouterr().err
    assert main(["recommend", "--task", "poetry-slam"]) == 2
    assert "unknown task" in capsys.readouterr().err
    assert main(["recommend", "--task", "ner", "--max-latency-ms", "0"]) == 2
    assert main(["recommend", "--results", str(tmp_path / "nope")]) == 2

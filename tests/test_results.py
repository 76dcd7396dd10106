"""Results dataclasses, JSON files and the SQLite store.

``make_comparison`` builds a synthetic but realistic comparison (made-up numbers) that
the report, recommend and CLI tests reuse: they test logic, not models.
"""

from __future__ import annotations

import csv
import json
import sqlite3

import pytest

from gptbert.results import (
    CANDIDATE_COLUMNS,
    SCHEMA_VERSION,
    CandidateResult,
    Comparison,
    LatencyStats,
    Quality,
    ResultsStore,
    TrainStats,
    load_results_json,
    save_results_json,
)


def _lat(p50: float, p95: float) -> LatencyStats:
    return LatencyStats(p50_ms=p50, p95_ms=p95, mean_ms=(p50 + p95) / 2, n=50)


def make_candidate(
    name: str,
    family: str,
    acc: float,
    ci: tuple[float, float],
    latency: dict[str, tuple[float, float]],
    size_mb: dict[str, float],
    rss_mb: float,
    n_params: int,
    *,
    task: str = "classify",
    decode: float | None = None,
) -> CandidateResult:
    return CandidateResult(
        name=name, family=family, source=name, task=task,
        quality=Quality("accuracy", dev=acc, dev_ci=ci, test=acc - 0.01, test_ci=(ci[0] - 0.01, ci[1] - 0.01)),
        n_params=n_params, n_params_non_embedding=n_params // 3, size_mb=size_mb,
        pretrain=TrainStats(wall_s=300.0, tokens=1_000_000, tokens_per_s=3333.3, steps=500, final_loss=3.2),
        finetune=TrainStats(wall_s=60.0, tokens=200_000, tokens_per_s=3333.3, steps=100, final_loss=0.41,
                            best_metric=acc, stop_reason="early_stop"),
        latency={k: _lat(*v) for k, v in latency.items()},
        throughput={k: 32_000 / (v[0] * 8) for k, v in latency.items()},
        peak_rss_mb={"train": 2 * rss_mb, "inference": rss_mb},
        decode_tokens_per_s=decode,
        curves=[{"step": s, "loss": 3.0 / (1 + s / 100), "phase": "pretrain"} for s in range(0, 500, 50)]
        + [{"step": s, "loss": 0.7 / (1 + s / 50), "metric": acc * (1 - 1 / (2 + s)), "phase": "finetune"}
           for s in range(0, 100, 10)],
        latency_samples={k: [v[0] * (1 + 0.01 * i) for i in range(30)] for k, v in latency.items()},
    )


def make_comparison(task: str = "classify", **overrides) -> Comparison:
    """bert-mini and gpt-mini tie on quality (overlapping CIs), bert-tiny is fast but worse,
    elmo-small failed. Fastest p95: bert-tiny 1.9 ms, bert-mini 6.5 ms, gpt-mini 20.1 ms (int8)."""
    cands = [
        make_candidate("bert-mini", "bert", 0.862, (0.840, 0.883),
                       {"fp32": (10.0, 12.0), "bf16": (13.0, 15.0), "int8": (5.5, 6.5)},
                       {"fp32": 42.5, "bf16": 21.3, "int8": 11.0}, 310.0, 11_200_000, task=task),
        make_candidate("gpt-mini", "gpt", 0.880, (0.859, 0.899), {"fp32": (33.0, 38.0), "int8": (18.0, 20.1)},
                       {"fp32": 102.0, "bf16": 51.0, "int8": 26.0}, 520.0, 26_700_000, task=task, decode=140.0),
        make_candidate("bert-tiny", "bert", 0.781, (0.755, 0.806), {"fp32": (2.5, 3.1), "int8": (1.5, 1.9)},
                       {"fp32": 16.8, "bf16": 8.4, "int8": 4.4}, 180.0, 4_400_000, task=task),
        CandidateResult(name="elmo-small", family="elmo", source="elmo-small", task=task, status="failed",
                        error="RuntimeError: out of memory while allocating 1.2 GB"),
    ]
    kwargs = dict(
        task=task, candidates=cands, data={"train": "train.tsv", "dev": "dev.tsv", "test": None},
        budget="5m", precisions=["fp32", "bf16", "int8"],
        dataset_profile={"n_examples": 6920, "label_counts": {"0": 3310, "1": 3610},
                         "length": {"unit": "words", "p95": 38.0, "max": 52}},
        hardware={"cpu_model": "Test CPU", "logical_cores": 2, "usable_cores": 2, "gpu": None,
                  "cpu_flags": {"avx2": True, "amx_bf16": False}},
    )
    kwargs.update(overrides)
    return Comparison(**kwargs)


# --------------------------------------------------------------------------- dataclasses


def test_json_round_trip(tmp_path):
    comp = make_comparison()
    path = save_results_json(comp, tmp_path / "run" / "results.json")
    text = path.read_text()
    json.loads(text)  # plain JSON, no NaN
    back = load_results_json(path)
    assert back == comp
    assert back.to_dict() == comp.to_dict()
    assert load_results_json(tmp_path / "run") == comp  # a run folder works too
    assert not list((tmp_path / "run").glob("*.tmp"))


def test_defaults_and_derived_fields():
    assert Quality("perplexity", dev=12.0).higher_is_better is False
    assert Quality("accuracy", dev=0.9).higher_is_better is True
    assert CandidateResult(name="g", family="gpt").can_generate is True
    assert CandidateResult(name="b", family="bert").can_generate is False
    assert CandidateResult(name="e", family="elmo").can_generate is False
    # A bare list of latency samples is accepted and filed under fp32.
    c = CandidateResult.from_dict({"name": "x", "latency_samples": [1.0, 2.0]})
    assert c.latency_samples == {"fp32": [1.0, 2.0]}


def test_non_finite_numbers_become_null():
    c = CandidateResult(name="x", family="gpt", decode_tokens_per_s=float("nan"), extra={"k": float("inf")})
    d = c.to_dict()
    assert d["decode_tokens_per_s"] is None and d["extra"]["k"] is None
    json.dumps(d, allow_nan=False)


def test_validation_errors():
    with pytest.raises(ValueError, match="family"):
        CandidateResult(name="x", family="t5")
    with pytest.raises(ValueError, match="status"):
        CandidateResult(name="x", status="done")
    with pytest.raises(ValueError, match="duplicate"):
        Comparison(task="t", candidates=[CandidateResult(name="a"), CandidateResult(name="a")])
    with pytest.raises(ValueError, match="unknown field"):
        CandidateResult.from_dict({"name": "x", "bogus": 1})


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_results_json(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_results_json(bad)
    bad.write_text('{"hello": 1}')
    with pytest.raises(ValueError, match="not a gptbert results file"):
        load_results_json(bad)


# --------------------------------------------------------------------------- store


def test_store_round_trip_and_accumulation(tmp_path):
    db = tmp_path / "runs.db"
    store = ResultsStore(db)
    first = make_comparison(id="20250101-000000-aaaaaa", created_at="2025-01-01T00:00:00+00:00")
    second = make_comparison(task="tokens", id="20250102-000000-bbbbbb", created_at="2025-01-02T00:00:00+00:00")
    store.append(first)
    # A fresh handle on the same file sees earlier appends (accumulation over time).
    store = ResultsStore(db)
    store.append(second)
    assert len(store) == 2
    listed = store.list()
    assert [c["id"] for c in listed] == [first.id, second.id]
    assert listed[0]["n_candidates"] == 4 and listed[0]["n_ok"] == 3
    assert store.get(first.id) == first
    assert store.get("20250102") == second  # unique prefix
    assert store.latest() == second
    rows = store.candidates()
    assert len(rows) == 8
    tokens_rows = store.candidates(task="tokens")
    assert len(tokens_rows) == 4 and {r["comparison_id"] for r in tokens_rows} == {second.id}
    mini = next(r for r in rows if r["name"] == "bert-mini")
    assert mini["quality_dev"] == pytest.approx(0.862)
    assert mini["latency_p95_int8_ms"] == pytest.approx(6.5)
    assert mini["peak_rss_inference_mb"] == pytest.approx(310.0)
    failed = next(r for r in rows if r["name"] == "elmo-small")
    assert failed["status"] == "failed" and "out of memory" in failed["error"]
    assert [c.name for c in store.candidate_results(task="classify")] == [c.name for c in first.candidates]


def test_store_duplicate_and_missing_ids(tmp_path):
    store = ResultsStore(tmp_path / "runs.db")
    comp = make_comparison(id="20250101-000000-aaaaaa")
    store.append(comp)
    with pytest.raises(ValueError, match="already"):
        store.append(comp)
    changed = make_comparison(id=comp.id, task="qa")
    store.append(changed, replace=True)
    assert len(store) == 1 and store.get(comp.id).task == "qa"
    assert len(store.candidates()) == 4  # old rows replaced, not duplicated
    with pytest.raises(KeyError, match="no comparison"):
        store.get("nope")
    store.append(make_comparison(id="20250101-000000-bbbbbb"))
    with pytest.raises(KeyError, match="ambiguous"):
        store.get("20250101")
    store.delete("20250101-000000-bbbbbb")
    assert len(store) == 1


def test_store_schema_version_and_foreign_files(tmp_path):
    db = tmp_path / "runs.db"
    ResultsStore(db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ValueError, match="newer"):
        ResultsStore(db)
    junk = tmp_path / "junk.db"
    junk.write_text("this is not a database at all" * 10)
    with pytest.raises(ValueError):
        ResultsStore(junk)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
    with pytest.raises(ValueError, match="not a gptbert results store"):
        ResultsStore(other)


def test_export_csv_and_json(tmp_path):
    store = ResultsStore(tmp_path / "runs.db")
    store.append(make_comparison(id="a1", created_at="2025-01-01T00:00:00+00:00"))
    store.append(make_comparison(task="qa", id="b2", created_at="2025-01-02T00:00:00+00:00"))
    out = store.export(tmp_path / "all.csv", "csv")
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8
    assert list(rows[0]) == [n for n, _ in CANDIDATE_COLUMNS]
    assert rows[0]["comparison_id"] == "a1" and rows[0]["name"] == "bert-mini"
    assert float(rows[0]["latency_p95_fp32_ms"]) == pytest.approx(12.0)
    out = store.export(tmp_path / "qa.json", "json", task="qa")
    payload = json.loads(out.read_text())
    assert payload["schema_version"] == SCHEMA_VERSION
    assert [c["id"] for c in payload["comparisons"]] == ["b2"]
    assert Comparison.from_dict(payload["comparisons"][0]) == store.get("b2")
    with pytest.raises(ValueError, match="format"):
        store.export(tmp_path / "x.xml", "xml")

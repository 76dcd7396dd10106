"""Results of ``gptbert compare``: dataclasses, JSON files and a SQLite history.

A :class:`Comparison` holds one run of several :class:`CandidateResult` s on one task,
data set and machine. Every dataclass round-trips through ``to_dict``/``from_dict``
into plain JSON values. :class:`ResultsStore` keeps every comparison ever appended in
one SQLite file (``runs.db``) so results accumulate over time and can be listed,
queried and exported.

Units: sizes and memory in MB (MiB, 2**20 bytes), times in ms or s as named.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gptbert import __version__
from gptbert.io.files import atomic_write_text
from gptbert.io.files import NotTextError, read_text_file

__all__ = [
    "CandidateResult",
    "Comparison",
    "LatencyStats",
    "Quality",
    "ResultsStore",
    "SCHEMA_VERSION",
    "TrainStats",
    "load_results_json",
    "save_results_json",
]

FAMILIES = ("bert", "gpt", "elmo", "hybrid", "encdec", "baseline", "other")
"""Model families (:data:`gptbert.config.FAMILIES`), the baselines (``tfidf-lr``, ``embed-lr``) and anything else."""
STATUSES = ("ok", "failed", "skipped")
PRECISIONS = ("fp32", "bf16", "fp16", "int8")

LOWER_IS_BETTER_METRICS = frozenset({"perplexity", "bits_per_character", "bits_per_token", "loss"})
"""Metrics where a smaller value is better (kept here so results need no metric code)."""

FRACTION_METRICS = frozenset({"accuracy", "macro_f1", "micro_f1", "weighted_f1", "mcc", "entity_f1", "f1_macro"})
"""Metrics reported as fractions in [0, 1]: differences are shown as points (x100)."""


def _json_safe(value: Any) -> Any:
    """Plain JSON values: tuples to lists, numpy scalars to Python, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    item = getattr(value, "item", None)  # numpy / torch scalars
    if callable(item):
        try:
            return _json_safe(item())
        except (TypeError, ValueError):
            pass
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"value of type {type(value).__name__} is not JSON-serialisable: {value!r}")


def _known(cls: type, data: dict[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    names = {f.name for f in fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown}")
    return {k: v for k, v in data.items() if k in names}


def _pair(value: Any, where: str) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        low, high = value
        return (float(low), float(high))
    except (TypeError, ValueError):
        raise ValueError(f"{where}: expected a (low, high) pair, got {value!r}") from None


# --------------------------------------------------------------------------- dataclasses


@dataclass
class Quality:
    """Task quality on dev (and test) with percentile-bootstrap 95 % intervals."""

    metric: str
    """Metric name, e.g. 'accuracy', 'macro_f1', 'entity_f1', 'f1', 'rougeL', 'perplexity'."""
    dev: float | None = None
    dev_ci: tuple[float, float] | None = None
    """(low, high) 95 % bootstrap interval of ``dev``."""
    test: float | None = None
    test_ci: tuple[float, float] | None = None
    higher_is_better: bool | None = None
    """Default: False for perplexity/bits/loss, True for everything else."""

    def __post_init__(self) -> None:
        if self.higher_is_better is None:
            self.higher_is_better = self.metric not in LOWER_IS_BETTER_METRICS
        self.dev_ci = _pair(self.dev_ci, "Quality.dev_ci")
        self.test_ci = _pair(self.test_ci, "Quality.test_ci")

    @property
    def value(self) -> float | None:
        """The number used for selection: dev if measured, else test."""
        return self.dev if self.dev is not None else self.test

    @property
    def interval(self) -> tuple[float, float] | None:
        """The interval belonging to :attr:`value`."""
        return self.dev_ci if self.dev is not None else self.test_ci

    @property
    def split(self) -> str | None:
        return "dev" if self.dev is not None else ("test" if self.test is not None else None)

    def to_dict(self) -> dict[str, Any]:
        return _json_safe(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Quality":
        return cls(**_known(cls, data, "Quality"))


@dataclass
class TrainStats:
    """One training phase (pre-training or fine-tuning)."""

    wall_s: float | None = None
    tokens: int | None = None
    tokens_per_s: float | None = None
    steps: int | None = None
    final_loss: float | None = None
    best_metric: float | None = None
    """Fine-tuning only: best dev metric seen (early stopping)."""
    stop_reason: str | None = None
    """Fine-tuning only: 'budget', 'early_stop', 'max_steps', 'converged', ..."""

    def to_dict(self) -> dict[str, Any]:
        return _json_safe(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainStats":
        return cls(**_known(cls, data, "TrainStats"))


@dataclass
class LatencyStats:
    """Latency at batch size 1 for one precision (see ``measure.latency_stats``)."""

    p50_ms: float
    p95_ms: float
    mean_ms: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        return _json_safe(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LatencyStats":
        return cls(**_known(cls, data, "LatencyStats"))


@dataclass
class CandidateResult:
    """Everything measured about one candidate model in one comparison."""

    name: str
    family: str = "other"
    """'bert', 'gpt', 'elmo' or 'other'."""
    source: str = ""
    """Preset name or checkpoint path."""
    task: str = ""
    quality: Quality | None = None
    n_params: int | None = None
    n_params_non_embedding: int | None = None
    size_mb: dict[str, float] = field(default_factory=dict)
    """Weight size per precision: {'fp32', 'bf16', 'int8'} -> MB."""
    pretrain: TrainStats | None = None
    finetune: TrainStats | None = None
    latency: dict[str, LatencyStats] = field(default_factory=dict)
    """Precision -> latency at batch size 1."""
    throughput: dict[str, float] = field(default_factory=dict)
    """Precision -> items per second at batch size 32."""
    peak_rss_mb: dict[str, float | None] = field(default_factory=dict)
    """{'train': MB, 'inference': MB} peak resident memory."""
    decode_tokens_per_s: float | None = None
    """Generation speed (generative candidates only)."""
    curves: list[dict[str, Any]] = field(default_factory=list)
    """Training curve points: {'step', 'loss', optional 'metric', optional 'phase'}."""
    latency_samples: dict[str, list[float]] = field(default_factory=dict)
    """Precision -> raw batch-1 latency samples in ms (for plots)."""
    status: str = "ok"
    """'ok', 'failed' or 'skipped'."""
    error: str | None = None
    can_generate: bool | None = None
    """Whether the model can generate text; default: True for GPT, False for BERT/ELMo."""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("CandidateResult.name must not be empty")
        if self.family not in FAMILIES:
            raise ValueError(f"CandidateResult.family: expected one of {FAMILIES}, got {self.family!r}")
        if self.status not in STATUSES:
            raise ValueError(f"CandidateResult.status: expected one of {STATUSES}, got {self.status!r}")
        if self.can_generate is None:
            if self.family == "gpt":
                self.can_generate = True
            elif self.family in ("bert", "elmo"):
                self.can_generate = False
            else:
                self.can_generate = self.decode_tokens_per_s is not None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("quality", "pretrain", "finetune"):
                data[f.name] = None if value is None else value.to_dict()
            elif f.name == "latency":
                data[f.name] = {k: v.to_dict() for k, v in value.items()}
            else:
                data[f.name] = _json_safe(value)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CandidateResult":
        kw = _known(cls, data, f"CandidateResult {data.get('name', '?') if isinstance(data, dict) else ''}")
        if kw.get("quality") is not None:
            kw["quality"] = Quality.from_dict(kw["quality"])
        for phase in ("pretrain", "finetune"):
            if kw.get(phase) is not None:
                kw[phase] = TrainStats.from_dict(kw[phase])
        if kw.get("latency"):
            kw["latency"] = {k: LatencyStats.from_dict(v) for k, v in kw["latency"].items()}
        samples = kw.get("latency_samples")
        if isinstance(samples, list):  # a bare list of samples: one precision, fp32
            kw["latency_samples"] = {"fp32": samples} if samples else {}
        return cls(**kw)


def _new_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class Comparison:
    """One ``gptbert compare`` run: several candidates, one task, one data set, one machine."""

    task: str
    candidates: list[CandidateResult] = field(default_factory=list)
    data: dict[str, str | None] = field(default_factory=dict)
    """{'train', 'dev', 'test'} data paths."""
    budget: str | None = None
    """Time budget per candidate as given, e.g. '5m'."""
    precisions: list[str] = field(default_factory=lambda: ["fp32"])
    dataset_profile: dict[str, Any] = field(default_factory=dict)
    hardware: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=_new_id)
    created_at: str = field(default_factory=_now)
    """ISO 8601 UTC timestamp."""
    version: str = __version__
    """gptbert version that produced the results."""

    def __post_init__(self) -> None:
        names = [c.name for c in self.candidates]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"Comparison: duplicate candidate name(s) {dupes}")

    def candidate(self, name: str) -> CandidateResult:
        for c in self.candidates:
            if c.name == name:
                return c
        raise KeyError(f"no candidate {name!r}; candidates: {', '.join(c.name for c in self.candidates)}")

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "candidates"}
        out = _json_safe(data)
        out["candidates"] = [c.to_dict() for c in self.candidates]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Comparison":
        kw = _known(cls, data, "Comparison")
        kw["candidates"] = [CandidateResult.from_dict(c) for c in kw.get("candidates") or []]
        return cls(**kw)


# --------------------------------------------------------------------------- JSON files


def save_results_json(comparison: Comparison, path: str | os.PathLike[str]) -> Path:
    """Write ``comparison`` as indented JSON (atomically)."""
    return atomic_write_text(path, json.dumps(comparison.to_dict(), indent=2, allow_nan=False) + "\n")


def load_results_json(path: str | os.PathLike[str]) -> Comparison:
    """Read a comparison written by :func:`save_results_json`; a folder means its results.json."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    try:
        text = read_text_file(p)
    except NotTextError as e:
        if not p.exists():
            raise FileNotFoundError(f"results file not found: {p}") from None
        raise ValueError(str(e)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{p}: not valid JSON (line {e.lineno}): {e.msg}") from None
    try:
        return Comparison.from_dict(data)
    except (TypeError, ValueError, KeyError) as e:
        raise ValueError(f"{p}: not a gptbert results file: {e}") from None


# --------------------------------------------------------------------------- SQLite store

SCHEMA_VERSION = 1
"""Stored in ``PRAGMA user_version``; bump and add a migration when columns change."""

CANDIDATE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("comparison_id", "TEXT NOT NULL"),
    ("created_at", "TEXT NOT NULL"),
    ("task", "TEXT"),
    ("name", "TEXT NOT NULL"),
    ("family", "TEXT"),
    ("source", "TEXT"),
    ("status", "TEXT"),
    ("metric", "TEXT"),
    ("quality_dev", "REAL"),
    ("quality_dev_low", "REAL"),
    ("quality_dev_high", "REAL"),
    ("quality_test", "REAL"),
    ("n_params", "INTEGER"),
    ("n_params_non_embedding", "INTEGER"),
    ("size_fp32_mb", "REAL"),
    ("size_bf16_mb", "REAL"),
    ("size_int8_mb", "REAL"),
    ("pretrain_wall_s", "REAL"),
    ("pretrain_tokens_per_s", "REAL"),
    ("finetune_wall_s", "REAL"),
    ("finetune_tokens_per_s", "REAL"),
    ("latency_p50_fp32_ms", "REAL"),
    ("latency_p95_fp32_ms", "REAL"),
    ("latency_p50_bf16_ms", "REAL"),
    ("latency_p95_bf16_ms", "REAL"),
    ("latency_p50_int8_ms", "REAL"),
    ("latency_p95_int8_ms", "REAL"),
    ("throughput_fp32", "REAL"),
    ("throughput_bf16", "REAL"),
    ("throughput_int8", "REAL"),
    ("peak_rss_train_mb", "REAL"),
    ("peak_rss_inference_mb", "REAL"),
    ("decode_tokens_per_s", "REAL"),
    ("error", "TEXT"),
)
"""Flat columns of the ``candidates`` table (besides ``id`` and ``json``); also the CSV export."""

_MIGRATIONS: dict[int, list[str]] = {}
"""from_version -> SQL statements that bring a database to from_version + 1."""


def _candidate_row(comparison: Comparison, c: CandidateResult) -> dict[str, Any]:
    q = c.quality
    lat = c.latency
    row: dict[str, Any] = {
        "comparison_id": comparison.id,
        "created_at": comparison.created_at,
        "task": c.task or comparison.task,
        "name": c.name,
        "family": c.family,
        "source": c.source,
        "status": c.status,
        "metric": q.metric if q else None,
        "quality_dev": q.dev if q else None,
        "quality_dev_low": q.dev_ci[0] if q and q.dev_ci else None,
        "quality_dev_high": q.dev_ci[1] if q and q.dev_ci else None,
        "quality_test": q.test if q else None,
        "n_params": c.n_params,
        "n_params_non_embedding": c.n_params_non_embedding,
        "size_fp32_mb": c.size_mb.get("fp32"),
        "size_bf16_mb": c.size_mb.get("bf16"),
        "size_int8_mb": c.size_mb.get("int8"),
        "pretrain_wall_s": c.pretrain.wall_s if c.pretrain else None,
        "pretrain_tokens_per_s": c.pretrain.tokens_per_s if c.pretrain else None,
        "finetune_wall_s": c.finetune.wall_s if c.finetune else None,
        "finetune_tokens_per_s": c.finetune.tokens_per_s if c.finetune else None,
        "peak_rss_train_mb": c.peak_rss_mb.get("train"),
        "peak_rss_inference_mb": c.peak_rss_mb.get("inference"),
        "decode_tokens_per_s": c.decode_tokens_per_s,
        "error": c.error,
    }
    for prec in ("fp32", "bf16", "int8"):
        row[f"latency_p50_{prec}_ms"] = lat[prec].p50_ms if prec in lat else None
        row[f"latency_p95_{prec}_ms"] = lat[prec].p95_ms if prec in lat else None
        row[f"throughput_{prec}"] = c.throughput.get(prec)
    return _json_safe(row)


class ResultsStore:
    """Every comparison ever appended, in one SQLite file.

    Tables: ``comparisons`` (one row per comparison with its full JSON) and
    ``candidates`` (one row per candidate: the key numbers as columns, see
    :data:`CANDIDATE_COLUMNS`, plus the candidate's full JSON). Each append is one
    transaction, so concurrent writers and interrupted runs leave the file consistent.
    """

    def __init__(self, path: str | os.PathLike[str] = "runs.db") -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise ValueError(f"results store path is a directory: {self.path}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            self._migrate(conn)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        except sqlite3.Error as e:
            raise ValueError(f"cannot open results store {self.path}: {e}") from None
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            yield conn
        except sqlite3.DatabaseError as e:
            raise ValueError(f"results store {self.path}: {e}") from None
        finally:
            conn.close()

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ValueError(
                    f"results store {self.path} has schema version {version}, newer than this "
                    f"gptbert supports ({SCHEMA_VERSION}); upgrade gptbert"
                )
            if version == 0:
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                if tables - {"comparisons", "candidates"}:
                    raise ValueError(f"{self.path} is an SQLite file but not a gptbert results store")
                cols = ",\n".join(f"  {name} {decl}" for name, decl in CANDIDATE_COLUMNS)
                conn.execute(
                    """CREATE TABLE IF NOT EXISTS comparisons (
                      id TEXT PRIMARY KEY,
                      created_at TEXT NOT NULL,
                      task TEXT,
                      version TEXT,
                      n_candidates INTEGER,
                      n_ok INTEGER,
                      json TEXT NOT NULL
                    )"""
                )
                conn.execute(
                    f"""CREATE TABLE IF NOT EXISTS candidates (
                      id INTEGER PRIMARY KEY AUTOINCREMENT,
                    {cols},
                      json TEXT NOT NULL,
                      FOREIGN KEY (comparison_id) REFERENCES comparisons(id) ON DELETE CASCADE
                    )"""
                )
                conn.execute("CREATE INDEX IF NOT EXISTS candidates_task ON candidates(task)")
                conn.execute("CREATE INDEX IF NOT EXISTS candidates_comparison ON candidates(comparison_id)")
                version = SCHEMA_VERSION
            while version < SCHEMA_VERSION:
                for stmt in _MIGRATIONS[version]:
                    conn.execute(stmt)
                version += 1
            conn.execute(f"PRAGMA user_version = {int(version)}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # ---- writing

    def append(self, comparison: Comparison, *, replace: bool = False) -> None:
        """Store ``comparison``; an id already stored is an error unless ``replace``."""
        doc = json.dumps(comparison.to_dict(), allow_nan=False)
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                exists = conn.execute("SELECT 1 FROM comparisons WHERE id = ?", (comparison.id,)).fetchone()
                if exists and not replace:
                    raise ValueError(
                        f"comparison {comparison.id} is already in {self.path}; pass replace=True to overwrite it"
                    )
                if exists:
                    conn.execute("DELETE FROM candidates WHERE comparison_id = ?", (comparison.id,))
                    conn.execute("DELETE FROM comparisons WHERE id = ?", (comparison.id,))
                conn.execute(
                    "INSERT INTO comparisons (id, created_at, task, version, n_candidates, n_ok, json)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        comparison.id,
                        comparison.created_at,
                        comparison.task,
                        comparison.version,
                        len(comparison.candidates),
                        sum(c.ok for c in comparison.candidates),
                        doc,
                    ),
                )
                names = [n for n, _ in CANDIDATE_COLUMNS] + ["json"]
                sql = f"INSERT INTO candidates ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
                for c in comparison.candidates:
                    row = _candidate_row(comparison, c)
                    values = [row[n] for n, _ in CANDIDATE_COLUMNS] + [json.dumps(c.to_dict(), allow_nan=False)]
                    conn.execute(sql, values)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def delete(self, comparison_id: str) -> None:
        """Remove one comparison and its candidates."""
        cid = self._resolve(comparison_id)
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM candidates WHERE comparison_id = ?", (cid,))
            conn.execute("DELETE FROM comparisons WHERE id = ?", (cid,))
            conn.execute("COMMIT")

    # ---- reading

    def list(self) -> list[dict[str, Any]]:
        """Summaries, oldest first: {'id', 'created_at', 'task', 'version', 'n_candidates', 'n_ok'}."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT id, created_at, task, version, n_candidates, n_ok FROM comparisons"
                " ORDER BY created_at, rowid"
            ).fetchall()
        return [dict(r) for r in rows]

    def __len__(self) -> int:
        with self._connect() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM comparisons").fetchone()[0])

    def _resolve(self, comparison_id: str) -> str:
        """Full id from an id or a unique prefix of one."""
        with self._connect() as conn:
            exact = conn.execute("SELECT id FROM comparisons WHERE id = ?", (comparison_id,)).fetchone()
            if exact:
                return str(exact[0])
            like = comparison_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            rows = conn.execute(
                "SELECT id FROM comparisons WHERE id LIKE ? ESCAPE '\\'", (like,)
            ).fetchall()
        if len(rows) == 1:
            return str(rows[0][0])
        if not rows:
            raise KeyError(f"no comparison {comparison_id!r} in {self.path}")
        raise KeyError(
            f"comparison id {comparison_id!r} is ambiguous in {self.path}: "
            + ", ".join(str(r[0]) for r in rows[:10])
        )

    def get(self, comparison_id: str) -> Comparison:
        """The comparison with this id (or unique id prefix); KeyError if none."""
        cid = self._resolve(comparison_id)
        with self._connect() as conn:
            row = conn.execute("SELECT json FROM comparisons WHERE id = ?", (cid,)).fetchone()
        return Comparison.from_dict(json.loads(row[0]))

    def latest(self) -> Comparison | None:
        """The most recently created comparison, or None when the store is empty."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT json FROM comparisons ORDER BY created_at DESC, rowid DESC LIMIT 1"
            ).fetchone()
        return None if row is None else Comparison.from_dict(json.loads(row[0]))

    def candidates(self, task: str | None = None) -> list[dict[str, Any]]:
        """Flat candidate rows (the columns of :data:`CANDIDATE_COLUMNS`), oldest first."""
        names = ", ".join(n for n, _ in CANDIDATE_COLUMNS)
        sql = f"SELECT {names} FROM candidates"
        params: tuple[Any, ...] = ()
        if task is not None:
            sql += " WHERE task = ?"
            params = (task,)
        sql += " ORDER BY created_at, id"
        with self._connect() as conn:
            return [dict(r) for r in conn.execute(sql, params).fetchall()]

    def candidate_results(self, task: str | None = None) -> list[CandidateResult]:
        """Full :class:`CandidateResult` objects, oldest first, optionally for one task."""
        sql = "SELECT json FROM candidates"
        params: tuple[Any, ...] = ()
        if task is not None:
            sql += " WHERE task = ?"
            params = (task,)
        sql += " ORDER BY created_at, id"
        with self._connect() as conn:
            return [CandidateResult.from_dict(json.loads(r[0])) for r in conn.execute(sql, params)]

    def export(self, path: str | os.PathLike[str], fmt: str = "csv", *, task: str | None = None) -> Path:
        """Write the store to ``path``: ``csv`` (one row per candidate, flat columns) or
        ``json`` (``{"schema_version", "comparisons": [full comparisons]}``). Atomic."""
        if fmt == "csv":
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=[n for n, _ in CANDIDATE_COLUMNS], lineterminator="\n")
            writer.writeheader()
            for row in self.candidates(task):
                writer.writerow(row)
            return atomic_write_text(path, buf.getvalue())
        if fmt == "json":
            with self._connect() as conn:
                sql = "SELECT json FROM comparisons"
                params: tuple[Any, ...] = ()
                if task is not None:
                    sql += " WHERE task = ?"
                    params = (task,)
                docs = [json.loads(r[0]) for r in conn.execute(sql + " ORDER BY created_at, rowid", params)]
            payload = {"schema_version": SCHEMA_VERSION, "comparisons": docs}
            return atomic_write_text(path, json.dumps(payload, indent=2) + "\n")
        raise ValueError(f"unknown export format {fmt!r}; use 'csv' or 'json'")

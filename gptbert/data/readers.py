"""Readers for corpora and task files, with bad input reported by file and line.

Every reader checks each row. A bad row (no separator, wrong column count, empty text or
label, bytes that are not UTF-8, invalid JSON, ...) becomes a :class:`RowProblem`
(``file:line: what is wrong``). By default a reader raises one :class:`DataError` listing the
first few problems and their total; with ``skip_bad_rows=True`` it skips them and returns
them in ``bad_rows`` (and logs a one-line warning).

TSV files are read line by line, never with CSV quoting rules: a text may contain quotes,
and a line break inside a text shows up as bad rows instead of silently merging lines.
CSV files use the csv module (quoted fields may legitimately hold commas and newlines).

Formats are chosen by extension (``.tsv/.tab``, ``.csv``, ``.jsonl/.ndjson``, ``.json``,
optionally followed by ``.gz``) unless ``format=`` is given.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import math
import os
import random
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

__all__ = [
    "DataError",
    "DataWarning",
    "LabelMap",
    "PairData",
    "QAExample",
    "QAProblem",
    "RowProblem",
    "SquadData",
    "TaskData",
    "TokenData",
    "detect_format",
    "iter_corpus",
    "read_corpus",
    "read_pairs_file",
    "read_squad",
    "read_task_file",
    "read_token_file",
    "train_dev_split",
]

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
Format = Literal["tsv", "csv", "jsonl", "json"]
MAX_LISTED = 5
"""How many problems an error message lists before '(+N more)'."""


# --------------------------------------------------------------------------------------
# Problems and errors
# --------------------------------------------------------------------------------------


class DataError(ValueError):
    """Bad input data. The message is one line naming file, line and what was expected."""

    def __init__(self, message: str, problems: Sequence[RowProblem] = ()) -> None:
        super().__init__(message)
        self.problems: list[RowProblem] = list(problems)


class DataWarning(UserWarning):
    """Input that was read but is doubtful (for example SQuAD answers that are not in the context)."""


@dataclass(frozen=True)
class RowProblem:
    """One bad row: where it is and what is wrong with it."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{Path(self.path).name}:{self.line}: {self.message}"


def _summarize(path: PathLike, problems: Sequence[RowProblem], what: str = "bad row") -> str:
    n = len(problems)
    listed = "; ".join(str(p) for p in problems[:MAX_LISTED])
    more = f" (+{n - MAX_LISTED} more)" if n > MAX_LISTED else ""
    plural = "s" if n != 1 else ""
    return f"{path}: {n} {what}{plural}: {listed}{more}"


def _raise_or_log(path: PathLike, problems: list[RowProblem], skip_bad_rows: bool) -> None:
    if not problems:
        return
    if not skip_bad_rows:
        raise DataError(_summarize(path, problems) + "; fix the file or pass skip_bad_rows=True (--skip-bad-rows)",
                        problems)
    log.warning("%s; skipped", _summarize(path, problems))


# --------------------------------------------------------------------------------------
# Low-level text access
# --------------------------------------------------------------------------------------

_SURROGATE = re.compile("[\udc80-\udcff]")


def _open_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a file") from None
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read ({getattr(e, 'strerror', None) or e})") from None


def _decode(raw: bytes, encoding: str) -> str:
    """Decode keeping undecodable bytes as lone surrogates, so rows can report them."""
    if raw.startswith(b"\xef\xbb\xbf") and encoding.lower().replace("-", "") in ("utf8", "utf8sig"):
        raw = raw[3:]
    return raw.decode(encoding, errors="surrogateescape")


def _lines(text: str) -> list[str]:
    """Physical lines without their end-of-line characters (\\n, \\r\\n)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def _bad_bytes(value: str) -> bool:
    return _SURROGATE.search(value) is not None


def detect_format(path: PathLike) -> Format:
    """``tsv``, ``csv``, ``jsonl`` or ``json`` from the file's extension (``.gz`` ignored)."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    table: dict[str, Format] = {".tsv": "tsv", ".tab": "tsv", ".csv": "csv", ".jsonl": "jsonl",
                                ".ndjson": "jsonl", ".json": "json"}
    if ext not in table:
        raise DataError(
            f"{path}: cannot tell the format from the extension {ext or '(none)'!r}; "
            "expected .tsv, .csv, .jsonl or .json, or pass format='tsv'|'csv'|'jsonl'|'json'"
        )
    return table[ext]


# --------------------------------------------------------------------------------------
# Generic table reader
# --------------------------------------------------------------------------------------

Column = str | int


@dataclass
class _Rows:
    values: list[dict[str, Any]]
    lines: list[int]
    problems: list[RowProblem]


def _resolve_columns(
    path: Path, header: list[str] | None, n_cols: int | None, wanted: dict[str, Column | None]
) -> dict[str, int]:
    """Map role → column index for a delimited file (header names or positions)."""
    out: dict[str, int] = {}
    for role, col in wanted.items():
        if col is None:
            continue
        if isinstance(col, int) and not isinstance(col, bool):
            width = len(header) if header is not None else n_cols
            idx = col if col >= 0 or width is None else width + col
            if idx < 0 or (width is not None and idx >= width):
                raise DataError(f"{path}:1: column index {col} for {role} is out of range ({width} columns)")
            out[role] = idx
            continue
        if header is None:
            # No header: conventional positions for the default names.
            positional = {"text": 0, "source": 0, "label": -1, "target": -1, "text_pair": 1}
            if col.isdigit():
                out[role] = int(col)
            elif col in positional and n_cols is not None:
                idx = positional[col]
                out[role] = idx if idx >= 0 else n_cols + idx
            else:
                raise DataError(f"{path}: has_header=False, so columns must be given by position, not {col!r}")
            continue
        if col not in header:
            raise DataError(
                f"{path}:1: no {role} column {col!r} in the header (columns: {', '.join(map(repr, header))})"
            )
        if header.count(col) > 1:
            raise DataError(f"{path}:1: column {col!r} appears {header.count(col)} times in the header")
        out[role] = header.index(col)
    if len(set(out.values())) != len(out):
        raise DataError(f"{path}: two roles read the same column ({out})")
    return out


def _check_values(
    values: dict[str, Any], required: Sequence[str], names: dict[str, str]
) -> str | None:
    """Message for the first problem of one row's values, or None."""
    for role in required:
        v = values.get(role)
        if v is None or (isinstance(v, str) and not v.strip()):
            return f"empty {names.get(role, role)}"
    for role, v in values.items():
        if isinstance(v, str) and _bad_bytes(v):
            return f"undecodable bytes in {names.get(role, role)} (not valid UTF-8)"
    return None


def _read_delimited(
    path: Path, fmt: Format, wanted: dict[str, Column | None], required: Sequence[str],
    names: dict[str, str], has_header: bool, encoding: str,
) -> _Rows:
    text = _decode(_open_bytes(path), encoding)
    rows = _Rows([], [], [])
    if fmt == "tsv":
        lines = _lines(text)
        while lines and not lines[-1].strip():
            lines.pop()  # blank lines at the very end hold no record
        records: Iterator[tuple[int, list[str] | None, str]] = (
            (i, ln.split("\t") if ln.strip() else None, ln) for i, ln in enumerate(lines, 1)
        )
    else:
        records = _csv_records(path, text)
    sep = "tab" if fmt == "tsv" else "comma"
    cols: dict[str, int] | None = None
    width = 0
    for lineno, fields, raw in records:
        if cols is None:
            if fields is None:
                raise DataError(f"{path}:{lineno}: empty first line; expected "
                                + ("a header line" if has_header else "a row"))
            width = len(fields)
            if has_header:
                header = [h.strip() for h in fields]
                if any(_bad_bytes(h) for h in header):
                    raise DataError(f"{path}:{lineno}: undecodable bytes in the header (not valid UTF-8)")
                cols = _resolve_columns(path, header, width, wanted)
                continue
            cols = _resolve_columns(path, None, width, wanted)
        if fields is None:
            rows.problems.append(RowProblem(str(path), lineno, "empty line"))
            continue
        if len(fields) != width:
            if len(fields) == 1 and fmt == "tsv":
                msg = f"no tab separator (expected {width} columns; a line break inside a text?)"
            else:
                msg = f"expected {width} {sep}-separated columns, found {len(fields)}"
            rows.problems.append(RowProblem(str(path), lineno, msg))
            continue
        values = {role: fields[i] for role, i in cols.items()}
        if isinstance(values.get("label"), str):
            values["label"] = values["label"].strip()
        msg = _check_values(values, required, names)
        if msg:
            rows.problems.append(RowProblem(str(path), lineno, msg))
            continue
        rows.values.append(values)
        rows.lines.append(lineno)
    if cols is None:
        raise DataError(f"{path}: empty file (expected a header line and rows)" if has_header
                        else f"{path}: empty file")
    return rows


def _csv_records(path: Path, text: str) -> Iterator[tuple[int, list[str] | None, str]]:
    physical = text.splitlines(keepends=True)
    reader = csv.reader(physical, strict=True)
    start = 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise DataError(f"{path}:{reader.line_num}: CSV syntax error ({e}); the rest of the file "
                            "cannot be split into rows reliably") from None
        raw = "".join(physical[start - 1:reader.line_num])
        if not fields or all(not f.strip() for f in fields) and len(fields) <= 1:
            yield start, None, raw
        else:
            yield start, fields, raw
        start = reader.line_num + 1


def _read_json_records(
    path: Path, fmt: Format, wanted: dict[str, Column | None], required: Sequence[str],
    names: dict[str, str], encoding: str,
) -> _Rows:
    text = _decode(_open_bytes(path), encoding)
    rows = _Rows([], [], [])
    keys = {role: col for role, col in wanted.items() if col is not None}
    for role, col in keys.items():
        if not isinstance(col, str):
            raise DataError(f"{path}: JSON fields are named, not numbered ({role}={col!r})")
    items: Iterable[tuple[int, Any, str | None]]
    if fmt == "json":
        stripped = text.lstrip()
        if not stripped.startswith("["):
            items = _jsonl_items(path, text)
        else:
            try:
                data = json.loads(text)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None
            items = ((i, obj, None) for i, obj in enumerate(data, 1))
    else:
        items = _jsonl_items(path, text)
    where = "record" if fmt == "json" and text.lstrip().startswith("[") else "line"
    for lineno, obj, err in items:
        if err is not None:
            rows.problems.append(RowProblem(str(path), lineno, err))
            continue
        if not isinstance(obj, dict):
            rows.problems.append(RowProblem(str(path), lineno, f"expected a JSON object, found {type(obj).__name__}"))
            continue
        values: dict[str, Any] = {}
        problem = None
        for role, key in keys.items():
            if key not in obj:
                if role in required:
                    problem = f"missing key {key!r}"
                    break
                values[role] = None
                continue
            v, problem = _json_value(key, role, obj[key])
            if problem:
                break
            values[role] = v
        if problem is None:
            problem = _check_values(values, required, names)
        if problem:
            rows.problems.append(RowProblem(str(path), lineno, problem if where == "line" else f"(record) {problem}"))
            continue
        rows.values.append(values)
        rows.lines.append(lineno)
    return rows


def _json_value(key: str, role: str, v: Any) -> tuple[Any, str | None]:
    """A JSON field as a string; labels may be numbers or booleans (written as strings)."""
    if v is None:
        return None, None
    if isinstance(v, str):
        return (v.strip() if role == "label" else v), None
    if role == "label" and isinstance(v, bool):
        return str(v).lower(), None
    if role == "label" and isinstance(v, int):
        return str(v), None
    if role == "label" and isinstance(v, float) and v.is_integer():
        return str(int(v)), None
    return None, f"{key!r} is a {type(v).__name__}, expected a string"


def _jsonl_items(path: Path, text: str) -> Iterator[tuple[int, Any, str | None]]:
    for lineno, line in enumerate(_lines(text), 1):
        if not line.strip():
            continue  # blank lines separate nothing in JSONL
        if _bad_bytes(line):
            yield lineno, None, "undecodable bytes (not valid UTF-8)"
            continue
        try:
            yield lineno, json.loads(line), None
        except json.JSONDecodeError as e:
            yield lineno, None, f"invalid JSON ({e.msg} at column {e.colno})"


def _read_rows(
    path: PathLike, wanted: dict[str, Column | None], required: Sequence[str], names: dict[str, str],
    *, format: str | None, has_header: bool, encoding: str, skip_bad_rows: bool,
) -> tuple[Path, _Rows]:
    p = Path(path)
    fmt: Format = format if format else detect_format(p)  # type: ignore[assignment]
    if fmt not in ("tsv", "csv", "jsonl", "json"):
        raise DataError(f"{p}: unknown format {fmt!r}; expected tsv, csv, jsonl or json")
    if fmt in ("tsv", "csv"):
        rows = _read_delimited(p, fmt, wanted, required, names, has_header, encoding)
    else:
        rows = _read_json_records(p, fmt, wanted, required, names, encoding)
    _raise_or_log(p, rows.problems, skip_bad_rows)
    if not rows.values:
        raise DataError(f"{p}: no valid rows" + (f" ({len(rows.problems)} bad)" if rows.problems else ""),
                        rows.problems)
    return p, rows


# --------------------------------------------------------------------------------------
# Labelled task files
# --------------------------------------------------------------------------------------

T = TypeVar("T")


def _take(seq: Sequence[T] | None, idx: Sequence[int]) -> list[T] | None:
    return None if seq is None else [seq[i] for i in idx]


@dataclass
class TaskData:
    """Texts (and optional pairs) with raw string labels, read from one file."""

    texts: list[str]
    pairs: list[str] | None = None
    labels: list[str] | None = None
    source: str | None = None
    bad_rows: list[RowProblem] = field(default_factory=list)
    """Rows that were skipped (only non-empty with ``skip_bad_rows=True``)."""
    lines: list[int] | None = None
    """Line (or record) number of each example in ``source``."""

    def __post_init__(self) -> None:
        n = len(self.texts)
        for name in ("pairs", "labels", "lines"):
            v = getattr(self, name)
            if v is not None and len(v) != n:
                raise ValueError(f"TaskData: {len(self.texts)} texts but {len(v)} {name}")

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def n_bad_rows(self) -> int:
        return len(self.bad_rows)

    def where(self, i: int) -> str:
        """``file:line`` of example ``i`` (for error messages)."""
        name = Path(self.source).name if self.source else "<data>"
        return f"{name}:{self.lines[i]}" if self.lines is not None else f"{name}:example {i}"

    def subset(self, idx: Sequence[int]) -> TaskData:
        return TaskData(
            texts=[self.texts[i] for i in idx], pairs=_take(self.pairs, idx), labels=_take(self.labels, idx),
            source=self.source, bad_rows=list(self.bad_rows), lines=_take(self.lines, idx),
        )


def read_task_file(
    path: PathLike,
    text_column: Column = "text",
    text_pair_column: Column | None = None,
    label_column: Column | None = "label",
    skip_bad_rows: bool = False,
    has_header: bool = True,
    *,
    format: str | None = None,
    encoding: str = "utf-8",
) -> TaskData:
    """Read a labelled classification (or pair classification) file.

    ``label_column=None`` reads an unlabelled file (``labels`` is None). Columns are header
    names, or positions (ints) when ``has_header=False``. Without a header the default names
    mean: text = first column, label = last column, text_pair = second column.
    """
    wanted = {"text": text_column, "text_pair": text_pair_column, "label": label_column}
    required = [r for r in ("text", "text_pair", "label") if wanted[r] is not None]
    names = {"text": "text", "text_pair": "text pair", "label": "label"}
    p, rows = _read_rows(path, wanted, required, names, format=format, has_header=has_header,
                         encoding=encoding, skip_bad_rows=skip_bad_rows)
    return TaskData(
        texts=[v["text"] for v in rows.values],
        pairs=[v["text_pair"] for v in rows.values] if text_pair_column is not None else None,
        labels=[v["label"] for v in rows.values] if label_column is not None else None,
        source=str(p),
        bad_rows=rows.problems,
        lines=rows.lines,
    )


# --------------------------------------------------------------------------------------
# Source/target pairs (generation tasks)
# --------------------------------------------------------------------------------------


@dataclass
class PairData:
    """Source/target text pairs for generation (summarisation, translation, ...)."""

    sources: list[str]
    targets: list[str]
    source: str | None = None
    bad_rows: list[RowProblem] = field(default_factory=list)
    lines: list[int] | None = None

    def __post_init__(self) -> None:
        if len(self.sources) != len(self.targets):
            raise ValueError(f"PairData: {len(self.sources)} sources but {len(self.targets)} targets")

    def __len__(self) -> int:
        return len(self.sources)

    @property
    def n_bad_rows(self) -> int:
        return len(self.bad_rows)

    def subset(self, idx: Sequence[int]) -> PairData:
        return PairData([self.sources[i] for i in idx], [self.targets[i] for i in idx], self.source,
                        list(self.bad_rows), _take(self.lines, idx))


def read_pairs_file(
    path: PathLike,
    source_column: Column = "source",
    target_column: Column = "target",
    skip_bad_rows: bool = False,
    has_header: bool = True,
    *,
    format: str | None = None,
    encoding: str = "utf-8",
) -> PairData:
    """Read source/target pairs from TSV, CSV, JSONL or a JSON array."""
    wanted = {"source": source_column, "target": target_column}
    p, rows = _read_rows(path, wanted, ["source", "target"], {"source": "source", "target": "target"},
                         format=format, has_header=has_header, encoding=encoding, skip_bad_rows=skip_bad_rows)
    return PairData([v["source"] for v in rows.values], [v["target"] for v in rows.values], str(p),
                    rows.problems, rows.lines)


# --------------------------------------------------------------------------------------
# Label map
# --------------------------------------------------------------------------------------

_INT = re.compile(r"^[+-]?\d+$")


class LabelMap:
    """Bidirectional map between string labels and ids 0..n-1.

    Built from training labels: integer-looking labels are ordered numerically (so "0", "1"
    map to 0, 1), others alphabetically. Saved as JSON ``{"labels": [...]}`` (``labels.json``).
    """

    FILE_NAME = "labels.json"

    def __init__(self, labels: Sequence[str]) -> None:
        labels = [str(x) for x in labels]
        if not labels:
            raise DataError("LabelMap: no labels")
        seen: set[str] = set()
        for lab in labels:
            if lab in seen:
                raise DataError(f"LabelMap: label {lab!r} appears twice")
            seen.add(lab)
        self.labels: list[str] = labels
        self._index = {lab: i for i, lab in enumerate(labels)}

    @classmethod
    def from_labels(cls, labels: Iterable[str]) -> LabelMap:
        unique = {str(x) for x in labels}
        if not unique:
            raise DataError("LabelMap.from_labels: no labels")
        if all(_INT.match(x) for x in unique):
            ordered = sorted(unique, key=lambda x: (int(x), x))
        else:
            ordered = sorted(unique)
        return cls(ordered)

    @classmethod
    def from_data(cls, data: TaskData) -> LabelMap:
        if data.labels is None:
            raise DataError(f"{data.source}: has no labels to build a label map from")
        return cls.from_labels(data.labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __contains__(self, label: object) -> bool:
        return label in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self.labels)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelMap) and other.labels == self.labels

    def __repr__(self) -> str:
        shown = ", ".join(map(repr, self.labels[:8])) + (", ..." if len(self.labels) > 8 else "")
        return f"LabelMap({len(self.labels)} labels: {shown})"

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.labels))

    @property
    def label2id(self) -> dict[str, int]:
        return dict(self._index)

    def encode(self, label: str, *, where: str | None = None) -> int:
        try:
            return self._index[str(label)]
        except KeyError:
            loc = f"{where}: " if where else ""
            raise DataError(f"{loc}label {label!r} was not seen in the training data "
                            f"(known: {self._known()})") from None

    def _known(self) -> str:
        shown = ", ".join(map(repr, self.labels[:10]))
        return shown + (f", ... ({len(self.labels)} in all)" if len(self.labels) > 10 else "")

    def encode_all(self, data: TaskData | Sequence[str]) -> list[int]:
        """Ids of all labels; unknown ones raise one DataError naming file:line of each."""
        if isinstance(data, TaskData):
            if data.labels is None:
                raise DataError(f"{data.source}: has no labels")
            labels, wheres = data.labels, [data.where(i) for i in range(len(data))]
        else:
            labels, wheres = list(data), [f"<labels>:item {i}" for i in range(len(data))]
        out: list[int] = []
        bad: list[str] = []
        for lab, where in zip(labels, wheres):
            i = self._index.get(lab)
            if i is None:
                bad.append(f"{where}: label {lab!r}")
                out.append(-1)
            else:
                out.append(i)
        if bad:
            more = f" (+{len(bad) - MAX_LISTED} more)" if len(bad) > MAX_LISTED else ""
            raise DataError(f"{len(bad)} label(s) not seen in the training data: "
                            f"{'; '.join(bad[:MAX_LISTED])}{more}; known labels: {self._known()}")
        return out

    def decode(self, i: int) -> str:
        try:
            return self.labels[int(i)]
        except IndexError:
            raise DataError(f"label id {i} out of range (0..{len(self.labels) - 1})") from None

    def to_dict(self) -> dict[str, Any]:
        return {"labels": list(self.labels)}

    def save(self, path: PathLike) -> Path:
        """Write ``labels.json`` (``path`` may be a folder or a file name); returns the file."""
        p = Path(path)
        if p.is_dir() or not p.suffix:
            p = p / self.FILE_NAME
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, p)
        return p

    @classmethod
    def load(cls, path: PathLike) -> LabelMap:
        p = Path(path)
        if p.is_dir():
            p = p / cls.FILE_NAME
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"{p}: no such file") from None
        except json.JSONDecodeError as e:
            raise DataError(f"{p}:{e.lineno}: invalid JSON ({e.msg})") from None
        if isinstance(data, dict) and isinstance(data.get("labels"), list):
            labels = data["labels"]
        elif isinstance(data, dict) and isinstance(data.get("id2label"), dict):
            id2 = data["id2label"]
            labels = [id2[k] for k in sorted(id2, key=int)]
        elif isinstance(data, list):
            labels = data
        else:
            raise DataError(f"{p}: expected {{\"labels\": [...]}}")
        if not all(isinstance(x, (str, int)) for x in labels):
            raise DataError(f"{p}: labels must be strings")
        return cls([str(x) for x in labels])


# --------------------------------------------------------------------------------------
# Plain-text corpora
# --------------------------------------------------------------------------------------


def _expand(paths: PathLike | Iterable[PathLike]) -> list[Path]:
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            files = sorted(q for q in p.iterdir() if q.is_file() and not q.name.startswith("."))
            if not files:
                raise DataError(f"{p}: directory has no files")
            out.extend(files)
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or directory")
    if not out:
        raise DataError("no corpus files given")
    return out


def iter_corpus(
    paths: PathLike | Iterable[PathLike],
    mode: Literal["line", "blank"] = "line",
    *,
    encoding: str = "utf-8",
    errors: Literal["strict", "replace"] = "strict",
) -> Iterator[str]:
    """Lazily yield documents: one per non-blank line (``mode="line"``) or blocks of lines
    separated by blank lines, joined with ``\\n`` (``mode="blank"``). A folder means its files.

    Bytes that are not valid text raise a DataError naming file and line (``errors="replace"``
    substitutes U+FFFD instead).
    """
    if mode not in ("line", "blank"):
        raise DataError(f"corpus mode {mode!r}; expected 'line' or 'blank'")
    if errors not in ("strict", "replace"):
        raise DataError(f"errors={errors!r}; expected 'strict' or 'replace'")
    for path in _expand(paths):
        opener = gzip.open if path.suffix == ".gz" else open
        block: list[str] = []
        with opener(path, "rb") as f:  # type: ignore[operator]
            for lineno, raw in enumerate(f, 1):
                try:
                    line = raw.decode(encoding)
                except UnicodeDecodeError as e:
                    if errors == "strict":
                        raise DataError(f"{path}:{lineno}: undecodable bytes at column {e.start + 1} "
                                        f"(not {encoding}); pass errors='replace' to substitute them") from None
                    line = raw.decode(encoding, errors="replace")
                if lineno == 1 and line.startswith("\ufeff"):
                    line = line[1:]
                line = line.rstrip("\r\n")
                if mode == "line":
                    if line.strip():
                        yield line
                elif line.strip():
                    block.append(line)
                elif block:
                    yield "\n".join(block)
                    block = []
        if block:
            yield "\n".join(block)


def read_corpus(
    paths: PathLike | Iterable[PathLike],
    mode: Literal["line", "blank"] = "line",
    *,
    encoding: str = "utf-8",
    errors: Literal["strict", "replace"] = "strict",
) -> list[str]:
    """All documents of :func:`iter_corpus` as a list."""
    return list(iter_corpus(paths, mode, encoding=encoding, errors=errors))


# --------------------------------------------------------------------------------------
# Token classification
# --------------------------------------------------------------------------------------


@dataclass
class TokenData:
    """Sentences as token lists with one tag per token (NER, POS, ...)."""

    tokens: list[list[str]]
    tags: list[list[str]]
    source: str | None = None
    bad_rows: list[RowProblem] = field(default_factory=list)
    lines: list[int] | None = None
    """Line where each sentence starts."""

    def __post_init__(self) -> None:
        if len(self.tokens) != len(self.tags):
            raise ValueError(f"TokenData: {len(self.tokens)} sentences but {len(self.tags)} tag lists")

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def n_bad_rows(self) -> int:
        return len(self.bad_rows)

    @property
    def tag_set(self) -> list[str]:
        return sorted({t for sent in self.tags for t in sent})

    def subset(self, idx: Sequence[int]) -> TokenData:
        return TokenData([self.tokens[i] for i in idx], [self.tags[i] for i in idx], self.source,
                         list(self.bad_rows), _take(self.lines, idx))


def read_token_file(
    path: PathLike,
    *,
    format: Literal["conll", "jsonl"] | None = None,
    tokens_key: str = "tokens",
    tags_key: str = "tags",
    token_column: int = 0,
    tag_column: int = -1,
    skip_bad_rows: bool = False,
    encoding: str = "utf-8",
) -> TokenData:
    """Read CoNLL-style files (``token tag`` per line, whitespace-separated, blank line between
    sentences, ``-DOCSTART-`` ignored) or JSONL with ``tokens``/``tags`` lists.

    With ``skip_bad_rows=True`` a sentence with a bad line is skipped whole (its tags would
    no longer line up).
    """
    p = Path(path)
    if format is None:
        suffixes = [s.lower() for s in p.suffixes if s.lower() != ".gz"]
        format = "jsonl" if suffixes and suffixes[-1] in (".jsonl", ".ndjson", ".json") else "conll"
    if format not in ("conll", "jsonl"):
        raise DataError(f"{p}: unknown token-file format {format!r}; expected 'conll' or 'jsonl'")
    text = _decode(_open_bytes(p), encoding)
    out = TokenData([], [], str(p), [], [])
    problems: list[RowProblem] = []
    if format == "jsonl":
        for lineno, obj, err in _jsonl_items(p, text):
            if err is None and not isinstance(obj, dict):
                err = f"expected a JSON object, found {type(obj).__name__}"
            if err is None:
                toks, tags = obj.get(tokens_key), obj.get(tags_key)
                if not isinstance(toks, list) or not isinstance(tags, list):
                    err = f"expected lists under {tokens_key!r} and {tags_key!r}"
                elif len(toks) != len(tags):
                    err = f"{len(toks)} tokens but {len(tags)} tags"
                elif not toks:
                    err = "empty sentence"
                elif not all(isinstance(t, str) and t for t in toks):
                    err = "tokens must be non-empty strings"
                elif not all(isinstance(t, (str, int)) and not isinstance(t, bool) for t in tags):
                    err = "tags must be strings"
            if err is not None:
                problems.append(RowProblem(str(p), lineno, err))
                continue
            out.tokens.append(list(toks))
            out.tags.append([str(t) for t in tags])
            out.lines.append(lineno)  # type: ignore[union-attr]
    else:
        sent_toks: list[str] = []
        sent_tags: list[str] = []
        start = 0
        bad_in_sentence = False

        def flush() -> None:
            nonlocal sent_toks, sent_tags, bad_in_sentence
            if sent_toks and not bad_in_sentence:
                out.tokens.append(sent_toks)
                out.tags.append(sent_tags)
                out.lines.append(start)  # type: ignore[union-attr]
            sent_toks, sent_tags, bad_in_sentence = [], [], False

        for lineno, line in enumerate(_lines(text), 1):
            if not line.strip():
                flush()
                continue
            parts = line.split()
            if parts[0] == "-DOCSTART-":
                flush()
                continue
            if not sent_toks and not bad_in_sentence:
                start = lineno
            if _bad_bytes(line):
                problems.append(RowProblem(str(p), lineno, "undecodable bytes (not valid UTF-8)"))
                bad_in_sentence = True
                continue
            if len(parts) < 2:
                problems.append(RowProblem(str(p), lineno, "expected 'token tag' (whitespace-separated), found one field"))
                bad_in_sentence = True
                continue
            try:
                sent_toks.append(parts[token_column])
                sent_tags.append(parts[tag_column])
            except IndexError:
                problems.append(RowProblem(str(p), lineno, f"no column {token_column} / {tag_column}"))
                bad_in_sentence = True
        flush()
    _raise_or_log(p, problems, skip_bad_rows)
    out.bad_rows = problems
    if not out.tokens:
        raise DataError(f"{p}: no sentences" + (f" ({len(problems)} bad lines)" if problems else ""), problems)
    return out


# --------------------------------------------------------------------------------------
# SQuAD
# --------------------------------------------------------------------------------------


@dataclass
class QAExample:
    """One SQuAD question. ``answer_start`` is None when the answer is not a span of the context."""

    id: str
    question: str
    context: str
    answers: list[dict[str, Any]]
    title: str = ""
    is_impossible: bool = False

    @property
    def answerable(self) -> bool:
        """True when at least one answer is a verified span of the context."""
        return any(a.get("answer_start") is not None for a in self.answers)


@dataclass(frozen=True)
class QAProblem:
    """An answer whose ``answer_start`` did not point at its text."""

    question_id: str
    message: str
    fixed: bool
    """True when the answer was located elsewhere in the context and its start corrected."""

    def __str__(self) -> str:
        return f"question {self.question_id}: {self.message}"


@dataclass
class SquadData:
    """Questions of a SQuAD file; list-like. ``problems`` lists answers that needed fixing or
    could not be found in their context."""

    examples: list[QAExample]
    problems: list[QAProblem]
    source: str | None = None

    def __len__(self) -> int:
        return len(self.examples)

    def __iter__(self) -> Iterator[QAExample]:
        return iter(self.examples)

    def __getitem__(self, i: int) -> QAExample:
        return self.examples[i]

    @property
    def unfixed(self) -> list[QAProblem]:
        return [p for p in self.problems if not p.fixed]

    def subset(self, idx: Sequence[int]) -> SquadData:
        keep = [self.examples[i] for i in idx]
        ids = {e.id for e in keep}
        return SquadData(keep, [p for p in self.problems if p.question_id in ids], self.source)


def _loose_find(context: str, answer: str, near: int | None) -> tuple[int, int] | None:
    """Find ``answer`` in ``context`` ignoring case and runs of whitespace; (start, end) in context."""
    words = answer.split()
    if not words:
        return None
    pattern = re.compile(r"\s+".join(re.escape(w) for w in words), re.IGNORECASE)
    found = [(m.start(), m.end()) for m in pattern.finditer(context)]
    if not found:
        return None
    if near is None:
        return found[0]
    return min(found, key=lambda se: abs(se[0] - near))


def _exact_find(context: str, answer: str, near: int | None) -> int | None:
    starts: list[int] = []
    i = context.find(answer)
    while i != -1:
        starts.append(i)
        i = context.find(answer, i + 1)
    if not starts:
        return None
    return starts[0] if near is None else min(starts, key=lambda s: abs(s - near))


def read_squad(
    path: PathLike,
    *,
    on_bad_answer: Literal["report", "skip", "raise"] = "report",
    fix_offsets: bool = True,
) -> SquadData:
    """Read a SQuAD v1.1 (or v2.0) JSON file.

    Each answer's ``answer_start`` is checked against its text. A wrong or missing start is
    corrected when the text occurs in the context (exactly, else ignoring case and
    whitespace, in which case the answer text becomes the context's span); otherwise the
    start is set to None (the answer is then not a span, e.g. a multiple-choice answer).
    Every such answer is recorded in ``problems`` with its question id.

    ``on_bad_answer``: ``"report"`` keeps all questions and warns once (DataWarning) with a
    summary; ``"skip"`` drops questions without any span answer; ``"raise"`` raises a
    DataError when an answer could not be found in its context.
    """
    if on_bad_answer not in ("report", "skip", "raise"):
        raise DataError(f"on_bad_answer={on_bad_answer!r}; expected 'report', 'skip' or 'raise'")
    p = Path(path)
    raw = _open_bytes(p)
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(f"{p}:{line}: undecodable bytes (not valid UTF-8)") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{p}:{e.lineno}: invalid JSON ({e.msg})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise DataError(f"{p}: expected a SQuAD object {{\"version\": ..., \"data\": [articles]}}")

    def need(obj: Any, key: str, typ: type | tuple[type, ...], where: str) -> Any:
        if not isinstance(obj, dict) or key not in obj:
            raise DataError(f"{p}: {where}: missing {key!r}")
        if not isinstance(obj[key], typ):
            raise DataError(f"{p}: {where}.{key}: expected {getattr(typ, '__name__', typ)}, "
                            f"found {type(obj[key]).__name__}")
        return obj[key]

    examples: list[QAExample] = []
    problems: list[QAProblem] = []
    seen_ids: set[str] = set()
    for ai, article in enumerate(doc["data"]):
        where_a = f"data[{ai}]"
        title = article.get("title", "") if isinstance(article, dict) else ""
        for pi, para in enumerate(need(article, "paragraphs", list, where_a)):
            where_p = f"{where_a}.paragraphs[{pi}]"
            context = need(para, "context", str, where_p)
            for qi, qa in enumerate(need(para, "qas", list, where_p)):
                where_q = f"{where_p}.qas[{qi}]"
                qid = str(need(qa, "id", (str, int), where_q))
                if qid in seen_ids:
                    raise DataError(f"{p}: {where_q}: duplicate question id {qid!r}")
                seen_ids.add(qid)
                question = need(qa, "question", str, where_q)
                if not question.strip():
                    raise DataError(f"{p}: {where_q} (question {qid}): empty question")
                impossible = bool(qa.get("is_impossible", False))
                answers: list[dict[str, Any]] = []
                for ni, ans in enumerate(need(qa, "answers", list, where_q)):
                    where_n = f"{where_q}.answers[{ni}]"
                    text = need(ans, "text", str, where_n)
                    start = ans.get("answer_start") if isinstance(ans, dict) else None
                    if start is not None and (isinstance(start, bool) or not isinstance(start, int)):
                        raise DataError(f"{p}: {where_n} (question {qid}): answer_start must be an integer or null")
                    if start is not None and 0 <= start and context[start:start + len(text)] == text:
                        answers.append({"text": text, "answer_start": start})
                        continue
                    shown = "missing" if start is None else (
                        f"{start} points at {context[start:start + len(text)]!r}" if 0 <= start < len(context)
                        else f"{start} is outside the context ({len(context)} characters)")
                    new_start: int | None = None
                    new_text = text
                    if fix_offsets:
                        new_start = _exact_find(context, text, start)
                        if new_start is None:
                            span = _loose_find(context, text, start)
                            if span is not None:
                                new_start, new_text = span[0], context[span[0]:span[1]]
                    if new_start is not None:
                        msg = f"answer {text!r}: answer_start {shown}; found at {new_start}"
                        if new_text != text:
                            msg += f" as {new_text!r}"
                        problems.append(QAProblem(qid, msg, fixed=True))
                    else:
                        problems.append(QAProblem(qid, f"answer {text!r} is not in the context "
                                                       f"(answer_start {shown})", fixed=False))
                    answers.append({"text": new_text, "answer_start": new_start})
                examples.append(QAExample(qid, question, context, answers, str(title), impossible))

    unfixed = [q for q in problems if not q.fixed]
    if on_bad_answer == "raise" and unfixed:
        listed = "; ".join(str(q) for q in unfixed[:MAX_LISTED])
        more = f" (+{len(unfixed) - MAX_LISTED} more)" if len(unfixed) > MAX_LISTED else ""
        raise DataError(f"{p}: {len(unfixed)} answer(s) not found in their context: {listed}{more}")
    if on_bad_answer == "skip":
        examples = [e for e in examples if e.answerable or e.is_impossible]
    if problems:
        import warnings

        n_fixed = len(problems) - len(unfixed)
        warnings.warn(
            f"{p}: {len(unfixed)} answer(s) not in their context (kept with answer_start=None"
            f"{', questions without a span dropped' if on_bad_answer == 'skip' else ''}), "
            f"{n_fixed} answer_start(s) corrected; first: {problems[0]}",
            DataWarning, stacklevel=2,
        )
    if not examples:
        raise DataError(f"{p}: no questions" + (" with a span answer" if on_bad_answer == "skip" else ""))
    return SquadData(examples, problems, str(p))


# --------------------------------------------------------------------------------------
# Splitting
# --------------------------------------------------------------------------------------

D = TypeVar("D")


def train_dev_split(
    data: D, dev_fraction: float = 0.1, seed: int = 0, *, stratify: bool = True
) -> tuple[D, D]:
    """Deterministic train/dev split of TaskData, PairData, TokenData, SquadData or a list.

    For labelled TaskData the split is stratified by label (``stratify=True``) and every label
    keeps at least one training example, so a LabelMap built from train covers dev. Examples
    keep their file order inside each part.
    """
    if not 0.0 < dev_fraction < 1.0:
        raise ValueError(f"dev_fraction={dev_fraction}; expected a number strictly between 0 and 1")
    n = len(data)  # type: ignore[arg-type]
    if n < 2:
        raise DataError(f"cannot split {n} example(s) into train and dev")
    rng = random.Random(seed)
    labels = getattr(data, "labels", None) if isinstance(data, TaskData) else None
    dev: list[int] = []
    if stratify and labels is not None:
        groups: dict[str, list[int]] = {}
        for i, lab in enumerate(labels):
            groups.setdefault(lab, []).append(i)
        for lab in sorted(groups):
            idx = groups[lab]
            rng.shuffle(idx)
            k = min(len(idx) - 1, int(math.floor(len(idx) * dev_fraction + 0.5)))
            dev.extend(idx[:k])
        if not dev:
            # Groups too small for the fraction: take one example of the largest label that has
            # two or more; if every label is a singleton, fall back to a plain split below.
            multi = [lab for lab in sorted(groups) if len(groups[lab]) > 1]
            if multi:
                biggest = max(multi, key=lambda lab: len(groups[lab]))
                dev.append(groups[biggest][0])
    if not dev:
        order = list(range(n))
        rng.shuffle(order)
        k = max(1, min(n - 1, int(math.floor(n * dev_fraction + 0.5))))
        dev = order[:k]
    dev_set = set(dev)
    train_idx = [i for i in range(n) if i not in dev_set]
    dev_idx = sorted(dev_set)
    if hasattr(data, "subset"):
        return data.subset(train_idx), data.subset(dev_idx)  # type: ignore[attr-defined]
    if isinstance(data, (list, tuple)):
        return type(data)(data[i] for i in train_idx), type(data)(data[i] for i in dev_idx)  # type: ignore[return-value]
    raise TypeError(f"train_dev_split: cannot split a {type(data).__name__}")

"""Text table formats: delimited (TSV / CSV) and JSON / JSONL rows; bad-row reports for every format.

Every reader checks each row. A bad row (no separator, wrong column count, empty text or
label, bytes that are not UTF-8, invalid JSON, ...) becomes a :class:`RowProblem`
(``file:line: what is wrong``; ``file: row N: what is wrong`` for the columnar formats of
:mod:`gptbert.data.readers.columnar`). By default a reader raises one :class:`DataError`
listing the first few problems and their total; with ``skip_bad_rows=True`` it skips them and
returns them in ``bad_rows`` (and logs a one-line warning).

TSV files are read line by line, never with CSV quoting rules: a text may contain quotes,
and a line break inside a text shows up as bad rows instead of silently merging lines
(:mod:`gptbert.data.writers` writes TSV the same way). CSV files use the csv module (quoted
fields may legitimately hold commas and newlines).

Which reader reads a file (by extension or folder contents, or ``format=``) is decided in
:mod:`gptbert.data.readers.registry`.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger("gptbert.data.readers")

PathLike = str | os.PathLike[str]
Column = str | int
"""A column by header name (or JSON key), or by position."""
Unit = Literal["line", "row"]
"""How a position in a file is counted: text lines from 1 (``file:12``), or table rows from 0
(``file: row 12``, as pandas, pyarrow and ``datasets`` number them)."""
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
    """Line number (from 1), or row index (from 0) when ``unit`` is ``"row"``."""
    message: str
    unit: Unit = "line"

    def __str__(self) -> str:
        return f"{position(self.path, self.line, self.unit)}: {self.message}"


def position(source: str | None, n: int, unit: Unit = "line") -> str:
    """``train.tsv:12`` (a line) or ``train.parquet: row 12`` (a table row) of a data source."""
    name = Path(source).name if source else "<data>"
    return f"{name}: row {n}" if unit == "row" else f"{name}:{n}"


def column_error(where: str, role: str, column: Column, columns: Sequence[str], in_what: str = "") -> DataError:
    """The one message for a column (or key) that is not there, listing those that are."""
    shown = ", ".join(map(repr, columns)) if columns else "none"
    return DataError(f"{where}: no {role} column {column!r}{in_what} (columns: {shown})")


def summarize(path: PathLike, problems: Sequence[RowProblem], what: str = "bad row") -> str:
    n = len(problems)
    listed = "; ".join(str(p) for p in problems[:MAX_LISTED])
    more = f" (+{n - MAX_LISTED} more)" if n > MAX_LISTED else ""
    plural = "s" if n != 1 else ""
    return f"{path}: {n} {what}{plural}: {listed}{more}"


def raise_or_log(path: PathLike, problems: list[RowProblem], skip_bad_rows: bool) -> None:
    if not problems:
        return
    if not skip_bad_rows:
        raise DataError(summarize(path, problems) + "; fix the file or pass skip_bad_rows=True (--skip-bad-rows)",
                        problems)
    log.warning("%s; skipped", summarize(path, problems))


# --------------------------------------------------------------------------------------
# Low-level text access
# --------------------------------------------------------------------------------------

_SURROGATE = re.compile("[\udc80-\udcff]")


def open_bytes(path: Path) -> bytes:
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


def decode_text(raw: bytes, encoding: str) -> str:
    """Decode keeping undecodable bytes as lone surrogates, so rows can report them."""
    if raw.startswith(b"\xef\xbb\xbf") and encoding.lower().replace("-", "") in ("utf8", "utf8sig"):
        raw = raw[3:]
    return raw.decode(encoding, errors="surrogateescape")


def text_lines(text: str) -> list[str]:
    """Physical lines without their end-of-line characters (\\n, \\r\\n)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def has_bad_bytes(value: str) -> bool:
    return _SURROGATE.search(value) is not None


# --------------------------------------------------------------------------------------
# Delimited files
# --------------------------------------------------------------------------------------

@dataclass
class Rows:
    """What a format's reader gives back: the good rows' values by role, where each was, the bad rows."""

    values: list[dict[str, Any]]
    lines: list[int]
    problems: list[RowProblem]
    unit: Unit = "line"


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
            raise column_error(f"{path}:1", role, col, header, " in the header")
        if header.count(col) > 1:
            raise DataError(f"{path}:1: column {col!r} appears {header.count(col)} times in the header")
        out[role] = header.index(col)
    if len(set(out.values())) != len(out):
        raise DataError(f"{path}: two roles read the same column ({out})")
    return out


def check_values(
    values: dict[str, Any], required: Sequence[str], names: dict[str, str]
) -> str | None:
    """Message for the first problem of one row's values, or None."""
    for role in required:
        v = values.get(role)
        if v is None or (isinstance(v, str) and not v.strip()):
            return f"empty {names.get(role, role)}"
    for role, v in values.items():
        if isinstance(v, str) and has_bad_bytes(v):
            return f"undecodable bytes in {names.get(role, role)} (not valid UTF-8)"
    return None


def read_delimited(
    path: Path, fmt: str, wanted: dict[str, Column | None], required: Sequence[str],
    names: dict[str, str], has_header: bool, encoding: str,
) -> Rows:
    text = decode_text(open_bytes(path), encoding)
    rows = Rows([], [], [])
    if fmt == "tsv":
        lines = text_lines(text)
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
                if any(has_bad_bytes(h) for h in header):
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
        msg = check_values(values, required, names)
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


def read_json_records(
    path: Path, fmt: str, wanted: dict[str, Column | None], required: Sequence[str],
    names: dict[str, str], encoding: str,
) -> Rows:
    text = decode_text(open_bytes(path), encoding)
    rows = Rows([], [], [])
    keys = {role: col for role, col in wanted.items() if col is not None}
    for role, col in keys.items():
        if not isinstance(col, str):
            raise DataError(f"{path}: JSON fields are named, not numbered ({role}={col!r})")
    items: Iterable[tuple[int, Any, str | None]]
    if fmt == "json":
        stripped = text.lstrip()
        if not stripped.startswith("["):
            items = jsonl_items(path, text)
        else:
            try:
                data = json.loads(text)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None
            items = ((i, obj, None) for i, obj in enumerate(data, 1))
    else:
        items = jsonl_items(path, text)
    where = "record" if fmt == "json" and text.lstrip().startswith("[") else "line"
    seen: dict[str, None] = {}  # every key of every record, in first-seen order
    for lineno, obj, err in items:
        if err is not None:
            rows.problems.append(RowProblem(str(path), lineno, err))
            continue
        if not isinstance(obj, dict):
            rows.problems.append(RowProblem(str(path), lineno, f"expected a JSON object, found {type(obj).__name__}"))
            continue
        seen.update(dict.fromkeys(obj))
        values: dict[str, Any] = {}
        problem = None
        for role, key in keys.items():
            if key not in obj:
                if role in required:
                    problem = f"missing key {key!r}"
                    break
                values[role] = None
                continue
            v, problem = cell_value(key, role, obj[key])
            if problem:
                break
            values[role] = v
        if problem is None:
            problem = check_values(values, required, names)
        if problem:
            rows.problems.append(RowProblem(str(path), lineno, problem if where == "line" else f"(record) {problem}"))
            continue
        rows.values.append(values)
        rows.lines.append(lineno)
    for role, key in keys.items():
        if seen and role in required and key not in seen:  # a wrong name, not bad rows
            raise column_error(str(path), role, key, list(seen))
    return rows


def cell_value(key: str, role: str, v: Any) -> tuple[Any, str | None]:
    """A field's value (JSON, Parquet, ``datasets``) as a string; labels may be numbers or booleans
    (written as strings)."""
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


def jsonl_items(path: Path, text: str) -> Iterator[tuple[int, Any, str | None]]:
    for lineno, line in enumerate(text_lines(text), 1):
        if not line.strip():
            continue  # blank lines separate nothing in JSONL
        if has_bad_bytes(line):
            yield lineno, None, "undecodable bytes (not valid UTF-8)"
            continue
        try:
            yield lineno, json.loads(line), None
        except json.JSONDecodeError as e:
            yield lineno, None, f"invalid JSON ({e.msg} at column {e.colno})"

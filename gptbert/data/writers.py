"""Writers of TSV and JSONL files that read back unchanged through :mod:`gptbert.data.readers`.

TSV is written the way the reader reads it: one line per row, fields joined by a tab, no
quoting and no escapes, so a text with quotes (``he said "hi" twice``) reads back as written.
A field that holds a tab, a line feed or a carriage return cannot be written that way (the
reader would split it into other fields or other rows); such a field is a :class:`DataError`
naming the row and the column, and the file is not written. JSONL (one JSON object per line)
holds any text; use it for texts with tabs or line breaks.

Every file is written atomically (:mod:`gptbert.io.files`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gptbert.data.readers import DataError, TaskData
from gptbert.io.files import atomic_write_text

__all__ = ["format_jsonl", "format_tsv", "task_records", "write_jsonl", "write_task_file", "write_tsv"]

_BREAKS = {"\t": "a tab", "\n": "a line feed", "\r": "a carriage return"}


def _check_field(value: str, line: int, column: str) -> None:
    for char, name in _BREAKS.items():
        if char in value:
            raise DataError(f"line {line}, column {column!r}: the text holds {name}, which TSV cannot hold "
                            f"(the reader splits on it); write JSONL instead: {value[:60]!r}")


def format_tsv(rows: Iterable[Sequence[Any]], header: Sequence[str] | None = None) -> str:
    """TSV text of ``rows`` (values written with ``str``), with an optional ``header`` line.

    Raises DataError for a field holding a tab, a line feed or a carriage return.
    """
    lines: list[str] = []
    names = list(header) if header is not None else None
    for i, row in enumerate(([names] if names is not None else []) + [list(r) for r in rows]):
        fields = [str(v) for v in row]
        for k, value in enumerate(fields):
            _check_field(value, i + 1, names[k] if names is not None and k < len(names) else str(k))
        lines.append("\t".join(fields) + "\n")
    return "".join(lines)


def format_jsonl(records: Iterable[Mapping[str, Any]]) -> str:
    """JSONL text: one JSON object per line (UTF-8 as is, no ASCII escapes)."""
    return "".join(json.dumps(dict(r), ensure_ascii=False) + "\n" for r in records)


def write_tsv(path: str | os.PathLike[str], rows: Iterable[Sequence[Any]],
              header: Sequence[str] | None = None) -> Path:
    """Write ``rows`` as a TSV file (see :func:`format_tsv`), atomically; nothing is written on an error."""
    try:
        text = format_tsv(rows, header)
    except DataError as e:
        raise DataError(f"{path}: {e}") from None
    return atomic_write_text(path, text)


def write_jsonl(path: str | os.PathLike[str], records: Iterable[Mapping[str, Any]]) -> Path:
    """Write ``records`` as a JSONL file, atomically."""
    return atomic_write_text(path, format_jsonl(records))


def task_records(*parts: TaskData) -> tuple[list[str], list[list[str]]]:
    """(column names, rows) of task data: ``text`` [, ``text_pair``] [, ``label``], as
    :func:`gptbert.data.readers.read_task_file` reads them by default. All parts need the same columns."""
    if not parts:
        raise ValueError("task_records: no data given")
    first = parts[0]
    columns = ["text"]
    columns += ["text_pair"] if first.pairs is not None else []
    columns += ["label"] if first.labels is not None else []
    rows: list[list[str]] = []
    for part in parts:
        if (part.pairs is None) != (first.pairs is None) or (part.labels is None) != (first.labels is None):
            raise ValueError("task_records: the parts do not have the same columns (pairs / labels)")
        for i, text in enumerate(part.texts):
            row = [text]
            if part.pairs is not None:
                row.append(part.pairs[i])
            if part.labels is not None:
                row.append(part.labels[i])
            rows.append(row)
    return columns, rows


def write_task_file(path: str | os.PathLike[str], *parts: TaskData, format: str | None = None) -> Path:
    """Write task data (one or several parts, one after the other) for ``read_task_file``.

    ``format``: ``"tsv"`` (a header line, then one row per example) or ``"jsonl"`` (one object
    per example); None: JSONL for a ``.jsonl`` / ``.ndjson`` path, TSV otherwise.
    """
    if format is None:
        format = "jsonl" if Path(path).suffix.lower() in (".jsonl", ".ndjson") else "tsv"
    columns, rows = task_records(*parts)
    if format == "tsv":
        return write_tsv(path, rows, header=columns)
    if format == "jsonl":
        return write_jsonl(path, (dict(zip(columns, row)) for row in rows))
    raise ValueError(f"format={format!r}; expected 'tsv' or 'jsonl'")

"""The one reader registry: the formats a table of examples may come in, how each is recognised,
and :func:`read_rows`, the entry that every task-file reader goes through.

=========  ==========================================  =========================  ============
format     recognised by                               reader                     needs
=========  ==========================================  =========================  ============
tsv        ``.tsv`` ``.tab`` (``.gz`` allowed)         line by line, no quoting   -
csv        ``.csv``                                    the csv module             -
jsonl      ``.jsonl`` ``.ndjson``                      one object a line          -
json       ``.json``                                   a list of objects          -
parquet    ``.parquet`` ``.pq``                        pyarrow                    ``[parquet]``
datasets   a folder with ``dataset_dict.json`` or      ``datasets.load_from_disk``  ``[datasets]``
           ``state.json`` (written by ``save_to_disk``)
=========  ==========================================  =========================  ============

``format=`` overrides the detection. A ``DatasetDict`` folder needs a split unless it holds only
one: ``split="train"``, or ``path:train`` in place of the path (so every command that takes a
file takes ``data/sst2_hf:dev`` too).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gptbert.data.readers.columnar import read_table_rows
from gptbert.data.readers.formats import (
    Column,
    DataError,
    PathLike,
    Rows,
    raise_or_log,
    read_delimited,
    read_json_records,
)

Format = Literal["tsv", "csv", "jsonl", "json", "parquet", "datasets"]

DATASETS_MARKERS = ("dataset_dict.json", "state.json")
"""Files ``save_to_disk`` writes at the top of a DatasetDict / a Dataset folder."""


@dataclass(frozen=True)
class Source:
    """Where rows come from: a file or folder, its format, and a split of a DatasetDict folder."""

    path: Path
    format: str
    split: str | None = None

    @property
    def name(self) -> str:
        """The path as messages and ``TaskData.source`` show it (``folder:split`` for a split)."""
        return f"{self.path}:{self.split}" if self.split else str(self.path)


Reader = Callable[[Source, dict[str, Column | None], Sequence[str], dict[str, str], bool, str], Rows]
"""``read(source, wanted, required, names, has_header, encoding) -> Rows``."""


def _delimited(source: Source, wanted: dict[str, Column | None], required: Sequence[str], names: dict[str, str],
               has_header: bool, encoding: str) -> Rows:
    return read_delimited(source.path, source.format, wanted, required, names, has_header, encoding)


def _json(source: Source, wanted: dict[str, Column | None], required: Sequence[str], names: dict[str, str],
          has_header: bool, encoding: str) -> Rows:
    return read_json_records(source.path, source.format, wanted, required, names, encoding)


def _columnar(source: Source, wanted: dict[str, Column | None], required: Sequence[str], names: dict[str, str],
              has_header: bool, encoding: str) -> Rows:
    return read_table_rows(source, wanted, required, names)


@dataclass(frozen=True)
class TableFormat:
    """One entry of the registry."""

    name: str
    suffixes: tuple[str, ...]
    """File extensions that mean this format (empty: recognised by folder contents)."""
    read: Reader
    extra: str | None = None
    """The optional-dependency extra it needs (``pip install 'gptbert[EXTRA]'``)."""


FORMATS: dict[str, TableFormat] = {f.name: f for f in (
    TableFormat("tsv", (".tsv", ".tab"), _delimited),
    TableFormat("csv", (".csv",), _delimited),
    TableFormat("jsonl", (".jsonl", ".ndjson"), _json),
    TableFormat("json", (".json",), _json),
    TableFormat("parquet", (".parquet", ".pq"), _columnar, extra="parquet"),
    TableFormat("datasets", (), _columnar, extra="datasets"),
)}
"""Every format a task file may come in, by name (the values ``format=`` / ``--format`` take)."""


def is_datasets_dir(path: Path) -> bool:
    """A folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``."""
    return path.is_dir() and any((path / m).is_file() for m in DATASETS_MARKERS)


def split_path(path: PathLike, split: str | None = None) -> tuple[Path, str | None]:
    """``folder:split`` -> (folder, split), when ``folder`` is a folder and ``path`` itself is not there."""
    text = os.fspath(path)
    p = Path(text)
    if split is None and ":" in p.name and not p.exists():
        base, _, name = text.rpartition(":")
        if name and Path(base).is_dir():
            return Path(base), name
    return p, split


def detect_format(path: PathLike) -> Format:
    """The format of a data file from its extension (``.gz`` ignored) or, for a folder, its contents."""
    p, _ = split_path(path)
    if p.is_dir():
        if is_datasets_dir(p):
            return "datasets"
        raise DataError(f"{p}: a folder, but not a Hugging Face datasets folder (no "
                        f"{' or '.join(DATASETS_MARKERS)}: write it with save_to_disk); expected a data file")
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    for f in FORMATS.values():
        if ext in f.suffixes:
            return f.name  # type: ignore[return-value]
    known = ", ".join(s for f in FORMATS.values() for s in f.suffixes)
    raise DataError(
        f"{path}: cannot tell the format from the extension {ext or '(none)'!r}; expected {known} or a "
        f"datasets folder, or pass format={'|'.join(map(repr, FORMATS))}"
    )


def open_source(path: PathLike, *, format: str | None = None, split: str | None = None) -> Source:
    """The :class:`Source` that ``path`` (``folder:split`` allowed) names; FileNotFoundError when absent."""
    p, split = split_path(path, split)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or directory")
    fmt = format or detect_format(p)
    if fmt not in FORMATS:
        raise DataError(f"{p}: unknown format {fmt!r}; expected {', '.join(FORMATS)}")
    if split is not None and fmt != "datasets":
        raise DataError(f"{p}: a split ({split!r}) names a part of a Hugging Face datasets folder, "
                        f"and this is a {fmt} file")
    return Source(p, fmt, split)


def read_rows(
    path: PathLike, wanted: dict[str, Column | None], required: Sequence[str], names: dict[str, str],
    *, format: str | None, has_header: bool, encoding: str, skip_bad_rows: bool, split: str | None = None,
) -> tuple[Source, Rows]:
    """Read the ``wanted`` columns (role -> column) of any registered format; bad rows raise one
    DataError, or are skipped and returned with ``skip_bad_rows``."""
    source = open_source(path, format=format, split=split)
    rows = FORMATS[source.format].read(source, wanted, required, names, has_header, encoding)
    raise_or_log(source.name, rows.problems, skip_bad_rows)
    if not rows.values:
        raise DataError(f"{source.name}: no valid rows" + (f" ({len(rows.problems)} bad)" if rows.problems else ""),
                        rows.problems)
    return source, rows

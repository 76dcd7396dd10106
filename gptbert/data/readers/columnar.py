"""Columnar tables: Parquet files (pyarrow) and Hugging Face ``datasets`` folders (``save_to_disk``).

Both packages are optional extras (``pip install 'gptbert[parquet]'``, ``'gptbert[datasets]'``),
imported only when such a table is read; without them the reader says which extra to install.
Columns are named; a wrong name is one DataError listing the table's columns. Rows are numbered
from 0, as pandas, pyarrow and ``datasets`` number them, so a bad row reads
``train.parquet: row 17: empty text``. A ``ClassLabel`` column (in a ``datasets`` folder, or a
Parquet file written by ``Dataset.to_parquet``, which keeps the features in its metadata) gives
label names instead of ids; id -1 (the ``datasets`` convention for "no label") is an empty label.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from gptbert.data.readers.formats import Column, DataError, RowProblem, Rows, cell_value, check_values, column_error

if TYPE_CHECKING:  # pragma: no cover
    from gptbert.data.readers.registry import Source

EXTRAS = {"pyarrow": "parquet", "datasets": "datasets"}
"""Optional package -> the extra that installs it."""


def optional_import(module: str, what: str) -> ModuleType:
    """Import an optional dependency, or raise a DataError naming the extra that installs it."""
    package = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DataError(f"{what} needs the optional package {package!r}: "
                        f"pip install 'gptbert[{EXTRAS.get(package, package)}]'") from None


@dataclass
class Table:
    """A columnar table opened for reading: its columns, their features, and a loader of columns."""

    name: str
    """The source as messages show it (``folder:split`` for a split of a DatasetDict)."""
    columns: list[str]
    features: dict[str, Any]
    """Hugging Face feature descriptions by column (``{"_type": "ClassLabel", "names": [...]}``), where known."""
    load: Callable[[list[str]], dict[str, list[Any]]]
    """Column name -> its values (Python objects, None for nulls), for the columns asked for."""

    def column(self, role: str, col: Column) -> str:
        """The name of the column that ``col`` (a name, or a position) means; a clear error if none."""
        if isinstance(col, int) and not isinstance(col, bool):
            if -len(self.columns) <= col < len(self.columns):
                return self.columns[col]
            raise DataError(f"{self.name}: column index {col} for {role} is out of range "
                            f"({len(self.columns)} columns)")
        if col not in self.columns:
            raise column_error(self.name, role, col, self.columns)
        return col

    def class_names(self, column: str, *, nested: bool = False) -> list[str] | None:
        """Names of a ``ClassLabel`` column (``nested``: of a list-of-ClassLabel column), else None."""
        feature = self.features.get(column)
        if nested and isinstance(feature, dict):
            feature = feature.get("feature")
        if nested and isinstance(feature, list) and feature:  # the old serialisation of a list feature
            feature = feature[0]
        if isinstance(feature, dict) and feature.get("_type") == "ClassLabel":
            return [str(n) for n in feature.get("names") or []] or None
        return None


def _parquet_table(source: Source) -> Table:
    pq = optional_import("pyarrow.parquet", f"{source.path}: reading Parquet")
    try:
        schema = pq.read_schema(source.path)
    except (OSError, ValueError) as e:
        raise DataError(f"{source.path}: not a readable Parquet file ({e})") from None
    features: dict[str, Any] = {}
    meta = (schema.metadata or {}).get(b"huggingface")
    if meta:
        try:
            features = json.loads(meta)["info"]["features"]
        except (ValueError, KeyError, TypeError):
            features = {}
    columns = [n for n in schema.names if not n.startswith("__index_level_")]  # a pandas index is no column

    def load(cols: list[str]) -> dict[str, list[Any]]:
        table = pq.read_table(source.path, columns=cols)
        return {c: table.column(c).to_pylist() for c in cols}

    return Table(source.name, columns, features if isinstance(features, dict) else {}, load)


def _datasets_table(source: Source) -> Table:
    datasets = optional_import("datasets", f"{source.path}: reading a Hugging Face datasets folder")
    try:
        loaded = datasets.load_from_disk(str(source.path))
    except FileNotFoundError:
        raise FileNotFoundError(f"{source.path}: no such datasets folder") from None
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"{source.path}: not a readable datasets folder ({e})") from None
    if isinstance(loaded, datasets.DatasetDict):
        splits = list(loaded)
        split = source.split
        if split is None:
            if len(splits) != 1:
                raise DataError(f"{source.path}: a DatasetDict with splits {', '.join(splits)}; name one "
                                f"({source.path}:{splits[0]}, or split= / --split)")
            split = splits[0]
        if split not in loaded:
            raise DataError(f"{source.path}: no split {split!r} (splits: {', '.join(splits)})")
        ds = loaded[split]
    else:
        if source.split is not None:
            raise DataError(f"{source.path}: a single Dataset (not a DatasetDict), so it has no split "
                            f"{source.split!r}; name the folder alone")
        ds = loaded

    def load(cols: list[str]) -> dict[str, list[Any]]:
        table = ds.select_columns(cols).with_format("arrow")[:]  # row order and selections applied
        return {c: table.column(c).to_pylist() for c in cols}

    return Table(source.name, list(ds.column_names), ds.features.to_dict(), load)


def open_table(source: Source) -> Table:
    """The columnar table of a ``parquet`` or ``datasets`` source."""
    if source.format == "parquet":
        return _parquet_table(source)
    if source.format == "datasets":
        return _datasets_table(source)
    raise DataError(f"{source.name}: {source.format} is not a columnar format")


def class_label(column: str, v: Any, names: Sequence[str]) -> tuple[Any, str | None]:
    """A ``ClassLabel`` id as its name (-1 and null: no label); strings pass as they are."""
    if isinstance(v, int) and not isinstance(v, bool):
        if v == -1:
            return None, None
        if 0 <= v < len(names):
            return names[v], None
        return None, f"{column!r}: {v} is not an id of its ClassLabel (0..{len(names) - 1})"
    return cell_value(column, "label", v)


def read_table_rows(
    source: Source, wanted: dict[str, Column | None], required: Sequence[str], names: dict[str, str]
) -> Rows:
    """The ``wanted`` columns (role -> column) of a Parquet file or datasets folder, row by row."""
    table = open_table(source)
    cols = {role: table.column(role, col) for role, col in wanted.items() if col is not None}
    if len(set(cols.values())) != len(cols):
        raise DataError(f"{table.name}: two roles read the same column ({cols})")
    data = table.load(list(cols.values()))
    label_names = table.class_names(cols["label"]) if "label" in cols else None
    rows = Rows([], [], [], unit="row")
    n_rows = len(next(iter(data.values()))) if data else 0
    for i in range(n_rows):
        values: dict[str, Any] = {}
        problem = None
        for role, col in cols.items():
            if role == "label" and label_names is not None:
                values[role], problem = class_label(col, data[col][i], label_names)
            else:
                values[role], problem = cell_value(col, role, data[col][i])
            if problem:
                break
        problem = problem or check_values(values, required, names)
        if problem:
            rows.problems.append(RowProblem(table.name, i, problem, "row"))
            continue
        rows.values.append(values)
        rows.lines.append(i)
    return rows

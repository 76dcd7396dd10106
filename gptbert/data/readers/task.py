"""Labelled task files (:class:`TaskData`), source/target pairs (:class:`PairData`) and :class:`LabelMap`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from gptbert.data.readers.formats import MAX_LISTED, Column, DataError, PathLike, RowProblem, Unit, position
from gptbert.data.readers.registry import read_rows
from gptbert.io.files import atomic_write_json
from gptbert.io.layout import LABELS_FILE

# --------------------------------------------------------------------------------------
# Labelled task files
# --------------------------------------------------------------------------------------

T = TypeVar("T")


def take(seq: Sequence[T] | None, idx: Sequence[int]) -> list[T] | None:
    return None if seq is None else [seq[i] for i in idx]


@dataclass
class TaskData:
    """Texts (and optional pairs) with raw string labels, read from one file (or table)."""

    texts: list[str]
    pairs: list[str] | None = None
    labels: list[str] | None = None
    source: str | None = None
    bad_rows: list[RowProblem] = field(default_factory=list)
    """Rows that were skipped (only non-empty with ``skip_bad_rows=True``)."""
    lines: list[int] | None = None
    """Line (or record) number of each example in ``source``; its row index for a table."""
    unit: Unit = "line"
    """What ``lines`` count: text lines (from 1) or table rows (from 0, Parquet / datasets)."""

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
        """``file:line`` (``file: row N`` for a table) of example ``i``, for error messages."""
        if self.lines is None:
            return f"{Path(self.source).name if self.source else '<data>'}:example {i}"
        return position(self.source, self.lines[i], self.unit)

    def subset(self, idx: Sequence[int]) -> TaskData:
        return TaskData(
            texts=[self.texts[i] for i in idx], pairs=take(self.pairs, idx), labels=take(self.labels, idx),
            source=self.source, bad_rows=list(self.bad_rows), lines=take(self.lines, idx), unit=self.unit,
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
    split: str | None = None,
) -> TaskData:
    """Read a labelled classification (or pair classification) file: TSV, CSV, JSONL, JSON, Parquet
    or a Hugging Face datasets folder (``split``, or ``folder:split`` as the path, picks a split).

    ``label_column=None`` reads an unlabelled file (``labels`` is None). Columns are header
    names (keys, table columns), or positions (ints) when ``has_header=False``. Without a header
    the default names mean: text = first column, label = last column, text_pair = second column.
    Labels come back as strings (numbers written out; ClassLabel ids as their names).
    """
    wanted = {"text": text_column, "text_pair": text_pair_column, "label": label_column}
    required = [r for r in ("text", "text_pair", "label") if wanted[r] is not None]
    names = {"text": "text", "text_pair": "text pair", "label": "label"}
    src, rows = read_rows(path, wanted, required, names, format=format, has_header=has_header,
                          encoding=encoding, skip_bad_rows=skip_bad_rows, split=split)
    return TaskData(
        texts=[v["text"] for v in rows.values],
        pairs=[v["text_pair"] for v in rows.values] if text_pair_column is not None else None,
        labels=[v["label"] for v in rows.values] if label_column is not None else None,
        source=src.name,
        bad_rows=rows.problems,
        lines=rows.lines,
        unit=rows.unit,
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
    unit: Unit = "line"
    """What ``lines`` count (see :attr:`TaskData.unit`)."""

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
                        list(self.bad_rows), take(self.lines, idx), self.unit)


def read_pairs_file(
    path: PathLike,
    source_column: Column = "source",
    target_column: Column = "target",
    skip_bad_rows: bool = False,
    has_header: bool = True,
    *,
    format: str | None = None,
    encoding: str = "utf-8",
    split: str | None = None,
) -> PairData:
    """Read source/target pairs from TSV, CSV, JSONL, a JSON array, Parquet or a datasets folder."""
    wanted = {"source": source_column, "target": target_column}
    src, rows = read_rows(path, wanted, ["source", "target"], {"source": "source", "target": "target"},
                          format=format, has_header=has_header, encoding=encoding, skip_bad_rows=skip_bad_rows,
                          split=split)
    return PairData([v["source"] for v in rows.values], [v["target"] for v in rows.values], src.name,
                    rows.problems, rows.lines, rows.unit)


# --------------------------------------------------------------------------------------
# Label map
# --------------------------------------------------------------------------------------

_INT = re.compile(r"^[+-]?\d+$")


class LabelMap:
    """Bidirectional map between string labels and ids 0..n-1.

    Built from training labels: integer-looking labels are ordered numerically (so "0", "1"
    map to 0, 1), others alphabetically. Saved as JSON ``{"labels": [...]}`` (``labels.json``).
    """

    FILE_NAME = LABELS_FILE

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
        return atomic_write_json(p, self.to_dict())

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

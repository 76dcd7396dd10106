"""The data profile the priors read, for a training file given on the command line.

:func:`profile_data_file` asks the data layer (:mod:`gptbert.data.readers` to read,
:mod:`gptbert.data.profile` to profile): there is one data profiler.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["CORPUS_SUFFIXES", "profile_data_file"]

CORPUS_SUFFIXES = (".txt", ".text")
"""Plain-text corpora: one example a non-empty line."""


class _Hold(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def _held_messages(kept: list[Callable[[], None]]) -> Iterator[None]:
    """Hold the data layer's log lines and warnings of one reading attempt; ``kept`` gets what
    replays them (called only for the attempt that succeeds, so failed guesses stay silent)."""
    logger = logging.getLogger("gptbert.data")
    hold, propagate = _Hold(), logger.propagate
    logger.addHandler(hold)
    logger.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        logger.removeHandler(hold)
        logger.propagate = propagate

    def replay() -> None:
        for record in hold.records:
            logging.getLogger(record.name).handle(record)
        for w in caught:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    kept.append(replay)


def profile_data_file(
    path: str | Path, *, text_column: str = "text", text_pair_column: str | None = None,
    label_column: str = "label", split: str | None = None,
) -> dict[str, Any]:
    """The data layer's profile of a training file, as a JSON-ready dict (``DatasetProfile.to_dict``).

    A ``.txt`` file is a corpus (one example a line); any other file (TSV, CSV, JSONL, JSON, Parquet,
    a Hugging Face datasets folder; ``folder:split`` or ``split``) is read as the first of: a SQuAD
    file (``.json``: question and context as a pair), a labelled task file (the given text / label
    columns; bad rows skipped and counted), an unlabelled one (only when ``label_column`` is left at
    its default: a named label column that is not there is an error) and a token-tagging file
    (``tokens`` / ``tags`` lists, or CoNLL; not for .tsv / .csv). Lengths are whitespace words.
    Raises FileNotFoundError, or ValueError (the data layer's message for the likeliest reading)
    when nothing reads it.
    """
    from gptbert.data.profile import DatasetProfile, profile_dataset, profile_task_data
    from gptbert.data.readers import (
        DataError,
        detect_format,
        open_source,
        read_corpus,
        read_squad,
        read_task_file,
        read_token_file,
    )

    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in CORPUS_SUFFIXES:
        if not p.is_file():
            raise FileNotFoundError(f"data file not found: {p}")
        return profile_dataset(read_corpus(p), source=str(p)).to_dict()
    try:
        detect_format(path)
    except DataError:
        source = None  # no table format: a CoNLL file of any name, read as tokens below
    else:
        source = open_source(path, split=split)  # a missing file, or a split of a file, stops here
    columns = dict(text_column=text_column, text_pair_column=text_pair_column, split=split)

    def tokens() -> DatasetProfile:
        data = read_token_file(path, skip_bad_rows=True, split=split)
        return profile_dataset([" ".join(t) for t in data.tokens], source=data.source, n_bad_rows=data.n_bad_rows)

    def squad() -> DatasetProfile:
        data = read_squad(p)
        return profile_dataset([e.question for e in data], pairs=[e.context for e in data], source=str(p))

    readers: list[Callable[[], DatasetProfile]] = []
    if source is not None:
        if source.format == "json":
            readers.append(squad)
        readers.append(lambda: profile_task_data(read_task_file(path, label_column=label_column, skip_bad_rows=True,
                                                                **columns)))
        if label_column == "label":
            readers.append(lambda: profile_task_data(read_task_file(path, label_column=None, skip_bad_rows=True,
                                                                    **columns)))
    if source is None or source.format not in ("tsv", "csv"):
        readers.append(tokens)
    errors: list[Exception] = []
    for read in readers:
        kept: list[Callable[[], None]] = []
        try:
            with _held_messages(kept):
                profile = read()
        except (DataError, ValueError, KeyError, TypeError) as e:
            errors.append(e)
            continue
        if profile.n_examples:
            kept[0]()
            return profile.to_dict()
    raise ValueError(str(errors[0]) if errors else f"{p}: no examples") from None

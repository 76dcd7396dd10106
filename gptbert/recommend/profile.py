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


def profile_data_file(path: str | Path) -> dict[str, Any]:
    """The data layer's profile of a training file, as a JSON-ready dict (``DatasetProfile.to_dict``).

    A ``.txt`` file is a corpus (one example a line); any other file is read as the first of: a
    SQuAD file (``.json``: question and context as a pair), a labelled task file (``text`` /
    ``label`` columns or keys; bad rows skipped and counted), an unlabelled one (``text``) and a
    token-tagging file (JSONL ``tokens`` / ``tags`` or CoNLL; not for .tsv / .csv). Lengths are
    whitespace words. Raises FileNotFoundError, or ValueError (the data layer's message for the
    likeliest reading) when nothing reads it.
    """
    from gptbert.data.profile import DatasetProfile, profile_dataset, profile_task_data
    from gptbert.data.readers import DataError, read_corpus, read_squad, read_task_file, read_token_file

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"data file not found: {p}")
    suffix = p.suffix.lower()
    if suffix in CORPUS_SUFFIXES:
        return profile_dataset(read_corpus(p), source=str(p)).to_dict()

    def tokens() -> DatasetProfile:
        data = read_token_file(p, skip_bad_rows=True)
        return profile_dataset([" ".join(t) for t in data.tokens], source=str(p), n_bad_rows=data.n_bad_rows)

    def squad() -> DatasetProfile:
        data = read_squad(p)
        return profile_dataset([e.question for e in data], pairs=[e.context for e in data], source=str(p))

    readers: list[Callable[[], DatasetProfile]] = [
        lambda: profile_task_data(read_task_file(p, skip_bad_rows=True)),
        lambda: profile_task_data(read_task_file(p, label_column=None, skip_bad_rows=True)),
    ]
    if suffix == ".json":
        readers.insert(0, squad)
    if suffix not in (".tsv", ".csv"):
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

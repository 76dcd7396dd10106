"""Readers for corpora and task files, with bad input reported by file and line.

The package face: every reader and data class is importable from here. Inside:

``formats``      format detection, TSV / CSV / JSON / JSONL rows, bad-row reports, DataError
``task``         labelled task files (TaskData), source/target pairs (PairData), LabelMap
``corpus``       plain-text corpora (iter_corpus, read_corpus) and the one path expansion
``token_files``  CoNLL / JSONL token-classification files (TokenData)
``squad``        SQuAD files with every answer checked (SquadData)
``split``        deterministic train / dev splits
"""

from __future__ import annotations

from gptbert.data.readers.corpus import expand_paths, iter_corpus, read_corpus
from gptbert.data.readers.formats import DataError, DataWarning, RowProblem, detect_format
from gptbert.data.readers.split import train_dev_split
from gptbert.data.readers.squad import QAExample, QAProblem, SquadData, read_squad
from gptbert.data.readers.task import LabelMap, PairData, TaskData, read_pairs_file, read_task_file
from gptbert.data.readers.token_files import TokenData, read_token_file

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
    "expand_paths",
    "iter_corpus",
    "read_corpus",
    "read_pairs_file",
    "read_squad",
    "read_task_file",
    "read_token_file",
    "train_dev_split",
]

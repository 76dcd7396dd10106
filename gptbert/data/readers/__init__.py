"""Readers for corpora and task files, with bad input reported by file and line.

The package face: every reader and data class is importable from here. Inside:

``registry``     the one reader registry: FORMATS, format detection, read_rows (every task file)
``formats``      TSV / CSV / JSON / JSONL rows, bad-row reports, DataError
``columnar``     Parquet (pyarrow) and Hugging Face ``datasets`` folders (optional extras)
``task``         labelled task files (TaskData), source/target pairs (PairData), LabelMap
``corpus``       plain-text corpora (iter_corpus, read_corpus) and the one path expansion
``token_files``  CoNLL / JSONL token-classification files (TokenData)
``squad``        SQuAD files with every answer checked (SquadData)
``split``        deterministic train / dev splits
"""

from __future__ import annotations

from gptbert.data.readers.corpus import expand_paths, iter_corpus, read_corpus
from gptbert.data.readers.formats import DataError, DataWarning, RowProblem
from gptbert.data.readers.registry import FORMATS, Source, detect_format, open_source
from gptbert.data.readers.split import train_dev_split
from gptbert.data.readers.squad import QAExample, QAProblem, SquadData, read_squad
from gptbert.data.readers.task import LabelMap, PairData, TaskData, read_pairs_file, read_task_file
from gptbert.data.readers.token_files import TokenData, read_token_file

__all__ = [
    "DataError",
    "FORMATS",
    "DataWarning",
    "LabelMap",
    "PairData",
    "QAExample",
    "QAProblem",
    "RowProblem",
    "Source",
    "SquadData",
    "TaskData",
    "TokenData",
    "detect_format",
    "expand_paths",
    "iter_corpus",
    "open_source",
    "read_corpus",
    "read_pairs_file",
    "read_squad",
    "read_task_file",
    "read_token_file",
    "train_dev_split",
]

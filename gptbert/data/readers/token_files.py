"""Token classification files: CoNLL-style columns, or token and tag lists (JSONL, Parquet, datasets)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gptbert.data.readers.columnar import open_table
from gptbert.data.readers.formats import (
    DataError,
    PathLike,
    RowProblem,
    Unit,
    decode_text,
    has_bad_bytes,
    jsonl_items,
    open_bytes,
    raise_or_log,
    text_lines,
)
from gptbert.data.readers.registry import FORMATS, Source, detect_format, open_source, split_path
from gptbert.data.readers.task import take


@dataclass
class TokenData:
    """Sentences as token lists with one tag per token (NER, POS, ...)."""

    tokens: list[list[str]]
    tags: list[list[str]]
    source: str | None = None
    bad_rows: list[RowProblem] = field(default_factory=list)
    lines: list[int] | None = None
    """Line where each sentence starts (its row index in a Parquet / datasets table)."""
    unit: Unit = "line"
    """What ``lines`` count (see :attr:`gptbert.data.readers.TaskData.unit`)."""

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
                         list(self.bad_rows), take(self.lines, idx), self.unit)


def _jsonl_error(obj: Any, tokens_key: str, tags_key: str) -> str | None:
    """What is wrong with one JSONL record of a token file (None: nothing)."""
    if not isinstance(obj, dict):
        return f"expected a JSON object, found {type(obj).__name__}"
    toks, tags = obj.get(tokens_key), obj.get(tags_key)
    if not isinstance(toks, list) or not isinstance(tags, list):
        return f"expected lists under {tokens_key!r} and {tags_key!r}"
    if len(toks) != len(tags):
        return f"{len(toks)} tokens but {len(tags)} tags"
    if not toks:
        return "empty sentence"
    if not all(isinstance(t, str) and t for t in toks):
        return "tokens must be non-empty strings"
    if not all(isinstance(t, (str, int)) and not isinstance(t, bool) for t in tags):
        return "tags must be strings"
    return None


def _read_jsonl(p: Path, text: str, out: TokenData, problems: list[RowProblem], tokens_key: str,
                tags_key: str) -> None:
    for lineno, obj, err in jsonl_items(p, text):
        if err is None:
            err = _jsonl_error(obj, tokens_key, tags_key)
        if err is not None:
            problems.append(RowProblem(str(p), lineno, err))
            continue
        out.tokens.append(list(obj[tokens_key]))
        out.tags.append([str(t) for t in obj[tags_key]])
        out.lines.append(lineno)  # type: ignore[union-attr]


def _read_table(source: Source, out: TokenData, problems: list[RowProblem], tokens_key: str,
                tags_key: str) -> None:
    """List columns of a Parquet file or datasets folder (a list-of-ClassLabel tag column gives names)."""
    table = open_table(source)
    tokens_col, tags_col = table.column("tokens", tokens_key), table.column("tags", tags_key)
    data = table.load(list(dict.fromkeys([tokens_col, tags_col])))
    names = table.class_names(tags_col, nested=True)
    for row, (toks, tags) in enumerate(zip(data[tokens_col], data[tags_col])):
        if names is not None and isinstance(tags, list):
            tags = [names[t] if isinstance(t, int) and 0 <= t < len(names) else t for t in tags]
        err = _jsonl_error({tokens_key: toks, tags_key: tags}, tokens_key, tags_key)
        if err is not None:
            problems.append(RowProblem(table.name, row, err, "row"))
            continue
        out.tokens.append(list(toks))
        out.tags.append([str(t) for t in tags])
        out.lines.append(row)  # type: ignore[union-attr]


def _read_conll(p: Path, text: str, out: TokenData, problems: list[RowProblem], token_column: int,
                tag_column: int) -> None:
    """Sentences of ``token tag`` lines; a sentence with a bad line is dropped whole."""
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

    for lineno, line in enumerate(text_lines(text), 1):
        if not line.strip():
            flush()
            continue
        parts = line.split()
        if parts[0] == "-DOCSTART-":
            flush()
            continue
        if not sent_toks and not bad_in_sentence:
            start = lineno
        if has_bad_bytes(line):
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


TABLES = ("parquet", "datasets")


def _token_format(path: PathLike) -> str:
    """jsonl, parquet or datasets by extension or folder contents; else conll (CoNLL files have any name)."""
    p, _ = split_path(path)
    if p.is_dir():
        return detect_format(p)  # "datasets", or an error saying what such a folder needs
    suffixes = [s.lower() for s in p.suffixes if s.lower() != ".gz"]
    ext = suffixes[-1] if suffixes else ""
    if ext in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    return "parquet" if ext in FORMATS["parquet"].suffixes else "conll"


def read_token_file(
    path: PathLike,
    *,
    format: Literal["conll", "jsonl", "parquet", "datasets"] | None = None,
    tokens_key: str = "tokens",
    tags_key: str = "tags",
    token_column: int = 0,
    tag_column: int = -1,
    skip_bad_rows: bool = False,
    encoding: str = "utf-8",
    split: str | None = None,
) -> TokenData:
    """Read CoNLL-style files (``token tag`` per line, whitespace-separated, blank line between
    sentences, ``-DOCSTART-`` ignored), or ``tokens``/``tags`` lists from JSONL, Parquet or a
    Hugging Face datasets folder (``split`` or ``folder:split``; ClassLabel tags give their names,
    so ``tags_key="ner_tags"`` reads conll2003 as saved by ``datasets``).

    With ``skip_bad_rows=True`` a sentence with a bad line is skipped whole (its tags would
    no longer line up).
    """
    format = format or _token_format(path)
    if format not in ("conll", "jsonl", *TABLES):
        raise DataError(f"{path}: unknown token-file format {format!r}; expected conll, jsonl, parquet or datasets")
    problems: list[RowProblem] = []
    if format in TABLES:
        source = open_source(path, format=format, split=split)
        out = TokenData([], [], source.name, [], [], "row")
        _read_table(source, out, problems, tokens_key, tags_key)
    else:
        source = Source(Path(path), format)
        out = TokenData([], [], source.name, [], [])
        text = decode_text(open_bytes(source.path), encoding)
        if format == "jsonl":
            _read_jsonl(source.path, text, out, problems, tokens_key, tags_key)
        else:
            _read_conll(source.path, text, out, problems, token_column, tag_column)
    raise_or_log(source.name, problems, skip_bad_rows)
    out.bad_rows = problems
    if not out.tokens:
        raise DataError(f"{source.name}: no sentences" + (f" ({len(problems)} bad lines)" if problems else ""), problems)
    return out

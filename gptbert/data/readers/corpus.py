"""Plain-text corpora: one document per line, or blocks of lines separated by blank lines."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

from gptbert.data.readers.formats import DataError, PathLike


def expand_paths(paths: PathLike | Iterable[PathLike]) -> list[Path]:
    """Files named by ``paths`` (``~`` expanded); a folder stands for its non-hidden files, sorted by name.

    A missing path is a FileNotFoundError; an empty folder or no paths at all is a DataError.
    """
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    out: list[Path] = []
    for item in items:
        p = Path(item).expanduser()
        if p.is_dir():
            files = sorted(q for q in p.iterdir() if q.is_file() and not q.name.startswith("."))
            if not files:
                raise DataError(f"{p}: directory has no files")
            out.extend(files)
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or directory")
    if not out:
        raise DataError("no corpus files given")
    return out


def iter_corpus(
    paths: PathLike | Iterable[PathLike],
    mode: Literal["line", "blank"] = "line",
    *,
    encoding: str = "utf-8",
    errors: Literal["strict", "replace"] = "strict",
) -> Iterator[str]:
    """Lazily yield documents: one per non-blank line (``mode="line"``) or blocks of lines
    separated by blank lines, joined with ``\\n`` (``mode="blank"``). A folder means its files.

    Bytes that are not valid text (undecodable, or NUL: binary data) raise a DataError naming file
    and line (``errors="replace"`` substitutes U+FFFD for undecodable bytes and reads on).
    """
    if mode not in ("line", "blank"):
        raise DataError(f"corpus mode {mode!r}; expected 'line' or 'blank'")
    if errors not in ("strict", "replace"):
        raise DataError(f"errors={errors!r}; expected 'strict' or 'replace'")
    for path in expand_paths(paths):
        opener = gzip.open if path.suffix == ".gz" else open
        block: list[str] = []
        with opener(path, "rb") as f:  # type: ignore[operator]
            for lineno, raw in enumerate(f, 1):
                try:
                    line = raw.decode(encoding)
                except UnicodeDecodeError as e:
                    if errors == "strict":
                        raise DataError(f"{path}:{lineno}: undecodable bytes at column {e.start + 1} "
                                        f"(not {encoding}); pass errors='replace' to substitute them") from None
                    line = raw.decode(encoding, errors="replace")
                if "\x00" in line and errors == "strict":  # decodes, but is binary data, not text
                    raise DataError(f"{path}:{lineno}: NUL byte at column {line.index(chr(0)) + 1} (binary data, "
                                    "not text); pass errors='replace' to read it anyway")
                if lineno == 1 and line.startswith("\ufeff"):
                    line = line[1:]
                line = line.rstrip("\r\n")
                if mode == "line":
                    if line.strip():
                        yield line
                elif line.strip():
                    block.append(line)
                elif block:
                    yield "\n".join(block)
                    block = []
        if block:
            yield "\n".join(block)


def read_corpus(
    paths: PathLike | Iterable[PathLike],
    mode: Literal["line", "blank"] = "line",
    *,
    encoding: str = "utf-8",
    errors: Literal["strict", "replace"] = "strict",
) -> list[str]:
    """All documents of :func:`iter_corpus` as a list."""
    return list(iter_corpus(paths, mode, encoding=encoding, errors=errors))

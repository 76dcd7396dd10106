"""Training a new WordPiece or byte-level BPE vocabulary, from text files or texts in memory.

The functions return a trained backend; :meth:`gptbert.tokenizer.Tokenizer.train` and
:meth:`~gptbert.tokenizer.Tokenizer.from_texts` wrap it into a Tokenizer.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import tokenizers
from tokenizers import pre_tokenizers, trainers

from gptbert.tokenizer.errors import TokenizerError
from gptbert.tokenizer.pipelines import (
    ENDOFTEXT,
    WORDPIECE_SPECIAL_TOKENS,
    check_kind,
    new_backend,
    wordpiece_post_processor,
)


def resolve_kind(kind: str, lowercase: bool | None) -> tuple[str, bool]:
    """(kind, lowercase): by default BERT-style WordPiece lowercases, GPT-2-style BPE keeps case."""
    kind = check_kind(str(kind).lower())
    return kind, (kind == "wordpiece") if lowercase is None else bool(lowercase)


def _trainer(kind: str, vocab_size: int, min_frequency: int, show_progress: bool) -> Any:
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool):
        raise TokenizerError(f"vocab_size={vocab_size!r}; expected an integer")
    if min_frequency < 1:
        raise TokenizerError(f"min_frequency={min_frequency}; expected >= 1")
    if kind == "wordpiece":
        specials = [t for t in WORDPIECE_SPECIAL_TOKENS.values() if t is not None]
        if vocab_size <= len(specials) + 26:
            raise TokenizerError(f"vocab_size={vocab_size} is too small for WordPiece (need > {len(specials) + 26})")
        return trainers.WordPieceTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials,
            show_progress=show_progress, continuing_subword_prefix="##",
        )
    if vocab_size < 257:
        raise TokenizerError(f"vocab_size={vocab_size} is too small for byte-level BPE (need >= 257: 256 bytes + {ENDOFTEXT})")
    return trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[ENDOFTEXT],
        show_progress=show_progress, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )


def _finish(backend: tokenizers.Tokenizer, kind: str) -> tokenizers.Tokenizer:
    if kind == "wordpiece":
        wordpiece_post_processor(backend, "[CLS]", "[SEP]", "trained vocabulary")
    return backend


def check_utf8(path: Path, chunk: int = 1 << 20) -> bool:
    """Raise TokenizerError naming file and line if ``path`` is not UTF-8 text (bytes that do not
    decode, or a NUL byte: binary data); returns whether it holds any non-blank text."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    text = False
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            final = not block
            nul = block.find(b"\x00")
            if nul >= 0:
                where = line + block[:nul].count(b"\n")
                raise TokenizerError(f"{path}:{where}: NUL byte (binary data); expected UTF-8 text")
            try:
                decoder.decode(block, final=final)
            except UnicodeDecodeError as e:
                line += block[: max(e.start, 0)].count(b"\n")
                raise TokenizerError(f"{path}:{line}: not UTF-8 text") from None
            text = text or bool(block.strip())
            if final:
                return text
            line += block.count(b"\n")


def train_on_files(files: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], kind: str, vocab_size: int,
                   *, lowercase: bool, min_frequency: int, show_progress: bool) -> tokenizers.Tokenizer:
    """A backend trained on UTF-8 text files (one sequence per line)."""
    paths = [Path(files)] if isinstance(files, (str, os.PathLike)) else [Path(f) for f in files]
    if not paths:
        raise TokenizerError("no training files given")
    has_text = False
    for p in paths:
        if p.is_dir():
            raise TokenizerError(f"{p}: is a folder, expected a text file")
        if not p.is_file():
            raise TokenizerError(f"{p}: training file not found")
        has_text = check_utf8(p) or has_text
    if not has_text:
        raise TokenizerError(f"{', '.join(map(str, paths))}: no text to train on (empty or blank lines only)")
    trainer = _trainer(kind, vocab_size, min_frequency, show_progress)
    backend = new_backend(kind, lowercase)
    try:
        backend.train([str(p) for p in paths], trainer)
    except Exception as e:
        raise TokenizerError(f"training failed on {', '.join(map(str, paths))}: {str(e).splitlines()[0]}") from None
    return _finish(backend, kind)


def train_on_texts(texts: Iterable[str], kind: str, vocab_size: int, *, lowercase: bool, min_frequency: int,
                   show_progress: bool, length: int | None) -> tokenizers.Tokenizer:
    """A backend trained on an iterable of texts (``length``: their number, for the progress bar)."""
    trainer = _trainer(kind, vocab_size, min_frequency, show_progress)
    backend = new_backend(kind, lowercase)
    if length is None and hasattr(texts, "__len__"):
        length = len(texts)  # type: ignore[arg-type]

    seen = [0]

    def checked() -> Iterator[str]:
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TokenizerError(f"from_texts(): item {i} is {type(t).__name__}, expected str")
            seen[0] += bool(t.strip())
            yield t

    backend.train_from_iterator(checked(), trainer, length=length)
    if not seen[0]:
        raise TokenizerError("no text to train on (no texts, or only blank ones)")
    return _finish(backend, kind)

"""``gptbert tokenizer ...``: train a WordPiece or byte-level BPE tokenizer, encode a text."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

from gptbert.cli import CLIError
from gptbert.cli._args import DATA_FORMATS_HELP
from gptbert.io.files import OutputExistsError, check_new_output, missing_file_message, staging_dir


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "tokenizer", help="train or try a tokenizer",
        description="Train a WordPiece (BERT) or byte-level BPE (GPT-2) tokenizer, or encode a text with one.",
    )
    sub = parser.add_subparsers(dest="tokenizer_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: _usage(parser))

    train = sub.add_parser(
        "train", help="train a tokenizer on text files",
        description="Train on plain-text files (one text a line) or on the text column of task files "
                    f"({DATA_FORMATS_HELP}). The output folder holds tokenizer.json, the vocabulary files "
                    "(vocab.txt, or vocab.json + merges.txt) and gptbert_tokenizer.json.",
    )
    train.add_argument("files", nargs="+", metavar="FILE", help="training text files")
    train.add_argument("--kind", required=True, choices=["wordpiece", "bpe"], help="tokenizer family")
    train.add_argument("--vocab-size", type=int, required=True, help="target vocabulary size")
    train.add_argument("--out", required=True, help="output folder (must be new or empty unless --force)")
    train.add_argument("--lowercase", action=argparse.BooleanOptionalAction, default=None,
                       help="lowercase text (default: yes for wordpiece, no for bpe)")
    train.add_argument("--min-frequency", type=int, default=2, help="minimum pair/word frequency (default: 2)")
    train.add_argument("--text-column", default="text", help="text column of task files (default: text)")
    train.add_argument("--force", action="store_true", help="replace a non-empty output folder")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=_train)

    enc = sub.add_parser("encode", help="show the tokens and ids of a text",
                         description="Encode TEXT (and an optional --pair) with a saved tokenizer.")
    enc.add_argument("text", metavar="TEXT", help="text to encode")
    enc.add_argument("--tokenizer", required=True, help="tokenizer folder or file")
    enc.add_argument("--pair", default=None, help="second text")
    enc.add_argument("--max-length", type=int, default=None, help="truncate to this many tokens")
    enc.set_defaults(func=_encode)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _is_task_file(path: Path) -> bool:
    """A table the readers know (by extension or folder); anything else is a plain-text corpus."""
    from gptbert.data.readers import DataError, detect_format

    try:
        detect_format(path)
    except DataError:
        return False
    return True


def _texts(files: list[Path], text_column: str) -> Iterator[str]:
    from gptbert.data.readers import iter_corpus, read_task_file

    for f in files:
        if _is_task_file(f):
            yield from read_task_file(f, text_column=text_column, label_column=None).texts
        else:
            yield from iter_corpus(f)


def _train(args: argparse.Namespace) -> int:
    from gptbert.data.readers import DataError
    from gptbert.tokenizer import Tokenizer, TokenizerError

    out = Path(args.out)
    try:
        check_new_output(out, force=args.force, kind="dir")  # fail before a long training run
    except OutputExistsError as e:
        raise CLIError(str(e)) from None
    files = [Path(f) for f in args.files]
    for f in files:
        if not f.is_file() and not _is_task_file(f):
            raise CLIError(missing_file_message(f))
    if args.vocab_size < 1:
        raise CLIError(f"--vocab-size {args.vocab_size}: expected a positive integer")
    try:
        if not any(_is_task_file(f) for f in files):
            tok = Tokenizer.train(files, args.kind, args.vocab_size, lowercase=args.lowercase,
                                  min_frequency=args.min_frequency, show_progress=not args.quiet)
        else:
            tok = Tokenizer.from_texts(_texts(files, args.text_column), args.kind, args.vocab_size,
                                       lowercase=args.lowercase, min_frequency=args.min_frequency,
                                       show_progress=not args.quiet)
    except (TokenizerError, DataError, FileNotFoundError) as e:
        raise CLIError(str(e)) from None
    try:
        with staging_dir(out, force=args.force) as tmp:  # the folder appears whole, or not at all
            tok.save(tmp)
    except OutputExistsError as e:  # appeared during training
        raise CLIError(str(e)) from None
    print(f"wrote {tok.kind} tokenizer ({tok.vocab_size} tokens, lowercase={tok.lowercase}) to {out}")
    return 0


def _encode(args: argparse.Namespace) -> int:
    from gptbert.tokenizer import Tokenizer, TokenizerError

    try:
        tok = Tokenizer.load(args.tokenizer)
        enc = tok.encode(args.text, args.pair, max_length=args.max_length)
    except (TokenizerError, FileNotFoundError) as e:
        raise CLIError(str(e)) from None
    tokens = [tok.id_to_token(i) for i in enc.ids]
    print("tokens:  " + " ".join(str(t) for t in tokens))
    print("ids:     " + " ".join(map(str, enc.ids)))
    print("types:   " + " ".join(map(str, enc.type_ids)))
    print(f"length:  {len(enc.ids)}")
    return 0

"""``gptbert data ...``: inspect and prepare data sets.

Subcommands are added by the functions in ``SUBCOMMANDS`` (each takes the ``data``
sub-subparsers object); add a new one there.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from gptbert.cli import CLIError
from gptbert.cli._args import (
    DATA_FORMATS_HELP,
    add_column_options,
    add_json_options,
    check_json_out,
    column_options,
    write_json_out,
)
from gptbert.io.files import OutputExistsError, atomic_write_text, check_new_output, missing_file_message

CORPUS_SUFFIXES = (".txt", ".text")


def _add_profile(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from gptbert.data.readers.registry import FORMATS

    p = sub.add_parser(
        "profile", help="size, label balance, lengths, vocabulary coverage and duplicates of a data set",
        description=f"Profile a task file ({DATA_FORMATS_HELP}) or a plain-text corpus (.txt, one text a "
                    "line): examples, label balance, length percentiles (tokens with --tokenizer, else "
                    "words), unknown-token rate, duplicates and pair presence.",
    )
    p.add_argument("file", metavar="FILE", help="data file, datasets folder, or FOLDER:SPLIT")
    p.add_argument("--tokenizer", default=None, metavar="DIR",
                   help="tokenizer folder or file: lengths in its tokens, plus vocabulary coverage")
    add_column_options(p)
    p.add_argument("--no-labels", action="store_true", help="the file has no label column")
    p.add_argument("--format", choices=[*FORMATS, "txt"], default=None,
                   help="file format (default: from the extension, or a folder's contents)")
    p.add_argument("--no-header", action="store_true", help="delimited file without a header line")
    p.add_argument("--skip-bad-rows", action="store_true",
                   help="skip malformed rows (they are counted) instead of stopping")
    add_json_options(p, "the profile")
    p.add_argument("--force", action="store_true", help="replace an existing --json-out file")
    p.set_defaults(func=_profile)


def add_augment_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``gptbert data augment``."""
    parser.add_argument("input", metavar="FILE", help=f"labelled task file: {DATA_FORMATS_HELP}")
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="where to write the augmented examples (TSV with a header; JSONL for a .jsonl name)")
    parser.add_argument("--methods", default="delete,swap,insert",
                        help="comma-separated methods among delete, swap, insert (default: %(default)s)")
    parser.add_argument("--n-aug", type=int, default=1, help="augmented copies per example (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument("--p-delete", type=float, default=0.1,
                        help="deletion probability per word (default: %(default)s)")
    parser.add_argument("--n-swap", type=int, default=1, help="swaps per copy (default: %(default)s)")
    parser.add_argument("--n-insert", type=int, default=1, help="insertions per copy (default: %(default)s)")
    parser.add_argument("--vocab-from", nargs="+", default=None, metavar="TXT",
                        help="plain-text files whose words feed 'insert' (default: the input's own texts)")
    add_column_options(parser)
    parser.add_argument("--skip-bad-rows", action="store_true",
                        help="skip malformed rows instead of stopping")
    parser.add_argument("--include-original", action="store_true", help="also write the original examples")
    parser.add_argument("--force", action="store_true", help="replace an existing output file")


def add_augment_subcommand(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``augment`` to the ``gptbert data`` sub-subparsers."""
    p = sub.add_parser("augment", help="EDA-style augmentation of a labelled file (labels kept)",
                       description="Write N augmented copies of every example of a labelled file: random "
                                   "deletion, swap and insertion of corpus words; labels are preserved.")
    add_augment_arguments(p)
    p.set_defaults(func=cmd_augment)


def cmd_augment(args: argparse.Namespace) -> int:
    """Read a labelled file, augment it, write ``text[<TAB>text_pair]<TAB>label`` rows with a header."""
    from gptbert.data.augment import augment_dataset, build_vocabulary
    from gptbert.data.readers import DataError, iter_corpus, read_task_file
    from gptbert.data.writers import write_task_file

    methods = [m.strip() for m in str(args.methods).split(",") if m.strip()]
    bad = [m for m in methods if m not in ("delete", "swap", "insert")]
    if bad or not methods:
        raise CLIError(f"--methods: unknown or unsupported here: {', '.join(bad) or '(none)'}; choose among "
                       "delete, swap, insert (contextual substitution needs a model: use "
                       "gptbert.data.augment.contextual_substitute with mlm_fill_fn)")
    if args.n_aug < 1:
        raise CLIError(f"--n-aug must be >= 1, got {args.n_aug}")
    if not 0.0 <= args.p_delete <= 1.0:
        raise CLIError(f"--p-delete must lie in [0, 1], got {args.p_delete}")
    out = _new_output(args.output, args.force)
    try:
        data = read_task_file(args.input, **column_options(args), skip_bad_rows=args.skip_bad_rows)
        vocabulary = build_vocabulary(iter_corpus(args.vocab_from)) if args.vocab_from else None
    except (DataError, FileNotFoundError) as e:
        raise CLIError(str(e)) from None
    if vocabulary is not None and not vocabulary and "insert" in methods:
        raise CLIError("--vocab-from: no word occurs twice in those files")
    new = augment_dataset(data, methods, n_aug=args.n_aug, seed=args.seed, vocabulary=vocabulary,
                          p_delete=args.p_delete, n_swap=args.n_swap, n_insert=args.n_insert)
    try:
        write_task_file(out, *([data] if args.include_original else []), new)
    except DataError as e:
        raise CLIError(str(e)) from None
    n_orig = len(data) if args.include_original else 0
    print(f"wrote {len(new) + n_orig} examples ({len(new)} augmented, methods {','.join(methods)}, "
          f"seed {args.seed}) to {out}", file=sys.stderr)
    return 0


PAIR_KINDS = ("speech-first-line", "snippet-first-clause")


def _add_pairs(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "pairs", help="build source/target pairs (JSONL) from a plain-text corpus, for --task generate",
        description="Build deterministic source/target pairs from a corpus: speech-first-line (TinyShakespeare: "
                    "a speech of 3+ lines -> its first line, a headline task) or snippet-first-clause "
                    "(rt_snippets.txt: a review snippet -> its first clause). Pairs keep corpus order; the "
                    "last --dev-size go to --dev-out, so train and dev share no source.",
    )
    p.add_argument("--kind", choices=PAIR_KINDS, required=True, help="how a pair is cut from the corpus (see above)")
    p.add_argument("--corpus", required=True, help="plain-text corpus file")
    p.add_argument("--out", required=True, help="JSONL file of training pairs ({'source': ..., 'target': ...})")
    p.add_argument("--dev-out", default=None, help="JSONL file for the last --dev-size pairs")
    p.add_argument("--dev-size", type=int, default=200, help="pairs held out for --dev-out (default 200)")
    p.add_argument("--limit", type=int, default=None, help="keep the first N pairs only")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    p.set_defaults(func=_pairs)


def _pairs(args: argparse.Namespace) -> int:
    from gptbert.tasks.generate_data import make_pairs

    corpus = Path(args.corpus)
    if not corpus.is_file():
        raise CLIError(missing_file_message(corpus, option="--corpus"))
    if args.limit is not None and args.limit < 1:
        raise CLIError(f"--limit {args.limit}: expected a positive number of pairs")
    _new_output(args.out, args.force)
    if args.dev_out:
        _new_output(args.dev_out, args.force)
    pairs = make_pairs(args.kind, corpus, limit=args.limit)
    if not pairs:
        raise CLIError(f"{corpus}: no {args.kind} pairs found (is it the right corpus for this kind?)")
    dev: list[tuple[str, str]] = []
    if args.dev_out:
        if not 0 < args.dev_size < len(pairs):
            raise CLIError(f"--dev-size {args.dev_size}: expected 1..{len(pairs) - 1} ({len(pairs)} pairs)")
        pairs, dev = pairs[: -args.dev_size], pairs[-args.dev_size:]

    from gptbert.data.writers import write_jsonl

    out = _new_output(args.out, args.force)
    dev_out = _new_output(args.dev_out, args.force) if args.dev_out else None
    write_jsonl(out, ({"source": s, "target": t} for s, t in pairs))
    if dev_out is not None:
        write_jsonl(dev_out, ({"source": s, "target": t} for s, t in dev))
    print(json.dumps({"kind": args.kind, "train": {"path": args.out, "pairs": len(pairs)},
                      **({"dev": {"path": args.dev_out, "pairs": len(dev)}} if args.dev_out else {})}))
    return 0


def _add_squad(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "squad", help="split a SQuAD file by article (train/dev), optionally adding cloze questions",
        description="Split a SQuAD v1.1 JSON file into train and dev files by whole articles (so no dev question "
                    "is about a text seen in training), optionally add self-supervised cloze questions built "
                    "from the training articles' text (a sentence's first words -> the rest of its clause), "
                    "and optionally give each training question a window of its context (cheap training).",
    )
    p.add_argument("file", metavar="FILE", help="SQuAD v1.1 JSON file")
    p.add_argument("--out", required=True, help="training SQuAD JSON to write")
    p.add_argument("--dev-out", required=True, help="dev SQuAD JSON to write")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--dev-title", action="append", default=[], metavar="TITLE",
                       help="an article whose questions go to dev (repeatable; exact title)")
    group.add_argument("--dev-articles", type=int, default=0, metavar="K", help="K seeded-random articles to dev")
    p.add_argument("--dev-answerable-only", action="store_true",
                   help="keep only dev questions whose answer is a span of the context")
    p.add_argument("--cloze", type=int, default=0, metavar="N",
                   help="add N cloze questions built from the training articles (default 0)")
    p.add_argument("--window", type=int, default=None, metavar="CHARS",
                   help="give each training question a CHARS-long window of its context around the answer "
                        "(dev keeps whole contexts unless --dev-window)")
    p.add_argument("--dev-window", type=int, default=None, metavar="CHARS",
                   help="cut dev contexts the same way (an easier, reading-only test: the passage is given)")
    p.add_argument("--seed", type=int, default=0, help="seed of --dev-articles and --cloze (default 0)")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    p.set_defaults(func=_squad)


def _squad(args: argparse.Namespace) -> int:
    from gptbert.tasks.qa import read_questions
    from gptbert.tasks.qa_data import cloze_questions, split_articles, to_squad, window_contexts

    path = Path(args.file)
    if not path.is_file():
        raise CLIError(f"{path}: no such file")
    if args.cloze < 0:
        raise CLIError(f"--cloze {args.cloze}: expected a number of questions >= 0")
    for flag, chars in (("--window", args.window), ("--dev-window", args.dev_window)):
        if chars is not None and chars < 100:
            raise CLIError(f"{flag} {chars}: expected at least 100 characters")
    examples = list(read_questions(path))
    try:
        train, dev = split_articles(examples, dev_titles=args.dev_title, dev_articles=args.dev_articles,
                                    seed=args.seed)
    except ValueError as e:
        raise CLIError(f"{path}: {e}") from None
    cloze = cloze_questions(train, n=args.cloze, seed=args.seed) if args.cloze else []
    if args.dev_answerable_only:
        dev = [ex for ex in dev if ex.answerable]
    if not dev:
        raise CLIError(f"{path}: no dev questions left")
    train_all = train + cloze
    train_doc = window_contexts(train_all, chars=args.window) if args.window else to_squad(train_all)
    dev_doc = window_contexts(dev, chars=args.dev_window) if args.dev_window else to_squad(dev)
    out, dev_out = _new_output(args.out, args.force), _new_output(args.dev_out, args.force)
    atomic_write_text(out, json.dumps(train_doc, ensure_ascii=False))
    atomic_write_text(dev_out, json.dumps(dev_doc, ensure_ascii=False))
    print(json.dumps({
        "train": {"path": args.out, "questions": len(train), "answerable": sum(e.answerable for e in train),
                  "cloze": len(cloze), "articles": len({e.title for e in train})},
        "dev": {"path": args.dev_out, "questions": len(dev), "answerable": sum(e.answerable for e in dev),
                "articles": sorted({e.title for e in dev})},
    }))
    return 0


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [  # type: ignore[type-arg]
    _add_profile, add_augment_subcommand, _add_pairs, _add_squad,
]


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("data", help="inspect and prepare data sets",
                                   description="Inspect and prepare data sets.")
    sub = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: _usage(parser))
    for add in SUBCOMMANDS:
        add(sub)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _new_output(path: str | Path, force: bool) -> Path:
    """``path`` as a Path, when it may be written (new, or ``force``); else a CLIError."""
    try:
        return check_new_output(path, force=force)
    except OutputExistsError as e:
        raise CLIError(str(e)) from None


def _profile(args: argparse.Namespace) -> int:
    from gptbert.data.profile import format_profile, profile_dataset, profile_task_data
    from gptbert.io.files import to_json
    from gptbert.data.readers import DataError, read_corpus, read_task_file
    from gptbert.tokenizer import Tokenizer, TokenizerError

    path = Path(args.file)
    fmt = args.format
    is_corpus = fmt == "txt" or (fmt is None and path.suffix.lower() in CORPUS_SUFFIXES)
    if is_corpus and not path.is_file():
        raise CLIError(f"{path}: no such file")
    out = check_json_out(args)
    try:
        tokenizer = Tokenizer.load(args.tokenizer) if args.tokenizer else None
        if is_corpus:
            texts = read_corpus(path)
            if not texts:
                raise CLIError(f"{path}: no text")
            profile = profile_dataset(texts, tokenizer=tokenizer, source=str(path))
        else:
            data = read_task_file(
                path, text_column=_column(args.text_column, args.no_header),
                text_pair_column=_column(args.text_pair_column, args.no_header),
                label_column=None if args.no_labels else _column(args.label_column, args.no_header),
                skip_bad_rows=args.skip_bad_rows, has_header=not args.no_header, format=fmt, split=args.split,
            )
            profile = profile_task_data(data, tokenizer)
    except (DataError, TokenizerError, FileNotFoundError) as e:
        raise CLIError(str(e)) from None
    if args.json:
        sys.stdout.write(to_json(profile.to_dict()))
    else:
        print(format_profile(profile))
    if out is not None:
        write_json_out(out, profile.to_dict(), args)
    return 0


def _column(value: str | None, no_header: bool) -> str | int | None:
    """Column names stay names; with --no-header a number means a position."""
    if value is None:
        return None
    if no_header and value.lstrip("-").isdigit():
        return int(value)
    return value

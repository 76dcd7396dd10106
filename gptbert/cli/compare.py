"""``gptbert compare`` (the main job) and ``gptbert demo`` (what ``make demo`` runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gptbert.cli import CLIError

CANDIDATE_HELP = (
    "comma-separated candidates: presets (bert-mini, gpt-mini, elmo-small, ...), run or Hugging Face "
    "directories, minilm (the installed all-MiniLM-L6-v2), and the baselines tfidf-lr (TF-IDF + logistic "
    "regression) and embed-lr:SOURCE (frozen encoder + logistic regression, e.g. embed-lr:minilm); a preset may "
    "take model overrides as PRESET:KEY=VALUE[:KEY=VALUE], and any candidate a name as NAME=SOURCE (default "
    "with --train: tfidf-lr,embed-lr:minilm,minilm,bert-mini,gpt-mini when MiniLM is installed, else "
    "tfidf-lr,bert-mini,gpt-mini,elmo-small; baselines for --task classify only; without --train: the demo's)"
)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "compare", help="train and measure BERT, GPT and ELMo candidates side by side on one task",
        description="Give every candidate the same data, tokenizer policy and wall-clock budget, then measure "
                    "quality (with 95 % intervals), size, training cost, latency, throughput, memory and "
                    "decoding speed on this machine. Writes report.md, report.html and results.json to --out "
                    "and appends a row per candidate to --db. Without --train it runs the bundled demo.",
    )
    # No choices here (they need the task modules, i.e. torch): compare's settings check the name.
    p.add_argument("--task", default="classify",
                   help="task: one of `gptbert finetune --task` (default: classify)")
    p.add_argument("--train", help="training file (TSV/CSV/JSONL with text and label columns); "
                                   "default: the bundled demo data")
    p.add_argument("--dev", help="dev file (default: a seeded 10%% split of --train)")
    p.add_argument("--test", help="test file, scored once at the end (optional)")
    p.add_argument("--candidates", action="append", metavar="LIST", help=CANDIDATE_HELP)
    p.add_argument("--pretrain-corpus", nargs="+", metavar="FILE",
                   help="plain-text corpus: presets are pre-trained on it (their family's objective) first")
    p.add_argument("--budget", help="wall-clock training time per candidate, pre-training included "
                                    "(default 5m; demo: 50s)")
    p.add_argument("--pretrain-budget", help="the part of --budget spent pre-training presets "
                                             "(default: half of it when --pretrain-corpus is given)")
    _common(p)
    p.add_argument("--max-len", type=int, default=None,
                   help="maximum tokens per example (default: the recipe's, the 99th length percentile of the "
                        "training texts; 128 with --recipe none; demo 64)")
    p.add_argument("--batch-size", type=int, default=32, help="training batch size (default 32; the recipe's)")
    p.add_argument("--recipe", choices=("auto", "none"), default="auto",
                   help="fine-tuning recipe of the transformer candidates: auto (learning rates, pooling, "
                        "linear-probe head, max_len from the data, batches of similar length; options you give "
                        "are kept) or none (the options as given; default auto)")
    p.add_argument("--vocab-size", type=int, default=None,
                   help="vocabulary size of the shared tokenizers trained for presets (default 8000; demo 2000)")
    p.add_argument("--max-train", type=int, default=None, help="use at most this many training examples (seeded)")
    p.add_argument("--lr", type=float, default=None,
                   help="fine-tuning learning rate (default 1e-3 for presets, 2e-4 for post-LN BERT presets wider "
                        "than 128 such as bert-mini, 1e-4 for checkpoints)")
    p.add_argument("--pretrain-lr", type=float, default=None,
                   help="pre-training learning rate (default 1e-3; 3e-4 for post-LN BERT presets wider than 128)")
    p.add_argument("--max-epochs", type=int, default=10, help="fine-tuning epochs at most (default 10)")
    p.add_argument("--max-steps", type=int, default=None, help="optimizer steps at most, per phase")
    p.add_argument("--patience", type=int, default=3,
                   help="stop fine-tuning after this many evaluations without improvement (0: off; default 3)")
    p.add_argument("--latency-repeats", type=int, default=None, help="batch-1 calls timed per precision "
                                                                     "(default 30; demo 20)")
    p.add_argument("--text-column", default="text", help="text column of the task files (default: text)")
    p.add_argument("--text-pair-column", default=None, help="second-text column for pair tasks")
    p.add_argument("--label-column", default="label", help="label column (default: label)")
    p.add_argument("--skip-bad-rows", action="store_true", help="skip malformed rows (reported) instead of stopping")
    p.set_defaults(func=cmd_compare)

    d = sub.add_parser(
        "demo", help="a complete comparison on the bundled data: the two baselines and one small BERT, GPT and ELMo "
                     "(about 5 minutes on 2 cores)",
        description="Pre-train and fine-tune one small model per family on the bundled sentiment data, measure "
                    "them, write the reports and check the result: exits non-zero if a candidate failed or if "
                    "the best dev accuracy is not above the majority-class baseline.",
    )
    d.add_argument("--candidates", action="append", metavar="LIST", help="replace the demo's candidates")
    d.add_argument("--budget", help="wall-clock training time per candidate (default 50s: 25s pre-training + "
                                    "25s fine-tuning)")
    d.add_argument("--pretrain-budget", help="the part of --budget spent pre-training")
    _common(d)
    d.set_defaults(func=cmd_demo)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", default=None, metavar="LIST",
                   help="inference precisions to measure, comma-separated among auto, fp32, bf16, int8 (default auto: fp32, "
                        "plus bf16 where a matmul probe measures it clearly faster on this machine)")
    p.add_argument("--compress", default=None, metavar="LIST",
                   help="compressed variants to measure next to fp32 (latency, throughput, size and dev accuracy "
                        "of each), comma-separated among " + ", ".join(COMPRESS_VARIANTS) + "; added to --precision")
    p.add_argument("--out", help="output folder (default runs/compare-<time> or runs/demo-<time>)")
    p.add_argument("--force", action="store_true", help="write into an existing non-empty --out")
    p.add_argument("--db", default="runs.db", help="SQLite results store to append to (default runs.db)")
    p.add_argument("--no-db", action="store_true", help="do not append to a results store")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--measure-in-process", action="store_true",
                   help="measure inference in this process instead of a fresh one (starts faster; memory "
                        "numbers then include what training left behind)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads for training and inference (default: one per core, or 1 when the machine "
                        "is already busy)")
    p.add_argument("--no-progress", action="store_true", help="no training progress bars")


def _check_out(args: argparse.Namespace) -> None:
    if args.out:
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise CLIError(f"--out {out} is a file")
        if out.is_dir() and any(out.iterdir()) and not args.force:
            raise CLIError(f"--out {out} exists and is not empty (use --force to write into it)")


COMPRESS_VARIANTS = {"bf16": "bf16", "int8-dynamic": "int8"}
"""``--compress`` methods and the inference variant (``--precision`` name) each is measured as."""


def _precisions(args: argparse.Namespace) -> list[str] | None:
    precisions = None if args.precision is None else [p.strip() for p in args.precision.split(",") if p.strip()]
    methods = [m.strip() for m in (getattr(args, "compress", None) or "").split(",") if m.strip()]
    if not methods:
        return precisions
    bad = [m for m in methods if m not in COMPRESS_VARIANTS]
    if bad:
        raise CLIError(f"--compress {','.join(bad)}: expected methods among {', '.join(COMPRESS_VARIANTS)} (pruning "
                       "and distillation need training: run `gptbert compress` on a candidate's run directory)")
    merged = list(precisions or ["fp32"])
    for m in methods:
        if COMPRESS_VARIANTS[m] not in merged:
            merged.append(COMPRESS_VARIANTS[m])
    return merged


def _settings(args: argparse.Namespace, *, demo: bool) -> Any:
    from gptbert.compare import CompareError, CompareSettings, demo_settings, parse_candidates
    from gptbert.compare.settings import default_candidates

    db = None if args.no_db else args.db
    try:
        if demo:
            s = demo_settings(args.out, db=db, candidates=args.candidates, budget=args.budget,
                              pretrain_budget=args.pretrain_budget, seed=args.seed,
                              isolate_inference=not args.measure_in_process, precisions=_precisions(args))
        else:
            cands = parse_candidates(args.candidates or default_candidates(task=args.task))
            s = CompareSettings(
                train=args.train, dev=args.dev, test=args.test, task=args.task, candidates=cands,
                pretrain_corpus=list(args.pretrain_corpus or []), budget=args.budget or "5m",
                pretrain_budget=args.pretrain_budget, precisions=_precisions(args) or ["auto"],
                out_dir=args.out, db=db, max_len=args.max_len or 128, batch_size=args.batch_size,
                vocab_size=args.vocab_size or 8000, max_train=args.max_train, seed=args.seed, lr=args.lr,
                pretrain_lr=args.pretrain_lr, max_epochs=args.max_epochs, max_steps=args.max_steps,
                patience=args.patience, latency_repeats=args.latency_repeats or 30,
                text_column=args.text_column, text_pair_column=args.text_pair_column,
                label_column=args.label_column, skip_bad_rows=args.skip_bad_rows,
                isolate_inference=not args.measure_in_process,
                recipe=None if args.recipe == "none" else "auto",
                explicit=frozenset(n for n in ("lr", "batch_size", "max_len", "patience") if n in getattr(args, "given", set())),
            )
        s.progress = not args.no_progress
        s.threads = args.threads
        s.validate()
        s.plan()
    except CompareError as e:
        raise CLIError(str(e)) from None
    return s


def _apply_compare_options_to_demo(s: Any, args: argparse.Namespace) -> None:
    """``gptbert compare`` without --train: the demo, with whatever compare options were given."""
    if args.max_len is not None:
        s.max_len = args.max_len
    if args.vocab_size is not None:
        s.vocab_size = args.vocab_size
    if args.latency_repeats is not None:
        s.latency_repeats = args.latency_repeats
    if args.pretrain_corpus:
        s.pretrain_corpus = list(args.pretrain_corpus)
    for name in ("batch_size", "max_train", "lr", "pretrain_lr", "max_epochs", "max_steps", "patience"):
        setattr(s, name, getattr(args, name))


def _run(s: Any, *, demo: bool) -> int:
    from gptbert.compare import CompareError, demo_problems, format_summary, run_comparison

    try:
        outcome = run_comparison(s)
    except CompareError as e:
        raise CLIError(str(e)) from None
    comp = outcome.comparison
    print()
    print(format_summary(comp))
    if outcome.majority_baseline is not None:
        print(f"(majority-class dev accuracy: {outcome.majority_baseline:.3f}; wall {outcome.wall_s:.0f} s, "
              f"CPU {outcome.cpu_s:.0f} s in this process)")
    print()
    print(outcome.recommendation.text)
    print()
    print("Reports:")
    for kind in ("markdown", "html", "json"):
        if kind in outcome.reports:
            print(f"  {outcome.reports[kind]}")
    print(f"  candidates' run directories: {outcome.out_dir / 'candidates'}")
    if outcome.db is not None:
        print(f"  results store: {outcome.db} (comparison {comp.id}; see `gptbert results list --db {outcome.db}`)")
    if outcome.interrupted:
        print("interrupted: the reports cover the candidates that finished", file=sys.stderr)
        return 130
    if demo:
        problems = demo_problems(outcome)
        if problems:
            print("demo check FAILED:", file=sys.stderr)
            for p in problems:
                print(f"  - {p}", file=sys.stderr)
            return 1
        best = max((c.quality.dev, c.name) for c in comp.candidates
                   if c.quality is not None and c.quality.dev is not None)
        print(f"demo check passed: every candidate ran; best dev accuracy {best[0]:.3f} ({best[1]}) "
              f"> majority-class baseline {outcome.majority_baseline:.3f}")
        return 0
    ok = [c for c in comp.candidates if c.ok]
    if not ok:
        print("compare: every candidate failed (see the errors above and in the report)", file=sys.stderr)
        return 1
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    _check_out(args)
    data_given = any(getattr(args, k) for k in ("train", "dev", "test"))
    if not data_given:
        if args.task != "classify":
            raise CLIError(f"--task {args.task} needs --train (the bundled demo is a classification task)")
        print("gptbert compare: no --train given: running the bundled demo (BERT vs GPT vs ELMo on "
              "gptbert/demo_data)", file=sys.stderr)
        s = _settings(args, demo=True)
        _apply_compare_options_to_demo(s, args)
        try:
            s.validate()
        except ValueError as e:
            raise CLIError(str(e)) from None
        return _run(s, demo=True)
    if not args.train:
        raise CLIError("--dev/--test need --train")
    return _run(_settings(args, demo=False), demo=False)


def cmd_demo(args: argparse.Namespace) -> int:
    _check_out(args)
    return _run(_settings(args, demo=True), demo=True)

"""``gptbert pretrain`` and ``gptbert finetune``."""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

from gptbert.cli import CLIError

FAMILY_OBJECTIVES = ("MLM+NSP for BERT, causal LM for GPT, forward+backward LM for ELMo, causal + masked "
                     "next-token for the GPT-BERT hybrid")


def _train_args_class() -> type:
    from gptbert.training import TrainArgs  # torch import: only when a training command runs

    return TrainArgs


def _add_train_options(parser: argparse.ArgumentParser) -> None:
    """TrainArgs fields as options; their help is the field docstrings."""
    from gptbert.cli._args import add_dataclass_arguments

    # Reading TrainArgs needs gptbert.training (and torch); only done when this sub-parser
    # is actually used, via parse_known_args below.
    add_dataclass_arguments(parser, _train_args_class(), skip=("out_dir",), group="training")


def _add_task_option(parser: argparse.ArgumentParser) -> None:
    """``--task``, its choices from :data:`gptbert.tasks.TASKS` (imported, with torch, on first use)."""
    from gptbert.tasks import finetune_tasks

    parser.add_argument("--task", choices=finetune_tasks(), default="classify", help="task (default: classify)")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="run directory to write (refuses a non-empty one without --force)")
    p.add_argument("--force", action="store_true", help="write into an existing non-empty --out")
    p.add_argument("--tokenizer", help="tokenizer directory (default: the model's own, or one trained on the data)")
    p.add_argument("--vocab-size", type=int, default=None, help="vocabulary size of a tokenizer trained here (default 8000)")
    p.add_argument("--max-len", type=int, default=128,
                   help="maximum tokens per example / block (default: 128; finetune --recipe auto plans it "
                        "from the data when not given)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on standard output instead "
                                                       "of a short summary")
    p.add_argument("--track", action="append", choices=["tensorboard", "mlflow", "none"], default=None,
                   help="where to track the run (repeatable): tensorboard (the default: events under OUT/tb when "
                        "tensorboard is installed), mlflow (parameters, per-step metrics, final figures and the "
                        "run's files; needs gptbert[track]), none")
    p.add_argument("--track-uri", default=None, metavar="URI",
                   help="MLflow tracking URI or folder (default: $MLFLOW_TRACKING_URI, else the file store ./mlruns)")
    p.add_argument("--track-experiment", default="gptbert", metavar="NAME",
                   help="MLflow experiment to log the run under (default: %(default)s)")


class _TrainOptionsParser(argparse.ArgumentParser):
    """A sub-parser that adds the TrainArgs options on first use (keeps --help of gptbert fast)."""

    _added = False
    deferred: tuple = ()
    """More options added on first use (e.g. ``--task``, whose choices need the task modules)."""

    def _ensure(self) -> None:
        if not self._added:
            self._added = True
            for add in self.deferred:
                add(self)
            _add_train_options(self)

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        self._ensure()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._ensure()
        return super().format_help()


def register(sub: argparse._SubParsersAction) -> None:
    sub._parser_class = _TrainOptionsParser  # type: ignore[attr-defined]
    p = sub.add_parser(
        "pretrain", help=f"pre-train a model from scratch ({FAMILY_OBJECTIVES})",
        description=f"Pre-train with the family's objective: {FAMILY_OBJECTIVES}. Multi-process: "
                    "torchrun --nproc-per-node N -m gptbert pretrain ...",
    )
    p.add_argument("--model", required=True, help="preset (bert-mini, gpt-mini, elmo-small, ...) or a run/HF directory")
    p.add_argument("--data", required=True, nargs="+", help="plain-text corpus files")
    p.add_argument("--causal-fraction", type=float, default=None,
                   help="hybrid: the share of causal batches, the rest masked next-token (default 1/16, "
                        "Charpentier & Samuel 2024)")
    p.add_argument("--doc-mode", choices=["auto", "line", "blank"], default="auto",
                   help="a document is a line, or a block separated by blank lines (auto: guess)")
    _common(p)
    p.set_defaults(func=cmd_pretrain)

    f = sub.add_parser("finetune", help="fine-tune a preset, run directory or Hugging Face directory on a task")
    f.add_argument("--model", required=True, help="run directory, Hugging Face directory or preset (from scratch)")
    f.deferred = (_add_task_option,)  # type: ignore[attr-defined]
    f.add_argument("--train", required=True, help="training file (TSV/CSV/JSONL; SQuAD JSON for qa)")
    f.add_argument("--dev", help="dev file (default: a seeded 10%% split of --train)")
    f.add_argument("--text-column", default="text", help="text column of the task files (default: text)")
    f.add_argument("--text-pair-column", default=None, help="second-text column for pair tasks")
    f.add_argument("--label-column", default="label", help="label column (default: label)")
    f.add_argument("--skip-bad-rows", action="store_true", help="skip malformed rows (reported) instead of stopping")
    f.add_argument("--max-train", type=int, default=None, help="use at most this many training examples (seeded)")
    f.add_argument("--generator", default=None, metavar="RUN",
                   help="--task rerank: the generation run whose candidates the scorer learns to rank (its samples "
                        "are the negatives, the references the positives)")
    f.add_argument("--num-candidates", type=int, default=None, metavar="N",
                   help="--task rerank: candidates per source (default 8)")
    f.add_argument("--recipe", choices=["auto", "none"], default="auto",
                   help="auto (default): plan every setting you do not give for the budget -- pooling as the "
                        "checkpoint was trained, a linear-probe head, separate head lr, frozen word embeddings, "
                        "max_len from the data, batches of similar length (see gptbert.finetune_recipe); none: "
                        "the plain defaults")
    _common(f)
    f.set_defaults(func=cmd_finetune)
    sub._parser_class = argparse.ArgumentParser  # type: ignore[attr-defined]


def _check_out(args: argparse.Namespace) -> Path:
    from gptbert.io.files import check_writable_parent

    for option in ("vocab_size", "max_len", "max_train"):
        value = getattr(args, option, None)
        if value is not None and value < 1:
            raise CLIError(f"--{option.replace('_', '-')} {value}: expected a positive integer")
    out = Path(args.out)
    resume = getattr(args, "resume", False)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out}: exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not (args.force or resume):
        raise CLIError(f"{out} exists and is not empty (use --force to write into it, or --resume)")
    check_writable_parent(out / "x", option="--out")
    return out


@contextlib.contextmanager
def _removed_on_failure(out: Path) -> Iterator[None]:
    """A run that fails (bad data, divergence, any error but Ctrl-C) leaves no ``out`` folder it
    created, so the retry is not refused; an interrupted run keeps its checkpoint for --resume."""
    new = not out.exists() or not any(out.iterdir())
    try:
        yield
    except KeyboardInterrupt:
        raise
    except BaseException:
        if new and out.is_dir():
            shutil.rmtree(out, ignore_errors=True)
        raise


def _train_args(args: argparse.Namespace, out: Path):
    from gptbert.cli._args import dataclass_from_args

    TrainArgs = _train_args_class()
    try:
        targs = dataclass_from_args(TrainArgs, args, out_dir=str(out))
    except ValueError as e:
        raise CLIError(str(e)) from None
    if targs.max_steps is None and targs.max_epochs is None and targs.time_budget is None:
        targs.max_epochs = 1
    return targs


def _open_tracking(args: argparse.Namespace, targs, out: Path, params: dict) -> object | None:  # type: ignore[no-untyped-def]
    """Apply ``--track``: TensorBoard is ``targs.tensorboard`` (on unless --track leaves it out);
    MLflow opens a tracker (on rank 0) with the command's ``params`` logged. None: no MLflow."""
    tracks = set(args.track or ())
    if "none" in tracks and len(tracks) > 1:
        raise CLIError("--track none: cannot go with another --track")
    if tracks:
        targs.tensorboard = "tensorboard" in tracks
    if "mlflow" not in tracks:
        return None
    from gptbert.training import is_main_process

    if not is_main_process():
        return None
    from gptbert.tracking import open_tracker

    try:
        tracker = open_tracker("mlflow", uri=args.track_uri, experiment=args.track_experiment, run_name=out.name)
    except ImportError as e:
        raise CLIError(str(e)) from None
    tracker.log_params({k: v for k, v in params.items() if v is not None})
    return tracker


def _train_tracked(tracker, train):  # type: ignore[no-untyped-def]
    """``train(callbacks)``, fed to ``tracker`` (when there is one); a failure closes its run as failed."""
    if tracker is None:
        return train([])
    from gptbert.tracking import TrackingCallback

    try:
        return train([TrackingCallback(tracker)])
    except BaseException:
        tracker.close("failed")
        raise


def _finish_tracking(tracker, path: Path, data: dict, params: dict | None = None) -> None:  # type: ignore[no-untyped-def]
    """The final figures (``data``'s numbers) and the run directory's files; closes the run."""
    if tracker is None:
        return
    from gptbert.tracking import log_run

    if params:
        tracker.log_params(params)
    log_run(tracker, path, {k: v for k, v in data.items() if k not in ("recipe",)})
    tracker.close()


def cmd_pretrain(args: argparse.Namespace) -> int:
    from gptbert.recipes import pretrain

    out = _check_out(args)
    targs = _train_args(args, out)
    tracker = _open_tracking(args, targs, out, {"command": "pretrain", "model": args.model, "data": " ".join(args.data),
                                                "tokenizer": args.tokenizer, "vocab_size": args.vocab_size,
                                                "max_len": args.max_len, "doc_mode": args.doc_mode})

    def train(callbacks: list):  # type: ignore[no-untyped-def]
        return pretrain(args.model, args.data, out, targs, tokenizer=args.tokenizer, vocab_size=args.vocab_size,
                        max_len=args.max_len, mode=None if args.doc_mode == "auto" else args.doc_mode,
                        causal_fraction=args.causal_fraction, callbacks=callbacks)

    try:
        with _removed_on_failure(out):
            path, result = _train_tracked(tracker, train)
    except (ValueError, FileNotFoundError) as e:
        raise CLIError(str(e)) from None
    from gptbert.training import is_main_process

    if is_main_process():
        data = {"run": str(path), "steps": result.steps, "stop_reason": result.stop_reason,
                "tokens_per_s": round(result.tokens_per_s, 1), "wall_s": round(result.wall_time, 1),
                "dev": result.eval_metrics}
        _finish_tracking(tracker, path, data)
        facts = [(f"dev {k}", f"{v:.4g}") for k, v in result.eval_metrics.items() if isinstance(v, (int, float))]
        _print_result(args, data, f"pre-trained {args.model} on {', '.join(map(str, args.data))}", result, facts,
                      path)
    return 0


def _print_result(args: argparse.Namespace, data: dict, headline: str, result, facts: list, path: Path) -> None:  # type: ignore[no-untyped-def]
    """JSON under --json, else the short human summary of a training run."""
    from gptbert.cli.summary import format_run_summary, steps_text

    if args.json:
        print(json.dumps(data, indent=2, default=str))
        return
    rows = [("training", steps_text(result.steps, result.wall_time, result.stop_reason)),
            ("throughput", f"{result.tokens_per_s:,.0f} tokens/s"), *facts]
    if result.best_metric is not None and result.metric_name and result.metric_name != "loss":
        rows.append((f"best dev {result.metric_name}", f"{result.best_metric:.4g} (weights kept)"))
    print(format_run_summary(headline, rows, run_dir=path))


def cmd_finetune(args: argparse.Namespace) -> int:
    from gptbert.data.readers import DataError
    from gptbert.recipes import finetune

    out = _check_out(args)
    targs = _train_args(args, out)
    # The column options are the classification task's; other tasks ignore them.
    columns = {"text_column": args.text_column, "text_pair_column": args.text_pair_column,
               "label_column": args.label_column, "generator": args.generator}
    if args.num_candidates is not None:
        columns["num_candidates"] = args.num_candidates
    if args.task != "rerank" and (args.generator or args.num_candidates is not None):
        raise CLIError("--generator and --num-candidates go with --task rerank")
    tracker = _open_tracking(args, targs, out, {
        "command": "finetune", "model": args.model, "task": args.task, "train": args.train, "dev": args.dev,
        "tokenizer": args.tokenizer, "vocab_size": args.vocab_size, "recipe": args.recipe,
        "max_train": args.max_train, **columns})

    def train(callbacks: list):  # type: ignore[no-untyped-def]
        return finetune(
            args.model, args.task, args.train, out, targs, dev_path=args.dev, options=columns,
            tokenizer=args.tokenizer, vocab_size=args.vocab_size, max_len=args.max_len,
            skip_bad_rows=args.skip_bad_rows, max_train=args.max_train,
            recipe=None if args.recipe == "none" else "auto", explicit=getattr(args, "given", set()),
            callbacks=callbacks)

    try:
        with _removed_on_failure(out):
            path, result, extra = _train_tracked(tracker, train)
    except (ValueError, FileNotFoundError, DataError) as e:
        raise CLIError(str(e)) from None
    dev = {k: v for k, v in extra.get("dev", {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    plan = extra.get("recipe")
    data = {"run": str(path), "steps": result.steps, "stop_reason": result.stop_reason,
            "tokens_per_s": round(result.tokens_per_s, 1), "wall_s": round(result.wall_time, 1), "dev": dev,
            "recipe": plan.to_dict() if plan is not None else None}
    n = dev.get("n")
    facts = [(f"dev {k}", f"{v:.4g}" + (f" ({int(n):,} rows)" if n else "")) for k, v in dev.items()
             if k in ("accuracy", "macro_f1", "f1", "exact_match", "rougeL", "chrf", "plain_chrf", "weight", "loss",
                      "perplexity")]
    if plan is not None:
        facts.append(("recipe", f"{plan.kind}: lr {plan.lr:g}" + (f", head {plan.head_lr:g}" if plan.head_lr else "")
                      + f", max_len {plan.max_len}" + (", linear-probe head" if plan.probe else "")
                      + (", frozen word embeddings" if plan.freeze_embeddings else "")))
    plan_params = {"max_len": plan.max_len if plan is not None else args.max_len}
    if plan is not None:
        plan_params["plan"] = {k: v for k, v in plan.to_dict().items() if k not in ("reasons", "probe_result")}
    _finish_tracking(tracker, path, data, plan_params)
    _print_result(args, data, f"fine-tuned {args.model} on {args.train} ({args.task})", result, facts, path)
    return 0

"""``gptbert predict`` and ``gptbert evaluate``: use and score any run directory."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gptbert.cli import CLIError
from gptbert.cli._args import (
    DATA_FORMATS_HELP,
    add_column_options,
    add_json_options,
    check_json_out,
    column_options,
    data_spec,
    write_json_out,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict", help="run a trained model on texts: labels, tags, answers, summaries, generations",
        description="One JSON line per input, for the run's task: classify -> label and scores; tokens -> "
                    "(word, tag) pairs and entities; qa -> answer, score, character offsets; generate -> "
                    "output (GPT) or extractive summary (BERT); a BERT pre-training run fills [MASK]; a GPT "
                    "LM continues the prompt.",
    )
    p.add_argument("run", help="run directory (or Hugging Face directory)")
    p.add_argument("--text", nargs="+", default=None, help="input text(s)")
    p.add_argument("--input", help=f"input file: .txt (one input a line), a table ({DATA_FORMATS_HELP}) with a "
                                   "text column (source for generation runs, question and context for qa), "
                                   "SQuAD .json for qa, CoNLL for tokens")
    add_column_options(p, labels=False, from_run=True)
    p.add_argument("--question", help="qa: the question (with --context or --context-file)")
    p.add_argument("--context", help="qa: the context text")
    p.add_argument("--context-file", help="qa: read the context from this file")
    p.add_argument("--out", help="write the JSON lines here instead of standard output (an existing file is "
                                 "replaced only with --force)")
    p.add_argument("--force", action="store_true", help="replace an existing --out file")
    p.add_argument("--max-new-tokens", type=int, default=None, help="generation: new tokens at most")
    p.add_argument("--num-beams", type=int, default=None, help="generation: beam search width")
    p.add_argument("--temperature", type=float, default=None, help="generation: sample at this temperature")
    p.add_argument("--top-k", type=int, default=None, help="fill-mask: candidates to list; generation: top-k sampling")
    p.add_argument("--k", type=int, default=None, help="extractive summaries: sentences to pick")
    p.add_argument("--top-windows", type=int, default=None, metavar="K",
                   help="extractive qa: read only the K windows of a long context that share the most question words "
                        "(default: every window)")
    p.add_argument("--seed", type=int, default=None, help="generation: seed of the sampler (reproducible samples)")
    p.add_argument("--rerank", default=None, metavar="SCORER_RUN",
                   help="generation: generate-then-rerank; RUN proposes --num-candidates outputs, this scorer (a "
                        "'rerank' run or a 2-label classify run) scores (input, candidate) pairs, and the fused score "
                        "picks one (each line also has the plain output and every candidate's scores)")
    p.add_argument("--num-candidates", type=int, default=None, metavar="N",
                   help="reranking: candidates per input (default: the scorer's, else 8)")
    p.add_argument("--rerank-method", choices=["sample", "beam"], default=None,
                   help="reranking: 'sample' (greedy output + N-1 samples, the default) or 'beam' (N beam hypotheses)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.set_defaults(func=cmd_predict)

    e = sub.add_parser(
        "evaluate", help="score a run on a labelled file with its task's metrics",
        description="classify: accuracy, macro-F1, MCC, confusion matrix; tokens: entity precision/recall/F1; "
                    "qa: SQuAD exact match / F1 (all and answerable questions); generate: ROUGE-1/2/L, BLEU, "
                    "chrF; a .txt file (or a pre-training run): perplexity and bits per character (GPT), "
                    "MLM accuracy (BERT). Prints a table and writes the full result as JSON to "
                    "RUN/eval-<data file name>.json (--json-out PATH: there instead; --json: on standard output only).",
    )
    e.add_argument("run", help="run directory (or Hugging Face directory)")
    e.add_argument("--data", required=True, help=f"labelled file in the task's format: {DATA_FORMATS_HELP} "
                                                  "(.txt for LM metrics)")
    add_column_options(e, from_run=True)
    add_json_options(e, "the result")
    e.add_argument("--force", action="store_true", help="replace an existing --json-out file")
    e.add_argument("--max-examples", type=int, default=None, help="score only the first N examples")
    e.add_argument("--max-chars", type=int, default=None, help="LM metrics: use only the first N characters")
    e.add_argument("--max-new-tokens", type=int, default=None, help="generation: new tokens at most")
    e.add_argument("--num-beams", type=int, default=None, help="generation: beam search width")
    e.add_argument("--top-windows", type=int, default=None, metavar="K",
                   help="extractive qa: read only the K windows of a long context that share the most question words "
                        "(default: every window)")
    e.add_argument("--batch-size", type=int, default=32, help="examples per model call (default 32)")
    e.add_argument("--skip-bad-rows", action="store_true", help="skip malformed rows instead of stopping")
    e.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    e.set_defaults(func=cmd_evaluate)


def _load(path: str, device: str) -> Any:
    from gptbert.run import load_run

    try:
        return load_run(path, device=device)
    except (FileNotFoundError, ValueError) as e:
        raise CLIError(str(e)) from None


def read_inputs(path: str | Path, run: Any, columns: dict[str, Any] | None = None) -> list[Any]:
    """Prediction inputs of a file (``folder:split`` too), read by the run's task: a table in any
    registered format (its text column), SQuAD .json for qa, CoNLL for tokens, else one input a line."""
    from gptbert.data.readers.registry import split_path
    from gptbert.tasks import TASKS, task_of

    if not split_path(path)[0].exists():
        from gptbert.io.files import missing_file_message

        raise CLIError(missing_file_message(Path(path), option="--input"))
    try:
        task = TASKS[run.task.task] if run.task.task in TASKS else task_of(run)
        return task.read_inputs(Path(path), columns, task.options_of(run))
    except (ValueError, FileNotFoundError) as e:
        raise CLIError(str(e)) from None


def cmd_predict(args: argparse.Namespace) -> int:
    from gptbert.cli._args import check_out_file, read_text_option
    from gptbert.recipes import predict

    out = check_out_file(args.out, force=args.force) if args.out else None
    for option in ("max_new_tokens", "num_beams", "top_k", "k"):
        value = getattr(args, option)
        if value is not None and value < 1:
            raise CLIError(f"--{option.replace('_', '-')} {value}: expected a positive integer")
    if args.temperature is not None and args.temperature < 0:
        raise CLIError(f"--temperature {args.temperature}: expected a number >= 0")
    if args.question or args.context or args.context_file:
        if not args.question or not (args.context or args.context_file):
            raise CLIError("--question needs --context or --context-file (and the other way round)")
    context = read_text_option(args.context_file, "--context-file") if args.context_file and not args.context else None
    run = _load(args.run, args.device)
    inputs: list[Any] = []
    if args.question:
        context = args.context if args.context else context
        inputs.append({"question": args.question, "context": context})
    if args.text:
        inputs.extend(args.text)
    if args.input:
        columns = column_options(args)
        split = columns.pop("split")
        read = read_inputs(data_spec(args.input, split), run, columns)
        if not read:
            raise CLIError(f"--input {args.input}: no inputs in the file")
        inputs.extend(read)
    if not inputs:
        raise CLIError("nothing to predict: give --text, --input or --question/--context")
    opts = {"max_new_tokens": args.max_new_tokens, "num_beams": args.num_beams, "temperature": args.temperature,
            "top_k": args.top_k, "k": args.k, "seed": args.seed, "top_windows": args.top_windows}
    if args.temperature:
        opts["do_sample"] = True
    if run.model is not None and run.config.head not in ("pretrain", "mlm") and args.top_k is not None:
        opts["do_sample"] = True
    if args.rerank is not None:
        if args.num_candidates is not None and args.num_candidates < 1:
            raise CLIError(f"--num-candidates: expected at least 1, got {args.num_candidates}")
        opts.update(rerank=_load(args.rerank, args.device), num_candidates=args.num_candidates,
                    method=args.rerank_method)
    elif args.num_candidates is not None or args.rerank_method is not None:
        raise CLIError("--num-candidates and --rerank-method go with --rerank SCORER_RUN")
    try:
        results = predict(run, inputs, **{k: v for k, v in opts.items() if v is not None})
    except (ValueError, TypeError) as e:
        raise CLIError(str(e)) from None
    lines = [json.dumps(r, ensure_ascii=False) for r in results]
    if out is not None:
        from gptbert.io.files import atomic_write_text

        atomic_write_text(out, "\n".join(lines) + "\n")
        print(f"wrote {len(lines)} predictions to {out}", file=sys.stderr)
    else:
        for line in lines:
            print(line)
    return 0


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 1000 else f"{v:.1f}"
    return str(v)


def format_table(result: dict[str, Any]) -> str:
    """Scalar metrics as a two-column table, then a confusion matrix or per-type scores when present."""
    rows = [(k, _fmt(v)) for k, v in result.items()
            if isinstance(v, (int, float, str)) and not isinstance(v, bool) and k not in ("data",)]
    width = max(len(k) for k, _ in rows) if rows else 6
    lines = [f"{'metric'.ljust(width)}  value", f"{'-' * width}  {'-' * 10}"]
    lines += [f"{k.ljust(width)}  {v}" for k, v in rows]
    if "per_type" in result and result["per_type"]:
        lines += ["", "entity type      precision  recall  f1      support"]
        for name, s in result["per_type"].items():
            lines.append(f"{name[:15].ljust(15)}  {s['precision']:.4f}     {s['recall']:.4f}  {s['f1']:.4f}  "
                         f"{s['support']}")
    if "confusion_matrix" in result and "labels" in result:
        labels = [str(x) for x in result["labels"]]
        if len(labels) <= 12:
            w = max(6, *(len(x) for x in labels))
            lines += ["", "confusion matrix (rows: true, columns: predicted)",
                      " " * w + "  " + "  ".join(x[:w].rjust(w) for x in labels)]
            for lab, row in zip(labels, result["confusion_matrix"]):
                lines.append(lab[:w].ljust(w) + "  " + "  ".join(str(c).rjust(w) for c in row))
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from gptbert.data.readers import DataError
    from gptbert.io.files import atomic_write_json
    from gptbert.recipes import evaluate

    for option in ("batch_size", "max_examples", "max_chars", "max_new_tokens", "num_beams"):
        value = getattr(args, option)
        if value is not None and value < 1:
            raise CLIError(f"--{option.replace('_', '-')} {value}: expected a positive integer")
    json_out = check_json_out(args)
    columns = column_options(args)
    data = data_spec(args.data, columns.pop("split"))
    run = _load(args.run, args.device)
    opts = {"max_examples": args.max_examples, "max_chars": args.max_chars, "max_new_tokens": args.max_new_tokens,
            "num_beams": args.num_beams, "batch_size": args.batch_size, "skip_bad_rows": args.skip_bad_rows,
            "top_windows": args.top_windows}
    try:
        result = evaluate(run, data, columns=columns, **{k: v for k, v in opts.items() if v is not None})
    except (ValueError, FileNotFoundError, DataError) as e:
        raise CLIError(str(e)) from None
    except ImportError as e:
        raise CLIError(f"{e} (the metrics need: pip install 'gptbert[metrics]')") from None
    result["run"] = str(run.path)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(format_table(result))
    if json_out is not None:
        write_json_out(json_out, result, args)
    elif not args.json:
        out = Path(run.path) / f"eval-{Path(data).name.replace(':', '-')}.json"
        try:
            atomic_write_json(out, result)
        except OSError as e:
            raise CLIError(f"cannot write {out}: {e}") from None
        print(f"\nwrote {out}")
    return 0

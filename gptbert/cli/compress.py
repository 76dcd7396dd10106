"""``gptbert compress RUN_DIR --method ... --out DIR``: a compressed run every command loads."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from gptbert.cli import CLIError
from gptbert.cli._args import add_json_options, check_json_out, write_json_out

METHODS = ("bf16", "int8-dynamic", "int8-weight-only", "prune-magnitude", "prune-heads", "distill", "export")
PRUNING = ("prune-magnitude", "prune-heads")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "compress", help="bf16, int8, pruning or export of a run (size / speed / quality reported side by side)",
        description="Compress a run directory into a new one that every other command loads, and report "
                    "size, latency and (with --dev) quality next to the original. --method distill trains "
                    "--student on --train with the run as the teacher (soft targets at --temperature, "
                    "weighted --alpha, plus the hard labels).",
    )
    p.add_argument("run", help="run directory (or Hugging Face directory)")
    p.add_argument("--method", required=True, choices=METHODS,
                   help="bf16 / int8-dynamic / int8-weight-only: lower-precision weights; prune-magnitude / "
                        "prune-heads: pruning; distill: train --student; export: ONNX or TorchScript file")
    p.add_argument("--out", required=True, help="output directory (must not exist unless --force)")
    p.add_argument("--force", action="store_true", help="write into --out even if it is not empty")
    p.add_argument("--sparsity", type=float, default=0.5, help="prune-magnitude: share of weights set to zero")
    p.add_argument("--scope", choices=["global", "layer"], default="global", help="prune-magnitude: one threshold or one per layer")
    p.add_argument("--heads", type=int, default=1, help="prune-heads: attention heads to remove (by importance)")
    p.add_argument("--format", choices=["onnx", "onnx-int8", "torchscript"], default="onnx",
                   help="export: onnx / onnx-int8 (ONNX Runtime's dynamic int8): a run directory every command "
                        "loads, run by ONNX Runtime; torchscript: model.pt only")
    p.add_argument("--dev", help="labelled dev file: report quality of the original and the compressed model")
    p.add_argument("--max-examples", type=int, default=None,
                   help="--dev: score only the first N rows (default: every row; the count is always reported)")
    add_json_options(p, "the measurements")
    d = p.add_argument_group("training (distill; prune-* recovery fine-tuning when --train is given)")
    d.add_argument("--student", help="distill: a preset (bert-mini, gpt-mini, ...) or a run/HF directory")
    d.add_argument("--train", help="labelled training file (the run's columns and labels): distill trains the "
                                   "student on it; prune-magnitude / prune-heads fine-tune on it afterwards to "
                                   "recover (pruned weights stay zero) and prune-heads ranks heads by gradient")
    d.add_argument("--importance-batches", type=int, default=8,
                   help="prune-heads with --train: training batches used to score the heads (default 8)")
    d.add_argument("--temperature", type=float, default=2.0, help="softmax temperature of the soft targets (default 2)")
    d.add_argument("--alpha", type=float, default=0.5, help="weight of the soft loss; 1 - alpha on the hard labels (default 0.5)")
    d.add_argument("--max-train", type=int, default=None, help="use at most this many training examples (seeded)")
    d.add_argument("--max-len", type=int, default=None, help="student's maximum tokens per example (default: the teacher's)")
    d.add_argument("--tokenizer", help="student tokenizer directory (default: the teacher's when the kinds match, "
                                       "else one trained on --train)")
    d.add_argument("--vocab-size", type=int, default=None, help="size of a student tokenizer trained here (default 8000)")
    d.add_argument("--time-budget", default=None, help="wall-clock training budget, e.g. 5m")
    d.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps")
    d.add_argument("--max-epochs", type=int, default=None, help="default 1 when no other limit is set")
    d.add_argument("--lr", type=float, default=None,
                   help="learning rate (default 1e-3 for a preset student, else 5e-5)")
    d.add_argument("--batch-size", type=int, default=32, help="training batch size (default 32)")
    d.add_argument("--eval-every", type=int, default=0, help="evaluate every N steps (0: each epoch and at the end)")
    d.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="training precision (default fp32; bf16: autocast)")
    d.add_argument("--seed", type=int, default=0, help="seed of the data order, initialisation and --max-train "
                                                       "sample (default 0)")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_compress)


def _training(args: argparse.Namespace) -> dict[str, Any]:
    """The --max-steps ... --no-progress flags as training_args keywords (lr None: the method's default)."""
    return {"lr": args.lr, "max_steps": args.max_steps, "max_epochs": args.max_epochs,
            "time_budget": args.time_budget, "batch_size": args.batch_size, "precision": args.precision,
            "seed": args.seed, "eval_every": args.eval_every, "progress": not args.no_progress}


def cmd_compress(args: argparse.Namespace) -> int:
    from gptbert.run import load_run

    from gptbert.io.files import OutputExistsError, OutputPathError, check_new_output

    try:
        out = check_new_output(args.out, force=args.force, kind="dir", option="--out")
    except (OutputExistsError, OutputPathError) as e:
        raise CLIError(str(e)) from None
    checks = (("--sparsity", args.sparsity, 0 <= args.sparsity < 1, "a share in [0, 1)"),
              ("--heads", args.heads, args.heads >= 0, "a number of heads >= 0"),
              ("--temperature", args.temperature, args.temperature > 0, "a number > 0"),
              ("--alpha", args.alpha, 0 <= args.alpha <= 1, "a weight in [0, 1]"))
    for option, value, ok, expected in checks:
        if not ok:  # before the (slow) load of the run
            raise CLIError(f"{option} {value}: expected {expected}")
    json_out = check_json_out(args)
    if args.method == "distill" and not (args.student and args.train):
        raise CLIError("--method distill needs --student PRESET|DIR and --train FILE")
    if args.max_examples is not None and args.max_examples < 1:
        raise CLIError(f"--max-examples must be positive, got {args.max_examples}")
    try:
        run = load_run(args.run)
    except (FileNotFoundError, ValueError) as e:
        raise CLIError(str(e)) from None
    if run.tokenizer is None:
        raise CLIError(f"{args.run}: no tokenizer files")
    start = time.monotonic()
    report = _compress(args, run, out)
    report["wall_s"] = round(time.monotonic() - start, 1)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(format_compress_summary(report, args.run))
    if json_out is not None:
        write_json_out(json_out, report, args)
    return 0


def _compress(args: argparse.Namespace, run: Any, out: Path) -> dict[str, Any]:
    """Compress ``run`` as ``args`` say and measure both sides: the report ``--json`` prints."""
    from gptbert.compress import compress
    from gptbert.compress.evaluate import dev_set, measure
    from gptbert.compress.runs import distill_run, export_run, recover, save_compressed_run
    from gptbert.data.readers import DataError
    from gptbert.io.layout import WEIGHTS_FILE

    try:
        texts, scored = dev_set(run, args.dev, args.max_examples)
        before = measure(run, Path(args.run) / WEIGHTS_FILE, texts, scored)
        if args.method == "distill":
            report = distill_run(
                args.run, args.student, args.train, out, _training(args), texts=texts, scored=scored,
                dev_path=args.dev, tokenizer=args.tokenizer, vocab_size=args.vocab_size, max_len=args.max_len,
                temperature=args.temperature, alpha=args.alpha, max_train=args.max_train)
            head = {k: report.pop(k) for k in ("out", "student", "steps", "stop_reason")}
            return {"method": "distill", **head, "original": before, **report}
        if args.method == "export":
            return {"method": "export", "format": args.format, "original": before,
                    **export_run(run, out, args.format, texts, scored)}
        opts: dict[str, Any] = {}
        if args.method == "prune-magnitude":
            opts = {"sparsity": args.sparsity, "scope": args.scope}
        elif args.method == "prune-heads":
            opts = {"heads": args.heads}
            if args.train:  # gradient-based head importance on training batches
                from gptbert.recipes import classify_batches

                opts["batches"] = classify_batches(run, args.train, n=args.importance_batches, seed=args.seed)
        model, info = compress(run.model, args.method, **opts)
        if args.train and args.method in PRUNING:
            info["recovery"] = recover(run, model, args.method, args.train, _training(args), dev_path=args.dev,
                                       max_train=args.max_train)
        after = save_compressed_run(model, info, args.run, out, texts, scored)
    except (ValueError, FileNotFoundError, DataError) as e:
        raise CLIError(str(e)) from None
    return {"method": args.method, "out": str(out), "original": before, "compressed": after, "info": info}


def _side_by_side(before: dict[str, Any], after: dict[str, Any] | None) -> list[tuple[str, str | None]]:
    """Size, latency, throughput and dev accuracy of the original next to the compressed run."""
    from gptbert.cli.summary import before_after, quality_text

    after = after or {}
    lat = [f"{q} {before_after(before.get(k), after.get(k), 'ms', kind='latency')}"
           for q, k in (("p50", "latency_ms_bs1"), ("p95", "latency_ms_bs1_p95"))]
    facts: list[tuple[str, str | None]] = [
        ("size on disk", before_after(before.get("size_mb"), after.get("size_mb"), "MB")),
        ("latency, batch 1", "; ".join(lat)),
        ("throughput, batch 32", before_after(before.get("throughput_bs32"), after.get("throughput_bs32"),
                                              "items/s", kind="rate")),
    ]
    if "dev" in before or "dev" in after:
        rows = after.get("dev_rows", before.get("dev_rows"))
        change = _points(before.get("dev"), after.get("dev"))
        values = " -> ".join(quality_text(side["dev"], None) for side in (before, after) if "dev" in side)
        facts.append(("dev accuracy", f"{values} ({rows:,} rows{change})"))
    return facts


def _points(before: float | None, after: float | None) -> str:
    if before is None or after is None:
        return ""
    d = round((after - before) * 100, 1)
    return "; the same" if d == 0 else f"; {abs(d):.1f} points {'higher' if d > 0 else 'lower'}"


def format_compress_summary(report: dict[str, Any], run_dir: str) -> str:
    """What ``gptbert compress`` prints without ``--json``: what was done, the original and the
    compressed run side by side, and where the new run is."""
    from gptbert.cli.summary import before_after, format_run_summary, quality_text, steps_text
    from gptbert.training.args import format_duration

    method, took = report["method"], format_duration(report.get("wall_s", 0.0))
    if method == "export":
        headline = f"exported {run_dir} to {report['format']} in {took} (outputs checked against PyTorch)"
        if "compressed" not in report:  # TorchScript: a file for other programs
            facts = [("size on disk", before_after(report["original"]["size_mb"], report["size_mb"], "MB")),
                     ("file", report["exported"])]
            return format_run_summary(headline, facts)
        facts = [("engine", "ONNX Runtime (predict, evaluate, serve and info load the directory)"),
                 *_side_by_side(report["original"], report["compressed"])]
        return format_run_summary(headline, facts, run_dir=report["out"])
    if method == "distill":
        headline = f"distilled {run_dir} into {report['student']} in {took}"
        rows = report.get("dev_rows")
        facts = [("training", steps_text(report["steps"], report.get("train_s", 0.0), report["stop_reason"])),
                 ("teacher dev accuracy", quality_text(report.get("teacher_dev_accuracy"), rows)),
                 ("student dev accuracy", quality_text(report.get("student_dev_accuracy"), rows)),
                 ("scored on", report.get("dev_on")),
                 *_side_by_side(report["original"], report["compressed"])]
        return format_run_summary(headline, facts, run_dir=report["out"])
    info = report.get("info", {})
    headline = f"compressed {run_dir} with {method} in {took}"
    facts = _side_by_side(report["original"], report["compressed"])
    if "params_before" in info:
        facts.insert(0, ("parameters", f"{info['params_before']:,} -> {info['params_after']:,}"
                                       + (f" ({info['sparsity']:.0%} of the pruned weights zero)"
                                          if "sparsity" in info else "")))
    rec = info.get("recovery")
    if rec:
        facts.append(("recovery fine-tuning", steps_text(rec["steps"], rec.get("train_s", 0.0), rec["stop_reason"])
                      + f", best dev accuracy {quality_text(rec.get('best'), rec.get('best_dev_rows'))}"))
    if "dev" not in report["original"]:
        facts.append(("dev accuracy", "not measured (give --dev FILE with a classifier run)"))
    return format_run_summary(headline, facts, run_dir=report["out"])

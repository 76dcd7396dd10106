"""``gptbert compress RUN_DIR --method ... --out DIR``: a compressed run every command loads."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gptbert.cli import CLIError

METHODS = ("bf16", "int8-dynamic", "int8-weight-only", "prune-magnitude", "prune-heads", "distill", "export")
COPIED = ("task.json", "labels.json", "tokenizer.json", "vocab.txt", "vocab.json", "merges.txt",
          "gptbert_tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "compress", help="bf16, int8, pruning or export of a run (size / speed / quality reported side by side)",
        description="Compress a run directory into a new one that every other command loads, and report "
                    "size, latency and (with --dev) quality next to the original. --method distill trains "
                    "--student on --train with the run as the teacher (soft targets at --temperature, "
                    "weighted --alpha, plus the hard labels).",
    )
    p.add_argument("run", help="run directory (or Hugging Face directory)")
    p.add_argument("--method", required=True, choices=METHODS)
    p.add_argument("--out", required=True, help="output directory (must not exist unless --force)")
    p.add_argument("--force", action="store_true")
    p.add_argument("--sparsity", type=float, default=0.5, help="prune-magnitude: share of weights set to zero")
    p.add_argument("--scope", choices=["global", "layer"], default="global", help="prune-magnitude: one threshold or one per layer")
    p.add_argument("--heads", type=int, default=1, help="prune-heads: attention heads to remove (by importance)")
    p.add_argument("--format", choices=["onnx", "torchscript"], default="onnx", help="export: file format")
    p.add_argument("--dev", help="labelled dev file: report quality of the original and the compressed model")
    p.add_argument("--max-examples", type=int, default=500, help="--dev: score at most this many examples")
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
    d.add_argument("--max-steps", type=int, default=None)
    d.add_argument("--max-epochs", type=int, default=None, help="default 1 when no other limit is set")
    d.add_argument("--lr", type=float, default=None,
                   help="learning rate (default 1e-3 for a preset student, else 5e-5)")
    d.add_argument("--batch-size", type=int, default=32)
    d.add_argument("--eval-every", type=int, default=0, help="evaluate every N steps (0: each epoch and at the end)")
    d.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_compress)


PROBE_TEXTS = ("a short example sentence .", "the plot moves slowly but the acting is strong",
               "i would not watch it again", "an honest , funny and moving film about growing up")


def _dev_set(args: argparse.Namespace, run) -> tuple[list[str], list]:  # type: ignore[no-untyped-def]
    """(timing texts, scored examples), read once from --dev in the run's columns and labels.

    Timing uses the first 64 texts (a few fixed sentences without --dev); quality the first
    --max-examples labelled examples (none without --dev or for a non-classifier run).
    """
    if not args.dev:
        return list(PROBE_TEXTS), []
    from gptbert.data.readers import LabelMap
    from gptbert.tasks import TASKS
    from gptbert.tasks.classify import examples_of, read_file

    data = read_file(args.dev, TASKS["classify"].options_of(run), skip_bad_rows=True)
    texts = list(data.texts[:64]) or list(PROBE_TEXTS)
    if run.config.head != "classify":
        return texts, []
    labels = LabelMap(run.labels) if run.labels else LabelMap.from_data(data)
    return texts, examples_of(data, labels)[: args.max_examples]


def _speed(run, texts: list[str]) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Batch-1 latency (p50 / p95 over the texts in turn) and batch-32 throughput of the forward pass."""
    import itertools

    import torch

    from gptbert.measure import latency_stats, throughput, time_callable
    from gptbert.tasks.classify import make_collator

    collate = make_collator(run.tokenizer, run.config, run.task.max_len)

    def inputs(batch: list[str]) -> dict:
        b = collate([(t, None, None) for t in batch])
        return {k: v for k, v in b.items() if k not in ("targets", "next_sentence_label")}

    singles = [inputs([t]) for t in texts[:16]]
    big = inputs([texts[i % len(texts)] for i in range(32)])
    turn = itertools.cycle(singles)
    with torch.inference_mode():
        lat = latency_stats(time_callable(lambda: run.model(**next(turn)), warmup=3, repeats=30))
        tput = throughput(lambda: run.model(**big), 32, warmup=1, repeats=3)
    return {"latency_ms_bs1": round(lat["p50_ms"], 3), "latency_ms_bs1_p95": round(lat["p95_ms"], 3),
            "throughput_bs32": round(tput, 1)}


def cmd_compress(args: argparse.Namespace) -> int:
    from gptbert.compress import compress, save_compressed
    from gptbert.measure import saved_size_mb
    from gptbert.run import load_run
    from gptbert.tasks.classify import make_collator

    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.force:
        raise CLIError(f"{out} exists and is not empty (use --force)")
    try:
        run = load_run(args.run)
    except (FileNotFoundError, ValueError) as e:
        raise CLIError(str(e)) from None
    if run.tokenizer is None:
        raise CLIError(f"{args.run}: no tokenizer files")
    example = make_collator(run.tokenizer, run.config, run.task.max_len)([(PROBE_TEXTS[0], None, None)])
    texts, scored = _dev_set(args, run)
    before = {"size_mb": saved_size_mb(Path(args.run) / "model.safetensors"), **_speed(run, texts)}
    if scored:
        before["dev"] = _quality(run, scored)

    if args.method == "distill":
        return _distill(args, run, out, before, texts, scored)

    if args.method == "export":
        from gptbert.compress.export import export_onnx, export_torchscript

        out.mkdir(parents=True, exist_ok=True)
        inputs = {k: v for k, v in example.items() if k not in ("targets",)}
        path = out / ("model.onnx" if args.format == "onnx" else "model.pt")
        (export_onnx if args.format == "onnx" else export_torchscript)(run.model, path, inputs)
        print(json.dumps({"exported": str(path), "checked_against_pytorch": True, "size_mb": saved_size_mb(path)}, indent=2))
        return 0

    opts: dict = {}
    if args.method == "prune-magnitude":
        opts = {"sparsity": args.sparsity, "scope": args.scope}
    elif args.method == "prune-heads":
        opts = {"heads": args.heads}
        if args.train:  # gradient-based head importance on training batches
            from gptbert.recipes import classify_batches

            opts["batches"] = classify_batches(run, args.train, n=args.importance_batches, seed=args.seed)
    model, info = compress(run.model, args.method, **opts)
    if args.train and args.method in ("prune-magnitude", "prune-heads"):
        info["recovery"] = _recover(args, run, model, out)
    extra = {name: Path(args.run) / name for name in COPIED if (Path(args.run) / name).exists()}
    save_compressed(model, out, info, extra_files=extra)
    compressed = load_run(out)
    after = {"size_mb": saved_size_mb(out / "model.safetensors"), **_speed(compressed, texts)}
    if scored:
        after["dev"] = _quality(compressed, scored)
    print(json.dumps({"method": args.method, "out": str(out), "original": before, "compressed": after,
                      "info": info}, indent=2, default=str))
    return 0


def _train_args(args: argparse.Namespace, out: Path, lr: float):  # type: ignore[no-untyped-def]
    from gptbert.train import TrainArgs

    if args.max_steps is None and args.max_epochs is None and args.time_budget is None:
        args.max_epochs = 1
    try:
        return TrainArgs(max_steps=args.max_steps, max_epochs=args.max_epochs, time_budget=args.time_budget,
                         lr=args.lr if args.lr is not None else lr, batch_size=args.batch_size,
                         precision=args.precision, seed=args.seed, eval_every=args.eval_every,
                         progress=not args.no_progress, out_dir=str(out), warmup_ratio=0.06, eval_metric="accuracy",
                         save_every=0, tensorboard=False)
    except ValueError as e:
        raise CLIError(str(e)) from None


def _recover(args: argparse.Namespace, run, model, out: Path) -> dict:  # type: ignore[no-untyped-def]
    """Recovery fine-tuning of a pruned classifier on --train (pruned weights kept at zero)."""
    import tempfile

    from gptbert.compress import KeepPrunedZero, masks_from_zeros, sparsity
    from gptbert.data.readers import DataError
    from gptbert.recipes import recovery_finetune

    callbacks = [KeepPrunedZero(masks_from_zeros(model))] if args.method == "prune-magnitude" else []
    with tempfile.TemporaryDirectory(prefix="gptbert-recover-") as tmp:  # its checkpoints are not the output
        targs = _train_args(args, Path(tmp), lr=5e-5)
        try:
            result = recovery_finetune(model, run, args.train, targs, dev_path=args.dev, max_train=args.max_train,
                                       callbacks=callbacks)
        except (ValueError, FileNotFoundError, DataError) as e:
            raise CLIError(str(e)) from None
    rec = {"steps": result.steps, "stop_reason": result.stop_reason, "train_s": round(result.wall_time, 1),
           "best": result.best_metric}
    if args.method == "prune-magnitude":
        rec["sparsity_after"] = sparsity(model)
    return rec


def _distill(args: argparse.Namespace, run, out: Path, before: dict, texts: list[str],  # type: ignore[no-untyped-def]
             scored: list) -> int:
    from gptbert.data.readers import DataError
    from gptbert.measure import saved_size_mb
    from gptbert.recipes import distill
    from gptbert.run import load_run
    from gptbert.config import PRESETS

    if not args.student or not args.train:
        raise CLIError("--method distill needs --student PRESET|DIR and --train FILE")
    targs = _train_args(args, out, lr=1e-3 if args.student in PRESETS else 5e-5)
    try:
        path, result, extra = distill(
            args.run, args.student, args.train, out, targs, dev_path=args.dev, tokenizer=args.tokenizer,
            vocab_size=args.vocab_size, max_len=args.max_len, temperature=args.temperature, alpha=args.alpha,
            skip_bad_rows=True, max_train=args.max_train)
    except (ValueError, FileNotFoundError, DataError) as e:
        raise CLIError(str(e)) from None
    student = load_run(path)
    after = {"size_mb": saved_size_mb(path / "model.safetensors"), **_speed(student, texts)}
    if scored:  # the teacher's label map: the student was trained with it
        after["dev"] = _quality(student, scored)
    print(json.dumps({"method": "distill", "out": str(path), "student": args.student, "steps": result.steps,
                      "stop_reason": result.stop_reason, "original": before, "compressed": after,
                      "teacher_dev_accuracy": extra["teacher_dev"].get("accuracy"),
                      "student_dev_accuracy": extra["dev"].get("accuracy")}, indent=2, default=str))
    return 0


def _quality(run, examples: list) -> float:  # type: ignore[no-untyped-def]
    from gptbert.tasks.classify import evaluate

    return evaluate(run.model, run.tokenizer, examples, max_len=run.task.max_len)["accuracy"]

"""Pre-training and fine-tuning as functions: the CLI and ``compare`` both call these.

Both go through the one training loop (:func:`gptbert.training.fit`) and write a run
directory (:mod:`gptbert.run`) that every other command loads.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from gptbert.config import PRESETS, ModelConfig
from gptbert.run import Run, TaskInfo, load_run, pretrain_head, save_run, with_head
from gptbert.tasks.registry import prepare_args
from gptbert.tokenizer import Tokenizer
from gptbert.training import FitResult, TrainArgs, fit

DEFAULT_VOCAB = 8000


@dataclass
class Source:
    """Where a model starts: a preset (random init) or a saved run / Hugging Face directory."""

    model: nn.Module
    tokenizer: Tokenizer
    pretrained: bool
    name: str


def tokenizer_kind(family: str) -> str:
    return "bpe" if family == "gpt" else "wordpiece"


def resolve_source(
    spec: str,
    *,
    head: str | None,
    num_labels: int = 2,
    tokenizer: str | Tokenizer | None = None,
    vocab_size: int | None = None,
    texts: Sequence[str] | None = None,
    files: Sequence[str] | None = None,
    max_len: int = 128,
    seed: int = 0,
    overrides: dict[str, Any] | None = None,
) -> Source:
    """Build or load the model named by ``spec`` with ``head`` on top.

    A preset gets a tokenizer from ``tokenizer`` (a directory) or one trained on
    ``files``/``texts`` with ``vocab_size`` entries; a run or HF directory keeps its own.
    """
    from gptbert.models import build_model

    if spec in PRESETS:
        config = ModelConfig.from_name(spec, **(overrides or {}))
        if isinstance(tokenizer, Tokenizer):
            tok = tokenizer
        elif tokenizer:
            tok = Tokenizer.load(tokenizer)
        else:
            kind = tokenizer_kind(config.family)
            size = vocab_size or DEFAULT_VOCAB
            if files:
                tok = Tokenizer.train(list(files), kind=kind, vocab_size=size, show_progress=False)
            elif texts:
                tok = Tokenizer.from_texts(list(texts), kind=kind, vocab_size=size, show_progress=False)
            else:
                raise ValueError(f"preset {spec!r} needs --tokenizer DIR or training text to build one")
        if max_len > config.block_size:
            raise ValueError(f"max_len {max_len} exceeds {spec}'s block_size {config.block_size}")
        config = config.replace(vocab_size=tok.vocab_size, pad_token_id=tok.pad_id, head=head, num_labels=num_labels)
        torch.manual_seed(seed)
        return Source(build_model(config), tok, pretrained=False, name=spec)
    path = Path(spec)
    if not path.is_dir():
        raise ValueError(f"{spec!r} is neither a preset ({', '.join(PRESETS)}) nor a directory")
    run = load_run(path)
    if run.tokenizer is None:
        raise ValueError(f"{path}: no tokenizer files (tokenizer.json, vocab.txt or vocab.json)")
    model = run.model
    config: ModelConfig = model.config  # type: ignore[no-redef]
    if config.head != head or (head in ("classify", "tokens") and config.num_labels != num_labels):
        torch.manual_seed(seed)
        model = with_head(model, head, num_labels=num_labels)
    if max_len > model.config.block_size:  # type: ignore[union-attr]
        raise ValueError(f"max_len {max_len} exceeds the model's block_size {model.config.block_size}")  # type: ignore[union-attr]
    return Source(model, run.tokenizer, pretrained=True, name=path.name)


def _fit_summary(result: FitResult) -> dict[str, Any]:
    d = asdict(result)
    d.pop("history", None)
    d.pop("soft_losses", None)
    return d


def pretrain(
    spec: str,
    files: Sequence[str],
    out_dir: str | Path,
    args: TrainArgs,
    *,
    tokenizer: str | Tokenizer | None = None,
    vocab_size: int | None = None,
    max_len: int = 128,
    mode: str | None = None,
    overrides: dict[str, Any] | None = None,
    cache_root: str | Path | None = None,
) -> tuple[Path, FitResult]:
    """Pre-train ``spec`` on text ``files`` with its family's objective; write a run directory."""
    from gptbert.tasks.pretrain import pretrain_data

    family = ModelConfig.from_name(spec).family if spec in PRESETS else load_run(spec).config.family
    src = resolve_source(spec, head=pretrain_head(family), tokenizer=tokenizer, vocab_size=vocab_size,
                         files=files, max_len=max_len, seed=args.seed, overrides=overrides)
    data = pretrain_data(src.model.config, src.tokenizer, files, max_len=max_len, seed=args.seed,  # type: ignore[arg-type]
                         precision=args.precision, mode=mode, cache_root=cache_root)
    if args.eval_metric == "loss" or not args.eval_metric:
        args.eval_metric = "loss"
    train_dir = Path(out_dir)
    if args.out_dir is None:
        args.out_dir = str(train_dir)
    result = fit(src.model, args, data.train, data.collate_fn, eval_fn=data.eval_fn)
    task = TaskInfo(task="pretrain", max_len=max_len, extra={"objective": data.objective, "corpus": list(map(str, files))})
    metrics = {"pretrain": _fit_summary(result), "dev": result.eval_metrics}
    save_run(train_dir, src.model, src.tokenizer, task, metrics=metrics, args=asdict(args))
    return train_dir, result


def _classify_eval(tok: Tokenizer, dev_examples: list[Any], max_len: int, num_labels: int,
                   args: TrainArgs) -> Any:
    """Dev-set evaluation for ``fit``: classification metrics at the training precision."""
    from gptbert.tasks import classify

    def eval_fn(m: nn.Module) -> dict[str, float]:
        r = classify.evaluate(m, tok, dev_examples, max_len=max_len, num_labels=num_labels, precision=args.precision)
        return {k: v for k, v in r.items() if isinstance(v, float)}

    return eval_fn


def finetune(
    spec: str,
    task: str,
    train_path: str,
    out_dir: str | Path,
    args: TrainArgs,
    *,
    dev_path: str | None = None,
    tokenizer: str | Tokenizer | None = None,
    vocab_size: int | None = None,
    max_len: int = 128,
    text_column: str = "text",
    text_pair_column: str | None = None,
    label_column: str = "label",
    skip_bad_rows: bool = False,
    max_train: int | None = None,
    overrides: dict[str, Any] | None = None,
) -> tuple[Path, FitResult, dict[str, Any]]:
    """Fine-tune ``spec`` (preset, run dir or HF dir) on a labelled task; write a run directory."""
    if task != "classify":
        from gptbert.tasks import registry

        return registry.finetune(spec, task, train_path, out_dir, args, dev_path=dev_path, tokenizer=tokenizer,
                                 vocab_size=vocab_size, max_len=max_len, skip_bad_rows=skip_bad_rows,
                                 max_train=max_train, overrides=overrides)
    from gptbert.tasks import classify

    data = classify.load_data(train_path, dev_path, text_column=text_column, text_pair_column=text_pair_column,
                              label_column=label_column, skip_bad_rows=skip_bad_rows, seed=args.seed,
                              max_train=max_train)
    src = resolve_source(spec, head="classify", num_labels=len(data.label_map), tokenizer=tokenizer,
                         vocab_size=vocab_size, texts=data.train_data.texts + (data.train_data.pairs or []),
                         max_len=max_len, seed=args.seed, overrides=overrides)
    model, tok = src.model, src.tokenizer
    collate = classify.make_collator(tok, model.config, max_len)  # type: ignore[arg-type]
    dev_examples = data.dev.items
    eval_fn = _classify_eval(tok, dev_examples, max_len, len(data.label_map), args)
    out = Path(out_dir)
    prepare_args(args, out, "accuracy")
    start = time.perf_counter()
    result = fit(model, args, data.train, collate, eval_fn=eval_fn)
    final = classify.evaluate(model, tok, dev_examples, max_len=max_len, num_labels=len(data.label_map),
                              precision=args.precision)
    info = TaskInfo(task="classify", max_len=max_len, text_column=text_column, text_pair_column=text_pair_column,
                    label_column=label_column, extra={"source": spec, "train": str(train_path), "dev": dev_path})
    metrics = {
        "finetune": _fit_summary(result),
        "dev": {k: v for k, v in final.items() if not isinstance(v, list)},
        "wall_s": time.perf_counter() - start,
    }
    save_run(out, model, tok, info, labels=data.label_map.labels, metrics=metrics, args=asdict(args))
    return out, result, {"dev": final, "label_map": data.label_map, "dev_examples": dev_examples}


def classifier_data(run: Run, train_path: str, dev_path: str | None = None, *, seed: int = 0,
                    max_train: int | None = None, skip_bad_rows: bool = True) -> Any:
    """``classify.load_data`` of files in a classifier run's format: its columns and label map."""
    from gptbert.data.readers import LabelMap
    from gptbert.tasks import classify

    if run.config.head != "classify" or not run.labels:
        raise ValueError(f"{run.path}: expected a fine-tuned classifier run (head 'classify' with labels.json); "
                         f"it has head {run.config.head!r}")
    t = run.task
    return classify.load_data(train_path, dev_path, text_column=t.text_column, text_pair_column=t.text_pair_column,
                              label_column=t.label_column, skip_bad_rows=skip_bad_rows, seed=seed,
                              label_map=LabelMap(run.labels), max_train=max_train)


def distill_classifier(
    teacher_dir: str | Path,
    student: str,
    train_path: str,
    out_dir: str | Path,
    args: TrainArgs,
    *,
    dev_path: str | None = None,
    tokenizer: str | Tokenizer | None = None,
    vocab_size: int | None = None,
    max_len: int | None = None,
    temperature: float = 2.0,
    alpha: float = 0.5,
    skip_bad_rows: bool = False,
    max_train: int | None = None,
    overrides: dict[str, Any] | None = None,
) -> tuple[Path, FitResult, dict[str, Any]]:
    """Distil a fine-tuned classifier run into ``student`` (a preset or a run/HF directory).

    The student learns the teacher's temperature-softened logits plus the hard labels on the
    teacher's training file format (same columns, same label map). A preset student of the
    teacher's tokenizer kind shares the teacher's tokenizer; one of another family (a GPT student
    of a BERT teacher, say) gets its own tokenizer trained on the training texts, and each model
    reads the same sentences through its own collator every step.
    """
    from gptbert.compress.distill import distill
    from gptbert.tasks import classify

    teacher = load_run(teacher_dir)
    if teacher.tokenizer is None:
        raise ValueError(f"{teacher_dir}: no tokenizer files")
    data = classifier_data(teacher, train_path, dev_path, seed=args.seed, max_train=max_train,
                           skip_bad_rows=skip_bad_rows)
    t_task = teacher.task
    max_len = max_len or t_task.max_len
    label_map = data.label_map
    if tokenizer is None and student in PRESETS:
        family = ModelConfig.from_name(student).family
        if tokenizer_kind(family) == teacher.tokenizer.kind:
            tokenizer = teacher.tokenizer
    src = resolve_source(student, head="classify", num_labels=len(label_map), tokenizer=tokenizer,
                         vocab_size=vocab_size, texts=data.train_data.texts + (data.train_data.pairs or []),
                         max_len=max_len, seed=args.seed, overrides=overrides)
    model, tok = src.model, src.tokenizer
    teacher_collate = classify.make_collator(teacher.tokenizer, teacher.config, t_task.max_len)
    student_collate = classify.make_collator(tok, model.config, max_len)  # type: ignore[arg-type]
    shared = tok is teacher.tokenizer and max_len == t_task.max_len
    dev_examples = data.dev.items
    eval_fn = _classify_eval(tok, dev_examples, max_len, len(label_map), args)
    out = Path(out_dir)
    prepare_args(args, out, "accuracy")
    start = time.perf_counter()
    result = distill(teacher.model, model, data.train, student_collate if shared else teacher_collate, args,
                     temperature=temperature, alpha=alpha, student_collate=None if shared else student_collate,
                     eval_fn=eval_fn)
    final = classify.evaluate(model, tok, dev_examples, max_len=max_len, num_labels=len(label_map),
                              precision=args.precision)
    teacher_dev = classify.evaluate(teacher.model, teacher.tokenizer, dev_examples, max_len=t_task.max_len,
                                    num_labels=len(label_map))
    info = TaskInfo(task="classify", max_len=max_len, text_column=t_task.text_column,
                    text_pair_column=t_task.text_pair_column, label_column=t_task.label_column,
                    extra={"source": student, "train": str(train_path), "dev": dev_path,
                           "distilled_from": str(teacher_dir), "temperature": temperature, "alpha": alpha})
    metrics = {
        "finetune": _fit_summary(result),
        "dev": {k: v for k, v in final.items() if not isinstance(v, list)},
        "teacher_dev": {k: v for k, v in teacher_dev.items() if not isinstance(v, list)},
        "soft_loss_first_last": [result.soft_losses[0], result.soft_losses[-1]] if result.soft_losses else [],
        "wall_s": time.perf_counter() - start,
    }
    save_run(out, model, tok, info, labels=label_map.labels, metrics=metrics, args=asdict(args))
    return out, result, {"dev": final, "teacher_dev": teacher_dev, "label_map": label_map}


def classify_batches(run: Run, train_path: str, *, n: int, batch_size: int = 32, seed: int = 0,
                     model: nn.Module | None = None) -> list[dict[str, torch.Tensor]]:
    """Up to ``n`` collated training batches of a classifier run (e.g. for head importance)."""
    from gptbert.tasks import classify

    data = classifier_data(run, train_path, seed=seed, max_train=n * batch_size)
    collate = classify.make_collator(run.tokenizer, (model or run.model).config, run.task.max_len)  # type: ignore[arg-type]
    items = list(data.train.items) + list(data.dev.items)
    return [collate(items[i:i + batch_size]) for i in range(0, min(len(items), n * batch_size), batch_size)]


def recovery_finetune(
    model: nn.Module,
    run: Run,
    train_path: str,
    args: TrainArgs,
    *,
    dev_path: str | None = None,
    max_train: int | None = None,
    callbacks: Sequence[Any] = (),
) -> FitResult:
    """Fine-tune a compressed ``model`` of classifier ``run`` (same tokenizer, labels and columns) in place.

    Used after pruning (with :class:`gptbert.compress.KeepPrunedZero` among ``callbacks`` so
    pruned weights stay zero); evaluation on ``dev_path`` (or a split of ``train_path``) picks
    the best weights.
    """
    from gptbert.tasks import classify

    if run.tokenizer is None:
        raise ValueError(f"{run.path}: recovery fine-tuning needs the run's tokenizer files")
    data = classifier_data(run, train_path, dev_path, seed=args.seed, max_train=max_train)
    t = run.task
    label_map = data.label_map
    collate = classify.make_collator(run.tokenizer, model.config, t.max_len)  # type: ignore[arg-type]
    eval_fn = _classify_eval(run.tokenizer, data.dev.items, t.max_len, len(label_map), args)
    prepare_args(args, None, "accuracy")
    return fit(model, args, data.train, collate, eval_fn=eval_fn, callbacks=list(callbacks))


def load(path: str | Path) -> Run:
    return load_run(path)

"""Pre-training, fine-tuning, evaluation, prediction and distillation as functions over a Task.

The CLI, ``compare``, ``compress`` and the benchmarks call these. Every task goes the same
way through :func:`finetune`: resolve the source (:mod:`gptbert.source`) -> ``task.load_data``
-> ``task.fitting`` (training items, collator, dev evaluation) -> the one training loop
(:func:`gptbert.training.fit`) -> the final dev evaluation -> a run directory
(:mod:`gptbert.run`) with the task's typed options. :func:`evaluate` and :func:`predict`
score and use any run through its task (:data:`gptbert.tasks.TASKS`).

The classifier helpers at the end (:func:`classifier_data`, :func:`classify_batches`,
:func:`recovery_finetune`, :func:`distill`) serve model compression.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from gptbert.config import PRESETS, ModelConfig
from gptbert.finetune_recipe import example_lengths
from gptbert.run import Distillation, Run, TaskInfo, load_run, save_run
from gptbert.source import family_of, resolve_source, tokenizer_kind
from gptbert.tasks import TASKS, Task, TaskOptions, get_task, task_of
from gptbert.tasks.common import floats, run_tokenizer, text_of
from gptbert.tokenizer import Tokenizer
from gptbert.training import FitResult, TrainArgs, fit, resolve_precision

TEXT_SUFFIXES = (".txt", ".text")
"""Files :func:`evaluate` scores with language-model metrics, whatever the run's task."""


def _fit_summary(result: FitResult) -> dict[str, Any]:
    d = asdict(result)
    d.pop("history", None)
    d.pop("soft_losses", None)
    return d


class _Memo:
    """Wraps an evaluation that returns a full result (with predictions): ``fit`` gets the
    float metrics; after ``fit`` the full result of the weights it kept is reused instead of
    evaluating again (``keep_best`` restores the first evaluated weights that reached the best
    value, otherwise the last; an interrupted fit restores nothing, so it is evaluated again)."""

    def __init__(self, evaluate: Callable[[nn.Module], dict[str, Any]]) -> None:
        self.evaluate = evaluate
        self.results: list[tuple[dict[str, float], dict[str, Any]]] = []

    def __call__(self, model: nn.Module) -> dict[str, float]:
        full = self.evaluate(model)
        scores = floats(full)
        self.results.append((scores, full))
        return scores

    def final(self, model: nn.Module, args: TrainArgs, result: FitResult) -> dict[str, Any]:
        if self.results and result.stop_reason != "interrupted":
            if not args.keep_best:
                return self.results[-1][1]
            if result.best_metric is not None and result.metric_name:
                for scores, full in self.results:
                    if scores.get(result.metric_name) == result.best_metric:
                        return full
        return self.evaluate(model)


def prepare_args(args: TrainArgs, out: Path | None, metric: str) -> None:
    """Default the early-stopping metric to the task's ``metric`` (unless one was chosen) and the
    checkpoint folder to the run directory ``out`` (when one is given)."""
    if args.eval_metric in ("loss", None, "") and metric != "loss":
        args.eval_metric = metric
    if args.out_dir is None and out is not None:
        args.out_dir = str(out)


def _as_run(run: Run | str | Path) -> Run:
    return run if isinstance(run, Run) else load_run(run)


def _options(task: Task, options: TaskOptions | Mapping[str, Any] | None) -> TaskOptions:
    if options is None:
        return task.options_type()
    if isinstance(options, Mapping):
        return task.options_type.from_dict(options)
    if not isinstance(options, task.options_type):
        raise TypeError(f"--task {task.name}: options must be {task.options_type.__name__}, "
                        f"got {type(options).__name__}")
    return options


# ---------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------


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
    callbacks: Sequence[Any] = (),
    causal_fraction: float | None = None,
) -> tuple[Path, FitResult]:
    """Pre-train ``spec`` on text ``files`` with its family's objective; write a run directory
    (``callbacks``: training-loop hooks, e.g. :class:`gptbert.tracking.TrackingCallback`;
    ``causal_fraction``: a hybrid's share of causal batches, default the paper's 1/16)."""
    from gptbert.tasks.pretrain import PretrainOptions, pretrain_data

    resolve_precision(args)
    src = resolve_source(spec, head=TASKS["pretrain"].head(family_of(spec)), tokenizer=tokenizer,
                         vocab_size=vocab_size, files=files, max_len=max_len, seed=args.seed, overrides=overrides)
    data = pretrain_data(src.model.config, src.tokenizer, files, max_len=max_len, seed=args.seed,  # type: ignore[arg-type]
                         precision=args.precision, mode=mode, cache_root=cache_root,
                         causal_fraction=causal_fraction)
    if args.eval_metric == "loss" or not args.eval_metric:
        args.eval_metric = "loss"
    train_dir = Path(out_dir)
    if args.out_dir is None:
        args.out_dir = str(train_dir)
    result = fit(src.model, args, data.train, data.collate_fn, eval_fn=data.eval_fn, callbacks=list(callbacks))
    task = TaskInfo(task="pretrain", max_len=max_len,
                    options=PretrainOptions(objective=data.objective, corpus=list(map(str, files)),
                                            causal_fraction=data.causal_fraction))
    metrics = {"pretrain": _fit_summary(result), "dev": result.eval_metrics}
    save_run(train_dir, src.model, src.tokenizer, task, metrics=metrics, args=asdict(args))
    return train_dir, result


def finetune(
    spec: str,
    task: str,
    train_path: str,
    out_dir: str | Path,
    args: TrainArgs,
    *,
    dev_path: str | None = None,
    options: TaskOptions | Mapping[str, Any] | None = None,
    tokenizer: str | Tokenizer | None = None,
    vocab_size: int | None = None,
    max_len: int = 128,
    skip_bad_rows: bool = False,
    max_train: int | None = None,
    overrides: dict[str, Any] | None = None,
    recipe: str | None = None,
    explicit: Collection[str] = (),
    callbacks: Sequence[Any] = (),
) -> tuple[Path, FitResult, dict[str, Any]]:
    """Fine-tune ``spec`` (preset, run or HF directory) on ``task``; write a run directory.

    ``options``: the task's options (e.g. :class:`gptbert.tasks.classify.ClassifyOptions`),
    or a mapping of which the task keeps the keys it has. ``recipe='auto'``: the budget-aware
    recipe of :mod:`gptbert.finetune_recipe` (pooling, linear-probe head, learning rates, frozen
    word embeddings, max_len from the data, batches of similar length) plans every setting not
    named in ``explicit`` (TrainArgs field names, and ``max_len``); the plan and its reasons are
    kept in the run's metrics.json. ``callbacks``: training-loop hooks of the fine-tuning (not of the
    recipe's probe). Returns (run directory, fit result, ``{"dev": final dev evaluation, "recipe":
    the plan or None}``).
    """
    resolve_precision(args)
    t = get_task(task)
    family = family_of(spec)
    head = t.head(family)
    data = t.load_data(train_path, dev_path, _options(t, options), seed=args.seed, max_train=max_train,
                       skip_bad_rows=skip_bad_rows)
    src = resolve_source(spec, head=head, num_labels=t.num_labels(data), tokenizer=tokenizer, vocab_size=vocab_size,
                         texts=t.tokenizer_texts(data, family), max_len=max_len, seed=args.seed, overrides=overrides)
    model, tok = src.model, src.tokenizer
    out = Path(out_dir)
    start = time.perf_counter()
    plan = None
    if recipe == "auto":
        model, args, max_len, plan = _apply_recipe(spec, t, src, data, args, max_len, explicit)
    elif recipe is not None:
        raise ValueError(f"recipe: expected 'auto' or None, got {recipe!r}")
    fitting = t.fitting(model, tok, data, max_len=max_len, precision=args.precision, seed=args.seed)
    prepare_args(args, out, fitting.metric)
    lengths = example_lengths(fitting.train) if args.group_by_length else None
    if fitting.dev_data is not None:
        result = fit(model, args, fitting.train, fitting.collate, dev_data=fitting.dev_data, lengths=lengths,
                     callbacks=list(callbacks))
        final = fitting.evaluate(model)
    else:
        memo = _Memo(fitting.evaluate)
        result = fit(model, args, fitting.train, fitting.collate, eval_fn=memo, lengths=lengths,
                     callbacks=list(callbacks))
        final = memo.final(model, args, result)
    info = TaskInfo(task=t.name, max_len=max_len, options=fitting.options, source=spec, train=str(train_path),
                    dev=dev_path)
    metrics = {"finetune": _fit_summary(result), **t.run_metrics(final), "wall_s": time.perf_counter() - start}
    if plan is not None:
        metrics["recipe"] = plan.to_dict()
    save_run(out, model, tok, info, labels=fitting.labels, metrics=metrics, args=asdict(args))
    return out, result, {"dev": final, "recipe": plan}


def _apply_recipe(spec: str, task: Task, src: Any, data: Any, args: TrainArgs, max_len: int,
                  explicit: Collection[str]) -> tuple[nn.Module, TrainArgs, int, Any]:
    """Plan the budget-aware recipe and apply it: (model, training arguments, max_len, the plan)."""
    from gptbert import finetune_recipe as fr

    started = time.perf_counter()
    model, tok = src.model, src.tokenizer
    config: ModelConfig = model.config  # type: ignore[assignment]
    classify = task.name == "classify"
    if "max_len" not in explicit and classify:
        pairs = [it[1] for it in data.train] if any(it[1] for it in data.train) else None
        max_len = fr.data_max_len(tok, [it[0] for it in data.train], pairs, config.block_size, seed=args.seed)
    pooling, pooling_from, trained_head = None, "", False
    if src.pretrained and classify:
        pooling, pooling_from = fr.source_pooling(spec, config)
        trained_head = config.head == "classify" and fr.source_labels(spec) == list(data.labels or [])
    plan = fr.plan(task.name, config, pretrained=src.pretrained, n_train=len(data.train), max_len=max_len,
                   has_trained_head=trained_head, pooling=pooling, pooling_from=pooling_from)
    args = fr.train_args(plan, args, explicit)
    if classify:
        model = fr.prepare(plan, model, tok, data.train, task.num_labels(data), budget_s=args.time_budget_s,
                           seed=args.seed, precision=args.precision)
    elif plan.freeze_embeddings:
        model = fr.prepare(dataclasses.replace(plan, probe=False, pooling=None), model, tok, data.train, 0,
                           budget_s=args.time_budget_s, seed=args.seed)
    used = time.perf_counter() - started
    if args.time_budget_s is not None:  # the probe's time is part of the budget
        args = dataclasses.replace(args, time_budget=f"{max(1.0, args.time_budget_s - used):.3f}s")
    plan.reasons["time"] = f"{used:.1f} s planning and probing, taken out of the time budget"
    return model, args, max_len, plan


# ---------------------------------------------------------------------------------------
# Using a run
# ---------------------------------------------------------------------------------------


def evaluate(run: Run | str | Path, data_path: str | Path, *, columns: Mapping[str, str | None] | None = None,
             **opts: Any) -> dict[str, Any]:
    """Metrics of a run on a labelled file, for the run's task.

    classify -> accuracy, macro-F1, MCC, confusion matrix; tokens -> entity P/R/F1;
    qa -> SQuAD EM/F1 (all questions and answerable ones); generate -> ROUGE-1/2/L, BLEU,
    chrF; pretrain (or any LM on a ``.txt`` file) -> perplexity and bits per character
    (GPT), MLM accuracy (BERT), per-direction perplexity (ELMo).

    ``data_path``: a file in any format of :mod:`gptbert.data.readers.registry`, or a Hugging
    Face datasets folder (``folder:split`` picks a split). ``columns``: task options that name
    columns (``text_column``, ``text_pair_column``, ``label_column``) read in place of the
    run's own (None values: the run's).
    ``opts``: ``max_examples`` (first N examples), ``batch_size``, ``precision``,
    ``skip_bad_rows``, ``max_chars`` (LM evaluation), ``max_new_tokens`` / GenerationConfig
    fields (generation), ``k`` (extractive summaries), ``doc_stride`` and ``top_windows`` (extractive QA).
    The result has ``task``, ``data``, ``n`` and the metrics; per-example predictions
    where the task has them.
    """
    from gptbert.data.readers.registry import split_path

    run = _as_run(run)
    folder, _ = split_path(data_path)
    if not folder.exists():
        raise FileNotFoundError(f"{folder}: no such file or directory")
    path = Path(data_path)
    name = run.task.task
    task = TASKS["pretrain"] if path.suffix.lower() in TEXT_SUFFIXES else TASKS.get(name)
    if task is None:
        raise ValueError(f"{run.path}: task {name!r} has no evaluation on {path.name} (a bare checkpoint: "
                         "fine-tune it first, or pass a .txt file for language-model metrics)")
    given = {k: v for k, v in (columns or {}).items() if v is not None}
    if given:
        run = _with_options(run, task, given)
    return {"task": task.name, "data": str(path), **task.evaluate_file(run, path, **opts)}


def _with_options(run: Run, task: Task, changes: Mapping[str, Any]) -> Run:
    """``run`` as if its task options had ``changes`` (ValueError naming what the task does not read)."""
    options = task.options_of(run)
    known = {f.name for f in dataclasses.fields(options)}
    unknown = sorted(set(changes) - known)
    if unknown:
        flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
        raise ValueError(f"{flags}: the {task.name} task reads no such column (it has: "
                         f"{', '.join(sorted(known)) or 'no column options'})")
    new_task = dataclasses.replace(run.task, options=dataclasses.replace(options, **changes))
    return dataclasses.replace(run, task=new_task)


def predict(run: Run | str | Path, inputs: Sequence[Any] | str | dict[str, Any], **opts: Any) -> list[dict[str, Any]]:
    """One result dict per input, for the run's task.

    classify: texts or ``{"text", "text_pair"}`` -> label, score, scores. tokens: texts or
    word lists -> tags [[word, tag]] and entities. qa: ``{"question", "context"}`` (or
    (question, context) pairs) -> answer, score, start, end (``top_windows``: read only the K windows
    of a long context sharing the most question words). generate: sources (or, for a
    dialogue run, a user message) -> output (GPT) or summary (BERT). pretrain: BERT fills
    the mask token (top ``top_k``), GPT continues the prompt.

    ``rerank``: a scorer run (or its directory) -- generate-then-rerank with ``run`` as the
    generator (:mod:`gptbert.tasks.rerank`; ``num_candidates``, ``weight``, ``method``): each
    result has the reranked ``output``, the generator's ``plain`` output and the scored candidates.
    """
    run = _as_run(run)
    if isinstance(inputs, (str, dict)):
        inputs = [inputs]
    items = list(inputs)
    if not items:
        return []
    if run.baseline is None:
        run_tokenizer(run)
    scorer = opts.pop("rerank", None)
    if scorer is not None:
        from gptbert.tasks.rerank import rerank_with_runs

        sources = [text_of(x, "source", "text", "document", "prompt") for x in items]
        return rerank_with_runs(run, _as_run(scorer), sources, **opts)
    return task_of(run).predict(run, items, **opts)


# ---------------------------------------------------------------------------------------
# Classifier runs: data in a run's format, recovery fine-tuning, distillation
# ---------------------------------------------------------------------------------------


def _classify_eval(tok: Tokenizer, dev_examples: list[Any], max_len: int, num_labels: int,
                   args: TrainArgs) -> Callable[[nn.Module], dict[str, float]]:
    """Dev-set evaluation for ``fit``: classification metrics at the training precision."""
    from gptbert.tasks import classify

    return lambda m: floats(classify.evaluate(m, tok, dev_examples, max_len=max_len, num_labels=num_labels,
                                              precision=args.precision))


def classifier_data(run: Run, train_path: str, dev_path: str | None = None, *, seed: int = 0,
                    max_train: int | None = None, skip_bad_rows: bool = True) -> Any:
    """``classify.load_data`` of files in a classifier run's format: its columns and label map."""
    from gptbert.data.readers import LabelMap
    from gptbert.tasks import classify

    if run.config.head != "classify" or not run.labels:
        raise ValueError(f"{run.path}: expected a fine-tuned classifier run (head 'classify' with labels.json); "
                         f"it has head {run.config.head!r}")
    columns = asdict(TASKS["classify"].options_of(run))
    return classify.load_data(train_path, dev_path, **columns, skip_bad_rows=skip_bad_rows, seed=seed,
                              label_map=LabelMap(run.labels), max_train=max_train)


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
    resolve_precision(args)
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


def distill(
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
    resolve_precision(args)
    from gptbert.compress.distill import distill as distill_logits
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
    result = distill_logits(teacher.model, model, data.train, student_collate if shared else teacher_collate, args,
                            temperature=temperature, alpha=alpha, student_collate=None if shared else student_collate,
                            eval_fn=eval_fn)
    final = classify.evaluate(model, tok, dev_examples, max_len=max_len, num_labels=len(label_map),
                              precision=args.precision)
    teacher_dev = classify.evaluate(teacher.model, teacher.tokenizer, dev_examples, max_len=t_task.max_len,
                                    num_labels=len(label_map))
    info = TaskInfo(task="classify", max_len=max_len, options=TASKS["classify"].options_of(teacher), source=student,
                    train=str(train_path), dev=dev_path,
                    distillation=Distillation(str(teacher_dir), temperature=temperature, alpha=alpha))
    metrics = {
        "finetune": _fit_summary(result),
        "dev": {k: v for k, v in final.items() if not isinstance(v, list)},
        "teacher_dev": {k: v for k, v in teacher_dev.items() if not isinstance(v, list)},
        "soft_loss_first_last": [result.soft_losses[0], result.soft_losses[-1]] if result.soft_losses else [],
        "wall_s": time.perf_counter() - start,
    }
    save_run(out, model, tok, info, labels=label_map.labels, metrics=metrics, args=asdict(args))
    return out, result, {"dev": final, "teacher_dev": teacher_dev, "label_map": label_map}

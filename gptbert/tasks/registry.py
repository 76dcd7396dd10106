"""One entry point per verb for every task: fine-tune, evaluate, predict.

``finetune`` (called by :func:`gptbert.pipeline.finetune` for tasks other than
'classify') trains the way each family does a task best:

========  ==================================  ==========================================
task      BERT (and ELMo where it applies)    GPT
========  ==================================  ==========================================
tokens    tag on each word's first piece      tag on each word's last piece
qa        extractive span (doc stride)        generative: "context … question … answer:"
generate  extractive summary: sentence scorer conditional LM: source => target (+ chat)
========  ==================================  ==========================================

``evaluate_run`` scores a run on a file with its task's metrics; ``predict_run`` gives
one dict per input. Both accept a :class:`gptbert.run.Run` or a run directory.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from gptbert.run import Run, TaskInfo, load_run, save_run
from gptbert.tasks import ListDataset, autocast, model_device
from gptbert.tokenizer import Tokenizer
from gptbert.training import FitResult, TrainArgs, fit

TASKS = ("tokens", "qa", "generate")
MAX_GENERATION_EVAL = 256
"""At most this many dev examples are generated for the final scores of a generation run."""


def _fit_summary(result: FitResult) -> dict[str, Any]:
    d = asdict(result)
    d.pop("history", None)
    return d


def _floats(d: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in d.items() if isinstance(v, float)}


def _scalars(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}


def family_of(spec: str) -> str:
    """'bert', 'gpt' or 'elmo' of a preset name or a run / Hugging Face directory."""
    from gptbert.config import PRESETS, ModelConfig

    if spec in PRESETS:
        return ModelConfig.from_name(spec).family
    path = Path(spec)
    if not path.is_dir():
        raise ValueError(f"{spec!r} is neither a preset ({', '.join(PRESETS)}) nor a directory")
    from gptbert.io.checkpoint import read_config

    return read_config(path).family


class _Memo:
    """Wraps an evaluation that returns a full result (with predictions): ``fit`` gets the
    float metrics; after ``fit`` the full result of the weights it kept is reused instead of
    evaluating again (``keep_best`` restores the best evaluated weights, otherwise the last)."""

    def __init__(self, evaluate: Any) -> None:
        self.evaluate = evaluate
        self.results: list[tuple[dict[str, float], dict[str, Any]]] = []

    def __call__(self, model: nn.Module) -> dict[str, float]:
        full = self.evaluate(model)
        floats = _floats(full)
        self.results.append((floats, full))
        return floats

    def final(self, model: nn.Module, args: TrainArgs, result: FitResult) -> dict[str, Any]:
        if self.results:
            if args.keep_best and result.best_metric is not None and result.metric_name:
                for floats, full in reversed(self.results):
                    if floats.get(result.metric_name) == result.best_metric:
                        return full
            elif not args.keep_best:
                return self.results[-1][1]
        return self.evaluate(model)


def prepare_args(args: TrainArgs, out: Path | None, metric: str) -> None:
    """Default the early-stopping metric to the task's ``metric`` (unless one was chosen) and the
    checkpoint folder to the run directory ``out`` (when one is given)."""
    if args.eval_metric in ("loss", None, "") and metric != "loss":
        args.eval_metric = metric
    if args.out_dir is None and out is not None:
        args.out_dir = str(out)


# ---------------------------------------------------------------------------------------
# Fine-tuning
# ---------------------------------------------------------------------------------------


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
    skip_bad_rows: bool = False,
    max_train: int | None = None,
    overrides: dict[str, Any] | None = None,
) -> tuple[Path, FitResult, dict[str, Any]]:
    """Fine-tune ``spec`` (preset, run or HF directory) on ``task``; write a run directory.

    Returns (run directory, fit result, {"dev": final dev metrics, ...}).
    """
    common = dict(dev_path=dev_path, tokenizer=tokenizer, vocab_size=vocab_size, max_len=max_len,
                  skip_bad_rows=skip_bad_rows, max_train=max_train, overrides=overrides)
    if task == "tokens":
        return _finetune_tokens(spec, train_path, Path(out_dir), args, **common)  # type: ignore[arg-type]
    if task == "qa":
        return _finetune_qa(spec, train_path, Path(out_dir), args, **common)  # type: ignore[arg-type]
    if task == "generate":
        return _finetune_generate(spec, train_path, Path(out_dir), args, **common)  # type: ignore[arg-type]
    raise ValueError(f"unknown task {task!r}; expected 'classify' or one of {', '.join(TASKS)}")


def _source(spec: str, head: str, texts: list[str], *, num_labels: int = 2, tokenizer: Any, vocab_size: int | None,
            max_len: int, seed: int, overrides: dict[str, Any] | None) -> Any:
    from gptbert.pipeline import resolve_source

    return resolve_source(spec, head=head, num_labels=num_labels, tokenizer=tokenizer, vocab_size=vocab_size,
                          texts=texts, max_len=max_len, seed=seed, overrides=overrides)


def _finetune_tokens(spec: str, train_path: str, out: Path, args: TrainArgs, *, dev_path: str | None,
                     tokenizer: Any, vocab_size: int | None, max_len: int, skip_bad_rows: bool,
                     max_train: int | None, overrides: dict[str, Any] | None) -> tuple[Path, FitResult, dict[str, Any]]:
    from gptbert.tasks import tokens

    data = tokens.load_data(train_path, dev_path, skip_bad_rows=skip_bad_rows, seed=args.seed, max_train=max_train)
    src = _source(spec, "tokens", [" ".join(w) for w, _ in data.train.items], num_labels=len(data.labels),
                  tokenizer=tokenizer, vocab_size=vocab_size, max_len=max_len, seed=args.seed, overrides=overrides)
    model, tok = src.model, src.tokenizer
    collate = tokens.make_collator(tok, model.config, max_len)
    dev = data.dev.items
    labels = data.labels

    memo = _Memo(lambda m: tokens.evaluate(m, tok, dev, labels, max_len=max_len, precision=args.precision))
    prepare_args(args, out, "f1")
    start = time.perf_counter()
    result = fit(model, args, data.train, collate, eval_fn=memo)
    final = memo.final(model, args, result)
    info = TaskInfo(task="tokens", max_len=max_len, extra={
        "source": spec, "train": str(train_path), "dev": dev_path, "scheme": "BIO",
        "read_tag_on": "last piece" if model.config.family == "gpt" else "first piece"})
    metrics = {"finetune": _fit_summary(result), "dev": _scalars(final), "per_type": final["per_type"],
               "wall_s": time.perf_counter() - start}
    save_run(out, model, tok, info, labels=labels, metrics=metrics, args=asdict(args))
    return out, result, {"dev": final, "labels": labels}


def _finetune_qa(spec: str, train_path: str, out: Path, args: TrainArgs, *, dev_path: str | None,
                 tokenizer: Any, vocab_size: int | None, max_len: int, skip_bad_rows: bool,
                 max_train: int | None, overrides: dict[str, Any] | None,
                 doc_stride: int = 128, negatives_per_positive: int = 2) -> tuple[Path, FitResult, dict[str, Any]]:
    from gptbert.tasks import qa

    family = family_of(spec)
    data = qa.load_data(train_path, dev_path, seed=args.seed, max_train=max_train)
    contexts = list(dict.fromkeys(e.context for e in data.train))
    texts = contexts + [e.question for e in data.train]
    generative = family == "gpt"
    if generative:
        texts += [qa.gold_answers(e)[0] for e in data.train]
    src = _source(spec, "lm" if generative else "qa", texts, tokenizer=tokenizer, vocab_size=vocab_size,
                  max_len=max_len, seed=args.seed, overrides=overrides)
    model, tok = src.model, src.tokenizer
    extra: dict[str, Any] = {"source": spec, "train": str(train_path), "dev": dev_path,
                             "mode": "generative" if generative else "extractive",
                             "n_train_questions": len(data.train),
                             "n_train_answerable": sum(e.answerable for e in data.train)}
    start = time.perf_counter()
    if generative:
        train_items = qa.generative_examples(data.train, tok, max_len=max_len)
        dev_items = qa.generative_examples(data.dev, tok, max_len=max_len)
        collate = qa.make_lm_collator(tok, max_len)
        prepare_args(args, out, "loss")
        result = fit(model, args, ListDataset(train_items), collate, dev_data=ListDataset(dev_items))
        extra["max_new_tokens"] = qa.DEFAULT_MAX_NEW_TOKENS
    else:
        qa._check_extractive(model)
        feats = qa.train_features(data.train, tok, max_len=max_len, doc_stride=doc_stride,
                                  negatives_per_positive=negatives_per_positive, seed=args.seed)
        extra.update(doc_stride=doc_stride, negatives_per_positive=negatives_per_positive, n_train_windows=len(feats))
        collate = qa.make_collator(tok, model)
        dev = data.dev

        memo = _Memo(lambda m: qa.evaluate(m, tok, dev, max_len=max_len, doc_stride=doc_stride,
                                           precision=args.precision))
        prepare_args(args, out, "f1")
        result = fit(model, args, ListDataset(feats), collate, eval_fn=memo)
        final = memo.final(model, args, result)
    if generative:
        final = qa.evaluate(model, tok, data.dev, max_len=max_len, precision=args.precision)
    info = TaskInfo(task="qa", max_len=max_len, extra=extra)
    metrics = {"finetune": _fit_summary(result), "dev": _scalars(final), "wall_s": time.perf_counter() - start}
    save_run(out, model, tok, info, metrics=metrics, args=asdict(args))
    return out, result, {"dev": final}


def _finetune_generate(spec: str, train_path: str, out: Path, args: TrainArgs, *, dev_path: str | None,
                       tokenizer: Any, vocab_size: int | None, max_len: int, skip_bad_rows: bool,
                       max_train: int | None, overrides: dict[str, Any] | None
                       ) -> tuple[Path, FitResult, dict[str, Any]]:
    from gptbert.tasks import generate as gen

    family = family_of(spec)
    if family == "elmo":
        raise ValueError("--task generate: ELMo has no generation or summarization path; use a GPT model "
                         "(conditional LM) or a BERT model (extractive summaries)")
    data = gen.load_data(train_path, dev_path, skip_bad_rows=skip_bad_rows, seed=args.seed, max_train=max_train)
    texts = [s for s, _ in data.train.items] + [t for _, t in data.train.items]
    extra: dict[str, Any] = {"source": spec, "train": str(train_path), "dev": dev_path, "format": data.format}
    start = time.perf_counter()
    labels = None
    if family == "gpt":
        src = _source(spec, "lm", texts, tokenizer=tokenizer, vocab_size=vocab_size, max_len=max_len,
                      seed=args.seed, overrides=overrides)
        model, tok = src.model, src.tokenizer
        sep = gen.separator_for(data.format)
        keep_start = data.format == "pairs"
        train_items = gen.training_examples(data.train.items, tok, max_len, separator=sep, keep_start=keep_start)
        dev_items = gen.training_examples(data.dev.items, tok, max_len, separator=sep, keep_start=keep_start)
        longest = max(len(t) for _, t in train_items)
        max_new = int(min(max_len // 2, max(8, longest + 4)))
        extra.update(method="conditional-lm", separator=sep, max_new_tokens=max_new)
        prepare_args(args, out, "loss")
        result = fit(model, args, ListDataset(train_items), gen.make_collator(tok, max_len, separator=sep),
                     dev_data=ListDataset(dev_items))
        final = gen.evaluate(model, tok, data.dev.items[:MAX_GENERATION_EVAL], separator=sep, max_len=max_len,
                             max_new_tokens=max_new, precision=args.precision, stop_at_newline=data.format == "chat")
    else:
        from gptbert.tasks import classify, extractive

        if data.format != "pairs":
            raise ValueError(f"{train_path}: dialogue data needs a GPT model; BERT summarizes source/target pairs")
        k = extractive.summary_length(data.train.items)
        items = extractive.scorer_examples(data.train.items, k)
        if not any(y for _, _, y in items):
            raise ValueError(f"{train_path}: no source sentence shares a word with its target: no oracle labels")
        src = _source(spec, "classify", texts, num_labels=2, tokenizer=tokenizer, vocab_size=vocab_size,
                      max_len=max_len, seed=args.seed, overrides=overrides)
        model, tok = src.model, src.tokenizer
        dev_pairs = data.dev.items[:MAX_GENERATION_EVAL]
        extra.update(method="extractive", k=k, n_train_sentences=len(items),
                     positive_fraction=float(np.mean([y for _, _, y in items])))

        memo = _Memo(lambda m: extractive.evaluate(m, tok, dev_pairs, k=k, method="scorer", max_len=max_len,
                                                   precision=args.precision))
        prepare_args(args, out, "rougeL")
        result = fit(model, args, ListDataset(items), classify.make_collator(tok, model.config, max_len),
                     eval_fn=memo)
        final = memo.final(model, args, result)
        labels = ["other", "summary"]
    info = TaskInfo(task="generate", max_len=max_len, extra=extra)
    metrics = {"finetune": _fit_summary(result), "dev": _scalars(final), "wall_s": time.perf_counter() - start,
               "samples": final["predictions"][:5]}
    save_run(out, model, tok, info, labels=labels, metrics=metrics, args=asdict(args))
    return out, result, {"dev": final}


# ---------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------


def _as_run(run: Run | str | Path) -> Run:
    return run if isinstance(run, Run) else load_run(run)


def _tok(run: Run) -> Tokenizer:
    if run.tokenizer is None:
        raise ValueError(f"{run.path}: no tokenizer files (tokenizer.json, vocab.txt or vocab.json)")
    return run.tokenizer


def _max_len(run: Run) -> int:
    return min(run.task.max_len or 128, run.config.block_size)


def evaluate_run(run: Run | str | Path, data_path: str | Path, **opts: Any) -> dict[str, Any]:
    """Metrics of a run on a labelled file, for the run's task.

    classify -> accuracy, macro-F1, MCC, confusion matrix; tokens -> entity P/R/F1;
    qa -> SQuAD EM/F1 (all questions and answerable ones); generate -> ROUGE-1/2/L, BLEU,
    chrF; pretrain (or any LM on a ``.txt`` file) -> perplexity and bits per character
    (GPT), MLM accuracy (BERT), per-direction perplexity (ELMo).

    ``opts``: ``max_examples`` (first N examples), ``batch_size``, ``precision``,
    ``skip_bad_rows``, ``max_chars`` (LM evaluation), ``max_new_tokens`` / GenerationConfig
    fields (generation), ``k`` (extractive summaries), ``doc_stride`` and ``top_windows`` (extractive QA).
    The result has ``task``, ``data``, ``n`` and the metrics; per-example predictions
    where the task has them.
    """
    run = _as_run(run)
    path = Path(data_path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    task = run.task.task
    head = run.config.head
    if path.suffix.lower() in (".txt", ".text") or task == "pretrain":
        if head not in ("pretrain", "mlm", "lm"):
            raise ValueError(f"{run.path}: language-model evaluation on {path} needs an LM head "
                             f"(BERT pretrain/mlm, GPT/ELMo lm); this model has {head!r}")
        out = evaluate_lm(run.model, _tok(run), path, max_len=_max_len(run), **_pick(opts, "max_chars", "batch_size",
                                                                                       "precision", "seed"))
        return {"task": "pretrain", "data": str(path), **out}
    max_examples = opts.pop("max_examples", None)
    precision = opts.get("precision", "fp32")
    batch_size = int(opts.get("batch_size", 32))
    if task == "classify":
        out = _evaluate_classify(run, path, max_examples, precision=precision, batch_size=batch_size,
                                 skip_bad_rows=bool(opts.get("skip_bad_rows", False)))
    elif task == "tokens":
        from gptbert.data.readers import read_token_file
        from gptbert.tasks import tokens

        labels = run.labels or []
        data = read_token_file(path, skip_bad_rows=bool(opts.get("skip_bad_rows", False)))
        examples = tokens.encode_tags(data, labels)[:max_examples]
        out = tokens.evaluate(run.model, _tok(run), examples, labels, max_len=_max_len(run), batch_size=batch_size,
                              precision=precision)
        out["predictions"] = [[list(p) for p in zip(ex[0], pred)] for ex, pred in zip(examples, out["predictions"])]
    elif task == "qa":
        from gptbert.tasks import qa

        examples = list(qa.read_questions(path))[:max_examples]
        extra = run.task.extra
        out = qa.evaluate(run.model, _tok(run), examples, max_len=_max_len(run), batch_size=batch_size,
                          precision=precision, doc_stride=int(opts.get("doc_stride") or extra.get("doc_stride", 128)),
                          max_new_tokens=int(opts.get("max_new_tokens") or extra.get("max_new_tokens", 32)),
                          top_windows=opts.get("top_windows"))
    elif task == "generate":
        out = _evaluate_generate(run, path, max_examples, opts)
    else:
        raise ValueError(f"{run.path}: task {task!r} has no evaluation on {path.name} (a bare checkpoint: "
                         "fine-tune it first, or pass a .txt file for language-model metrics)")
    return {"task": task, "data": str(path), **out}


def _pick(opts: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: opts[k] for k in keys if k in opts and opts[k] is not None}


def _evaluate_classify(run: Run, path: Path, max_examples: int | None, *, precision: str, batch_size: int,
                       skip_bad_rows: bool) -> dict[str, Any]:
    from gptbert.data.readers import LabelMap, read_task_file
    from gptbert.metrics import confusion_matrix
    from gptbert.tasks import classify

    t = run.task
    labels = run.labels or [str(i) for i in range(run.config.num_labels)]
    data = read_task_file(path, text_column=t.text_column, text_pair_column=t.text_pair_column,
                          label_column=t.label_column, skip_bad_rows=skip_bad_rows)
    examples = classify.examples_of(data, LabelMap(labels))[:max_examples]
    out = classify.evaluate(run.model, _tok(run), examples, max_len=_max_len(run), batch_size=batch_size,
                            precision=precision, num_labels=len(labels))
    out["labels"] = labels
    out["confusion_matrix"] = confusion_matrix(out["y_true"], out["y_pred"], num_labels=len(labels)).tolist()
    return out


def _evaluate_generate(run: Run, path: Path, max_examples: int | None, opts: dict[str, Any]) -> dict[str, Any]:
    from gptbert.tasks import generate as gen

    extra = run.task.extra
    pairs, fmt = gen.read_examples(path, skip_bad_rows=bool(opts.get("skip_bad_rows", False)))
    pairs = pairs[:max_examples]
    precision = opts.get("precision", "fp32")
    if extra.get("method") == "extractive" or run.config.family != "gpt":
        from gptbert.tasks import extractive

        return extractive.evaluate(run.model, _tok(run), pairs, k=int(opts.get("k", extra.get("k", 1))),
                                   max_len=_max_len(run), precision=precision)
    gen_opts = _generation_opts(opts)
    return gen.evaluate(run.model, _tok(run), pairs, separator=extra.get("separator", gen.separator_for(fmt)),
                        max_len=_max_len(run),
                        max_new_tokens=int(opts.get("max_new_tokens") or extra.get("max_new_tokens",
                                                                                  gen.DEFAULT_MAX_NEW_TOKENS)),
                        batch_size=int(opts.get("batch_size", 16)), precision=precision,
                        stop_at_newline=fmt == "chat", **gen_opts)


_GENERATION_FIELDS = ("do_sample", "temperature", "top_k", "top_p", "repetition_penalty", "num_beams",
                      "length_penalty", "seed")


def _generation_opts(opts: dict[str, Any]) -> dict[str, Any]:
    return {k: opts[k] for k in _GENERATION_FIELDS if opts.get(k) is not None}


# ---------------------------------------------------------------------------------------
# Language-model evaluation
# ---------------------------------------------------------------------------------------


def _read_text(path: Path, max_chars: int | None) -> str:
    text = path.read_text(encoding="utf-8", errors="replace")
    return text[:max_chars] if max_chars else text


@torch.inference_mode()
def evaluate_lm(model: nn.Module, tokenizer: Tokenizer, path: str | Path, *, max_len: int = 128,
                max_chars: int | None = None, batch_size: int = 16, precision: str = "fp32",
                seed: int = 0) -> dict[str, Any]:
    """Held-out language-model metrics on a text file.

    GPT: the text (prefixed with end-of-text) in consecutive blocks of ``max_len``
    predicted tokens; every token is predicted once, with the block so far as context.
    ``loss`` (nats/token), ``perplexity``, ``bits_per_token`` and ``bits_per_character`` =
    total NLL / (characters x ln 2), which compares models with different tokenizers.
    BERT: each line, 15% of its tokens (at least one) replaced by [MASK] with a seeded
    generator; ``mlm_accuracy``, ``mlm_loss`` and ``mlm_perplexity`` over the masked tokens.
    ELMo: forward / backward LM perplexity per line.
    """
    from gptbert.metrics import bits_per_character, bits_per_token, perplexity

    config = model.config  # type: ignore[union-attr]
    text = _read_text(Path(path), max_chars)
    if not text.strip():
        raise ValueError(f"{path}: no text")
    device = model_device(model)
    was_training = model.training
    model.eval()
    try:
        if config.family == "gpt":
            if config.head != "lm":
                raise ValueError(f"perplexity needs a GPT with an 'lm' head, this one has {config.head!r}")
            ids = list(tokenizer.encode(text, add_special_tokens=False).ids)
            start_id = tokenizer.eos_id if tokenizer.eos_id is not None else None
            if start_id is not None:
                ids = [start_id] + ids
            if len(ids) < 2:
                raise ValueError(f"{path}: too little text")
            T = max_len
            windows = [(s, min(s + T, len(ids) - 1)) for s in range(0, len(ids) - 1, T)]
            total, count = 0.0, 0
            for b in range(0, len(windows), batch_size):
                chunk = windows[b:b + batch_size]
                width = max(e - s for s, e in chunk)
                idx = torch.full((len(chunk), width), tokenizer.pad_id, dtype=torch.long)  # (B, T)
                tgt = torch.full((len(chunk), width), -100, dtype=torch.long)  # (B, T)
                for r, (s, e) in enumerate(chunk):
                    idx[r, :e - s] = torch.tensor(ids[s:e])
                    tgt[r, :e - s] = torch.tensor(ids[s + 1:e + 1])
                with autocast(precision, device):
                    logits, _ = model(idx.to(device))  # (B, T, V)
                nll = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)),
                                                        tgt.to(device).reshape(-1), ignore_index=-100,
                                                        reduction="sum")
                total += float(nll)
                count += int((tgt != -100).sum())
            n_chars = len(text)
            return {"loss": total / count, "perplexity": perplexity(total / count),
                    "bits_per_token": bits_per_token(total, count),
                    "bits_per_character": bits_per_character(total, n_chars),
                    "n_tokens": count, "n_chars": n_chars, "objective": "causal-lm"}
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if config.family == "bert":
            return _mlm_scores(model, tokenizer, lines, max_len=max_len, batch_size=batch_size, precision=precision,
                               seed=seed)
        return _elmo_scores(model, tokenizer, lines, max_len=max_len, batch_size=batch_size, precision=precision)
    finally:
        model.train(was_training)


def _mlm_scores(model: nn.Module, tokenizer: Tokenizer, lines: list[str], *, max_len: int, batch_size: int,
                precision: str, seed: int) -> dict[str, Any]:
    from gptbert.data.objectives import pad_sequences

    config = model.config  # type: ignore[union-attr]
    if config.head not in ("pretrain", "mlm"):
        raise ValueError(f"MLM accuracy needs a BERT with an MLM head ('pretrain' or 'mlm'), "
                         f"this one has {config.head!r}")
    if tokenizer.mask_id is None:
        raise ValueError("the tokenizer has no [MASK] token")
    rng = np.random.default_rng(seed)
    device = model_device(model)
    hits, n, nll = 0, 0, 0.0
    for b in range(0, len(lines), batch_size):
        encs = [tokenizer.encode(t, max_length=max_len) for t in lines[b:b + batch_size]]
        rows, tgts = [], []
        for enc in encs:
            ids = list(enc.ids)
            cand = [i for i, sp in enumerate(enc.special_tokens_mask) if not sp]
            tgt = [-100] * len(ids)
            if cand:
                k = max(1, int(round(0.15 * len(cand))))
                for i in rng.choice(cand, size=k, replace=False).tolist():
                    tgt[i] = ids[i]
                    ids[i] = tokenizer.mask_id
            rows.append(ids)
            tgts.append(tgt)
        idx = pad_sequences(rows, tokenizer.pad_id)  # (B, T)
        T = idx.shape[1]
        tgt_t = pad_sequences(tgts, -100, length=T).to(device)  # (B, T)
        mask = pad_sequences([[1] * len(r) for r in rows], 0, length=T).to(device)
        kwargs: dict[str, Any] = {"attention_mask": mask}
        if config.type_vocab_size:
            kwargs["token_type_ids"] = torch.zeros_like(mask)
        with autocast(precision, device):
            logits, _ = model(idx.to(device), **kwargs)
        mlm = (logits[0] if isinstance(logits, tuple) else logits).float()  # (B, T, V)
        chosen = tgt_t != -100
        hits += int((mlm.argmax(-1)[chosen] == tgt_t[chosen]).sum())
        n += int(chosen.sum())
        nll += float(torch.nn.functional.cross_entropy(mlm[chosen], tgt_t[chosen], reduction="sum"))
    if n == 0:
        raise ValueError("no token could be masked (empty lines?)")
    return {"mlm_accuracy": hits / n, "mlm_loss": nll / n, "mlm_perplexity": math.exp(min(nll / n, 50.0)),
            "n_masked": n, "n": len(lines), "objective": "mlm"}


def _elmo_scores(model: nn.Module, tokenizer: Tokenizer, lines: list[str], *, max_len: int, batch_size: int,
                 precision: str) -> dict[str, Any]:
    from gptbert.data.objectives import ElmoLMCollator

    config = model.config  # type: ignore[union-attr]
    if config.head != "lm":
        raise ValueError(f"ELMo perplexity needs the 'lm' head, this model has {config.head!r}")
    collate = ElmoLMCollator(tokenizer, max_len, max_word_chars=config.max_word_chars)
    device = model_device(model)
    fwd = bwd = 0.0
    count = 0
    for b in range(0, len(lines), batch_size):
        batch = {k: v.to(device) for k, v in collate(lines[b:b + batch_size]).items()}
        with autocast(precision, device):
            logits, _ = model(batch["idx"], attention_mask=batch["attention_mask"], char_ids=batch.get("char_ids"))
        t = batch["targets"]  # (B, T, 2)
        for d, (lg, tg) in enumerate(zip(logits, (t[..., 0], t[..., 1]))):
            s = float(torch.nn.functional.cross_entropy(lg.float().reshape(-1, lg.size(-1)), tg.reshape(-1),
                                                        ignore_index=-100, reduction="sum"))
            if d == 0:
                fwd += s
            else:
                bwd += s
        count += int((t[..., 0] != -100).sum())
    return {"fwd_perplexity": math.exp(min(fwd / count, 50.0)), "bwd_perplexity": math.exp(min(bwd / count, 50.0)),
            "n_tokens": count, "n": len(lines), "objective": "bidirectional-lm"}


# ---------------------------------------------------------------------------------------
# Prediction
# ---------------------------------------------------------------------------------------


def _text_of(x: Any, *keys: str) -> str:
    if isinstance(x, str):
        return x
    if isinstance(x, dict):
        for k in keys:
            if k in x and isinstance(x[k], str):
                return x[k]
        raise ValueError(f"input {x!r}: expected one of the keys {', '.join(keys)}")
    raise TypeError(f"input: expected a str or a dict, got {type(x).__name__}")


def predict_run(run: Run | str | Path, inputs: Sequence[Any], **opts: Any) -> list[dict[str, Any]]:
    """One result dict per input, for the run's task.

    classify: texts or ``{"text", "text_pair"}`` -> label, score, scores. tokens: texts or
    word lists -> tags [[word, tag]] and entities. qa: ``{"question", "context"}`` (or
    (question, context) pairs) -> answer, score, start, end (``top_windows``: read only the K windows
    of a long context sharing the most question words). generate: sources (or, for a
    dialogue run, a user message) -> output (GPT) or summary (BERT). pretrain: BERT fills
    the mask token (top ``top_k``), GPT continues the prompt.
    """
    run = _as_run(run)
    if isinstance(inputs, (str, dict)):
        inputs = [inputs]
    inputs = list(inputs)
    if not inputs:
        return []
    tok = _tok(run)
    task, head, family = run.task.task, run.config.head, run.config.family
    max_len = _max_len(run)
    precision = opts.get("precision", "fp32")
    if task == "classify" or (task == "none" and head == "classify"):
        from gptbert.tasks.classify import predict_proba

        labels = run.labels or [str(i) for i in range(run.config.num_labels)]
        ex = [(_text_of(x, "text", "sentence"), x.get("text_pair") if isinstance(x, dict) else None, None)
              for x in inputs]
        probs = predict_proba(run.model, tok, ex, max_len=max_len, precision=precision)
        return [{"text": e[0], "label": labels[int(p.argmax())], "score": float(p.max()),
                 "scores": {lab: float(v) for lab, v in zip(labels, p)}} for e, p in zip(ex, probs)]
    if task == "tokens" or head == "tokens":
        from gptbert.tasks import tokens

        items = [x if isinstance(x, (list, tuple)) else _text_of(x, "text", "tokens") for x in inputs]
        labels = run.labels or [str(i) for i in range(run.config.num_labels)]
        tagged = tokens.tag(run.model, tok, items, labels, max_len=max_len, precision=precision)
        return [{"text": x if isinstance(x, str) else " ".join(x), "tags": [list(p) for p in t],
                 "entities": tokens.entities(t)} for x, t in zip(items, tagged)]
    if task == "qa" or head == "qa":
        from gptbert.tasks import qa

        qs, cs = [], []
        for x in inputs:
            if isinstance(x, dict):
                qs.append(_text_of(x, "question"))
                cs.append(_text_of(x, "context"))
            elif isinstance(x, (list, tuple)) and len(x) == 2:
                qs.append(x[0])
                cs.append(x[1])
            else:
                raise ValueError(f"qa input {x!r}: expected {{'question', 'context'}} or (question, context)")
        res = qa.answer(run.model, tok, qs, cs, max_len=max_len, precision=precision,
                        doc_stride=int(opts.get("doc_stride", run.task.extra.get("doc_stride", 128))),
                        max_new_tokens=int(opts.get("max_new_tokens") or run.task.extra.get("max_new_tokens", 32)),
                        top_windows=opts.get("top_windows"))
        return [{"question": q, **{k: v for k, v in r.items() if k != "n_best"}} for q, r in zip(qs, res)]
    if task == "generate" and (run.task.extra.get("method") or family != "gpt"):
        # A fine-tuned generation run (a bare GPT checkpoint just continues its prompt, below).
        extra = run.task.extra
        sources = [_text_of(x, "source", "text", "document", "prompt") for x in inputs]
        if extra.get("method") == "extractive" or family != "gpt":
            from gptbert.tasks import extractive

            res = extractive.summarize(run.model, tok, sources, k=int(opts.get("k") or extra.get("k", 1)),
                                       max_len=max_len, precision=precision)
            return [{"source": s, "summary": r["summary"], "sentences": r["sentences"]} for s, r in zip(sources, res)]
        from gptbert.tasks import generate as gen

        chat = extra.get("format") == "chat"
        if chat:
            sources = [gen.format_chat([("user", s)], tok) for s in sources]
        outs = gen.predict(run.model, tok, sources, separator=extra.get("separator", gen.PAIR_SEPARATOR),
                           max_len=max_len, precision=precision, stop_at_newline=chat,
                           max_new_tokens=int(opts.get("max_new_tokens") or extra.get("max_new_tokens",
                                                                                     gen.DEFAULT_MAX_NEW_TOKENS)),
                           **_generation_opts(opts))
        return [{"source": _text_of(x, "source", "text", "document", "prompt"), "output": o}
                for x, o in zip(inputs, outs)]
    if head in ("pretrain", "mlm"):
        from gptbert.api import LM

        lm = LM(run, precision=precision)
        return [{"text": t, "fills": lm.fill_mask(t, top_k=int(opts.get("top_k") or 5))}
                for t in (_text_of(x, "text") for x in inputs)]
    if family == "gpt" and head == "lm":
        from gptbert.generate import generate_text

        prompts = [_text_of(x, "prompt", "text") for x in inputs]
        outs = generate_text(run.model, tok, prompts, max_new_tokens=int(opts.get("max_new_tokens") or 50),
                             **_generation_opts(opts))
        return [{"prompt": p, "output": o} for p, o in zip(prompts, outs)]
    raise ValueError(f"{run.path}: nothing to predict with a {family} model with head {head!r} (task {task!r})")

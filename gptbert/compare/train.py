"""One candidate: pre-train (presets, with a corpus), fine-tune, evaluate, then measure its inference."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gptbert.compare.candidates import BudgetPlan, CandidateSpec, _secs
from gptbert.compare.data import _Data
from gptbert.compare.inference import _call_in_fresh_process, measure_inference
from gptbert.compare.progress import _cpu_clock, _Interrupted, _Log, _release_memory
from gptbert.compare.settings import _BOOTSTRAP_RESAMPLES, CompareSettings
from gptbert.config import ModelConfig
from gptbert.results import CandidateResult, LatencyStats, Quality, TrainStats

# --------------------------------------------------------------------------- one candidate


@dataclass
class _Context:
    s: CompareSettings
    plan: BudgetPlan
    data: _Data
    tokenizers: dict[str, Any]
    out: Path
    log: _Log
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    probes: dict[str, tuple[str, Path, float]] = field(default_factory=dict)
    """Encoder directory -> (embed-lr candidate, its run, its fit seconds): a fine-tune of the same
    checkpoint starts from that head instead of fitting a probe again."""
    """Each measured candidate's inference request (64 dev examples), for the interleaved latency pass."""


def _train_stats(result: Any, *, finetune: bool) -> TrainStats:
    return TrainStats(
        wall_s=result.wall_time, tokens=result.tokens, tokens_per_s=result.tokens_per_s, steps=result.steps,
        final_loss=result.train_loss, best_metric=result.best_metric if finetune else None,
        stop_reason=result.stop_reason,
    )


def _curves(history: Sequence[dict[str, Any]], phase: str, metric: str | None) -> list[dict[str, Any]]:
    out = []
    for r in history:
        if r.get("kind") == "train" and r.get("loss") is not None:
            out.append({"step": r["step"], "loss": r["loss"], "phase": phase})
        elif r.get("kind") == "eval" and metric and r.get(f"eval_{metric}") is not None:
            out.append({"step": r["step"], "metric": r[f"eval_{metric}"], "phase": phase})
    return out


def _steps_per_epoch(n: int, batch: int) -> int:
    return max(1, math.ceil(n / batch))


def _finetune_args(ctx: _Context, lr: float, out_dir: Path) -> Any:
    from gptbert.training import TrainArgs

    s = ctx.s
    per_epoch = _steps_per_epoch(ctx.data.n_train, s.batch_size)
    return TrainArgs(
        out_dir=str(out_dir), time_budget=f"{ctx.plan.finetune_s:g}s", max_epochs=s.max_epochs,
        max_steps=s.max_steps, batch_size=s.batch_size, lr=lr, warmup_ratio=0.1, schedule="linear",
        # "loss" lets the task pick its metric (accuracy, entity F1, SQuAD F1, ROUGE-L; loss for GPT generation).
        eval_every=min(per_epoch, 200), eval_metric="loss",
        patience=s.patience, keep_best=True,
        progress=s.progress, tensorboard=False, seed=s.seed, precision="auto",
    )


def default_lrs(spec: CandidateSpec) -> tuple[float, float]:
    """(fine-tuning, pre-training) peak learning rates used when none is given.

    Checkpoints fine-tune at 1e-4. Presets: 1e-3 / 1e-3 for pre-LN models (GPT, ELMo) and for
    post-LN models (BERT) up to 128 wide; wider post-LN models get 2e-4 / 3e-4. Measured: at 1e-3
    a post-LN ``bert-mini`` (256 wide) does not learn SST-2 at all (200 steps on 8,000 examples:
    dev accuracy 0.52 at 1e-3 vs 0.69 at 2e-4; ``gpt-mini`` at 1e-3: 0.68), while ``bert-tiny``
    (128 wide) needs the large step in the demo's 25 s (0.94 at 1e-3, majority class at 2e-4).
    """
    if not spec.is_preset:
        return 1e-4, 1e-4
    cfg = ModelConfig.from_name(spec.source, **spec.overrides)
    return (2e-4, 3e-4) if cfg.norm == "post" and cfg.n_embd > 128 else (1e-3, 1e-3)


def _pretrain_lr(s: CompareSettings, spec: CandidateSpec) -> float:
    return s.pretrain_lr if s.pretrain_lr is not None else default_lrs(spec)[1]


def _pretrain_args(ctx: _Context, out_dir: Path, lr: float) -> Any:
    from gptbert.training import TrainArgs

    s = ctx.s
    return TrainArgs(
        out_dir=str(out_dir), time_budget=f"{ctx.plan.pretrain_s:g}s", max_steps=s.max_steps,
        batch_size=s.batch_size, lr=lr, warmup_ratio=0.05, schedule="linear", eval_every=0,
        eval_metric="loss", progress=s.progress, tensorboard=False, seed=s.seed, precision="auto",
    )


def _check_interrupted(result: Any, phase: str) -> None:
    if result.stop_reason == "interrupted":
        raise _Interrupted(phase)


def run_candidate(ctx: _Context, spec: CandidateSpec, index: int, total: int) -> CandidateResult:
    """Train and measure one candidate; errors make it 'failed' (KeyboardInterrupt propagates)."""
    s, log = ctx.s, ctx.log
    log.prefix = f"[{index}/{total} {spec.name}] "
    log.phase = "setup"
    try:
        family = spec.family()
    except (ValueError, FileNotFoundError, OSError) as e:
        log(f"failed: {e}")
        return CandidateResult(name=spec.name, family="other", source=spec.source, task=s.task, status="failed",
                               error=str(e))
    res = CandidateResult(name=spec.name, family=family, source=spec.source, task=s.task)
    t0 = time.perf_counter()
    try:
        if spec.is_baseline:
            from gptbert.compare.baselines import train_baseline

            run_dir = train_baseline(ctx, spec, res)
            if spec.kind == "embed-lr" and spec.encoder is not None:
                ctx.probes[str(Path(spec.encoder).resolve())] = (spec.name, run_dir, res.finetune.wall_s or 0.0)
        else:
            run_dir = _train_transformer(ctx, spec, family, res)
        _measure(ctx, spec, res, run_dir)
        res.extra["candidate_wall_s"] = round(time.perf_counter() - t0, 1)
        log(f"done in {res.extra['candidate_wall_s']:.0f} s: {_one_line(res)}")
    except KeyboardInterrupt:
        raise
    except Exception as e:  # a failed candidate must not stop the others
        res.status = "failed"
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        res.error = f"{log.phase}: {type(e).__name__}{': ' + msg if msg else ''}"
        log(f"failed in {log.phase}: {type(e).__name__}: {msg}")
    return res


def _train_transformer(ctx: _Context, spec: CandidateSpec, family: str, res: CandidateResult) -> Path:
    """Pre-train (presets, with a corpus), fine-tune and evaluate; the fine-tuned run's directory."""
    from gptbert.measure import PeakRSS, saved_size_mb, size_on_disk
    from gptbert.metrics import bootstrap_ci
    from gptbert.models import count_parameters
    from gptbert.recipes import finetune, pretrain
    from gptbert.run import load_run
    from gptbert.source import tokenizer_kind
    from gptbert.tasks import classify

    s, log, data = ctx.s, ctx.log, ctx.data
    cand_dir = ctx.out / "candidates" / spec.dir_name
    cand_dir.mkdir(parents=True, exist_ok=True)
    extra: dict[str, Any] = res.extra
    extra["run_dir"] = str(cand_dir)
    cpu: dict[str, float] = {}
    peaks: list[float] = []

    source, tokenizer, overrides = spec.source, None, spec.overrides or None
    if spec.is_preset:
        kind = tokenizer_kind(family)
        tokenizer = ctx.tokenizers[kind]
        users = "BERT and ELMo presets" if kind == "wordpiece" else "GPT presets"
        trained_on = "pre-training corpus + training texts" if s.pretrain_corpus else "training texts"
        extra["tokenizer"] = (f"{kind}, {tokenizer.vocab_size} entries, trained on the {trained_on}, shared by the "
                              f"{users} (tokenizers/{kind})")
        extra["init"] = "random (preset)" + (f", overrides {spec.overrides}" if spec.overrides else "")
    else:
        extra["tokenizer"] = "the checkpoint's own"
        extra["init"] = f"pre-trained checkpoint {spec.source}"
        probe = ctx.probes.get(str(Path(spec.source).resolve())) if s.task == "classify" and s.recipe else None
        if probe is not None:  # the embed-lr baseline already fitted this encoder's head on all of train
            name, probe_dir, probe_s = probe
            source = str(probe_dir)
            extra["init"] += (f", classify head from {name}'s logistic regression (fitted on all of train in "
                              f"{probe_s:.0f} s, not counted in this budget)")
            extra["head_from"] = name

    if spec.is_preset and ctx.plan.pretrain_s > 0:
        objective = {"bert": "MLM+NSP", "gpt": "causal LM", "elmo": "forward+backward LM"}[family]
        log.start("pre-train", f"{objective}, budget {_secs(ctx.plan.pretrain_s)}")
        _release_memory()
        with PeakRSS(interval_s=0.02) as rss, _cpu_clock() as clock:
            pt_dir, pt = pretrain(spec.source, s.pretrain_corpus, cand_dir / "pretrain",
                                  _pretrain_args(ctx, cand_dir / "pretrain", _pretrain_lr(s, spec)), tokenizer=tokenizer,
                                  max_len=s.max_len, overrides=overrides)
        _check_interrupted(pt, "pre-train")
        cpu["pretrain"] = clock["cpu_s"]
        peaks.append(rss.peak_mb)
        res.pretrain = _train_stats(pt, finetune=False)
        res.curves += _curves(pt.history, "pretrain", None)
        extra["pretrain_dev"] = {k: v for k, v in pt.eval_metrics.items() if isinstance(v, float)}
        source, tokenizer, overrides = str(pt_dir), None, None

    lr = s.lr if s.lr is not None else default_lrs(spec)[0]
    args = _finetune_args(ctx, lr, cand_dir)
    log.start("fine-tune", f"budget {_secs(ctx.plan.finetune_s)}" + (", recipe auto" if s.recipe else ""))
    _release_memory()
    with PeakRSS(interval_s=0.02) as rss, _cpu_clock() as clock:
        run_dir, ft, ft_extra = finetune(
            source, s.task, s.train, cand_dir, args, dev_path=s.dev,
            options={"text_column": s.text_column, "text_pair_column": s.text_pair_column,
                     "label_column": s.label_column},
            tokenizer=tokenizer, vocab_size=s.vocab_size, max_len=s.max_len,
            skip_bad_rows=s.skip_bad_rows, max_train=s.max_train, overrides=overrides, recipe=s.recipe,
            explicit=_explicit(s))
    _check_interrupted(ft, "fine-tune")
    plan = ft_extra.get("recipe")
    used = dict(plan.to_dict()) if plan is not None else {"lr": lr, "batch_size": s.batch_size, "max_len": s.max_len,
                                                          "eval_every": args.eval_every, "patience": s.patience}
    used.update(max_epochs=s.max_epochs, precision=args.precision,
                pretrain_lr=_pretrain_lr(s, spec) if res.pretrain else None)
    extra["recipe"] = used
    cpu["finetune"] = clock["cpu_s"]
    peaks.append(rss.peak_mb)
    res.peak_rss_mb["train"] = max(peaks)
    res.finetune = _train_stats(ft, finetune=True)
    res.curves += _curves(ft.history, "finetune", ft.metric_name if ft.metric_name != "loss" else None)
    extra["cpu_s"] = {k: round(v, 1) for k, v in cpu.items()}
    limited = budget_limited(res.curves, ft.stop_reason, ft.epochs)
    if limited is not None:
        extra["budget_limited"] = limited

    log.start("evaluate")
    run = load_run(run_dir)
    model, tok = run.model, run.tokenizer
    if s.task == "classify":
        dev = ft_extra["dev"]
        point, lo, hi = bootstrap_ci("accuracy", dev["y_true"], dev["y_pred"], n_resamples=_BOOTSTRAP_RESAMPLES,
                                     seed=s.seed)
        f1, f1_lo, f1_hi = bootstrap_ci("macro_f1", dev["y_true"], dev["y_pred"],
                                        n_resamples=_BOOTSTRAP_RESAMPLES, seed=s.seed)
        quality = Quality(metric="accuracy", dev=point, dev_ci=(lo, hi))
        _calibration(run, data, extra)
        extra["dev_macro_f1"] = f1
        extra["dev_macro_f1_ci"] = [f1_lo, f1_hi]
        extra["dev_mcc"] = dev.get("mcc")
        if data.test_examples is not None:
            test = classify.evaluate(model, tok, data.test_examples, max_len=s.max_len, num_labels=len(data.labels))
            t_point, t_lo, t_hi = bootstrap_ci("accuracy", test["y_true"], test["y_pred"],
                                               n_resamples=_BOOTSTRAP_RESAMPLES, seed=s.seed)
            quality.test, quality.test_ci = t_point, (t_lo, t_hi)
            extra["test_macro_f1"] = test["macro_f1"]
    else:
        quality = _task_quality(s, data, ft_extra["dev"], run, extra)
    extra["dev_note"] = "dev also picked the kept checkpoint (early stopping); test scores are unbiased"
    res.quality = quality
    res.n_params = count_parameters(model)
    res.n_params_non_embedding = count_parameters(model, non_embedding=True)
    res.size_mb = {k: float(v) for k, v in size_on_disk(model).items()}
    extra["saved_size_mb"] = {"fp32": saved_size_mb(Path(run_dir) / "model.safetensors")}
    with contextlib.suppress(Exception):
        extra["saved_size_mb"]["bf16"] = _saved_bf16_mb(model, cand_dir)
    cfg = model.config  # type: ignore[union-attr]
    extra["architecture"] = f"{cfg.n_layer} layers, width {cfg.n_embd}" + (
        f", {cfg.n_head} heads" if family != "elmo" else
        f", LSTM cell {cfg.intermediate_size}, {'char CNN' if cfg.use_char_cnn else 'word embeddings'}")
    del run, model
    _release_memory()

    return Path(run_dir)


def budget_limited(curves: Sequence[dict[str, Any]], stop_reason: str | None,
                   epochs: float | None = None) -> dict[str, Any] | None:
    """When fine-tuning stopped on the time budget while the dev metric was still rising: the slope of
    its last two evaluations (per 100 steps), else None (issue #21, item 6)."""
    if stop_reason != "time_budget":
        return None
    evals = [(c["step"], c["metric"]) for c in curves if c.get("phase") == "finetune" and c.get("metric") is not None]
    if len(evals) < 2:
        return {"slope_per_100_steps": None, "epochs": epochs,
                "why": "stopped on the time budget after fewer than two dev evaluations"}
    (s0, m0), (s1, m1) = evals[-2], evals[-1]
    if s1 <= s0 or m1 <= m0:
        return None
    return {"slope_per_100_steps": round((m1 - m0) / (s1 - s0) * 100, 4), "epochs": epochs,
            "why": f"stopped on the time budget while the dev metric still rose ({m0:.3f} -> {m1:.3f} over steps "
                   f"{s0}-{s1})"}


def _explicit(s: CompareSettings) -> set[str]:
    """TrainArgs fields (and max_len) the recipe must keep: what the user gave, and the loop's own limits."""
    return set(s.explicit) | {"max_epochs", "max_steps", "time_budget"}


def _measure(ctx: _Context, spec: CandidateSpec, res: CandidateResult, run_dir: Path) -> None:
    """Latency, throughput, peak RSS (and decoding speed) of the trained candidate, in a fresh process."""
    import torch

    s, log, data = ctx.s, ctx.log, ctx.data
    quality, extra, family = res.quality, res.extra, res.family
    assert quality is not None
    where = "a fresh process" if s.isolate_inference else "the training process"
    log.start("measure inference", f"{', '.join(s.precisions)}; batch 1 x{s.latency_repeats} and batch 32, "
                                   f"in {where}")
    request = {
        "run_dir": str(run_dir), "examples": data.dev_examples, "precisions": list(s.precisions),
        "max_len": int(extra.get("recipe", {}).get("max_len") or s.max_len), "repeats": s.latency_repeats, "max_seconds": s.latency_max_s,
        "decode": family == "gpt", "threads": torch.get_num_threads(), "seed": s.seed, "task": s.task,
        "kind": spec.kind,
    }
    m = _call_in_fresh_process(request) if s.isolate_inference else measure_inference(request)
    ctx.requests[res.name] = {**request, "examples": list(data.dev_examples[:64])}
    for prec, st in m["latency"].items():
        res.latency[prec] = LatencyStats(**st)
    res.latency_samples = {p: [round(x, 4) for x in v] for p, v in m["samples"].items()}
    res.throughput = dict(m["throughput"])
    res.peak_rss_mb["inference"] = m["peak_rss_mb"]
    res.decode_tokens_per_s = m.get("decode_tokens_per_s")
    scope = ("model forward on pre-built batches (no tokenization)" if s.task == "classify" else
             "end to end: predict on raw inputs (tokenization, forward, decoding)")
    if spec.kind == "tfidf-lr":
        scope = "end to end from raw text (n-gram features included)"
    extra["inference"] = {"measured_in": where, "scope": scope, "methods": m["methods"]}
    if s.task == "classify":
        extra["dev_accuracy_by_precision"] = {"fp32": quality.dev, **m.get("dev_accuracy", {})}
    if m.get("errors"):
        extra["inference_errors"] = m["errors"]
    if m.get("decode_error"):
        extra["decode_error"] = m["decode_error"]
    if not res.latency:
        raise RuntimeError("no precision could be timed: " + "; ".join(f"{k}: {v}" for k, v in m["errors"].items()))


def _calibration(run: Any, data: _Data, extra: dict[str, Any]) -> None:
    """ECE and Brier before / after temperature scaling on dev (:mod:`gptbert.compare.calibration`)."""
    from gptbert.compare.calibration import calibrate
    from gptbert.tasks import classify

    try:
        probs = classify.predict_proba(run.model, run.tokenizer, data.dev_examples, max_len=run.task.max_len)  # (N, L)
        extra.update(calibrate(probs, [ex[2] for ex in data.dev_examples], run.path))
    except Exception as e:  # calibration is a bonus; the candidate's scores stand
        extra["calibration_error"] = f"{type(e).__name__}: {e}"


def _task_quality(s: CompareSettings, data: _Data, dev: dict[str, Any], run: Any, extra: dict[str, Any]) -> Quality:
    """Headline metric of a tokens / qa / generate run on dev (with a bootstrap interval) and test."""
    from gptbert.metrics import bootstrap_ci
    from gptbert.recipes import evaluate
    from gptbert.tasks import TASKS

    task = TASKS[s.task]
    metric, key = task.headline, task.metric
    if key not in dev:
        raise RuntimeError(f"the {s.task} evaluation has no {key!r} score (got {sorted(dev)})")
    quality = Quality(metric=metric, dev=float(dev[key]))
    try:
        pairs = task.bootstrap_pairs(dev, data.splits)
        if pairs is not None and pairs[1]:
            gold, pred = pairs
            _, lo, hi = bootstrap_ci(metric, gold, pred, n_resamples=_BOOTSTRAP_RESAMPLES, seed=s.seed)
            quality.dev_ci = (lo, hi)
            extra["dev_n_scored"] = len(pred)
    except Exception as e:  # an interval is a bonus; the score itself stands
        extra["dev_ci_error"] = f"{type(e).__name__}: {e}"
    extra["dev_scores"] = {k: v for k, v in dev.items() if isinstance(v, float)}
    if s.test:
        test = evaluate(run, s.test)
        quality.test = float(test[key])
    return quality


def _one_line(res: CandidateResult) -> str:
    q = res.quality
    parts = []
    if q is not None and q.dev is not None:
        ci = f" [{q.dev_ci[0]:.3f}, {q.dev_ci[1]:.3f}]" if q.dev_ci else ""
        parts.append(f"dev {q.metric} {q.dev:.3f}{ci}")
    steps = [f"{n} {st.steps}" for n, st in (("pre-train", res.pretrain), ("fine-tune", res.finetune)) if st]
    if steps:
        parts.append(" + ".join(steps) + " steps")
    lat = res.latency.get("fp32") or next(iter(res.latency.values()), None)
    if lat is not None:
        parts.append(f"p50 {lat.p50_ms:.2f} ms")
    rss = res.peak_rss_mb
    if rss.get("train") is not None and rss.get("inference") is not None:
        parts.append(f"peak RSS train/infer {rss['train']:.0f}/{rss['inference']:.0f} MB")
    return ", ".join(parts)


def _saved_bf16_mb(model: Any, tmp_dir: Path) -> float:
    """Size of the weights saved as bf16 safetensors (written to a temporary file, then removed)."""
    import torch
    from safetensors.torch import save_file

    from gptbert.measure import saved_size_mb

    seen: set[int] = set()
    state = {}
    for k, v in model.state_dict().items():
        if v.data_ptr() in seen:
            continue
        seen.add(v.data_ptr())
        state[k] = (v.to(torch.bfloat16) if v.is_floating_point() else v).contiguous()
    path = tmp_dir / ".bf16-size.safetensors"
    try:
        save_file(state, str(path))
        return saved_size_mb(path)
    finally:
        path.unlink(missing_ok=True)



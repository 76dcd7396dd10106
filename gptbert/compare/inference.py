"""Inference measurements of a fine-tuned run (latency, throughput, peak RSS, decoding), optionally in a fresh process."""

from __future__ import annotations

import contextlib
import copy
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

from gptbert.compare.settings import _MAX_PRECISION_EVAL

# --------------------------------------------------------------------------- inference measurement


def _model_inputs(batch: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in batch.items() if k not in ("targets", "next_sentence_label")}


def _timed(fn: Callable[[], Any], repeats: int, max_seconds: float, warmup: int = 2) -> list[float]:
    """Up to ``repeats`` timed calls (ms), stopping early once ``max_seconds`` have passed (at least 3)."""
    from gptbert.measure import time_callable

    deadline = time.perf_counter() + max_seconds
    samples = time_callable(fn, warmup=warmup, repeats=1)
    while len(samples) < repeats and (len(samples) < 3 or time.perf_counter() < deadline):
        samples += time_callable(fn, warmup=0, repeats=1)
    return samples


def _variant(model: Any, precision: str, probe: dict[str, Any]) -> tuple[Any, Callable[[], Any], str]:
    """(model, context factory, description) that runs ``model`` at ``precision``."""
    import torch

    if precision == "fp32":
        return model, contextlib.nullcontext, "fp32 weights as trained"
    if precision == "bf16":
        try:
            m = copy.deepcopy(model).to(torch.bfloat16).eval()
            with torch.inference_mode():
                m(**probe)
            return m, contextlib.nullcontext, "weights cast to bf16 (a copy)"
        except Exception as e:  # some layers (e.g. LSTMs) may lack bf16 kernels: autocast instead
            note = f"{type(e).__name__}"

            def ctx() -> Any:
                return torch.autocast("cpu", dtype=torch.bfloat16)

            return model, ctx, f"autocast to bf16, fp32 weights (casting the weights failed: {note})"
    if precision == "int8":
        from gptbert.compress.quantize import quantize_dynamic_int8

        m = quantize_dynamic_int8(copy.deepcopy(model)).eval()
        return m, contextlib.nullcontext, "dynamic int8 Linear layers (gptbert.compress.quantize)"
    raise ValueError(f"unknown precision {precision!r}")


def measure_inference(request: dict[str, Any]) -> dict[str, Any]:
    """Latency, throughput, peak RSS (and decoding speed) of a fine-tuned run.

    ``request``: ``run_dir``, ``task``, ``examples`` (classify: (text, pair, label id) tuples, timed
    through the model's forward on pre-built batches; other tasks: ``recipes.predict`` inputs, timed
    end to end), ``precisions``,
    ``max_len``, ``repeats``, ``max_seconds`` (per precision), ``decode`` (GPT: time greedy
    decoding), ``threads`` (torch threads, optional). Returns plain values only (it also
    runs in a child process).
    """
    import torch

    from gptbert.measure import PeakRSS
    from gptbert.run import load_run

    if request.get("threads"):
        torch.set_num_threads(int(request["threads"]))
    torch.manual_seed(int(request.get("seed", 0)))
    examples = list(request["examples"])
    if not examples:
        raise ValueError("measure_inference: no examples")
    out: dict[str, Any] = {"latency": {}, "samples": {}, "throughput": {}, "methods": {}, "dev_accuracy": {},
                           "errors": {}}
    task = request.get("task", "classify")
    if request.get("kind") == "tfidf-lr":
        with PeakRSS(interval_s=0.005) as rss:
            _measure_tfidf(examples, request, out)
        out["peak_rss_mb"] = rss.peak_mb
        return out
    with PeakRSS(interval_s=0.005) as rss:
        run = load_run(request["run_dir"])
        model, tok = run.model.eval(), run.tokenizer
        if task == "classify":
            _measure_forward(model, tok, examples, request, out)
            prompt = examples[0][0]
        else:
            _measure_predict(run, examples, request, out)
            prompt = _prompt_of(examples[0])
        if request.get("decode"):
            try:
                out["decode_tokens_per_s"] = _decode_speed(model, tok, prompt)
            except Exception as e:
                out["decode_error"] = f"{type(e).__name__}: {e}"
    out["peak_rss_mb"] = rss.peak_mb
    return out


def _measure_forward(model: Any, tok: Any, examples: list[Any], request: dict[str, Any], out: dict[str, Any]) -> None:
    """Batch-1 latency, batch-32 throughput and dev accuracy per precision of a classifier's forward pass."""
    import torch

    from gptbert.measure import latency_stats, throughput
    from gptbert.tasks import classify

    repeats, max_s = int(request["repeats"]), float(request["max_seconds"])
    collate = classify.make_collator(tok, model.config, int(request["max_len"]))
    singles = [_model_inputs(collate([ex])) for ex in examples[:64]]
    big = _model_inputs(collate([examples[i % len(examples)] for i in range(32)]))
    scored = examples[:_MAX_PRECISION_EVAL]
    score_batches = []
    for i in range(0, len(scored), 64):
        batch = collate(scored[i:i + 64])
        score_batches.append((_model_inputs(batch), batch["targets"]))
    for prec in request["precisions"]:
        try:
            variant, ctx, method = _variant(model, prec, singles[0])
            out["methods"][prec] = method
            order = iter(range(10**9))

            def one(v: Any = variant, c: Callable[[], Any] = ctx, it: Iterator[int] = order) -> None:
                with torch.inference_mode(), c():
                    v(**singles[next(it) % len(singles)])

            def batch32(v: Any = variant, c: Callable[[], Any] = ctx) -> None:
                with torch.inference_mode(), c():
                    v(**big)

            samples = _timed(one, repeats, max_s)
            out["samples"][prec] = samples
            out["latency"][prec] = latency_stats(samples)
            t0 = time.perf_counter()
            batch32()
            first = max(time.perf_counter() - t0, 1e-4)
            out["throughput"][prec] = throughput(batch32, 32, warmup=0,
                                                 repeats=int(min(10, max(2, max_s / 2 / first))))
            if prec != "fp32":
                hits = 0
                with torch.inference_mode(), ctx():
                    for inputs, targets in score_batches:
                        logits, _ = variant(**inputs)
                        hits += int((logits.float().argmax(-1) == targets).sum())
                out["dev_accuracy"][prec] = hits / len(scored)
        except Exception as e:
            out["errors"][prec] = f"{type(e).__name__}: {e}"


def _measure_tfidf(examples: list[Any], request: dict[str, Any], out: dict[str, Any]) -> None:
    """Batch-1 latency and batch-32 throughput of a ``tfidf-lr`` run, end to end from raw text
    (n-gram extraction, sparse product, softmax); it has one precision (float32 weights)."""
    from gptbert.baselines.tfidf import TfidfLR
    from gptbert.measure import latency_stats, throughput

    model = TfidfLR.load(request["run_dir"])
    repeats, max_s = int(request["repeats"]), float(request["max_seconds"])
    singles = [([ex[0]], [ex[1] or ""] if model.pairs else None) for ex in examples[:64]]
    big_texts = [examples[i % len(examples)][0] for i in range(32)]
    big_pairs = [examples[i % len(examples)][1] or "" for i in range(32)] if model.pairs else None
    for prec in request["precisions"]:
        if prec != "fp32":
            out["errors"][prec] = f"not applicable: {prec} (tfidf-lr keeps float32 weights on sparse features)"
            continue
        out["methods"][prec] = "end to end from raw text: n-gram features, sparse product, softmax"
        order = iter(range(10**9))

        def one(it: Iterator[int] = order) -> None:
            texts, pairs = singles[next(it) % len(singles)]
            model.predict_proba(texts, pairs)

        samples = _timed(one, repeats, max_s)
        out["samples"][prec] = samples
        out["latency"][prec] = latency_stats(samples)
        out["throughput"][prec] = throughput(lambda: model.predict_proba(big_texts, big_pairs), 32, warmup=1,
                                             repeats=5)


def _prompt_of(example: Any) -> str:
    if isinstance(example, str):
        return example
    if isinstance(example, dict):
        return str(example.get("question") or example.get("text") or "")
    if isinstance(example, (list, tuple)) and example and isinstance(example[0], str):
        return " ".join(example) if all(isinstance(w, str) for w in example) else example[0]
    return ""


def _measure_predict(run: Any, inputs: list[Any], request: dict[str, Any], out: dict[str, Any]) -> None:
    """Batch-1 latency and batch-32 throughput of ``recipes.predict`` (tasks other than classify)."""
    from gptbert.measure import latency_stats
    from gptbert.recipes import predict

    repeats, max_s = int(request["repeats"]), float(request["max_seconds"])
    singles = inputs[:64]
    big = [inputs[i % len(inputs)] for i in range(32)]
    for prec in request["precisions"]:
        try:
            if prec == "int8":
                raise ValueError("int8 is measured for classification only")
            out["methods"][prec] = "fp32 weights" if prec == "fp32" else "autocast to bf16, fp32 weights"
            order = iter(range(10**9))

            def one(p: str = prec, it: Iterator[int] = order) -> None:
                predict(run, [singles[next(it) % len(singles)]], precision=p)

            samples = _timed(one, repeats, max_s, warmup=1)
            out["samples"][prec] = samples
            out["latency"][prec] = latency_stats(samples)
            batch_times = _timed(lambda p=prec: predict(run, big, precision=p), 3, max_s / 2, warmup=1)
            out["throughput"][prec] = 32 * len(batch_times) / (sum(batch_times) / 1000.0)
        except Exception as e:
            out["errors"][prec] = f"{type(e).__name__}: {e}"


def _decode_speed(model: Any, tok: Any, prompt: str, new_tokens: int = 32) -> float | None:
    """Greedy decoding tokens/s of a GPT backbone with an LM head (tied to its embeddings)."""
    try:
        from gptbert.generate import GenerationConfig, generate
    except ImportError:
        return None
    import torch

    from gptbert.measure import time_callable
    from gptbert.run import with_head

    lm = with_head(model, "lm").eval()
    ids = list(tok.encode(prompt).ids)[:16] or [tok.pad_id]
    idx = torch.tensor([ids], dtype=torch.long)
    cfg = GenerationConfig(max_new_tokens=new_tokens)
    produced = generate(lm, idx, cfg).shape[1] - idx.shape[1]  # warm-up call
    times = time_callable(lambda: generate(lm, idx, cfg), warmup=0, repeats=3)
    return produced / (statistics.median(times) / 1000.0) if produced > 0 else None


def _inference_child(request: dict[str, Any], conn: Any, fn: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    try:
        reply: tuple[str, Any] = ("ok", fn(request))
    except BaseException as e:  # report everything, KeyboardInterrupt included
        reply = ("error", f"{type(e).__name__}: {e}")
    try:
        conn.send(reply)
    except OSError:  # the parent is gone (interrupted): nobody to tell
        pass
    finally:
        conn.close()


def _call_in_fresh_process(request: dict[str, Any], timeout_s: float = 1800.0,
                           fn: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> dict[str, Any]:
    """``fn(request)`` (default :func:`measure_inference`; a module-level function) in a new (spawned) Python process."""
    import multiprocessing

    mp = multiprocessing.get_context("spawn")
    receiver, sender = mp.Pipe(duplex=False)
    proc = mp.Process(target=_inference_child, args=(request, sender, fn or measure_inference), name="gptbert-measure", daemon=True)
    proc.start()
    sender.close()
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if receiver.poll(0.2):
                status, payload = receiver.recv()
                break
            if not proc.is_alive():
                if receiver.poll(0.5):
                    continue
                raise RuntimeError(f"the measuring process exited (code {proc.exitcode}) without a result")
            if time.monotonic() > deadline:
                raise TimeoutError(f"inference measurement took more than {timeout_s:.0f}s")
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=5)
        receiver.close()
    if status != "ok":
        raise RuntimeError(f"in the measuring process: {payload}")
    return payload  # type: ignore[no-any-return]



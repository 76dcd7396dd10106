"""Batch-1 latency of every candidate, measured in interleaved rounds, and checked against FLOPs.

Timing candidates one after another lets a burst of load on the machine land on one of them: on
a busy 2-core machine a 4.8M-parameter BERT once measured 206 ms p95 while a 22.8M MiniLM measured
4.9 ms (re-measured quietly: 2.5 vs 5.7 ms). So after training, all candidates are loaded in one
fresh process and timed in rounds, a few calls of each in turn (order shuffled per round), so
that load hits all of them alike. Each call's wall and CPU time are kept, with the load average
before and after. Then :func:`flops_outliers` compares latency ratios with forward-FLOPs ratios:
a candidate slower than one with at least its FLOPs by more than :data:`FLOPS_TOLERANCE` x is
re-measured, and if it stays so it is marked, so that the recommendation does not reason from
its latency.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from gptbert.compare.progress import load_average

__all__ = ["FLOPS_TOLERANCE", "flops_outliers", "interleaved_latency"]

FLOPS_TOLERANCE = 10.0
"""A latency more than this many times what the FLOPs ratio allows is re-measured, then marked."""
ROUNDS = 6


def _callables(request: dict[str, Any]) -> tuple[dict[str, Callable[[], Any]], float | None]:
    """{precision: one batch-1 call} for one candidate, and its forward FLOPs per example (None: not a transformer)."""
    import torch

    examples = list(request["examples"])[:64]
    if request.get("kind") == "tfidf-lr":
        from gptbert.baselines.tfidf import TfidfLR

        model = TfidfLR.load(request["run_dir"])
        rows = [([ex[0]], [ex[1] or ""] if model.pairs else None) for ex in examples]
        order = iter(range(10**9))

        def tfidf_one() -> None:
            texts, pairs = rows[next(order) % len(rows)]
            model.predict_proba(texts, pairs)

        return {"fp32": tfidf_one}, None

    from gptbert.compare.inference import _model_inputs, _variant
    from gptbert.flops import forward_flops_per_token
    from gptbert.models import count_parameters
    from gptbert.run import load_run
    from gptbert.tasks import classify

    run = load_run(request["run_dir"])
    net = run.model.eval()
    collate = classify.make_collator(run.tokenizer, net.config, int(request["max_len"]))
    singles = [_model_inputs(collate([ex])) for ex in examples]
    tokens = sum(int(b["idx"].shape[1]) for b in singles) / max(1, len(singles))
    flops = forward_flops_per_token(net.config, count_parameters(net, non_embedding=True), n_ctx=int(tokens)) * tokens
    calls: dict[str, Callable[[], Any]] = {}
    for prec in request["precisions"]:
        try:
            variant, ctx, _ = _variant(net, prec, singles[0])
        except Exception:  # measured (or reported as failed) by the per-candidate pass
            continue
        order = iter(range(10**9))

        def one(v: Any = variant, c: Callable[[], Any] = ctx, it: Any = order) -> None:
            with torch.inference_mode(), c():
                v(**singles[next(it) % len(singles)])

        calls[prec] = one
    return calls, flops


def interleaved_latency(request: dict[str, Any]) -> dict[str, Any]:
    """``request``: ``candidates`` (name -> a :func:`gptbert.compare.inference.measure_inference` request),
    ``calls`` (batch-1 calls per candidate and precision in all), ``threads``, ``seed``.

    Returns ``{"candidates": {name: {"flops": F or None, "precisions": {prec: {"wall_ms": [...],
    "cpu_ms": [...]}}}}, "load_average": [before, after], "rounds": R}``; plain values only.
    """
    import torch

    if request.get("threads"):
        torch.set_num_threads(int(request["threads"]))
    rng = random.Random(int(request.get("seed", 0)))
    load_before = load_average()
    jobs: list[tuple[str, str, Callable[[], Any]]] = []
    out: dict[str, Any] = {"candidates": {}, "errors": {}}
    for name, req in request["candidates"].items():
        try:
            calls, flops = _callables(req)
        except Exception as e:
            out["errors"][name] = f"{type(e).__name__}: {e}"
            continue
        out["candidates"][name] = {"flops": flops, "precisions": {p: {"wall_ms": [], "cpu_ms": []} for p in calls}}
        for prec, fn in calls.items():
            for _ in range(2):  # warm-up
                fn()
            jobs.append((name, prec, fn))
    calls = max(1, int(request.get("calls", 30)))
    rounds = min(ROUNDS, calls)
    per_round = calls // rounds  # rounds x per_round <= calls, as many as the first pass took
    for _ in range(rounds):
        rng.shuffle(jobs)
        for name, prec, fn in jobs:
            rec = out["candidates"][name]["precisions"][prec]
            for _ in range(per_round):
                w0, c0 = time.perf_counter(), time.process_time()
                fn()
                rec["wall_ms"].append((time.perf_counter() - w0) * 1000.0)
                rec["cpu_ms"].append((time.process_time() - c0) * 1000.0)
    out["load_average"] = [load_before, load_average()]
    out["rounds"] = rounds
    return out


def flops_outliers(p50_ms: dict[str, float], flops: dict[str, float | None],
                   tolerance: float = FLOPS_TOLERANCE) -> dict[str, str]:
    """Candidates whose latency the FLOPs cannot explain: {name: why}.

    ``a`` is flagged when some ``b`` does at least ``a``'s forward FLOPs yet ``a`` is more than
    ``tolerance`` x slower (fixed per-call overheads let small models be relatively slow, never
    10x slower than a bigger one). Candidates without FLOPs (tfidf-lr) are not checked.
    """
    flagged: dict[str, str] = {}
    names = [n for n in p50_ms if flops.get(n)]
    for a in names:
        for b in names:
            fa, fb = flops[a], flops[b]
            assert fa is not None and fb is not None
            if a != b and fb >= fa and p50_ms[a] > tolerance * p50_ms[b]:
                flagged[a] = (f"p50 {p50_ms[a]:.2f} ms is {p50_ms[a] / p50_ms[b]:.0f}x {b}'s {p50_ms[b]:.2f} ms, "
                              f"although {b} does {fb / fa:.1f}x its forward FLOPs")
                break
    return flagged

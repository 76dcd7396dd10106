"""The comparison itself: every candidate in turn, the reports, the results store; and its text summary."""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from gptbert.compare.candidates import BudgetPlan, CandidateSpec, CompareError
from gptbert.compare.data import _load_data, _train_tokenizers
from gptbert.compare.progress import _Log, load_average
from gptbert.compare.settings import CompareOutcome, CompareSettings
from gptbert.compare.train import _Context, run_candidate
from gptbert.results import CandidateResult, Comparison, LatencyStats

# --------------------------------------------------------------------------- the comparison


def choose_threads(requested: int | None, *, cores: int | None = None, load: float | None = None,
                   default: int | None = None) -> tuple[int, str]:
    """(torch threads, why) for a comparison.

    ``requested`` wins. Otherwise torch's default (one per core), except on a machine that is
    already busy (1-minute load average above the usable cores): there the threads of one
    operation keep waiting for each other (a batch-1 forward of a tiny model went from under
    2 ms to over 100 ms with 2 threads at load 3 on 2 cores), so one thread is used.
    """
    if requested is not None:
        return requested, f"{requested} (--threads)"
    if default is None:
        import torch

        default = torch.get_num_threads()
    if cores is None:
        try:
            cores = len(os.sched_getaffinity(0))  # type: ignore[attr-defined]
        except (AttributeError, OSError):
            cores = os.cpu_count() or 1
    if load is None:
        load = load_average()
    if default > 1 and load is not None and load > cores:
        return 1, (f"1: the machine is busy (load average {load:.1f} on {cores} cores) and threads of one "
                   "operation would wait on each other; pass --threads to override")
    return default, f"{default} (torch default)"


def default_out_dir(prefix: str = "compare") -> Path:
    """A new folder ``runs/<prefix>-<time>`` (``-2``, ``-3``, ... when taken), created atomically."""
    from gptbert.io.files import unique_dir

    return unique_dir("runs", f"{prefix}-{datetime.now().strftime('%Y%m%d-%H%M%S')}")


def run_comparison(settings: CompareSettings, *, log: Callable[[str], None] | None = None) -> CompareOutcome:
    """Run every candidate, write the reports, append to the results store.

    Ctrl-C (or SIGTERM) stops cleanly: the candidate in progress and those not started are
    recorded as 'skipped' and the reports cover the finished ones.
    """
    import torch

    s = settings
    s.validate()
    plan = s.plan()
    threads_before = torch.get_num_threads()
    try:
        return _run_comparison(s, plan, _Log(log))
    finally:
        torch.set_num_threads(threads_before)


def _run_comparison(s: CompareSettings, plan: BudgetPlan, say: _Log) -> CompareOutcome:
    import torch

    from gptbert.measure import hardware_profile
    from gptbert.recommend import recommend
    from gptbert.report import write_reports
    from gptbert.results import ResultsStore, save_results_json
    from gptbert.source import tokenizer_kind

    wall0, cpu0 = time.perf_counter(), time.process_time()
    # Every output is checked before any training: a bad --db fails now, not after an hour.
    store = None
    if s.db:
        try:
            store = ResultsStore(s.db)
        except ValueError as e:
            raise CompareError(f"--db {s.db}: {e}") from None
    data = _load_data(s)  # bad data fails before an output folder exists
    if s.out_dir:
        out = Path(s.out_dir)
        out.mkdir(parents=True, exist_ok=True)
    else:  # unique and created atomically: two comparisons started in the same second get two folders
        out = default_out_dir("demo" if s.demo else "compare")
    n = len(s.candidates)
    say(f"compare: {n} candidate(s) ({', '.join(c.name for c in s.candidates)}) on {s.task}; "
        f"budget {plan.describe()}; writing {out}")
    threads, why = choose_threads(s.threads)
    torch.set_num_threads(threads)
    say(f"threads: {why}")
    hardware = hardware_profile()
    probe = s.resolve_precisions()
    if probe is not None:
        hardware["precision_auto"] = probe
        say(f"precision auto: measuring {', '.join(s.precisions)} ({probe['reason']})")
    hardware["load_average_1m_start"] = load_average()
    hardware["threads"] = why
    say(f"data: {data.n_train} train / {data.n_dev} dev examples"
        + (f" / {len(data.test_examples)} test" if data.test_examples is not None else "")
        + (f", {len(data.labels)} labels; majority-class dev accuracy {data.majority_baseline:.3f}"
           if data.majority_baseline is not None else ""))
    comparison = Comparison(
        task=s.task, data={"train": s.train, "dev": s.dev, "test": s.test,
                           "pretrain_corpus": ", ".join(s.pretrain_corpus) or None},
        budget=plan.describe(), precisions=list(s.precisions), dataset_profile=data.profile, hardware=hardware,
    )
    results_path = out / "results.json"
    interrupted = False
    specs = list(s.candidates)
    try:
        with _sigterm_as_interrupt():
            kinds = {tokenizer_kind(spec.family()) for spec in specs if spec.is_preset}
            tokenizers = _train_tokenizers(s, kinds, data.train_texts, out, say) if kinds else {}
            ctx = _Context(s, plan, data, tokenizers, out, say)
            for i, spec in enumerate(specs, 1):
                try:
                    result = run_candidate(ctx, spec, i, n)
                except KeyboardInterrupt:
                    interrupted = True
                    phase = say.phase
                    say(f"interrupted during {phase}: stopping")
                    comparison.candidates.append(CandidateResult(
                        name=spec.name, family=_family_or_other(spec), source=spec.source, task=s.task,
                        status="skipped", error=f"interrupted by the user during {phase}"))
                    break
                finally:
                    say.prefix = ""
                comparison.candidates.append(result)
                save_results_json(comparison, results_path)
            if s.task == "classify":
                retime(s, comparison.candidates, ctx.requests, say)
                save_results_json(comparison, results_path)
    except KeyboardInterrupt:
        interrupted = True
        say("interrupted: stopping")
    if interrupted:
        done = {c.name for c in comparison.candidates}
        for spec in specs:
            if spec.name not in done:
                comparison.candidates.append(CandidateResult(
                    name=spec.name, family=_family_or_other(spec), source=spec.source, task=s.task,
                    status="skipped", error="not run: the comparison was interrupted"))
    hardware["load_average_1m_end"] = load_average()
    reports = write_reports(comparison, out)
    db_path = None
    if store is not None:
        store.append(comparison)
        db_path = Path(s.db)
    rec = recommend(comparison.candidates, None, hardware=hardware)
    return CompareOutcome(comparison, out, reports, rec, interrupted, db_path, data.majority_baseline,
                          time.perf_counter() - wall0, time.process_time() - cpu0)


def retime(s: CompareSettings, candidates: list[CandidateResult], requests: dict[str, dict[str, Any]],
           say: Callable[[str], None]) -> None:
    """Batch-1 latency of every measured candidate again, in interleaved rounds in one fresh process
    (:mod:`gptbert.compare.latency`); a latency the FLOPs cannot explain is measured once more, then marked
    ``latency_suspect`` so that the recommendation does not reason from it."""
    import torch

    from gptbert.compare.inference import _call_in_fresh_process
    from gptbert.compare.latency import ROUNDS, flops_outliers, interleaved_latency
    from gptbert.measure import latency_stats

    measured = [c for c in candidates if c.ok and c.name in requests and c.latency]
    if len(measured) < 2:
        return
    request = {"candidates": {c.name: requests[c.name] for c in measured}, "calls": s.latency_repeats,
               "threads": torch.get_num_threads(), "seed": s.seed}
    flagged: dict[str, str] = {}
    for attempt in (1, 2):
        say(f"latency: all {len(measured)} candidates again, in up to {ROUNDS} interleaved rounds"
            + (" (second try)" if attempt == 2 else ""))
        try:
            m = (_call_in_fresh_process(request, fn=interleaved_latency) if s.isolate_inference
                 else interleaved_latency(request))
        except Exception as e:  # keep the first pass's numbers
            say(f"latency: the interleaved pass failed ({type(e).__name__}: {e}); keeping the first pass")
            return
        flops = {}
        for c in measured:
            got = m["candidates"].get(c.name)
            if not got:
                continue
            flops[c.name] = got["flops"]
            for prec, rec in got["precisions"].items():
                if not rec["wall_ms"]:
                    continue
                first = c.extra.setdefault("latency_first_pass", {})
                if prec in c.latency and prec not in first:
                    first[prec] = c.latency[prec].to_dict()
                c.latency[prec] = LatencyStats(**latency_stats(rec["wall_ms"]))
                c.latency_samples[prec] = [round(x, 4) for x in rec["wall_ms"]]
                c.extra.setdefault("latency_cpu_ms_p50", {})[prec] = round(statistics.median(rec["cpu_ms"]), 4)
            c.extra["latency_method"] = (f"interleaved with the other candidates: {m['rounds']} rounds, order shuffled "
                                         f"per round; load average {m['load_average'][0]} -> {m['load_average'][1]}")
        p50 = {c.name: c.latency["fp32"].p50_ms for c in measured if "fp32" in c.latency}
        flagged = flops_outliers(p50, flops)
        if not flagged:
            break
        say("latency: inconsistent with the FLOPs: " + "; ".join(f"{k}: {v}" for k, v in flagged.items()))
    for c in measured:
        if c.name in flagged:
            c.extra["latency_suspect"] = flagged[c.name]
            say(f"latency of {c.name} marked suspect: the recommendation will not reason from it")


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the comparison like Ctrl-C (finished candidates are kept and reported).

    The training loop installs its own handlers while it runs and restores these after.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _family_or_other(spec: CandidateSpec) -> str:
    try:
        return spec.family()
    except Exception:
        return "other"


# --------------------------------------------------------------------------- text summary


def format_summary(comparison: Comparison) -> str:
    """A plain-text table of the key numbers, one row per candidate."""
    headers = ["candidate", "status", "dev acc [95% CI]", "params", "fp32 MB", "steps pt/ft",
               "p50/p95 ms fp32", "p50/p95 ms bf16", "bs32 items/s", "train/infer RSS MB", "decode tok/s"]
    rows = []
    for c in comparison.candidates:
        q = c.quality
        acc = "–"
        if q is not None and q.dev is not None:
            acc = f"{q.dev:.3f}" + (f" [{q.dev_ci[0]:.3f}, {q.dev_ci[1]:.3f}]" if q.dev_ci else "")

        def lat(p: str) -> str:
            st = c.latency.get(p)
            return f"{st.p50_ms:.2f}/{st.p95_ms:.2f}" if st else "–"

        steps = f"{c.pretrain.steps if c.pretrain else '–'}/{c.finetune.steps if c.finetune else '–'}"
        tp = ", ".join(f"{p} {v:.0f}" for p, v in c.throughput.items()) or "–"
        rss = "/".join(f"{v:.0f}" if v is not None else "–"
                       for v in (c.peak_rss_mb.get("train"), c.peak_rss_mb.get("inference")))
        rows.append([
            c.name, c.status, acc, f"{c.n_params / 1e6:.2f}M" if c.n_params else "–",
            f"{c.size_mb['fp32']:.1f}" if "fp32" in c.size_mb else "–", steps, lat("fp32"), lat("bf16"), tp, rss,
            f"{c.decode_tokens_per_s:.0f}" if c.decode_tokens_per_s else ("–" if c.can_generate else "n/a"),
        ])
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)

"""Every sentence the measured recommender writes: the reasons for the choice, the runner-up
note, the closest relaxation when nothing passes, and the full text.

Each comparative sentence is checked against every measured axis (quality, p95 and p50
latency at batch 1, throughput at batch 32, inference memory, size, decoding speed): the
runner-up note names every axis on which the runner-up is better, so "it is not better on
any measured axis" is said only when that is so; a ratio that rounds to 1.0 is "about the
same", never "1.0x faster". The per-limit sentences of an exclusion are written beside their
checks, in :func:`gptbert.recommend.constraints.violations`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gptbert.recommend.constraints import Constraints, OperatingPoint, relaxations, tied
from gptbert.recommend.numbers import gap, gap_is_zero, limit, mb, ms, quality, ratio
from gptbert.results import CandidateResult

__all__ = ["NO_CANDIDATES", "choice_reasons", "closest_relaxation", "measured_text", "runner_up_note"]

NO_CANDIDATES = ("No candidates to choose from: the results hold no measured models. "
                 "Run `gptbert compare` first, or use priors (`gptbert recommend --task ...`).")

MEMORY_NOISE = 0.05
"""Peak-RSS differences below this share are run-to-run noise: "about the same memory"."""


def _ci(c: CandidateResult, inner: bool = False) -> str:
    """' (95% CI lo-hi)', or ', 95% CI lo-hi' inside parentheses; '' without an interval."""
    q = c.quality
    assert q is not None
    iv = q.interval
    if not iv:
        return ""
    text = f"95% CI {quality(iv[0], q.metric)}-{quality(iv[1], q.metric)}"
    return f", {text}" if inner else f" ({text})"


# --------------------------------------------------------------------------- the choice


def _quality_reason(best: OperatingPoint, ranked: Sequence[tuple[OperatingPoint, int]]) -> str:
    q = best.c.quality
    assert q is not None and q.value is not None
    tied = [p for p, t in ranked if t == 0 and p is not best]
    top = max((p for p, _ in ranked), key=lambda p: p.score)
    text = f"{q.metric} {quality(q.value, q.metric)} on {q.split}{_ci(best.c)}"
    if not tied:
        others = [p for p, _ in ranked if p is not best]
        if not others:
            return f"the only candidate meeting the constraints: {text}"
        nxt = max(others, key=lambda p: p.score)
        nq = nxt.c.quality
        assert nq is not None and nq.value is not None
        return (f"best quality: {text}, {gap(q.value, nq.value, q.metric)} ahead of "
                f"{nxt.c.name} ({quality(nq.value, q.metric)}), a significant difference at 95%")
    names = ", ".join(f"{p.c.name} ({quality(p.c.quality.value, q.metric)}"  # type: ignore[union-attr,arg-type]
                      f"{_ci(p.c, inner=True)})" for p in tied)
    wins = "the cheapest of the tied candidates wins (lowest p95 latency, then memory, then size)"
    if top is best:
        return (f"{text}: the highest, but not significantly above {names} (95%), so quality is a statistical tie "
                f"and {wins}")
    return f"{text}: statistically tied with {names} (the difference is not significant at 95%), so {wins}"


def _latency_reason(best: OperatingPoint, ranked: Sequence[tuple[OperatingPoint, int]]) -> str:
    assert best.p95 is not None
    text = f"p95 latency {ms(best.p95)} ms at batch 1 ({best.precision})"
    if best.p50 is not None:
        text += f", p50 {ms(best.p50)} ms"
    slower = [p for p, _ in ranked if p is not best and p.p95 is not None and p.p95 > best.p95]
    if slower:
        other = min(slower, key=lambda p: p.p95)  # type: ignore[arg-type,return-value]
        assert other.p95 is not None
        r = ratio(other.p95, best.p95)
        text += (f"; {r} faster than {other.c.name} ({ms(other.p95)} ms)" if r
                 else f"; about as fast as {other.c.name} ({ms(other.p95)} ms)")
    return text


def _margins(best: OperatingPoint, cons: Constraints) -> str | None:
    margins = []
    for name, value, bound in (("max_latency_ms", best.p95, cons.max_latency_ms),
                               ("max_memory_mb", best.memory, cons.max_memory_mb),
                               ("max_disk_mb", best.disk, cons.max_disk_mb)):
        if bound is not None and value is not None:
            margins.append(f"{name} {limit(bound)} (uses {value / bound:.0%})")
    return "meets " + ", ".join(margins) if margins else None


def _precision_notes(best: OperatingPoint, cons: Constraints, hardware: Mapping[str, Any] | None) -> list[str]:
    c = best.c
    q = c.quality
    assert q is not None and q.value is not None
    out: list[str] = []
    by_precision = c.extra.get("dev_accuracy_by_precision") or {}
    if best.precision != "fp32" and q.metric == "accuracy" and by_precision.get(best.precision) is not None:
        out.append(f"accuracy at {best.precision}: {quality(by_precision[best.precision], 'accuracy')} on dev, "
                   f"measured (fp32: {quality(q.value, 'accuracy')})")
    elif best.precision != "fp32" and not c.extra.get("quality_precision") == best.precision:
        out.append(f"note: quality was measured at fp32; confirm {q.metric} at {best.precision} before deploying")
    if hardware is not None:
        measured_on = "cuda" if hardware.get("device") == "cuda" or (
            hardware.get("device") is None and hardware.get("gpu")) else "cpu"
        if measured_on != cons.device:
            out.append(f"note: latencies were measured on {measured_on} but you deploy on {cons.device}; "
                       "re-measure there before relying on them")
    return out


def _cost_words(a: OperatingPoint, b: OperatingPoint) -> str:
    """How much cheaper ``a`` is than ``b`` on latency and size (the axes that are measured for both)."""
    parts = []
    if a.p95 is not None and b.p95 is not None and a.p95 < b.p95:
        r = ratio(b.p95, a.p95)
        parts.append(f"{r} faster at batch 1 (p95 {ms(a.p95)} vs {ms(b.p95)} ms)" if r else "as fast")
    if a.disk is not None and b.disk is not None and a.disk < b.disk:
        parts.append(f"smaller: {mb(a.disk)} vs {mb(b.disk)} MB")
    return ", ".join(parts)


def baseline_reason(best: OperatingPoint, ranked: Sequence[tuple[OperatingPoint, int]]) -> str | None:
    """Where the choice stands against the strong cheap baselines (``tfidf-lr``, ``embed-lr``), said plainly."""
    q = best.c.quality
    assert q is not None
    baselines = [p for p, _ in ranked if p.c.family == "baseline"]
    models = [p for p, _ in ranked if p.c.family != "baseline"]
    if not baselines:
        return ("note: no baseline (tfidf-lr, embed-lr) was measured; add one (--candidates tfidf-lr,...) to "
                "know whether a model is worth its cost") if models else None
    if best.c.family == "baseline":
        if not models:
            return None
        top = max(models, key=lambda p: p.score)
        tq = top.c.quality
        assert tq is not None and tq.value is not None
        assert q.value is not None
        if tied(best, top):
            how = "statistically tied with it"
        elif best.score > top.score:
            how = f"significantly below it ({gap(q.value, tq.value, q.metric)} lower)"
        else:
            how = "significantly above it, but ruled out by the constraints or tied on cost"
        cheaper = _cost_words(best, top)
        return (f"the baseline {best.c.name} is the answer: the best model, {top.c.name} "
                f"({quality(tq.value, q.metric)}{_ci(top.c, inner=True)}), is {how}"
                + (f", and the baseline is cheaper ({cheaper})" if cheaper else ""))
    top_b = max(baselines, key=lambda p: p.score)
    bq = top_b.c.quality
    assert bq is not None and bq.value is not None and q.value is not None
    if tied(best, top_b):
        cheaper = _cost_words(top_b, best)
        return (f"not significantly better than the baseline {top_b.c.name} ({quality(bq.value, q.metric)}"
                f"{_ci(top_b.c, inner=True)}): {top_b.c.name} is an equal choice"
                + (f" at lower cost ({cheaper})" if cheaper else ""))
    if best.score < top_b.score:
        return (f"below the baseline {top_b.c.name} ({quality(bq.value, q.metric)}), which the constraints or the "
                "costs ruled out")
    return (f"significantly better than the best baseline, {top_b.c.name} ({quality(bq.value, q.metric)}"
            f"{_ci(top_b.c, inner=True)}): {gap(q.value, bq.value, q.metric)}")


def budget_note(ranked: Sequence[tuple[OperatingPoint, int]]) -> str | None:
    """Candidates whose fine-tuning stopped on the time budget while still improving: the answer is
    budget-limited, and a longer budget may change it."""
    parts = []
    for p, _ in ranked:
        info = p.c.extra.get("budget_limited")
        if not info:
            continue
        slope = info.get("slope_per_100_steps")
        epochs = info.get("epochs")
        how = f"+{slope * 100:.1f} points per 100 steps at the end" if slope else "too few evaluations to tell"
        parts.append(f"{p.c.name} ({how}" + (f", {epochs:.1f} epochs" if epochs else "") + ")")
    if not parts:
        return None
    return ("note: budget-limited answer: " + "; ".join(parts) + " stopped on the time budget while still "
            "improving; with a longer --budget the ranking may change")


def choice_reasons(best: OperatingPoint, ranked: Sequence[tuple[OperatingPoint, int]], cons: Constraints,
                   hardware: Mapping[str, Any] | None) -> list[str]:
    """Why ``best``, each reason citing measured numbers."""
    c = best.c
    reasons = [_quality_reason(best, ranked)]
    against = baseline_reason(best, ranked)
    if against and not against.startswith("note:"):
        reasons.append(against)
    if best.p95 is not None:
        reasons.append(_latency_reason(best, ranked))
    if best.memory is not None:
        reasons.append(f"inference peak RSS {mb(best.memory)} MB")
    if best.disk is not None:
        size = f"{mb(best.disk)} MB at {best.precision}"
        if c.n_params:
            size += f" ({c.n_params / 1e6:.1f}M parameters)"
        reasons.append(f"size {size}")
    if best.throughput is not None:
        reasons.append(f"throughput {best.throughput:.0f} items/s at batch 32 ({best.precision})")
    if c.decode_tokens_per_s is not None and (cons.needs_generation or c.can_generate):
        reasons.append(f"decodes {c.decode_tokens_per_s:.0f} tokens/s")
    margins = _margins(best, cons)
    if margins:
        reasons.append(margins)
    notes = [against] if against and against.startswith("note:") else []
    limited = budget_note(ranked)
    if limited:
        notes.append(limited)
    return reasons + _precision_notes(best, cons, hardware) + notes


# --------------------------------------------------------------------------- the runner-up


@dataclass
class AxisComparison:
    """The runner-up against the choice on one measured axis."""

    axis: str
    relation: str
    """'better', 'worse' or 'same' (for the runner-up)."""
    text: str
    """The phrase, e.g. '3.1x slower at p95 (20.1 vs 6.50 ms)'."""
    condition: str | None = None
    """When this axis makes the runner-up the better pick ('your latency budget is below 6.50 ms')."""


def _latency(axis: str, other: float, best: float, condition: str) -> AxisComparison:
    pair = f"({ms(other)} vs {ms(best)} ms)"
    if other < best and (r := ratio(best, other)):
        return AxisComparison(axis, "better", f"{r} faster at {axis} {pair}", condition)
    if other > best and (r := ratio(other, best)):
        return AxisComparison(axis, "worse", f"{r} slower at {axis} {pair}")
    return AxisComparison(axis, "same", f"about the same {axis} latency {pair}")


def _higher_is_better(axis: str, other: float, best: float, unit: str, condition: str,
                      better: Callable[[str], str], worse: Callable[[str], str]) -> AxisComparison:
    pair = f"({other:.0f} vs {best:.0f} {unit})"
    if other > best and (r := ratio(other, best)):
        return AxisComparison(axis, "better", f"{better(r)} {pair}", condition)
    if other < best and (r := ratio(best, other)):
        return AxisComparison(axis, "worse", f"{worse(r)} {pair}")
    return AxisComparison(axis, "same", f"about the same {axis} {pair}")


def _smaller_is_better(axis: str, other: float, best: float, *, noise: float, better: str, worse: str,
                       condition: str, suffix: str = "") -> AxisComparison:
    pair = f"({mb(other)} vs {mb(best)} MB{suffix})"
    if mb(other) != mb(best):
        if other < (1 - noise) * best:
            return AxisComparison(axis, "better", f"{better} {pair}", condition)
        if other > (1 + noise) * best and (r := ratio(other, best)):
            return AxisComparison(axis, "worse", f"{r} {worse} {pair}")
    return AxisComparison(axis, "same", f"about the same {axis} {pair}")


def compare_axes(best: OperatingPoint, other: OperatingPoint) -> list[AxisComparison]:
    """``other`` against ``best`` on every cost axis both have measured (quality is the head of the note)."""
    out: list[AxisComparison] = []
    p95 = None
    if best.p95 is not None and other.p95 is not None:
        p95 = _latency("p95", other.p95, best.p95, f"your latency budget is below {ms(best.p95)} ms")
        out.append(p95)
    if best.p50 is not None and other.p50 is not None:
        p50 = _latency("p50", other.p50, best.p50, "the median (p50) latency matters more to you than p95")
        if p95 is None or p50.relation != p95.relation:  # agreeing with p95 it adds nothing
            out.append(p50)
    if best.throughput is not None and other.throughput is not None:
        out.append(_higher_is_better(
            "throughput", other.throughput, best.throughput, "items/s at batch 32",
            "you serve batches and throughput at batch 32 matters more to you than batch-1 latency",
            better=lambda r: f"{r} the throughput", worse=lambda r: f"{r} less throughput"))
    if best.memory is not None and other.memory is not None:
        out.append(_smaller_is_better("memory", other.memory, best.memory, noise=MEMORY_NOISE,
                                      better="lighter in memory", worse="the memory", suffix=" peak RSS",
                                      condition=f"your memory budget is below {mb(best.memory)} MB"))
    if best.disk is not None and other.disk is not None:
        at = other.precision if other.precision == best.precision else f"{other.precision} vs {best.precision}"
        out.append(_smaller_is_better("size", other.disk, best.disk, noise=0.0, better="smaller", worse="the size",
                                      suffix=f" at {at}", condition=f"your disk budget is below {mb(best.disk)} MB"))
    bd, od = best.c.decode_tokens_per_s, other.c.decode_tokens_per_s
    if bd is not None and od is not None:
        out.append(_higher_is_better("decoding speed", od, bd, "tokens/s", "generation speed matters most to you",
                                     better=lambda r: f"decodes {r} faster", worse=lambda r: f"decodes {r} slower"))
    return out


def _quality_head(best: OperatingPoint, other: OperatingPoint, tied: bool) -> tuple[str, bool]:
    """The note's first clause and whether the runner-up has the better quality."""
    q, oq = best.c.quality, other.c.quality
    assert q is not None and oq is not None and q.value is not None and oq.value is not None
    d = other.score - best.score
    if d == 0:
        return f"{other.c.name} has the same {q.metric} ({quality(q.value, q.metric)})", False
    if gap_is_zero(oq.value, q.value, q.metric):
        return (f"{other.c.name} has about the same {q.metric} ({quality(oq.value, q.metric)} vs "
                f"{quality(q.value, q.metric)})"), False
    if d > 0:
        return (f"{other.c.name} is {gap(oq.value, q.value, q.metric)} better on {q.metric}"
                + (" (not a significant difference at 95%)" if tied else "")), True
    return (f"{other.c.name} is {gap(q.value, oq.value, q.metric)} worse on {q.metric}"
            + (" (not significant at 95%)" if tied else "")), False


def runner_up_note(best: OperatingPoint, other: OperatingPoint, tied: bool) -> str:
    """How the runner-up differs from the choice on every measured axis, and which limits would make it the pick."""
    q = best.c.quality
    assert q is not None
    head, better_quality = _quality_head(best, other, tied)
    axes = compare_axes(best, other)
    pros = [a for a in axes if a.relation == "better"]
    cons_ = [a for a in axes if a.relation == "worse"]
    conditions: list[str] = []
    for a in axes:
        if a.relation == "better" and a.condition:
            conditions.append(a.condition)
        elif a.axis == "p95" and a.relation == "worse" and better_quality and other.p95 is not None:
            conditions.append(f"your latency budget is above {ms(other.p95)} ms and you want the higher {q.metric}")
    if other.c.can_generate and not best.c.can_generate:
        conditions.append("you also need text generation")
    if better_quality and not conditions:
        conditions.append(f"{q.metric} matters more to you than cost")
    pro_text, con_text = ", ".join(a.text for a in pros), ", ".join(a.text for a in cons_)
    text = head
    if better_quality:
        text += (" but " + con_text if cons_ else "") + ("; it is also " + pro_text if pros else "")
    else:
        text += (" but " + pro_text if pros else "") + ((("; it is also " if pros else " and ") + con_text)
                                                         if cons_ else "")
    if conditions:
        text += "; choose it if " + ", or if ".join(conditions)
    else:
        same = [a.text for a in axes if a.relation == "same"]
        text += "; it is not better on any measured axis" + (f" ({', '.join(same)})" if same else "")
    return text + "."


# --------------------------------------------------------------------------- whole texts


def closest_relaxation(points: Sequence[OperatingPoint], cons: Constraints) -> str:
    """The smallest change of the numeric limits that would admit a candidate, as a sentence."""
    fixes = []
    for pt in points:
        found = relaxations(pt, cons)
        if found:
            distance = sum(math.log(max(r, 1.0 + 1e-12)) for _, r in found)
            fixes.append((distance, -pt.score, pt.c.name, [text for text, _ in found]))
    if not fixes:
        return "No change to the numeric limits alone would admit a candidate."
    fixes.sort()
    _, _, name, changes = fixes[0]
    return f"Closest: raising {' and '.join(changes)} would admit {name}."


def nothing_eligible_text(points: Sequence[OperatingPoint], excluded: Sequence[tuple[str, str]],
                          cons: Constraints) -> str:
    lines = [f"No candidate meets the constraints ({cons.describe()}):"]
    lines += [f"  - {name}: {reason}" for name, reason in excluded]
    lines.append(closest_relaxation(points, cons))
    return "\n".join(lines)


def measured_text(best: OperatingPoint, reasons: Sequence[str], note: str | None,
                  excluded: Sequence[tuple[str, str]], ranking: Sequence[str], cons: Constraints) -> str:
    """The whole measured recommendation: the choice, why, the runner-up, exclusions, the ranking."""
    c = best.c
    src = f", {c.source}" if c.source and c.source != c.name else ""
    lines = [f"Recommendation: {c.name} ({c.family}{src}) at {best.precision} on {cons.device}", "Why:"]
    lines += [f"  - {r}" for r in reasons]
    if note is not None:
        lines.append(f"Runner-up: {note}")
    if excluded:
        lines.append("Excluded:")
        lines += [f"  - {name}: {reason}" for name, reason in excluded]
    if len(ranking) > 2:
        lines.append("Ranking: " + " > ".join(ranking))
    return "\n".join(lines)

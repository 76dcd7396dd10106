"""Pick a model from measurements (``recommend``) or, with none, from priors.

:func:`recommend` filters measured candidates by deployment constraints, ranks the rest
(quality first; candidates whose quality difference is not significant at 95 % count as
tied and the cheaper one wins: p95 latency, then inference memory, then size), and explains the choice with
the measured numbers. :func:`recommend_from_priors` answers before anything has been
measured, from the rules documented in ``docs/recommend-priors.md``.

No torch here: this runs on results files.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gptbert.results import FRACTION_METRICS, CandidateResult

__all__ = [
    "Constraints",
    "Recommendation",
    "DEVICE_PRECISIONS",
    "normalize_task",
    "profile_data_file",
    "recommend",
    "recommend_from_priors",
]

DEVICE_PRECISIONS: dict[str, tuple[str, ...]] = {
    "cpu": ("fp32", "bf16", "int8"),
    "cuda": ("fp32", "bf16", "fp16"),
}
"""Precisions that make sense per device (dynamic int8 quantisation is a CPU path)."""


@dataclass
class Constraints:
    """Deployment limits; ``None`` means no limit."""

    max_latency_ms: float | None = None
    """Largest acceptable p95 latency at batch size 1, in ms."""
    max_memory_mb: float | None = None
    """Largest acceptable peak resident memory during inference, in MB."""
    max_disk_mb: float | None = None
    """Largest acceptable weight size at the deployed precision, in MB."""
    min_quality: float | None = None
    """Worst acceptable dev quality (for lower-is-better metrics such as perplexity: the largest value)."""
    needs_generation: bool = False
    """The application generates text: encoder-only models (BERT, ELMo) are excluded."""
    device: str = "cpu"
    """'cpu' or 'cuda': which precisions may be deployed."""
    precision: str | None = None
    """Deploy at this precision only (default: each candidate's fastest allowed one)."""

    def __post_init__(self) -> None:
        if self.device not in DEVICE_PRECISIONS:
            raise ValueError(f"Constraints.device: expected one of {sorted(DEVICE_PRECISIONS)}, got {self.device!r}")
        for name in ("max_latency_ms", "max_memory_mb", "max_disk_mb"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, float)) or not value > 0):
                raise ValueError(f"Constraints.{name}: expected a positive number, got {value!r}")
        if self.precision is not None and self.precision not in ("fp32", "bf16", "fp16", "int8"):
            raise ValueError(f"Constraints.precision: expected fp32, bf16, fp16 or int8, got {self.precision!r}")

    def allowed_precisions(self) -> tuple[str, ...]:
        return (self.precision,) if self.precision else DEVICE_PRECISIONS[self.device]

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in asdict(self).items() if v not in (None, False) and k != "device"]
        parts.append(f"device={self.device}")
        return ", ".join(parts)


@dataclass
class Recommendation:
    """The answer: a choice (or None), the runner-up, exclusions, and the reasoning."""

    choice: str | None
    runner_up: str | None
    excluded: list[tuple[str, str]]
    """(candidate name, reason citing the measured number and the limit)."""
    reasons: list[str]
    """Why the choice, each citing measured numbers (or priors when ``measured`` is False)."""
    text: str
    """The full human-readable recommendation."""
    measured: bool = True
    """False when the recommendation comes from priors only."""
    precision: str | None = None
    """Precision at which the choice should be deployed."""
    runner_up_note: str | None = None
    """What it would take to prefer the runner-up."""
    ranking: list[str] = field(default_factory=list)
    """Eligible candidates, best first."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["excluded"] = [list(x) for x in self.excluded]
        return data

    def __str__(self) -> str:
        return self.text


# --------------------------------------------------------------------------- formatting


def _ms(x: float) -> str:
    return f"{x:.0f}" if x >= 100 else (f"{x:.1f}" if x >= 10 else f"{x:.2f}")


def _mb(x: float) -> str:
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}"


def _q(x: float, metric: str) -> str:
    return f"{x:.3f}" if metric in FRACTION_METRICS or abs(x) <= 1.0 else f"{x:.2f}"


def _limit(x: float) -> str:
    return f"{x:g}"


def _ci(c: CandidateResult, inner: bool = False) -> str:
    """' (95% CI lo-hi)', or ', 95% CI lo-hi' inside parentheses; '' without an interval."""
    q = c.quality
    assert q is not None
    iv = q.interval
    if not iv:
        return ""
    text = f"95% CI {_q(iv[0], q.metric)}-{_q(iv[1], q.metric)}"
    return f", {text}" if inner else f" ({text})"


def _gap(better: float, worse: float, metric: str) -> str:
    """Size of a quality difference in words: points for fractions/percentages."""
    d = abs(better - worse)
    if metric in FRACTION_METRICS:
        return f"{d * 100:.1f} points"
    if metric in ("perplexity", "bits_per_character", "bits_per_token", "loss"):
        return f"{d:.2f} {metric}"
    return f"{d:.1f} points" if d >= 0.1 else f"{d:.3f}"


def _ratio(a: float, b: float) -> str:
    r = a / b if b > 0 else math.inf
    return f"{r:.1f}x"


# --------------------------------------------------------------------------- measured path


@dataclass
class _Point:
    """A candidate at its deployment precision."""

    c: CandidateResult
    precision: str
    p95: float | None
    p50: float | None
    memory: float | None
    disk: float | None

    @property
    def score(self) -> float:
        q = self.c.quality
        assert q is not None and q.value is not None
        return q.value if q.higher_is_better else -q.value

    @property
    def interval(self) -> tuple[float, float]:
        q = self.c.quality
        assert q is not None and q.value is not None
        iv = q.interval or (q.value, q.value)
        lo, hi = min(iv), max(iv)
        return (lo, hi) if q.higher_is_better else (-hi, -lo)

    def cost(self) -> tuple[float, float, float]:
        inf = math.inf
        return (
            self.p95 if self.p95 is not None else inf,
            self.memory if self.memory is not None else inf,
            self.disk if self.disk is not None else inf,
        )


def _operating_point(c: CandidateResult, cons: Constraints) -> _Point:
    """The candidate at its best allowed precision: lowest p95, then smallest size."""
    allowed = cons.allowed_precisions()
    measured = [p for p in allowed if p in c.latency]
    if measured:
        prec = min(measured, key=lambda p: (c.latency[p].p95_ms, c.size_mb.get(p, math.inf)))
    else:
        prec = cons.precision or next((p for p in allowed if p in c.size_mb), allowed[0])
    lat = c.latency.get(prec)
    disk = c.size_mb.get(prec)
    return _Point(
        c=c,
        precision=prec,
        p95=lat.p95_ms if lat else None,
        p50=lat.p50_ms if lat else None,
        memory=c.peak_rss_mb.get("inference"),
        disk=disk,
    )


def _violations(pt: _Point, cons: Constraints) -> list[str]:
    """Every constraint the candidate fails, each with the measured number and the limit."""
    c = pt.c
    out: list[str] = []
    if c.status != "ok":
        return [f"{c.status}: {c.error or 'no error message recorded'}"]
    q = c.quality
    if q is None or q.value is None:
        return ["no quality measured"]
    if cons.needs_generation and not c.can_generate:
        kind = {"bert": "BERT is an encoder-only model", "elmo": "the ELMo biLSTM is used as an encoder"}.get(
            c.family, "the model has no generation path"
        )
        out.append(f"cannot generate text ({kind}); --needs-generation requires a decoder such as GPT")
    allowed = cons.allowed_precisions()
    if cons.max_latency_ms is not None:
        if pt.p95 is None:
            out.append(f"no batch-1 latency measured at {'/'.join(allowed)}, cannot check max_latency_ms "
                       f"{_limit(cons.max_latency_ms)}")
        elif pt.p95 > cons.max_latency_ms:
            out.append(f"p95 latency {_ms(pt.p95)} ms at batch 1 ({pt.precision}, its fastest allowed "
                       f"precision) exceeds max_latency_ms {_limit(cons.max_latency_ms)}")
    if cons.max_memory_mb is not None:
        if pt.memory is None:
            out.append(f"no inference peak RSS measured, cannot check max_memory_mb {_limit(cons.max_memory_mb)}")
        elif pt.memory > cons.max_memory_mb:
            out.append(f"inference peak RSS {_mb(pt.memory)} MB exceeds max_memory_mb {_limit(cons.max_memory_mb)}")
    if cons.max_disk_mb is not None:
        if pt.disk is None:
            out.append(f"no size at {pt.precision} recorded, cannot check max_disk_mb {_limit(cons.max_disk_mb)}")
        elif pt.disk > cons.max_disk_mb:
            out.append(f"size {_mb(pt.disk)} MB at {pt.precision} exceeds max_disk_mb {_limit(cons.max_disk_mb)}")
    if cons.min_quality is not None:
        bad = q.value < cons.min_quality if q.higher_is_better else q.value > cons.min_quality
        if bad:
            word = "below" if q.higher_is_better else "above (worse than)"
            out.append(f"{q.metric} {_q(q.value, q.metric)} on {q.split} is {word} min_quality "
                       f"{_limit(cons.min_quality)}")
    return out


def _se(p: _Point) -> float:
    """Standard error of a candidate's quality, read off its 95 % bootstrap interval."""
    lo, hi = p.interval
    return (hi - lo) / (2 * 1.96)


def _tied(a: _Point, b: _Point) -> bool:
    """True when the quality difference is not significant at 95 %: ``|a - b|`` is within
    1.96 standard errors of the difference, ``sqrt(se_a^2 + se_b^2)`` (two independent
    estimates). Asking whether the two intervals overlap instead would be too lenient:
    intervals of two candidates 2.8 standard errors apart still overlap."""
    return abs(a.score - b.score) <= 1.96 * math.hypot(_se(a), _se(b)) + 1e-12


def _rank(points: list[_Point]) -> list[tuple[_Point, int]]:
    """(point, tier) best first. A tier holds the best remaining candidate and every
    candidate statistically tied with it (:func:`_tied`); within a tier the cheapest comes first."""
    remaining = sorted(points, key=lambda p: (-p.score, p.cost(), p.c.name))
    ranked: list[tuple[_Point, int]] = []
    tier = 0
    while remaining:
        leader = remaining[0]
        group = [p for p in remaining if _tied(p, leader)]
        group.sort(key=lambda p: (p.cost(), -p.score, p.c.name))
        ranked.extend((p, tier) for p in group)
        remaining = [p for p in remaining if p not in group]
        tier += 1
    return ranked


def _choice_reasons(best: _Point, ranked: list[tuple[_Point, int]], cons: Constraints,
                    hardware: Mapping[str, Any] | None) -> list[str]:
    c = best.c
    q = c.quality
    assert q is not None and q.value is not None
    reasons: list[str] = []
    tied = [p for p, t in ranked if t == 0 and p is not best]
    top = max((p for p, _ in ranked), key=lambda p: p.score)
    quality = f"{q.metric} {_q(q.value, q.metric)} on {q.split}{_ci(c)}"
    if not tied:
        others = [p for p, _ in ranked if p is not best]
        if others:
            nxt = max(others, key=lambda p: p.score)
            nq = nxt.c.quality
            assert nq is not None and nq.value is not None
            reasons.append(f"best quality: {quality}, {_gap(q.value, nq.value, q.metric)} ahead of "
                           f"{nxt.c.name} ({_q(nq.value, q.metric)}), a significant difference at 95%")
        else:
            reasons.append(f"the only candidate meeting the constraints: {quality}")
    else:
        names = ", ".join(f"{p.c.name} ({_q(p.c.quality.value, q.metric)}{_ci(p.c, inner=True)})"  # type: ignore[union-attr]
                          for p in tied)
        if top is best:
            reasons.append(f"{quality}: the highest, but not significantly above {names} (95%), so quality "
                           "is a statistical tie and the cheapest of the tied candidates wins")
        else:
            reasons.append(f"{quality}: statistically tied with {names} (the difference is not significant "
                           "at 95%), so the cheapest of the tied candidates wins")
    if best.p95 is not None:
        text = f"p95 latency {_ms(best.p95)} ms at batch 1 ({best.precision})"
        if best.p50 is not None:
            text += f", p50 {_ms(best.p50)} ms"
        slower = [p for p, _ in ranked if p is not best and p.p95 is not None and p.p95 > best.p95]
        if slower:
            fastest_other = min(slower, key=lambda p: p.p95)  # type: ignore[arg-type,return-value]
            text += (f"; {_ratio(fastest_other.p95, best.p95)} faster than {fastest_other.c.name} "  # type: ignore[arg-type]
                     f"({_ms(fastest_other.p95)} ms)")  # type: ignore[arg-type]
        reasons.append(text)
    if best.memory is not None:
        reasons.append(f"inference peak RSS {_mb(best.memory)} MB")
    if best.disk is not None:
        size = f"{_mb(best.disk)} MB at {best.precision}"
        if c.n_params:
            size += f" ({c.n_params / 1e6:.1f}M parameters)"
        reasons.append(f"size {size}")
    tp = c.throughput.get(best.precision)
    if tp is not None:
        reasons.append(f"throughput {tp:.0f} items/s at batch 32 ({best.precision})")
    if c.decode_tokens_per_s is not None and (cons.needs_generation or c.can_generate):
        reasons.append(f"decodes {c.decode_tokens_per_s:.0f} tokens/s")
    margins = []
    if cons.max_latency_ms is not None and best.p95 is not None:
        margins.append(f"max_latency_ms {_limit(cons.max_latency_ms)} (uses {best.p95 / cons.max_latency_ms:.0%})")
    if cons.max_memory_mb is not None and best.memory is not None:
        margins.append(f"max_memory_mb {_limit(cons.max_memory_mb)} (uses {best.memory / cons.max_memory_mb:.0%})")
    if cons.max_disk_mb is not None and best.disk is not None:
        margins.append(f"max_disk_mb {_limit(cons.max_disk_mb)} (uses {best.disk / cons.max_disk_mb:.0%})")
    if margins:
        reasons.append("meets " + ", ".join(margins))
    by_precision = c.extra.get("dev_accuracy_by_precision") or {}
    if best.precision != "fp32" and q.metric == "accuracy" and by_precision.get(best.precision) is not None:
        reasons.append(f"accuracy at {best.precision}: {_q(by_precision[best.precision], 'accuracy')} on dev, "
                       f"measured (fp32: {_q(q.value, 'accuracy')})")
    elif best.precision != "fp32" and not c.extra.get("quality_precision") == best.precision:
        reasons.append(f"note: quality was measured at fp32; confirm {q.metric} at {best.precision} before deploying")
    if hardware is not None:
        measured_on = "cuda" if hardware.get("device") == "cuda" or (
            hardware.get("device") is None and hardware.get("gpu")) else "cpu"
        if measured_on != cons.device:
            reasons.append(f"note: latencies were measured on {measured_on} but you deploy on {cons.device}; "
                           "re-measure there before relying on them")
    return reasons


def _runner_up_note(best: _Point, other: _Point, tied: bool) -> str:
    """How the runner-up differs from the choice, and which limits would make it the pick."""
    q = best.c.quality
    oq = other.c.quality
    assert q is not None and oq is not None and q.value is not None and oq.value is not None
    d = other.score - best.score
    if d > 0:
        head = (f"{other.c.name} is {_gap(oq.value, q.value, q.metric)} better on {q.metric}"
                + (" (not a significant difference at 95%)" if tied else ""))
    elif d < 0:
        head = (f"{other.c.name} is {_gap(q.value, oq.value, q.metric)} worse on {q.metric}"
                + (" (not significant at 95%)" if tied else ""))
    else:
        head = f"{other.c.name} has the same {q.metric} ({_q(q.value, q.metric)})"
    pros: list[str] = []  # where the runner-up is cheaper
    cons_: list[str] = []  # where it is dearer
    conditions: list[str] = []
    if best.p95 is not None and other.p95 is not None:
        if other.p95 > best.p95:
            cons_.append(f"{_ratio(other.p95, best.p95)} slower at p95 ({_ms(other.p95)} vs {_ms(best.p95)} ms)")
            if d > 0:
                conditions.append(f"your latency budget is above {_ms(other.p95)} ms and you want the higher "
                                  f"{q.metric}")
        elif other.p95 < best.p95:
            pros.append(f"{_ratio(best.p95, other.p95)} faster at p95 ({_ms(other.p95)} vs {_ms(best.p95)} ms)")
            conditions.append(f"your latency budget is below {_ms(best.p95)} ms")
    if best.memory is not None and other.memory is not None:
        if other.memory < 0.95 * best.memory:  # smaller differences are within run-to-run noise
            pros.append(f"lighter in memory ({_mb(other.memory)} vs {_mb(best.memory)} MB peak RSS)")
            conditions.append(f"your memory budget is below {_mb(best.memory)} MB")
        elif other.memory > 1.2 * best.memory:
            cons_.append(f"{_ratio(other.memory, best.memory)} the memory ({_mb(other.memory)} vs "
                         f"{_mb(best.memory)} MB peak RSS)")
    if best.disk is not None and other.disk is not None:
        if other.disk < best.disk:
            pros.append(f"smaller ({_mb(other.disk)} vs {_mb(best.disk)} MB at {other.precision})")
            conditions.append(f"your disk budget is below {_mb(best.disk)} MB")
        elif other.disk > 1.2 * best.disk:
            cons_.append(f"{_ratio(other.disk, best.disk)} the size ({_mb(other.disk)} vs {_mb(best.disk)} MB)")
    if other.c.can_generate and not best.c.can_generate:
        conditions.append("you also need text generation")
    if d > 0 and not conditions:
        conditions.append(f"{q.metric} matters more to you than cost")
    text = head
    if d > 0:
        if cons_:
            text += " but " + ", ".join(cons_)
        if pros:
            text += "; it is also " + ", ".join(pros)
    else:
        if pros:
            text += " but " + ", ".join(pros)
        if cons_:
            text += ("; it is also " if pros else " and ") + ", ".join(cons_)
    if conditions:
        text += "; choose it if " + ", or if ".join(conditions)
    else:
        text += "; it is not better on any measured axis"
    return text + "."


def _relaxations(pt: _Point, cons: Constraints) -> list[tuple[str, float]] | None:
    """The limit changes that would admit this candidate, each with how far the limit must
    move (measured / limit), or None if changing limits cannot admit it."""
    c = pt.c
    if c.status != "ok" or c.quality is None or c.quality.value is None:
        return None
    if cons.needs_generation and not c.can_generate:
        return None
    out: list[tuple[str, float]] = []
    for name, value, limit, fmt in (
        ("max_latency_ms", pt.p95, cons.max_latency_ms, _ms),
        ("max_memory_mb", pt.memory, cons.max_memory_mb, _mb),
        ("max_disk_mb", pt.disk, cons.max_disk_mb, _mb),
    ):
        if limit is None:
            continue
        if value is None:
            return None
        if value > limit:
            out.append((f"{name} to {fmt(value)}", value / limit))
    if cons.min_quality is not None:
        q = c.quality
        bad = q.value < cons.min_quality if q.higher_is_better else q.value > cons.min_quality
        if bad:
            gap = abs(q.value - cons.min_quality) / max(abs(cons.min_quality), 1e-12)
            out.append((f"min_quality to {_q(q.value, q.metric)}", 1.0 + gap))
    return out


def recommend(
    candidates: Sequence[CandidateResult],
    constraints: Constraints | None = None,
    *,
    hardware: Mapping[str, Any] | None = None,
) -> Recommendation:
    """Choose among measured candidates under ``constraints``; never raises on bad luck.

    ``hardware``: the comparison's hardware profile, used only to warn when the deploy
    device differs from the one measured on.
    """
    cons = constraints or Constraints()
    if not candidates:
        text = ("No candidates to choose from: the results hold no measured models. "
                "Run `gptbert compare` first, or use priors (`gptbert recommend --task ...`).")
        return Recommendation(None, None, [], [], text)
    points = [_operating_point(c, cons) for c in candidates]
    excluded: list[tuple[str, str]] = []
    eligible: list[_Point] = []
    for pt in points:
        why = _violations(pt, cons)
        if why:
            excluded.append((pt.c.name, "; ".join(why)))
        else:
            eligible.append(pt)
    metrics = {p.c.quality.metric for p in eligible if p.c.quality}
    if not eligible:
        lines = [f"No candidate meets the constraints ({cons.describe()}):"]
        lines += [f"  - {name}: {reason}" for name, reason in excluded]
        fixes = []
        for pt in points:
            found = _relaxations(pt, cons)
            if found:
                distance = sum(math.log(max(ratio, 1.0 + 1e-12)) for _, ratio in found)
                fixes.append((distance, -pt.score, pt.c.name, [text for text, _ in found]))
        if fixes:
            fixes.sort()
            _, _, name, r = fixes[0]
            lines.append(f"Closest: raising {' and '.join(r)} would admit {name}.")
        else:
            lines.append("No change to the numeric limits alone would admit a candidate.")
        return Recommendation(None, None, excluded, [], "\n".join(lines))

    ranked = _rank(eligible)
    best, _ = ranked[0]
    reasons = _choice_reasons(best, ranked, cons, hardware)
    if len(metrics) > 1:
        reasons.append(f"warning: candidates report different metrics ({', '.join(sorted(metrics))}); "
                       "their quality numbers are not comparable")
    runner = ranked[1][0] if len(ranked) > 1 else None
    note = _runner_up_note(best, runner, ranked[1][1] == 0) if runner else None

    c = best.c
    src = f", {c.source}" if c.source and c.source != c.name else ""
    lines = [f"Recommendation: {c.name} ({c.family}{src}) at {best.precision} on {cons.device}", "Why:"]
    lines += [f"  - {r}" for r in reasons]
    if runner is not None:
        lines.append(f"Runner-up: {note}")
    if excluded:
        lines.append("Excluded:")
        lines += [f"  - {name}: {reason}" for name, reason in excluded]
    if len(ranked) > 2:
        lines.append("Ranking: " + " > ".join(p.c.name for p, _ in ranked))
    return Recommendation(
        choice=c.name,
        runner_up=runner.c.name if runner else None,
        excluded=excluded,
        reasons=reasons,
        text="\n".join(lines),
        measured=True,
        precision=best.precision,
        runner_up_note=note,
        ranking=[p.c.name for p, _ in ranked],
    )


# --------------------------------------------------------------------------- priors

TASK_ALIASES: dict[str, str] = {
    "classify": "classify", "classification": "classify", "sentiment": "classify", "nli": "classify",
    "intent": "classify", "text-classification": "classify", "sst2": "classify", "banking77": "classify",
    "tokens": "tokens", "ner": "tokens", "tagging": "tokens", "token-classification": "tokens", "pos": "tokens",
    "slots": "tokens", "snips": "tokens",
    "qa": "qa", "extractive-qa": "qa", "squad": "qa", "question-answering": "qa",
    "generate": "generate", "generation": "generate", "text-generation": "generate", "summarize": "generate",
    "summarization": "generate", "lm": "generate", "language-modeling": "generate",
}


def normalize_task(task: str) -> str:
    """Canonical task name ('classify', 'tokens', 'qa', 'generate') of a task or alias."""
    key = task.strip().lower().replace("_", "-")
    if key not in TASK_ALIASES:
        known = sorted(set(TASK_ALIASES.values()))
        raise ValueError(f"unknown task {task!r}; known tasks: {', '.join(known)} "
                         f"(aliases: {', '.join(sorted(k for k in TASK_ALIASES if k not in known))})")
    return TASK_ALIASES[key]


def _estimate_params(preset: str) -> int:
    """Parameter count of a preset without building it (transformers: embeddings + 12 d^2-ish per layer)."""
    from gptbert.config import ModelConfig

    cfg = ModelConfig.from_name(preset)
    d, ff, layers = cfg.n_embd, cfg.intermediate_size or 4 * cfg.n_embd, cfg.n_layer
    emb = cfg.vocab_size * d + cfg.block_size * d
    per_layer = 4 * d * d + 2 * d * ff + 9 * d + ff
    return emb + layers * per_layer


# Ladders of presets, smallest first, and those with a public pre-trained checkpoint.
_ENCODERS = ("bert-tiny", "bert-mini", "minilm-l6", "bert-small", "bert-base")
_DECODERS = ("gpt-nano", "gpt-micro", "gpt-mini", "gpt2")
_PRETRAINED = {"minilm-l6", "bert-base", "gpt2", "bert-tiny", "bert-mini", "bert-small"}

_KEYS = {
    "n_train": ("n_train", "train_size", "n_examples", "num_examples", "examples", "n"),
    "length_p95": ("length_p95", "p95_length", "len_p95", "tokens_p95", "p95_tokens", "p95"),
    "length_max": ("length_max", "max_length", "len_max", "tokens_max", "max_tokens", "max"),
    "imbalance": ("imbalance_ratio", "imbalance", "label_imbalance"),
    "labels": ("label_counts", "class_counts", "label_distribution", "labels"),
}
_NESTS = ("train", "length", "lengths", "length_tokens", "length_words", "tokens", "text_length", "stats")


def _pv(profile: Mapping[str, Any] | None, what: str) -> Any:
    """A value from a data profile whose exact layout belongs to the data layer:
    the first known key at the top level, else inside a known nested section."""
    if not isinstance(profile, Mapping):
        return None
    for key in _KEYS[what]:
        if key not in profile:
            continue
        value = profile[key]
        if what == "labels":
            if isinstance(value, Mapping):
                return value
        elif _num(value) is not None:
            return value
    for nest in _NESTS:
        value = _pv(profile.get(nest), what)
        if value is not None:
            return value
    return None


def _imbalance(profile: Mapping[str, Any] | None) -> float | None:
    ratio = _pv(profile, "imbalance")
    if isinstance(ratio, (int, float)):
        return float(ratio)
    labels = _pv(profile, "labels")
    if isinstance(labels, Mapping):
        counts = [v for v in labels.values() if isinstance(v, (int, float)) and v > 0]
        if len(counts) >= 2:
            return max(counts) / min(counts)
    return None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def recommend_from_priors(
    task: str,
    dataset_profile: Mapping[str, Any] | None = None,
    hardware: Mapping[str, Any] | None = None,
    constraints: Constraints | None = None,
) -> Recommendation:
    """A starting point before anything is measured, from the priors in docs/recommend-priors.md.

    ``task``: 'classify', 'tokens', 'qa', 'generate' or an alias (e.g. 'ner', 'sentiment').
    ``dataset_profile``: the data layer's profile (or :func:`profile_data_file`'s).
    ``hardware``: ``measure.hardware_profile()``; None means unknown (assume CPU).
    """
    from gptbert.config import ModelConfig

    cons = constraints or Constraints()
    canonical = normalize_task(task)
    reasons: list[str] = []
    notes: list[str] = []
    generative = canonical == "generate" or cons.needs_generation
    gpu = cons.device == "cuda"
    if hardware is not None and hardware.get("gpu") and not gpu:
        notes.append("this machine has a GPU; pass --device cuda if you will deploy on it")
    if hardware is not None and gpu and not hardware.get("gpu"):
        notes.append("no GPU was found on this machine although you deploy on cuda")

    if generative:
        ladder = _DECODERS
        if canonical == "generate":
            reasons.append("the task generates text, so a left-to-right decoder (GPT) is the natural fit; "
                           "encoders such as BERT have no generation path [Radford et al. 2019]")
        else:
            reasons.append(f"you need generation although the task is {canonical}: only a decoder (GPT) can "
                           "do both; expect to give up some quality to a bidirectional encoder on the "
                           f"{canonical} part [Devlin et al. 2019]")
    else:
        ladder = _ENCODERS
        reasons.append(f"{canonical} reads the whole input before predicting, so a bidirectional encoder "
                       "(BERT-style) is the default; it beat left-to-right models on such tasks in "
                       "[Devlin et al. 2019]. An ELMo-style biLSTM (feature-based, [Peters et al. 2018]) is "
                       "the cheaper-to-train fallback but usually scores lower")

    n_train = _num(_pv(dataset_profile, "n_train"))
    small_data = n_train is not None and n_train < 10_000
    if n_train is None:
        reasons.append("data size unknown: starting from a pre-trained checkpoint is the safe default")
        want_pretrained = True
    elif small_data:
        reasons.append(f"only {n_train:.0f} labelled examples (< 10,000): start from a pre-trained "
                       "checkpoint rather than training from scratch [Devlin et al. 2019; Turc et al. 2019]")
        want_pretrained = True
    else:
        reasons.append(f"{n_train:.0f} training examples: enough that a small model trained here is a "
                       "reasonable baseline, though a pre-trained checkpoint usually still wins")
        want_pretrained = False

    # Size: the largest rung that fits latency/disk/hardware priors.
    tight = cons.max_latency_ms is not None and cons.max_latency_ms <= 10
    moderate = cons.max_latency_ms is not None and cons.max_latency_ms <= 50
    if gpu and not moderate:
        cap = len(ladder) - 1
        reasons.append("a GPU is available: a base-sized model is affordable at inference")
    elif tight:
        cap = 0
        reasons.append(f"max_latency_ms {_limit(cons.max_latency_ms)} is tight: take the smallest model "  # type: ignore[arg-type]
                       "[Turc et al. 2019; Sanh et al. 2019]")
    else:
        cap = 2
        why = (f"max_latency_ms {_limit(cons.max_latency_ms)}" if moderate else "CPU-only inference")  # type: ignore[arg-type]
        reasons.append(f"{why}: prefer a compact model (around 20M parameters or fewer), which keeps most of "
                       "the quality of base-sized models at a fraction of the cost "
                       "[Sanh et al. 2019; Turc et al. 2019; Wang et al. 2020]")
    choices = list(ladder[: cap + 1])
    if cons.max_disk_mb is not None:
        int8 = "int8" if cons.device == "cpu" else "fp16"
        fits = [p for p in choices if _estimate_params(p) * (1 if int8 == "int8" else 2) / 2**20 <= cons.max_disk_mb]
        if not fits:
            notes.append(f"even {choices[0]} (~{_estimate_params(choices[0]) / 1e6:.0f}M parameters) is "
                         f"unlikely to fit max_disk_mb {_limit(cons.max_disk_mb)}")
            fits = choices[:1]
        choices = fits
    if want_pretrained:
        pre = [p for p in choices if p in _PRETRAINED]
        if pre:
            choices = pre
        elif cons.max_latency_ms is None and cons.max_disk_mb is None:
            bigger = next((p for p in ladder if p in _PRETRAINED), None)
            if bigger is not None:
                reasons.append(f"no compact pre-trained {'decoder' if generative else 'encoder'} is available; "
                               f"{bigger} (~{_estimate_params(bigger) / 1e6:.0f}M parameters) is the smallest "
                               "pre-trained one: slower on CPU, so measure it against a compact model")
                choices = [bigger]
    choice = choices[-1]
    if not generative and choice == "minilm-l6":
        reasons.append("minilm-l6 (all-MiniLM-L6-v2, distilled by [Wang et al. 2020]) is a pre-trained "
                       "6-layer, 384-wide encoder: a good quality/cost default")
    if want_pretrained and choice not in _PRETRAINED:
        notes.append(f"{choice} will be trained from scratch here; with little data expect lower quality")

    params = _estimate_params(choice)
    precision = cons.precision
    flags = (hardware or {}).get("cpu_flags") or {}
    if precision is None:
        if gpu:
            precision = "bf16"
            reasons.append("on GPU, serve in bf16: half the memory and faster matrix units at little quality cost")
        elif flags.get("amx_bf16") or flags.get("avx512_bf16"):
            precision = "bf16"
            reasons.append("the CPU has native bf16 (AMX/AVX512-BF16): serve in bf16; also try int8")
        else:
            precision = "int8"
            cpu = "CPU features unknown" if hardware is None else "CPU without native bf16"
            reasons.append(f"{cpu}: dynamic int8 quantisation of the linear layers is the portable "
                           "speed/size win on CPU; check the quality drop on dev")

    length_p95 = _num(_pv(dataset_profile, "length_p95"))
    length_max = _num(_pv(dataset_profile, "length_max"))
    block = ModelConfig.from_name(choice).block_size
    if length_p95 is not None or length_max is not None:
        longest = length_p95 if length_p95 is not None else length_max
        unit = next((str(sec["unit"]) for sec in (dataset_profile or {}).values()
                     if isinstance(sec, Mapping) and sec.get("unit") in ("tokens", "words")), "tokens")
        if unit == "words":
            unit = "words (subword tokens are more)"
        assert longest is not None
        if longest > 0.9 * block:
            notes.append(f"long inputs: the 95th-percentile length is about {longest:.0f} {unit} against a block "
                         f"size of {block}; truncate, use a sliding window, or pick a model with a larger "
                         "block (attention cost grows with the square of the length)")
        else:
            reasons.append(f"inputs fit the block size ({longest:.0f} {unit} at the 95th percentile vs {block})")

    ratio = _imbalance(dataset_profile)
    if ratio is not None and ratio >= 3 and canonical in ("classify", "tokens"):
        notes.append(f"labels are imbalanced ({ratio:.1f}:1 largest to smallest class): judge models by "
                     "macro-F1, not accuracy, which a majority-class guesser can score well on")
    if canonical == "tokens":
        notes.append("score token tasks with entity-level F1, not per-token accuracy")
    if cons.min_quality is not None or cons.max_memory_mb is not None:
        notes.append("min_quality and max_memory_mb cannot be checked without measurements")

    idx = ladder.index(choice)
    runner: str | None = None
    runner_note: str | None = None
    if idx + 1 < len(ladder):
        runner = ladder[idx + 1]
        runner_note = f"{runner}: larger, likely better but slower"
    elif idx > 0:
        runner = ladder[idx - 1]
        runner_note = f"{runner}: smaller and faster, likely somewhat worse"

    lines = [
        "Nothing was measured: this recommendation comes from documented priors "
        "(docs/recommend-priors.md), not from runs on your data and hardware.",
        f"Suggested starting point: {choice} (~{params / 1e6:.0f}M parameters) at {precision} on {cons.device}",
        "Why:",
    ]
    lines += [f"  - {r}" for r in reasons]
    if notes:
        lines.append("Watch out:")
        lines += [f"  - {n}" for n in notes]
    if runner_note:
        lines.append(f"Also try: {runner_note}")
    lines.append(f"Then measure: gptbert compare --task {canonical} ... and run gptbert recommend --results RUN_DIR")
    return Recommendation(
        choice=choice,
        runner_up=runner,
        excluded=[],
        reasons=reasons + notes,
        text="\n".join(lines),
        measured=False,
        precision=precision,
        runner_up_note=runner_note,
        ranking=[],
    )


# --------------------------------------------------------------------------- tiny profiler


def profile_data_file(path: str | Path) -> dict[str, Any]:
    """A minimal profile of a data file for the priors: examples, label counts, lengths.

    Reads TSV/CSV with a header (a ``text`` column and optional ``label``), JSONL (a
    ``text``/``label`` or ``tokens``/``tags`` object per line) or plain text (one
    example per non-empty line). Lengths are whitespace-separated words, a rough lower
    bound on subword tokens. The data layer's profiler, when available, is richer.
    """
    import csv
    import json

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"data file not found: {p}")
    lengths: list[int] = []
    labels: dict[str, int] = {}
    suffix = p.suffix.lower()
    with p.open(encoding="utf-8", errors="replace", newline="") as f:
        if suffix in (".tsv", ".csv"):
            reader = csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ",")
            cols = reader.fieldnames or []
            text_col = next((c for c in cols if c.lower() in ("text", "sentence", "question", "context")),
                            cols[0] if cols else None)
            label_col = next((c for c in cols if c.lower() in ("label", "labels", "intent", "class")), None)
            for row in reader:
                lengths.append(len((row.get(text_col) or "").split()) if text_col else 0)
                if label_col and row.get(label_col) is not None:
                    labels[row[label_col]] = labels.get(row[label_col], 0) + 1
            fmt = suffix[1:]
        elif suffix in (".jsonl", ".json"):
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    raise ValueError(f"{p}: not JSON lines") from None
                if isinstance(obj, dict):
                    if isinstance(obj.get("tokens"), list):
                        lengths.append(len(obj["tokens"]))
                    else:
                        lengths.append(len(str(obj.get("text", obj.get("context", ""))).split()))
                    if "label" in obj and not isinstance(obj["label"], (list, dict)):
                        key = str(obj["label"])
                        labels[key] = labels.get(key, 0) + 1
            fmt = "jsonl"
        else:
            lengths = [len(line.split()) for line in f if line.strip()]
            fmt = "text"
    out: dict[str, Any] = {"path": str(p), "format": fmt, "n_examples": len(lengths)}
    if lengths:
        ordered = sorted(lengths)
        out["length_words"] = {
            "mean": statistics.fmean(lengths),
            "p50": ordered[len(ordered) // 2],
            "p95": ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)],
            "max": ordered[-1],
        }
    if labels:
        out["label_counts"] = labels
        out["imbalance_ratio"] = max(labels.values()) / min(labels.values())
    return out

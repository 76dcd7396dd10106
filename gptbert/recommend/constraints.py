"""Deployment limits (:class:`Constraints`) and a measured candidate against them.

:func:`operating_point` puts a candidate at the precision it would be deployed at (its
fastest allowed one); :func:`violations` lists every limit it fails, each with the measured
number and the limit; :func:`relaxations` says how far the limits would have to move to
admit it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from gptbert.recommend.numbers import limit, mb, ms, quality
from gptbert.results import CandidateResult

__all__ = ["DEVICE_PRECISIONS", "Constraints", "OperatingPoint", "operating_point", "relaxations", "violations"]

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
class OperatingPoint:
    """A candidate at its deployment precision: every measured axis the recommender compares."""

    c: CandidateResult
    precision: str
    p95: float | None
    """Batch-1 latency, 95th percentile, ms."""
    p50: float | None
    """Batch-1 latency, median, ms."""
    memory: float | None
    """Inference peak RSS, MB."""
    disk: float | None
    """Weight size at ``precision``, MB."""
    throughput: float | None = None
    """Items per second at batch 32 at ``precision``."""

    @property
    def score(self) -> float:
        """Quality, larger is better whatever the metric's direction."""
        q = self.c.quality
        assert q is not None and q.value is not None
        return q.value if q.higher_is_better else -q.value

    @property
    def interval(self) -> tuple[float, float]:
        """The 95 % interval of :attr:`score`."""
        q = self.c.quality
        assert q is not None and q.value is not None
        iv = q.interval or (q.value, q.value)
        lo, hi = min(iv), max(iv)
        return (lo, hi) if q.higher_is_better else (-hi, -lo)

    def cost(self) -> tuple[float, float, float]:
        """What a tie on quality is broken by: p95 latency, then memory, then size (unmeasured: last)."""
        inf = math.inf
        return (
            self.p95 if self.p95 is not None else inf,
            self.memory if self.memory is not None else inf,
            self.disk if self.disk is not None else inf,
        )


def operating_point(c: CandidateResult, cons: Constraints) -> OperatingPoint:
    """The candidate at its best allowed precision: lowest p95, then smallest size."""
    allowed = cons.allowed_precisions()
    measured = [p for p in allowed if p in c.latency]
    if measured:
        prec = min(measured, key=lambda p: (c.latency[p].p95_ms, c.size_mb.get(p, math.inf)))
    else:
        prec = cons.precision or next((p for p in allowed if p in c.size_mb), allowed[0])
    # A latency the FLOPs cannot explain (re-measured, still inconsistent) is not reasoned from.
    lat = None if c.extra.get("latency_suspect") else c.latency.get(prec)
    return OperatingPoint(
        c=c,
        precision=prec,
        p95=lat.p95_ms if lat else None,
        p50=lat.p50_ms if lat else None,
        memory=c.peak_rss_mb.get("inference"),
        disk=c.size_mb.get(prec),
        throughput=c.throughput.get(prec),
    )


def _fails_min_quality(c: CandidateResult, cons: Constraints) -> bool:
    q = c.quality
    assert q is not None and q.value is not None and cons.min_quality is not None
    return q.value < cons.min_quality if q.higher_is_better else q.value > cons.min_quality


def violations(pt: OperatingPoint, cons: Constraints) -> list[str]:
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
                       f"{limit(cons.max_latency_ms)}")
        elif pt.p95 > cons.max_latency_ms:
            out.append(f"p95 latency {ms(pt.p95)} ms at batch 1 ({pt.precision}, its fastest allowed "
                       f"precision) exceeds max_latency_ms {limit(cons.max_latency_ms)}")
    if cons.max_memory_mb is not None:
        if pt.memory is None:
            out.append(f"no inference peak RSS measured, cannot check max_memory_mb {limit(cons.max_memory_mb)}")
        elif pt.memory > cons.max_memory_mb:
            out.append(f"inference peak RSS {mb(pt.memory)} MB exceeds max_memory_mb {limit(cons.max_memory_mb)}")
    if cons.max_disk_mb is not None:
        if pt.disk is None:
            out.append(f"no size at {pt.precision} recorded, cannot check max_disk_mb {limit(cons.max_disk_mb)}")
        elif pt.disk > cons.max_disk_mb:
            out.append(f"size {mb(pt.disk)} MB at {pt.precision} exceeds max_disk_mb {limit(cons.max_disk_mb)}")
    if cons.min_quality is not None and _fails_min_quality(c, cons):
        word = "below" if q.higher_is_better else "above (worse than)"
        out.append(f"{q.metric} {quality(q.value, q.metric)} on {q.split} is {word} min_quality "
                   f"{limit(cons.min_quality)}")
    return out


def relaxations(pt: OperatingPoint, cons: Constraints) -> list[tuple[str, float]] | None:
    """The limit changes that would admit this candidate, each with how far the limit must
    move (measured / limit), or None if changing limits cannot admit it."""
    c = pt.c
    if c.status != "ok" or c.quality is None or c.quality.value is None:
        return None
    if cons.needs_generation and not c.can_generate:
        return None
    out: list[tuple[str, float]] = []
    for name, value, bound, fmt in (
        ("max_latency_ms", pt.p95, cons.max_latency_ms, ms),
        ("max_memory_mb", pt.memory, cons.max_memory_mb, mb),
        ("max_disk_mb", pt.disk, cons.max_disk_mb, mb),
    ):
        if bound is None:
            continue
        if value is None:
            return None
        if value > bound:
            out.append((f"{name} to {fmt(value)}", value / bound))
    if cons.min_quality is not None and _fails_min_quality(c, cons):
        q = c.quality
        distance = abs(q.value - cons.min_quality) / max(abs(cons.min_quality), 1e-12)
        out.append((f"min_quality to {quality(q.value, q.metric)}", 1.0 + distance))
    return out


def _se(p: OperatingPoint) -> float:
    """Standard error of a candidate's quality, read off its 95 % bootstrap interval."""
    lo, hi = p.interval
    return (hi - lo) / (2 * 1.96)


def tied(a: OperatingPoint, b: OperatingPoint) -> bool:
    """True when the quality difference is not significant at 95 %: ``|a - b|`` is within
    1.96 standard errors of the difference, ``sqrt(se_a^2 + se_b^2)`` (two independent
    estimates). Asking whether the two intervals overlap instead would be too lenient:
    intervals of two candidates 2.8 standard errors apart still overlap."""
    return abs(a.score - b.score) <= 1.96 * math.hypot(_se(a), _se(b)) + 1e-12

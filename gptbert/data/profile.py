"""Data-set profile: the numbers a model/recipe recommender needs about a task file.

Counts, label balance, example lengths (tokens with a tokenizer, else whitespace words),
vocabulary coverage against a tokenizer, duplicates and pair presence. No torch needed.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from gptbert.data.readers import TaskData
    from gptbert.tokenizer import Tokenizer

__all__ = ["DatasetProfile", "LengthStats", "format_profile", "percentile", "profile_dataset", "profile_task_data"]

LENGTH_THRESHOLDS: tuple[int, ...] = (64, 128, 256, 512)
_CHUNK = 4096


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (as numpy's default) of already sorted values."""
    if not sorted_values:
        return 0.0
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q={q}; expected 0..100")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = pos - lo
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac)


@dataclass
class LengthStats:
    """Distribution of example lengths."""

    unit: str
    """'tokens' (with a tokenizer, special tokens included) or 'words' (whitespace split)."""
    mean: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: int
    min: int
    over: dict[int, float] = field(default_factory=dict)
    """Share of examples longer than each threshold (would be truncated at that max length)."""

    @classmethod
    def from_lengths(cls, lengths: Sequence[int], unit: str) -> LengthStats:
        values = sorted(lengths)
        n = len(values)
        return cls(
            unit=unit,
            mean=sum(values) / n if n else 0.0,
            p50=percentile(values, 50), p90=percentile(values, 90), p95=percentile(values, 95),
            p99=percentile(values, 99),
            max=values[-1] if n else 0, min=values[0] if n else 0,
            over={t: (sum(1 for v in values if v > t) / n if n else 0.0) for t in LENGTH_THRESHOLDS},
        )


@dataclass
class DatasetProfile:
    """Profile of one data set. ``to_dict()`` gives plain JSON-ready values."""

    source: str | None
    n_examples: int
    n_bad_rows: int
    has_labels: bool
    n_labels: int
    label_counts: dict[str, int]
    """Examples per label, most frequent first."""
    majority_label: str | None
    majority_share: float | None
    minority_label: str | None
    minority_share: float | None
    imbalance_ratio: float | None
    """Count of the most frequent label over that of the least frequent (1.0 = balanced)."""
    label_entropy: float | None
    """Entropy of the label distribution divided by log(n_labels): 1.0 = uniform, 0.0 = one label."""
    length: LengthStats
    """Length of an example as the model sees it (text + pair + special tokens with a tokenizer)."""
    has_pairs: bool
    pair_presence: float
    """Share of examples with a non-empty second text."""
    duplicate_rate: float
    """Share of examples that repeat an earlier one after lowercasing and collapsing whitespace."""
    n_duplicates: int
    conflicting_duplicates: int
    """Distinct duplicated texts that appear with more than one label."""
    tokenizer: str | None = None
    unk_rate: float | None = None
    """Share of (non-special) tokens that are the unknown token."""
    examples_with_unk: float | None = None
    word_coverage: float | None = None
    """Share of pre-tokenized words that are a single known vocabulary entry (not split, not unknown)."""
    tokens_per_word: float | None = None

    @property
    def is_pair_task(self) -> bool:
        return self.has_pairs

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["length"]["over"] = {str(k): v for k, v in self.length.over.items()}
        return d


def _norm(text: str | None) -> str:
    return " ".join(text.lower().split()) if text else ""


def _label_stats(labels: Sequence[str]) -> dict[str, Any]:
    counts = Counter(labels)
    ordered = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    n = len(labels)
    k = len(ordered)
    if not n:
        return dict(n_labels=0, label_counts={}, majority_label=None, majority_share=None, minority_label=None,
                    minority_share=None, imbalance_ratio=None, label_entropy=None)
    (maj, maj_n), (mino, min_n) = next(iter(ordered.items())), list(ordered.items())[-1]
    entropy = -sum((c / n) * math.log(c / n) for c in ordered.values())
    return dict(
        n_labels=k, label_counts=ordered, majority_label=maj, majority_share=maj_n / n,
        minority_label=mino, minority_share=min_n / n, imbalance_ratio=maj_n / min_n,
        label_entropy=(entropy / math.log(k)) if k > 1 else 0.0,
    )


def _describe(tokenizer: Tokenizer) -> str:
    return f"{tokenizer.kind}, vocab {tokenizer.vocab_size}{', lowercase' if tokenizer.lowercase else ''}"


def _token_stats(
    tokenizer: Tokenizer, texts: Sequence[str], pairs: Sequence[str | None] | None
) -> tuple[list[int], dict[str, float | None]]:
    """Per-example token lengths (with special tokens) and vocabulary statistics."""
    backend = tokenizer.backend
    unk = tokenizer.unk_id
    lengths: list[int] = []
    n_tokens = n_unk = n_words = n_single = 0
    ex_with_unk = 0
    add_single = backend.num_special_tokens_to_add(False)
    add_pair = backend.num_special_tokens_to_add(True)
    for start in range(0, len(texts), _CHUNK):
        chunk = list(texts[start:start + _CHUNK])
        second = list(pairs[start:start + _CHUNK]) if pairs is not None else [None] * len(chunk)
        first_enc = backend.encode_batch(chunk, add_special_tokens=False)
        has_second = [bool(p) for p in second]
        second_enc_iter = iter(backend.encode_batch([p for p in second if p], add_special_tokens=False)
                               if any(has_second) else [])
        for enc, present in zip(first_enc, has_second):
            parts = [enc]
            if present:
                parts.append(next(second_enc_iter))
            total = 0
            unk_here = 0
            for part in parts:
                ids = part.ids
                total += len(ids)
                if unk is not None:
                    unk_here += ids.count(unk)
                per_word = Counter(w for w in part.word_ids if w is not None)
                n_words += len(per_word)
                if per_word:
                    singles = {w for w, c in per_word.items() if c == 1}
                    if unk is not None and unk_here:
                        singles -= {w for w, i in zip(part.word_ids, ids) if i == unk}
                    n_single += len(singles)
            n_tokens += total
            n_unk += unk_here
            ex_with_unk += unk_here > 0
            lengths.append(total + (add_pair if present else add_single))
    n = len(texts)
    return lengths, {
        "unk_rate": n_unk / n_tokens if n_tokens else 0.0,
        "examples_with_unk": ex_with_unk / n if n else 0.0,
        "word_coverage": n_single / n_words if n_words else None,
        "tokens_per_word": n_tokens / n_words if n_words else None,
    }


def profile_dataset(
    texts: Sequence[str],
    labels: Sequence[str] | None = None,
    pairs: Sequence[str | None] | None = None,
    *,
    tokenizer: Tokenizer | None = None,
    source: str | None = None,
    n_bad_rows: int = 0,
) -> DatasetProfile:
    """Profile texts (with optional labels and second texts)."""
    n = len(texts)
    if labels is not None and len(labels) != n:
        raise ValueError(f"profile_dataset: {n} texts but {len(labels)} labels")
    if pairs is not None and len(pairs) != n:
        raise ValueError(f"profile_dataset: {n} texts but {len(pairs)} pairs")
    if tokenizer is not None:
        lengths, vocab_stats = _token_stats(tokenizer, texts, pairs)
        length = LengthStats.from_lengths(lengths, "tokens")
    else:
        vocab_stats = {}
        if pairs is None:
            lengths = [len(t.split()) for t in texts]
        else:
            lengths = [len(t.split()) + len((p or "").split()) for t, p in zip(texts, pairs)]
        length = LengthStats.from_lengths(lengths, "words")

    keys = [_norm(t) + ("\t" + _norm(p) if pairs is not None else "") for t, p in
            zip(texts, pairs if pairs is not None else [None] * n)]
    seen: dict[str, set[str]] = {}
    n_dup = 0
    for i, key in enumerate(keys):
        if key in seen:
            n_dup += 1
        bucket = seen.setdefault(key, set())
        if labels is not None:
            bucket.add(labels[i])
    conflicting = sum(1 for labs in seen.values() if len(labs) > 1)

    presence = (sum(1 for p in pairs if p and p.strip()) / n if n else 0.0) if pairs is not None else 0.0
    return DatasetProfile(
        source=source,
        n_examples=n,
        n_bad_rows=n_bad_rows,
        has_labels=labels is not None,
        **_label_stats(list(labels) if labels is not None else []),
        length=length,
        has_pairs=pairs is not None,
        pair_presence=presence,
        duplicate_rate=n_dup / n if n else 0.0,
        n_duplicates=n_dup,
        conflicting_duplicates=conflicting,
        tokenizer=_describe(tokenizer) if tokenizer is not None else None,
        **vocab_stats,
    )


def profile_task_data(data: TaskData, tokenizer: Tokenizer | None = None) -> DatasetProfile:
    """Profile a :class:`~gptbert.data.readers.TaskData` (bad-row count included)."""
    return profile_dataset(data.texts, data.labels, data.pairs, tokenizer=tokenizer, source=data.source,
                           n_bad_rows=data.n_bad_rows)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def format_profile(profile: DatasetProfile, *, max_labels: int = 10) -> str:
    """A readable two-column table."""
    p = profile
    rows: list[tuple[str, str]] = [
        ("source", p.source or "-"),
        ("examples", f"{p.n_examples:,}"),
        ("bad rows skipped", f"{p.n_bad_rows:,}"),
        ("pairs", (f"yes ({_pct(p.pair_presence)} present)" if p.has_pairs else "no")),
    ]
    if p.has_labels:
        rows += [
            ("labels", f"{p.n_labels}"),
            ("majority", f"{p.majority_label!r} {_pct(p.majority_share)}"),
            ("minority", f"{p.minority_label!r} {_pct(p.minority_share)}"),
            ("imbalance ratio", f"{p.imbalance_ratio:.2f}" if p.imbalance_ratio is not None else "-"),
            ("label entropy", f"{p.label_entropy:.3f} (1 = balanced)" if p.label_entropy is not None else "-"),
        ]
    else:
        rows.append(("labels", "none"))
    L = p.length
    rows += [
        (f"length ({L.unit})", f"mean {L.mean:.1f}  p50 {L.p50:g}  p90 {L.p90:g}  p95 {L.p95:g}  "
                               f"p99 {L.p99:g}  max {L.max}"),
        ("longer than", "  ".join(f">{k}: {_pct(v)}" for k, v in L.over.items())),
        ("duplicates", f"{_pct(p.duplicate_rate)} ({p.n_duplicates:,}; {p.conflicting_duplicates:,} with conflicting labels)"
         if p.has_labels else f"{_pct(p.duplicate_rate)} ({p.n_duplicates:,})"),
    ]
    if p.tokenizer is not None:
        rows += [
            ("tokenizer", p.tokenizer),
            ("unknown tokens", f"{_pct(p.unk_rate)} of tokens; {_pct(p.examples_with_unk)} of examples"),
            ("word coverage", f"{_pct(p.word_coverage)} of words are one vocabulary entry"),
            ("tokens per word", f"{p.tokens_per_word:.2f}" if p.tokens_per_word is not None else "-"),
        ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    if p.has_labels and p.label_counts:
        lines.append("")
        lines.append("label distribution:")
        items = list(p.label_counts.items())
        lw = max(len(str(k)) for k, _ in items[:max_labels])
        for lab, c in items[:max_labels]:
            share = c / p.n_examples if p.n_examples else 0.0
            bar = "#" * max(1, round(30 * share)) if c else ""
            lines.append(f"  {str(lab).ljust(lw)}  {c:>8,}  {_pct(share):>6}  {bar}")
        if len(items) > max_labels:
            lines.append(f"  ... {len(items) - max_labels} more labels")
    return "\n".join(lines)

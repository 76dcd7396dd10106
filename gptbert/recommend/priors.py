"""A starting point before anything is measured: :func:`recommend_from_priors`.

The priors are the tables below, one per section of ``docs/recommend-priors.md`` (task ->
family, data size -> pre-trained or not, latency / hardware -> size, hardware -> precision,
long inputs, label imbalance); the function reads them in that order. A rule table's first
row whose conditions hold applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gptbert.recommend.constraints import Constraints
from gptbert.recommend.numbers import limit
from gptbert.recommend.recommendation import Recommendation

__all__ = ["TASK_ALIASES", "normalize_task", "recommend_from_priors"]

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


# --------------------------------------------------------------------------- 1. task -> family

LADDERS: dict[str, tuple[str, ...]] = {
    "encoder": ("bert-tiny", "bert-mini", "minilm-l6", "bert-small", "bert-base"),
    "decoder": ("gpt-nano", "gpt-micro", "gpt-mini", "gpt2"),
}
"""Presets of each family, smallest first."""
PRETRAINED = frozenset({"minilm-l6", "bert-base", "gpt2", "bert-tiny", "bert-mini", "bert-small"})
"""Presets with a public pre-trained checkpoint."""

FAMILY_REASONS: dict[str, str] = {
    "generate": "the task generates text, so a left-to-right decoder (GPT) is the natural fit; "
                "encoders such as BERT have no generation path [Radford et al. 2019]",
    "needs_generation": "you need generation although the task is {task}: only a decoder (GPT) can do both; "
                        "expect to give up some quality to a bidirectional encoder on the {task} part "
                        "[Devlin et al. 2019]",
    "encoder": "{task} reads the whole input before predicting, so a bidirectional encoder (BERT-style) is the "
               "default; it beat left-to-right models on such tasks in [Devlin et al. 2019]. An ELMo-style "
               "biLSTM (feature-based, [Peters et al. 2018]) is the cheaper-to-train fallback but usually "
               "scores lower",
}
"""Why the family: a generation task, generation asked for another task, or an encoder task."""

# --------------------------------------------------------------------------- 2. data size -> pre-trained


@dataclass(frozen=True)
class DataRule:
    """Labelled examples below ``below`` (None: any number; unknown size: the first row)."""

    below: float | None
    pretrained: bool
    reason: str
    """Formatted with ``n``, the number of training examples."""


DATA_UNKNOWN = DataRule(None, True, "data size unknown: starting from a pre-trained checkpoint is the safe default")
DATA_RULES: tuple[DataRule, ...] = (
    DataRule(10_000, True, "only {n:.0f} labelled examples (< 10,000): start from a pre-trained checkpoint "
                           "rather than training from scratch [Devlin et al. 2019; Turc et al. 2019]"),
    DataRule(None, False, "{n:.0f} training examples: enough that a small model trained here is a reasonable "
                          "baseline, though a pre-trained checkpoint usually still wins"),
)

# --------------------------------------------------------------------------- 3. latency / hardware -> size

_COMPACT = ("prefer a compact model (around 20M parameters or fewer), which keeps most of the quality of "
            "base-sized models at a fraction of the cost [Sanh et al. 2019; Turc et al. 2019; Wang et al. 2020]")


@dataclass(frozen=True)
class SizeRule:
    """The largest ladder rung allowed (``rung``; None: the top) when the conditions hold."""

    rung: int | None
    reason: str
    """Formatted with ``latency``, the max_latency_ms limit."""
    device: str | None = None
    """Only when deploying on this device."""
    latency_at_most: float | None = None
    """Only when max_latency_ms is set and at most this."""
    latency_above: float | None = None
    """Only when max_latency_ms is unset or above this."""

    def applies(self, cons: Constraints) -> bool:
        lat = cons.max_latency_ms
        return ((self.device is None or cons.device == self.device)
                and (self.latency_at_most is None or (lat is not None and lat <= self.latency_at_most))
                and (self.latency_above is None or lat is None or lat > self.latency_above))


SIZE_RULES: tuple[SizeRule, ...] = (
    SizeRule(None, "a GPU is available: a base-sized model is affordable at inference", device="cuda",
             latency_above=50),
    SizeRule(0, "max_latency_ms {latency} is tight: take the smallest model [Turc et al. 2019; Sanh et al. 2019]",
             latency_at_most=10),
    SizeRule(2, "max_latency_ms {latency}: " + _COMPACT, latency_at_most=50),
    SizeRule(2, "CPU-only inference: " + _COMPACT),
)

DISK_BYTES_PER_PARAM: dict[str, int] = {"cpu": 1, "cuda": 2}
"""Weight bytes per parameter at the smallest deployable precision (int8 on CPU, fp16 on GPU)."""

MINILM_REASON = ("minilm-l6 (all-MiniLM-L6-v2, distilled by [Wang et al. 2020]) is a pre-trained 6-layer, "
                 "384-wide encoder: a good quality/cost default")

# --------------------------------------------------------------------------- 4. hardware -> precision


@dataclass(frozen=True)
class PrecisionRule:
    precision: str
    reason: str
    """Formatted with ``cpu``: what is known of the CPU."""
    device: str | None = None
    cpu_flags: tuple[str, ...] = ()
    """Only when the CPU has one of these flags."""

    def applies(self, cons: Constraints, flags: Mapping[str, Any]) -> bool:
        return ((self.device is None or cons.device == self.device)
                and (not self.cpu_flags or any(flags.get(f) for f in self.cpu_flags)))


PRECISION_RULES: tuple[PrecisionRule, ...] = (
    PrecisionRule("bf16", "on GPU, serve in bf16: half the memory and faster matrix units at little quality cost",
                  device="cuda"),
    PrecisionRule("bf16", "the CPU has native bf16 (AMX/AVX512-BF16): serve in bf16; also try int8",
                  cpu_flags=("amx_bf16", "avx512_bf16")),
    PrecisionRule("int8", "{cpu}: dynamic int8 quantisation of the linear layers is the portable speed/size win "
                          "on CPU; check the quality drop on dev"),
)

# --------------------------------------------------------------------------- 5, 6. inputs and labels

LONG_INPUT_SHARE = 0.9
"""Warn when the 95th-percentile length exceeds this share of the block size."""
IMBALANCE_RATIO = 3.0
"""Advise macro-F1 when the largest class has at least this many times the examples of the smallest."""
IMBALANCE_TASKS = ("classify", "tokens")

# --------------------------------------------------------------------------- reading a profile

_KEYS = {
    "n_train": ("n_train", "train_size", "n_examples", "num_examples", "examples", "n"),
    "length_p95": ("length_p95", "p95_length", "len_p95", "tokens_p95", "p95_tokens", "p95"),
    "length_max": ("length_max", "max_length", "len_max", "tokens_max", "max_tokens", "max"),
    "imbalance": ("imbalance_ratio", "imbalance", "label_imbalance"),
    "labels": ("label_counts", "class_counts", "label_distribution", "labels"),
}
_NESTS = ("train", "length", "lengths", "length_tokens", "length_words", "tokens", "text_length", "stats")


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


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


def _estimate_params(preset: str) -> int:
    """Parameter count of a preset without building it (transformers: embeddings + 12 d^2-ish per layer)."""
    from gptbert.config import ModelConfig

    cfg = ModelConfig.from_name(preset)
    d, ff, layers = cfg.n_embd, cfg.intermediate_size or 4 * cfg.n_embd, cfg.n_layer
    emb = cfg.vocab_size * d + cfg.block_size * d
    per_layer = 4 * d * d + 2 * d * ff + 9 * d + ff
    return emb + layers * per_layer


# --------------------------------------------------------------------------- the rules in order


def _family(canonical: str, cons: Constraints) -> tuple[str, str]:
    """(ladder name, reason)."""
    if canonical == "generate":
        return "decoder", FAMILY_REASONS["generate"]
    if cons.needs_generation:
        return "decoder", FAMILY_REASONS["needs_generation"].format(task=canonical)
    return "encoder", FAMILY_REASONS["encoder"].format(task=canonical)


def _data_rule(n_train: float | None) -> tuple[bool, str]:
    """(start from a pre-trained checkpoint?, reason)."""
    if n_train is None:
        return DATA_UNKNOWN.pretrained, DATA_UNKNOWN.reason
    rule = next(r for r in DATA_RULES if r.below is None or n_train < r.below)
    return rule.pretrained, rule.reason.format(n=n_train)


def _candidates(ladder: tuple[str, ...], family: str, cons: Constraints, want_pretrained: bool,
                reasons: list[str], notes: list[str]) -> list[str]:
    """The ladder rungs the size, disk and pre-training rules leave, smallest first."""
    rule = next(r for r in SIZE_RULES if r.applies(cons))
    latency = limit(cons.max_latency_ms) if cons.max_latency_ms is not None else ""
    reasons.append(rule.reason.format(latency=latency))
    choices = list(ladder if rule.rung is None else ladder[: rule.rung + 1])
    if cons.max_disk_mb is not None:
        per_param = DISK_BYTES_PER_PARAM[cons.device]
        fits = [p for p in choices if _estimate_params(p) * per_param / 2**20 <= cons.max_disk_mb]
        if not fits:
            notes.append(f"even {choices[0]} (~{_estimate_params(choices[0]) / 1e6:.0f}M parameters) is "
                         f"unlikely to fit max_disk_mb {limit(cons.max_disk_mb)}")
            fits = choices[:1]
        choices = fits
    if want_pretrained:
        pre = [p for p in choices if p in PRETRAINED]
        if pre:
            choices = pre
        elif cons.max_latency_ms is None and cons.max_disk_mb is None:
            bigger = next((p for p in ladder if p in PRETRAINED), None)
            if bigger is not None:
                reasons.append(f"no compact pre-trained {family} is available; {bigger} "
                               f"(~{_estimate_params(bigger) / 1e6:.0f}M parameters) is the smallest "
                               "pre-trained one: slower on CPU, so measure it against a compact model")
                choices = [bigger]
    return choices


def _precision(cons: Constraints, hardware: Mapping[str, Any] | None, reasons: list[str]) -> str:
    if cons.precision is not None:
        return cons.precision
    flags = (hardware or {}).get("cpu_flags") or {}
    rule = next(r for r in PRECISION_RULES if r.applies(cons, flags))
    cpu = "CPU features unknown" if hardware is None else "CPU without native bf16"
    reasons.append(rule.reason.format(cpu=cpu))
    return rule.precision


def _input_notes(profile: Mapping[str, Any] | None, canonical: str, block: int, reasons: list[str],
                 notes: list[str]) -> None:
    length_p95 = _num(_pv(profile, "length_p95"))
    length_max = _num(_pv(profile, "length_max"))
    longest = length_p95 if length_p95 is not None else length_max
    if longest is not None:
        unit = next((str(sec["unit"]) for sec in (profile or {}).values()
                     if isinstance(sec, Mapping) and sec.get("unit") in ("tokens", "words")), "tokens")
        if unit == "words":
            unit = "words (subword tokens are more)"
        if longest > LONG_INPUT_SHARE * block:
            notes.append(f"long inputs: the 95th-percentile length is about {longest:.0f} {unit} against a block "
                         f"size of {block}; truncate, use a sliding window, or pick a model with a larger "
                         "block (attention cost grows with the square of the length)")
        else:
            reasons.append(f"inputs fit the block size ({longest:.0f} {unit} at the 95th percentile vs {block})")
    ratio = _imbalance(profile)
    if ratio is not None and ratio >= IMBALANCE_RATIO and canonical in IMBALANCE_TASKS:
        notes.append(f"labels are imbalanced ({ratio:.1f}:1 largest to smallest class): judge models by "
                     "macro-F1, not accuracy, which a majority-class guesser can score well on")


def _runner_up(ladder: tuple[str, ...], choice: str) -> tuple[str | None, str | None]:
    idx = ladder.index(choice)
    if idx + 1 < len(ladder):
        return ladder[idx + 1], f"{ladder[idx + 1]}: larger, likely better but slower"
    if idx > 0:
        return ladder[idx - 1], f"{ladder[idx - 1]}: smaller and faster, likely somewhat worse"
    return None, None


def recommend_from_priors(
    task: str,
    dataset_profile: Mapping[str, Any] | None = None,
    hardware: Mapping[str, Any] | None = None,
    constraints: Constraints | None = None,
) -> Recommendation:
    """A starting point before anything is measured, from the priors in docs/recommend-priors.md.

    ``task``: 'classify', 'tokens', 'qa', 'generate' or an alias (e.g. 'ner', 'sentiment').
    ``dataset_profile``: the data layer's profile (e.g. :func:`~gptbert.recommend.profile.profile_data_file`'s).
    ``hardware``: ``measure.hardware_profile()``; None means unknown (assume CPU).
    """
    from gptbert.config import ModelConfig

    cons = constraints or Constraints()
    canonical = normalize_task(task)
    notes: list[str] = []
    if hardware is not None and hardware.get("gpu") and cons.device != "cuda":
        notes.append("this machine has a GPU; pass --device cuda if you will deploy on it")
    if hardware is not None and cons.device == "cuda" and not hardware.get("gpu"):
        notes.append("no GPU was found on this machine although you deploy on cuda")

    family, why_family = _family(canonical, cons)
    ladder = LADDERS[family]
    want_pretrained, why_data = _data_rule(_num(_pv(dataset_profile, "n_train")))
    reasons = [why_family, why_data]
    choice = _candidates(ladder, family, cons, want_pretrained, reasons, notes)[-1]
    if choice == "minilm-l6":
        reasons.append(MINILM_REASON)
    if want_pretrained and choice not in PRETRAINED:
        notes.append(f"{choice} will be trained from scratch here; with little data expect lower quality")
    precision = _precision(cons, hardware, reasons)
    _input_notes(dataset_profile, canonical, ModelConfig.from_name(choice).block_size, reasons, notes)
    if canonical == "tokens":
        notes.append("score token tasks with entity-level F1, not per-token accuracy")
    if cons.min_quality is not None or cons.max_memory_mb is not None:
        notes.append("min_quality and max_memory_mb cannot be checked without measurements")
    runner, runner_note = _runner_up(ladder, choice)

    lines = [
        "Nothing was measured: this recommendation comes from documented priors "
        "(docs/recommend-priors.md), not from runs on your data and hardware.",
        f"Suggested starting point: {choice} (~{_estimate_params(choice) / 1e6:.0f}M parameters) at {precision} "
        f"on {cons.device}",
        "Why:",
    ]
    lines += [f"  - {r}" for r in reasons]
    if notes:
        lines += ["Watch out:"] + [f"  - {n}" for n in notes]
    if runner_note:
        lines.append(f"Also try: {runner_note}")
    lines.append(f"Then measure: gptbert compare --task {canonical} ... and run gptbert recommend --results RUN_DIR")
    return Recommendation(choice=choice, runner_up=runner, excluded=[], reasons=reasons + notes,
                          text="\n".join(lines), measured=False, precision=precision, runner_up_note=runner_note,
                          ranking=[])

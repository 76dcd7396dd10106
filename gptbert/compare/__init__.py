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

from gptbert.compare.candidates import (
    BudgetPlan,
    CandidateSpec,
    CompareError,
    parse_candidate,
    parse_candidates,
    safe_dir_name,
    split_budget,
)
from gptbert.compare.inference import measure_inference
from gptbert.compare.runner import choose_threads, format_summary, run_comparison
from gptbert.compare.settings import (
    DEFAULT_CANDIDATES,
    DEMO_CANDIDATES,
    DEMO_DIR,
    PRECISIONS,
    CompareOutcome,
    CompareSettings,
    demo_problems,
    demo_settings,
)
from gptbert.compare.train import default_lrs

__all__ = [
    "BudgetPlan",
    "CandidateSpec",
    "CompareError",
    "CompareOutcome",
    "CompareSettings",
    "DEFAULT_CANDIDATES",
    "DEMO_CANDIDATES",
    "DEMO_DIR",
    "PRECISIONS",
    "choose_threads",
    "default_lrs",
    "demo_problems",
    "demo_settings",
    "format_summary",
    "measure_inference",
    "parse_candidate",
    "parse_candidates",
    "safe_dir_name",
    "run_comparison",
    "split_budget",
]

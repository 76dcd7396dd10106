"""Budget-aware fine-tuning recipes: what ``finetune`` and ``compare`` do so that a model reaches
its real quality inside the time it is given.

Every default below was measured on this project's shared data (AMD EPYC, 2 cores, fp32, the
real all-MiniLM-L6-v2 checkpoint), against the recipe ``compare`` used before (pooler on
[CLS], a fresh head at the body's learning rate, batches padded to 64 tokens in random order):
MiniLM on banking77 went from 0.436 to 0.947 dev accuracy in the same 5 minutes, on SST-2 from
0.819 (8 minutes) to 0.86-0.88 (5 minutes).

* **Pooling as the checkpoint was trained.** A sentence-transformers checkpoint says how in
  its own files (mean for MiniLM); a BERT without them is mean-pooled too. Frozen MiniLM +
  logistic regression on banking77: mean 0.937, raw [CLS] 0.921, the pooler on [CLS] 0.905
  (:mod:`gptbert.baselines.embed`). The pooled vector is L2-normalised, as the probe below was
  fitted on it.
* **Linear probe, then fine-tune** (Kumar et al. 2022, "LP-FT"): the fresh head starts as a
  logistic regression fitted on the frozen model's sentence vectors of (a stratified part of)
  train, at most :data:`PROBE_SHARE` of the budget. Fine-tuning then starts from the probe's
  quality instead of from chance: banking77 0.937 after the probe, 0.947 after 2 epochs; a
  random 77-way head at 1e-4 was at 0.436 after 142 steps. A source that already has a trained
  head for the same labels (an ``embed-lr`` run) is fine-tuned as it is.
* **The head learns faster than the body** (``head_lr`` = 10 x ``lr``), the body at
  :data:`PRETRAINED_LR` (1e-4; 5e-5 was too slow for 5-minute budgets, 3e-4 unstable after the
  probe).
* **Frozen word embeddings** for pre-trained sources: the 30,522 x 384 table is half of
  MiniLM's weights; freezing it saves its gradient and AdamW update every step and, on SST-2 in
  5 minutes, scored 0.878 against 0.862 trained (same number of steps).
* **Batches of similar length** (``group_by_length``) and **max_len from the data** (the 99th
  percentile of the training texts' token lengths, at most the model's block size): banking77
  texts average 16 tokens (p99 53), SST-2 13 (p99 45); padding a random batch to its longest
  member costs 2-3x the work.
* **The schedule fits the budget**: under ``--time-budget`` the training loop measures its own
  progress as the share of the budget spent (evaluations included) and re-plans the linear
  warm-up (:data:`WARMUP_RATIO`) and decay every step (:func:`gptbert.training.schedule.schedule_total`),
  so the learning rate reaches its floor when the budget runs out, however fast the steps are.
  The probe's time is taken out of the budget first.
* **Presets** (random init) keep :func:`preset_lrs`: 1e-3, or 2e-4 for post-LN models wider
  than 128 (bert-mini did not learn SST-2 at 1e-3: 0.52 vs 0.69 at 2e-4 in 200 steps).

:func:`plan` writes the recipe with the reason for each choice; :func:`prepare` applies the
model-side parts (pooling, probe, frozen embeddings) and :func:`train_args` the training-loop
parts, never overriding what the user set explicitly.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch.nn as nn

from gptbert.config import ModelConfig

PRETRAINED_LR = 1e-4
HEAD_LR_FACTOR = 10.0
WARMUP_RATIO = 0.06
BATCH_SIZE = 32
PROBE_SHARE = 0.4
"""At most this share of the time budget goes to the linear probe (embedding + logistic regression): the
probe is most of the quality a short budget can buy (on 600 banking77 rows, 20 s: frozen MiniLM + LR
0.60, a fine-tune whose probe got 4 s 0.26)."""
PROBE_MAX_EXAMPLES = 20_000
MISSING_LABEL_LOGIT = -5.0
"""Head bias of a label absent from the probe's sample (it starts unlikely; fine-tuning learns it)."""
MAX_LEN_PERCENTILE = 99
MIN_MAX_LEN = 16
EVAL_EVERY_MAX = 200
PATIENCE = 3


@dataclass
class Recipe:
    """A fine-tuning plan: the settings and, for each, why."""

    kind: str
    """'pretrained' (a checkpoint) or 'preset' (random init)."""
    lr: float
    head_lr: float | None
    warmup_ratio: float
    batch_size: int
    max_len: int
    group_by_length: bool
    freeze_embeddings: bool
    pooling: str | None
    """Pooling to set on the classify head (None: keep the model's)."""
    probe: bool
    """Start the classify head from a linear probe."""
    eval_every: int
    patience: int
    reasons: dict[str, str] = field(default_factory=dict)
    probe_result: dict[str, Any] | None = None
    """Filled by :func:`prepare`: examples, C, held-out accuracy, seconds."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def preset_lrs(config: ModelConfig) -> tuple[float, float]:
    """(fine-tuning, pre-training) peak learning rates of a randomly initialised preset."""
    return (2e-4, 3e-4) if config.norm == "post" and config.n_embd > 128 else (1e-3, 1e-3)


def data_max_len(tokenizer: Any, texts: Sequence[str], pairs: Sequence[str | None] | None, block_size: int,
                 *, sample: int = 5000, seed: int = 0) -> int:
    """The 99th percentile of the token lengths (specials included) of up to ``sample`` texts, rounded
    up to a multiple of 8, between :data:`MIN_MAX_LEN` and ``block_size``."""
    n = len(texts)
    idx = np.random.default_rng(seed).permutation(n)[:sample] if n > sample else np.arange(n)
    rows = [texts[i] for i in idx]
    second = [pairs[i] for i in idx] if pairs is not None and any(p for p in pairs) else None
    enc = tokenizer.encode_batch(rows, second, max_length=block_size, padding=None)
    lengths = [len(r) for r in enc.ids] or [MIN_MAX_LEN]
    p = int(math.ceil(np.percentile(lengths, MAX_LEN_PERCENTILE) / 8.0) * 8)
    return int(min(block_size, max(MIN_MAX_LEN, p)))


def plan(task: str, config: ModelConfig, *, pretrained: bool, n_train: int, max_len: int,
         has_trained_head: bool = False, pooling: str | None = None, pooling_from: str = "") -> Recipe:
    """The recipe for fine-tuning a model of ``config`` on ``task`` (``max_len`` from :func:`data_max_len`)."""
    steps_per_epoch = max(1, math.ceil(n_train / BATCH_SIZE))
    reasons = {"max_len": f"{MAX_LEN_PERCENTILE}th percentile of the training texts' token lengths",
               "group_by_length": "batches of similar length: less padding",
               "schedule": f"linear, {WARMUP_RATIO:.0%} warm-up, decay planned to end with the time budget",
               "eval_every": f"each epoch or every {EVAL_EVERY_MAX} steps, keeping the best dev weights"}
    classify = task == "classify"
    if pretrained:
        probe = classify and not has_trained_head
        reasons["lr"] = (f"{PRETRAINED_LR:g} for a pre-trained body, head {HEAD_LR_FACTOR:g}x "
                         "(a fresh head learns faster than the body should move)")
        reasons["freeze_embeddings"] = "the word-embedding table stays as pre-trained (faster steps, measured better)"
        if classify:
            reasons["pooling"] = f"{pooling} pooling ({pooling_from}), L2-normalised"
            reasons["probe"] = ("head starts as a logistic regression on the frozen sentence vectors" if probe else
                                "the source's own head for these labels")
        return Recipe("pretrained", PRETRAINED_LR, PRETRAINED_LR * HEAD_LR_FACTOR, WARMUP_RATIO, BATCH_SIZE, max_len,
                      True, True, pooling if classify else None, probe, min(steps_per_epoch, EVAL_EVERY_MAX),
                      PATIENCE, reasons)
    lr = preset_lrs(config)[0]
    reasons["lr"] = (f"{lr:g}: a randomly initialised {config.norm}-LN preset "
                     + ("(post-LN wider than 128 diverges at 1e-3)" if lr < 1e-3 else "needs a large step"))
    return Recipe("preset", lr, None, WARMUP_RATIO, BATCH_SIZE, max_len, True, False, None, False,
                  min(steps_per_epoch, EVAL_EVERY_MAX), PATIENCE, reasons)


def source_pooling(spec: str, config: ModelConfig) -> tuple[str, str]:
    """(pooling, where it came from) of a pre-trained source: its sentence-transformers files, its own
    config, or the family's default (mean for BERT, the last token for GPT)."""
    from gptbert.baselines.embed import FAMILY_POOLING
    from gptbert.io.sentence_transformers import read_pooling

    spec_files = read_pooling(spec)
    if spec_files is not None:
        return spec_files.pooling, spec_files.source
    if config.pooling != "default":
        return config.pooling, "the source's config"
    return FAMILY_POOLING.get(config.family, "mean"), f"the {config.family} default"


def source_labels(spec: str) -> list[str] | None:
    """The label names a source run carries (None: none)."""
    from gptbert.io.checkpoint import read_labels

    try:
        return read_labels(spec)
    except (OSError, ValueError):
        return None


def train_args(recipe: Recipe, args: Any, explicit: Collection[str] = ()) -> Any:
    """``args`` (TrainArgs) with the recipe's training-loop settings, except the fields in ``explicit``."""
    planned = {"lr": recipe.lr, "head_lr": recipe.head_lr, "warmup_ratio": recipe.warmup_ratio,
               "batch_size": recipe.batch_size, "group_by_length": recipe.group_by_length, "schedule": "linear",
               "eval_every": recipe.eval_every, "patience": recipe.patience, "keep_best": True}
    return dataclasses.replace(args, **{k: v for k, v in planned.items() if k not in explicit})


# --------------------------------------------------------------------------- the model side


def _stratified(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Up to ``n`` indices with every label present, in proportion to its frequency (seeded)."""
    rng = np.random.default_rng(seed)
    if n >= len(labels):
        return rng.permutation(len(labels))
    picked: list[np.ndarray] = []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        k = max(1, int(round(n * len(idx) / len(labels))))
        picked.append(rng.permutation(idx)[:k])
    return rng.permutation(np.concatenate(picked))


def probe_head(model: nn.Module, tokenizer: Any, items: Sequence[Any], num_labels: int, *, max_len: int,
               budget_s: float, seed: int = 0, precision: str = "fp32") -> dict[str, Any]:
    """Set ``model``'s classify head to a logistic regression fitted on its own pooled sentence vectors.

    ``items``: (text, pair, label id) training examples. Embeds a stratified sample, as many as fit
    in ``budget_s`` (measured on a first chunk; at most :data:`PROBE_MAX_EXAMPLES`), fits the
    probe with C picked on a held-out slice, and initialises the head. Returns what it did.
    """
    from gptbert.baselines.embed import Encoder
    from gptbert.baselines.logreg import fit_logreg
    from gptbert.models.heads import init_head_from_probe
    from gptbert.run import with_head

    start = time.perf_counter()
    config: ModelConfig = model.config  # type: ignore[assignment]
    body = with_head(model, None, pooling=config.pooling, pool_normalize=config.pool_normalize).eval()
    encoder = Encoder(body, tokenizer, max_len, "fine-tuned model", "the model's pooling", precision=precision)
    labels = np.array([int(it[2]) for it in items])
    order = _stratified(labels, PROBE_MAX_EXAMPLES, seed)
    texts = [items[i][0] for i in order]
    pairs = [items[i][1] for i in order] if any(it[1] for it in items) else None
    first = min(len(order), 256)
    vectors = [encoder.embed(texts[:first], pairs[:first] if pairs else None)]
    rate = first / max(1e-6, time.perf_counter() - start)
    n = int(min(len(order), max(first, rate * budget_s * 0.7)))  # the rest of the share: the regression
    if n > first:
        n_order = _stratified(labels[order], n, seed + 1) if n < len(order) else np.arange(len(order))
        rest = [i for i in n_order.tolist() if i >= first]
        vectors.append(encoder.embed([texts[i] for i in rest], [pairs[i] for i in rest] if pairs else None))
        chosen = np.concatenate([np.arange(first), np.array(rest, dtype=np.int64)])
    else:
        chosen = np.arange(first)
    X = np.concatenate(vectors)
    y = labels[order][chosen]
    embed_s = time.perf_counter() - start
    present = np.unique(y)
    if len(present) < 2:
        return {"skipped": f"the {len(y)} examples embedded in the budget hold one label", "seconds": embed_s}
    remap = {int(lab): i for i, lab in enumerate(present)}
    fitted = fit_logreg(X, np.array([remap[int(v)] for v in y]), len(present), budget_s=max(1.0, budget_s - embed_s),
                        seed=seed)
    coef = np.zeros((num_labels, X.shape[1]), dtype=np.float32)
    intercept = np.full(num_labels, MISSING_LABEL_LOGIT, dtype=np.float32)  # labels the probe never saw
    coef[present], intercept[present] = fitted.coef, fitted.intercept
    init_head_from_probe(model, coef, intercept)
    return {"examples": int(len(y)), "labels_seen": int(len(present)), "C": fitted.search.C,
            "heldout_accuracy": fitted.search.heldout_accuracy,
            "embed_s": round(embed_s, 1), "seconds": round(time.perf_counter() - start, 1),
            "precision": encoder.precision}


def prepare(recipe: Recipe, model: nn.Module, tokenizer: Any, items: Sequence[Any], num_labels: int, *,
            budget_s: float | None, seed: int = 0, precision: str = "fp32") -> nn.Module:
    """The model-side parts of the recipe, in place where possible; returns the model to train.

    Sets the classify head's pooling (normalised), fits the linear probe (within
    :data:`PROBE_SHARE` of ``budget_s``; 60 s without a budget) and freezes the word embeddings.
    """
    from gptbert.run import with_head

    config: ModelConfig = model.config  # type: ignore[assignment]
    rebuild: dict[str, Any] = {}
    if recipe.pooling is not None and (config.pooling != recipe.pooling or not config.pool_normalize):
        rebuild.update(pooling=recipe.pooling, pool_normalize=True)
    if recipe.probe and config.classifier_bias is False:  # GPT's head has no bias; the probe's intercept needs one
        rebuild["classifier_bias"] = True
    if rebuild:
        model = with_head(model, config.head, num_labels=num_labels, **rebuild)
    if recipe.probe:
        share = PROBE_SHARE * budget_s if budget_s is not None else 60.0
        recipe.probe_result = probe_head(model, tokenizer, items, num_labels, max_len=recipe.max_len,
                                         budget_s=share, seed=seed, precision=precision)
    if recipe.freeze_embeddings:
        wte = getattr(getattr(model, "embeddings", None), "wte", None)
        if isinstance(wte, nn.Embedding):
            wte.weight.requires_grad_(False)
    return model


def example_lengths(items: Sequence[Any]) -> list[int]:
    """A length per training example for ``group_by_length`` (characters of its texts)."""
    def size(x: Any) -> int:
        if isinstance(x, str):
            return len(x)
        if isinstance(x, dict):
            return sum(size(v) for v in x.values() if isinstance(v, (str, list, tuple)))
        if isinstance(x, (list, tuple)):
            return sum(size(v) for v in x if isinstance(v, (str, list, tuple)))
        return 0

    return [size(it) for it in items]

"""``embed-lr:SOURCE``: a frozen encoder's sentence embeddings + logistic regression, saved as a classify run.

    from gptbert.baselines.embed import EmbedLR
    model = EmbedLR.fit(minilm_dir, train_texts, train_labels, budget_s=120)
    probs = model.predict_proba(dev_texts)           # (N, L), columns in model.labels order
    model.save("runs/banking77-minilm-lr")           # gptbert predict / evaluate / serve / api.LM use it

SOURCE is any gptbert or Hugging Face BERT / GPT checkpoint or run directory. Its token vectors
are pooled as the checkpoint was trained: a sentence-transformers directory says how in its own
files (:func:`gptbert.io.sentence_transformers.read_pooling`: mean for all-MiniLM-L6-v2);
otherwise the family's default, :data:`FAMILY_POOLING` -- BERT: mean of the last hidden states
over real tokens; GPT: the last real token. Measured on banking77 (train -> dev, one pass of
all-MiniLM-L6-v2's encoder pooled three ways, L2-normalised, LR): mean 0.937, the raw [CLS]
vector 0.921, the pooler on [CLS] (a BERT classify head's 'default') 0.905 with C picked on the
held-out slice; the best dev accuracy over C = 3 ... 1000 was 0.937 / 0.921 / 0.911. Vectors
are L2-normalised, then a multinomial logistic regression is fitted with C picked on a
held-out slice of train within the budget (:mod:`gptbert.baselines.logreg`; its tolerance
stays at scikit-learn's 1e-4: at 1e-3 mean pooling lost 0.7 points, [CLS] 1.6).

Embedding is done once per text, fast: texts sorted by token length and batched with their
neighbours (dynamic padding), under ``torch.inference_mode``, in bf16 only where a quick probe
on a real batch measures it faster (:func:`choose_precision`; on AVX2-only CPUs bf16 is
emulated and several times slower -- MiniLM, 8 banking77 queries: fp32 0.12 s, bf16 0.57 s --
so fp32 is picked there).

The fitted model *is* a gptbert classify model: the source's backbone with ``pooling`` set
(``ModelConfig.pooling``), ``pool_normalize=True`` and the classifier weights = the LR's
softmax weights (:func:`gptbert.models.heads.init_head_from_probe`). :meth:`EmbedLR.save`
writes an ordinary run directory through :func:`gptbert.run.save_run`; its predictions equal
the LR's probabilities on the same embeddings.
"""

from __future__ import annotations

import inspect
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from gptbert.baselines.logreg import C_GRID, CSearch, check_inputs, fit_logreg, label_ids
from gptbert.io.layout import TRAIN_ARGS_FILE
from gptbert.io.sentence_transformers import read_pooling
from gptbert.precision import autocast
from gptbert.tokenizer import Tokenizer

KIND = "embed-lr"
FAMILY_POOLING = {"bert": "mean", "gpt": "last", "elmo": "mean"}
"""Pooling of a checkpoint without sentence-transformers files (see the module docstring)."""
BF16_MARGIN = 0.8
"""bf16 is picked only when a probe batch takes under this fraction of its fp32 time."""
PROBE_ROWS = 8
"""Rows of the precision probe batch (a typical-length batch): bf16 emulation makes it cost ~0.5 s on AVX2."""


@dataclass
class Encoder:
    """A frozen model whose ``pool`` gives normalised sentence vectors, with what embedding needs."""

    model: nn.Module
    tokenizer: Tokenizer
    max_len: int
    source: str
    pooling_from: str
    """Where the pooling came from: a sentence-transformers file, 'source config' or 'family default'."""
    batch_size: int = 64
    precision: str = "auto"
    """'fp32', 'bf16' or 'auto' (probed on the first batch to embed, then fixed)."""
    probe_seconds: dict[str, float] | None = None
    """The precision probe's timings of one batch, when it ran."""

    @classmethod
    def load(cls, source: str | os.PathLike[str], *, max_len: int | None = None, batch_size: int = 64,
             precision: str = "auto", device: str | torch.device = "cpu") -> "Encoder":
        """The source checkpoint or run, pooled as it was trained, L2-normalised, in eval mode."""
        from gptbert.run import load_run, with_head

        run = load_run(source, device=device)
        if run.tokenizer is None:
            raise ValueError(f"{source}: no tokenizer files; {KIND} needs the checkpoint's tokenizer")
        config = run.config
        spec = read_pooling(source)
        if spec is not None:
            pooling, pooling_from = spec.pooling, spec.source
        elif config.pooling != "default":
            pooling, pooling_from = config.pooling, "source config"
        else:
            pooling, pooling_from = FAMILY_POOLING[config.family], "family default"
        model = with_head(run.model, None, pooling=pooling, pool_normalize=True).to(device).eval()
        model.requires_grad_(False)
        longest = spec.max_len if spec is not None and spec.max_len else min(config.block_size, 512)
        return cls(model, run.tokenizer, min(max_len or longest, config.block_size), str(source), pooling_from,
                   batch_size, precision)

    @property
    def width(self) -> int:
        config = self.model.config  # type: ignore[union-attr]
        return config.n_embd * (2 if config.family == "elmo" else 1)

    @torch.inference_mode()
    def embed(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> np.ndarray:
        """Sentence vectors (N, C), float32, unit length, in the order of ``texts``."""
        from gptbert.tasks.classify import make_collator

        check_inputs(texts, pairs)
        self.model.eval()
        collate = make_collator(self.tokenizer, self.model.config, self.max_len)  # type: ignore[arg-type]
        order = length_order(self.tokenizer, texts, pairs, self.max_len)
        batches = [order[s:s + self.batch_size] for s in range(0, len(order), self.batch_size)]

        def run(rows: np.ndarray, precision: str) -> np.ndarray:
            batch = collate([(texts[i], pairs[i] if pairs is not None else None, None) for i in rows])
            return self._pooled(batch, precision)

        if self.precision == "auto" and batches:
            probe = batches[len(batches) // 2][:PROBE_ROWS]
            self.precision, self.probe_seconds = choose_precision(lambda p: run(probe, p))
        out = np.zeros((len(texts), self.width), dtype=np.float32)
        for rows in batches:
            out[rows] = run(rows, self.precision)
        return out

    def _pooled(self, batch: dict[str, torch.Tensor], precision: str) -> np.ndarray:
        model = self.model
        device = next(model.parameters()).device
        accepted = set(inspect.signature(model.encode).parameters)  # type: ignore[union-attr]
        inputs = {k: v.to(device) for k, v in batch.items() if k in accepted and k != "idx"}
        with autocast(precision, device):
            hidden = model.encode(batch["idx"].to(device), **inputs).float()  # type: ignore[union-attr]  # (B, T, C)
        return model.pool(hidden, inputs.get("attention_mask")).cpu().numpy()  # type: ignore[union-attr]  # (B, C)


def length_order(tokenizer: Tokenizer, texts: Sequence[str], pairs: Sequence[str] | None, max_len: int) -> np.ndarray:
    """Indices of texts (and pairs) by token length, shortest first (stable)."""
    ids = tokenizer.encode_batch(list(texts), list(pairs) if pairs is not None else None, max_length=max_len,
                                 padding=None).ids
    return np.argsort(np.array([len(r) for r in ids], dtype=np.int64), kind="stable")


def choose_precision(run_batch: Callable[[str], Any]) -> tuple[str, dict[str, float]]:
    """('bf16' or 'fp32', seconds per precision): one warm-up and one timed call of each on a real batch."""
    seconds: dict[str, float] = {}
    for precision in ("fp32", "bf16"):
        run_batch(precision)
        t = time.perf_counter()
        run_batch(precision)
        seconds[precision] = time.perf_counter() - t
    return ("bf16" if seconds["bf16"] < BF16_MARGIN * seconds["fp32"] else "fp32"), seconds


class EmbedLR:
    """A classify model = frozen encoder + pooled, normalised vectors + a logistic-regression head."""

    def __init__(self, encoder: Encoder, labels: Sequence[str], *, search: CSearch | None = None,
                 seconds: dict[str, float] | None = None) -> None:
        config = encoder.model.config  # type: ignore[union-attr]
        if config.head != "classify" or not config.pool_normalize or config.num_labels != len(labels):
            raise ValueError(f"{encoder.source}: an {KIND} model is a 'classify' model with pool_normalize and "
                             f"one output per label (head {config.head!r}, pool_normalize {config.pool_normalize}, "
                             f"{config.num_labels} outputs for {len(labels)} labels)")
        self.encoder = encoder
        self.labels = list(labels)
        self.search = search
        self.seconds = dict(seconds or {})
        self.estimator: Any = None
        """scikit-learn's fitted ``LogisticRegression`` after :meth:`fit` (None after :meth:`load`)."""

    @property
    def model(self) -> nn.Module:
        return self.encoder.model

    # -- fitting ------------------------------------------------------------------------------
    @classmethod
    def fit(
        cls, source_dir: str | os.PathLike[str], texts: Sequence[str], labels: Sequence[Any], *,
        pairs: Sequence[str] | None = None, budget_s: float | None = None, seed: int = 0, max_len: int | None = None,
        batch_size: int = 64, precision: str = "auto", grid: tuple[float, ...] = C_GRID,
        device: str | torch.device = "cpu",
    ) -> "EmbedLR":
        """Embed ``texts`` with the source and fit the head; ``budget_s`` covers all of it (at least one C)."""
        check_inputs(texts, pairs, labels)
        start = time.perf_counter()
        encoder = Encoder.load(source_dir, max_len=max_len, batch_size=batch_size, precision=precision, device=device)
        load_s = time.perf_counter() - start
        embeddings = encoder.embed(texts, pairs)  # (N, C)
        seconds = {"load": load_s, "embed": time.perf_counter() - start - load_s}
        remaining = None if budget_s is None else max(0.0, budget_s - (time.perf_counter() - start))
        model = cls.from_embeddings(encoder, embeddings, labels, budget_s=remaining, seed=seed, grid=grid)
        model.seconds = {**seconds, **model.seconds, "fit": time.perf_counter() - start}
        return model

    @classmethod
    def from_embeddings(
        cls, encoder: Encoder, embeddings: np.ndarray, labels: Sequence[Any], *, budget_s: float | None = None,
        seed: int = 0, grid: tuple[float, ...] = C_GRID,
    ) -> "EmbedLR":
        """The head fitted on embeddings the encoder already made (e.g. train and dev embedded at once)."""
        from gptbert.models.heads import init_head_from_probe
        from gptbert.run import with_head

        names, y = label_ids(labels)
        probe = fit_logreg(embeddings, y, len(names), grid=grid, budget_s=budget_s, seed=seed)
        device = next(encoder.model.parameters()).device
        head = with_head(encoder.model, "classify", num_labels=len(names), classifier_bias=True).to(device).eval()
        head.requires_grad_(False)
        init_head_from_probe(head, probe.coef, probe.intercept)
        model = cls(replace(encoder, model=head), names, search=probe.search,
                    seconds={"logreg": probe.search.total_seconds})
        model.estimator = probe.estimator
        return model

    # -- inference ----------------------------------------------------------------------------
    def embed(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> np.ndarray:
        """The model's sentence vectors (N, C) (what the head sees)."""
        return self.encoder.embed(texts, pairs)

    @torch.inference_mode()
    def proba_from_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        """Probabilities (N, L) from sentence vectors (N, C): the classify head, in eval mode (no dropout)."""
        task = self.model.task  # type: ignore[union-attr]
        task.eval()
        device = next(task.parameters()).device
        logits = task.out(torch.from_numpy(np.ascontiguousarray(embeddings, dtype=np.float32)).to(device))  # (N, L)
        return torch.softmax(logits.float(), dim=-1).cpu().numpy()

    def predict_proba(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> np.ndarray:
        """Probabilities (N, L), columns in :attr:`labels` order."""
        return self.proba_from_embeddings(self.embed(texts, pairs))

    # -- saving -------------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        """What ``train_args.json`` of the run records."""
        e, config = self.encoder, self.model.config  # type: ignore[union-attr]
        return {"baseline": KIND, "source": e.source, "pooling": config.pooling, "pooling_from": e.pooling_from,
                "pool_normalize": config.pool_normalize, "max_len": e.max_len, "batch_size": e.batch_size,
                "precision": e.precision, "precision_probe_seconds": e.probe_seconds,
                "search": self.search.to_dict() if self.search else None, "seconds": self.seconds}

    def save(self, directory: str | os.PathLike[str], *, task: Any = None) -> Path:
        """Write an ordinary classify run directory (``task``: a :class:`gptbert.run.TaskInfo`,
        default task 'classify' with the encoder's max_len)."""
        from gptbert.run import TaskInfo, save_run

        task = task if task is not None else TaskInfo(task="classify", max_len=self.encoder.max_len)
        metrics: dict[str, Any] = {"baseline": KIND}
        if self.search is not None:
            metrics.update(C=self.search.C, heldout_accuracy=self.search.heldout_accuracy.get(str(self.search.C)),
                           heldout_size=self.search.heldout_size)
        return save_run(directory, self.model, self.encoder.tokenizer, task, labels=self.labels, metrics=metrics,
                        args=self.settings())

    @classmethod
    def load(cls, directory: str | os.PathLike[str], *, batch_size: int = 64, precision: str = "auto",
             device: str | torch.device = "cpu") -> "EmbedLR":
        """A run directory written by :meth:`save` (or any classify run with ``pool_normalize``)."""
        from gptbert.run import load_run

        d = Path(directory)
        run = load_run(d, device=device)
        if run.tokenizer is None:
            raise ValueError(f"{d}: no tokenizer files")
        args: dict[str, Any] = {}
        if (d / TRAIN_ARGS_FILE).is_file():
            args = json.loads((d / TRAIN_ARGS_FILE).read_text(encoding="utf-8"))
        run.model.requires_grad_(False)
        encoder = Encoder(run.model.eval(), run.tokenizer, min(run.task.max_len, run.config.block_size),
                          str(args.get("source", d)), str(args.get("pooling_from", "run config")), batch_size, precision)
        labels = run.labels or [str(i) for i in range(run.config.num_labels)]
        search = CSearch.from_dict(args["search"]) if args.get("search") else None
        return cls(encoder, labels, search=search, seconds=args.get("seconds"))

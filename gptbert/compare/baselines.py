"""The baseline candidates: ``tfidf-lr`` and ``embed-lr:SOURCE``, trained and scored like any other.

Both fit on the same training examples as the transformer candidates, pick their regularisation
(C) on a held-out slice of train inside the candidate's budget, and are scored on the same dev
(and test) examples with the same bootstrap intervals. Each is saved as a run directory:
``tfidf-lr`` as JSON + safetensors (:mod:`gptbert.baselines.tfidf`, no pickle), ``embed-lr`` as an
ordinary classify run whose head is the logistic regression (:mod:`gptbert.baselines.embed`), so
``predict``, ``evaluate``, ``serve`` and ``recommend`` use them as they use any run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gptbert.compare.candidates import EMBED_LR, TFIDF_LR, CandidateSpec
from gptbert.compare.progress import _cpu_clock, _release_memory
from gptbert.compare.settings import _BOOTSTRAP_RESAMPLES
from gptbert.results import CandidateResult, Quality, TrainStats

if TYPE_CHECKING:
    from gptbert.compare.train import _Context

__all__ = ["train_baseline"]


def _columns(examples: list[tuple[str, str | None, int]]) -> tuple[list[str], list[str] | None, list[int]]:
    texts = [ex[0] for ex in examples]
    pairs = [ex[1] or "" for ex in examples] if any(ex[1] for ex in examples) else None
    return texts, pairs, [int(ex[2]) for ex in examples]


def _predicted(model: Any, examples: list[tuple[str, str | None, int]],
               labels: list[str]) -> tuple[list[int], list[int], np.ndarray]:
    """(gold ids, predicted ids, probabilities (N, L)), all in the comparison's label order."""
    texts, pairs, gold = _columns(examples)
    proba = np.asarray(model.predict_proba(texts, pairs))  # (N, L') in the model's label order
    index = {name: i for i, name in enumerate(labels)}
    ours = np.zeros((len(texts), len(labels)))  # labels the model never saw get probability 0
    for j, name in enumerate(model.labels):
        if name in index:
            ours[:, index[name]] = proba[:, j]
    pred = [index.get(model.labels[j], -1) for j in proba.argmax(axis=1)]
    return gold, pred, ours


def _score(ctx: _Context, model: Any, res: CandidateResult) -> None:
    from gptbert.metrics import bootstrap_ci

    s, data = ctx.s, ctx.data
    gold, pred, proba = _predicted(model, data.dev_examples, data.labels)
    point, lo, hi = bootstrap_ci("accuracy", gold, pred, n_resamples=_BOOTSTRAP_RESAMPLES, seed=s.seed)
    f1, f1_lo, f1_hi = bootstrap_ci("macro_f1", gold, pred, n_resamples=_BOOTSTRAP_RESAMPLES, seed=s.seed)
    quality = Quality(metric="accuracy", dev=point, dev_ci=(lo, hi))
    res.extra.update(dev_macro_f1=f1, dev_macro_f1_ci=[f1_lo, f1_hi])
    if data.test_examples is not None:
        t_gold, t_pred, _ = _predicted(model, data.test_examples, data.labels)
        t_point, t_lo, t_hi = bootstrap_ci("accuracy", t_gold, t_pred, n_resamples=_BOOTSTRAP_RESAMPLES, seed=s.seed)
        quality.test, quality.test_ci = t_point, (t_lo, t_hi)
        res.extra["test_macro_f1"] = bootstrap_ci("macro_f1", t_gold, t_pred, n_resamples=1, seed=s.seed)[0]
    from gptbert.compare.calibration import calibrate

    res.extra.update(calibrate(proba, gold, res.extra.get("run_dir")))
    res.extra["dev_note"] = "dev was not used for fitting (C is picked on a held-out slice of train)"
    res.quality = quality


def _files_mb(directory: Path) -> float:
    return sum(p.stat().st_size for p in directory.iterdir() if p.is_file()) / 2**20


def _fit_tfidf(ctx: _Context, cand_dir: Path, res: CandidateResult) -> Any:
    from gptbert.baselines.tfidf import TfidfLR

    data = ctx.data
    assert data.train_examples is not None
    texts, pairs, ids = _columns(data.train_examples)
    model = TfidfLR.fit(texts, [data.labels[i] for i in ids], pairs=pairs, budget_s=ctx.plan.finetune_s,
                        seed=ctx.s.seed)
    model.save(cand_dir)
    n_weights = int(model.coef.size + model.intercept.size)
    n_idf = int(sum(v.size for v in model.features.idf.values()))
    res.n_params = n_weights + n_idf
    res.n_params_non_embedding = n_weights
    res.size_mb = {"fp32": 4 * (n_weights + n_idf) / 2**20}
    res.extra["architecture"] = (f"TF-IDF {' + '.join(f'{b.analyzer} {b.ngram_range[0]}-{b.ngram_range[1]}-grams' for b in model.features.blocks)}"
                                 f" ({model.features.num_features:,} features), logistic regression")
    res.extra["init"] = f"scikit-learn TF-IDF + logistic regression (C={model.search.C:g} on a held-out slice)" \
        if model.search else "scikit-learn TF-IDF + logistic regression"
    res.extra["tokenizer"] = "none (word and character n-grams)"
    return model


def _fit_embed(ctx: _Context, spec: CandidateSpec, cand_dir: Path, res: CandidateResult) -> Any:
    from gptbert.baselines.embed import EmbedLR
    from gptbert.measure import size_on_disk
    from gptbert.models import count_parameters

    data = ctx.data
    assert data.train_examples is not None and spec.encoder is not None
    texts, pairs, ids = _columns(data.train_examples)
    model = EmbedLR.fit(spec.encoder, texts, [data.labels[i] for i in ids], pairs=pairs,
                        budget_s=ctx.plan.finetune_s, seed=ctx.s.seed, precision="auto")
    model.save(cand_dir)
    net = model.model
    res.n_params = count_parameters(net)
    res.n_params_non_embedding = count_parameters(net, non_embedding=True)
    res.size_mb = {k: float(v) for k, v in size_on_disk(net).items()}
    cfg = net.config  # type: ignore[union-attr]
    settings = model.settings()
    res.extra["architecture"] = (f"frozen {cfg.n_layer} layers, width {cfg.n_embd}, {settings['pooling']} pooling "
                                 f"({settings['pooling_from']}), L2-normalised, logistic regression head")
    res.extra["init"] = f"frozen encoder {spec.encoder}"
    res.extra["tokenizer"] = "the encoder's own"
    res.extra["embed_precision"] = settings["precision"]
    return model


def train_baseline(ctx: _Context, spec: CandidateSpec, res: CandidateResult) -> Path:
    """Fit ``tfidf-lr`` or ``embed-lr`` on train, score dev (and test); the run directory it wrote."""
    from gptbert.measure import PeakRSS

    if ctx.data.train_examples is None:
        raise ValueError(f"{spec.name}: the baselines classify only")
    cand_dir = ctx.out / "candidates" / spec.dir_name
    cand_dir.mkdir(parents=True, exist_ok=True)
    res.extra["run_dir"] = str(cand_dir)
    res.extra["baseline"] = spec.kind
    what = {TFIDF_LR: "TF-IDF + logistic regression", EMBED_LR: f"frozen {spec.encoder} + logistic regression"}
    ctx.log.start("fit", f"{what[spec.kind]}, budget {ctx.plan.finetune_s:g}s")
    _release_memory()
    with PeakRSS(interval_s=0.02) as rss, _cpu_clock() as clock:
        model = _fit_tfidf(ctx, cand_dir, res) if spec.kind == TFIDF_LR else _fit_embed(ctx, spec, cand_dir, res)
    search = model.search
    res.peak_rss_mb["train"] = rss.peak_mb
    res.finetune = TrainStats(wall_s=clock["wall_s"], steps=0, best_metric=(
        search.heldout_accuracy.get(str(search.C)) if search else None), stop_reason="completed")
    res.extra["cpu_s"] = {"fit": round(clock["cpu_s"], 1)}
    res.extra["recipe"] = {"baseline": spec.kind, "C": search.C if search else None,
                           "C_search": search.to_dict() if search else None, "seconds": model.seconds}
    res.extra["saved_size_mb"] = {"fp32": _files_mb(cand_dir)}
    ctx.log.start("evaluate")
    _score(ctx, model, res)
    del model
    _release_memory()
    return cand_dir

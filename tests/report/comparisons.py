"""Synthetic comparisons for the report tests (made-up but realistic numbers, no models):

* :func:`realistic` - 8 candidates as ``gptbert compare`` writes them: baselines, a fine-tuned
  checkpoint with a long path name, presets with overrides (long names), one that failed, test
  scores, the ``extra`` details, and learning-curve and reliability data;
* :func:`crowded` - up to 15 candidates whose points nearly coincide (several exactly), with
  latencies spanning four decades: the stress test of label placement.
"""

from __future__ import annotations

import random
from typing import Any

from gptbert.results import CandidateResult, Comparison, LatencyStats, Quality, TrainStats


def _lat(p50: float, p95: float, n: int = 50) -> LatencyStats:
    return LatencyStats(p50_ms=p50, p95_ms=p95, mean_ms=(p50 + p95) / 2, n=n)


def _bins(over: float, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for k in range(15):
        lo, hi = k / 15, (k + 1) / 15
        conf = (lo + hi) / 2
        out.append({"lower": lo, "upper": hi, "confidence": conf, "count": rng.randint(0, 60) if k > 6 else 0,
                    "accuracy": max(0.0, min(1.0, conf - over * conf + rng.uniform(-0.03, 0.03)))})
    return out


def _extra(family: str, arch: str, acc: float, *, preset: bool = True, overrides: str | None = None,
           lc: list[tuple[int, float]] | None = None, over: float | None = None) -> dict[str, Any]:
    kind = "bpe" if family == "gpt" else "wordpiece"
    extra: dict[str, Any] = {
        "run_dir": f"runs/compare-20250101/candidates/{arch.split(',')[0].replace(' ', '-')}",
        "tokenizer": (f"{kind}, 8000 entries, trained on the training texts, shared by the presets (tokenizers/{kind})"
                      if preset else "the checkpoint's own"),
        "init": ("random (preset)" + (f", overrides {overrides}" if overrides else "")) if preset
        else "pre-trained checkpoint /work/models/all-MiniLM-L6-v2",
        "recipe": {"lr": 1e-3 if preset else 1e-4, "batch_size": 32, "max_len": 128, "max_epochs": 3,
                   "eval_every": 200, "patience": 3, "pretrain_lr": 1e-3 if preset else None},
        "cpu_s": {"pretrain": 590.2, "finetune": 118.4} if preset else {"finetune": 240.9},
        "dev_macro_f1": acc - 0.012, "dev_macro_f1_ci": [acc - 0.04, acc + 0.015], "dev_mcc": 2 * acc - 1.05,
        "test_macro_f1": acc - 0.02,
        "dev_note": "dev also picked the kept checkpoint (early stopping); test scores are unbiased",
        "saved_size_mb": {"fp32": 43.1, "bf16": 21.7},
        "architecture": arch,
        "inference": {"measured_in": "a fresh process", "scope": "model forward on pre-built batches (no tokenization)",
                      "methods": {"fp32": "fp32 weights as trained", "bf16": "weights cast to bf16 (a copy)",
                                  "int8": "dynamic int8 Linear layers (gptbert.compress.quantize)"}},
        "dev_accuracy_by_precision": {"fp32": acc, "bf16": acc - 0.002, "int8": acc - 0.009},
        "candidate_wall_s": 842.7,
        "some_new_measurement": {"value": 24110.5, "unit_note": "a key the report does not know"},
    }
    if lc:
        extra["learning_curve"] = [{"train_size": n * 2, "per_class": n, "quality": q, "ci": [q - 0.05, q + 0.04],
                                    "train_s": n * 0.9} for n, q in lc]
    if over is not None:
        extra["reliability"] = {"raw": _bins(over, 1), "calibrated": _bins(over / 5, 2)}
    return extra


def _candidate(name: str, family: str, source: str, acc: float, lat: dict[str, tuple[float, float]],
               size_fp32: float, rss: float, params: int, extra: dict[str, Any], *, decode: float | None = None,
               pretrain: bool = True, train_rss: float | None = None) -> CandidateResult:
    half = 0.021
    sizes = {"fp32": size_fp32, "bf16": size_fp32 / 2, "int8": size_fp32 / 3.8}
    return CandidateResult(
        name=name, family=family, source=source, task="classify",
        quality=Quality("accuracy", dev=acc, dev_ci=(acc - half, acc + half * 0.9), test=acc - 0.011,
                        test_ci=(acc - 0.011 - half, acc - 0.011 + half)),
        n_params=params, n_params_non_embedding=params // 3, size_mb=sizes,
        pretrain=TrainStats(wall_s=601.3, tokens=4_100_000, tokens_per_s=6822.4, steps=1200, final_loss=4.12,
                            stop_reason="time_budget") if pretrain else None,
        finetune=TrainStats(wall_s=121.7, tokens=980_000, tokens_per_s=8052.2, steps=640, final_loss=0.318,
                            best_metric=acc, stop_reason="early_stopping"),
        latency={k: _lat(*v) for k, v in lat.items()},
        throughput={k: 32_000 / (v[0] * 6) for k, v in lat.items()},
        peak_rss_mb={"train": train_rss or 2.3 * rss, "inference": rss},
        decode_tokens_per_s=decode,
        curves=([{"step": s, "loss": 7.5 / (1 + s / 150) + 1.5, "phase": "pretrain"} for s in range(0, 1201, 60)]
                if pretrain else [])
        + [{"step": s, "loss": 0.69 / (1 + s / 120), "phase": "finetune"} for s in range(0, 641, 32)]
        + [{"step": s, "metric": acc - 0.25 / (1 + s / 60), "phase": "finetune"} for s in range(0, 641, 160)],
        latency_samples={k: [v[0] * (1 + 0.5 * ((i * 37) % 50) / 50 * (v[1] / v[0] - 1)) for i in range(50)]
                         for k, v in lat.items()},
        extra=extra,
    )


def realistic() -> Comparison:
    """Eight candidates: two baselines, a fine-tuned checkpoint, presets with and without overrides, one failure."""
    lc = {"tfidf-lr": [(8, 0.58), (32, 0.66), (128, 0.74), (3000, 0.81)],
          "minilm": [(8, 0.52), (32, 0.63), (128, 0.80), (3000, 0.90)],
          "bert-mini": [(8, 0.50), (32, 0.55), (128, 0.66), (3000, 0.84)]}
    cands = [
        _candidate("tfidf-lr", "other", "tfidf-lr", 0.807, {"fp32": (0.09, 0.14)}, 5.2, 180.0, 1_300_000,
                   {"init": "TF-IDF word 1-2 + char 2-5 grams, logistic regression (C=10)",
                    "learning_curve": [{"train_size": n * 2, "per_class": n, "quality": q, "ci": [q - 0.05, q + 0.04]}
                                       for n, q in lc["tfidf-lr"]]}, pretrain=False, train_rss=410.0),
        _candidate("embed-lr", "other", "embed-lr", 0.842, {"fp32": (3.9, 5.2)}, 86.6, 520.0, 22_700_000,
                   {"init": "frozen all-MiniLM-L6-v2, mean-pooled, logistic regression head"}, pretrain=False),
        _candidate("all-MiniLM-L6-v2-finetuned-sst2-seed1", "bert", "/work/models/all-MiniLM-L6-v2-finetuned-sst2-seed1",
                   0.903, {"fp32": (4.1, 5.9), "bf16": (6.0, 7.7), "int8": (2.8, 3.6)}, 86.6, 560.0, 22_700_000,
                   _extra("bert", "6 layers, width 384, 12 heads", 0.903, preset=False, lc=lc["minilm"], over=0.12),
                   pretrain=False, train_rss=24_110.5),
        _candidate("bert-mini", "bert", "bert-mini", 0.846, {"fp32": (1.9, 2.6), "bf16": (2.9, 3.8), "int8": (1.4, 1.9)},
                   42.5, 310.0, 11_200_000, _extra("bert", "4 layers, width 256, 4 heads", 0.846, lc=lc["bert-mini"],
                                                   over=0.2)),
        _candidate("gpt-mini", "gpt", "gpt-mini", 0.851, {"fp32": (2.4, 3.3), "int8": (1.8, 2.3)}, 102.0, 480.0,
                   26_700_000, _extra("gpt", "4 layers, width 256, 4 heads", 0.851), decode=412.0),
        _candidate("elmo-small(use_char_cnn=False,n_embd=128,intermediate_size=128)", "elmo", "elmo-small", 0.812,
                   {"fp32": (3.3, 4.4), "int8": (2.9, 3.7)}, 24.3, 290.0, 6_300_000,
                   _extra("elmo", "2 layers, width 128, LSTM cell 128, word embeddings", 0.812,
                          overrides="{'use_char_cnn': False, 'n_embd': 128, 'intermediate_size': 128}")),
        _candidate("bert-tiny(n_layer=1,n_head=2,dropout=0.05)", "bert", "bert-tiny", 0.781,
                   {"fp32": (0.42, 0.61), "int8": (0.33, 0.47)}, 8.4, 205.0, 2_200_000,
                   _extra("bert", "1 layers, width 128, 2 heads", 0.781,
                          overrides="{'n_layer': 1, 'n_head': 2, 'dropout': 0.05}")),
        CandidateResult(name="gpt2-medium", family="gpt", source="gpt2-medium", task="classify", status="failed",
                        error="fine-tune: RuntimeError: out of memory while allocating 1.2 GB"),
    ]
    return Comparison(
        task="classify", candidates=cands, data={"train": "data/sst2/train.tsv", "dev": "data/sst2/dev.tsv",
                                                 "test": "data/sst2/test.tsv"},
        budget="15m per candidate: pre-training 10m (presets) + fine-tuning 5m", precisions=["fp32", "bf16", "int8"],
        dataset_profile={"train": {"n_examples": 6920, "n_labels": 2, "label_counts": {"negative": 3310, "positive": 3610},
                                   "length": {"unit": "words", "p50": 17.0, "p95": 38.0, "max": 52}},
                         "dev": {"n_examples": 872, "n_labels": 2, "label_counts": {"negative": 428, "positive": 444},
                                 "length": {"unit": "words", "p50": 18.0, "p95": 40.0, "max": 55}},
                         "baselines": {"majority_label": "positive", "majority_dev_accuracy": 0.509}},
        hardware={"cpu_model": "AMD EPYC 7B13", "logical_cores": 16, "usable_cores": 16, "ram_total_mb": 128_512.0,
                  "gpu": None, "cpu_flags": {"avx2": True, "avx512f": False, "amx_bf16": False}},
        id="20250101-120000-abcdef", created_at="2025-01-01T12:00:00+00:00",
    )


def crowded(n: int = 15, seed: int = 0) -> Comparison:
    """``n`` candidates, many on nearly the same point (four exactly), latencies from 0.05 to 400 ms."""
    rng = random.Random(seed)
    cands = []
    for i in range(n):
        if i < 4:  # four identical points
            acc, p95 = 0.861, 3.1
        elif i < 9:  # a tight cluster next to them
            acc, p95 = 0.861 + rng.uniform(-0.004, 0.004), 3.1 * rng.uniform(0.93, 1.07)
        else:  # spread over four decades
            acc, p95 = rng.uniform(0.70, 0.92), 0.05 * 10 ** (4 * (i - 9) / max(1, n - 10))
        family = ("bert", "gpt", "elmo", "other")[i % 4]
        source = {"bert": "bert-mini", "gpt": "gpt-mini", "elmo": "elmo-small", "other": "tfidf-lr"}[family]
        name = f"{source}(n_layer={i % 6 + 1},n_embd={64 * (i % 3 + 1)},dropout=0.{i})" if i % 5 else f"{source}-{i}"
        c = _candidate(name, family, source, acc, {"fp32": (p95 * 0.8, p95), "int8": (p95 * 0.7, p95 * 0.9)},
                       4.0 * (1 + i) ** 1.6, 200.0 + 30 * i, 1_000_000 * (i + 1), {}, decode=300.0 if family == "gpt" else None)
        cands.append(c)
    return Comparison(task="classify", candidates=cands, data={"train": "train.tsv", "dev": "dev.tsv"},
                      precisions=["fp32", "int8"], id="20250102-000000-crowd1", created_at="2025-01-02T00:00:00+00:00",
                      dataset_profile={"baselines": {"majority_dev_accuracy": 0.52}})

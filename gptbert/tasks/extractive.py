"""Extractive summarization with an encoder (BERT; ELMo and GPT work too): pick sentences.

Two scorers, both returning the top-k sentences in document order:

* **centroid** (no training; any backbone): every sentence is embedded (mean of the last
  hidden states, L2-normalised); a sentence's score is its cosine similarity to the
  document centroid (the mean of its sentence embeddings) -- the most "central"
  sentences summarise the document.
* **fine-tuned scorer** (``finetune --task generate`` on a BERT model): a 'classify'
  head on ``[CLS] sentence [SEP] document [SEP]`` learns whether a sentence belongs to
  the summary. Training labels are oracle labels: the ``k`` sentences with the highest
  unigram F1 against the reference summary (ties to the earlier sentence) are positive.
  The score of a sentence is its positive-class probability.

Sentences come from :func:`gptbert.data.objectives.split_sentences`.
"""

from __future__ import annotations

import inspect
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from gptbert.data.objectives import split_sentences
from gptbert.precision import autocast
from gptbert.tasks.common import model_device
from gptbert.tokenizer import Tokenizer

POOLINGS = ("mean", "cls", "last")


# ---------------------------------------------------------------------------------------
# Sentence embeddings
# ---------------------------------------------------------------------------------------


@torch.inference_mode()
def sentence_embeddings(
    model: nn.Module, tokenizer: Tokenizer, texts: Sequence[str], *, pooling: str = "mean", normalize: bool = True,
    max_len: int | None = None, batch_size: int = 32, precision: str = "fp32",
) -> np.ndarray:
    """Embeddings (N, C) of texts from the backbone's last hidden states.

    ``pooling``: 'mean' over real tokens, 'cls' = the first token (BERT's [CLS]), 'last' =
    the last real token (GPT's summary position).
    """
    from gptbert.models.heads import last_token_pool, mean_pool
    from gptbert.tasks.classify import make_collator

    if pooling not in POOLINGS:
        raise ValueError(f"pooling: expected one of {', '.join(POOLINGS)}, got {pooling!r}")
    if isinstance(texts, str):
        raise TypeError("expected a list of texts, got a single str")
    config = model.config  # type: ignore[union-attr]
    max_len = min(max_len or min(config.block_size, 512), config.block_size)
    collate = make_collator(tokenizer, config, max_len)
    accepted = set(inspect.signature(model.encode).parameters)  # type: ignore[union-attr]
    device = model_device(model)
    was_training = model.training
    model.eval()
    out = []
    try:
        for s in range(0, len(texts), batch_size):
            batch = collate([(t, None, None) for t in texts[s:s + batch_size]])
            kwargs = {k: v.to(device) for k, v in batch.items() if k in accepted and k != "idx"}
            with autocast(precision, device):
                # (B, T, C)
                hidden = model.encode(batch["idx"].to(device), **kwargs).float()  # type: ignore[union-attr]
            mask = batch["attention_mask"].to(device)
            if pooling == "mean":
                vec = mean_pool(hidden, mask)  # (B, C)
            elif pooling == "cls":
                vec = hidden[:, 0]
            else:
                vec = last_token_pool(hidden, mask)
            if normalize:
                vec = torch.nn.functional.normalize(vec, dim=-1)
            out.append(vec.cpu().numpy())
    finally:
        model.train(was_training)
    width = config.n_embd * (2 if config.family == "elmo" else 1)
    return np.concatenate(out) if out else np.zeros((0, width), dtype=np.float32)


# ---------------------------------------------------------------------------------------
# Oracle labels for the fine-tuned scorer
# ---------------------------------------------------------------------------------------


def _unigrams(text: str) -> Counter:
    return Counter(re.findall(r"\w+", text.lower()))


def unigram_f1(a: str, b: str) -> float:
    """F1 of the word-unigram bags of two texts (lower-cased)."""
    x, y = _unigrams(a), _unigrams(b)
    same = sum((x & y).values())
    if not same:
        return 0.0
    p, r = same / sum(x.values()), same / sum(y.values())
    return 2 * p * r / (p + r)


def oracle_labels(sentences: Sequence[str], summary: str, k: int = 1) -> list[int]:
    """1 for the ``k`` sentences most similar (unigram F1) to the summary, 0 elsewhere."""
    f1 = [unigram_f1(s, summary) for s in sentences]
    order = sorted(range(len(sentences)), key=lambda i: (-f1[i], i))[:k]
    chosen = {i for i in order if f1[i] > 0}
    return [int(i in chosen) for i in range(len(sentences))]


def sentences_of(document: str) -> list[str]:
    return split_sentences(document) or ([" ".join(document.split())] if document.strip() else [])


def summary_length(pairs: Sequence[tuple[str, str]]) -> int:
    """Sentences to pick: the median number of sentences of the reference summaries (>= 1)."""
    counts = [len(sentences_of(t)) for _, t in pairs] or [1]
    return max(1, int(np.median(counts)))


def scorer_examples(pairs: Sequence[tuple[str, str]], k: int) -> list[tuple[str, str, int]]:
    """(sentence, document, oracle label) for every sentence of every document."""
    out = []
    for doc, summary in pairs:
        sents = sentences_of(doc)
        for s, y in zip(sents, oracle_labels(sents, summary, k)):
            out.append((s, doc, y))
    return out


# ---------------------------------------------------------------------------------------
# Summaries
# ---------------------------------------------------------------------------------------


def is_scorer(model: nn.Module) -> bool:
    config = model.config  # type: ignore[union-attr]
    return config.head == "classify" and config.num_labels == 2


def sentence_scores(model: nn.Module, tokenizer: Tokenizer, document: str, sentences: Sequence[str], *,
                    method: str = "auto", max_len: int | None = None, precision: str = "fp32") -> np.ndarray:
    """A score per sentence (higher = more summary-worthy). (S,)"""
    if method == "auto":
        method = "scorer" if is_scorer(model) else "centroid"
    if not sentences:
        return np.zeros(0, dtype=np.float32)
    if method == "scorer":
        from gptbert.tasks.classify import predict_proba

        if not is_scorer(model):
            raise ValueError("method='scorer' needs a model fine-tuned as a sentence scorer (2-label classify head)")
        config = model.config  # type: ignore[union-attr]
        probs = predict_proba(model, tokenizer, [(s, document, None) for s in sentences],
                              max_len=min(max_len or config.block_size, config.block_size), precision=precision)
        return probs[:, 1]
    if method != "centroid":
        raise ValueError(f"method: expected 'auto', 'scorer' or 'centroid', got {method!r}")
    emb = sentence_embeddings(model, tokenizer, sentences, max_len=max_len, precision=precision)  # (S, C)
    centroid = emb.mean(axis=0)
    centroid = centroid / max(float(np.linalg.norm(centroid)), 1e-9)
    return emb @ centroid  # (S,)


def summarize(
    model: nn.Module, tokenizer: Tokenizer, documents: Sequence[str], *, k: int = 3, method: str = "auto",
    max_len: int | None = None, precision: str = "fp32",
) -> list[dict[str, Any]]:
    """The top-``k`` sentences of each document, in document order:
    ``{"summary", "sentences": [index, ...], "scores": [score per sentence]}``."""
    if isinstance(documents, str):
        raise TypeError("summarize() expects a list of documents, got a single str")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    out = []
    for doc in documents:
        sents = sentences_of(doc)
        sc = sentence_scores(model, tokenizer, doc, sents, method=method, max_len=max_len, precision=precision)
        top = sorted(sorted(range(len(sents)), key=lambda i: (-float(sc[i]), i))[:k])
        out.append({"summary": " ".join(sents[i] for i in top), "sentences": top,
                    "scores": [float(x) for x in sc]})
    return out


def evaluate(model: nn.Module, tokenizer: Tokenizer, pairs: Sequence[tuple[str, str]], *, k: int = 1,
             method: str = "auto", max_len: int | None = None, precision: str = "fp32") -> dict[str, Any]:
    """ROUGE / BLEU / chrF of the extractive summaries against the reference targets."""
    from gptbert.metrics import generation_scores

    if not pairs:
        raise ValueError("no examples to evaluate")
    summaries = summarize(model, tokenizer, [d for d, _ in pairs], k=k, method=method, max_len=max_len,
                          precision=precision)
    preds = [s["summary"] for s in summaries]
    out: dict[str, Any] = dict(generation_scores(preds, [t for _, t in pairs]))
    out["n"] = len(pairs)
    out["method"] = method if method != "auto" else ("scorer" if is_scorer(model) else "centroid")
    out["k"] = k
    out["predictions"] = [{"source": d, "target": t, "prediction": p} for (d, t), p in zip(pairs, preds)]
    return out

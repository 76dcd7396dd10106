"""Pre-training data and evaluation for each family.

BERT: masked LM (80/10/10) + next-sentence prediction on sentence pairs packed to
``max_len`` (Devlin et al. 2019). GPT: causal LM on fixed blocks cut from a memory-mapped
token cache, so the corpus never has to fit in memory. ELMo: forward and backward LM
on sentences. The data code builds the targets; the models stay objective-free.

:class:`PretrainTask` is the task of a pre-training run (or a bare checkpoint with an LM
head): language-model metrics on a text file (:mod:`gptbert.tasks.lm_eval`), BERT fills
the mask token (:func:`fill_mask`), GPT continues the prompt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from gptbert.config import ModelConfig
from gptbert.data.objectives import (
    BertPretrainCollator,
    ElmoLMCollator,
    PackedBlocks,
    create_nsp_examples,
    split_sentences,
    tokenize_documents,
)
from gptbert.data.readers import read_corpus
from gptbert.precision import autocast
from gptbert.tasks.base import Task, TaskOptions
from gptbert.tasks.common import (
    ListDataset,
    batched_outputs,
    generation_options,
    model_device,
    nothing_to_predict,
    run_max_len,
    run_tokenizer,
    text_of,
)
from gptbert.tokenizer import Tokenizer
from gptbert.io.files import check_text_file

OBJECTIVES = {"bert": "mlm+nsp", "gpt": "causal-lm", "elmo": "bidirectional-lm", "hybrid": "causal+masked-next-token"}
"""Each family's pre-training objective."""


@dataclass
class PretrainOptions(TaskOptions):
    """What a pre-training run learned from."""

    objective: str | None = None
    """'mlm+nsp' (BERT), 'causal-lm' (GPT), 'bidirectional-lm' (ELMo) or 'causal+masked-next-token' (hybrid)."""
    corpus: list[str] = field(default_factory=list)
    """The text files."""
    causal_fraction: float | None = None
    """Hybrid: the fraction of causal batches (the rest are masked next-token batches)."""


@dataclass
class PretrainData:
    train: Any
    dev: Any
    collate_fn: Callable[[list[Any]], dict[str, torch.Tensor]]
    eval_fn: Callable[[nn.Module], dict[str, float]]
    objective: str
    n_train_tokens: int
    causal_fraction: float | None = None
    """The hybrid's share of causal batches."""


def corpus_mode(paths: Sequence[str | Path]) -> str:
    """'blank' when a corpus separates documents with blank lines, else 'line' (one per line)."""
    for p in paths:
        blank = 0
        check_text_file(p)
        with open(p, encoding="utf-8", errors="replace") as f:
            for _, line in zip(range(2000), f):
                blank += not line.strip()
        if blank > 5:
            return "blank"
    return "line"


def _split(items: list[Any], dev_fraction: float, seed: int) -> tuple[list[Any], list[Any]]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(items))
    n_dev = max(1, int(len(items) * dev_fraction))
    dev_idx = set(order[:n_dev].tolist())
    return [x for i, x in enumerate(items) if i not in dev_idx], [x for i, x in enumerate(items) if i in dev_idx]


class TokenWindow:
    """A lazy view [start, end) of a 1-D token stream (memmap slices stay on disk)."""

    def __init__(self, tokens: Any, start: int, end: int) -> None:
        self.tokens, self.start, self.end = tokens, start, end

    def __len__(self) -> int:
        return self.end - self.start

    def __getitem__(self, s: slice) -> np.ndarray:
        a, b, _ = s.indices(len(self))
        return np.asarray(self.tokens[self.start + a : self.start + b])


def _stack(examples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([e[k] for e in examples]) for k in examples[0]}


def _fixed_batches(collate_fn: Callable, examples: Sequence[Any], batch_size: int) -> list[dict[str, torch.Tensor]]:
    """Dev batches built once, so every evaluation sees the same masks and pairs."""
    return [collate_fn(list(examples[i : i + batch_size])) for i in range(0, len(examples), batch_size)]


@torch.no_grad()
def _run_dev(model: nn.Module, batches: list[dict[str, torch.Tensor]], precision: str,
             step: Callable[[Any, dict[str, torch.Tensor], dict[str, float]], None]) -> dict[str, float]:
    device = model_device(model)
    totals: dict[str, float] = {}
    for batch in batches:
        batch = {k: v.to(device) for k, v in batch.items()}
        with autocast(precision, device):
            logits, loss = model(**batch)
        totals["loss_sum"] = totals.get("loss_sum", 0.0) + float(loss) * batch["idx"].size(0)
        totals["n"] = totals.get("n", 0.0) + batch["idx"].size(0)
        step(logits, batch, totals)
    return totals


def split_single_segments(docs: list[list[list[int]]], seed: int, min_tokens: int = 8) -> list[list[list[int]]]:
    """Cut one-sentence documents into two contiguous segments.

    BERT's "sentences" are contiguous spans of text (Devlin et al. 2019, section 3), so a
    one-sentence document (most lines of a snippet corpus) still gives a true next segment.
    """
    rng = np.random.default_rng(seed)
    out = []
    for doc in docs:
        if len(doc) == 1 and len(doc[0]) >= min_tokens:
            ids = doc[0]
            cut = int(rng.integers(len(ids) // 3, 2 * len(ids) // 3 + 1))
            doc = [ids[:cut], ids[cut:]]
        out.append(doc)
    return out


def bert_data(tokenizer: Tokenizer, files: Sequence[str], *, max_len: int, seed: int = 0,
              dev_fraction: float = 0.05, mode: str | None = None, precision: str = "fp32",
              max_dev: int = 512) -> PretrainData:
    docs = [split_sentences(d) or [d] for d in read_corpus(files, mode or corpus_mode(files))]  # type: ignore[arg-type]
    token_docs = split_single_segments(tokenize_documents(docs, tokenizer), seed)
    train_docs, dev_docs = _split(token_docs, dev_fraction, seed)
    train = create_nsp_examples(train_docs, max_len, rng=seed)
    dev = create_nsp_examples(dev_docs, max_len, rng=seed + 1)[:max_dev]
    if not train or not dev:
        raise ValueError(f"{', '.join(map(str, files))}: too little text for next-sentence pairs")
    collate = BertPretrainCollator(tokenizer, max_len, seed=seed)
    dev_batches = _fixed_batches(BertPretrainCollator(tokenizer, max_len, seed=seed + 1), dev, 64)

    def evaluate(model: nn.Module) -> dict[str, float]:
        def step(logits: Any, batch: dict[str, torch.Tensor], t: dict[str, float]) -> None:
            mlm_logits, nsp_logits = logits
            chosen = batch["targets"] != -100
            t["mlm_hit"] = t.get("mlm_hit", 0.0) + float((mlm_logits.argmax(-1)[chosen] == batch["targets"][chosen]).sum())
            t["mlm_n"] = t.get("mlm_n", 0.0) + float(chosen.sum())
            t["nsp_hit"] = t.get("nsp_hit", 0.0) + float((nsp_logits.argmax(-1) == batch["next_sentence_label"]).sum())

        t = _run_dev(model, dev_batches, precision, step)
        return {"loss": t["loss_sum"] / t["n"], "mlm_accuracy": t["mlm_hit"] / max(t["mlm_n"], 1),
                "nsp_accuracy": t["nsp_hit"] / t["n"]}

    n_tokens = sum(len(ex.a_ids) + len(ex.b_ids) + 3 for ex in train)
    return PretrainData(ListDataset(train), ListDataset(dev), collate, evaluate, "mlm+nsp", n_tokens)


def gpt_data(tokenizer: Tokenizer, files: Sequence[str], *, max_len: int, seed: int = 0,
             dev_fraction: float = 0.05, mode: str | None = None, precision: str = "fp32",
             cache_root: str | Path | None = None, max_dev_blocks: int = 128) -> PretrainData:
    from gptbert.data.cache import TokenCache, build_token_cache

    cache = TokenCache(build_token_cache(files, tokenizer, mode=mode or corpus_mode(files), root=cache_root))  # type: ignore[arg-type]
    n = len(cache)
    n_dev = max(max_len + 2, int(n * dev_fraction))
    if n - n_dev < max_len + 2:
        raise ValueError(f"{', '.join(map(str, files))}: {n} tokens is too little for blocks of {max_len}")
    train_stream, dev_stream = TokenWindow(cache, 0, n - n_dev), TokenWindow(cache, n - n_dev, n)
    train = PackedBlocks(train_stream, max_len, mode="random", seed=seed)
    dev = PackedBlocks(dev_stream, max_len, mode="sequential")
    dev_items = [dev[i] for i in range(min(len(dev), max_dev_blocks))]
    dev_batches = _fixed_batches(_stack, dev_items, 32)

    def evaluate(model: nn.Module) -> dict[str, float]:
        t = _run_dev(model, dev_batches, precision, lambda *a: None)
        loss = t["loss_sum"] / t["n"]
        return {"loss": loss, "perplexity": float(np.exp(min(loss, 50.0)))}

    return PretrainData(train, dev, _stack, evaluate, "causal-lm", len(train_stream))


def elmo_data(tokenizer: Tokenizer, files: Sequence[str], config: ModelConfig, *, max_len: int, seed: int = 0,
              dev_fraction: float = 0.05, mode: str | None = None, precision: str = "fp32",
              max_dev: int = 512) -> PretrainData:
    sentences = [s for d in read_corpus(files, mode or corpus_mode(files)) for s in (split_sentences(d) or [d])]  # type: ignore[arg-type]
    train, dev = _split(sentences, dev_fraction, seed)
    dev = dev[:max_dev]
    collate = ElmoLMCollator(tokenizer, max_len, max_word_chars=config.max_word_chars)
    dev_batches = _fixed_batches(collate, dev, 64)

    def evaluate(model: nn.Module) -> dict[str, float]:
        def step(logits: Any, batch: dict[str, torch.Tensor], t: dict[str, float]) -> None:
            losses = model.lm_losses(logits, batch["targets"])  # type: ignore[operator]
            b = batch["idx"].size(0)
            t["fwd"] = t.get("fwd", 0.0) + float(losses["fwd"]) * b
            t["bwd"] = t.get("bwd", 0.0) + float(losses["bwd"]) * b

        t = _run_dev(model, dev_batches, precision, step)
        fwd, bwd = t["fwd"] / t["n"], t["bwd"] / t["n"]
        return {"loss": t["loss_sum"] / t["n"], "fwd_perplexity": float(np.exp(min(fwd, 50.0))),
                "bwd_perplexity": float(np.exp(min(bwd, 50.0)))}

    n_tokens = sum(len(s.split()) for s in train)
    return PretrainData(ListDataset(train), ListDataset(dev), collate, evaluate, "bidirectional-lm", n_tokens)


def hybrid_data(tokenizer: Tokenizer, files: Sequence[str], *, max_len: int, seed: int = 0,
                dev_fraction: float = 0.05, mode: str | None = None, precision: str = "fp32",
                causal_fraction: float | None = None, max_dev: int = 512) -> PretrainData:
    """GPT-BERT's mixed objective (:class:`HybridLMCollator`) on the documents of ``files``, each cut
    into pieces of ``max_len - 2`` tokens (the collator adds the start and end tokens).

    Dev: the same pieces as fixed causal and masked batches; ``loss`` is the mixed loss
    ``p * causal + (1 - p) * masked``, with ``perplexity`` (causal) and ``mlm_accuracy`` (the
    masked next-token predictions) beside it.
    """
    from gptbert.data.objectives import PAPER_CAUSAL_FRACTION, HybridLMCollator

    p = PAPER_CAUSAL_FRACTION if causal_fraction is None else float(causal_fraction)
    texts = read_corpus(files, mode or corpus_mode(files))  # type: ignore[arg-type]
    docs = tokenizer.encode_batch(texts, add_special_tokens=False, truncation=None, padding=None).ids if texts else []
    step = max(1, max_len - 2)
    pieces = [d[s:s + step] for d in docs for s in range(0, len(d), step) if d[s:s + step]]
    train, dev = _split(pieces, dev_fraction, seed) if len(pieces) > 1 else ([], [])
    if not train or not dev:
        raise ValueError(f"{', '.join(map(str, files))}: too little text for a train / dev split")
    dev = dev[:max_dev]
    collate = HybridLMCollator(tokenizer, max_len, causal_fraction=p, seed=seed)
    causal_batches = _fixed_batches(HybridLMCollator(tokenizer, max_len, causal_fraction=1.0), dev, 64)
    masked_batches = _fixed_batches(HybridLMCollator(tokenizer, max_len, causal_fraction=0.0, seed=seed + 1),
                                    dev, 64)

    def evaluate(model: nn.Module) -> dict[str, float]:
        causal, _, _ = _hybrid_dev(model, causal_batches, precision)
        masked, hits, n = _hybrid_dev(model, masked_batches, precision)
        return {"loss": p * causal + (1 - p) * masked, "causal_loss": causal,
                "perplexity": float(np.exp(min(causal, 50.0))), "masked_loss": masked,
                "mlm_accuracy": hits / max(n, 1)}

    n_tokens = sum(len(x) + 2 for x in train)
    return PretrainData(ListDataset(train), ListDataset(dev), collate, evaluate, OBJECTIVES["hybrid"], n_tokens, p)


@torch.no_grad()
def _hybrid_dev(model: nn.Module, batches: list[dict[str, Any]], precision: str) -> tuple[float, int, int]:
    """(mean loss per predicted token, correct predictions, predictions) over hybrid batches of one mode."""
    device = model_device(model)
    was_training = model.training
    model.eval()
    nll, hits, n = 0.0, 0, 0
    try:
        for batch in batches:
            idx, tgt = batch["idx"].to(device), batch["targets"].to(device)  # (B, T), (B, T)
            with autocast(precision, device):
                logits, _ = model(idx, mode=batch["mode"], attention_mask=batch["attention_mask"].to(device))
            chosen = tgt != -100
            picked = logits.float()[chosen]  # (N, V)
            nll += float(torch.nn.functional.cross_entropy(picked, tgt[chosen], reduction="sum"))
            hits += int((picked.argmax(-1) == tgt[chosen]).sum())
            n += int(chosen.sum())
    finally:
        model.train(was_training)
    return nll / max(n, 1), hits, n


def pretrain_data(config: ModelConfig, tokenizer: Tokenizer, files: Sequence[str], *, max_len: int,
                  seed: int = 0, precision: str = "fp32", mode: str | None = None,
                  cache_root: str | Path | None = None, causal_fraction: float | None = None) -> PretrainData:
    """The objective of ``config.family`` on ``files`` (``causal_fraction``: the hybrid's mix)."""
    missing = [str(f) for f in files if not Path(f).is_file()]
    if missing:
        raise FileNotFoundError(f"pre-training corpus not found: {', '.join(missing)}")
    if config.family == "bert":
        return bert_data(tokenizer, files, max_len=max_len, seed=seed, precision=precision, mode=mode)
    if config.family == "gpt":
        return gpt_data(tokenizer, files, max_len=max_len, seed=seed, precision=precision, mode=mode,
                        cache_root=cache_root)
    if config.family == "hybrid":
        return hybrid_data(tokenizer, files, max_len=max_len, seed=seed, precision=precision, mode=mode,
                           causal_fraction=causal_fraction)
    if causal_fraction is not None:
        raise ValueError(f"causal_fraction is the hybrid's mix; a {config.family} model has one objective")
    if config.family != "elmo":
        raise ValueError(f"pre-training: no objective for family {config.family!r}")
    return elmo_data(tokenizer, files, config, max_len=max_len, seed=seed, precision=precision, mode=mode)


# ---------------------------------------------------------------------------------------
# Using a pre-trained model
# ---------------------------------------------------------------------------------------


def fill_mask(model: nn.Module, tokenizer: Tokenizer, text: str, *, max_len: int, top_k: int = 5,
              precision: str = "fp32") -> list[dict[str, Any]]:
    """Top-k fillers of the (first) mask token with probabilities and the filled text (an MLM head)."""
    from gptbert.tasks.classify import make_collator

    tok = tokenizer
    mask_token = tok.id_to_token(tok.mask_id) if tok.mask_id is not None else None
    if mask_token is None or mask_token not in text:
        raise ValueError(f"fill_mask: the text must contain the mask token {mask_token or '[MASK]'!r}")
    collate = make_collator(tok, model.config, max_len)  # type: ignore[arg-type]
    if model.config.family == "hybrid":  # type: ignore[union-attr]
        batch = collate([(text, None, None)])
        device = model_device(model)
        with torch.inference_mode(), autocast(precision, device):
            mlm_logits = model.fill_mask_logits(batch["idx"].to(device),  # type: ignore[operator]
                                                attention_mask=batch["attention_mask"].to(device)).float().cpu()
    else:
        batch, logits = next(batched_outputs(model, collate, [(text, None, None)], precision=precision))
        mlm_logits = logits[0] if isinstance(logits, tuple) else logits  # (1, T, V)
    pos = int((batch["idx"][0] == tok.mask_id).nonzero()[0])
    probs = torch.softmax(mlm_logits[0, pos], dim=-1)  # (V,)
    special = torch.tensor(sorted(tok.special_ids), dtype=torch.long)
    probs[special] = 0.0
    scores, ids = probs.topk(top_k)
    results = []
    for score, i in zip(scores.tolist(), ids.tolist()):
        text_piece = tok.decode([i]).strip()
        piece = tok.id_to_token(i) or text_piece
        # "token" is the vocabulary entry (a WordPiece continuation keeps its "##")
        token = piece if piece.startswith("##") else text_piece
        results.append({"token": token, "token_id": i, "score": score,
                        "sequence": text.replace(mask_token, text_piece, 1)})
    return results


def pretrain_head(family: str) -> str:
    """The head a ``family`` model pre-trains with."""
    return {"bert": "pretrain", "gpt": "lm", "elmo": "lm", "hybrid": "lm"}[family]


class PretrainTask(Task):
    """Pre-training (``gptbert pretrain``, not a fine-tuning task): each family's LM objective."""

    name = "pretrain"
    options_type = PretrainOptions
    metric = "loss"
    metric_name = "perplexity"
    heads = ("pretrain", "mlm", "lm")
    finetunable = False

    def head(self, family: str) -> str:
        return pretrain_head(family)

    def capabilities(self, config: ModelConfig, *, tuned: bool) -> set[str]:
        caps = {"fill_mask"} if config.head in ("pretrain", "mlm") else set()
        if config.family in ("gpt", "hybrid") and config.head == "lm":
            caps.add("generate")
        if config.family == "hybrid" and config.head == "lm":  # masked mode fills the mask
            caps.add("fill_mask")
        return caps

    def evaluate_file(self, run: Any, path: Path, **opts: Any) -> dict[str, Any]:
        """Language-model metrics on a text file (``opts``: ``max_chars``, ``batch_size``, ``precision``, ``seed``)."""
        from gptbert.tasks.lm_eval import evaluate_lm

        head = run.config.head
        if head not in ("pretrain", "mlm", "lm"):
            raise ValueError(f"{run.path}: language-model evaluation on {path} needs an LM head "
                             f"(BERT pretrain/mlm, GPT/ELMo lm); this model has {head!r}")
        picked = {k: opts[k] for k in ("max_chars", "batch_size", "precision", "seed") if opts.get(k) is not None}
        return evaluate_lm(run.model, run_tokenizer(run), path, max_len=run_max_len(run), **picked)

    def predict(self, run: Any, inputs: list[Any], **opts: Any) -> list[dict[str, Any]]:
        """BERT fills the mask token (top ``top_k``), GPT continues the prompt; a hybrid does
        both: inputs with the mask token are filled (masked mode), the others continued (causal)."""
        head, tok, family = run.config.head, run_tokenizer(run), run.config.family
        texts = [text_of(x, "text", "prompt") for x in inputs]
        mask = tok.id_to_token(tok.mask_id) if tok.mask_id is not None else None
        if head in ("pretrain", "mlm"):
            to_fill = list(range(len(texts)))
        elif family == "hybrid" and head == "lm" and mask is not None:
            to_fill = [i for i, t in enumerate(texts) if mask in t]
        else:
            to_fill = []
        if len(to_fill) < len(texts) and not (family in ("gpt", "hybrid") and head == "lm"):
            raise nothing_to_predict(run)
        out: list[dict[str, Any]] = [{} for _ in texts]
        top_k = int(opts.get("top_k") or 5)
        for i in to_fill:
            out[i] = {"text": texts[i], "fills": fill_mask(run.model, tok, texts[i], max_len=run_max_len(run),
                                                          top_k=top_k, precision=opts.get("precision", "fp32"))}
        rest = [i for i in range(len(texts)) if i not in set(to_fill)]
        if rest:
            from gptbert.generate import generate_text

            outs = generate_text(run.model, tok, [texts[i] for i in rest],
                                 max_new_tokens=int(opts.get("max_new_tokens") or 50), **generation_options(opts))
            for i, o in zip(rest, outs):
                out[i] = {"prompt": texts[i], "output": o}
        return out

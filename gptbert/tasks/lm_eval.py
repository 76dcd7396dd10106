"""Language-model metrics of a model on a text file: perplexity and bits per character (GPT),
masked-LM accuracy (BERT), per-direction perplexity (ELMo), both of these for a GPT-BERT hybrid. What ``gptbert evaluate`` reports
for a pre-training run or any ``.txt`` file."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from gptbert.precision import autocast
from gptbert.tasks.common import model_device
from gptbert.tokenizer import Tokenizer
from gptbert.io.files import read_text_file


def _read_text(path: Path, max_chars: int | None) -> str:
    text = read_text_file(path)
    return text[:max_chars] if max_chars else text


@torch.inference_mode()
def evaluate_lm(model: nn.Module, tokenizer: Tokenizer, path: str | Path, *, max_len: int = 128,
                max_chars: int | None = None, batch_size: int = 16, precision: str = "fp32",
                seed: int = 0) -> dict[str, Any]:
    """Held-out language-model metrics on a text file.

    GPT: the text (prefixed with end-of-text) in consecutive blocks of ``max_len``
    predicted tokens; every token is predicted once, with the block so far as context.
    ``loss`` (nats/token), ``perplexity``, ``bits_per_token`` and ``bits_per_character`` =
    total NLL / (characters x ln 2), which compares models with different tokenizers.
    BERT: each line, 15% of its tokens (at least one) replaced by [MASK] with a seeded
    generator; ``mlm_accuracy``, ``mlm_loss`` and ``mlm_perplexity`` over the masked tokens.
    ELMo: forward / backward LM perplexity per line.
    """
    from gptbert.metrics import bits_per_character, bits_per_token, perplexity

    config = model.config  # type: ignore[union-attr]
    text = _read_text(Path(path), max_chars)
    if not text.strip():
        raise ValueError(f"{path}: no text")
    device = model_device(model)
    was_training = model.training
    model.eval()
    try:
        if config.family == "gpt":
            if config.head != "lm":
                raise ValueError(f"perplexity needs a GPT with an 'lm' head, this one has {config.head!r}")
            ids = list(tokenizer.encode(text, add_special_tokens=False).ids)
            start_id = tokenizer.eos_id if tokenizer.eos_id is not None else None
            if start_id is not None:
                ids = [start_id] + ids
            if len(ids) < 2:
                raise ValueError(f"{path}: too little text")
            T = max_len
            windows = [(s, min(s + T, len(ids) - 1)) for s in range(0, len(ids) - 1, T)]
            total, count = 0.0, 0
            for b in range(0, len(windows), batch_size):
                chunk = windows[b:b + batch_size]
                width = max(e - s for s, e in chunk)
                idx = torch.full((len(chunk), width), tokenizer.pad_id, dtype=torch.long)  # (B, T)
                tgt = torch.full((len(chunk), width), -100, dtype=torch.long)  # (B, T)
                for r, (s, e) in enumerate(chunk):
                    idx[r, :e - s] = torch.tensor(ids[s:e])
                    tgt[r, :e - s] = torch.tensor(ids[s + 1:e + 1])
                with autocast(precision, device):
                    logits, _ = model(idx.to(device))  # (B, T, V)
                nll = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)),
                                                        tgt.to(device).reshape(-1), ignore_index=-100,
                                                        reduction="sum")
                total += float(nll)
                count += int((tgt != -100).sum())
            n_chars = len(text)
            return {"loss": total / count, "perplexity": perplexity(total / count),
                    "bits_per_token": bits_per_token(total, count),
                    "bits_per_character": bits_per_character(total, n_chars),
                    "n_tokens": count, "n_chars": n_chars, "objective": "causal-lm"}
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if config.family == "hybrid":
            return _hybrid_scores(model, tokenizer, lines, max_len=max_len, batch_size=batch_size,
                                  precision=precision, seed=seed)
        if config.family == "bert":
            return _mlm_scores(model, tokenizer, lines, max_len=max_len, batch_size=batch_size, precision=precision,
                               seed=seed)
        return _elmo_scores(model, tokenizer, lines, max_len=max_len, batch_size=batch_size, precision=precision)
    finally:
        model.train(was_training)


def _mlm_scores(model: nn.Module, tokenizer: Tokenizer, lines: list[str], *, max_len: int, batch_size: int,
                precision: str, seed: int) -> dict[str, Any]:
    from gptbert.data.objectives import pad_sequences

    config = model.config  # type: ignore[union-attr]
    hybrid = config.family == "hybrid"
    if config.head not in (("lm",) if hybrid else ("pretrain", "mlm")):
        raise ValueError(f"MLM accuracy needs a BERT with an MLM head ('pretrain' or 'mlm') or a hybrid with "
                         f"its 'lm' head, this one has {config.head!r}")
    if tokenizer.mask_id is None:
        raise ValueError("the tokenizer has no [MASK] token")
    rng = np.random.default_rng(seed)
    device = model_device(model)
    hits, n, nll = 0, 0, 0.0
    for b in range(0, len(lines), batch_size):
        encs = [tokenizer.encode(t, max_length=max_len) for t in lines[b:b + batch_size]]
        rows, tgts = [], []
        for enc in encs:
            ids = list(enc.ids)
            cand = [i for i, sp in enumerate(enc.special_tokens_mask) if not sp]
            tgt = [-100] * len(ids)
            if cand:
                k = max(1, int(round(0.15 * len(cand))))
                for i in rng.choice(cand, size=k, replace=False).tolist():
                    tgt[i] = ids[i]
                    ids[i] = tokenizer.mask_id
            rows.append(ids)
            tgts.append(tgt)
        idx = pad_sequences(rows, tokenizer.pad_id)  # (B, T)
        T = idx.shape[1]
        tgt_t = pad_sequences(tgts, -100, length=T).to(device)  # (B, T)
        mask = pad_sequences([[1] * len(r) for r in rows], 0, length=T).to(device)
        kwargs: dict[str, Any] = {"attention_mask": mask}
        if config.type_vocab_size:
            kwargs["token_type_ids"] = torch.zeros_like(mask)
        with autocast(precision, device):
            if hybrid:  # masked next-token: position i's token read from position i - 1
                logits = model.fill_mask_logits(idx.to(device), attention_mask=mask)  # type: ignore[operator]
            else:
                logits, _ = model(idx.to(device), **kwargs)
        mlm = (logits[0] if isinstance(logits, tuple) else logits).float()  # (B, T, V)
        chosen = tgt_t != -100
        hits += int((mlm.argmax(-1)[chosen] == tgt_t[chosen]).sum())
        n += int(chosen.sum())
        nll += float(torch.nn.functional.cross_entropy(mlm[chosen], tgt_t[chosen], reduction="sum"))
    if n == 0:
        raise ValueError("no token could be masked (empty lines?)")
    return {"mlm_accuracy": hits / n, "mlm_loss": nll / n, "mlm_perplexity": math.exp(min(nll / n, 50.0)),
            "n_masked": n, "n": len(lines), "objective": "mlm"}


def _hybrid_scores(model: nn.Module, tokenizer: Tokenizer, lines: list[str], *, max_len: int, batch_size: int,
                   precision: str, seed: int) -> dict[str, Any]:
    """Both heads of a hybrid: causal perplexity of each line (``[CLS] line [SEP]``, every token after
    the start predicted from its past) and masked next-token accuracy (as :func:`_mlm_scores`)."""
    from gptbert.data.objectives import HybridLMCollator
    from gptbert.metrics import bits_per_character, bits_per_token, perplexity

    if model.config.head != "lm":  # type: ignore[union-attr]
        raise ValueError(f"hybrid language-model metrics need the 'lm' head, this model has "
                         f"{model.config.head!r}")  # type: ignore[union-attr]
    collate = HybridLMCollator(tokenizer, max_len, causal_fraction=1.0)
    device = model_device(model)
    total, count = 0.0, 0
    for b in range(0, len(lines), batch_size):
        batch = collate.causal(lines[b:b + batch_size])
        tgt = batch["targets"].to(device)  # type: ignore[union-attr]  # (B, T)
        with autocast(precision, device):
            logits, _ = model(batch["idx"].to(device), mode="causal",  # type: ignore[union-attr]
                              attention_mask=batch["attention_mask"].to(device))  # type: ignore[union-attr]
        total += float(torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)),
                                                         tgt.reshape(-1), ignore_index=-100, reduction="sum"))
        count += int((tgt != -100).sum())
    n_chars = sum(len(ln) for ln in lines)
    out: dict[str, Any] = {"loss": total / count, "perplexity": perplexity(total / count),
                           "bits_per_token": bits_per_token(total, count),
                           "bits_per_character": bits_per_character(total, n_chars),
                           "n_tokens": count, "n_chars": n_chars}
    out.update(_mlm_scores(model, tokenizer, lines, max_len=max_len, batch_size=batch_size, precision=precision,
                           seed=seed))
    out["objective"] = "causal+masked-next-token"
    return out


def _elmo_scores(model: nn.Module, tokenizer: Tokenizer, lines: list[str], *, max_len: int, batch_size: int,
                 precision: str) -> dict[str, Any]:
    from gptbert.data.objectives import ElmoLMCollator

    config = model.config  # type: ignore[union-attr]
    if config.head != "lm":
        raise ValueError(f"ELMo perplexity needs the 'lm' head, this model has {config.head!r}")
    collate = ElmoLMCollator(tokenizer, max_len, max_word_chars=config.max_word_chars)
    device = model_device(model)
    fwd = bwd = 0.0
    count = 0
    for b in range(0, len(lines), batch_size):
        batch = {k: v.to(device) for k, v in collate(lines[b:b + batch_size]).items()}
        with autocast(precision, device):
            logits, _ = model(batch["idx"], attention_mask=batch["attention_mask"], char_ids=batch.get("char_ids"))
        t = batch["targets"]  # (B, T, 2)
        for d, (lg, tg) in enumerate(zip(logits, (t[..., 0], t[..., 1]))):
            s = float(torch.nn.functional.cross_entropy(lg.float().reshape(-1, lg.size(-1)), tg.reshape(-1),
                                                        ignore_index=-100, reduction="sum"))
            if d == 0:
                fwd += s
            else:
                bwd += s
        count += int((t[..., 0] != -100).sum())
    return {"fwd_perplexity": math.exp(min(fwd / count, 50.0)), "bwd_perplexity": math.exp(min(bwd / count, 50.0)),
            "n_tokens": count, "n": len(lines), "objective": "bidirectional-lm"}

"""Beam search over a KV cache (length penalty, early stopping), identical to transformers' on tiny models."""

from __future__ import annotations


import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from gptbert.models.transformer import KVCache
from gptbert.generate.decoding import _left_pad, _model_info, _prepare, _StopStrings
from gptbert.generate.processing import GenerationConfig, apply_repetition_penalty


# ----------------------------------------------------------------------------------------
# Beam search
# ----------------------------------------------------------------------------------------


def _beam_search(
    model: nn.Module, idx: Tensor, mask: Tensor | None, cfg: GenerationConfig, *, stopper: _StopStrings | None = None,
    hypotheses: bool = False,
) -> tuple[Tensor, Tensor]:
    """Beam search with a length penalty; returns (best sequences (B, T + n), new lengths (B,)), or
    with ``hypotheses`` every finished hypothesis, best first: ((B, num_beams, T + n), (B, num_beams))
    (a length of 0 marks a slot no hypothesis filled).

    Each step takes the best K = max(2, 1 + n_eos) * num_beams continuations over all
    beams of a row; those among the first num_beams that end (eos, a stop string or the
    last step) become finished hypotheses scored sum(log p) / length ** length_penalty,
    the best num_beams unfinished ones keep running, and the cache rows are reordered
    to follow them. A row stops once no running beam can beat its finished ones.
    """
    B, T = idx.shape
    nb, max_new, lp = cfg.num_beams, cfg.max_new_tokens, cfg.length_penalty
    dtype, device = next(model.parameters()).dtype, idx.device
    L = T + max_new
    K = max(2, 1 + len(cfg.eos_ids)) * nb
    neg = float("-inf")

    cache = KVCache.for_model(model, B * nb, L - 1, dtype=dtype, device=device)
    flat_idx = idx.repeat_interleave(nb, dim=0)  # (B*nb, T)
    full_mask = step_positions = None
    if mask is not None:
        flat_mask = mask.repeat_interleave(nb, dim=0)
        full_mask = torch.ones(B * nb, L, dtype=torch.bool, device=device)
        full_mask[:, :T] = flat_mask
        positions = (flat_mask.long().cumsum(-1) - 1).clamp_min(0)
        step_positions = positions[:, -1:] + torch.arange(1, max_new + 1, device=device)
        logits, _ = model(flat_idx, attention_mask=flat_mask, position_ids=positions, cache=cache, last_only=True)
    else:
        logits, _ = model(flat_idx, cache=cache, last_only=True)

    pad = cfg.pad_id
    running = torch.full((B, nb, L), pad, dtype=torch.long, device=device)  # (B, nb, L)
    running[:, :, :T] = idx[:, None, :]
    run_scores = torch.zeros(B, nb, device=device)
    run_scores[:, 1:] = neg  # all beams start identical: expand only the first
    done_seq = running.clone()  # finished hypotheses, best first
    done_scores = torch.full((B, nb), neg, device=device)
    done_len = torch.zeros(B, nb, dtype=torch.long, device=device)
    done_flag = torch.zeros(B, nb, dtype=torch.bool, device=device)
    can_improve = torch.ones(B, dtype=torch.bool, device=device)
    eos = torch.tensor(cfg.eos_ids, device=device) if cfg.eos_ids else None
    in_top = torch.arange(K, device=device) < nb  # (K,)
    row_offset = torch.arange(B, device=device)[:, None] * nb  # (B, 1)
    prompt_hist = flat_idx if mask is None else torch.where(flat_mask, flat_idx, flat_idx[:, -1:])  # pads not 'present'

    for step in range(max_new):
        col = T + step
        logp = F.log_softmax(logits[:, -1, :].float(), dim=-1)  # (B*nb, V)
        if cfg.repetition_penalty != 1.0:
            hist = torch.cat((prompt_hist, running[:, :, T:col].reshape(B * nb, step)), dim=1)  # (B*nb, col)
            apply_repetition_penalty(logp, hist, cfg.repetition_penalty)
        V = logp.size(-1)
        total = (logp.view(B, nb, V) + run_scores[:, :, None]).view(B, nb * V)
        top_scores, top_idx = total.topk(K, dim=-1)  # (B, K)
        src = top_idx // V  # (B, K) beam each candidate extends
        tok = top_idx % V
        cand = running.gather(1, src[:, :, None].expand(B, K, L))  # (B, K, L), a new tensor
        cand[:, :, col] = tok
        ends = torch.full((B, K), step + 1 == max_new, dtype=torch.bool, device=device)
        if eos is not None:
            ends |= (tok[:, :, None] == eos).any(-1)
        if stopper is not None:
            for b, k in (~ends).nonzero().tolist():
                if stopper.hit(cand[b, k, T : col + 1].tolist()):
                    ends[b, k] = True

        # Finished hypotheses: only candidates ranked within the first nb count.
        fin_scores = top_scores / float(step + 1) ** lp
        allowed = ends & in_top & can_improve[:, None]
        if cfg.early_stopping is True:
            allowed &= ~done_flag.all(dim=1, keepdim=True)
        fin_scores = fin_scores.masked_fill(~allowed, neg)
        m_scores = torch.cat((done_scores, fin_scores), dim=1)  # (B, nb + K)
        keep = m_scores.topk(nb, dim=-1).indices  # (B, nb)
        done_scores = m_scores.gather(1, keep)
        done_flag = torch.cat((done_flag, allowed), dim=1).gather(1, keep)
        done_len = torch.cat((done_len, torch.full_like(fin_scores, step + 1, dtype=torch.long)), dim=1).gather(1, keep)
        done_seq = torch.cat((done_seq, cand), dim=1).gather(1, keep[:, :, None].expand(B, nb, L))

        # Running beams: the best nb candidates that did not end.
        r_scores = top_scores.masked_fill(ends, neg)
        nxt = r_scores.topk(nb, dim=-1).indices  # (B, nb)
        run_scores = r_scores.gather(1, nxt)
        running = cand.gather(1, nxt[:, :, None].expand(B, nb, L))
        beam_src = src.gather(1, nxt)  # (B, nb)

        # Can a running beam still beat the worst finished hypothesis?
        length = max_new if (cfg.early_stopping == "never" and lp > 0) else step + 1
        best_possible = run_scores[:, 0] / float(length) ** lp
        worst = torch.where(done_flag.all(dim=1), done_scores.min(dim=1).values, torch.full_like(best_possible, neg))
        can_improve &= best_possible > worst
        if step + 1 == max_new or not bool(can_improve.any()) or bool(ends.all()):
            break
        if cfg.early_stopping is True and bool(done_flag.all()):
            break
        cache.reorder((beam_src + row_offset).flatten())
        tokens = running[:, :, col].reshape(B * nb, 1)
        if full_mask is not None:
            logits, _ = model(
                tokens, attention_mask=full_mask[:, : col + 1], position_ids=step_positions[:, step : step + 1],
                cache=cache, last_only=True,
            )
        else:
            logits, _ = model(tokens, cache=cache, last_only=True)

    if hypotheses:
        lengths = done_len.masked_fill(done_scores == neg, 0)  # (B, nb)
        return done_seq[:, :, : T + int(lengths.max())], lengths
    best_len = done_len[:, 0]
    n = int(best_len.max())
    return done_seq[:, 0, : T + n], best_len


def beam_hypotheses(model: nn.Module, prompts: list[list[int]], cfg: GenerationConfig) -> list[list[list[int]]]:
    """The ``cfg.num_beams`` finished hypotheses of each prompt (id lists), best first by
    sum(log p) / length ** length_penalty: the new tokens of each, up to and including its end token."""
    block_size, _, device = _model_info(model)
    idx, attention_mask = _left_pad(prompts, cfg.pad_id)
    ids, mask = _prepare(idx, attention_mask, cfg, block_size, device)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            seqs, lengths = _beam_search(model, ids, mask, cfg, hypotheses=True)  # (B, nb, L), (B, nb)
    finally:
        model.train(was_training)
    T = ids.size(1)
    return [[row[T:T + n] for row, n in zip(rows, lens) if n > 0]
            for rows, lens in zip(seqs.tolist(), lengths.tolist())]

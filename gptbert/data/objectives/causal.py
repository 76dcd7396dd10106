"""Causal language modelling (GPT): packed blocks of a token stream and :class:`CausalLMCollator`."""

from __future__ import annotations

from typing import Any, Iterable, Literal, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from gptbert.data.objectives.common import IGNORE_INDEX, TokenizerLike, eos_or_sep, pad_sequences


def join_documents(documents: Iterable[Sequence[int]], eos_id: int, *, dtype: Any = np.int64) -> np.ndarray:
    """One 1-D token stream: every document followed by the end-of-text token."""
    parts: list[np.ndarray] = []
    eos = np.array([eos_id], dtype=dtype)
    for doc in documents:
        parts.append(np.asarray(doc, dtype=dtype))
        parts.append(eos)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


class PackedBlocks(Dataset):
    """Fixed-length causal-LM blocks read from a 1-D token stream.

    ``tokens`` is anything sliceable with ``len`` holding token ids: a numpy array, an
    ``np.memmap`` or a :class:`gptbert.data.cache.TokenCache` (nothing is loaded up front).
    Item ``i`` reads ``block_size + 1`` tokens and returns ``{"idx": block[:-1],
    "targets": block[1:]}``, both (block_size,) long, so the default collate gives (B, T).

    ``mode="sequential"``: block ``i`` starts at ``i * stride`` (``stride`` defaults to
    ``block_size``; consecutive blocks share one token, so every token but the first is a
    target exactly once). ``mode="random"``: ``num_samples`` blocks (default: as many as
    sequential mode has) at uniformly drawn offsets, fixed by ``seed`` and redrawn by
    :meth:`set_epoch`.
    """

    def __init__(self, tokens: Any, block_size: int, *, mode: Literal["sequential", "random"] = "sequential",
                 stride: int | None = None, num_samples: int | None = None, seed: int = 0) -> None:
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        if mode not in ("sequential", "random"):
            raise ValueError(f"mode: expected 'sequential' or 'random', got {mode!r}")
        n = len(tokens)
        if n < block_size + 1:
            raise ValueError(f"the token stream has {n} tokens; a block needs {block_size + 1}")
        self.tokens = tokens
        self.block_size = int(block_size)
        self.mode = mode
        self.stride = int(stride or block_size)
        self.seed = int(seed)
        self._max_start = n - (block_size + 1)  # inclusive
        self._n_sequential = self._max_start // self.stride + 1
        self.num_samples = int(num_samples) if num_samples is not None else self._n_sequential
        self._offsets: np.ndarray | None = None
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Redraw the random offsets (random mode); a no-op in sequential mode."""
        if self.mode == "random":
            rng = np.random.default_rng([self.seed, int(epoch)])
            self._offsets = rng.integers(0, self._max_start + 1, size=self.num_samples, dtype=np.int64)

    def __len__(self) -> int:
        return self.num_samples if self.mode == "random" else self._n_sequential

    def offset(self, i: int) -> int:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        return int(self._offsets[i]) if self._offsets is not None else i * self.stride

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        start = self.offset(i)
        block = np.asarray(self.tokens[start: start + self.block_size + 1]).astype(np.int64)  # (T+1,)
        block_t = torch.from_numpy(block)  # (T+1,)
        return {"idx": block_t[:-1], "targets": block_t[1:]}  # (T,), (T,)


def pack_blocks(token_stream: Any, block_size: int, *, eos_id: int | None = None,
                mode: Literal["sequential", "random"] = "sequential", stride: int | None = None,
                num_samples: int | None = None, seed: int = 0) -> PackedBlocks:
    """Causal-LM blocks of ``block_size + 1`` tokens (``idx = block[:-1]``, ``targets = block[1:]``).

    ``token_stream`` is either a 1-D token stream (numpy array / memmap / TokenCache, read
    lazily) or a sequence of documents (lists of ids), which are joined with ``eos_id``.
    """
    if isinstance(token_stream, np.ndarray) or hasattr(token_stream, "read"):
        stream = token_stream
        if isinstance(stream, np.ndarray) and stream.ndim != 1:
            raise ValueError(f"token stream must be 1-D, got shape {stream.shape}")
    else:
        docs = list(token_stream)
        if docs and isinstance(docs[0], (int, np.integer)):
            stream = np.asarray(docs, dtype=np.int64)
        else:
            if eos_id is None:
                raise ValueError("pack_blocks: eos_id is needed to join documents")
            stream = join_documents(docs, eos_id)
    return PackedBlocks(stream, block_size, mode=mode, stride=stride, num_samples=num_samples, seed=seed)


class CausalLMCollator:
    """One example per row for causal LM (GPT), padded.

    Each example (text or ids without specials) becomes ``[bos] ids [eos]`` (BOS only with
    ``add_bos`` and when the tokenizer has one), cut to ``max_len + 1`` tokens; then
    ``idx = seq[:-1]`` and ``targets = seq[1:]``, so ``targets[t]`` is the token after
    ``idx[t]``. Padding (``padding_side``) has ``attention_mask`` 0 and target -100.
    A sequence of one token is preceded by the end-of-text token so it still has a target.
    """

    def __init__(self, tokenizer: TokenizerLike, max_len: int, *, add_bos: bool = False, add_eos: bool = True,
                 padding_side: Literal["right", "left"] = "right", pad_to_multiple_of: int | None = None) -> None:
        self.tokenizer = tokenizer
        self.max_len = int(max_len)
        self.add_bos, self.add_eos = add_bos, add_eos
        self.padding_side = padding_side
        self.pad_to_multiple_of = pad_to_multiple_of
        self.eos_id = eos_or_sep(tokenizer)

    def sequence(self, example: str | Sequence[int]) -> list[int]:
        tok = self.tokenizer
        ids = list(tok.encode(example, add_special_tokens=False).ids) if isinstance(example, str) else list(example)
        seq = ([tok.bos_id] if self.add_bos and tok.bos_id is not None else []) + ids
        if self.add_eos:
            seq.append(self.eos_id)
        if len(seq) < 2:
            seq = [self.eos_id] + seq
        return seq[: self.max_len + 1]

    def __call__(self, examples: Sequence[str | Sequence[int]]) -> dict[str, torch.Tensor]:
        seqs = [self.sequence(e) for e in examples]
        kw = dict(padding_side=self.padding_side, pad_to_multiple_of=self.pad_to_multiple_of)
        idx = pad_sequences([s[:-1] for s in seqs], self.tokenizer.pad_id, **kw)  # (B, T)
        T = idx.shape[1]
        targets = pad_sequences([s[1:] for s in seqs], IGNORE_INDEX, length=T, **kw)  # (B, T)
        attention = pad_sequences([[1] * (len(s) - 1) for s in seqs], 0, length=T, **kw)  # (B, T)
        return {"idx": idx, "targets": targets, "attention_mask": attention}

"""Which examples each step sees: the epoch order, its micro-batches and the batch source.

The example order of epoch ``e`` is a permutation drawn from ``seed + e``; every process takes
its strided slice of it. Reading examples and ``collate_fn`` (e.g. MLM masking) run under
generators seeded from (seed, epoch, rank, batch index): reproducible, independent of
``num_workers``, and they do not shift the training generators (dropout).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "BatchSource",
    "count_tokens",
    "derived_seed",
    "epoch_batches",
    "epoch_indices",
    "group_by_length",
    "isolated_rng",
    "iterate_batches",
    "to_device",
]


def epoch_indices(
    n: int, *, epoch: int, seed: int, shuffle: bool = True, rank: int = 0, world_size: int = 1
) -> list[int]:
    """This process's example order for one epoch.

    The permutation comes from ``seed + epoch`` and is the same on every process; it is padded
    (wrapping around) to a multiple of ``world_size`` and each process takes
    ``order[rank::world_size]``, so all processes get the same number of examples.
    """
    if n <= 0:
        raise ValueError("the training data set is empty")
    if shuffle:
        g = torch.Generator().manual_seed(seed + epoch)
        order = torch.randperm(n, generator=g).tolist()
    else:
        order = list(range(n))
    if world_size > 1:
        padded = -(-n // world_size) * world_size
        while len(order) < padded:
            order += order[: padded - len(order)]
        order = order[rank::world_size]
    return order


def epoch_batches(
    n: int,
    *,
    epoch: int,
    seed: int,
    batch_size: int,
    shuffle: bool = True,
    drop_last: bool = False,
    rank: int = 0,
    world_size: int = 1,
) -> list[list[int]]:
    """:func:`epoch_indices` cut into micro-batches of ``batch_size`` example indices."""
    order = epoch_indices(n, epoch=epoch, seed=seed, shuffle=shuffle, rank=rank, world_size=world_size)
    stop = len(order) - len(order) % batch_size if drop_last else len(order)
    return [order[i : i + batch_size] for i in range(0, stop, batch_size)]


MEGABATCH = 50
"""Batches per length-sorted chunk in :func:`group_by_length`."""


def group_by_length(batches: list[list[int]], lengths: Any, *, epoch: int, seed: int) -> list[list[int]]:
    """The same examples re-cut into batches of similar length, in a random batch order.

    The epoch's order (already shuffled) is taken in chunks of :data:`MEGABATCH` batches; each
    chunk is sorted by length (longest first) and cut again at the same batch sizes; then the
    batches are shuffled (seeded by ``seed + epoch``). Padding shrinks to about the length
    spread inside a batch, and which examples share a chunk still changes every epoch.
    """
    sizes = [len(b) for b in batches]
    order = [i for b in batches for i in b]
    out: list[list[int]] = []
    pos = 0
    for start in range(0, len(sizes), MEGABATCH):
        chunk_sizes = sizes[start:start + MEGABATCH]
        chunk = sorted(order[pos:pos + sum(chunk_sizes)], key=lambda i: -int(lengths[i]))
        pos += sum(chunk_sizes)
        k = 0
        for size in chunk_sizes:
            out.append(chunk[k:k + size])
            k += size
    perm = torch.randperm(len(out), generator=torch.Generator().manual_seed(seed + epoch + 7919)).tolist()
    return [out[i] for i in perm]


def count_tokens(batch: Mapping[str, Any]) -> int:
    """``attention_mask.sum()`` when present, else ``idx.numel()`` (or ``input_ids``), else 0."""
    mask = batch.get("attention_mask")
    if isinstance(mask, Tensor):
        return int(mask.sum())
    for key in ("idx", "input_ids"):
        value = batch.get(key)
        if isinstance(value, Tensor):
            return value.numel()
    return 0


def derived_seed(*parts: int) -> int:
    """A 63-bit seed mixed from integers (any sign) with numpy's SeedSequence."""
    entropy = [int(p) % 2**64 for p in parts]
    state = np.random.SeedSequence(entropy).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


@contextlib.contextmanager
def isolated_rng(seed: int) -> Iterator[None]:
    """Seed torch-CPU/numpy/python generators for the block, then put their previous state back."""
    t_state, n_state, p_state = torch.get_rng_state(), np.random.get_state(), random.getstate()
    torch.default_generator.manual_seed(seed)  # CPU only: leaves the CUDA generators alone
    np.random.seed(seed % 2**32)
    random.seed(seed)
    try:
        yield
    finally:
        torch.set_rng_state(t_state)
        np.random.set_state(n_state)
        random.setstate(p_state)


class BatchSource(torch.utils.data.Dataset):
    """Map-style data set of whole collated micro-batches: item ``j`` = batch ``j`` of an epoch.

    Reading examples and collating run under generators seeded from (seed, epoch, rank, j), so any
    randomness there (e.g. MLM masking) is reproducible, exactly resumable and independent of
    ``num_workers``, and it does not disturb the training process's generators.
    """

    def __init__(
        self,
        dataset: Any,
        batches: list[list[int]],
        collate_fn: Callable[[list[Any]], Any],
        seed_parts: tuple[int, ...],
    ) -> None:
        self.dataset, self.batches, self.collate_fn, self.seed_parts = dataset, batches, collate_fn, seed_parts

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, j: int) -> tuple[dict[str, Any], int, int]:
        """(batch dict, examples in it, tokens in it)."""
        with isolated_rng(derived_seed(*self.seed_parts, j)):
            examples = [self.dataset[i] for i in self.batches[j]]
            batch = self.collate_fn(examples)
        if not isinstance(batch, Mapping):
            raise TypeError(f"collate_fn must return a dict of tensors, got {type(batch).__name__}")
        return dict(batch), len(examples), count_tokens(batch)


def _passthrough(item: Any) -> Any:
    return item


def iterate_batches(
    source: BatchSource, start: int, num_workers: int, pin: bool
) -> Iterator[tuple[dict[str, Any], int, int]]:
    """The items of ``source`` from index ``start`` on, built in ``num_workers`` processes (0: here)."""
    if num_workers == 0:
        return (source[j] for j in range(start, len(source)))
    loader = torch.utils.data.DataLoader(
        source,
        batch_size=None,
        sampler=range(start, len(source)),
        collate_fn=_passthrough,
        num_workers=num_workers,
        pin_memory=pin,
        # Its own generator: creating the iterator must not draw from the global torch RNG (that
        # would shift dropout masks); our batches are seeded by position anyway.
        generator=torch.Generator().manual_seed(derived_seed(*source.seed_parts, start)),
    )
    return iter(loader)


def to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """The batch's tensors on ``device`` (non-blocking to CUDA); other values as they are."""
    non_blocking = device.type == "cuda"
    return {k: v.to(device, non_blocking=non_blocking) if isinstance(v, Tensor) else v for k, v in batch.items()}

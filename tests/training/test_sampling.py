"""Tests of gptbert.training.sampling: the epoch order, its shards and seeded collation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gptbert.training import epoch_batches, epoch_indices, fit
from tests.training._train_helpers import make_model, random_mask_collate, targs, train_losses


def test_epoch_indices_seeded_and_sharded():
    a = epoch_indices(11, epoch=0, seed=5)
    assert a == epoch_indices(11, epoch=0, seed=5) and sorted(a) == list(range(11))
    assert a != epoch_indices(11, epoch=1, seed=5)
    assert epoch_indices(5, epoch=0, seed=5, shuffle=False) == [0, 1, 2, 3, 4]
    r0 = epoch_indices(11, epoch=0, seed=5, rank=0, world_size=2)
    r1 = epoch_indices(11, epoch=0, seed=5, rank=1, world_size=2)
    assert len(r0) == len(r1) == 6 and set(r0) | set(r1) == set(range(11))
    assert r0 == a[0::2] and r1 == a[1::2] + a[:1]  # padded by wrapping around
    assert [len(b) for b in epoch_batches(11, epoch=0, seed=5, batch_size=4)] == [4, 4, 3]
    assert [len(b) for b in epoch_batches(11, epoch=0, seed=5, batch_size=4, drop_last=True)] == [4, 4]


def test_collate_randomness_is_reproducible_and_independent_of_workers(train_set, vocab_size):
    data = torch.utils.data.Subset(train_set, range(64))
    runs = []
    for workers in (0, 0, 2):
        res = fit(make_model(vocab_size, 0, 0.1), targs(max_steps=6, num_workers=workers), data, random_mask_collate)
        runs.append(train_losses(res.history))
    assert runs[0] == runs[1] == runs[2]


def test_group_by_length_keeps_the_examples_and_groups_lengths():
    from gptbert.training.sampling import epoch_batches, group_by_length

    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 200, size=1000).tolist()
    batches = epoch_batches(1000, epoch=3, seed=0, batch_size=16)
    grouped = group_by_length(batches, lengths, epoch=3, seed=0)
    assert sorted(i for b in grouped for i in b) == list(range(1000))
    assert sorted(len(b) for b in grouped) == sorted(len(b) for b in batches)
    spread = lambda bs: np.mean([max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in bs])  # noqa: E731
    assert spread(grouped) < 0.2 * spread(batches)
    assert group_by_length(batches, lengths, epoch=3, seed=0) == grouped  # deterministic
    assert group_by_length(batches, lengths, epoch=4, seed=0) != grouped  # the batch order changes


def test_fit_group_by_length_needs_lengths(train_set, vocab_size):
    from gptbert.training import fit
    from tests.training._train_helpers import collate, make_model, targs

    with pytest.raises(ValueError, match="group_by_length needs the length"):
        fit(make_model(vocab_size, 0, 0.0), targs(max_steps=1, group_by_length=True), train_set, collate)
    res = fit(make_model(vocab_size, 0, 0.0), targs(max_steps=2, group_by_length=True), train_set, collate,
              lengths=[1] * len(train_set))
    assert res.steps == 2

"""Small real subsets shared by the baseline tests (banking77: a few intents, a few dozen queries each)."""

from __future__ import annotations

import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Subset:
    train_texts: list[str]
    train_labels: list[str]
    dev_texts: list[str]
    dev_labels: list[str]


def banking_subset(shared: Path, n_labels: int, per_label: int) -> Subset:
    from gptbert.data.readers import read_task_file

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the 13 known bad rows of banking77/train.tsv
        train = read_task_file(shared / "banking77" / "train.tsv", skip_bad_rows=True)
    dev = read_task_file(shared / "banking77" / "dev.tsv")
    keep = sorted(set(train.labels))[:n_labels]
    count = dict.fromkeys(keep, 0)
    texts, labels = [], []
    for t, lab in zip(train.texts, train.labels):
        if lab in count and count[lab] < per_label:
            count[lab] += 1
            texts.append(t)
            labels.append(lab)
    dev_pairs = [(t, lab) for t, lab in zip(dev.texts, dev.labels) if lab in count]
    return Subset(texts, labels, [t for t, _ in dev_pairs], [lab for _, lab in dev_pairs])


@pytest.fixture(scope="session")
def banking_small(shared_data: Path) -> Subset:
    """8 banking77 intents, 25 training queries each, and their dev queries."""
    return banking_subset(shared_data, 8, 25)


@pytest.fixture
def no_pickle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any pickle.load / pickle.loads during the test fails it."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pickle was used to load a baseline")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)

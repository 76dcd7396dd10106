"""Deterministic train / dev splits of any data read here (stratified by label for task files)."""

from __future__ import annotations

import math
import random
from typing import TypeVar

from gptbert.data.readers.formats import DataError
from gptbert.data.readers.task import TaskData


D = TypeVar("D")


def train_dev_split(
    data: D, dev_fraction: float = 0.1, seed: int = 0, *, stratify: bool = True
) -> tuple[D, D]:
    """Deterministic train/dev split of TaskData, PairData, TokenData, SquadData or a list.

    For labelled TaskData the split is stratified by label (``stratify=True``) and every label
    keeps at least one training example, so a LabelMap built from train covers dev. Examples
    keep their file order inside each part.
    """
    if not 0.0 < dev_fraction < 1.0:
        raise ValueError(f"dev_fraction={dev_fraction}; expected a number strictly between 0 and 1")
    n = len(data)  # type: ignore[arg-type]
    if n < 2:
        raise DataError(f"cannot split {n} example(s) into train and dev")
    rng = random.Random(seed)
    labels = getattr(data, "labels", None) if isinstance(data, TaskData) else None
    dev: list[int] = []
    if stratify and labels is not None:
        groups: dict[str, list[int]] = {}
        for i, lab in enumerate(labels):
            groups.setdefault(lab, []).append(i)
        for lab in sorted(groups):
            idx = groups[lab]
            rng.shuffle(idx)
            k = min(len(idx) - 1, int(math.floor(len(idx) * dev_fraction + 0.5)))
            dev.extend(idx[:k])
        if not dev:
            # Groups too small for the fraction: take one example of the largest label that has
            # two or more; if every label is a singleton, fall back to a plain split below.
            multi = [lab for lab in sorted(groups) if len(groups[lab]) > 1]
            if multi:
                biggest = max(multi, key=lambda lab: len(groups[lab]))
                dev.append(groups[biggest][0])
    if not dev:
        order = list(range(n))
        rng.shuffle(order)
        k = max(1, min(n - 1, int(math.floor(n * dev_fraction + 0.5))))
        dev = order[:k]
    dev_set = set(dev)
    train_idx = [i for i in range(n) if i not in dev_set]
    dev_idx = sorted(dev_set)
    if hasattr(data, "subset"):
        return data.subset(train_idx), data.subset(dev_idx)  # type: ignore[attr-defined]
    if isinstance(data, (list, tuple)):
        return type(data)(data[i] for i in train_idx), type(data)(data[i] for i in dev_idx)  # type: ignore[return-value]
    raise TypeError(f"train_dev_split: cannot split a {type(data).__name__}")

"""A run and its compressed copy side by side: size on disk, batch-1 latency, batch-32
throughput and (for a classifier with a labelled dev file) dev accuracy.

    texts, scored = dev_set(run, "dev.tsv")          # every row of dev.tsv is scored
    before = measure(run, run_dir / WEIGHTS_FILE, texts, scored)
    before["dev"], before["dev_rows"]                # accuracy and the rows it was scored on
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

__all__ = ["PROBE_TEXTS", "dev_accuracy", "dev_set", "measure", "speed"]

PROBE_TEXTS = ("a short example sentence .", "the plot moves slowly but the acting is strong",
               "i would not watch it again", "an honest , funny and moving film about growing up")
"""What the timing reads when no dev file is given."""


def dev_set(run: Any, dev_path: str | None, max_examples: int | None = None) -> tuple[list[str], list[Any]]:
    """(timing texts, scored examples), read once from ``dev_path`` in the run's columns and labels.

    Timing uses the first 64 texts (a few fixed sentences without a dev file); quality every
    labelled example, or the first ``max_examples`` (none without a dev file or for a
    non-classifier run; malformed rows are skipped).
    """
    if not dev_path:
        return list(PROBE_TEXTS), []
    from gptbert.data.readers import LabelMap
    from gptbert.tasks import TASKS
    from gptbert.tasks.classify import examples_of, read_file

    data = read_file(dev_path, TASKS["classify"].options_of(run), skip_bad_rows=True)
    texts = list(data.texts[:64]) or list(PROBE_TEXTS)
    if run.config.head != "classify":
        return texts, []
    labels = LabelMap(run.labels) if run.labels else LabelMap.from_data(data)
    return texts, examples_of(data, labels)[:max_examples]


def speed(run: Any, texts: list[str]) -> dict[str, float]:
    """Batch-1 latency (p50 / p95 over the texts in turn) and batch-32 throughput of the forward pass."""
    import torch

    from gptbert.measure import latency_stats, throughput, time_callable
    from gptbert.tasks.classify import make_collator

    collate = make_collator(run.tokenizer, run.config, run.task.max_len)

    def inputs(batch: list[str]) -> dict[str, torch.Tensor]:
        b = collate([(t, None, None) for t in batch])
        return {k: v for k, v in b.items() if k not in ("targets", "next_sentence_label")}

    singles = [inputs([t]) for t in texts[:16]]  # each (1, T)
    big = inputs([texts[i % len(texts)] for i in range(32)])  # (32, T)
    turn = itertools.cycle(singles)
    with torch.inference_mode():
        lat = latency_stats(time_callable(lambda: run.model(**next(turn)), warmup=3, repeats=30))
        tput = throughput(lambda: run.model(**big), 32, warmup=1, repeats=3)
    return {"latency_ms_bs1": round(lat["p50_ms"], 3), "latency_ms_bs1_p95": round(lat["p95_ms"], 3),
            "throughput_bs32": round(tput, 1)}


def dev_accuracy(run: Any, examples: list[Any]) -> float:
    """Accuracy of a classifier run on already labelled ``examples`` (:func:`dev_set`'s)."""
    from gptbert.tasks.classify import evaluate

    return evaluate(run.model, run.tokenizer, examples, max_len=run.task.max_len)["accuracy"]


def measure(run: Any, weights: str | Path, texts: list[str], scored: list[Any]) -> dict[str, Any]:
    """Size of ``weights`` (MB), speed on ``texts`` and, when ``scored`` is not empty, dev accuracy
    (``dev``) and the number of rows it was scored on (``dev_rows``)."""
    from gptbert.measure import saved_size_mb

    out: dict[str, Any] = {"size_mb": saved_size_mb(weights), **speed(run, texts)}
    if scored:
        out["dev"] = dev_accuracy(run, scored)
        out["dev_rows"] = len(scored)
    return out

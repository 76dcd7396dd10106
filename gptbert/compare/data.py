"""The comparison's data: the same train / dev (/ test) examples and shared tokenizers for every candidate."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gptbert.compare.candidates import CompareError
from gptbert.compare.inference import _prompt_of
from gptbert.compare.progress import _Log
from gptbert.compare.settings import CompareSettings

# --------------------------------------------------------------------------- data


@dataclass
class _Data:
    task: str
    train_texts: list[str]
    n_train: int
    n_dev: int
    labels: list[str]
    dev_examples: list[Any]
    """classify: (text, pair, label id) tuples; other tasks: inputs of ``recipes.predict``."""
    test_examples: list[tuple[str, str | None, int]] | None
    profile: dict[str, Any]
    majority_baseline: float | None
    train_examples: list[tuple[str, str | None, int]] | None = None
    """classify: the training (text, pair, label id) tuples (the baselines fit on them)."""
    splits: Any = None
    """Other tasks: what the task read (:class:`gptbert.tasks.TaskSplits`), for the bootstrap interval."""

    @property
    def metric(self) -> str:
        from gptbert.tasks import TASKS

        return TASKS[self.task].headline


def _corpus_profile(s: CompareSettings) -> dict[str, Any]:
    return {"files": list(s.pretrain_corpus),
            "mb": sum(Path(p).stat().st_size for p in s.pretrain_corpus) / 2**20}


def _load_data(s: CompareSettings) -> _Data:
    if s.task != "classify":
        return _load_task_data(s)
    from gptbert.data.profile import profile_task_data
    from gptbert.data.readers import DataError, read_task_file
    from gptbert.tasks import classify

    kw: dict[str, Any] = dict(text_column=s.text_column, text_pair_column=s.text_pair_column,
                              label_column=s.label_column, skip_bad_rows=s.skip_bad_rows)
    try:
        data = classify.load_data(s.train, s.dev, seed=s.seed, max_train=s.max_train, **kw)
        test = None
        test_data = None
        if s.test:
            test_data = read_task_file(s.test, **kw)
            test = classify.examples_of(test_data, data.label_map)
    except (DataError, OSError) as e:
        raise CompareError(str(e)) from None
    if len(data.train) == 0 or len(data.dev) == 0:
        raise CompareError(f"{s.train}: need at least one training and one dev example")
    labels = list(data.label_map.labels)
    train_ids = [ex[2] for ex in data.train.items]
    majority = max(set(train_ids), key=train_ids.count)
    dev_ids = [ex[2] for ex in data.dev.items]
    baseline = sum(1 for y in dev_ids if y == majority) / len(dev_ids)
    profile: dict[str, Any] = {"train": profile_task_data(data.train_data).to_dict(),
                               "dev": profile_task_data(data.dev_data).to_dict()}
    if test_data is not None:
        profile["test"] = profile_task_data(test_data).to_dict()
    profile["baselines"] = {"majority_label": labels[majority], "majority_dev_accuracy": baseline}
    if s.pretrain_corpus:
        profile["pretrain_corpus"] = _corpus_profile(s)
    texts = list(data.train_data.texts) + [p for p in (data.train_data.pairs or []) if p]
    return _Data("classify", texts, len(data.train), len(data.dev), labels, list(data.dev.items), test, profile,
                 baseline, train_examples=list(data.train.items))


def _load_task_data(s: CompareSettings) -> _Data:
    """tokens / qa / generate through their tasks (:data:`gptbert.tasks.TASKS`)."""
    from gptbert.data.profile import profile_dataset
    from gptbert.data.readers import DataError
    from gptbert.tasks import TASKS

    task = TASKS[s.task]
    try:
        d = task.load_data(s.train, s.dev, task.options_type(), seed=s.seed, max_train=s.max_train,
                           skip_bad_rows=s.skip_bad_rows)
    except (DataError, OSError, ValueError) as e:
        raise CompareError(str(e)) from None
    dev_inputs = task.inputs(d.dev)
    n_train = len(d.train)
    if n_train == 0 or not dev_inputs:
        raise CompareError(f"{s.train}: need at least one training and one dev example")
    labels = list(d.labels or [])
    profile: dict[str, Any] = {"train": profile_dataset(d.texts, source=s.train).to_dict(),
                               "dev": profile_dataset([_prompt_of(x) for x in dev_inputs], source=s.dev).to_dict()}
    if labels:
        profile["tags"] = labels
    if s.pretrain_corpus:
        profile["pretrain_corpus"] = _corpus_profile(s)
    return _Data(s.task, list(d.texts), n_train, len(dev_inputs), labels, dev_inputs, None, profile, None, splits=d)


def _corpus_lines(paths: Sequence[str]) -> Iterator[str]:
    for p in paths:
        with open(p, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.strip():
                    yield line.rstrip("\n")


def _train_tokenizers(s: CompareSettings, kinds: set[str], texts: list[str], out: Path, log: _Log) -> dict[str, Any]:
    """One shared tokenizer per kind, trained on the corpus + training texts, saved under ``tokenizers/``."""
    from gptbert.tokenizer import Tokenizer

    toks: dict[str, Any] = {}
    source = "pre-training corpus + training texts" if s.pretrain_corpus else "training texts"
    for kind in sorted(kinds):
        log.start("tokenizer", f"{kind}, vocab {s.vocab_size}, on the {source}")

        def stream() -> Iterator[str]:
            yield from _corpus_lines(s.pretrain_corpus)
            yield from texts

        try:
            tok = Tokenizer.from_texts(stream(), kind=kind, vocab_size=s.vocab_size, show_progress=False)
        except ValueError as e:
            raise CompareError(f"training the shared {kind} tokenizer failed: {e}") from None
        tok.save(out / "tokenizers" / kind)
        toks[kind] = tok
    return toks



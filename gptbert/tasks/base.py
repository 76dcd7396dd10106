"""The Task: everything a fine-tuning task (or pre-training) brings, in one class.

A task says which head a model of each family needs for it, what its headline metric is,
which settings its runs keep (a typed :class:`TaskOptions` dataclass, stored in the run's
``task.json``), how it reads its train / dev files, how it batches examples, how it scores
a model and how it answers prediction inputs. Family differences (QA extractive for BERT and
generative for GPT, tags read on a word's first or last piece, ...) live inside the task.

The generic recipes of :mod:`gptbert.recipes` run every task the same way::

    task = TASKS[name]
    data = task.load_data(train, dev, options, seed=..., max_train=..., skip_bad_rows=...)
    source = resolve_source(spec, head=task.head(family), num_labels=task.num_labels(data),
                            texts=task.tokenizer_texts(data, family), ...)
    fitting = task.fitting(model, tokenizer, data, max_len=..., precision=..., seed=...)
    fit(model, args, fitting.train, fitting.collate, eval_fn=fitting.evaluate or dev loss)
    save_run(..., TaskInfo(task=task.name, options=fitting.options), labels=fitting.labels)

and later ``task.evaluate_file(run, path)`` / ``task.predict(run, inputs)``. A new task
subclasses :class:`Task`, implements the methods marked "every task", and is added to
:data:`gptbert.tasks.TASKS`; nothing else needs to know about it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from gptbert.io.files import read_text_file

if TYPE_CHECKING:
    import torch.nn as nn

    from gptbert.config import ModelConfig
    from gptbert.tokenizer import Tokenizer

Run = Any
"""A :class:`gptbert.run.Run` (not imported: the run module reads the task table)."""

Collate = Callable[[list[Any]], dict[str, Any]]
O = TypeVar("O", bound="TaskOptions")

INPUT_KEYS = ("text", "source", "document", "prompt", "sentence")
"""Keys of a JSONL prediction input that hold its text."""


@dataclass
class TaskOptions:
    """A task's settings, kept with its runs (``task.json`` "options"); every task subclasses it."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls: type[O], data: Mapping[str, Any]) -> O:
        """The options in ``data``; keys that are not fields of this task's options are ignored
        (the command line offers, e.g., the classification columns to every task)."""
        names = {f.name for f in fields(cls) if f.init}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class TaskSplits:
    """What :meth:`Task.load_data` read: training and dev examples in the task's own form."""

    train: Sequence[Any]
    dev: Sequence[Any]
    """The examples :meth:`Task.evaluate` scores."""
    texts: list[str]
    """Texts a new tokenizer is trained on (see :meth:`Task.tokenizer_texts`)."""
    options: TaskOptions
    """The options given, completed with what the files determine (e.g. the dialogue format)."""
    labels: list[str] | None = None
    """Label (tag) names of a labelled task, in id order."""
    detail: Any = None
    """The task module's own data object (label map, parsed files), for callers that need more."""


@dataclass
class Fitting:
    """What :func:`gptbert.training.fit` gets for one task, model and tokenizer."""

    train: Any
    """Map-style data set of training items."""
    collate: Collate
    evaluate: Callable[[nn.Module], dict[str, Any]]
    """The full dev evaluation (metrics and per-example predictions)."""
    metric: str
    """What early stopping watches: a key of ``evaluate``'s result, or 'loss' (dev loss)."""
    options: TaskOptions
    """The options the run keeps (with what training determined, e.g. the QA doc stride)."""
    labels: list[str] | None = None
    """Label names saved with the run (``labels.json``)."""
    dev_data: Any = None
    """When given, ``fit`` early-stops on the loss over these dev items (collated by ``collate``)
    and ``evaluate`` only gives the final scores (generation is too slow to run at every evaluation)."""


class Task:
    """One task: head per family, headline metric, typed options, data, batches, scores, predictions."""

    name: str = ""
    options_type: type[TaskOptions] = TaskOptions
    metric: str = "loss"
    """The headline metric's key in :meth:`evaluate`'s result."""
    metric_name: str = ""
    """Its name in :data:`gptbert.metrics.METRICS` (for bootstrap intervals and results); default ``metric``."""
    heads: tuple[str, ...] = ()
    """Heads of a bare checkpoint (no ``task.json``) whose predictions this task makes."""
    capability: str | None = None
    """What a model with one of these heads can do (a :data:`gptbert.api.CAPABILITIES` name)."""
    finetunable: bool = True
    """Offered by ``finetune --task`` and ``compare --task``."""

    # -- what the task is ------------------------------------------------------------------
    @property
    def headline(self) -> str:
        """The headline metric's :data:`gptbert.metrics.METRICS` name."""
        return self.metric_name or self.metric

    @property
    def higher_is_better(self) -> bool:
        """The direction of the headline metric."""
        from gptbert.metrics import higher_is_better

        return higher_is_better(self.headline)

    def head(self, family: str) -> str:
        """The model head a ``family`` model needs for this task (by default the first of
        :attr:`heads`). A family that cannot do the task raises ValueError."""
        if not self.heads:
            raise NotImplementedError(f"task {self.name!r}: no head")
        return self.heads[0]

    def capabilities(self, config: ModelConfig, *, tuned: bool) -> set[str]:
        """:data:`gptbert.api.CAPABILITIES` this task gives a model with ``config`` (``tuned``:
        the model was fine-tuned for this task, not only shaped for it); by default
        :attr:`capability` for a model with one of :attr:`heads`."""
        return {self.capability} if self.capability and config.head in self.heads else set()

    def serves(self, run: Run) -> bool:
        """Whether this task (the run's own) makes the run's predictions; else the task of its head does."""
        return True

    def options_of(self, run: Run) -> TaskOptions:
        """The run's options, or this task's defaults when the run was made for another task."""
        options = run.task.options
        return options if isinstance(options, self.options_type) else self.options_type()

    # -- fine-tuning ------------------------------------------------------------------------
    def load_data(self, train_path: str | Path, dev_path: str | Path | None, options: TaskOptions, *,
                  seed: int = 0, max_train: int | None = None, skip_bad_rows: bool = False) -> TaskSplits:
        """Train and dev examples (every task); without a dev file, a seeded split of train."""
        raise NotImplementedError

    def tokenizer_texts(self, data: TaskSplits, family: str) -> list[str]:
        """The texts a tokenizer for a ``family`` model is trained on."""
        return list(data.texts)

    def num_labels(self, data: TaskSplits) -> int:
        return len(data.labels) if data.labels else 2

    def collator(self, tokenizer: Tokenizer, config: ModelConfig, max_len: int, options: TaskOptions) -> Collate:
        """Examples -> a batch for ``model(**batch)`` (every task)."""
        raise NotImplementedError

    def fitting(self, model: nn.Module, tokenizer: Tokenizer, data: TaskSplits, *, max_len: int,
                precision: str = "fp32", seed: int = 0) -> Fitting:
        """Training items, collator and dev evaluation; by default the examples as they were read."""
        from gptbert.tasks.common import ListDataset

        options = data.options

        def evaluate(m: nn.Module) -> dict[str, Any]:
            return self.evaluate(m, tokenizer, data.dev, options, labels=data.labels, max_len=max_len,
                                 precision=precision)

        return Fitting(ListDataset(data.train), self.collator(tokenizer, model.config, max_len, options),  # type: ignore[arg-type]
                       evaluate, self.metric, options, data.labels)

    def run_metrics(self, final: dict[str, Any]) -> dict[str, Any]:
        """What ``metrics.json`` keeps of the final dev evaluation."""
        from gptbert.tasks.common import scalars

        return {"dev": scalars(final)}

    # -- scores ---------------------------------------------------------------------------
    def evaluate(self, model: nn.Module, tokenizer: Tokenizer, examples: Sequence[Any], options: TaskOptions, *,
                 labels: Sequence[str] | None = None, max_len: int = 128, precision: str = "fp32",
                 **opts: Any) -> dict[str, Any]:
        """The task's metrics on ``examples`` plus per-example ``predictions`` (every task)."""
        raise NotImplementedError

    def read_examples(self, path: str | Path, options: TaskOptions, *, labels: Sequence[str] | None = None,
                      skip_bad_rows: bool = False) -> list[Any]:
        """Labelled examples of an evaluation file, as :meth:`evaluate` takes them (every task)."""
        raise NotImplementedError

    def evaluate_file(self, run: Run, path: Path, **opts: Any) -> dict[str, Any]:
        """A run's metrics on a labelled file (``opts``: ``max_examples``, ``skip_bad_rows``,
        ``batch_size``, ``precision`` and the task's own)."""
        from gptbert.tasks.common import run_max_len, run_tokenizer

        options = self.options_of(run)
        max_examples = opts.pop("max_examples", None)
        examples = self.read_examples(path, options, labels=run.labels,
                                      skip_bad_rows=bool(opts.pop("skip_bad_rows", False)))[:max_examples]
        return self.evaluate(run.model, run_tokenizer(run), examples, options, labels=run.labels,
                             max_len=run_max_len(run), **opts)

    def bootstrap_pairs(self, result: dict[str, Any], data: TaskSplits) -> tuple[list[Any], list[Any]] | None:
        """(gold, predicted) per scored example of an evaluation of ``data.dev``, for a bootstrap
        interval of the headline metric (None: the evaluation has no per-example predictions)."""
        return None

    # -- predictions ----------------------------------------------------------------------
    def predict(self, run: Run, inputs: list[Any], **opts: Any) -> list[dict[str, Any]]:
        """One result dict per input (every task)."""
        raise NotImplementedError

    def inputs(self, examples: Sequence[Any]) -> list[Any]:
        """Prediction inputs of labelled examples (what :meth:`predict` takes)."""
        return [x[0] if isinstance(x, (tuple, list)) else x for x in examples]

    input_column = "text"
    """The column of a table that holds a prediction input when none is named."""

    def read_inputs(self, path: Path, columns: Mapping[str, str | None] | None = None,
                    options: TaskOptions | None = None) -> list[Any]:
        """Prediction inputs of a file (``path`` may be ``folder:split``).

        A table in any format of :mod:`gptbert.data.readers.registry` (CSV, TSV, JSONL records, JSON,
        Parquet, a datasets folder) gives its ``text_column`` and, with a ``text_pair_column``,
        ``{"text", "text_pair"}`` inputs; a column not named in ``columns`` is the run's (its task
        ``options``), else :attr:`input_column`. JSONL of strings or token lists, or of records without
        that column (any key of :data:`INPUT_KEYS` then), is read as such; any other file (.txt) gives
        one input a line."""
        cols = {k: v for k, v in (columns or {}).items() if v is not None}
        fmt = table_format(path)
        if fmt is None:
            return [line for line in read_text_file(path).splitlines() if line.strip()]
        text_column = cols.get("text_column") or getattr(options, "text_column", None) or self.input_column
        pair_column = cols.get("text_pair_column") or getattr(options, "text_pair_column", None)
        if fmt == "jsonl" and "text_column" not in cols:
            first = next(iter(jsonl_records(path)), None)
            if not isinstance(first, dict) or text_column not in first:
                return jsonl_inputs(path)
        return table_inputs(path, text_column, pair_column)


def table_format(path: str | Path) -> str | None:
    """The registry format of ``path`` (a folder must be a datasets folder), None for a file of
    another kind (plain text, CoNLL)."""
    from gptbert.data.readers import DataError, detect_format
    from gptbert.data.readers.registry import split_path

    folder, _ = split_path(path)
    if folder.is_dir():
        return detect_format(folder)
    try:
        return detect_format(folder)
    except DataError:
        return None


def table_inputs(path: str | Path, text_column: str, text_pair_column: str | None = None) -> list[Any]:
    """The texts (``{"text", "text_pair"}`` with a pair column) of a table, unlabelled."""
    from gptbert.data.readers import read_task_file

    data = read_task_file(path, text_column=text_column, text_pair_column=text_pair_column, label_column=None)
    if data.pairs is None:
        return list(data.texts)
    return [{"text": t, "text_pair": p} for t, p in zip(data.texts, data.pairs)]


def jsonl_inputs(path: Path) -> list[Any]:
    """JSONL prediction inputs: strings, token lists or records with a text key (:data:`INPUT_KEYS`)."""
    out: list[Any] = []
    for i, r in enumerate(jsonl_records(path)):
        if isinstance(r, str):
            out.append(r)
        elif isinstance(r, dict) and isinstance(r.get("tokens", r.get("words")), list):
            out.append([str(w) for w in r.get("tokens", r.get("words"))])
        elif isinstance(r, dict) and any(k in r for k in INPUT_KEYS):
            out.append(next(r[k] for k in INPUT_KEYS if k in r))
        else:
            raise ValueError(f"{path}: record {i + 1}: expected a string or one of the keys "
                             f"{', '.join(INPUT_KEYS)}")
    return out


def jsonl_records(path: Path) -> list[Any]:
    """The JSON value of every non-blank line (an error names the line)."""
    out = []
    for lineno, line in enumerate(read_text_file(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
    return out

"""Tasks: how each objective reads data, builds batches, is scored and predicts.

:data:`TASKS` is the one table of tasks (name -> :class:`~gptbert.tasks.base.Task`): the
command line's ``--task`` choices, compare, the API's capabilities and the recipes of
:mod:`gptbert.recipes` all read it. One module per task: ``classify`` (sequence and pair
classification), ``tokens`` (BIO tagging), ``qa`` (extractive for BERT, generative for GPT;
windows in ``qa_features``), ``generate`` (conditional LM for GPT: summaries, translation,
dialogue; BERT's extractive summaries in ``extractive``), ``rerank`` (a scorer of a generator's
candidates: generate-then-rerank) and ``pretrain`` (MLM+NSP, causal LM, bidirectional LM, the
hybrid's mix; language-model metrics in ``lm_eval``). Each module owns its options,
collators, evaluation and predictions.

A new task: subclass :class:`~gptbert.tasks.base.Task` and add an instance here (or, at run
time, ``TASKS["name"] = MyTask()``).
"""

from __future__ import annotations

from typing import Any

from gptbert.tasks.base import Task, TaskOptions, TaskSplits
from gptbert.tasks.classify import ClassifyTask
from gptbert.tasks.common import nothing_to_predict
from gptbert.tasks.generate import GenerateTask
from gptbert.tasks.pretrain import PretrainTask
from gptbert.tasks.qa import QATask
from gptbert.tasks.rerank import RerankTask
from gptbert.tasks.tokens import TokensTask

__all__ = ["TASKS", "Task", "TaskOptions", "TaskSplits", "capabilities", "finetune_tasks", "get_task",
           "options_type", "task_of"]

TASKS: dict[str, Task] = {t.name: t for t in (ClassifyTask(), TokensTask(), QATask(), GenerateTask(), RerankTask(),
                                               PretrainTask())}
"""Every task, by name (the order of the command line's choices)."""


def finetune_tasks() -> list[str]:
    """Names of the tasks ``finetune --task`` and ``compare --task`` offer."""
    return [name for name, t in TASKS.items() if t.finetunable]


def get_task(name: str) -> Task:
    """The fine-tuning task called ``name`` (an error lists the known ones)."""
    task = TASKS.get(name)
    if task is None or not task.finetunable:
        raise ValueError(f"unknown task {name!r}; expected one of {', '.join(finetune_tasks())}")
    return task


def options_type(name: str) -> type[TaskOptions]:
    """The options dataclass of task ``name`` (the base class for a task not in :data:`TASKS`)."""
    task = TASKS.get(name)
    return task.options_type if task is not None else TaskOptions


def task_of(run: Any) -> Task:
    """The task that makes a run's predictions: its own, or, for a bare checkpoint (or a GPT
    language model that was never tuned for generation), the task its model head was made for."""
    task = TASKS.get(run.task.task)
    if task is not None and task.serves(run):
        return task
    for task in TASKS.values():
        if run.config.head in task.heads:
            return task
    raise nothing_to_predict(run)


def capabilities(config: Any, task: str) -> set[str]:
    """What a model with ``config``, trained for ``task``, can do (:data:`gptbert.api.CAPABILITIES`):
    every model embeds; each task adds what its heads offer (a GPT language model answers
    questions only when ``task`` is 'qa')."""
    caps = {"embed"}
    for name, t in TASKS.items():
        caps |= t.capabilities(config, tuned=name == task)
    return caps

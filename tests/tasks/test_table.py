"""The TASKS table: each task's headline metric, the capabilities it gives a model, which task
makes a run's predictions."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from gptbert import metrics as M
from gptbert.config import ModelConfig
from gptbert.tasks import TASKS, capabilities, finetune_tasks, get_task, task_of


def test_headline_metrics_and_their_direction() -> None:
    assert {name: t.headline for name, t in TASKS.items()} == {
        "classify": "accuracy", "tokens": "entity_f1", "qa": "f1", "generate": "rougeL", "rerank": "chrf",
        "pretrain": "perplexity"
    }
    assert {t.headline for t in TASKS.values()} <= set(M.METRICS)
    assert all(t.higher_is_better for n, t in TASKS.items() if n != "pretrain")
    assert not TASKS["pretrain"].higher_is_better
    assert finetune_tasks() == ["classify", "tokens", "qa", "generate", "rerank"]
    with pytest.raises(ValueError, match="unknown task 'pretrain'; expected one of classify, tokens, qa, generate, rerank"):
        get_task("pretrain")


def test_heads_per_family() -> None:
    assert [TASKS["qa"].head(f) for f in ("bert", "gpt", "elmo")] == ["qa", "lm", "qa"]
    assert [TASKS["generate"].head(f) for f in ("bert", "gpt")] == ["classify", "lm"]
    with pytest.raises(ValueError, match="ELMo has no generation"):
        TASKS["generate"].head("elmo")
    assert [TASKS["pretrain"].head(f) for f in ("bert", "gpt", "elmo")] == ["pretrain", "lm", "lm"]
    # The hybrid: causal LM for generation and pre-training, bidirectional task heads.
    assert [TASKS[t].head("hybrid") for t in ("classify", "tokens", "qa", "generate", "pretrain")] == \
        ["classify", "tokens", "qa", "lm", "lm"]
    assert {TASKS["rerank"].head(f) for f in ("bert", "gpt", "hybrid")} == {"classify"}


def _config(preset: str, head: str | None, num_labels: int = 2) -> ModelConfig:
    return ModelConfig.from_name(preset).replace(head=head, num_labels=num_labels)


def test_capabilities_follow_head_and_task() -> None:
    gpt_lm = _config("gpt-nano", "lm")
    assert capabilities(gpt_lm, "pretrain") == {"embed", "generate"}
    assert capabilities(gpt_lm, "generate") == {"embed", "generate"}
    assert capabilities(gpt_lm, "qa") == {"embed", "generate", "answer"}  # a GPT tuned for QA answers
    assert capabilities(_config("bert-tiny", "qa"), "none") == {"embed", "answer"}
    assert capabilities(_config("bert-tiny", "pretrain"), "pretrain") == {"embed", "fill_mask"}
    assert capabilities(_config("bert-tiny", "classify"), "classify") == {"embed", "classify"}
    assert capabilities(_config("bert-tiny", "tokens", 5), "tokens") == {"embed", "tag"}
    assert capabilities(_config("hybrid-micro", "lm"), "pretrain") == {"embed", "generate", "fill_mask"}
    assert capabilities(_config("hybrid-micro", "lm"), "generate") == {"embed", "generate", "fill_mask"}
    assert capabilities(_config("hybrid-micro", "classify"), "classify") == {"embed", "classify"}
    # A rerank run's scorer generates (with its generator) and still classifies pairs.
    assert capabilities(_config("bert-tiny", "classify"), "rerank") == {"embed", "classify", "generate"}


def _run(task: str, preset: str, head: str | None, **options: object) -> SimpleNamespace:
    from gptbert.run import TaskInfo
    from gptbert.tasks import options_type

    info = TaskInfo(task=task, options=options_type(task).from_dict(options))
    return SimpleNamespace(task=info, config=_config(preset, head), path="run")


def test_task_of_a_run() -> None:
    assert task_of(_run("generate", "gpt-nano", "lm", method="conditional-lm")).name == "generate"
    assert task_of(_run("generate", "bert-tiny", "classify", method="extractive")).name == "generate"
    # A bare GPT checkpoint (task from its head, never tuned for generation) continues its prompt.
    assert task_of(_run("generate", "gpt-nano", "lm")).name == "pretrain"
    assert task_of(_run("none", "bert-tiny", "classify")).name == "classify"
    assert task_of(_run("none", "bert-tiny", "qa")).name == "qa"
    assert task_of(_run("pretrain", "bert-tiny", "mlm")).name == "pretrain"
    with pytest.raises(ValueError, match="nothing to predict with a bert model with head None"):
        task_of(_run("none", "bert-tiny", None))

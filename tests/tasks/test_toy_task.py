"""A new task added through TASKS alone: fine-tuned, evaluated and used through the recipes,
the command line and the HTTP server, with no other file knowing about it.

The toy task is "length parity" on real SST-2 sentences: the label is the number of words
modulo 2 (even / odd). Nothing here needs the model to be good at it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from gptbert import recipes
from gptbert.cli import main
from gptbert.run import load_run
from gptbert.tasks import TASKS, Task, TaskOptions, TaskSplits
from gptbert.tasks import classify
from tests.tasks import _runs

LABELS = ["even", "odd"]


class ParityTask(Task):
    """Is the number of words of a text even or odd? A 2-label classifier, any family."""

    name = "parity"
    metric = "accuracy"

    def head(self, family: str) -> str:
        return "classify"  # a 2-label classifier (the task's own `heads` stay empty: no bare checkpoint is one)

    def capabilities(self, config: Any, *, tuned: bool) -> set[str]:
        return {"classify"} if tuned and config.head == "classify" else set()

    def read_examples(self, path: str | Path, options: TaskOptions, *, labels: Sequence[str] | None = None,
                      skip_bad_rows: bool = False) -> list[Any]:
        texts = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
        return [(t, None, len(t.split()) % 2) for t in texts]

    def load_data(self, train_path: str | Path, dev_path: str | Path | None, options: TaskOptions, *,
                  seed: int = 0, max_train: int | None = None, skip_bad_rows: bool = False) -> TaskSplits:
        train = self.read_examples(train_path, options)[:max_train]
        dev = self.read_examples(dev_path, options) if dev_path else train[-len(train) // 10:]
        return TaskSplits(train, dev, [t for t, _, _ in train], options, LABELS)

    def collator(self, tokenizer: Any, config: Any, max_len: int, options: TaskOptions) -> Any:
        return classify.make_collator(tokenizer, config, max_len)

    def evaluate(self, model: Any, tokenizer: Any, examples: Sequence[Any], options: TaskOptions, *,
                 labels: Sequence[str] | None = None, max_len: int = 128, precision: str = "fp32",
                 **opts: Any) -> dict[str, Any]:
        return classify.evaluate(model, tokenizer, examples, max_len=max_len, precision=precision, num_labels=2)

    def predict(self, run: Any, inputs: list[Any], **opts: Any) -> list[dict[str, Any]]:
        probs = classify.predict_proba(run.model, run.tokenizer, inputs, max_len=run.task.max_len)
        return [{"text": t, "label": LABELS[int(p.argmax())], "score": float(p.max())} for t, p in zip(inputs, probs)]


@pytest.fixture(scope="module")
def parity() -> Iterator[ParityTask]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(TASKS, "parity", ParityTask())
        yield TASKS["parity"]  # type: ignore[misc]


@pytest.fixture(scope="module")
def files(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    rows = (shared_data / "sst2" / "train.tsv").read_text(encoding="utf-8").splitlines()[1:401]
    texts = [r.rsplit("\t", 1)[0].strip() for r in rows]
    d = tmp_path_factory.mktemp("parity")
    (d / "train.lines").write_text("\n".join(texts[:340]) + "\n", encoding="utf-8")
    (d / "dev.lines").write_text("\n".join(texts[340:]) + "\n", encoding="utf-8")
    return {"train": d / "train.lines", "dev": d / "dev.lines"}


@pytest.fixture(scope="module")
def parity_run(parity: ParityTask, files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("parity_run") / "run"
    path, result, extra = recipes.finetune("bert-tiny", "parity", str(files["train"]), out, _runs.train_args(8),
                                           dev_path=str(files["dev"]), vocab_size=400, max_len=32,
                                           overrides=_runs.TINY)
    return {"path": path, "result": result, "extra": extra}


def test_finetune_evaluate_predict_through_the_recipes(parity_run: dict[str, Any], files: dict[str, Path]) -> None:
    run = load_run(parity_run["path"])
    assert run.task.task == "parity" and run.labels == LABELS and run.config.head == "classify"
    assert parity_run["result"].steps == 8 and parity_run["result"].metric_name == "accuracy"
    dev = parity_run["extra"]["dev"]
    assert dev["n"] == 60 and 0.0 <= dev["accuracy"] <= 1.0
    assert json.loads((parity_run["path"] / "metrics.json").read_text())["dev"]["accuracy"] == dev["accuracy"]
    again = recipes.evaluate(run, files["dev"])
    assert again["task"] == "parity" and again["n"] == 60 and again["accuracy"] == pytest.approx(dev["accuracy"])
    preds = recipes.predict(run, ["one two", "one two three"])
    assert [p["text"] for p in preds] == ["one two", "one two three"] and {p["label"] for p in preds} <= set(LABELS)


def test_the_command_line_offers_and_runs_it(parity: ParityTask, files: dict[str, Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert main(["finetune", "--model", "bert-tiny", "--task", "parity", "--train", str(files["train"]),
                 "--dev", str(files["dev"]), "--out", str(out), "--vocab-size", "400", "--max-len", "32",
                 "--max-steps", "3", "--batch-size", "16", "--no-progress", "--no-tensorboard", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 3 and 0.0 <= summary["dev"]["accuracy"] <= 1.0
    assert main(["evaluate", str(out), "--data", str(files["dev"]), "--json"]) == 0
    stdout = capsys.readouterr().out
    result = json.loads(stdout[stdout.index("{"):])
    assert result["task"] == "parity" and result["accuracy"] == pytest.approx(summary["dev"]["accuracy"])
    assert main(["predict", str(out), "--text", "a b c"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] in LABELS


def test_it_is_served(parity_run: dict[str, Any]) -> None:
    from fastapi.testclient import TestClient

    from gptbert.api import LM
    from gptbert.serve import ServeSettings, create_app

    lm = LM.load(parity_run["path"])
    assert lm.capabilities == {"classify", "embed"}
    with TestClient(create_app(ServeSettings(), lm)) as client:
        assert client.get("/v1/info").json()["capabilities"] == ["classify", "embed"]
        r = client.post("/v1/classify", json={"texts": ["one two", "one two three"]})
        assert r.status_code == 200, r.text
        assert [res["label"] in LABELS for res in r.json()["results"]] == [True, True]

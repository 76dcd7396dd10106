"""task.json: the typed task options round-trip, and files of the older form (an untyped
``extra`` dict, classification columns at the top) load into the typed options."""

from __future__ import annotations

import json

from gptbert.run import Distillation, TaskInfo
from gptbert.tasks.classify import ClassifyOptions
from gptbert.tasks.generate import PAIR_SEPARATOR, GenerateOptions
from gptbert.tasks.pretrain import PretrainOptions
from gptbert.tasks.qa import QAOptions
from gptbert.tasks.tokens import TokensOptions


def test_typed_options_round_trip() -> None:
    info = TaskInfo(task="qa", max_len=96, options=QAOptions(mode="generative", n_train_questions=58),
                    source="gpt-nano", train="train.json", dev=None)
    again = TaskInfo.from_dict(json.loads(json.dumps(info.to_dict())))
    assert again == info and isinstance(again.options, QAOptions) and again.options.doc_stride == 128
    d = TaskInfo(task="classify", distillation=Distillation("runs/teacher", temperature=3.0, alpha=0.2))
    assert TaskInfo.from_dict(d.to_dict()) == d
    assert TaskInfo(task="classify").options == ClassifyOptions()  # defaults of the task, not the base class


def test_old_task_json_loads_into_typed_options() -> None:
    qa = TaskInfo.from_dict({"task": "qa", "max_len": 64, "text_column": "text", "text_pair_column": None,
                             "label_column": "label", "extra": {
                                 "source": "bert-tiny", "train": "t.json", "dev": "d.json", "mode": "extractive",
                                 "n_train_questions": 58, "n_train_answerable": 28, "doc_stride": 128,
                                 "negatives_per_positive": 2, "n_train_windows": 90}})
    assert qa.options == QAOptions(mode="extractive", doc_stride=128, negatives_per_positive=2,
                                   n_train_questions=58, n_train_answerable=28, n_train_windows=90)
    assert (qa.source, qa.train, qa.dev, qa.max_len) == ("bert-tiny", "t.json", "d.json", 64)
    clf = TaskInfo.from_dict({"task": "classify", "max_len": 32, "text_column": "sentence",
                              "text_pair_column": "hypothesis", "label_column": "gold",
                              "extra": {"source": "gpt-nano", "distilled_from": "runs/t", "temperature": 2.0,
                                        "alpha": 0.5}})
    assert clf.options == ClassifyOptions("sentence", "hypothesis", "gold")
    assert clf.distillation == Distillation("runs/t", 2.0, 0.5)
    gen = TaskInfo.from_dict({"task": "generate", "extra": {"format": "pairs", "method": "conditional-lm",
                                                             "separator": PAIR_SEPARATOR, "max_new_tokens": 20}})
    assert gen.options == GenerateOptions(format="pairs", method="conditional-lm", separator=PAIR_SEPARATOR,
                                          max_new_tokens=20)
    tok = TaskInfo.from_dict({"task": "tokens", "extra": {"scheme": "BIO", "read_tag_on": "last piece"}})
    assert tok.options == TokensOptions(read_tag_on="last piece")
    pre = TaskInfo.from_dict({"task": "pretrain", "max_len": 48, "extra": {"objective": "mlm+nsp",
                                                                            "corpus": ["rt.txt"]}})
    assert pre.options == PretrainOptions(objective="mlm+nsp", corpus=["rt.txt"])
    assert TaskInfo.from_dict({"task": "none", "max_len": 512}).task == "none"

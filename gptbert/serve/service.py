"""The model behind the queue: :class:`Service` owns the :class:`~gptbert.serve.batching.Batcher`
whose single worker thread is the only code that calls the model, and the checks every task
route shares (capability, counts, input tokens) before it awaits its job.
"""

from __future__ import annotations

import asyncio
import functools
import pickle
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio
from fastapi import Request

from gptbert.api import LM
from gptbert.serve.batching import Batcher, NotReadyError, QueueFullError, Ticket
from gptbert.serve.errors import APIError, field_error, model_error
from gptbert.serve.logs import log
from gptbert.serve.metrics import Metrics
from gptbert.serve.settings import ServeSettings

__all__ = ["ModelRunner", "Service"]

T = TypeVar("T")

ModelRunner = Callable[[LM, list[Any], dict[str, Any]], Any]
"""``runner(lm, inputs, options)`` on the worker thread: one output per input (an iterator for a stream)."""


class Service:
    """The model, its batcher and the checks every task route shares."""

    def __init__(self, settings: ServeSettings, metrics: Metrics, lm: LM | None,
                 loader: Callable[[], LM] | None, runners: Mapping[str, ModelRunner],
                 capabilities: Sequence[str]) -> None:
        if lm is None and loader is None:
            if settings.run_dir is None:
                raise ValueError("create_app: pass a loaded LM, a loader, or settings.run_dir")
            run_dir, precision, device = settings.run_dir, settings.precision, settings.device
            loader = lambda: LM.load(run_dir, device=device, precision=precision)  # noqa: E731
        self.settings = settings
        self.metrics = metrics
        self.lm: LM | None = lm
        self.capabilities = tuple(capabilities)
        self._loader = loader
        self._counter: Any = None  # the tokenizer copy of count_tokens
        self.batcher = Batcher(
            {name: functools.partial(self._on_worker, runner) for name, runner in runners.items()},
            max_batch=settings.max_batch, max_wait_ms=settings.max_wait_ms, queue_size=settings.queue_size,
            on_batch=metrics.on_batch,
        )
        metrics.queue_depth.set_function(lambda: self.batcher.depth)
        metrics.ready.set_function(lambda: 1.0 if self.batcher.ready else 0.0)

    # -- life cycle -------------------------------------------------------------------
    def start(self) -> None:
        if self.batcher.started:
            return
        if self.lm is not None:
            self.batcher.start()
        else:
            self.batcher.start(self._load)

    def _load(self) -> None:
        assert self._loader is not None
        start = time.perf_counter()
        self.lm = self._loader()
        log.info("model loaded", extra={"fields": {"event": "model_loaded", "model": self.model_name,
                                                   "seconds": round(time.perf_counter() - start, 3)}})

    async def stop(self) -> None:
        await anyio.to_thread.run_sync(self.batcher.close, self.settings.timeout_s + 10)

    # -- facts about the model --------------------------------------------------------
    @property
    def model_name(self) -> str:
        path = getattr(getattr(self.lm, "run", None), "path", None) or self.settings.run_dir or "model"
        return Path(str(path)).name

    def loaded(self) -> LM:
        """The model, or 503 while it loads / after it failed / during shutdown."""
        b = self.batcher
        if b.closing:
            raise APIError(503, "shutting_down", "the server is shutting down",
                           headers={"Retry-After": str(self.settings.retry_after_s)})
        if b.load_error is not None:
            raise APIError(503, "not_ready", f"the model failed to load: {type(b.load_error).__name__}")
        if self.lm is None or not b.ready:
            raise APIError(503, "not_ready", "the model is still loading",
                           headers={"Retry-After": str(self.settings.retry_after_s)})
        return self.lm

    def require(self, capability: str) -> LM:
        lm = self.loaded()
        caps = lm.capabilities
        if capability not in caps:
            if lm.model is None:
                raise APIError(404, "capability_not_supported", f"this model ({lm.family}) does not support "
                               f"'{capability}'; it supports: {', '.join(sorted(caps))}")
            config = lm.config
            raise APIError(
                404, "capability_not_supported",
                f"this model ({config.family}, head {config.head!r}) does not support '{capability}'; "
                f"it supports: {', '.join(sorted(c for c in caps if c in self.capabilities)) or 'nothing served here'}",
            )
        return lm

    @property
    def mask_token(self) -> str | None:
        tok = self.lm.tokenizer if self.lm is not None else None
        if tok is None or tok.mask_id is None:
            return None
        return tok.id_to_token(tok.mask_id)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text without special tokens.

        Uses a copy of the model's tokenizer, so that counting on the event loop never
        waits for the worker thread's tokenizer (each copy serialises its own calls).
        """
        assert self.lm is not None
        if not texts:
            return []
        if self.lm.tokenizer is None:  # tfidf-lr: words
            return [len(t.split()) for t in texts]
        if self._counter is None:
            self._counter = pickle.loads(pickle.dumps(self.lm.tokenizer))
        if len(texts) <= 8:  # a few texts: plain calls, no thread pool (cheaper, and kinder to a busy CPU)
            return [len(self._counter.encode(t, add_special_tokens=False, truncation=None).ids) for t in texts]
        enc = self._counter.encode_batch(list(texts), add_special_tokens=False, truncation=None, padding=None)
        return [len(ids) for ids in enc.ids]

    # -- request checks -----------------------------------------------------------------
    def admit(self, capability: str, field: str, items: Sequence[Any]) -> LM:
        """:meth:`require` the capability, then :meth:`check_count` the request's ``field``."""
        lm = self.require(capability)
        self.check_count(field, items)
        return lm

    def check_count(self, field: str, items: Sequence[Any]) -> None:
        if len(items) > self.settings.max_texts:
            raise field_error(field, f"at most {self.settings.max_texts} per request, got {len(items)}")

    async def check_inputs(self, request: Request, task: str, fields: dict[str, Sequence[str] | str]) -> int:
        """Count the tokens of every input; 422 naming the first one over the limit. Records sizes for the log."""
        names: list[str] = []
        texts: list[str] = []
        for field, value in fields.items():
            if isinstance(value, str):
                names.append(field)
                texts.append(value)
            else:
                names.extend(f"{field}[{i}]" for i in range(len(value)))
                texts.extend(value)
        chars = sum(len(t) for t in texts)
        if chars > 20_000:  # long inputs: count off the event loop
            counts = await anyio.to_thread.run_sync(self.count_tokens, texts)
        else:
            counts = self.count_tokens(texts)
        state = request.state
        state.sizes = {"texts": len(texts), "chars": chars, "tokens": sum(counts)}
        if self.settings.log_text:
            state.log_text = texts
        limit = self.settings.max_input_tokens
        for name, n in zip(names, counts):
            if n > limit:
                raise field_error(name, f"{n} tokens, more than the limit of {limit}")
        self.metrics.input_tokens.labels(task=task).inc(sum(counts))
        return sum(counts)

    # -- running jobs -------------------------------------------------------------------
    def submit(self, task: str, inputs: list[Any], options: dict[str, Any], key: Hashable | None,
                on_item: Callable[[Any], None] | None = None) -> Ticket:
        try:
            return self.batcher.submit(task, inputs, options, key=key, on_item=on_item)
        except QueueFullError as e:
            raise APIError(503, "queue_full", f"the server is busy: {e}; retry later",
                           headers={"Retry-After": str(self.settings.retry_after_s)}) from None
        except NotReadyError as e:
            raise APIError(503, "not_ready", str(e),
                           headers={"Retry-After": str(self.settings.retry_after_s)}) from None

    async def run(self, task: str, inputs: list[Any], options: dict[str, Any] | None = None,
                  key: Hashable | None = None) -> list[Any]:
        """Queue one job and await its outputs within the request timeout."""
        options = options or {}
        ticket = self.submit(task, inputs, options, key)
        try:
            return await self.wait(ticket, asyncio.wrap_future(ticket.future),
                                   f"no answer within {self.settings.timeout_s:g} s")
        except APIError:
            raise
        except Exception as e:  # noqa: BLE001 - from the model: mapped to an answer
            raise model_error(task, e) from None

    async def wait(self, ticket: Ticket, awaitable: Awaitable[T], timeout_message: str) -> T:
        """``awaitable`` within the request timeout (else 504 with ``timeout_message``); the job is
        cancelled when the wait times out or the request goes away."""
        try:
            return await asyncio.wait_for(awaitable, self.settings.timeout_s)
        except asyncio.TimeoutError:
            ticket.cancel()
            raise APIError(504, "timeout", timeout_message) from None
        except asyncio.CancelledError:
            ticket.cancel()
            raise

    def _on_worker(self, runner: ModelRunner, inputs: list[Any], options: dict[str, Any]) -> Any:
        """A batch of ``runner`` on the model: called on the worker thread only."""
        assert self.lm is not None
        return runner(self.lm, inputs, options)

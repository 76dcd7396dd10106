"""Dynamic batching: one worker thread owns the model and runs grouped requests.

Requests become *jobs* on a bounded queue. The worker takes the oldest job, then keeps
taking jobs that can share its model call (same task and options: the same *key*) until
the batch holds ``max_batch`` inputs or ``max_wait_ms`` has passed since the first one.
A job that cannot join waits at the head for the next batch, so order is first in,
first out. Each batch is one call of a *runner* (``inputs, options -> outputs``, one
output per input); the outputs are cut back into each job's
:class:`concurrent.futures.Future`. If a batched call fails, its jobs are re-run one by
one so that a bad request fails alone.

*Streaming* jobs run alone: their runner returns an iterator whose items are handed to
the job's ``on_item`` callback as they come; ``Ticket.cancel`` stops one between items.

Nothing here knows about HTTP or asyncio: the server awaits the futures with
:func:`asyncio.wrap_future`, which also cancels a job still queued when its request
times out.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("gptbert.serve")

Runner = Callable[[list[Any], dict[str, Any]], Any]
"""``runner(inputs, options)``: a list with one output per input (an iterator for streams)."""

BatchCallback = Callable[[str, int, float], None]
"""``on_batch(task, inputs, seconds)`` after every model call."""


class QueueFullError(RuntimeError):
    """The queue holds ``queue_size`` waiting jobs already."""


class NotReadyError(RuntimeError):
    """The model is still loading, failed to load, or the batcher is shutting down."""


@dataclass(eq=False)
class Ticket:
    """One submitted job: its future and a way to give up on it."""

    future: concurrent.futures.Future[Any]
    stop: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        """Drop the job if it has not started; stop a running stream after its current item."""
        self.stop.set()
        self.future.cancel()


@dataclass(eq=False)
class _Job:
    task: str
    key: Hashable
    inputs: list[Any]
    options: dict[str, Any]
    ticket: Ticket
    on_item: Callable[[Any], None] | None = None

    @property
    def size(self) -> int:
        return len(self.inputs)

    @property
    def streaming(self) -> bool:
        return self.on_item is not None


_STOP = object()


class Batcher:
    """A bounded job queue served by one worker thread (see the module docstring)."""

    def __init__(
        self,
        runners: dict[str, Runner],
        *,
        max_batch: int = 32,
        max_wait_ms: float = 5.0,
        queue_size: int = 256,
        on_batch: BatchCallback | None = None,
        name: str = "gptbert-model",
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch: expected >= 1, got {max_batch}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms: expected >= 0, got {max_wait_ms}")
        if queue_size < 1:
            raise ValueError(f"queue_size: expected >= 1, got {queue_size}")
        self.runners = dict(runners)
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.queue_size = queue_size
        self.on_batch = on_batch
        self.name = name
        self._q: queue.Queue[Any] = queue.Queue()
        self._lock = threading.Lock()
        self._waiting = 0  # jobs submitted and not yet taken into a batch
        self._closing = False
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.load_error: BaseException | None = None

    # -- state ------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """Jobs waiting for the model (not counting the batch being run)."""
        return self._waiting

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and not self._closing and self.load_error is None

    @property
    def closing(self) -> bool:
        return self._closing

    @property
    def started(self) -> bool:
        return self._thread is not None

    # -- life cycle -------------------------------------------------------------------
    def start(self, setup: Callable[[], None] | None = None) -> None:
        """Start the worker; it runs ``setup`` (e.g. loading the model) before taking jobs."""
        if self._thread is not None:
            raise RuntimeError("Batcher.start: already started")
        self._thread = threading.Thread(target=self._main, args=(setup,), name=self.name, daemon=True)
        self._thread.start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Refuse new jobs, finish the queued ones, stop the worker. True when it stopped in time."""
        with self._lock:
            already = self._closing
            self._closing = True
        if self._thread is None:
            return True
        if not already:
            self._q.put(_STOP)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- submitting ---------------------------------------------------------------------
    def submit(
        self,
        task: str,
        inputs: Iterable[Any],
        options: dict[str, Any] | None = None,
        *,
        key: Hashable | None = None,
        on_item: Callable[[Any], None] | None = None,
    ) -> Ticket:
        """Queue a job; raises :class:`QueueFullError` or :class:`NotReadyError` at once.

        Jobs with equal ``key`` (default: the task and its options) may share a model call;
        ``on_item`` makes a streaming job, run alone.
        """
        if task not in self.runners:
            raise KeyError(f"no runner for task {task!r}; known: {', '.join(sorted(self.runners))}")
        options = dict(options or {})
        if key is None:
            key = (task, freeze_options(options))
        ticket = Ticket(concurrent.futures.Future())
        job = _Job(task, key, list(inputs), options, ticket, on_item)
        with self._lock:
            if self._closing:
                raise NotReadyError("the server is shutting down")
            if self.load_error is not None:
                raise NotReadyError(f"the model failed to load: {self.load_error}")
            if self._thread is None or not self._ready.is_set():
                raise NotReadyError("the model is still loading")
            if self._waiting >= self.queue_size:
                raise QueueFullError(f"{self._waiting} requests are waiting (queue size {self.queue_size})")
            self._waiting += 1
        self._q.put(job)
        return ticket

    # -- the worker ---------------------------------------------------------------------
    def _main(self, setup: Callable[[], None] | None) -> None:
        try:
            if setup is not None:
                setup()
        except BaseException as e:  # noqa: BLE001 - reported to every request and /readyz
            self.load_error = e
            log.error("model failed to load: %s: %s", type(e).__name__, e)
        finally:
            self._ready.set()
        self._loop()

    def _loop(self) -> None:
        carry: Any = None
        while True:
            first = carry if carry is not None else self._q.get()
            carry = None
            if first is _STOP:
                return
            batch = [first]
            n = first.size
            if not first.streaming:
                deadline = time.monotonic() + self.max_wait
                while n < self.max_batch:
                    remaining = deadline - time.monotonic()
                    try:
                        nxt = self._q.get(timeout=remaining) if remaining > 0 else self._q.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is _STOP or nxt.streaming or nxt.key != first.key or n + nxt.size > self.max_batch:
                        carry = nxt
                        break
                    batch.append(nxt)
                    n += nxt.size
            with self._lock:
                self._waiting -= len(batch)
            try:
                self._run(batch)
            except BaseException as e:  # noqa: BLE001 - the worker must survive anything
                log.exception("batch failed outside the runner")
                for job in batch:
                    _fail(job, e)

    def _run(self, batch: list[_Job]) -> None:
        live = [job for job in batch if job.ticket.future.set_running_or_notify_cancel()]
        if not live:
            return
        if self.load_error is not None:
            for job in live:
                _fail(job, NotReadyError(f"the model failed to load: {self.load_error}"))
            return
        first = live[0]
        runner = self.runners[first.task]
        if first.streaming:
            self._run_stream(first, runner)
            return
        inputs = [x for job in live for x in job.inputs]
        start = time.perf_counter()
        try:
            outputs = list(runner(inputs, first.options))
            if len(outputs) != len(inputs):
                raise RuntimeError(f"runner {first.task!r} returned {len(outputs)} outputs for {len(inputs)} inputs")
        except Exception as e:  # noqa: BLE001 - routed to the requests
            self._report(first.task, len(inputs), time.perf_counter() - start)
            if len(live) == 1:
                _fail(first, e)
            else:
                for job in live:  # find the culprit: each job alone
                    self._run_alone(job, runner)
            return
        self._report(first.task, len(inputs), time.perf_counter() - start)
        offset = 0
        for job in live:
            job.ticket.future.set_result(outputs[offset : offset + job.size])
            offset += job.size

    def _run_alone(self, job: _Job, runner: Runner) -> None:
        start = time.perf_counter()
        try:
            outputs = list(runner(job.inputs, job.options))
            if len(outputs) != job.size:
                raise RuntimeError(f"runner {job.task!r} returned {len(outputs)} outputs for {job.size} inputs")
        except Exception as e:  # noqa: BLE001
            _fail(job, e)
        else:
            job.ticket.future.set_result(outputs)
        finally:
            self._report(job.task, job.size, time.perf_counter() - start)

    def _run_stream(self, job: _Job, runner: Runner) -> None:
        assert job.on_item is not None
        start = time.perf_counter()
        items: Iterator[Any] | None = None
        count = 0
        try:
            items = iter(runner(job.inputs, job.options))
            for item in items:
                job.on_item(item)
                count += 1
                if job.ticket.stop.is_set():
                    break
        except Exception as e:  # noqa: BLE001
            _fail(job, e)
        else:
            job.ticket.future.set_result(count)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
            self._report(job.task, job.size, time.perf_counter() - start)

    def _report(self, task: str, size: int, seconds: float) -> None:
        if self.on_batch is not None:
            try:
                self.on_batch(task, size, seconds)
            except Exception:  # noqa: BLE001 - metrics must not break serving
                log.exception("on_batch callback failed")


def _fail(job: _Job, error: BaseException) -> None:
    fut = job.ticket.future
    if not fut.done():
        try:
            fut.set_exception(error)
        except concurrent.futures.InvalidStateError:
            pass


def freeze_options(value: Any) -> Hashable:
    """A hashable, order-independent form of options (dicts, lists, scalars)."""
    if isinstance(value, dict):
        return tuple(sorted((k, freeze_options(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(freeze_options(v) for v in value)
    return value

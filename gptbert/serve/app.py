"""The HTTP server: a FastAPI app over one :class:`gptbert.api.LM`.

    from gptbert.api import LM
    from gptbert.serve.app import ServeSettings, create_app
    app = create_app(ServeSettings(), LM.load("runs/sst2"))   # then: uvicorn, or TestClient(app)

Layout, outside in:

* :class:`_Gate`, a plain ASGI middleware: request id (``X-Request-ID``), API key,
  body size limit (413), one JSON log line and the request metrics per request;
* the routes: ``/v1/*`` tasks (each checks the model's capability, the server's limits
  and counts input tokens, then awaits its job on the :class:`~gptbert.serve.batching.Batcher`),
  ``/healthz``, ``/readyz``, ``/metrics``, ``/v1/info`` and the page at ``/``;
* the :class:`~gptbert.serve.batching.Batcher`, whose single worker thread is the only
  code that calls the model.

Every error has the shape of :class:`~gptbert.serve.schemas.ErrorResponse`: a type, a
message and, for bad input, the fields at fault (``texts[3]``, ``max_new_tokens``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import logging
import pickle
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gptbert import __version__
from gptbert.api import CAPABILITIES, LM, CapabilityError
from gptbert.serve import ServeSettings
from gptbert.serve import schemas as S
from gptbert.serve.batching import Batcher, NotReadyError, QueueFullError, Ticket, freeze_options

log = logging.getLogger("gptbert.serve")
access_log = logging.getLogger("gptbert.serve.access")

SERVED = tuple(c for c in CAPABILITIES if c != "tag")
"""The :data:`gptbert.api.CAPABILITIES` this server has a route for (``tag`` has none yet)."""

PROTECTED_PREFIXES = ("/v1/", "/metrics")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_STREAM_END = object()


# -- errors ---------------------------------------------------------------------------------


class APIError(Exception):
    """An error answer: status, type, message, optional fields at fault and headers."""

    def __init__(self, status: int, type_: str, message: str, *, fields: Sequence[tuple[str, str]] = (),
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.type, self.message = status, type_, message
        self.fields = [S.FieldError(field=f, message=m) for f, m in fields]
        self.headers = headers or {}


def field_error(field: str, message: str) -> APIError:
    return APIError(422, "validation_error", f"{field}: {message}", fields=[(field, message)])


def _error_body(err: APIError, request_id: str | None) -> dict[str, Any]:
    info = S.ErrorInfo(type=err.type, message=err.message, fields=err.fields)
    return S.ErrorResponse(error=info, request_id=request_id).model_dump()


def _loc_name(loc: Sequence[Any]) -> str:
    """('body', 'texts', 3) -> 'texts[3]'; ('body', 17) for bad JSON -> 'body'."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    if not parts or (len(loc) == 2 and loc[0] == "body" and isinstance(loc[1], int)):
        return "body"
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _validation_error(exc: RequestValidationError) -> APIError:
    fields = []
    for e in exc.errors():
        name = _loc_name(e.get("loc", ()))
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        if e.get("type") == "json_invalid":
            msg = f"invalid JSON: {e.get('ctx', {}).get('error', msg)}"
        fields.append((name, msg))
    message = "; ".join(f"{f}: {m}" for f, m in fields) or "invalid request"
    return APIError(422, "validation_error", message, fields=fields)


# -- logging --------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        else:
            out["msg"] = record.getMessage()
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    """Send every log record (ours and uvicorn's) to stderr as JSON lines."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


# -- metrics --------------------------------------------------------------------------------


class Metrics:
    """Prometheus collectors in a registry of their own (one per app)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter("gptbert_requests", "HTTP requests by route and status code", ["route", "status"],
                                registry=r)
        self.latency = Histogram(
            "gptbert_request_duration_seconds", "Time from request to the end of the response", ["route"], registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
        )
        self.in_flight = Gauge("gptbert_requests_in_flight", "HTTP requests being answered", registry=r)
        self.batch_size = Histogram(
            "gptbert_batch_size", "Inputs per model call (dynamic batching)", ["task"], registry=r,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
        )
        self.batch_seconds = Histogram(
            "gptbert_batch_duration_seconds", "Time of one model call", ["task"], registry=r,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
        )
        self.queue_depth = Gauge("gptbert_queue_depth", "Requests waiting for the model", registry=r)
        self.input_tokens = Counter("gptbert_input_tokens", "Input tokens of accepted requests", ["task"], registry=r)
        self.generated_tokens = Counter("gptbert_generated_tokens", "Tokens generated (outputs re-tokenized)",
                                        registry=r)
        self.ready = Gauge("gptbert_model_ready", "1 when the model is loaded and requests are accepted", registry=r)

    def on_batch(self, task: str, size: int, seconds: float) -> None:
        self.batch_size.labels(task=task).observe(size)
        self.batch_seconds.labels(task=task).observe(seconds)


# -- the model behind the queue -------------------------------------------------------------


class Service:
    """The model, its batcher and the checks every task route shares."""

    def __init__(self, settings: ServeSettings, metrics: Metrics, lm: LM | None,
                 loader: Callable[[], LM] | None) -> None:
        if lm is None and loader is None:
            if settings.run_dir is None:
                raise ValueError("create_app: pass a loaded LM, a loader, or settings.run_dir")
            run_dir, precision, device = settings.run_dir, settings.precision, settings.device
            loader = lambda: LM.load(run_dir, device=device, precision=precision)  # noqa: E731
        self.settings = settings
        self.metrics = metrics
        self.lm: LM | None = lm
        self._loader = loader
        self._counter: Any = None  # the tokenizer copy of count_tokens
        self.batcher = Batcher(
            {"classify": self._classify, "embed": self._embed, "fill_mask": self._fill_mask,
             "answer": self._answer, "generate": self._generate, "generate_stream": self._generate_stream},
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
            config = lm.config
            raise APIError(
                404, "capability_not_supported",
                f"this model ({config.family}, head {config.head!r}) does not support '{capability}'; "
                f"it supports: {', '.join(sorted(c for c in caps if c in SERVED)) or 'nothing served here'}",
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
        if self._counter is None:
            self._counter = pickle.loads(pickle.dumps(self.lm.tokenizer))
        if len(texts) <= 8:  # a few texts: plain calls, no thread pool (cheaper, and kinder to a busy CPU)
            return [len(self._counter.encode(t, add_special_tokens=False, truncation=None).ids) for t in texts]
        enc = self._counter.encode_batch(list(texts), add_special_tokens=False, truncation=None, padding=None)
        return [len(ids) for ids in enc.ids]

    # -- request checks -----------------------------------------------------------------
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
    def _submit(self, task: str, inputs: list[Any], options: dict[str, Any], key: Hashable | None,
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
        ticket = self._submit(task, inputs, options, key)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(ticket.future), self.settings.timeout_s)
        except asyncio.TimeoutError:
            ticket.cancel()
            raise APIError(504, "timeout", f"no answer within {self.settings.timeout_s:g} s") from None
        except asyncio.CancelledError:
            ticket.cancel()
            raise
        except Exception as e:  # noqa: BLE001 - from the model: mapped to an answer
            raise _model_error(task, e) from None

    async def stream(self, request: Request, prompt: str, options: dict[str, Any]) -> Response:
        """Server-sent events of one generation: 'token' {text} ..., then 'done' {text, tokens} or 'error'."""
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[Any] = asyncio.Queue()
        deadline = loop.time() + self.settings.timeout_s
        ticket = self._submit("generate_stream", [prompt], options, key=object(),
                              on_item=lambda piece: loop.call_soon_threadsafe(pieces.put_nowait, piece))
        done = asyncio.wrap_future(ticket.future)
        done.add_done_callback(lambda _: pieces.put_nowait(_STREAM_END))
        try:  # wait for the first piece (or the end) so that errors still get a status code
            first = await asyncio.wait_for(pieces.get(), self.settings.timeout_s)
        except asyncio.TimeoutError:
            ticket.cancel()
            raise APIError(504, "timeout", f"generation did not start within {self.settings.timeout_s:g} s") from None
        except asyncio.CancelledError:
            ticket.cancel()
            raise
        if first is _STREAM_END and not done.cancelled() and done.exception() is not None:
            raise _model_error("generate", done.exception())  # type: ignore[arg-type]
        state = request.state

        async def events() -> AsyncIterator[bytes]:
            text = ""
            item = first
            try:
                while item is not _STREAM_END:
                    text += item
                    yield _sse("token", {"text": item})
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        raise asyncio.TimeoutError
                    item = await asyncio.wait_for(pieces.get(), remaining)
                error = done.exception() if not done.cancelled() else None
                n = (await anyio.to_thread.run_sync(self.count_tokens, [text]))[0] if text else 0
                n = min(n, options["max_new_tokens"])  # re-tokenizing can split odd bytes further
                self.metrics.generated_tokens.inc(n)
                state.generated_tokens = n
                if error is not None:
                    err = _model_error("generate", error)
                    state.stream_error = err.type
                    yield _sse("error", _error_body(err, getattr(state, "request_id", None)))
                else:
                    yield _sse("done", {"text": text, "tokens": n})
            except asyncio.TimeoutError:
                ticket.cancel()
                state.stream_error = "timeout"
                err = APIError(504, "timeout", f"generation took longer than {self.settings.timeout_s:g} s")
                yield _sse("error", _error_body(err, getattr(state, "request_id", None)))
            finally:
                ticket.cancel()  # client gone or finished: stop the worker after its current token

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    # -- runners: called on the worker thread only ---------------------------------------
    def _model(self) -> LM:
        assert self.lm is not None
        return self.lm

    def _classify(self, inputs: list[tuple[str, str | None]], options: dict[str, Any]) -> list[Any]:
        texts = [t for t, _ in inputs]
        pairs = [p for _, p in inputs] if inputs and inputs[0][1] is not None else None
        return self._model().classify(texts, pairs, batch_size=max(1, len(texts)))

    def _embed(self, inputs: list[str], options: dict[str, Any]) -> list[Any]:
        vectors = self._model().embed(inputs, batch_size=max(1, len(inputs)), **options)
        return [row.tolist() for row in vectors]

    def _fill_mask(self, inputs: list[str], options: dict[str, Any]) -> list[Any]:
        lm = self._model()
        return [lm.fill_mask(t, **options) for t in inputs]

    def _answer(self, inputs: list[tuple[str, str]], options: dict[str, Any]) -> list[Any]:
        lm = self._model()
        return [lm.answer(q, c) for q, c in inputs]

    def _generate(self, inputs: list[str], options: dict[str, Any]) -> list[Any]:
        texts = self._model().generate(inputs, **options)
        limit = options["max_new_tokens"]  # re-tokenizing can split odd bytes further than generated
        enc = self._model().tokenizer.encode_batch(texts, add_special_tokens=False, truncation=None, padding=None)
        return [{"text": t, "tokens": min(len(ids), limit)} for t, ids in zip(texts, enc.ids)]

    def _generate_stream(self, inputs: list[str], options: dict[str, Any]) -> Any:
        return self._model().stream(inputs[0], **options)


def _model_error(task: str, e: BaseException) -> APIError:
    """An answer for an exception raised by the model call."""
    if isinstance(e, APIError):
        return e
    if isinstance(e, CapabilityError):
        return APIError(404, "capability_not_supported", f"this model does not support '{task}'")
    if isinstance(e, NotReadyError):
        return APIError(503, "not_ready", str(e))
    if isinstance(e, (ImportError, NotImplementedError)):
        log.error("task %s is not available: %s: %s", task, type(e).__name__, e)
        return APIError(501, "not_implemented", f"'{task}' is not available in this installation")
    if isinstance(e, (ValueError, TypeError)):
        return APIError(422, "invalid_input", str(e).splitlines()[0][:500] if str(e) else type(e).__name__)
    log.error("model call failed (%s)", task, exc_info=(type(e), e, e.__traceback__))
    return APIError(500, "inference_error", f"the model failed on this request ({type(e).__name__})")


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


# -- the ASGI gate: ids, auth, body limit, logs, metrics ------------------------------------


async def _send_json(send: Send, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


class _Gate:
    """Outermost middleware of every HTTP request (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, settings: ServeSettings, metrics: Metrics,
                 known_paths: Callable[[], set[str]]) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.known_paths = known_paths
        self.api_key = settings.api_key.encode() if settings.api_key else None
        self._id_prefix = uuid.uuid4().hex[:16]  # request ids: a random prefix per app, then a counter
        self._ids = itertools.count(1)

    def _new_id(self) -> str:
        return f"{self._id_prefix}{next(self._ids):016x}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        given = headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.match(given) else self._new_id()
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        extra = {"x-request-id": request_id, "x-content-type-options": "nosniff"}

        async def send_wrapped(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k.encode(), v.encode()) for k, v in extra.items() if k.encode() not in names
                ]
            await send(message)

        async def reject(err: APIError) -> None:
            await _send_json(send_wrapped, err.status, _error_body(err, request_id), err.headers)

        self.metrics.in_flight.inc()
        try:
            path: str = scope.get("path", "")
            if self.api_key is not None and path.startswith(PROTECTED_PREFIXES) and not self._authorized(headers):
                await reject(APIError(
                    401, "unauthorized",
                    "missing or invalid API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
                    headers={"WWW-Authenticate": "Bearer"},
                ))
                return
            receive_body = await self._read_body(scope, receive, headers, reject)
            if receive_body is None:
                if status == 500:  # nothing sent: the client left while sending its body
                    status = 499
                return
            await self.app(scope, receive_body, send_wrapped)
        finally:
            self.metrics.in_flight.dec()
            seconds = time.perf_counter() - start
            route = self._route(scope)
            self.metrics.requests.labels(route=route, status=str(status)).inc()
            self.metrics.latency.labels(route=route).observe(seconds)
            fields: dict[str, Any] = {"event": "request", "request_id": request_id, "method": scope.get("method"),
                                      "route": route, "status": status, "latency_ms": round(seconds * 1000, 2)}
            fields.update(state.get("sizes", {}))
            for key in ("generated_tokens", "stream_error"):
                if key in state:
                    fields[key] = state[key]
            if self.settings.log_text and "log_text" in state:
                fields["text"] = state["log_text"]
            access_log.info("request", extra={"fields": fields})

    def _authorized(self, headers: dict[str, str]) -> bool:
        assert self.api_key is not None
        candidates = []
        auth = headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            candidates.append(token.strip())
        if headers.get("x-api-key"):
            candidates.append(headers["x-api-key"].strip())
        ok = False
        for c in candidates:  # compare every candidate (constant time each)
            ok |= hmac.compare_digest(c.encode("latin-1", "replace"), self.api_key)
        return ok

    async def _read_body(self, scope: Scope, receive: Receive, headers: dict[str, str],
                         reject: Callable[[APIError], Awaitable[None]]) -> Receive | None:
        """Read the whole body (at most max_body_bytes) and replay it; None after answering 413."""
        limit = self.settings.max_body_bytes
        too_large = APIError(413, "too_large", f"request body larger than {limit} bytes")
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await reject(too_large)
            return None
        if scope.get("method") in ("GET", "HEAD", "OPTIONS") and declared in (None, "0"):
            return receive
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                await reject(too_large)
                return None
            chunks.append(body)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if "json" in headers.get("content-type", "") and body:
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as e:
                await reject(APIError(422, "validation_error", f"body: invalid JSON: not UTF-8 text ({e.reason})",
                                      fields=[("body", "invalid JSON: not UTF-8 text")]))
                return None
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    def _route(self, scope: Scope) -> str:
        route = scope.get("route")
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return path
        raw = scope.get("path", "")
        return raw if raw in self.known_paths() else "unmatched"


# -- the page -------------------------------------------------------------------------------


def _page() -> tuple[str, str]:
    """The HTML of '/' and its Content-Security-Policy (inline script and style allowed by hash)."""
    html = resources.files("gptbert.serve").joinpath("static/index.html").read_text(encoding="utf-8")

    def hashes(tag: str) -> str:
        blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.S)
        return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in blocks)

    csp = (f"default-src 'none'; script-src {hashes('script')}; style-src {hashes('style')}; "
           "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return html, csp


# -- the app --------------------------------------------------------------------------------

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": S.ErrorResponse, "description": desc}
    for code, desc in [
        (401, "missing or wrong API key"),
        (404, "the model does not support this task"),
        (413, "request body too large"),
        (422, "invalid JSON, field or limit (the field is named)"),
        (503, "queue full or model not ready (see Retry-After)"),
        (504, "no answer within the request timeout"),
    ]
}


def create_app(settings: ServeSettings | None = None, lm: LM | None = None, *,
               loader: Callable[[], LM] | None = None) -> FastAPI:
    """The FastAPI app serving ``lm`` (or the model ``loader`` / ``settings.run_dir`` loads on the worker)."""
    settings = settings or ServeSettings()
    settings.validate()
    metrics = Metrics()
    svc = Service(settings, metrics, lm, loader)
    page_html, page_csp = _page()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc.start()
        try:
            yield
        finally:
            await svc.stop()

    app = FastAPI(
        title="gptbert serve",
        version=__version__,
        description="Classification, embeddings, fill-mask, extractive answers and generation from one gptbert "
                    "run directory. Requests are batched dynamically; errors share one JSON shape.",
        lifespan=lifespan,
    )
    app.state.service = svc
    app.state.metrics = metrics
    app.state.settings = settings

    # -- error answers ------------------------------------------------------------------
    def _answer(request: Request, err: APIError) -> JSONResponse:
        return JSONResponse(_error_body(err, getattr(request.state, "request_id", None)), status_code=err.status,
                            headers=err.headers)

    @app.exception_handler(APIError)
    async def on_api_error(request: Request, exc: APIError) -> JSONResponse:
        return _answer(request, exc)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _answer(request, _validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _answer(request, APIError(exc.status_code, kind, str(exc.detail), headers=dict(exc.headers or {})))

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=(type(exc), exc, exc.__traceback__))
        return _answer(request, APIError(500, "internal_error", "internal server error"))

    # -- service routes -----------------------------------------------------------------
    @app.get("/healthz", response_model=S.HealthResponse, tags=["service"], summary="the process is alive")
    async def healthz() -> S.HealthResponse:
        return S.HealthResponse()

    @app.get("/readyz", response_model=S.ReadyResponse, tags=["service"], summary="the model is loaded",
             responses={503: {"model": S.ReadyResponse}})
    async def readyz() -> JSONResponse:
        b = svc.batcher
        if b.closing:
            body = S.ReadyResponse(status="shutting_down")
        elif b.load_error is not None:
            body = S.ReadyResponse(status="failed", detail=f"{type(b.load_error).__name__}: {b.load_error}")
        elif not b.ready or svc.lm is None:
            body = S.ReadyResponse(status="loading")
        else:
            return JSONResponse(S.ReadyResponse(status="ready").model_dump(exclude_none=True))
        return JSONResponse(body.model_dump(exclude_none=True), status_code=503,
                            headers={"Retry-After": str(settings.retry_after_s)})

    @app.get("/metrics", tags=["service"], summary="Prometheus metrics", response_class=Response)
    async def metrics_route() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page_html, headers={"Content-Security-Policy": page_csp, "Cache-Control": "no-cache",
                                                "Referrer-Policy": "no-referrer"})

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/v1/info", response_model=S.InfoResponse, tags=["service"], summary="the model and the limits",
             responses={k: v for k, v in ERRORS.items() if k in (401, 503)})
    async def info() -> S.InfoResponse:
        lm_ = svc.loaded()
        caps = lm_.capabilities
        return S.InfoResponse(
            model=svc.model_name, family=lm_.family, head=lm_.config.head,
            capabilities=sorted(c for c in caps if c in SERVED), max_len=lm_.max_len,
            labels=list(lm_.labels) if "classify" in caps else None, mask_token=svc.mask_token,
            precision=getattr(lm_, "precision", settings.precision),
            limits=S.Limits(**{k: v for k, v in asdict(settings).items() if k in S.Limits.model_fields}),
            auth=settings.api_key is not None,
        )

    # -- task routes --------------------------------------------------------------------
    @app.post("/v1/classify", response_model=S.ClassifyResponse, tags=["tasks"], responses=ERRORS,
              summary="label texts (or text pairs)")
    async def classify(body: S.ClassifyRequest, request: Request) -> S.ClassifyResponse:
        svc.require("classify")
        svc.check_count("texts", body.texts)
        fields: dict[str, Sequence[str] | str] = {"texts": body.texts}
        if body.pairs is not None:
            if len(body.pairs) != len(body.texts):
                raise field_error("pairs", f"expected {len(body.texts)} pairs (one per text), got {len(body.pairs)}")
            fields["pairs"] = body.pairs
        await svc.check_inputs(request, "classify", fields)
        pairs = body.pairs if body.pairs is not None else [None] * len(body.texts)
        out = await svc.run("classify", list(zip(body.texts, pairs)), key=("classify", body.pairs is not None))
        return S.ClassifyResponse(results=[S.ClassifyResult(**r) for r in out])

    @app.post("/v1/embed", response_model=S.EmbedResponse, tags=["tasks"], responses=ERRORS,
              summary="sentence embeddings")
    async def embed(body: S.EmbedRequest, request: Request) -> S.EmbedResponse:
        svc.require("embed")
        svc.check_count("texts", body.texts)
        await svc.check_inputs(request, "embed", {"texts": body.texts})
        out = await svc.run("embed", list(body.texts), {"pooling": body.pooling, "normalize": body.normalize})
        return S.EmbedResponse(embeddings=out, dim=len(out[0]) if out else 0)

    @app.post("/v1/fill-mask", response_model=S.FillMaskResponse, tags=["tasks"], responses=ERRORS,
              summary="most likely tokens for the mask")
    async def fill_mask(body: S.FillMaskRequest, request: Request) -> S.FillMaskResponse:
        svc.require("fill_mask")
        svc.check_count("texts", body.texts)
        mask = svc.mask_token
        for i, t in enumerate(body.texts):
            if mask is None or mask not in t:
                raise field_error(f"texts[{i}]", f"must contain the mask token {mask or '[MASK]'!r}")
        await svc.check_inputs(request, "fill_mask", {"texts": body.texts})
        vocab = svc.lm.tokenizer.vocab_size if svc.lm is not None else body.top_k
        out = await svc.run("fill_mask", list(body.texts), {"top_k": min(body.top_k, vocab)})
        return S.FillMaskResponse(results=[[S.FillMaskCandidate(**c) for c in cands] for cands in out])

    @app.post("/v1/answer", response_model=S.AnswerResponse, tags=["tasks"],
              responses={**ERRORS, 501: {"model": S.ErrorResponse, "description": "question answering not installed"}},
              summary="answer a question from a context")
    async def answer(body: S.AnswerRequest, request: Request) -> S.AnswerResponse:
        svc.require("answer")
        await svc.check_inputs(request, "answer", {"question": body.question, "context": body.context})
        (out,) = await svc.run("answer", [(body.question, body.context)])
        return S.AnswerResponse(**out)

    @app.post(
        "/v1/generate", response_model=S.GenerateResponse, tags=["tasks"], summary="continue prompts",
        responses={**ERRORS, 200: {"description": "JSON, or with stream=true server-sent events",
                                   "content": {"text/event-stream": {"schema": {"type": "string"}}}}},
    )
    async def generate(body: S.GenerateRequest, request: Request) -> Any:
        svc.require("generate")
        svc.check_count("prompts", body.prompts)
        limit = settings.max_new_tokens
        max_new = body.max_new_tokens if body.max_new_tokens is not None else min(32, limit)
        if max_new > limit:
            raise field_error("max_new_tokens", f"at most {limit} on this server, got {max_new}")
        if body.stream and len(body.prompts) != 1:
            raise field_error("prompts", f"stream=true takes exactly one prompt, got {len(body.prompts)}")
        if body.stream and body.num_beams > 1:
            raise field_error("num_beams", "beam search cannot stream; use stream=false")
        await svc.check_inputs(request, "generate", {"prompts": body.prompts})
        options = {
            "max_new_tokens": max_new, "do_sample": body.do_sample, "temperature": body.temperature,
            "top_k": body.top_k, "top_p": body.top_p, "repetition_penalty": body.repetition_penalty,
            "num_beams": body.num_beams, "stop_strings": body.stop, "seed": body.seed,
        }
        if body.stream:
            return await svc.stream(request, body.prompts[0], options)
        key: Hashable = ("generate", freeze_options(options))
        if body.do_sample and body.seed is not None:
            key = object()  # a seeded sample must not depend on its batch mates
        out = await svc.run("generate", list(body.prompts), options, key=key)
        n = sum(r["tokens"] for r in out)
        metrics.generated_tokens.inc(n)
        request.state.generated_tokens = n
        return S.GenerateResponse(results=[S.GeneratedText(**r) for r in out])

    # -- OpenAPI: declare the API key schemes --------------------------------------------
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            if settings.api_key is not None:
                schema.setdefault("components", {})["securitySchemes"] = {
                    "bearer": {"type": "http", "scheme": "bearer"},
                    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                }
                for path, operations in schema.get("paths", {}).items():
                    if path.startswith(PROTECTED_PREFIXES):
                        for op in operations.values():
                            op["security"] = [{"bearer": []}, {"apiKey": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    known: set[str] = set()

    def known_paths() -> set[str]:
        if not known:
            known.update(getattr(r, "path", "") for r in app.routes)
        return known

    app.add_middleware(_Gate, settings=settings, metrics=metrics, known_paths=known_paths)
    return app

"""The gate every HTTP request passes first: a plain ASGI middleware.

In order: a request id (``X-Request-ID``, kept when the client sent a sane one), the API key
(401) on :data:`PROTECTED_PREFIXES`, the body size limit (413) and a UTF-8 check of JSON
bodies (422); after the answer, one JSON log line and the request metrics.
"""

from __future__ import annotations

import hmac
import itertools
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gptbert.serve.errors import APIError, error_body
from gptbert.serve.logs import access_log
from gptbert.serve.metrics import Metrics
from gptbert.serve.settings import ServeSettings

__all__ = ["PROTECTED_PREFIXES", "Gate", "api_key_ok", "read_body"]

PROTECTED_PREFIXES = ("/v1/", "/metrics")
"""Paths that need the API key when one is set."""
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


async def _send_json(send: Send, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


def api_key_ok(headers: dict[str, str], api_key: bytes) -> bool:
    """True when 'Authorization: Bearer KEY' or 'X-API-Key: KEY' carries ``api_key``."""
    candidates = []
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        candidates.append(token.strip())
    if headers.get("x-api-key"):
        candidates.append(headers["x-api-key"].strip())
    ok = False
    for c in candidates:  # compare every candidate (constant time each)
        ok |= hmac.compare_digest(c.encode("latin-1", "replace"), api_key)
    return ok


async def read_body(scope: Scope, receive: Receive, headers: dict[str, str], limit: int,
                    reject: Callable[[APIError], Awaitable[None]]) -> Receive | None:
    """Read the whole body (at most ``limit`` bytes) and replay it; None after answering 413
    (or 422 for a JSON body that is not UTF-8), or when the client left while sending it."""
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


class Gate:
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
            await _send_json(send_wrapped, err.status, error_body(err, request_id), err.headers)

        self.metrics.in_flight.inc()
        try:
            path: str = scope.get("path", "")
            locked = self.api_key is not None and path.startswith(PROTECTED_PREFIXES)
            if locked and not api_key_ok(headers, self.api_key):  # type: ignore[arg-type]
                await reject(APIError(
                    401, "unauthorized",
                    "missing or invalid API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
                    headers={"WWW-Authenticate": "Bearer"},
                ))
                return
            receive_body = await read_body(scope, receive, headers, self.settings.max_body_bytes, reject)
            if receive_body is None:
                if status == 500:  # nothing sent: the client left while sending its body
                    status = 499
                return
            await self.app(scope, receive_body, send_wrapped)
        finally:
            self.metrics.in_flight.dec()
            self._record(scope, state, status, time.perf_counter() - start)

    def _record(self, scope: Scope, state: dict[str, Any], status: int, seconds: float) -> None:
        """The request's metrics and its one log line (sizes, never the texts unless log_text)."""
        route = self._route(scope)
        self.metrics.requests.labels(route=route, status=str(status)).inc()
        self.metrics.latency.labels(route=route).observe(seconds)
        fields: dict[str, Any] = {"event": "request", "request_id": state["request_id"], "method": scope.get("method"),
                                  "route": route, "status": status, "latency_ms": round(seconds * 1000, 2)}
        fields.update(state.get("sizes", {}))
        for key in ("generated_tokens", "stream_error"):
            if key in state:
                fields[key] = state[key]
        if self.settings.log_text and "log_text" in state:
            fields["text"] = state["log_text"]
        access_log.info("request", extra={"fields": fields})

    def _route(self, scope: Scope) -> str:
        route = scope.get("route")
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return path
        raw = scope.get("path", "")
        return raw if raw in self.known_paths() else "unmatched"

"""The one error shape of the server and the handlers that produce it.

Every error has the shape of :class:`~gptbert.serve.schemas.ErrorResponse`: a type, a
message and, for bad input, the fields at fault (``texts[3]``, ``max_new_tokens``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gptbert.api import CapabilityError
from gptbert.serve import schemas as S
from gptbert.serve.batching import NotReadyError
from gptbert.serve.logs import log

__all__ = ["ERRORS", "APIError", "add_error_handlers", "error_body", "field_error", "model_error",
           "validation_error"]

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
"""The error answers of a task route, for the OpenAPI schema."""


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


def error_body(err: APIError, request_id: str | None) -> dict[str, Any]:
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


def validation_error(exc: RequestValidationError) -> APIError:
    fields = []
    for e in exc.errors():
        name = _loc_name(e.get("loc", ()))
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        if e.get("type") == "json_invalid":
            msg = f"invalid JSON: {e.get('ctx', {}).get('error', msg)}"
        fields.append((name, msg))
    message = "; ".join(f"{f}: {m}" for f, m in fields) or "invalid request"
    return APIError(422, "validation_error", message, fields=fields)


def model_error(task: str, e: BaseException) -> APIError:
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


def add_error_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` (ours, validation, routing, unexpected) in the one shape."""

    def answer(request: Request, err: APIError) -> JSONResponse:
        return JSONResponse(error_body(err, getattr(request.state, "request_id", None)), status_code=err.status,
                            headers=err.headers)

    @app.exception_handler(APIError)
    async def on_api_error(request: Request, exc: APIError) -> JSONResponse:
        return answer(request, exc)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return answer(request, validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return answer(request, APIError(exc.status_code, kind, str(exc.detail), headers=dict(exc.headers or {})))

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=(type(exc), exc, exc.__traceback__))
        return answer(request, APIError(500, "internal_error", "internal server error"))

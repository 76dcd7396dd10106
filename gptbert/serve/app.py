"""The HTTP server: a FastAPI app over one :class:`gptbert.api.LM`.

    from gptbert.api import LM
    from gptbert.serve import ServeSettings, create_app
    app = create_app(ServeSettings(), LM.load("runs/sst2"))   # then: uvicorn, or TestClient(app)

Layout, outside in:

* :class:`~gptbert.serve.middleware.Gate`, a plain ASGI middleware: request id
  (``X-Request-ID``), API key, body size limit (413), one JSON log line and the request
  metrics per request;
* the routes (:mod:`gptbert.serve.routes`): ``/v1/*`` tasks (each checks the model's
  capability, the server's limits and counts input tokens, then awaits its job on the
  :class:`~gptbert.serve.batching.Batcher`), ``/healthz``, ``/readyz``, ``/metrics``,
  ``/v1/info`` and the page at ``/``;
* the :class:`~gptbert.serve.service.Service`, whose batcher's single worker thread is the
  only code that calls the model.

Every error has the shape of :class:`~gptbert.serve.schemas.ErrorResponse`
(:mod:`gptbert.serve.errors`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from gptbert import __version__
from gptbert.api import LM
from gptbert.serve.errors import add_error_handlers
from gptbert.serve.metrics import Metrics
from gptbert.serve.middleware import PROTECTED_PREFIXES, Gate
from gptbert.serve.routes import CAPABILITIES, RUNNERS, include_routes
from gptbert.serve.service import Service
from gptbert.serve.settings import ServeSettings

__all__ = ["create_app"]


def create_app(settings: ServeSettings | None = None, lm: LM | None = None, *,
               loader: Callable[[], LM] | None = None) -> FastAPI:
    """The FastAPI app serving ``lm`` (or the model ``loader`` / ``settings.run_dir`` loads on the worker)."""
    settings = settings or ServeSettings()
    settings.validate()
    metrics = Metrics()
    svc = Service(settings, metrics, lm, loader, RUNNERS, CAPABILITIES)

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
    add_error_handlers(app)
    include_routes(app, svc)
    app.openapi = lambda: _openapi(app, settings)  # type: ignore[method-assign]

    known: set[str] = set()

    def known_paths() -> set[str]:
        if not known:
            known.update(getattr(r, "path", "") for r in app.routes)
        return known

    app.add_middleware(Gate, settings=settings, metrics=metrics, known_paths=known_paths)
    return app


def _openapi(app: FastAPI, settings: ServeSettings) -> dict[str, Any]:
    """The OpenAPI schema, declaring the API key schemes on the protected paths when a key is set."""
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

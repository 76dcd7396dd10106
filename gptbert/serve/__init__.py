"""HTTP serving of a run directory: ``gptbert serve RUN_DIR`` (FastAPI + uvicorn).

Outside in:

* :mod:`gptbert.serve.settings` - :class:`ServeSettings`, the limits and options;
* :mod:`gptbert.serve.app` - :func:`~gptbert.serve.app.create_app`, which puts the pieces together;
* :mod:`gptbert.serve.middleware` - the gate every request passes: request id, API key, body
  limit, one JSON log line and the request metrics;
* :mod:`gptbert.serve.errors` - the one error shape and the exception handlers;
* :mod:`gptbert.serve.routes` - one router per capability (classify, embed, fill-mask, answer,
  generate with its SSE stream), the status routes (health, ready, metrics, info) and the page;
* :mod:`gptbert.serve.service` - the model behind the queue and the checks every task route shares;
* :mod:`gptbert.serve.batching` - dynamic batching on one worker thread that owns the model;
* :mod:`gptbert.serve.metrics`, :mod:`gptbert.serve.logs`, :mod:`gptbert.serve.schemas` - Prometheus
  collectors, JSON log lines, request / response bodies.

The submodules need the ``serve`` extra (fastapi, uvicorn, prometheus-client); this
module imports none of them, so the CLI can read :class:`ServeSettings` cheaply.
"""

from __future__ import annotations

from typing import Any

from gptbert.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from gptbert.serve.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""The routes: one module per capability (classify, embed, fill_mask, answer, generate), each with
its ``CAPABILITY``, its ``RUNNERS`` (the model calls its batches make, on the worker thread) and
its ``router(svc)``; plus the status routes (health, ready, metrics, info) and the page.

To serve a new capability: write its module like :mod:`~gptbert.serve.routes.embed` (schemas in
:mod:`gptbert.serve.schemas`) and add it to :data:`TASK_ROUTES`.
"""

from __future__ import annotations

from fastapi import FastAPI

from gptbert.serve.routes import answer, classify, embed, fill_mask, generate, page, status
from gptbert.serve.service import ModelRunner, Service

__all__ = ["CAPABILITIES", "RUNNERS", "TASK_ROUTES", "include_routes"]

TASK_ROUTES = (classify, embed, fill_mask, answer, generate)
"""The capability routers, in the order of the OpenAPI schema."""

CAPABILITIES: tuple[str, ...] = tuple(m.CAPABILITY for m in TASK_ROUTES)
"""Capabilities this server exposes (``tag`` has no route yet)."""

RUNNERS: dict[str, ModelRunner] = {name: fn for m in TASK_ROUTES for name, fn in m.RUNNERS.items()}
"""Batcher task name -> model call, for :class:`~gptbert.serve.service.Service`."""


def include_routes(app: FastAPI, svc: Service) -> None:
    """Every route of the server on ``app``."""
    app.include_router(status.router(svc))
    app.include_router(page.router())
    for module in TASK_ROUTES:
        app.include_router(module.router(svc))

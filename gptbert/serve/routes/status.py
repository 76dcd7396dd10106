"""The status routes: ``/healthz`` (alive), ``/readyz`` (model loaded), ``/metrics`` and ``/v1/info``."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from gptbert.serve import schemas as S
from gptbert.serve.errors import ERRORS
from gptbert.serve.service import Service


def router(svc: Service) -> APIRouter:
    r = APIRouter()
    settings = svc.settings

    @r.get("/healthz", response_model=S.HealthResponse, tags=["service"], summary="the process is alive")
    async def healthz() -> S.HealthResponse:
        return S.HealthResponse()

    @r.get("/readyz", response_model=S.ReadyResponse, tags=["service"], summary="the model is loaded",
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

    @r.get("/metrics", tags=["service"], summary="Prometheus metrics", response_class=Response)
    async def metrics_route() -> Response:
        return Response(svc.metrics.exposition(), media_type=svc.metrics.content_type)

    @r.get("/v1/info", response_model=S.InfoResponse, tags=["service"], summary="the model and the limits",
           responses={k: v for k, v in ERRORS.items() if k in (401, 503)})
    async def info() -> S.InfoResponse:
        lm_ = svc.loaded()
        caps = lm_.capabilities
        return S.InfoResponse(
            model=svc.model_name, family=lm_.family, head=lm_.config.head,
            capabilities=sorted(c for c in caps if c in svc.capabilities), max_len=lm_.max_len,
            labels=list(lm_.labels) if "classify" in caps else None, mask_token=svc.mask_token,
            precision=getattr(lm_, "precision", settings.precision), engine=_engine(getattr(lm_, "choice", None)),
            limits=S.Limits(**{k: v for k, v in asdict(settings).items() if k in S.Limits.model_fields}),
            auth=settings.api_key is not None,
        )

    return r


def _engine(choice: dict | None) -> S.EngineInfo | None:
    return None if choice is None else S.EngineInfo(**{k: v for k, v in choice.items() if k in S.EngineInfo.model_fields})

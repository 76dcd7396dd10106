"""``POST /v1/embed``: sentence embeddings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from gptbert.api import LM
from gptbert.serve import schemas as S
from gptbert.serve.errors import ERRORS
from gptbert.serve.service import Service

CAPABILITY = "embed"


def run_embed(lm: LM, inputs: list[str], options: dict[str, Any]) -> list[Any]:
    vectors = lm.embed(inputs, batch_size=max(1, len(inputs)), **options)  # (N, C)
    return [row.tolist() for row in vectors]


RUNNERS = {"embed": run_embed}


def router(svc: Service) -> APIRouter:
    r = APIRouter()

    @r.post("/v1/embed", response_model=S.EmbedResponse, tags=["tasks"], responses=ERRORS,
            summary="sentence embeddings")
    async def embed(body: S.EmbedRequest, request: Request) -> S.EmbedResponse:
        svc.admit("embed", "texts", body.texts)
        await svc.check_inputs(request, "embed", {"texts": body.texts})
        out = await svc.run("embed", list(body.texts), {"pooling": body.pooling, "normalize": body.normalize})
        return S.EmbedResponse(embeddings=out, dim=len(out[0]) if out else 0)

    return r

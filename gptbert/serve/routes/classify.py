"""``POST /v1/classify``: label texts (or text pairs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request

from gptbert.api import LM
from gptbert.serve import schemas as S
from gptbert.serve.errors import ERRORS, field_error
from gptbert.serve.service import Service

CAPABILITY = "classify"


def run_classify(lm: LM, inputs: list[tuple[str, str | None]], options: dict[str, Any]) -> list[Any]:
    texts = [t for t, _ in inputs]
    pairs = [p for _, p in inputs] if inputs and inputs[0][1] is not None else None
    return lm.classify(texts, pairs, batch_size=max(1, len(texts)))


RUNNERS = {"classify": run_classify}


def router(svc: Service) -> APIRouter:
    r = APIRouter()

    @r.post("/v1/classify", response_model=S.ClassifyResponse, tags=["tasks"], responses=ERRORS,
            summary="label texts (or text pairs)")
    async def classify(body: S.ClassifyRequest, request: Request) -> S.ClassifyResponse:
        svc.admit("classify", "texts", body.texts)
        fields: dict[str, Sequence[str] | str] = {"texts": body.texts}
        if body.pairs is not None:
            if len(body.pairs) != len(body.texts):
                raise field_error("pairs", f"expected {len(body.texts)} pairs (one per text), got {len(body.pairs)}")
            fields["pairs"] = body.pairs
        await svc.check_inputs(request, "classify", fields)
        pairs = body.pairs if body.pairs is not None else [None] * len(body.texts)
        out = await svc.run("classify", list(zip(body.texts, pairs)), key=("classify", body.pairs is not None))
        return S.ClassifyResponse(results=[S.ClassifyResult(**r) for r in out])

    return r

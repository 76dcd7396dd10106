"""``POST /v1/fill-mask``: the most likely tokens for the mask."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from gptbert.api import LM
from gptbert.serve import schemas as S
from gptbert.serve.errors import ERRORS, field_error
from gptbert.serve.service import Service

CAPABILITY = "fill_mask"


def run_fill_mask(lm: LM, inputs: list[str], options: dict[str, Any]) -> list[Any]:
    return [lm.fill_mask(t, **options) for t in inputs]


RUNNERS = {"fill_mask": run_fill_mask}


def router(svc: Service) -> APIRouter:
    r = APIRouter()

    @r.post("/v1/fill-mask", response_model=S.FillMaskResponse, tags=["tasks"], responses=ERRORS,
            summary="most likely tokens for the mask")
    async def fill_mask(body: S.FillMaskRequest, request: Request) -> S.FillMaskResponse:
        svc.admit("fill_mask", "texts", body.texts)
        mask = svc.mask_token
        for i, t in enumerate(body.texts):
            if mask is None or mask not in t:
                raise field_error(f"texts[{i}]", f"must contain the mask token {mask or '[MASK]'!r}")
        await svc.check_inputs(request, "fill_mask", {"texts": body.texts})
        vocab = svc.lm.tokenizer.vocab_size if svc.lm is not None else body.top_k
        out = await svc.run("fill_mask", list(body.texts), {"top_k": min(body.top_k, vocab)})
        return S.FillMaskResponse(results=[[S.FillMaskCandidate(**c) for c in cands] for cands in out])

    return r

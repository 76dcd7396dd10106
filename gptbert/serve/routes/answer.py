"""``POST /v1/answer``: answer a question from a context (extractive)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from gptbert.api import LM
from gptbert.serve import schemas as S
from gptbert.serve.errors import ERRORS
from gptbert.serve.service import Service

CAPABILITY = "answer"


def run_answer(lm: LM, inputs: list[tuple[str, str]], options: dict[str, Any]) -> list[Any]:
    return [lm.answer(q, c) for q, c in inputs]


RUNNERS = {"answer": run_answer}


def router(svc: Service) -> APIRouter:
    r = APIRouter()

    @r.post("/v1/answer", response_model=S.AnswerResponse, tags=["tasks"],
            responses={**ERRORS, 501: {"model": S.ErrorResponse, "description": "question answering not installed"}},
            summary="answer a question from a context")
    async def answer(body: S.AnswerRequest, request: Request) -> S.AnswerResponse:
        svc.require("answer")
        await svc.check_inputs(request, "answer", {"question": body.question, "context": body.context})
        (out,) = await svc.run("answer", [(body.question, body.context)])
        return S.AnswerResponse(**out)

    return r

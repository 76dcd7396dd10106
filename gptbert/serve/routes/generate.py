"""``POST /v1/generate``: continue prompts, as JSON or (``stream=true``) as server-sent events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Hashable
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from gptbert.api import LM
from gptbert.serve import schemas as S
from gptbert.serve.batching import freeze_options
from gptbert.serve.errors import ERRORS, APIError, error_body, field_error, model_error
from gptbert.serve.service import Service

CAPABILITY = "generate"

_STREAM_END = object()


def run_generate(lm: LM, inputs: list[str], options: dict[str, Any]) -> list[Any]:
    texts = lm.generate(inputs, **options)
    limit = options["max_new_tokens"]  # re-tokenizing can split odd bytes further than generated
    enc = lm.tokenizer.encode_batch(texts, add_special_tokens=False, truncation=None, padding=None)
    return [{"text": t, "tokens": min(len(ids), limit)} for t, ids in zip(texts, enc.ids)]


def run_generate_stream(lm: LM, inputs: list[str], options: dict[str, Any]) -> Any:
    return lm.stream(inputs[0], **options)


RUNNERS = {"generate": run_generate, "generate_stream": run_generate_stream}


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def stream(svc: Service, request: Request, prompt: str, options: dict[str, Any]) -> Response:
    """Server-sent events of one generation: 'token' {text} ..., then 'done' {text, tokens} or 'error'."""
    timeout_s = svc.settings.timeout_s
    loop = asyncio.get_running_loop()
    pieces: asyncio.Queue[Any] = asyncio.Queue()
    deadline = loop.time() + timeout_s
    ticket = svc.submit("generate_stream", [prompt], options, key=object(),
                        on_item=lambda piece: loop.call_soon_threadsafe(pieces.put_nowait, piece))
    done = asyncio.wrap_future(ticket.future)
    done.add_done_callback(lambda _: pieces.put_nowait(_STREAM_END))
    # wait for the first piece (or the end) so that errors still get a status code
    first = await svc.wait(ticket, pieces.get(), f"generation did not start within {timeout_s:g} s")
    if first is _STREAM_END and not done.cancelled() and done.exception() is not None:
        raise model_error("generate", done.exception())  # type: ignore[arg-type]
    state = request.state

    async def events() -> AsyncIterator[bytes]:
        text = ""
        item = first
        try:
            while item is not _STREAM_END:
                text += item
                yield _sse("token", {"text": item})
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise asyncio.TimeoutError
                item = await asyncio.wait_for(pieces.get(), remaining)
            error = done.exception() if not done.cancelled() else None
            n = (await anyio.to_thread.run_sync(svc.count_tokens, [text]))[0] if text else 0
            n = min(n, options["max_new_tokens"])  # re-tokenizing can split odd bytes further
            svc.metrics.generated_tokens.inc(n)
            state.generated_tokens = n
            if error is not None:
                err = model_error("generate", error)
                state.stream_error = err.type
                yield _sse("error", error_body(err, getattr(state, "request_id", None)))
            else:
                yield _sse("done", {"text": text, "tokens": n})
        except asyncio.TimeoutError:
            ticket.cancel()
            state.stream_error = "timeout"
            err = APIError(504, "timeout", f"generation took longer than {timeout_s:g} s")
            yield _sse("error", error_body(err, getattr(state, "request_id", None)))
        finally:
            ticket.cancel()  # client gone or finished: stop the worker after its current token

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def router(svc: Service) -> APIRouter:
    r = APIRouter()
    settings = svc.settings

    @r.post(
        "/v1/generate", response_model=S.GenerateResponse, tags=["tasks"], summary="continue prompts",
        responses={**ERRORS, 200: {"description": "JSON, or with stream=true server-sent events",
                                   "content": {"text/event-stream": {"schema": {"type": "string"}}}}},
    )
    async def generate(body: S.GenerateRequest, request: Request) -> Any:
        svc.admit("generate", "prompts", body.prompts)
        limit = settings.max_new_tokens
        max_new = body.max_new_tokens if body.max_new_tokens is not None else min(32, limit)
        if max_new > limit:
            raise field_error("max_new_tokens", f"at most {limit} on this server, got {max_new}")
        if body.stream and len(body.prompts) != 1:
            raise field_error("prompts", f"stream=true takes exactly one prompt, got {len(body.prompts)}")
        if body.stream and body.num_beams > 1:
            raise field_error("num_beams", "beam search cannot stream; use stream=false")
        if body.stream and body.num_candidates is not None:
            raise field_error("num_candidates", "reranking picks among whole candidates; use stream=false")
        await svc.check_inputs(request, "generate", {"prompts": body.prompts})
        options = {
            "max_new_tokens": max_new, "do_sample": body.do_sample, "temperature": body.temperature,
            "top_k": body.top_k, "top_p": body.top_p, "repetition_penalty": body.repetition_penalty,
            "num_beams": body.num_beams, "stop_strings": body.stop, "seed": body.seed,
        }
        if body.num_candidates is not None:
            options["num_candidates"] = body.num_candidates
        if body.stream:
            return await stream(svc, request, body.prompts[0], options)
        key: Hashable = ("generate", freeze_options(options))
        if body.do_sample and body.seed is not None:
            key = object()  # a seeded sample must not depend on its batch mates
        out = await svc.run("generate", list(body.prompts), options, key=key)
        n = sum(r["tokens"] for r in out)
        svc.metrics.generated_tokens.inc(n)
        request.state.generated_tokens = n
        return S.GenerateResponse(results=[S.GeneratedText(**r) for r in out])

    return r

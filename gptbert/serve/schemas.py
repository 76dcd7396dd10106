"""Request and response bodies of the HTTP API (pydantic v2).

Every request model forbids unknown fields, so a misspelt option is a 422 naming it
rather than silently ignored. Limits that depend on the server's flags (texts per
request, input tokens, ``max_new_tokens``) are checked by the route, not here, and
reported in the same error shape.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


_SURROGATE = re.compile("[\ud800-\udfff]")


def _unicode(value: str) -> str:
    bad = _SURROGATE.search(value)
    if bad is not None:  # JSON may escape one ("\ud800"); it is not a character and cannot be encoded
        raise ValueError(f"holds a lone surrogate (U+{ord(bad.group()):04X}) at character {bad.start()}: "
                         "not valid Unicode text")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only whitespace")
    return _unicode(value)


Text = Annotated[str, AfterValidator(_not_blank)]
"""A non-blank string of valid Unicode text (no lone surrogates)."""

_REQUEST = ConfigDict(extra="forbid", allow_inf_nan=False)


# -- errors -------------------------------------------------------------------------------


class FieldError(BaseModel):
    field: str = Field(description="where in the request: 'texts[2]', 'max_new_tokens', 'body', ...")
    message: str


class ErrorInfo(BaseModel):
    type: str = Field(description="machine-readable kind: validation_error, too_large, queue_full, timeout, ...")
    message: str
    fields: list[FieldError] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    error: ErrorInfo
    request_id: str | None = None


# -- service ------------------------------------------------------------------------------


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyResponse(BaseModel):
    status: Literal["ready", "loading", "failed", "shutting_down"]
    detail: str | None = None


class Limits(BaseModel):
    max_batch: int
    max_wait_ms: float
    max_body_bytes: int
    max_texts: int
    max_input_tokens: int
    max_new_tokens: int
    queue_size: int
    timeout_s: float


class EngineInfo(BaseModel):
    engine: str = Field(description="torch, or onnxruntime for classify / tag / fill-mask")
    precision: str = Field(description="PyTorch's precision (the ONNX graph is fp32)")
    reason: str = Field(description="given, or what --precision auto measured")
    torch_ms: float | None = Field(default=None, description="--precision auto: PyTorch's batch-1 median")
    onnx_ms: float | None = Field(default=None, description="--precision auto: ONNX Runtime's batch-1 median")


class InfoResponse(BaseModel):
    model: str = Field(description="name of the run directory")
    family: str
    head: str | None
    capabilities: list[str] = Field(description="subset of classify, embed, fill_mask, generate, answer")
    max_len: int = Field(description="tokens the model reads per input (longer inputs are truncated)")
    labels: list[str] | None = None
    mask_token: str | None = None
    precision: str
    engine: EngineInfo | None = Field(default=None, description="what runs the model and why")
    limits: Limits
    auth: bool = Field(description="whether /v1 routes need an API key")


# -- classify -----------------------------------------------------------------------------


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(**_REQUEST, json_schema_extra={"examples": [{"texts": ["a gripping, funny film"]}]})

    texts: list[Text] = Field(min_length=1, description="texts to label")
    pairs: list[Text] | None = Field(
        default=None, description="second text of each pair (sentence-pair tasks); as many as texts"
    )


class ClassifyResult(BaseModel):
    label: str
    score: float = Field(description="probability of the label")
    scores: dict[str, float] = Field(description="probability of every label")


class ClassifyResponse(BaseModel):
    results: list[ClassifyResult]


# -- embed --------------------------------------------------------------------------------


class EmbedRequest(BaseModel):
    model_config = ConfigDict(**_REQUEST, json_schema_extra={"examples": [{"texts": ["a sentence to embed"]}]})

    texts: list[Text] = Field(min_length=1)
    pooling: Literal["mean", "cls"] = Field(default="mean",
                                            description="mean of the last hidden states or the first token")
    normalize: bool = Field(default=True, description="scale each vector to unit length")


class EmbedResponse(BaseModel):
    embeddings: list[list[float]]
    dim: int


# -- fill-mask ----------------------------------------------------------------------------


class FillMaskRequest(BaseModel):
    model_config = ConfigDict(
        **_REQUEST, json_schema_extra={"examples": [{"texts": ["the film was [MASK] ."], "top_k": 5}]}
    )

    texts: list[Text] = Field(min_length=1, description="texts that each contain the mask token (see GET /v1/info)")
    top_k: int = Field(default=5, ge=1, le=100)


class FillMaskCandidate(BaseModel):
    token: str
    token_id: int
    score: float
    sequence: str = Field(description="the text with the first mask replaced by the token")


class FillMaskResponse(BaseModel):
    results: list[list[FillMaskCandidate]] = Field(description="top-k candidates for each text, best first")


# -- answer -------------------------------------------------------------------------------


class AnswerRequest(BaseModel):
    model_config = ConfigDict(
        **_REQUEST,
        json_schema_extra={"examples": [{"question": "Who wrote it?", "context": "It was written by Ada in 1843."}]},
    )

    question: Text
    context: Text


class AnswerResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    answer: str
    score: float | None = None
    start: int | None = Field(default=None, description="character offset of the answer in the context")
    end: int | None = None


# -- generate -----------------------------------------------------------------------------


class GenerateRequest(BaseModel):
    model_config = ConfigDict(
        **_REQUEST, json_schema_extra={"examples": [{"prompts": ["Once upon a time"], "max_new_tokens": 20}]}
    )

    prompts: list[Text] = Field(min_length=1, description="prompts to continue; exactly one with stream=true")
    max_new_tokens: int | None = Field(default=None, ge=1,
                                       description="default: the smaller of 32 and the server's limit")
    do_sample: bool = False
    temperature: float = Field(default=1.0, ge=0.0, le=100.0)
    top_k: int | None = Field(default=None, ge=0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    repetition_penalty: float = Field(default=1.0, gt=0.0, le=100.0)
    num_beams: int = Field(default=1, ge=1, le=8)
    stop: list[Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_unicode)]] | None = Field(
        default=None, max_length=8, description="end the text before any of these strings"
    )
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1, description="seed of the sampler (do_sample)")
    stream: bool = Field(
        default=False,
        description="answer with server-sent events: 'token' events {text}, then 'done' {text, tokens} or 'error'",
    )
    num_candidates: int | None = Field(
        default=None, ge=1, le=32,
        description="a served rerank run: candidates per prompt to rerank (default: the run's own)",
    )


class GeneratedText(BaseModel):
    text: str
    tokens: int = Field(description="new tokens (the text re-tokenized)")


class GenerateResponse(BaseModel):
    results: list[GeneratedText]

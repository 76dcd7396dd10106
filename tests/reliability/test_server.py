"""Hostile requests to every route of the HTTP API (in-process, FastAPI TestClient): each gets a
4xx in the one error shape naming the field, never a 500, and the server keeps answering."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gptbert.api import LM
from gptbert.serve import ServeSettings
from gptbert.serve.app import create_app

LONG = " ".join(["word"] * 3000)
SETTINGS = {"max_body_bytes": 64_000, "max_texts": 8, "max_input_tokens": 64, "max_new_tokens": 16}

# (id, run, method, path, raw body (str: sent as UTF-8; bytes: as given), status, field named in the error)
ROUTE_CASES: list[tuple[str, str, str, str, str | bytes | None, int, str]] = [
    ("classify-lone-surrogate", "cls", "POST", "/v1/classify", '{"texts": ["\\ud800 x"]}', 422, "texts[0]"),
    ("classify-low-surrogate", "cls", "POST", "/v1/classify", '{"texts": ["ok", "a \\udfff"]}', 422, "texts[1]"),
    ("classify-invalid-json", "cls", "POST", "/v1/classify", '{"texts": [', 422, "body"),
    ("classify-not-utf8", "cls", "POST", "/v1/classify", b'{"texts": ["\xff\xfe"]}', 422, "body"),
    ("classify-array-body", "cls", "POST", "/v1/classify", "[1, 2]", 422, "body"),
    ("classify-empty-body", "cls", "POST", "/v1/classify", "", 422, "body"),
    ("classify-texts-string", "cls", "POST", "/v1/classify", '{"texts": "hello"}', 422, "texts"),
    ("classify-texts-empty", "cls", "POST", "/v1/classify", '{"texts": []}', 422, "texts"),
    ("classify-text-blank", "cls", "POST", "/v1/classify", '{"texts": ["   "]}', 422, "texts[0]"),
    ("classify-text-number", "cls", "POST", "/v1/classify", '{"texts": [1]}', 422, "texts[0]"),
    ("classify-text-null", "cls", "POST", "/v1/classify", '{"texts": [null]}', 422, "texts[0]"),
    ("classify-unknown-field", "cls", "POST", "/v1/classify", '{"texts": ["a"], "bogus": 1}', 422, "bogus"),
    ("classify-missing-texts", "cls", "POST", "/v1/classify", "{}", 422, "texts"),
    ("classify-too-many-texts", "cls", "POST", "/v1/classify", json.dumps({"texts": ["a"] * 9}), 422, "texts"),
    ("classify-text-too-long", "cls", "POST", "/v1/classify", json.dumps({"texts": [LONG]}), 422, "texts[0]"),
    ("classify-pairs-mismatch", "cls", "POST", "/v1/classify", '{"texts": ["a", "b"], "pairs": ["c"]}', 422,
     "pairs"),
    ("classify-body-too-large", "cls", "POST", "/v1/classify", json.dumps({"texts": ["a" * 70_000]}), 413, ""),
    ("classify-get", "cls", "GET", "/v1/classify", None, 405, ""),
    ("classify-on-gpt", "gpt", "POST", "/v1/classify", '{"texts": ["a"]}', 404, ""),
    ("embed-lone-surrogate", "cls", "POST", "/v1/embed", '{"texts": ["\\udc80"]}', 422, "texts[0]"),
    ("embed-bad-pooling", "cls", "POST", "/v1/embed", '{"texts": ["a"], "pooling": "max"}', 422, "pooling"),
    ("embed-normalize-string", "cls", "POST", "/v1/embed", '{"texts": ["a"], "normalize": "maybe"}', 422, "normalize"),
    ("fill-mask-on-classifier", "cls", "POST", "/v1/fill-mask", '{"texts": ["the [MASK] film"]}', 404, ""),
    ("fill-mask-no-mask", "mlm", "POST", "/v1/fill-mask", '{"texts": ["the film"]}', 422, "texts[0]"),
    ("fill-mask-surrogate", "mlm", "POST", "/v1/fill-mask", '{"texts": ["the [MASK] \\ud83d"]}', 422, "texts[0]"),
    ("fill-mask-top-k-zero", "mlm", "POST", "/v1/fill-mask", '{"texts": ["the [MASK] film"], "top_k": 0}', 422,
     "top_k"),
    ("answer-on-classifier", "cls", "POST", "/v1/answer", '{"question": "why", "context": "because"}', 404, ""),
    ("answer-surrogate", "cls", "POST", "/v1/answer", '{"question": "\\ud800", "context": "because"}', 422,
     "question"),
    ("answer-missing-context", "cls", "POST", "/v1/answer", '{"question": "why"}', 422, "context"),
    ("generate-surrogate", "gpt", "POST", "/v1/generate", '{"prompts": ["once \\ud800"]}', 422, "prompts[0]"),
    ("generate-stop-surrogate", "gpt", "POST", "/v1/generate", '{"prompts": ["once"], "stop": ["\\udfff"]}', 422,
     "stop[0]"),
    ("generate-max-new-tokens-negative", "gpt", "POST", "/v1/generate", '{"prompts": ["a"], "max_new_tokens": -1}',
     422, "max_new_tokens"),
    ("generate-max-new-tokens-huge", "gpt", "POST", "/v1/generate", '{"prompts": ["a"], "max_new_tokens": 1000000}',
     422, "max_new_tokens"),
    ("generate-temperature-negative", "gpt", "POST", "/v1/generate", '{"prompts": ["a"], "temperature": -1}', 422,
     "temperature"),
    ("generate-temperature-nan", "gpt", "POST", "/v1/generate", '{"prompts": ["a"], "temperature": NaN}', 422,
     "temperature"),
    ("generate-top-p-2", "gpt", "POST", "/v1/generate", '{"prompts": ["a"], "top_p": 2}', 422, "top_p"),
    ("generate-beams-100", "gpt", "POST", "/v1/generate", '{"prompts": ["a"], "num_beams": 100}', 422, "num_beams"),
    ("generate-seed-negative", "gpt", "POST", "/v1/generate", '{"prompts": ["a"], "seed": -1}', 422, "seed"),
    ("generate-stream-two-prompts", "gpt", "POST", "/v1/generate", '{"prompts": ["a", "b"], "stream": true}', 422,
     "prompts"),
    ("generate-on-classifier", "cls", "POST", "/v1/generate", '{"prompts": ["a"]}', 404, ""),
    ("unknown-route", "cls", "GET", "/v1/nope", None, 404, ""),
    ("healthz-post", "cls", "POST", "/healthz", "{}", 405, ""),
]


@pytest.fixture(scope="module")
def clients(runs: dict[str, Path]) -> Iterator[dict[str, TestClient]]:
    out: dict[str, TestClient] = {}
    opened = []
    for name in ("cls", "mlm", "gpt"):
        client = TestClient(create_app(ServeSettings(**SETTINGS), LM.load(runs[name])), raise_server_exceptions=False)
        opened.append(client.__enter__())
        out[name] = client
    yield out
    for client in opened:
        client.__exit__(None, None, None)


def _good(client: TestClient, run: str) -> Any:
    path, body = {"cls": ("/v1/classify", {"texts": ["a fine film"]}), "mlm": ("/v1/embed", {"texts": ["a film"]}),
                  "gpt": ("/v1/generate", {"prompts": ["once"], "max_new_tokens": 2})}[run]
    return client.post(path, json=body)


@pytest.mark.parametrize("case", ROUTE_CASES, ids=[c[0] for c in ROUTE_CASES])
def test_route_case(case: tuple[str, str, str, str, str | bytes | None, int, str],
                    clients: dict[str, TestClient]) -> None:
    cid, run, method, path, body, status, field = case
    client = clients[run]
    content = body.encode("utf-8") if isinstance(body, str) else body
    r = client.request(method, path, content=content, headers={"content-type": "application/json"})
    assert r.status_code == status, f"{cid}: {r.status_code} {r.text[:500]}"
    error = r.json()["error"]
    assert error["message"] and "\n" not in error["message"], f"{cid}: {error}"
    if field:
        names = [f["field"] for f in error.get("fields", [])]
        assert field in names, f"{cid}: fields {names}, expected {field!r} ({error['message']})"
    assert _good(client, run).status_code == 200, f"{cid}: the server stopped answering after it"

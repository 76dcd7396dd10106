"""The HTTP API in-process (FastAPI TestClient): routes, errors, limits, auth, metrics, logs, batching."""

from __future__ import annotations

import concurrent.futures
import importlib.util
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gptbert.api import LM
from gptbert.serve import ServeSettings
from gptbert.serve.app import create_app
from gptbert.serve.batching import Batcher, NotReadyError, QueueFullError
from gptbert.serve.logs import JsonFormatter
from tests.serve import LABELS, classify_run, gpt_qa_run, gpt_run, mlm_run

SECRET = "zebras quietly juggle marmalade"


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def classify_lm(shared_data: Path) -> LM:
    return LM.load(classify_run(shared_data))


@pytest.fixture(scope="module")
def gpt_lm(shared_data: Path) -> LM:
    return LM.load(gpt_run(shared_data))


@pytest.fixture(scope="module")
def gpt_qa_lm(shared_data: Path) -> LM:
    return LM.load(gpt_qa_run(shared_data))


@pytest.fixture(scope="module")
def mlm_lm(shared_data: Path) -> LM:
    return LM.load(mlm_run(shared_data))


@contextmanager
def serve(lm: Any, **settings: Any) -> Iterator[TestClient]:
    app = create_app(ServeSettings(**settings), lm)
    with TestClient(app, raise_server_exceptions=True) as client:
        yield client


class GatedLM:
    """A real LM whose task calls wait for ``gate`` (and set ``entered``): a slow model on demand."""

    def __init__(self, lm: LM, fail: BaseException | None = None) -> None:
        self._lm = lm
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.calls: list[list[str]] = []
        self.fail = fail

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lm, name)

    def classify(self, texts: list[str], pairs: Any = None, **kw: Any) -> list[dict[str, Any]]:
        self.calls.append(list(texts))
        self.entered.set()
        assert self.gate.wait(30), "test gate never opened"
        if self.fail is not None:
            raise self.fail
        return self._lm.classify(texts, pairs, **kw)


def wait_for(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def error_fields(response: Any) -> list[str]:
    body = response.json()
    assert set(body) == {"error", "request_id"}, body
    return [f["field"] for f in body["error"]["fields"]]


def metric_value(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus exposition (0 when absent)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(m.group(3))
    return 0.0


# -- service routes --------------------------------------------------------------------------


def test_health_ready_info_openapi_and_page(classify_lm: LM) -> None:
    with serve(classify_lm) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json() == {"status": "ready"}
        info = client.get("/v1/info").json()
        assert info["capabilities"] == ["classify", "embed"]
        assert info["labels"] == LABELS and info["family"] == "bert" and info["limits"]["max_batch"] == 32

        spec = client.get("/openapi.json").json()
        for path in ("/v1/classify", "/v1/embed", "/v1/fill-mask", "/v1/answer", "/v1/generate"):
            assert "post" in spec["paths"][path], path
        assert "ClassifyRequest" in spec["components"]["schemas"]
        assert "ErrorResponse" in spec["components"]["schemas"]
        assert client.get("/docs").status_code == 200

        page = client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert 'id="text"' in page.text and "/v1/classify" in page.text
        csp = page.headers["content-security-policy"]
        assert "script-src 'sha256-" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]


def test_unknown_route_and_method(classify_lm: LM) -> None:
    with serve(classify_lm) as client:
        r = client.get("/v1/nothing")
        assert r.status_code == 404 and r.json()["error"]["type"] == "not_found"
        r = client.get("/v1/classify")
        assert r.status_code == 405 and r.json()["error"]["type"] == "method_not_allowed"


# -- tasks -----------------------------------------------------------------------------------


def test_classify(classify_lm: LM) -> None:
    with serve(classify_lm) as client:
        r = client.post("/v1/classify", json={"texts": ["a gripping , funny film", "dull"]},
                        headers={"X-Request-ID": "req-42"})
        assert r.status_code == 200, r.text
        assert r.headers["x-request-id"] == "req-42"
        results = r.json()["results"]
        assert len(results) == 2
        for res in results:
            assert res["label"] in LABELS
            assert set(res["scores"]) == set(LABELS)
            assert abs(sum(res["scores"].values()) - 1) < 1e-4
            assert res["score"] == max(res["scores"].values())
        direct = classify_lm.classify(["a gripping , funny film"])[0]
        assert results[0]["label"] == direct["label"] and abs(results[0]["score"] - direct["score"]) < 1e-5

        pairs = client.post("/v1/classify", json={"texts": ["a", "b"], "pairs": ["c", "d"]})
        assert pairs.status_code == 200 and len(pairs.json()["results"]) == 2
        bad_id = client.post("/v1/classify", json={"texts": ["x"]}, headers={"X-Request-ID": "bad id!" * 20})
        assert re.fullmatch(r"[0-9a-f]{32}", bad_id.headers["x-request-id"])


def test_embed(classify_lm: LM) -> None:
    with serve(classify_lm) as client:
        body = client.post("/v1/embed", json={"texts": ["one film", "another film"]}).json()
        assert body["dim"] == 128 and len(body["embeddings"]) == 2
        for vec in body["embeddings"]:
            assert abs(sum(x * x for x in vec) - 1) < 1e-4
        raw = client.post("/v1/embed", json={"texts": ["one film"], "pooling": "cls", "normalize": False})
        assert raw.status_code == 200
        r = client.post("/v1/embed", json={"texts": ["x"], "pooling": "max"})
        assert r.status_code == 422 and error_fields(r) == ["pooling"]


def test_fill_mask(mlm_lm: LM) -> None:
    mask = mlm_lm.tokenizer.id_to_token(mlm_lm.tokenizer.mask_id)
    with serve(mlm_lm) as client:
        r = client.post("/v1/fill-mask", json={"texts": [f"a {mask} film", f"the {mask} ."], "top_k": 3})
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert [len(c) for c in results] == [3, 3]
        assert all(mask not in c["sequence"] for c in results[0])
        assert results[0][0]["score"] >= results[0][1]["score"] >= results[0][2]["score"]

        r = client.post("/v1/fill-mask", json={"texts": [f"a {mask} film", "no mask here"]})
        assert r.status_code == 422 and error_fields(r) == ["texts[1]"]
        assert mask in r.json()["error"]["message"]


def test_generate_json_and_stream(gpt_lm: LM) -> None:
    with serve(gpt_lm, max_new_tokens=16) as client:
        r = client.post("/v1/generate", json={"prompts": ["the film", "a story"], "max_new_tokens": 6})
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert len(results) == 2 and all(0 <= x["tokens"] <= 6 for x in results)
        assert results[0]["text"] == gpt_lm.generate(["the film"], max_new_tokens=6)[0]

        with client.stream("POST", "/v1/generate",
                           json={"prompts": ["the film"], "max_new_tokens": 6, "stream": True}) as s:
            assert s.status_code == 200 and s.headers["content-type"].startswith("text/event-stream")
            events = parse_sse(s.iter_text())
        kinds = [e for e, _ in events]
        assert kinds[-1] == "done" and set(kinds[:-1]) <= {"token"}, kinds
        streamed = "".join(d["text"] for e, d in events if e == "token")
        assert streamed == events[-1][1]["text"] == results[0]["text"]

        r = client.post("/v1/generate", json={"prompts": ["x"], "max_new_tokens": 17})
        assert r.status_code == 422 and error_fields(r) == ["max_new_tokens"]
        r = client.post("/v1/generate", json={"prompts": ["x", "y"], "stream": True})
        assert r.status_code == 422 and error_fields(r) == ["prompts"]
        r = client.post("/v1/generate", json={"prompts": ["x"], "stream": True, "num_beams": 2})
        assert r.status_code == 422 and error_fields(r) == ["num_beams"]
        r = client.post("/v1/generate", json={"prompts": ["x"], "top_p": 0})
        assert r.status_code == 422 and error_fields(r) == ["top_p"]
        metrics = client.get("/metrics").text
        assert metric_value(metrics, "gptbert_generated_tokens_total") > 0


def parse_sse(chunks: Any) -> list[tuple[str, dict[str, Any]]]:
    events, buffer = [], ""
    for chunk in chunks:
        buffer += chunk
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
            events.append((fields["event"], json.loads(fields["data"])))
    return events


class SlowStreamLM:
    """A real GPT LM whose stream yields one piece every ``delay`` seconds (or fails at once)."""

    def __init__(self, lm: LM, delay: float = 0.1, fail: BaseException | None = None) -> None:
        self._lm, self.delay, self.fail = lm, delay, fail
        self.produced = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lm, name)

    def stream(self, prompt: str, **options: Any) -> Iterator[str]:
        if self.fail is not None:
            raise self.fail
        for _ in range(options["max_new_tokens"]):
            time.sleep(self.delay)
            self.produced += 1
            yield "x"


def test_stream_timeout_and_errors(gpt_lm: LM) -> None:
    slow = SlowStreamLM(gpt_lm)
    body = {"prompts": ["the film"], "max_new_tokens": 200, "stream": True}
    with serve(slow, timeout_s=0.6, max_new_tokens=200) as client:
        with client.stream("POST", "/v1/generate", json=body) as s:
            assert s.status_code == 200
            events = parse_sse(s.iter_text())
        assert events[0][0] == "token" and events[-1][0] == "error"
        assert events[-1][1]["error"]["type"] == "timeout"
    assert slow.produced < 200  # the worker stopped once the request gave up (shutdown waited for it)

    broken = SlowStreamLM(gpt_lm, fail=ValueError("prompt too odd"))
    with serve(broken) as client:
        r = client.post("/v1/generate", json={"prompts": ["x"], "stream": True})
        assert r.status_code == 422 and r.json()["error"]["message"] == "prompt too odd"


def test_answer(gpt_qa_lm: LM) -> None:
    with serve(gpt_qa_lm) as client:
        r = client.post("/v1/answer", json={"question": "who wrote it ?", "context": "it was written by ada ."})
        if importlib.util.find_spec("gptbert.tasks.qa") is None:
            assert r.status_code == 501 and r.json()["error"]["type"] == "not_implemented"
        else:
            assert r.status_code == 200, r.text
            assert isinstance(r.json()["answer"], str)
        r = client.post("/v1/answer", json={"question": "who ?"})
        assert r.status_code == 422 and error_fields(r) == ["context"]


def test_a_gpt_language_model_not_tuned_for_qa_does_not_answer(gpt_lm: LM, gpt_qa_lm: LM) -> None:
    """Issue #21 item 12: a pre-trained GPT used to list 'answer' and return ',' with start -1."""
    assert "answer" not in gpt_lm.capabilities and "generate" in gpt_lm.capabilities
    assert {"answer", "generate", "embed"} <= gpt_qa_lm.capabilities
    with serve(gpt_lm) as client:
        assert "answer" not in client.get("/v1/info").json()["capabilities"]
        r = client.post("/v1/answer", json={"question": "who wrote it ?", "context": "it was written by ada ."})
        assert r.status_code == 404 and r.json()["error"]["type"] == "capability_not_supported"


def test_capability_missing_is_404_naming_it(gpt_lm: LM, classify_lm: LM) -> None:
    with serve(gpt_lm) as client:
        r = client.post("/v1/classify", json={"texts": ["x"]})
        assert r.status_code == 404
        err = r.json()["error"]
        assert err["type"] == "capability_not_supported" and "'classify'" in err["message"]
    with serve(classify_lm) as client:
        for path, body in [("/v1/generate", {"prompts": ["x"]}), ("/v1/fill-mask", {"texts": ["[MASK]"]}),
                           ("/v1/answer", {"question": "q", "context": "c"})]:
            r = client.post(path, json=body)
            assert r.status_code == 404 and "does not support" in r.json()["error"]["message"], path


# -- bad input and limits --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ["texts"]),
        ({"texts": []}, ["texts"]),
        ({"texts": "one string"}, ["texts"]),
        ({"texts": ["ok", 3]}, ["texts[1]"]),
        ({"texts": ["ok", "   "]}, ["texts[1]"]),
        ({"texts": ["ok"], "labels": ["x"]}, ["labels"]),
        ({"texts": ["a", "b"], "pairs": ["c"]}, ["pairs"]),
        ([1, 2], ["body"]),
    ],
)
def test_bad_fields_are_422_naming_them(classify_lm: LM, body: Any, fields: list[str]) -> None:
    with serve(classify_lm) as client:
        r = client.post("/v1/classify", json=body)
        assert r.status_code == 422, r.text
        assert error_fields(r) == fields
        assert r.json()["error"]["type"] == "validation_error"


def test_bad_json_and_non_finite_numbers(gpt_lm: LM) -> None:
    with serve(gpt_lm) as client:
        r = client.post("/v1/generate", content=b'{"prompts": ["x"', headers={"Content-Type": "application/json"})
        assert r.status_code == 422 and error_fields(r) == ["body"]
        assert "invalid JSON" in r.json()["error"]["message"]
        r = client.post("/v1/generate", content=b'{"prompts": ["x"], "temperature": NaN}',
                        headers={"Content-Type": "application/json"})
        assert r.status_code == 422 and error_fields(r) == ["temperature"]
        for raw in (b"\xff\xfe", b'{"prompts": ["\xc3\x28"]}'):
            r = client.post("/v1/generate", content=raw, headers={"Content-Type": "application/json"})
            assert r.status_code == 422 and error_fields(r) == ["body"], r.text
        r = client.post("/v1/generate", content=b"prompts=x", headers={"Content-Type": "text/plain"})
        assert r.status_code == 422


def test_limits(classify_lm: LM) -> None:
    with serve(classify_lm, max_body_bytes=300, max_texts=3, max_input_tokens=8) as client:
        r = client.post("/v1/classify", json={"texts": ["x" * 400]})
        assert r.status_code == 413 and r.json()["error"]["type"] == "too_large"
        assert r.headers["x-request-id"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while reading
            yield b'{"texts": ["'
            for _ in range(10):
                yield b"y" * 50
            yield b'"]}'

        r = client.post("/v1/classify", content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413

        r = client.post("/v1/classify", json={"texts": ["a", "b", "c", "d"]})
        assert r.status_code == 422 and error_fields(r) == ["texts"] and "at most 3" in r.json()["error"]["message"]

        long_text = " ".join(["film"] * 20)
        r = client.post("/v1/classify", json={"texts": ["short", long_text]})
        assert r.status_code == 422 and error_fields(r) == ["texts[1]"]
        assert "limit of 8" in r.json()["error"]["message"]
        r = client.post("/v1/classify", json={"texts": ["short"], "pairs": [long_text]})
        assert r.status_code == 422 and error_fields(r) == ["pairs[0]"]
        assert client.post("/v1/classify", json={"texts": ["a fine film"]}).status_code == 200


def test_queue_full_is_503_with_retry_after(classify_lm: LM) -> None:
    lm = GatedLM(classify_lm)
    settings = ServeSettings(max_batch=1, queue_size=1, timeout_s=20, retry_after_s=3)
    app = create_app(settings, lm)  # type: ignore[arg-type]
    service = app.state.service
    with TestClient(app) as client, concurrent.futures.ThreadPoolExecutor(2) as pool:
        try:
            running = pool.submit(client.post, "/v1/classify", json={"texts": ["first"]})
            assert lm.entered.wait(20)  # the worker is busy with it
            queued = pool.submit(client.post, "/v1/classify", json={"texts": ["second"]})
            wait_for(lambda: service.batcher.depth == 1)
            r = client.post("/v1/classify", json={"texts": ["third"]})
            assert r.status_code == 503 and r.headers["retry-after"] == "3"
            assert r.json()["error"]["type"] == "queue_full"
            depth = metric_value(client.get("/metrics").text, "gptbert_queue_depth")
            assert depth == 1
        finally:
            lm.gate.set()
        assert running.result(30).status_code == 200
        assert queued.result(30).status_code == 200
        metrics = client.get("/metrics").text
        assert metric_value(metrics, "gptbert_requests_total", route="/v1/classify", status="503") == 1
        assert metric_value(metrics, "gptbert_requests_total", route="/v1/classify", status="200") == 2


def test_timeout_is_504_and_drops_the_queued_job(classify_lm: LM) -> None:
    lm = GatedLM(classify_lm)
    app = create_app(ServeSettings(max_batch=1, timeout_s=0.5), lm)  # type: ignore[arg-type]
    with TestClient(app) as client, concurrent.futures.ThreadPoolExecutor(1) as pool:
        try:
            first = pool.submit(client.post, "/v1/classify", json={"texts": ["first"]})
            assert lm.entered.wait(20)
            r = client.post("/v1/classify", json={"texts": ["second"]})  # waits behind the stuck one
            assert r.status_code == 504 and r.json()["error"]["type"] == "timeout"
            assert first.result(20).status_code == 504
        finally:
            lm.gate.set()
        wait_for(lambda: app.state.service.batcher.depth == 0)
        assert client.post("/v1/classify", json={"texts": ["third"]}).status_code in (200, 504)
    assert lm.calls[0] == ["first"] and ["second"] not in lm.calls  # timed out while queued: never run


def test_model_errors_are_answers_not_crashes(classify_lm: LM) -> None:
    for error, status, kind in [(ValueError("bad input"), 422, "invalid_input"),
                                (RuntimeError("boom"), 500, "inference_error")]:
        lm = GatedLM(classify_lm, fail=error)
        lm.gate.set()
        with serve(lm) as client:
            r = client.post("/v1/classify", json={"texts": ["x"]})
            assert r.status_code == status and r.json()["error"]["type"] == kind
            assert client.get("/healthz").status_code == 200


def test_dynamic_batching_groups_queued_requests(classify_lm: LM) -> None:
    lm = GatedLM(classify_lm)
    app = create_app(ServeSettings(max_batch=32, max_wait_ms=1), lm)  # type: ignore[arg-type]
    with TestClient(app) as client, concurrent.futures.ThreadPoolExecutor(6) as pool:
        try:
            first = pool.submit(client.post, "/v1/classify", json={"texts": ["blocker"]})
            assert lm.entered.wait(20)
            rest = [pool.submit(client.post, "/v1/classify", json={"texts": [f"text {i}", "other"]}) for i in range(5)]
            wait_for(lambda: app.state.service.batcher.depth == 5)
        finally:
            lm.gate.set()
        assert first.result(20).status_code == 200
        answers = [f.result(20) for f in rest]
        assert all(a.status_code == 200 and len(a.json()["results"]) == 2 for a in answers)
        assert [len(c) for c in lm.calls] == [1, 10]  # the five queued requests ran as one model call
        metrics = client.get("/metrics").text
    assert metric_value(metrics, "gptbert_batch_size_count", task="classify") == 2
    assert metric_value(metrics, "gptbert_batch_size_sum", task="classify") == 11
    assert metric_value(metrics, "gptbert_batch_size_bucket", task="classify", le="8.0") == 1  # one batch > 8


# -- auth, readiness, metrics, logs ----------------------------------------------------------


def test_api_key(classify_lm: LM) -> None:
    with serve(classify_lm, api_key="s3cret-key") as client:
        body = {"texts": ["a film"]}
        r = client.post("/v1/classify", json=body)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["type"] == "unauthorized"
        assert client.post("/v1/classify", json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.post("/v1/classify", json=body, headers={"X-API-Key": "s3cret-ke"}).status_code == 401
        assert client.post("/v1/classify", json=body, headers={"Authorization": "Bearer s3cret-key"}).status_code == 200
        assert client.post("/v1/classify", json=body, headers={"X-API-Key": "s3cret-key"}).status_code == 200
        bad_json = client.post("/v1/classify", content=b"{", headers={"Content-Type": "application/json"})
        assert bad_json.status_code == 401  # the key is checked before the body is read
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"X-API-Key": "s3cret-key"}).status_code == 200
        assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
        assert client.get("/").status_code == 200
        spec = client.get("/openapi.json").json()
        assert set(spec["components"]["securitySchemes"]) == {"bearer", "apiKey"}
        assert spec["paths"]["/v1/classify"]["post"]["security"]


def test_readyz_while_loading_and_after_a_failed_load(classify_lm: LM) -> None:
    release = threading.Event()

    def slow_loader() -> LM:
        assert release.wait(20)
        return classify_lm

    app = create_app(ServeSettings(), loader=slow_loader)
    with TestClient(app) as client:
        try:
            r = client.get("/readyz")
            assert r.status_code == 503 and r.json()["status"] == "loading" and r.headers["retry-after"]
            r = client.post("/v1/classify", json={"texts": ["x"]})
            assert r.status_code == 503 and r.json()["error"]["type"] == "not_ready"
            assert client.get("/healthz").status_code == 200
        finally:
            release.set()
        wait_for(lambda: client.get("/readyz").status_code == 200)
        assert client.post("/v1/classify", json={"texts": ["x"]}).status_code == 200

    def broken_loader() -> LM:
        raise FileNotFoundError("no such run directory")

    with TestClient(create_app(ServeSettings(), loader=broken_loader)) as client:
        wait_for(lambda: client.get("/readyz").json()["status"] != "loading")
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "failed" and "FileNotFoundError" in r.json()["detail"]
        assert client.post("/v1/classify", json={"texts": ["x"]}).status_code == 503


def test_metrics_exposition(classify_lm: LM) -> None:
    with serve(classify_lm) as client:
        for _ in range(3):
            client.post("/v1/classify", json={"texts": ["a film"]})
        client.post("/v1/classify", json={"texts": []})
        client.get("/nowhere")
        r = client.get("/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        text = r.text
    assert metric_value(text, "gptbert_requests_total", route="/v1/classify", status="200") == 3
    assert metric_value(text, "gptbert_requests_total", route="/v1/classify", status="422") == 1
    assert metric_value(text, "gptbert_requests_total", route="unmatched", status="404") == 1
    assert metric_value(text, "gptbert_request_duration_seconds_count", route="/v1/classify") == 4
    assert metric_value(text, "gptbert_batch_size_count", task="classify") == 3
    assert metric_value(text, "gptbert_input_tokens_total", task="classify") > 0
    assert metric_value(text, "gptbert_model_ready") == 1
    for name in ("gptbert_queue_depth", "gptbert_generated_tokens_total", "gptbert_requests_in_flight",
                 "gptbert_batch_duration_seconds_bucket"):
        assert f"\n{name}" in text, name
    # a second app has its own registry: nothing leaks between instances
    with serve(classify_lm) as client:
        fresh = client.get("/metrics").text
    assert metric_value(fresh, "gptbert_requests_total", route="/v1/classify", status="200") == 0


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    formatter = JsonFormatter()
    return [json.loads(formatter.format(r)) for r in caplog.records if r.name == "gptbert.serve.access"]


def test_logs_are_json_lines_without_text(classify_lm: LM, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gptbert.serve")
    with serve(classify_lm) as client:
        r = client.post("/v1/classify", json={"texts": [SECRET, "a film"]})
        client.post("/v1/classify", json={"texts": [SECRET, 5]})
    lines = access_lines(caplog)
    assert len(lines) == 2
    ok, bad = lines
    assert ok["request_id"] == r.headers["x-request-id"]
    assert ok["route"] == "/v1/classify" and ok["status"] == 200 and ok["method"] == "POST"
    assert ok["texts"] == 2 and ok["chars"] == len(SECRET) + 6 and ok["tokens"] > 0 and ok["latency_ms"] >= 0
    assert bad["status"] == 422
    assert all(SECRET not in json.dumps(line) for line in lines)
    assert all(SECRET not in rec.getMessage() for rec in caplog.records)


def test_log_text_opt_in(classify_lm: LM, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gptbert.serve")
    with serve(classify_lm, log_text=True) as client:
        client.post("/v1/classify", json={"texts": [SECRET]})
    (line,) = access_lines(caplog)
    assert line["text"] == [SECRET]


# -- the batcher on its own ------------------------------------------------------------------


def _echo_batcher(**kw: Any) -> tuple[Batcher, list[list[Any]]]:
    batches: list[list[Any]] = []

    def echo(inputs: list[Any], options: dict[str, Any]) -> list[Any]:
        batches.append(list(inputs))
        if "bad" in inputs:
            raise ValueError("bad input")
        return [(x, options.get("tag")) for x in inputs]

    return Batcher({"echo": echo}, **kw), batches


def test_batcher_groups_by_key_splits_at_max_batch_and_isolates_failures() -> None:
    batcher, batches = _echo_batcher(max_batch=4, max_wait_ms=0, queue_size=10)
    gate = threading.Event()
    batcher.runners["block"] = lambda inputs, options: [gate.wait(10)] * len(inputs)
    batcher.start()
    assert batcher.wait_ready(10)
    blocker = batcher.submit("block", [0])
    wait_for(lambda: blocker.future.running())
    tickets = [
        batcher.submit("echo", [1, 2]),
        batcher.submit("echo", [3]),
        batcher.submit("echo", [4, 5]),  # would make 5 > max_batch: next batch
        batcher.submit("echo", [6], {"tag": "t"}),  # other options: other batch
        batcher.submit("echo", ["bad"]),
        batcher.submit("echo", [7]),
    ]
    with pytest.raises(QueueFullError):
        for _ in range(10):
            batcher.submit("echo", [0])
    gate.set()
    assert tickets[0].future.result(10) == [(1, None), (2, None)]
    assert tickets[1].future.result(10) == [(3, None)]
    assert tickets[2].future.result(10) == [(4, None), (5, None)]
    assert tickets[3].future.result(10) == [(6, "t")]
    with pytest.raises(ValueError, match="bad input"):
        tickets[4].future.result(10)
    assert tickets[5].future.result(10) == [(7, None)]
    # [4, 5] would overflow max_batch, [6] has other options, the failed batch is re-run job by job
    assert batches[:4] == [[1, 2, 3], [4, 5], [6], ["bad", 7, 0, 0]]
    assert batches[4:8] == [["bad"], [7], [0], [0]]
    assert batcher.close(10)


def test_batcher_close_drains_then_refuses() -> None:
    batcher, batches = _echo_batcher(max_batch=1, max_wait_ms=0)
    gate = threading.Event()
    batcher.runners["block"] = lambda inputs, options: [gate.wait(10)] * len(inputs)
    batcher.start()
    assert batcher.wait_ready(10)
    blocker = batcher.submit("block", [0])
    queued = [batcher.submit("echo", [i]) for i in range(3)]
    closer = threading.Thread(target=batcher.close, args=(10,))
    closer.start()
    wait_for(lambda: batcher.closing)
    with pytest.raises(NotReadyError, match="shutting down"):
        batcher.submit("echo", [9])
    gate.set()
    closer.join(10)
    assert blocker.future.result(1) == [True]
    assert [t.future.result(1) for t in queued] == [[(0, None)], [(1, None)], [(2, None)]]
    assert not batcher.ready


def test_batcher_stream_can_be_cancelled() -> None:
    produced: list[int] = []
    started = threading.Event()

    def counter(inputs: list[Any], options: dict[str, Any]) -> Iterator[int]:
        for i in range(1000):
            produced.append(i)
            started.set()
            time.sleep(0.001)
            yield i

    batcher = Batcher({"count": counter})
    batcher.start()
    assert batcher.wait_ready(10)
    seen: list[int] = []
    ticket = batcher.submit("count", [None], on_item=seen.append)
    assert started.wait(10)
    ticket.cancel()
    assert ticket.future.result(10) < 1000
    assert len(produced) < 1000 and seen == produced[: len(seen)]
    assert batcher.close(10)

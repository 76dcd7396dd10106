"""The real server: ``python -m gptbert serve`` under uvicorn on a loopback port, driven with httpx."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gptbert.cli import main
from tests.serve import ServerProcess, gpt_run

PROMPT = "the quiet orchard hums"


@pytest.fixture(scope="module")
def server(shared_data: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(gpt_run(shared_data), "--max-new-tokens", "64", "--max-wait-ms", "2",
                         "--max-body-bytes", "4096")
    try:
        yield proc
    finally:
        proc.stop()


def read_events(response: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Server-sent events as they arrive: (event, data)."""
    buffer = ""
    for chunk in response.iter_text():
        buffer += chunk
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
            yield fields["event"], json.loads(fields["data"])


def log_records(server: ServerProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]


def test_cli_rejects_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", str(tmp_path / "missing")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    empty = tmp_path / "key"
    empty.write_text("\n")
    assert main(["serve", str(tmp_path), "--api-key-file", str(empty)]) == 2
    assert "empty" in capsys.readouterr().err
    assert main(["serve", str(tmp_path), "--max-batch", "0"]) == 2
    assert "max-batch" in capsys.readouterr().err


def test_stream_generation_over_sse(server: ServerProcess) -> None:
    body = {"prompts": [PROMPT], "max_new_tokens": 12, "stream": True}
    with httpx.stream("POST", server.url + "/v1/generate", json=body, timeout=60) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        request_id = r.headers["x-request-id"]
        events = list(read_events(r))
    kinds = [k for k, _ in events]
    assert kinds[-1] == "done" and kinds.count("token") >= 1 and set(kinds[:-1]) == {"token"}, kinds
    done = events[-1][1]
    assert "".join(d["text"] for k, d in events if k == "token") == done["text"]
    assert 1 <= done["tokens"] <= 12

    plain = httpx.post(server.url + "/v1/generate", json={"prompts": [PROMPT], "max_new_tokens": 12}, timeout=60)
    assert plain.status_code == 200 and plain.json()["results"][0]["text"] == done["text"]  # greedy: the same

    deadline = time.monotonic() + 10  # the log line is written once the response is complete
    while not any(rec.get("request_id") == request_id for rec in log_records(server)):
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)
    (line,) = [rec for rec in log_records(server) if rec.get("request_id") == request_id]
    assert line["route"] == "/v1/generate" and line["status"] == 200 and line["generated_tokens"] == done["tokens"]
    assert PROMPT not in server.log()


def test_service_routes_and_concurrency(server: ServerProcess) -> None:
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(server.url + "/readyz").json() == {"status": "ready"}
    assert "generate" in httpx.get(server.url + "/v1/info").json()["capabilities"]
    r = httpx.post(server.url + "/v1/generate", content=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "body"
    r = httpx.post(server.url + "/v1/generate", content=b"x" * 8192, headers={"Content-Type": "application/json"})
    assert r.status_code == 413

    results: list[int] = []

    def one(i: int) -> None:
        body = {"prompts": [f"{PROMPT} {i}"], "max_new_tokens": 4}
        r = httpx.post(server.url + "/v1/generate", json=body, timeout=60)
        results.append(r.status_code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [200] * 8
    metrics = httpx.get(server.url + "/metrics").text
    assert 'gptbert_requests_total{route="/v1/generate",status="200"}' in metrics
    assert "gptbert_batch_size_bucket" in metrics and "gptbert_generated_tokens_total" in metrics


def test_sigterm_finishes_the_stream_in_flight(server: ServerProcess) -> None:
    """Runs last in this module: it stops the module's server."""
    body = {"prompts": [PROMPT], "max_new_tokens": 64, "stream": True}
    events: list[tuple[str, dict[str, Any]]] = []
    with httpx.stream("POST", server.url + "/v1/generate", json=body, timeout=60) as r:
        assert r.status_code == 200
        stream = read_events(r)
        events.append(next(stream))
        server.proc.send_signal(signal.SIGTERM)  # while the generation is in flight
        events.extend(stream)
    assert events[-1][0] == "done", events[-3:]
    # uvicorn shuts down gracefully, then re-raises the signal it caught (exit by SIGTERM)
    assert server.proc.wait(30) in (0, -signal.SIGTERM)
    messages = [rec.get("msg", "") for rec in log_records(server)]
    assert "Application shutdown complete." in messages, server.log()
    with pytest.raises(httpx.TransportError):
        httpx.get(server.url + "/healthz", timeout=2)

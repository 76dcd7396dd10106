"""The README's HTTP API section against the server: every endpoint documented, every request field
listed, every example valid under the app's OpenAPI schema, and the task examples answered for real."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gptbert.serve import ServeSettings
from gptbert.serve.app import create_app

README = Path(__file__).resolve().parents[2] / "README.md"
UNDOCUMENTED = {("GET", "/metrics")}  # Prometheus text, no JSON body
"""Endpoints without a JSON body to document (the page at / is not in the schema)."""


def _documented() -> dict[tuple[str, str], tuple[dict[str, Any] | None, Any]]:
    """(method, path) -> (request body or None, 200 response body) of the README's ```http blocks."""
    text = README.read_text(encoding="utf-8")
    found = re.findall(r"```http\n(GET|POST) (\S+)\n(.*?)```\s*```json\n(.*?)```", text, flags=re.S)
    assert found, "README lost its HTTP API section"
    out = {}
    for method, path, body, response in found:
        assert (method, path) not in out, f"{method} {path} documented twice"
        out[(method, path)] = (json.loads(body) if body.strip() else None, json.loads(response))
    return out


def _error_example() -> Any:
    text = README.read_text(encoding="utf-8")
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", text, flags=re.S) if '"error"' in b]
    assert len(blocks) == 1, "README: one example of the error shape"
    return blocks[0]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return create_app(ServeSettings(), loader=lambda: None).openapi()


def _resolve(s: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in s:
        s = schema["components"]["schemas"][s["$ref"].rsplit("/", 1)[-1]]
    return s


def conforms(value: Any, s: dict[str, Any], schema: dict[str, Any], where: str, *, every_field: bool) -> list[str]:
    """Why ``value`` does not fit the OpenAPI schema ``s`` (empty: it fits). ``every_field``: an
    object must name each of its properties (a request example lists every field it accepts); else
    each property that is required or has a non-null default (what the server always sends)."""
    s = _resolve(s, schema)
    if "anyOf" in s:
        options = [conforms(value, o, schema, where, every_field=every_field) for o in s["anyOf"]]
        return [] if any(not o for o in options) else min(options, key=len)
    if "enum" in s and value not in s["enum"]:
        return [f"{where}: {value!r} not one of {s['enum']}"]
    kind = s.get("type")
    checks = {"string": str, "boolean": bool, "array": list, "object": dict, "null": type(None)}
    if kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = kind is None or isinstance(value, checks[kind])
    if not ok:
        return [f"{where}: {value!r} is not of type {kind}"]
    problems: list[str] = []
    if kind == "array":
        for i, item in enumerate(value):
            problems += conforms(item, s.get("items", {}), schema, f"{where}[{i}]", every_field=every_field)
    if kind == "object":
        props = s.get("properties", {})
        extra = s.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                problems += conforms(item, props[key], schema, f"{where}.{key}", every_field=every_field)
            elif isinstance(extra, dict):
                problems += conforms(item, extra, schema, f"{where}.{key}", every_field=every_field)
            else:
                problems.append(f"{where}: {key!r} is not a field")
        must = [k for k, p in props.items()
                if every_field or k in s.get("required", []) or p.get("default", None) is not None]
        problems += [f"{where}: {k!r} is not shown" for k in must if k not in value]
    return problems


def _operation(schema: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    return schema["paths"][path][method.lower()]


def test_every_endpoint_is_documented(schema: dict[str, Any]) -> None:
    served = {(m.upper(), p) for p, ops in schema["paths"].items() for m in ops}
    assert set(_documented()) == served - UNDOCUMENTED


@pytest.mark.parametrize("endpoint", sorted(_documented()), ids=lambda e: f"{e[0]} {e[1]}")
def test_documented_bodies_fit_the_schema(endpoint: tuple[str, str], schema: dict[str, Any]) -> None:
    method, path = endpoint
    request, response = _documented()[endpoint]
    op = _operation(schema, method, path)
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    assert (request is None) == (body is None), f"{method} {path}: request body documented {request is not None}"
    if body is not None:
        assert conforms(request, body, schema, "request", every_field=True) == []
    answer = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert conforms(response, answer, schema, "response", every_field=False) == []


def test_the_error_shape(schema: dict[str, Any]) -> None:
    shape = {"$ref": "#/components/schemas/ErrorResponse"}
    assert conforms(_error_example(), shape, schema, "error", every_field=True) == []


def _keys(value: Any) -> Any:
    """The shape of a JSON value: key sets of objects, first items of lists."""
    if isinstance(value, dict):
        return {k: _keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_keys(value[0])] if value else []
    return type(value).__name__ if not isinstance(value, (int, float)) or isinstance(value, bool) else "number"


@pytest.mark.parametrize("path,run", [("/v1/classify", "classify"), ("/v1/embed", "classify"),
                                      ("/v1/fill-mask", "mlm"), ("/v1/generate", "gpt"), ("/v1/info", "classify")])
def test_a_real_server_answers_the_documented_requests(path: str, run: str, shared_data: Path) -> None:
    """The documented request, sent to a server over a small real run: 200 and the documented shape."""
    from gptbert.api import LM
    from tests.serve import classify_run, gpt_run, mlm_run

    lm = LM.load({"classify": classify_run, "mlm": mlm_run, "gpt": gpt_run}[run](shared_data))
    method = "POST" if path != "/v1/info" else "GET"
    request, response = _documented()[(method, path)]
    with TestClient(create_app(ServeSettings(), lm)) as client:
        got = client.request(method, path, json=request)
    assert got.status_code == 200, got.text
    expected, actual = _keys(response), _keys(got.json())
    if path == "/v1/embed":  # the documented vector is short
        expected["embeddings"], actual["embeddings"] = [["number"]], [["number"]]
    if path == "/v1/classify":  # label names are the run's
        expected["results"][0]["scores"] = actual["results"][0]["scores"]
    assert actual == expected

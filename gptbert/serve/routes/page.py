"""The page at ``/`` (static/index.html, served with a strict Content-Security-Policy) and ``/favicon.ico``."""

from __future__ import annotations

import base64
import hashlib
import re
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response


def page() -> tuple[str, str]:
    """The HTML of '/' and its Content-Security-Policy (inline script and style allowed by hash)."""
    html = resources.files("gptbert.serve").joinpath("static/index.html").read_text(encoding="utf-8")

    def hashes(tag: str) -> str:
        blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.S)
        return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in blocks)

    csp = (f"default-src 'none'; script-src {hashes('script')}; style-src {hashes('style')}; "
           "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return html, csp


def router() -> APIRouter:
    r = APIRouter()
    page_html, page_csp = page()

    @r.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page_html, headers={"Content-Security-Policy": page_csp, "Cache-Control": "no-cache",
                                                "Referrer-Policy": "no-referrer"})

    @r.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(status_code=204)

    return r

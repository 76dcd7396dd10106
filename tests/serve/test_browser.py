"""The web page at ``/`` in headless Chromium: classify a sentence, stream a generation.

The page reads ``?task=...&text=...&auto=1`` and submits by itself. Chromium is driven
over the DevTools protocol on a pipe (``tests._browser``); the test polls
``document.body.dataset.state`` in real time until the page says it is done.
(``--dump-dom`` is not enough: its virtual time runs out while a response still streams.)

Without Chromium (Debian package ``chromium``) these tests are skipped, loudly, unless
``GPTBERT_REQUIRE_BROWSER`` is set (as in CI), in which case they fail.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

from gptbert.api import LM
from gptbert.serve import ServeSettings
from gptbert.serve.app import create_app
from tests._browser import Chromium, find_chromium
from tests.serve import LABELS, classify_run, free_port, gpt_run


@pytest.fixture(scope="module")
def chromium() -> str:
    return find_chromium()


@contextmanager
def uvicorn_in_thread(lm: LM) -> Iterator[str]:
    """The app under a real uvicorn on a loopback port, in a thread of this process (no signal handlers)."""
    port = free_port()
    config = uvicorn.Config(create_app(ServeSettings(), lm), host="127.0.0.1", port=port, log_level="warning",
                            access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(30)


def run_page(executable: str, url: str, profile: Path, timeout: float = 90.0) -> str:
    """Open ``url``, wait until the page's state is done or error, return the HTML of its body."""
    browser = Chromium(executable, profile)
    try:
        session = browser.open(url)
        deadline = time.monotonic() + timeout
        state = None
        while state not in ("done", "error"):
            assert time.monotonic() < deadline, f"page still {state!r} after {timeout:.0f} s"
            time.sleep(0.1)
            state = browser.evaluate(session, "document.body ? document.body.dataset.state : null")
        return str(browser.evaluate(session, "document.body.outerHTML"))
    finally:
        browser.close()


def page_url(base: str, **params: str) -> str:
    return base + "/?" + urllib.parse.urlencode({**params, "auto": "1"})


def test_page_classifies_a_sentence(chromium: str, shared_data: Path, tmp_path: Path) -> None:
    lm = LM.load(classify_run(shared_data))
    with uvicorn_in_thread(lm) as base:
        dom = run_page(chromium, page_url(base, task="classify", text="a gripping , funny film"), tmp_path / "p")
    assert 'data-state="done"' in dom, dom[: dom.find("<script")]
    label = re.search(r'<strong id="label">([^<]*)</strong>', dom)
    assert label is not None and label.group(1) in LABELS, dom[: dom.find("<script")]
    expected = lm.classify(["a gripping , funny film"])[0]
    assert label.group(1) == expected["label"]
    assert re.search(r'<span id="score">\(0\.\d{3}\)</span>', dom)


def test_page_streams_a_generation(chromium: str, shared_data: Path, tmp_path: Path) -> None:
    lm = LM.load(gpt_run(shared_data))
    with uvicorn_in_thread(lm) as base:
        dom = run_page(chromium, page_url(base, task="generate", text="the film"), tmp_path / "p")
    assert 'data-state="done"' in dom, dom[: dom.find("<script")]
    tokens = re.search(r'<p id="tokens">(\d+) tokens</p>', dom)
    assert tokens is not None and int(tokens.group(1)) > 0, dom[: dom.find("<script")]
    assert '<pre id="generated">' in dom

"""The web page at ``/`` in headless Chromium: classify a sentence, stream a generation.

The page reads ``?task=...&text=...&auto=1`` and submits by itself. Chromium is driven
over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON messages ending
in a NUL byte on file descriptors 3 and 4), so no websocket client is needed; the test
polls ``document.body.dataset.state`` in real time until the page says it is done.
(``--dump-dom`` is not enough: its virtual time runs out while a response still streams.)

Without Chromium (Debian package ``chromium``) these tests are skipped, loudly, unless
``GPTBERT_REQUIRE_BROWSER`` is set (as in CI), in which case they fail.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from gptbert.api import LM
from gptbert.serve import ServeSettings
from gptbert.serve.app import create_app
from tests.serve import LABELS, classify_run, free_port, gpt_run

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--remote-debugging-pipe",
)


def find_chromium() -> str:
    explicit = os.environ.get("GPTBERT_CHROMIUM")
    if explicit:
        found: str | None = shutil.which(explicit) or explicit
    else:
        found = next((p for p in map(shutil.which, BROWSERS) if p), None)
    if found:
        return found
    reason = ("!!! HEADLESS BROWSER TEST NOT RUN: no Chromium found (tried " + ", ".join(BROWSERS)
              + "; install with 'apt-get install -y chromium' or set GPTBERT_CHROMIUM). !!!")
    if os.environ.get("GPTBERT_REQUIRE_BROWSER"):
        pytest.fail(reason + " GPTBERT_REQUIRE_BROWSER is set, so this is a failure.")
    pytest.skip(reason + " Set GPTBERT_REQUIRE_BROWSER=1 to make this a failure.")


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


class Chromium:
    """Headless Chromium with a DevTools-protocol connection over a pair of pipes."""

    def __init__(self, executable: str, profile: Path) -> None:
        cmd_read, self._cmd = os.pipe()  # we write commands; Chromium reads them on fd 3
        self._events, evt_write = os.pipe()  # Chromium writes answers and events on fd 4
        self.log_path = profile.with_suffix(".log")
        # a tiny trampoline puts the pipe ends on fds 3 and 4, then becomes Chromium
        trampoline = "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); " \
                     "os.execv(sys.argv[3], sys.argv[3:])"
        args = [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", trampoline, str(cmd_read), str(evt_write), *args],
                pass_fds=(cmd_read, evt_write), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )
        os.close(cmd_read)
        os.close(evt_write)
        self._buffer = b""
        self._next_id = 0

    def call(self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None,
             timeout: float = 60.0) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._cmd, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no answer from Chromium; its log:\n{self._log_tail()}")
            ready, _, _ = select.select([self._events], [], [], remaining)
            if ready:
                chunk = os.read(self._events, 1 << 16)
                if not chunk:
                    raise RuntimeError(f"Chromium exited; its log:\n{self._log_tail()}")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def _log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def open(self, url: str) -> str:
        """A new tab at ``url``; returns the session id to evaluate in."""
        target = self.call("Target.createTarget", {"url": url})["targetId"]
        return self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]

    def evaluate(self, session: str, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session)
        return result.get("result", {}).get("value")

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        os.close(self._cmd)
        os.close(self._events)


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

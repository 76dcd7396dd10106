"""Headless Chromium for the browser tests (the web page of ``serve``, the HTML report).

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON
messages ending in a NUL byte on file descriptors 3 and 4), so no websocket client is needed.
Events (console messages, exceptions, log entries) that arrive while waiting for an answer are
kept in :attr:`Chromium.events`.

Without Chromium (Debian package ``chromium``) the tests using :func:`find_chromium` are
skipped, loudly, unless ``GPTBERT_REQUIRE_BROWSER`` is set (as in CI), in which case they fail.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--remote-debugging-pipe",
)


def find_chromium() -> str:
    """The Chromium executable; skips the test (fails it under GPTBERT_REQUIRE_BROWSER) when there is none."""
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


class Chromium:
    """Headless Chromium with a DevTools-protocol connection over a pair of pipes."""

    def __init__(self, executable: str, profile: Path) -> None:
        cmd_read, self._cmd = os.pipe()  # we write commands; Chromium reads them on fd 3
        self._events, evt_write = os.pipe()  # Chromium writes answers and events on fd 4
        self.log_path = profile.with_suffix(".log")
        self.events: list[dict[str, Any]] = []
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
            if "method" in reply:
                self.events.append(reply)

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

    def screenshot(self, session: str, path: Path, full_page: bool = True) -> Path:
        """A PNG of the page (the whole page when ``full_page``, else the viewport) written to ``path``."""
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": full_page}
        if full_page:
            size = self.evaluate(session, "[document.documentElement.scrollWidth,"
                                          " document.documentElement.scrollHeight]")
            params["clip"] = {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}
        data = self.call("Page.captureScreenshot", params, session=session)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

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

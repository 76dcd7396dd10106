"""Run tests of native kernels in a child process, so that a crash fails a test, not the run.

A private torch op segfaulted on one CPU (an Intel Xeon with AMX) and took the whole pytest
run down with it. Tests marked ``@pytest.mark.native_kernel`` (or a module's ``pytestmark``)
therefore run in a fresh ``python -m pytest`` child: all marked tests of one module in one
child; if that child dies, each test that has no result yet is run again alone, so the one
that crashes is reported as failed with the signal that killed it, and the others keep their
real outcome. The parent reports the child's results as its own.

The hooks are imported by ``tests/conftest.py``. In the child (``GPTBERT_ISOLATED_RESULTS``
set) the marked tests run normally and their reports are written as JSON lines.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from _pytest.reports import TestReport

MARK = "native_kernel"
RESULTS_ENV = "GPTBERT_ISOLATED_RESULTS"
CHILD_TIMEOUT_S = 900

_results: dict[str, list[dict[str, Any]]] = {}
"""nodeid -> reports (setup / call / teardown) received from a child."""
_tried_alone: set[str] = set()


def _in_child() -> bool:
    return bool(os.environ.get(RESULTS_ENV))


def _run_child(nodeids: list[str], rootdir: Path) -> tuple[int, str]:
    """Run ``nodeids`` in one child pytest; its reports land in ``_results``. (exit code, output tail)."""
    fd, path = tempfile.mkstemp(prefix="gptbert-isolated-", suffix=".jsonl")
    os.close(fd)
    env = dict(os.environ, **{RESULTS_ENV: path})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(rootdir), env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-header", "-m", MARK, *nodeids]
    try:
        proc = subprocess.run(cmd, cwd=rootdir, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
        code, output = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as e:
        code, output = -signal.SIGKILL, f"timed out after {CHILD_TIMEOUT_S} s\n{e.stdout or ''}"
    got: dict[str, list[dict[str, Any]]] = {}
    try:
        for line in Path(path).read_text().splitlines():
            rec = json.loads(line)
            got.setdefault(rec["nodeid"], []).append(rec)
    finally:
        Path(path).unlink(missing_ok=True)
    # A test the child died in has a setup report but no teardown: it has no result yet.
    _results.update({k: v for k, v in got.items() if any(r["when"] == "teardown" for r in v)})
    return code, output[-4000:]


def _crash_report(item: pytest.Item, code: int, output: str) -> TestReport:
    try:
        what = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
    except ValueError:
        what = f"signal {-code}"
    text = (f"the test process crashed ({what}) while running {item.nodeid}: a native kernel fault, "
            f"isolated so that the rest of the suite runs on.\n--- child output (tail) ---\n{output}")
    return TestReport(item.nodeid, item.location, {k: 1 for k in item.keywords}, "failed", text, "call")


def _report(item: pytest.Item, rec: dict[str, Any]) -> TestReport:
    rep = TestReport(item.nodeid, item.location, {k: 1 for k in item.keywords}, rec["outcome"],
                     rec["longrepr"], rec["when"], duration=rec["duration"])
    if rec["outcome"] == "skipped" and rec["longrepr"]:
        rep.longrepr = tuple(rec["longrepr"])  # (file, line, reason), as pytest keeps skips
    return rep


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    if _in_child() or item.get_closest_marker(MARK) is None:
        return None
    rootdir = Path(str(item.config.rootpath))
    code, output = 0, ""
    if item.nodeid not in _results:
        module = [i.nodeid for i in item.session.items
                  if i.get_closest_marker(MARK) is not None and i.nodeid not in _results
                  and i.nodeid.split("::")[0] == item.nodeid.split("::")[0]]
        code, output = _run_child(module, rootdir)
        if item.nodeid not in _results and item.nodeid not in _tried_alone:
            _tried_alone.add(item.nodeid)
            code, output = _run_child([item.nodeid], rootdir)
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    records = _results.pop(item.nodeid, None)
    if not records:
        item.ihook.pytest_runtest_logreport(report=_crash_report(item, code, output))
    else:
        for rec in records:
            item.ihook.pytest_runtest_logreport(report=_report(item, rec))
    # What this process set up for earlier tests (package / module fixtures) and the next test
    # does not need is torn down here, as the regular protocol would do after this item.
    item.session._setupstate.teardown_exact(nextitem)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def pytest_runtest_logreport(report: TestReport) -> None:
    path = os.environ.get(RESULTS_ENV)
    if not path:
        return
    longrepr: Any = None
    if report.outcome == "skipped" and isinstance(report.longrepr, tuple):
        longrepr = [str(report.longrepr[0]), report.longrepr[1], str(report.longrepr[2])]
    elif report.longrepr is not None:
        longrepr = report.longreprtext
    rec = {"nodeid": report.nodeid, "when": report.when, "outcome": report.outcome, "longrepr": longrepr,
           "duration": report.duration}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(rec) + "\n")

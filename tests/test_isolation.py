"""The suite survives a native crash: a test marked native_kernel that segfaults fails alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CONFTEST = "from tests._isolation import pytest_runtest_logreport, pytest_runtest_protocol  # noqa: F401\n"
TESTS = '''
import ctypes
import pytest

pytestmark = pytest.mark.native_kernel

def test_before():
    assert 1 + 1 == 2

def test_crashes():
    ctypes.string_at(0)  # reads address 0: SIGSEGV, as a faulty kernel would

def test_fails():
    assert 1 == 2

@pytest.mark.skip(reason="skipped on purpose")
def test_skipped():
    pass

def test_after():
    assert True

def test_plain_not_isolated_is_unaffected():
    pass
'''


def test_a_segfaulting_test_fails_alone_and_the_run_goes_on(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    native_kernel: isolated\n")
    (tmp_path / "test_native.py").write_text(TESTS)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out  # failures, not a crash of pytest itself
    assert "2 failed, 3 passed, 1 skipped" in out, out
    assert "FAILED test_native.py::test_crashes" in out and "signal SIGSEGV" in out, out
    assert "FAILED test_native.py::test_fails" in out and "assert 1 == 2" in out, out
    assert "PASSED test_native.py::test_after" in out, out

"""pyproject.toml: metadata that builds without setuptools deprecation warnings."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_license_is_an_spdx_string_and_setuptools_reads_it() -> None:
    """A TOML-table license (``{ text = "MIT" }``) is deprecated; the SPDX string needs setuptools >= 77."""
    assert PYPROJECT["project"]["license"] == "MIT"
    (req,) = [r for r in PYPROJECT["build-system"]["requires"] if r.startswith("setuptools")]
    m = re.fullmatch(r"setuptools>=(\d+)(?:\.\d+)*", req)
    assert m and int(m.group(1)) >= 77, req


@pytest.mark.slow
def test_wheel_builds_without_deprecation_warnings(tmp_path: Path) -> None:
    """``pip wheel`` (an isolated build with the declared setuptools) warns about nothing deprecated."""
    src = tmp_path / "src"  # a copy: the build leaves build/ and *.egg-info behind
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "runs",
                                                             "__pycache__", ".pytest_cache", "*.db"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", str(src), "-w", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert "deprecated" not in log.lower(), [ln for ln in log.splitlines() if "deprecat" in ln.lower()]
    assert list(tmp_path.glob("gptbert-*.whl"))

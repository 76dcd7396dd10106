"""The README's snippets run: every ```python block, and its `gptbert info` / `--help` commands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_starts_with_the_two_commands() -> None:
    first = _blocks("bash")[0].splitlines()
    assert first[0].startswith("make demo") and first[1].startswith("make test")


@pytest.mark.parametrize("i", range(len(_blocks("python"))))
def test_python_snippet_runs(i: int, capsys: pytest.CaptureFixture[str]) -> None:
    code = _blocks("python")[i]
    exec(compile(code, f"README.md python block {i}", "exec"), {"__name__": "__readme__"})
    out = capsys.readouterr().out
    # the printed values match what the README's comments say they are
    for line in code.splitlines():
        m = re.match(r"\s*print\(.*\)\s*#\s*(.+)$", line)
        if m:
            assert m.group(1).strip() in out, f"README says {m.group(1)!r}, printed {out!r}"


def test_info_command_from_readme() -> None:
    lines = [ln for b in _blocks("bash") for ln in b.splitlines() if ln.startswith("gptbert info")]
    assert lines, "README lost its gptbert info example"
    for line in lines:
        cmd = line.split("#")[0].split()
        out = subprocess.run([sys.executable, "-m", "gptbert", *cmd[1:]], capture_output=True, text=True, check=True).stdout
        if cmd[-1] == "gpt2":
            assert "124,439,808" in out


def _commands() -> list[str]:
    """Every gptbert command line of the README's bash blocks (continuations joined, comments cut)."""
    out = []
    for block in _blocks("bash"):
        text = re.sub(r"\\\n\s*", " ", block)
        for line in text.splitlines():
            line = line.split(" #")[0].strip()
            m = re.search(r"(?:^|-m )gptbert (.+)$", line)
            if m:
                out.append(m.group(1))
    return out


@pytest.mark.parametrize("line", _commands())
def test_readme_commands_parse(line: str) -> None:
    """The README's commands name real subcommands and options with valid values (parsed, not run)."""
    import shlex

    from gptbert.cli import build_parser

    args = build_parser().parse_args(shlex.split(line))
    assert callable(getattr(args, "func", None))


def test_readme_has_commands() -> None:
    assert len(_commands()) >= 10


def test_readme_activates_the_venv_right_after_the_two_commands() -> None:
    """`make demo` / `make test` create .venv; the next block puts `gptbert` on PATH."""
    assert _blocks("bash")[1].strip() == ". .venv/bin/activate"


def test_readme_data_paths_exist(shared_data: Path) -> None:
    """Every ../shared/data file a README command reads is there (no made-up corpus.txt)."""
    root = README.parent
    paths = sorted({p for line in _commands() for p in re.findall(r"\.\./shared/data/\S+", line)})
    assert paths
    missing = [p for p in paths if not (root / p).exists() and not (shared_data / p.split("data/", 1)[1]).exists()]
    assert not missing, missing
    for line in _commands():
        assert not re.search(r"(?:^|\s)corpus\.txt\b", line), line

"""The hostile-input corpus (issue 15): every row of tests/reliability/_cases.py runs the command
line in-process and must end with the expected exit code and a one-line message naming what was
wrong: no traceback, no file replaced without --force, no half-written output left behind."""

from __future__ import annotations

import io
import shlex
import shutil
import sys
import traceback
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from gptbert.cli import build_parser as _build_parser
from tests.reliability._cases import CASES, Case
from tests.reliability._inputs import write_inputs


class _Served(Exception):
    """Raised instead of serving: ``gptbert serve`` got past every check and would bind the port."""


def _print_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                   file: object = None, line: str | None = None) -> None:
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


_PARSER: list[Any] = []


def _parser() -> Any:
    """The command line's parser, built once: argparse rebuilds ~280 options in ~0.1 s, which over
    hundreds of cases would be most of this test's time (a parser is reusable across parse_args)."""
    if not _PARSER:
        _PARSER.append(_build_parser())
    return _PARSER[0]


def run_cli(argv: list[str], stdin: str = "") -> tuple[int | str, str, str]:
    """(exit code, stdout, stderr) of ``gptbert ARGV`` run in this process; the code is
    'traceback' (stderr then holds it) when an exception escaped, 'served' when serve would bind."""
    import gptbert.cli
    from gptbert.cli import main

    real_build = gptbert.cli.build_parser
    gptbert.cli.build_parser = _parser

    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with redirect_stdout(out), redirect_stderr(err), warnings.catch_warnings():
            warnings.simplefilter("default")  # printed on (captured) stderr, as a user sees them
            warnings.showwarning = _print_warning
            try:
                code: int | str = main(argv)
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
            except _Served:
                code = "served"
            except BaseException:  # noqa: BLE001  (what the user would see as a traceback)
                code = "traceback"
                err.write(traceback.format_exc())
    finally:
        sys.stdin = old_stdin
        gptbert.cli.build_parser = real_build
    return code, out.getvalue(), err.getvalue()


def check_case(case: Case, code: int | str, err: str) -> None:
    assert "Traceback" not in err, f"{case.id}: traceback\n{err[-3000:]}"
    assert code == case.code, f"{case.id}: exit {code!r}, expected {case.code}\n{err[-2000:]}"
    lines = [line for line in err.splitlines() if line.strip()]
    if case.warn:
        hits = [line for line in lines if "warning" in line.lower() and case.frag.lower() in line.lower()]
        assert hits, f"{case.id}: no warning line naming {case.frag!r}\n{err[-2000:]}"
    elif case.code == 2:
        assert lines, f"{case.id}: exit 2 without a message"
        last = lines[-1]
        assert last.startswith("gptbert") and "error:" in last, f"{case.id}: last line is not the error\n{err[-2000:]}"
        assert case.frag.lower() in last.lower(), f"{case.id}: {last!r} does not name {case.frag!r}"


def _marks(case: Case) -> list[pytest.MarkDecorator]:
    return []


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=_marks(c)) for c in CASES])
def test_case(case: Case, runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if "cpu-only" in case.tags:
        import torch

        if torch.cuda.is_available():
            pytest.skip("the case needs a machine without CUDA")
    import uvicorn

    def no_serve(self: object) -> None:
        raise _Served()

    monkeypatch.setattr(uvicorn.Server, "run", no_serve)
    write_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = {name: (tmp_path / name).read_bytes() for name in case.keep}
    shutil.copyfile(runs["store"], tmp_path / "store.db")  # a results store of its own (commands may migrate it)
    argv = shlex.split(case.argv.format(t=tmp_path, **{**runs, "store": tmp_path / "store.db"}))
    code, _, err = run_cli(argv, case.stdin)
    check_case(case, code, err)
    for name, content in before.items():
        assert (tmp_path / name).read_bytes() == content, f"{case.id}: {name} was changed"
    for name in case.absent:
        assert not (tmp_path / name).exists(), f"{case.id}: {name} was left behind"
    leftovers = [p.name for p in tmp_path.rglob(".*tmp-*")]
    assert not leftovers, f"{case.id}: temporary files left behind: {leftovers}"

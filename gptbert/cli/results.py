"""``gptbert results list|show|export``: the history of comparisons in a results store (runs.db)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gptbert.cli import CLIError

DEFAULT_DB = "runs.db"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "results", help="list, show and export stored comparison results",
        description="Browse the results store written by `gptbert compare` (an SQLite file, default runs.db).",
    )
    sub = p.add_subparsers(dest="results_command", metavar="SUBCOMMAND")

    def db_option(q: argparse.ArgumentParser) -> None:
        q.add_argument("--db", default=DEFAULT_DB, metavar="FILE", help=f"results store (default: {DEFAULT_DB})")

    q = sub.add_parser("list", help="one line per stored comparison")
    db_option(q)
    q.add_argument("--task", default=None, help="only comparisons of this task")
    q.set_defaults(func=_list)

    q = sub.add_parser("show", help="one comparison: candidates and the recommendation")
    q.add_argument("id", metavar="ID", help="comparison id (a unique prefix is enough)")
    db_option(q)
    q.add_argument("--json", action="store_true", help="print the full comparison as JSON")
    q.set_defaults(func=_show)

    q = sub.add_parser("export", help="write all stored results to a CSV or JSON file")
    db_option(q)
    q.add_argument("--format", choices=["csv", "json"], default="csv",
                   help="csv: one row per candidate; json: full comparisons (default: csv)")
    q.add_argument("--out", required=True, metavar="FILE",
                   help="output file ('-' for stdout; an existing file is replaced only with --force)")
    q.add_argument("--force", action="store_true", help="replace an existing --out file")
    q.add_argument("--task", default=None, help="only results of this task")
    q.set_defaults(func=_export)

    p.set_defaults(func=lambda args: _missing_subcommand(p))


def _missing_subcommand(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _open(db: str) -> Any:
    from gptbert.results import ResultsStore

    path = Path(db)
    if path.is_dir():
        raise CLIError(f"--db {path}: is a folder, expected a results store file (SQLite)")
    if not path.is_file():
        raise CLIError(f"no results store at {path}; run `gptbert compare` first or pass --db FILE")
    try:
        return ResultsStore(path)
    except ValueError as e:
        raise CLIError(str(e)) from None


def text_table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain fixed-width table."""
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def _list(args: argparse.Namespace) -> int:
    store = _open(args.db)
    items = [c for c in store.list() if args.task is None or c["task"] == args.task]
    if not items:
        print(f"no comparisons in {args.db}" + (f" for task {args.task}" if args.task else ""))
        return 0
    rows = [[c["id"], c["created_at"], c["task"] or "-", f"{c['n_ok']}/{c['n_candidates']}", c["version"] or "-"]
            for c in items]
    print(text_table(["id", "created", "task", "ok/candidates", "gptbert"], rows))
    return 0


def _show(args: argparse.Namespace) -> int:
    from gptbert.report import recommendation_for, summary_table

    store = _open(args.db)
    try:
        comparison = store.get(args.id)
    except KeyError as e:
        raise CLIError(str(e.args[0])) from None
    if args.json:
        print(json.dumps(comparison.to_dict(), indent=2))
        return 0
    print(f"comparison {comparison.id}  task {comparison.task}  created {comparison.created_at}")
    data = ", ".join(f"{k}={v}" for k, v in comparison.data.items() if v)
    if data:
        print(f"data: {data}")
    hw = comparison.hardware or {}
    if hw:
        gpu = (hw.get("gpu") or {}).get("name") if isinstance(hw.get("gpu"), dict) else None
        print(f"hardware: {hw.get('cpu_model') or '?'}, {hw.get('usable_cores') or hw.get('logical_cores') or '?'} "
              f"cores{', GPU ' + gpu if gpu else ''}")
    print()
    table = summary_table(comparison)
    print(text_table(table.headers, table.rows))
    failed = [c for c in comparison.candidates if not c.ok]
    for c in failed:
        print(f"{c.name} {c.status}: {c.error or 'no error message recorded'}")
    print()
    print(recommendation_for(comparison).text)
    return 0


def _export(args: argparse.Namespace) -> int:
    from gptbert.cli._args import check_out_file

    if args.out != "-":
        check_out_file(args.out, force=args.force)
    store = _open(args.db)
    if args.out == "-":
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = store.export(Path(tmp) / f"export.{args.format}", args.format, task=args.task)
            sys.stdout.write(path.read_text(encoding="utf-8"))
        return 0
    try:
        path = store.export(args.out, args.format, task=args.task)
    except OSError as e:
        raise CLIError(f"cannot write {args.out}: {e}") from None
    n = len(store.candidates(args.task))
    print(f"wrote {path} ({args.format}, {n} candidate result{'s' if n != 1 else ''})", file=sys.stderr)
    return 0

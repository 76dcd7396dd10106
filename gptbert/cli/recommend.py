"""``gptbert recommend``: pick a model from measured results, or from priors when there are none."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from gptbert.cli import CLIError
from gptbert.cli._args import DATA_FORMATS_HELP, add_column_options, column_options

DB_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "recommend", help="which model to deploy, from measurements (or priors if nothing was measured)",
        description="Choose among the candidates of a comparison under deployment limits, citing the "
                    "measured numbers. Without --results, give --task for a recommendation from documented "
                    "priors (docs/recommend-priors.md).",
    )
    p.add_argument("--results", default=None, metavar="PATH",
                   help="a run folder (with results.json), a results.json file or a results store (runs.db)")
    p.add_argument("--id", default=None, metavar="ID",
                   help="with a results store: the comparison to use (default: the latest, of --task if given)")
    p.add_argument("--task", default=None,
                   help="task: classify, tokens, qa, generate (or an alias such as ner, sentiment)")
    p.add_argument("--max-latency-ms", type=float, default=None, metavar="MS", help="largest p95 latency at batch 1")
    p.add_argument("--max-memory-mb", type=float, default=None, metavar="MB", help="largest inference peak RSS")
    p.add_argument("--max-disk-mb", type=float, default=None, metavar="MB",
                   help="largest weight size at the deployed precision")
    p.add_argument("--min-quality", type=float, default=None, metavar="X",
                   help="worst acceptable dev quality (largest value for perplexity-like metrics)")
    p.add_argument("--needs-generation", action="store_true", help="the application generates text")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="deployment device (default: cpu)")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16", "int8"], default=None,
                   help="deploy at this precision only (default: each candidate's fastest allowed one)")
    p.add_argument("--data", default=None, metavar="FILE",
                   help=f"priors only: a training file to profile (size, label balance, lengths): {DATA_FORMATS_HELP}, "
                        "or a .txt corpus")
    add_column_options(p)
    p.add_argument("--json", action="store_true", help="print the recommendation as JSON")
    p.set_defaults(func=run)


def _constraints(args: argparse.Namespace) -> Any:
    from gptbert.recommend import Constraints

    try:
        return Constraints(
            max_latency_ms=args.max_latency_ms, max_memory_mb=args.max_memory_mb, max_disk_mb=args.max_disk_mb,
            min_quality=args.min_quality, needs_generation=args.needs_generation, device=args.device,
            precision=args.precision,
        )
    except ValueError as e:
        raise CLIError(str(e).replace("Constraints.", "--").replace("_", "-")) from None


def _load_comparison(args: argparse.Namespace) -> Any:
    from gptbert.results import ResultsStore, load_results_json

    path = Path(args.results)
    if not path.exists():
        raise CLIError(f"--results {path}: no such file or folder")
    if path.is_dir():
        if (path / "results.json").is_file():
            path = path / "results.json"
        elif (path / "runs.db").is_file():
            path = path / "runs.db"
        else:
            raise CLIError(f"--results {path}: folder has neither results.json nor runs.db")
    if path.suffix.lower() in DB_SUFFIXES:
        try:
            store = ResultsStore(path)
            if args.id:
                return store.get(args.id)
            items = [c for c in store.list() if args.task is None or _same_task(c["task"], args.task)]
        except (KeyError, ValueError) as e:
            raise CLIError(str(e.args[0] if isinstance(e, KeyError) else e)) from None
        if not items:
            raise CLIError(f"{path}: no stored comparison" + (f" for task {args.task}" if args.task else ""))
        return store.get(items[-1]["id"])
    try:
        comparison = load_results_json(path)
    except (ValueError, FileNotFoundError) as e:
        raise CLIError(str(e)) from None
    if args.task and not _same_task(comparison.task, args.task):
        raise CLIError(f"{path} holds task {comparison.task!r}, not {args.task!r}")
    return comparison


def _same_task(a: str | None, b: str) -> bool:
    from gptbert.recommend import normalize_task

    if a is None:
        return False
    if a == b:
        return True
    try:
        return normalize_task(a) == normalize_task(b)
    except ValueError:
        return False


def _profile(args: argparse.Namespace) -> dict[str, Any]:
    """The data layer's profile of the --data file (columns and split as given)."""
    from gptbert.recommend import profile_data_file

    try:
        return profile_data_file(args.data, **column_options(args))
    except FileNotFoundError:
        raise CLIError(f"--data {args.data}: no such file or folder") from None
    except (OSError, ValueError) as e:
        raise CLIError(f"--data {args.data}: {e}") from None


def run(args: argparse.Namespace) -> int:
    from gptbert.recommend import normalize_task, recommend, recommend_from_priors

    constraints = _constraints(args)
    if args.results:
        if args.data:
            raise CLIError("--data is for priors only; measured results already carry their data profile")
        comparison = _load_comparison(args)
        rec = recommend(comparison.candidates, constraints, hardware=comparison.hardware or None)
    else:
        if not args.task:
            raise CLIError("give --results RUN_DIR|results.json|runs.db, or --task for a recommendation from priors")
        try:
            normalize_task(args.task)
        except ValueError as e:
            raise CLIError(str(e)) from None
        from gptbert.measure import hardware_profile

        profile = _profile(args) if args.data else None
        rec = recommend_from_priors(args.task, profile, hardware_profile(), constraints)
    if args.json:
        print(json.dumps(rec.to_dict(), indent=2))
    else:
        print(rec.text)
    return 0 if rec.choice is not None else 1

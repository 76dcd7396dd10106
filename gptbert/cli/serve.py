"""``gptbert serve RUN_DIR``: the HTTP API, metrics and a small web page for one model."""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import logging
import sys
from pathlib import Path

from gptbert.cli import CLIError

SERVE_MODULES = ("fastapi", "uvicorn", "prometheus_client")


def register(sub: argparse._SubParsersAction) -> None:
    from gptbert.cli._args import add_dataclass_arguments
    from gptbert.serve import ServeSettings  # no fastapi / torch import

    p = sub.add_parser(
        "serve", help="serve a run directory over HTTP (classify, embed, fill-mask, answer, generate)",
        description="Serve one model: POST /v1/classify, /v1/embed, /v1/fill-mask, /v1/answer, /v1/generate "
                    "(stream=true: server-sent events) as the model allows; GET /healthz, /readyz, /metrics "
                    "(Prometheus), /docs (OpenAPI) and a web page at /. Concurrent requests are batched "
                    "dynamically on one model thread. SIGTERM drains in-flight requests before exiting.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory (or Hugging Face directory) to serve")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default: %(default)s, this machine only; anything else needs care)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default: %(default)s)")
    p.add_argument("--api-key-file", default=None,
                   help="file holding the API key that /v1/* and /metrics then require (a key on the command "
                        "line would show in the process list)")
    add_dataclass_arguments(p, ServeSettings, skip=("run_dir", "api_key"), group="limits and options")
    p.set_defaults(func=cmd_serve)


def _read_key(path: str) -> str:
    try:
        key = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise CLIError(f"--api-key-file {path}: {e}") from None
    if not key:
        raise CLIError(f"--api-key-file {path}: the file is empty")
    if any(c.isspace() for c in key) or not key.isprintable():
        raise CLIError(f"--api-key-file {path}: the key must be one line of printable characters without spaces")
    return key


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    missing = [m for m in SERVE_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise CLIError(f"needs {', '.join(missing)}: pip install 'gptbert[serve]'")
    from gptbert.cli._args import dataclass_from_args
    from gptbert.serve import ServeSettings

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise CLIError(f"{run_dir}: no such run directory")
    if not 0 <= args.port <= 65535:
        raise CLIError(f"--port {args.port}: expected 0-65535")
    key = _read_key(args.api_key_file) if args.api_key_file else None
    settings: ServeSettings = dataclass_from_args(ServeSettings, args, run_dir=str(run_dir), api_key=key)
    try:
        settings.validate()
    except ValueError as e:
        raise CLIError(f"--{str(e).replace('_', '-')}") from None
    if not _is_loopback(args.host):
        print(f"gptbert serve: warning: binding {args.host} exposes the server beyond this machine"
              + ("" if key else " without an API key (--api-key-file)"), file=sys.stderr)

    import torch
    import uvicorn

    from gptbert.api import LM
    from gptbert.serve.app import create_app
    from gptbert.serve.logs import configure_logging

    configure_logging()
    log = logging.getLogger("gptbert.serve")
    if settings.threads:
        torch.set_num_threads(settings.threads)
    try:
        lm = LM.load(run_dir, device=settings.device, precision=settings.precision)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise CLIError(f"cannot load {run_dir}: {e}") from None
    app = create_app(settings, lm)
    log.info("serving", extra={"fields": {
        "event": "serving", "model": run_dir.name, "url": f"http://{args.host}:{args.port}/",
        "capabilities": sorted(lm.capabilities), "max_batch": settings.max_batch,
        "auth": key is not None, "log_text": settings.log_text, "threads": torch.get_num_threads(),
        "engine": lm.choice,
    }})
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_config=None, access_log=False, server_header=False,
        lifespan="on", timeout_graceful_shutdown=int(settings.timeout_s) + 5,
        # longer than clients' usual idle expiry (5 s in httpx), so a reused connection is not closed under them
        timeout_keep_alive=30,
    )
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1

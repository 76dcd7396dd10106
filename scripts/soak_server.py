"""Soak test of ``gptbert serve``: 64 concurrent loopback clients for 10 minutes; is memory flat?

Starts the server on a run directory (``--run``; default: a tiny bert-tiny classifier built from
the bundled demo data in a temporary folder), waits for /readyz, then runs ``--clients`` threads,
each with its own keep-alive connection, sending a mix of good requests (classify, embed) and
bad ones (a lone surrogate, invalid JSON, too many texts) as fast as they are answered. The
server's resident memory (VmRSS) is sampled every ``--sample-s`` seconds. Prints the RSS after the
first minute (warm-up done) and at the end, their ratio, and the request counts; exits 1 when the
ratio is above ``--max-ratio`` (default 1.10), any answer was a 5xx, or a connection failed.

Run: python scripts/soak_server.py [--minutes 10] [--clients 64] [--run DIR]
Not a unit test (it takes minutes); the figures go into the issue / PR it is run for.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "gptbert" / "demo_data"


def build_run(root: Path) -> Path:
    """A bert-tiny classifier (untrained weights: serving does not care) with the demo data's tokenizer."""
    sys.path.insert(0, str(REPO))
    from gptbert.run import TaskInfo, save_run
    from gptbert.source import resolve_source

    texts = (DEMO / "corpus.txt").read_text(encoding="utf-8").splitlines()[:2000]
    src = resolve_source("bert-tiny", head="classify", num_labels=2, texts=texts, vocab_size=2000, max_len=64)
    return save_run(root / "soak-run", src.model, src.tokenizer, TaskInfo(task="classify", max_len=64),
                    labels=["negative", "positive"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def wait_ready(base: str, proc: subprocess.Popen, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with code {proc.returncode} before it was ready")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the server was not ready after {timeout_s:.0f} s")


SENTENCES = (DEMO / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]


def one_request(client: httpx.Client, rng: random.Random) -> int:
    """Send one request of the mix; returns the HTTP status."""
    kind = rng.random()
    texts = [rng.choice(SENTENCES).split("\t")[0] for _ in range(rng.randint(1, 8))]
    if kind < 0.6:
        return client.post("/v1/classify", json={"texts": texts}).status_code
    if kind < 0.85:
        return client.post("/v1/embed", json={"texts": texts}).status_code
    if kind < 0.9:
        body = b'{"texts": ["\\ud800 lone surrogate"]}'
    elif kind < 0.95:
        body = b'{"texts": ['
    else:
        body = json.dumps({"texts": ["a"] * 1000}).encode()
    return client.post("/v1/classify", content=body, headers={"content-type": "application/json"}).status_code


def client_loop(base: str, stop: threading.Event, seed: int, counts: Counter, lock: threading.Lock) -> None:
    rng = random.Random(seed)
    local: Counter = Counter()
    with httpx.Client(base_url=base, timeout=60) as client:
        while not stop.is_set():
            try:
                local[one_request(client, rng)] += 1
            except httpx.HTTPError as e:
                local[f"connection error: {type(e).__name__}"] += 1
    with lock:
        counts.update(local)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="soak duration (default 10)")
    ap.add_argument("--clients", type=int, default=64, help="concurrent clients (default 64)")
    ap.add_argument("--run", type=Path, default=None, help="run directory to serve (default: a tiny one)")
    ap.add_argument("--sample-s", type=float, default=5.0, help="RSS sampling period (default 5 s)")
    ap.add_argument("--max-ratio", type=float, default=1.10, help="largest end / minute-1 RSS ratio that passes")
    ap.add_argument("--threads", type=int, default=None, help="server --threads (default: its own)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="gptbert-soak-") as tmp:
        run = args.run or build_run(Path(tmp))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "gptbert", "serve", str(run), "--port", str(port),
               "--queue-size", str(max(256, 4 * args.clients))]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready(base, server)
            print(f"serving {run} on {base} (pid {server.pid}); RSS at ready {rss_mb(server.pid):.1f} MB; "
                  f"{args.clients} clients for {args.minutes:g} min", flush=True)
            stop, lock, counts = threading.Event(), threading.Lock(), Counter()
            threads = [threading.Thread(target=client_loop, args=(base, stop, k, counts, lock), daemon=True)
                       for k in range(args.clients)]
            for t in threads:
                t.start()
            start = time.monotonic()
            end = start + 60 * args.minutes
            samples: list[tuple[float, float]] = []
            while time.monotonic() < end:
                time.sleep(min(args.sample_s, max(0.0, end - time.monotonic())))
                if server.poll() is not None:
                    raise SystemExit(f"the server died (exit code {server.returncode}) during the soak")
                samples.append((time.monotonic() - start, rss_mb(server.pid)))
                print(f"  t={samples[-1][0]:6.0f} s  RSS {samples[-1][1]:7.1f} MB", flush=True)
            stop.set()
            for t in threads:
                t.join(timeout=90)
        finally:
            server.terminate()
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
    after_1 = next((mb for t, mb in samples if t >= 60.0), samples[0][1])
    final = samples[-1][1]
    ratio = final / after_1
    total = sum(counts.values())
    bad = {k: v for k, v in counts.items() if not isinstance(k, int) or k >= 500}
    print(f"RSS after minute 1: {after_1:.1f} MB; at the end ({samples[-1][0]:.0f} s): {final:.1f} MB; "
          f"ratio {ratio:.3f} (limit {args.max_ratio:.2f})")
    print(f"requests: {total:,} ({total / samples[-1][0]:.0f}/s); by status: "
          + ", ".join(f"{k}: {v:,}" for k, v in sorted(counts.items(), key=lambda kv: str(kv[0]))))
    ok = ratio <= args.max_ratio and not bad
    print("PASS" if ok else f"FAIL{' (5xx or connection errors: ' + str(bad) + ')' if bad else ''}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

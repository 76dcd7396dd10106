"""Load test of ``gptbert serve``: throughput, latency, errors and memory, batched vs not.

    python benchmarks/load_test.py                          # 64 clients x 60 s, --max-batch 1 then 32
    python benchmarks/load_test.py --duration 15 --clients 32
    python benchmarks/load_test.py runs/sst2 --batches 32   # an existing classification run directory

For each ``--max-batch`` value the script starts its own server (``python -m gptbert
serve``) on 127.0.0.1 only, waits for ``/readyz``, warms it up, then runs ``--clients``
concurrent keep-alive clients that each POST one sentence at a time to
``/v1/classify`` for ``--duration`` seconds, and stops the server with SIGTERM. It
reports requests/s, latency percentiles, errors (goal: 0), the server's resident memory
after warm-up and after the load (goal: at most 10 % growth) and the mean batch size
read from the server's own ``/metrics``.

Without RUN_DIR a classification run is written to a temporary directory: ``--preset``
(default bert-mini) with a fresh classification head and a WordPiece tokenizer trained
on the SST-2 sentences of the shared data (weights untrained: speed does not depend on
them). The clients send those sentences.

The clients run in this process on the same machine, so they compete with the server
for CPU; numbers from a shared machine vary from run to run. ``model ms/input`` (time
in model calls per input, from the server's metrics) shows the model-side effect of
batching apart from HTTP overhead; on a CPU, padding every text of a batch to its
longest one eats into the gain.

Memory: with glibc, larger batches raise RSS by some tens of MiB before it levels off
(the allocator's dynamic mmap threshold keeps freed large blocks). Starting the server
with ``MALLOC_MMAP_THRESHOLD_=131072 MALLOC_ARENA_MAX=2`` in the environment (this
script passes its environment on) keeps RSS flat; that is allocator behaviour, not a leak.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder would come first on sys.path and its tokenize.py would
# shadow the standard module (asyncio imports it); put the repository root there instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402

import httpx  # noqa: E402

HOST = "127.0.0.1"  # never anything else: this is a load generator
SHARED = Path(os.environ.get("GPTBERT_SHARED_DATA", _HERE.parent.parent / "shared" / "data"))
MAX_CLIENTS = 1024
MAX_DURATION_S = 3600.0


@dataclass
class Result:
    max_batch: int
    clients: int
    duration_s: float
    requests: int = 0
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    rps: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    rss_warm_mib: float = 0.0
    rss_after_mib: float = 0.0
    rss_peak_mib: float = 0.0
    rss_growth_pct: float = 0.0
    mean_batch: float = 0.0
    model_ms_per_input: float = 0.0
    """Wall time of model calls per input: the model-side effect of batching, without HTTP."""
    model_busy_pct: float = 0.0
    """Share of the measured time the worker spent in model calls."""
    rss_samples_mib: list[float] = field(default_factory=list)
    """Server RSS once a second during the load (JSON output only)."""
    shutdown_s: float = 0.0
    exit_code: int | None = None


# -- the model and the sentences ------------------------------------------------------------


def sentences(limit: int = 2000) -> list[str]:
    path = SHARED / "sst2" / "dev.tsv"
    if path.is_file():
        rows = path.read_text(encoding="utf-8").splitlines()[1:]
        texts = [r.split("\t")[0].strip() for r in rows if r.strip()]
        if texts:
            return texts[:limit]
    rng = random.Random(0)  # no shared data: synthetic sentences
    words = "the a film story actor plot scene quiet loud funny dull bright long short good bad".split()
    return [" ".join(rng.choice(words) for _ in range(rng.randint(5, 25))) for _ in range(limit)]


def build_run(out: Path, preset: str, texts: list[str], max_len: int) -> Path:
    from gptbert.source import resolve_source
    from gptbert.run import TaskInfo, save_run

    src = resolve_source(preset, head="classify", num_labels=2, texts=texts, vocab_size=4000, max_len=max_len)
    save_run(out, src.model, src.tokenizer, TaskInfo(task="classify", max_len=max_len), labels=["negative", "positive"])
    return out


# -- the server -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss / 2**20
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    def __init__(self, run_dir: Path, max_batch: int, max_wait_ms: float, threads: int, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log = log_path.open("wb")
        cmd = [sys.executable, "-m", "gptbert", "serve", str(run_dir), "--host", HOST, "--port", str(self.port),
               "--max-batch", str(max_batch), "--max-wait-ms", str(max_wait_ms), "--queue-size", "4096",
               "--timeout-s", "60", "--threads", str(threads)]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_HERE.parent), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"server not ready after {timeout:.0f} s; see {self.log.name}")

    def stop(self) -> tuple[int | None, float]:
        start = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()
        return self.proc.returncode, time.monotonic() - start


# -- the clients ----------------------------------------------------------------------------


async def load(url: str, texts: list[str], clients: int, duration: float, seed: int,
               rss: list[float], pid: int) -> tuple[list[float], dict[str, int], float]:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        stop_at = time.perf_counter() + duration

        async def one_client(i: int) -> None:
            rng = random.Random(seed * 1000 + i)
            while time.perf_counter() < stop_at:
                body = {"texts": [rng.choice(texts)]}
                start = time.perf_counter()
                try:
                    r = await client.post("/v1/classify", json=body)
                    kind = None if r.status_code == 200 else f"http {r.status_code}"
                except httpx.HTTPError as e:
                    kind = type(e).__name__
                if kind is None:
                    latencies.append(time.perf_counter() - start)
                else:
                    errors[kind] = errors.get(kind, 0) + 1

        async def sample_rss() -> None:
            while time.perf_counter() < stop_at:
                rss.append(rss_mib(pid))
                await asyncio.sleep(1.0)

        start = time.perf_counter()
        await asyncio.gather(sample_rss(), *(one_client(i) for i in range(clients)))
        elapsed = time.perf_counter() - start
    return latencies, errors, elapsed


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def batch_stats(metrics: str) -> tuple[float, float, float]:
    """(inputs, model calls, seconds in model calls) of classification so far, from the server's /metrics."""
    values = []
    for name in ("gptbert_batch_size_sum", "gptbert_batch_size_count", "gptbert_batch_duration_seconds_sum"):
        m = re.search(rf'^{name}\{{task="classify"\}} (\S+)$', metrics, re.M)
        values.append(float(m.group(1)) if m else 0.0)
    return values[0], values[1], values[2]


def run_one(run_dir: Path, texts: list[str], args: argparse.Namespace, max_batch: int, log_dir: Path) -> Result:
    res = Result(max_batch=max_batch, clients=args.clients, duration_s=args.duration)
    server = Server(run_dir, max_batch, args.max_wait_ms, args.threads, log_dir / f"server-batch{max_batch}.log")
    try:
        server.wait_ready()
        asyncio.run(load(server.url, texts, args.clients, args.warmup, args.seed + 1, [], server.proc.pid))
        res.rss_warm_mib = rss_mib(server.proc.pid)
        inputs0, calls0, seconds0 = batch_stats(httpx.get(server.url + "/metrics").text)
        rss: list[float] = []
        latencies, errors, elapsed = asyncio.run(
            load(server.url, texts, args.clients, args.duration, args.seed, rss, server.proc.pid))
        res.rss_after_mib = rss_mib(server.proc.pid)
        res.rss_peak_mib = max(rss + [res.rss_after_mib])
        res.rss_samples_mib = [round(x, 1) for x in rss]
        inputs1, calls1, seconds1 = batch_stats(httpx.get(server.url + "/metrics").text)
        res.mean_batch = (inputs1 - inputs0) / max(1.0, calls1 - calls0)
        res.model_ms_per_input = 1000 * (seconds1 - seconds0) / max(1.0, inputs1 - inputs0)
        res.model_busy_pct = 100 * (seconds1 - seconds0) / elapsed
    finally:
        res.exit_code, res.shutdown_s = server.stop()
    latencies.sort()
    res.requests = len(latencies)
    res.errors = sum(errors.values())
    res.error_kinds = errors
    res.rps = len(latencies) / elapsed
    res.p50_ms, res.p95_ms, res.p99_ms = (percentile(latencies, q) * 1000 for q in (50, 95, 99))
    res.max_ms = latencies[-1] * 1000 if latencies else float("nan")
    res.rss_growth_pct = 100 * (res.rss_after_mib - res.rss_warm_mib) / res.rss_warm_mib
    return res


def _exit(code: int | None) -> str:
    """How the server ended: 0, TERM (uvicorn re-raises the SIGTERM it drained on), or the code."""
    return "TERM" if code == -signal.SIGTERM else str(code)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", nargs="?", help="classification run directory (default: build one)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load per server (default: 60)")
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients (default: 64)")
    parser.add_argument("--batches", default="1,32", help="--max-batch values to compare (default: 1,32)")
    parser.add_argument("--max-wait-ms", type=float, default=5.0, help="server --max-wait-ms (default: 5)")
    parser.add_argument("--threads", type=int, default=0,
                        help="server --threads: torch intra-op threads (default: 0, torch's choice)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before measuring (default: 5)")
    parser.add_argument("--preset", default="bert-mini", help="model of the built run (default: bert-mini)")
    parser.add_argument("--max-len", type=int, default=64, help="max_len of the built run (default: 64)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    if not 1 <= args.clients <= MAX_CLIENTS:
        parser.error(f"--clients: 1..{MAX_CLIENTS}")
    if not 0 < args.duration <= MAX_DURATION_S:
        parser.error(f"--duration: (0, {MAX_DURATION_S:.0f}] seconds")
    batches = [int(b) for b in args.batches.split(",") if b.strip()]

    texts = sentences()
    with tempfile.TemporaryDirectory(prefix="gptbert-load-") as tmp:
        tmp_path = Path(tmp)
        if args.run_dir:
            run_dir = Path(args.run_dir)
        else:
            print(f"building a {args.preset} classification run (untrained weights) ...", flush=True)
            run_dir = build_run(tmp_path / "run", args.preset, texts, args.max_len)
        print(f"{args.clients} clients x {args.duration:g} s per server on {HOST}; {os.cpu_count()} CPUs, "
              f"server --threads {args.threads or 'default'}, "
              f"load average {os.getloadavg()[0]:.1f} (shared machine: numbers vary)", flush=True)
        results = []
        for b in batches:
            print(f"--max-batch {b} ...", flush=True)
            results.append(run_one(run_dir, texts, args, b, tmp_path))

    header = (f"{'max_batch':>9} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'errors':>6} "
              f"{'mean batch':>10} {'model ms/input':>14} {'model busy':>10} "
              f"{'RSS warm':>8} {'RSS after':>9} {'growth':>6} {'exit':>4}")
    print(header)
    for r in results:
        print(f"{r.max_batch:>9} {r.rps:>7.1f} {r.p50_ms:>7.0f} {r.p95_ms:>7.0f} {r.p99_ms:>7.0f} {r.errors:>6} "
              f"{r.mean_batch:>10.2f} {r.model_ms_per_input:>14.1f} {r.model_busy_pct:>9.0f}% "
              f"{r.rss_warm_mib:>7.0f}M {r.rss_after_mib:>8.0f}M {r.rss_growth_pct:>5.1f}% {_exit(r.exit_code):>4}")
    for r in results:
        if r.errors:
            print(f"max_batch {r.max_batch}: errors {r.error_kinds}")
    if len(results) >= 2 and results[0].rps > 0:
        print(f"throughput, max_batch {results[-1].max_batch} vs {results[0].max_batch}: "
              f"x{results[-1].rps / results[0].rps:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    ok = all(r.errors == 0 and r.rss_growth_pct <= 10 for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Greedy generation speed: gptbert.generate vs transformers' generate() on the same weights.

    python benchmarks/generate.py                  # GPT-2 124M, prompt 32, 128 new tokens, bs 1 and 8, fp32 and bf16
    python benchmarks/generate.py --quick          # 32 new tokens, one repeat (smoke test)
    python benchmarks/generate.py --threads 1      # pin torch to one thread

Weights are random (our initialisation), exported with ``gptbert.io.hf.export_hf``
and loaded by ``transformers``; bf16 means every weight cast to bfloat16. Both sides
decode greedily with a KV cache and no eos, so both produce exactly ``--new`` tokens
per row; tok/s counts new tokens of all rows over the whole call (prefill included).

Timing: a short warmup call each, then ``--repeats`` rounds alternating ours / theirs; the
best round is reported (other processes may share the CPU: the best round is the
least disturbed one). tok/s is by wall clock; tok/cpu-s by the process's CPU time,
which other processes on a shared machine disturb much less (with ``--threads 1`` it
is the work done; with more threads it also counts time spent waiting between
threads). ``same`` is the fraction of rows whose tokens are identical (in bf16 the two
sides round differently, and greedy decoding of random weights diverges at the first
near-tie). A last line per batch size compares each side at its own fastest precision.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

# Run as a script, this folder would come first on sys.path and a sibling named like a
# standard module (benchmarks/tokenize.py) would shadow it; put the repository root there.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import torch  # noqa: E402

from gptbert.io.hf import export_hf  # noqa: E402
from gptbert.config import ModelConfig  # noqa: E402
from gptbert.generate import GenerationConfig, generate  # noqa: E402
from gptbert.models import build_model  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def best_seconds(
    fns: dict[str, Callable[[int], object]], *, repeats: int, new: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Best wall-clock and best process-CPU seconds of one call of each function over
    ``repeats`` interleaved rounds."""
    for fn in fns.values():
        fn(4)  # warmup: a few tokens are enough
    wall = {name: float("inf") for name in fns}
    cpu = dict(wall)
    for _ in range(repeats):
        for name, fn in fns.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn(new)
            wall[name] = min(wall[name], time.perf_counter() - start)
            cpu[name] = min(cpu[name], time.process_time() - start_cpu)
    return wall, cpu


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="gpt2")
    parser.add_argument("--prompt", type=int, default=32, help="prompt length in tokens")
    parser.add_argument("--new", type=int, default=128, help="new tokens per row")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=list(DTYPES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--quick", action="store_true", help="32 new tokens, one repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.new, args.repeats = 32, 1
    if args.threads:
        torch.set_num_threads(args.threads)

    import transformers

    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    ours = build_model(ModelConfig.from_name(args.preset, head="lm", dropout=0.0)).eval()
    with tempfile.TemporaryDirectory() as tmp:
        export_hf(ours, Path(tmp) / "gpt2")
        theirs = transformers.GPT2LMHeadModel.from_pretrained(Path(tmp) / "gpt2", attn_implementation="sdpa").eval()
    theirs.generation_config.eos_token_id = None  # random weights: never stop early
    theirs.generation_config.pad_token_id = 0
    cfg = GenerationConfig(max_new_tokens=args.new, pad_token_id=0)

    print(f"{args.preset}: prompt {args.prompt}, {args.new} new tokens, greedy, threads {torch.get_num_threads()}, "
          f"torch {torch.__version__}, transformers {transformers.__version__}; best of {args.repeats}")
    header = (f"{'dtype':>5} {'bs':>3} {'gptbert tok/s':>14} {'transformers tok/s':>19} {'ratio':>6} "
              f"{'gptbert tok/cpu-s':>18} {'transformers tok/cpu-s':>23} {'ratio':>6} {'same':>5}")
    print(header)
    print("-" * len(header))
    speeds: dict[tuple[str, str, int], float] = {}  # (side, dtype, bs) -> tok/s
    for dname in args.dtypes:
        ours, theirs = ours.to(DTYPES[dname]), theirs.to(DTYPES[dname])
        for bs in args.batch_sizes:
            rng = torch.Generator().manual_seed(bs)
            idx = torch.randint(0, ours.config.vocab_size, (bs, args.prompt), generator=rng)
            mask = torch.ones_like(idx)
            results: dict[str, torch.Tensor] = {}

            def run_ours(n: int) -> None:
                results["ours"] = generate(ours, idx, cfg, max_new_tokens=n)

            def run_theirs(n: int) -> None:
                with warnings.catch_warnings(), torch.inference_mode():
                    warnings.simplefilter("ignore")
                    results["theirs"] = theirs.generate(
                        idx, attention_mask=mask, max_new_tokens=n, min_new_tokens=n, do_sample=False
                    )

            wall, cpu = best_seconds({"ours": run_ours, "theirs": run_theirs}, repeats=args.repeats, new=args.new)
            a, b = results["ours"], results["theirs"]
            same = (a == b).all(dim=1).float().mean().item() if a.shape == b.shape else 0.0
            n = bs * args.new
            speeds["ours", dname, bs], speeds["theirs", dname, bs] = n / wall["ours"], n / wall["theirs"]
            print(f"{dname:>5} {bs:>3} {n / wall['ours']:>14.1f} {n / wall['theirs']:>19.1f} "
                  f"{wall['theirs'] / wall['ours']:>5.2f}x {n / cpu['ours']:>18.1f} {n / cpu['theirs']:>23.1f} "
                  f"{cpu['theirs'] / cpu['ours']:>5.2f}x {same:>5.2f}", flush=True)
    if len(args.dtypes) > 1:
        # Each side at its own fastest precision: what a user picking the faster setting of each gets.
        for bs in args.batch_sizes:
            ours_d = max(args.dtypes, key=lambda d: speeds["ours", d, bs])
            theirs_d = max(args.dtypes, key=lambda d: speeds["theirs", d, bs])
            a, b = speeds["ours", ours_d, bs], speeds["theirs", theirs_d, bs]
            print(f"bs {bs}: fastest gptbert ({ours_d}) {a:.1f} tok/s vs fastest transformers ({theirs_d}) "
                  f"{b:.1f} tok/s: {a / b:.2f}x")


if __name__ == "__main__":
    main()

"""Forward-pass speed: gptbert vs transformers on the same weights, in one process.

    python benchmarks/forward.py                # BERT-base bs32x128 + GPT-2 decode step, fp32 and bf16
    python benchmarks/forward.py --quick        # fewer repeats, smaller batch (smoke test)

BERT-base: one encoder forward of a (batch, seq_len) batch, reported as sequences/s.
GPT-2 124M: one decode step (batch 1, one new token) on top of a KV cache holding
``--past`` tokens, reported as ms/step. Weights are random (our initialisation),
exported with ``gptbert.io.hf.export_hf`` and loaded by ``transformers``; bf16
means every weight cast to bfloat16. Everything runs under ``torch.inference_mode``.

Timing: a warmup, then ``--repeats`` rounds alternating ours / theirs; each round
times ``--iters`` calls and the best round is reported (other processes share the
CPU, and the best round is the least disturbed one).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# Run as a script, this folder would come first on sys.path, and a sibling named like a
# standard module (benchmarks/tokenize.py) would shadow it; put the repository root there.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import torch  # noqa: E402

from gptbert.io.hf import export_hf  # noqa: E402
from gptbert.config import ModelConfig  # noqa: E402
from gptbert.models import build_model  # noqa: E402
from gptbert.models.transformer import KVCache  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def best_seconds(fns: dict[str, Callable[[], None]], *, iters: int, repeats: int, warmup: int) -> dict[str, float]:
    """Best (over ``repeats`` rounds) mean seconds per call of each function, rounds interleaved."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    best = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(iters):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / iters)
    return best


def bench_bert(args: argparse.Namespace, transformers, tmp: Path) -> list[tuple[str, str, float, float, str]]:
    torch.manual_seed(0)
    ours = build_model(ModelConfig.from_name("bert-base", dropout=0.0)).eval()
    export_hf(ours, tmp / "bert")
    theirs = transformers.BertModel.from_pretrained(tmp / "bert", attn_implementation="sdpa").eval()
    idx = torch.randint(1, ours.config.vocab_size, (args.batch, args.seq_len))
    mask = torch.ones_like(idx)
    rows = []
    for dname in args.dtypes:
        dtype = DTYPES[dname]
        ours, theirs = ours.to(dtype), theirs.to(dtype)
        with torch.inference_mode():
            a = ours(idx)[0].float()
            b = theirs(input_ids=idx, attention_mask=mask).last_hidden_state.float()
            diff = (a - b).abs().max().item()
            t = best_seconds(
                {"ours": lambda: ours(idx), "theirs": lambda: theirs(input_ids=idx, attention_mask=mask)},
                iters=args.iters, repeats=args.repeats, warmup=args.warmup,
            )
        rows.append((f"BERT-base bs{args.batch}x{args.seq_len}", dname, args.batch / t["ours"],
                     args.batch / t["theirs"], f"max|diff| {diff:.1e}"))
    return rows


def bench_gpt2(args: argparse.Namespace, transformers, tmp: Path) -> list[tuple[str, str, float, float, str]]:
    torch.manual_seed(0)
    ours = build_model(ModelConfig.from_name("gpt2", dropout=0.0, head="lm")).eval()
    export_hf(ours, tmp / "gpt2")
    theirs = transformers.GPT2LMHeadModel.from_pretrained(tmp / "gpt2", attn_implementation="sdpa").eval()
    past = args.past
    prompt = torch.randint(0, ours.config.vocab_size, (1, past))
    nxt = torch.randint(0, ours.config.vocab_size, (1, 1))
    rows = []
    for dname in args.dtypes:
        dtype = DTYPES[dname]
        ours, theirs = ours.to(dtype), theirs.to(dtype)
        with torch.inference_mode():
            cache = KVCache.for_model(ours, batch_size=1, max_len=past + 1, dtype=dtype)
            ours(prompt, cache=cache)
            hf_cache = theirs(input_ids=prompt, use_cache=True).past_key_values

            def ours_step() -> torch.Tensor:
                cache.length = past  # overwrite the same slot: every call sees `past` cached tokens
                return ours(nxt, cache=cache, last_only=True)[0]

            def theirs_step() -> torch.Tensor:
                out = theirs(input_ids=nxt, past_key_values=hf_cache, use_cache=True).logits
                hf_cache.crop(-1)  # drop the token just added
                return out

            diff = (ours_step().float()[:, -1] - theirs_step().float()[:, -1]).abs().max().item()
            t = best_seconds({"ours": ours_step, "theirs": theirs_step},
                             iters=args.steps, repeats=args.repeats, warmup=args.warmup)
        rows.append((f"GPT-2 decode bs1, {past} past", dname, t["ours"] * 1e3, t["theirs"] * 1e3,
                     f"max|diff| {diff:.1e}"))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--past", type=int, default=128, help="KV-cache length for the GPT-2 decode step")
    p.add_argument("--dtypes", default="fp32,bf16", help="comma-separated: fp32, bf16")
    p.add_argument("--only", choices=["bert", "gpt2"], default=None)
    p.add_argument("--iters", type=int, default=2, help="BERT forward calls per round")
    p.add_argument("--steps", type=int, default=20, help="GPT-2 decode steps per round")
    p.add_argument("--repeats", type=int, default=5, help="rounds; the best is reported")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="batch 2, 2 rounds of 1 call / 4 steps: a smoke test")
    args = p.parse_args(argv)
    args.dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    if unknown := [d for d in args.dtypes if d not in DTYPES]:
        p.error(f"unknown dtype(s) {unknown}; choose from {list(DTYPES)}")
    if args.quick:
        args.batch, args.iters, args.steps, args.repeats, args.warmup = 2, 1, 4, 2, 1
    try:
        import transformers
    except ImportError:
        p.error("this benchmark compares against transformers: pip install transformers")
    transformers.logging.set_verbosity_error()

    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs; best of {args.repeats} rounds")
    with tempfile.TemporaryDirectory() as d:
        bert = bench_bert(args, transformers, Path(d)) if args.only in (None, "bert") else []
        gpt = bench_gpt2(args, transformers, Path(d)) if args.only in (None, "gpt2") else []
    print(f"\n{'workload':<28} {'dtype':<5} {'gptbert':>12} {'transformers':>13} {'ours/theirs':>12}  check")
    for name, dname, a, b, note in bert:
        print(f"{name:<28} {dname:<5} {a:>8.3g} seq/s {b:>7.3g} seq/s {a / b:>11.2f}x  {note}")
    for name, dname, a, b, note in gpt:
        print(f"{name:<28} {dname:<5} {a:>7.4g} ms/st {b:>7.4g} ms/st {a / b:>11.2f}x  {note}")
    print("\nseq/s: higher is better (ratio > 1 = gptbert faster); ms/step: lower is better (ratio < 1 = gptbert faster)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

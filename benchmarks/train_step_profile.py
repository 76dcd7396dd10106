"""Where one training step's time goes, and what the fast paths save: AdamW implementations and torch.compile.

    python benchmarks/train_step_profile.py                         # GPT 6x384, B16 T256, fp32
    python benchmarks/train_step_profile.py --model bert --steps 3   # BERT-MLM
    python benchmarks/train_step_profile.py --quick                  # tiny: a smoke test

Same model and batch shapes as ``train_throughput.py`` (random weights and tokens). Measured:

* ``torch.profiler`` table of one eager step (forward, backward, clipping, AdamW): the ops with the
  most self CPU time, and the share of the step that is not a matrix multiply;
* ``optimizer.step()`` alone for AdamW single-tensor (torch's CPU default), ``foreach=True`` and
  ``fused=True``, on the real gradients (best of ``--opt-repeats`` calls);
* whole steps (best / mean of ``--steps`` after one warm-up) eager, and with the model under
  ``torch.compile`` (the first, compiling call timed apart: it is what a time budget pays).

The CPU flags and the load average are printed with every figure: the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import torch  # noqa: E402

from gptbert.config import ModelConfig  # noqa: E402
from gptbert.models import build_model  # noqa: E402
from gptbert.training import TrainArgs, build_optimizer  # noqa: E402

FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_int8")
MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul", "aten::linear")


def cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return "unknown"
    have = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            have.update(line.split(":", 1)[1].split())
    return " ".join(f"{f}{'+' if f in have else '-'}" for f in FLAGS)


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def make(args: argparse.Namespace) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    family = args.model
    config = ModelConfig(name=f"{family}-{args.layers}x{args.width}", family=family, n_layer=args.layers,
                         n_head=args.heads, n_embd=args.width, block_size=args.seq, vocab_size=args.vocab,
                         dropout=0.1, head="lm" if family == "gpt" else "mlm")
    torch.manual_seed(0)
    model = build_model(config).train()
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(4, args.vocab, (args.batch, args.seq), generator=g)  # (B, T)
    if family == "gpt":
        batch = {"idx": idx, "targets": torch.roll(idx, -1, dims=1)}
    else:
        targets = torch.full_like(idx, -100)
        pick = torch.rand(idx.shape, generator=g) < 0.15
        targets[pick] = idx[pick]
        batch = {"idx": torch.where(pick, torch.full_like(idx, 3), idx), "targets": targets,
                 "attention_mask": torch.ones_like(idx), "token_type_ids": torch.zeros_like(idx)}
    return model, batch


def optimizer(model: torch.nn.Module, impl: str) -> torch.optim.AdamW:
    targs = TrainArgs(lr=3e-4, weight_decay=0.01, device="cpu", optimizer_impl=impl)  # type: ignore[call-arg]
    return build_optimizer(model, targs)


def step(model: torch.nn.Module, opt: torch.optim.Optimizer, batch: dict[str, torch.Tensor]) -> float:
    loss = model(**batch)[1]
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return float(loss.detach())


def timed_steps(model: torch.nn.Module, opt: torch.optim.Optimizer, batch: dict[str, torch.Tensor],
                n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        step(model, opt, batch)
        out.append(time.perf_counter() - t)
    return out


def optimizer_only(model: torch.nn.Module, batch: dict[str, torch.Tensor], impl: str, repeats: int) -> float:
    """Best seconds of optimizer.step() with ``impl`` on the gradients of one backward pass."""
    opt = optimizer(model, impl)
    model.zero_grad(set_to_none=True)
    model(**batch)[1].backward()
    opt.step()  # allocates the state
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        opt.step()
        best = min(best, time.perf_counter() - t)
    model.zero_grad(set_to_none=True)
    return best


def profile_step(model: torch.nn.Module, batch: dict[str, torch.Tensor], top: int) -> None:
    from torch.profiler import ProfilerActivity, profile

    opt = optimizer(model, "fused")
    step(model, opt, batch)  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step(model, opt, batch)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    mm = sum(e.self_cpu_time_total for e in events if e.key in MATMUL_OPS)
    print(f"\nprofile of one eager step (load {load()}): self CPU {total / 1e6:.2f} s, matmul ops "
          f"{mm / total:.0%}, everything else {1 - mm / total:.0%}")
    print(events.table(sort_by="self_cpu_time_total", row_limit=top, max_name_column_width=40))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=["gpt", "bert"], default="gpt")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--width", type=int, default=384)
    p.add_argument("--heads", type=int, default=6)
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--steps", type=int, default=4, help="timed steps per variant (after one warm-up)")
    p.add_argument("--opt-repeats", type=int, default=5)
    p.add_argument("--top", type=int, default=18, help="rows of the profiler table")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    p.add_argument("--no-profile", action="store_true", help="skip the profiler table")
    p.add_argument("--no-optimizer", action="store_true", help="skip the optimizer.step() timings")
    p.add_argument("--eager", default="single,fused", help="AdamW kernels of the eager whole-step runs")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--quick", action="store_true", help="2 layers x 64, B2 T32, vocab 500, 2 steps")
    args = p.parse_args(argv)
    if args.quick:
        args.layers, args.width, args.heads, args.batch, args.seq, args.vocab, args.steps = 2, 64, 2, 2, 32, 500, 2
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, ISA {torch.backends.cpu.get_cpu_capability()}, threads "
          f"{torch.get_num_threads()}; CPU flags: {cpu_flags()}; load {load()}")
    print(f"{args.model} {args.layers}x{args.width}, B{args.batch} T{args.seq}, vocab {args.vocab}, fp32")
    model, batch = make(args)
    if not args.no_profile:
        profile_step(model, batch, args.top)

    if not args.no_optimizer:
        print(f"\noptimizer.step() alone, best of {args.opt_repeats} (load {load()}):")
        opt_s = {impl: optimizer_only(model, batch, impl, args.opt_repeats) for impl in ("single", "foreach", "fused")}
        for impl, s in opt_s.items():
            print(f"  AdamW {impl:<8} {s * 1e3:8.1f} ms  ({opt_s['single'] / s:.2f}x single-tensor)", flush=True)

    results: dict[str, Any] = {}
    for impl in [x.strip() for x in args.eager.split(",") if x.strip()]:
        m, b = make(args)
        opt = optimizer(m, impl)
        dts = timed_steps(m, opt, b, args.steps + 1)[1:]
        results[f"eager, AdamW {impl}"] = (None, dts)
        print(f"  eager {impl}: {', '.join(f'{d:.1f}' for d in dts)} s (load {load()})", flush=True)
    if not args.no_compile:
        m, b = make(args)
        opt = optimizer(m, "fused")
        compiled = torch.compile(m)
        t = time.perf_counter()
        step(compiled, opt, b)
        first = time.perf_counter() - t
        dts = timed_steps(compiled, opt, b, args.steps)
        results["compiled, AdamW fused"] = (first, dts)
        print(f"  compiled: first call {first:.1f} s, then {', '.join(f'{d:.1f}' for d in dts)} s (load {load()})",
              flush=True)
    tokens = args.batch * args.seq
    print(f"\nwhole steps, {args.steps} timed (load {load()}):")
    base = min(next(iter(results.values()))[1])
    for name, (first, dts) in results.items():
        extra = f", first (compiling) call {first:.1f} s" if first is not None else ""
        print(f"  {name:<24} best {min(dts) * 1e3:7.0f} ms, mean {statistics.fmean(dts) * 1e3:7.0f} ms, "
              f"{tokens / min(dts):6.0f} tok/s, {base / min(dts):.2f}x {next(iter(results))}{extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

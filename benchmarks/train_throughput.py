"""Training throughput: gptbert's ``fit()`` vs a ``transformers`` model, same config, weights and batches.

    python benchmarks/train_throughput.py                       # GPT + BERT-MLM, 6x384, B16 T256, fp32 and bf16
    python benchmarks/train_throughput.py --precisions fp32 --steps 5 --warmup 2
    python benchmarks/train_throughput.py --quick               # tiny batch, 2 steps: a smoke test
    python benchmarks/train_throughput.py --json results.json   # also write everything as JSON
    python benchmarks/train_throughput.py --threads 1           # on a CPU other jobs are busy on

On a CPU shared with other busy processes, several intra-op threads wait on each other whenever one
is descheduled: ``--threads 1`` can then be both faster and much steadier (it was 2x faster on a
2-core machine at load 10). Without native bf16 instructions (AVX-512-BF16 / AMX), bf16 matmuls
run through a slow fallback: expect bf16 to be many times slower than fp32 there.

Models: a GPT (pre-LN, causal, tied LM head) and a BERT (post-LN, MLM head with 15 % masking,
80/10/10 replacement, no NSP) of the same size: ``--layers`` 6, ``--width`` 384, ``--heads`` 6,
``--vocab`` 32000, block = ``--seq``. Weights are our random initialisation, written with
``gptbert.io.hf.export_hf`` and loaded by ``transformers`` (``GPT2LMHeadModel`` /
``BertForMaskedLM``, ``attn_implementation="sdpa"``) before either side trains, so both start
from identical weights (checked: the initial loss of the first batch is printed for both).

* ours: ``gptbert.training.fit`` for ``--warmup`` + ``--steps`` optimizer steps; a callback stamps
  the end of every step, so each measured interval is one whole iteration of fit's loop (batch
  collation, forward, backward, clipping, AdamW, bookkeeping).
* theirs: a plain PyTorch loop over the very batches fit built (recorded by a wrapping collate
  function, so theirs pays no data cost), with the same optimizer (``build_optimizer``: AdamW,
  same lr / betas / eps / weight decay and no-decay groups), gradient clipping at the same norm,
  and ``torch.autocast(bfloat16)`` exactly where fit uses it.

Only the ``--steps`` steps after the ``--warmup`` ones are timed. Reported: tokens/s and ms/step
of the best measured step (other processes share the CPU; the best step is the least disturbed
one) and the mean ms/step, the ratio ours/theirs (> 1 = gptbert faster), and MFU =
6 * N * tokens/s / peak, where N counts the parameters that take part in matrix multiplies
(non-embedding parameters plus the tied vocabulary projection, V * C; attention scores, about
5 % more at these sizes, are left out) and peak is the best fp32 / bf16 n^3 matmul (n = 512 ...
2048, in the three operand layouts a Linear layer uses, best of several calls each) measured in
the same run. The CPU flags and the load average
are printed, so readers can judge.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Run as a script, this folder would come first on sys.path, and a sibling named like a
# standard module (benchmarks/tokenize.py) would shadow it; put the repository root there.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from gptbert.io.hf import export_hf  # noqa: E402
from gptbert.config import ModelConfig  # noqa: E402
from gptbert.data.objectives import PackedBlocks, mask_tokens  # noqa: E402
from gptbert.flops import count_parameters_analytic  # noqa: E402
from gptbert.measure import hardware_profile  # noqa: E402
from gptbert.models import build_model  # noqa: E402
from gptbert.training import Callback, TrainArgs, build_optimizer, fit  # noqa: E402

PRECISIONS = ("fp32", "bf16")
MODELS = ("gpt", "bert")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
FLAGS_SHOWN = ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx_vnni",
               "amx_tile", "amx_bf16")
# Special ids of the synthetic BERT vocabulary; ordinary tokens are drawn from [4, V).
PAD, CLS, SEP, MASK = 0, 1, 2, 3
PEER_BF16 = {"gpt": 2475.0, "bert": 2123.0}
"""transformers bf16 tokens/s on the issue's reference machine (an AMX CPU): context only."""


# --------------------------------------------------------------------------------------------
# Machine
# --------------------------------------------------------------------------------------------


def cpu_flags() -> dict[str, bool]:
    """Which of FLAGS_SHOWN /proc/cpuinfo lists (all False where it cannot be read)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return {f: False for f in FLAGS_SHOWN}
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return {f: f in flags for f in FLAGS_SHOWN}


def load_average() -> tuple[float, float, float] | None:
    try:
        return tuple(round(x, 2) for x in os.getloadavg())  # type: ignore[return-value]
    except (OSError, AttributeError):
        return None


LAYOUTS = ("a@b", "a@b.T", "a.T@b")
"""The operand layouts of a Linear layer's matmuls: forward x @ W.T, backward g @ W and g.T @ x."""


def _best_matmul(dtype: torch.dtype, size: int, layout: str, repeats: int, budget_s: float) -> tuple[float, int]:
    """(best seconds, timed calls) of a size^3 matmul: up to ``repeats`` calls, fewer once ``budget_s`` is spent."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=g).to(dtype)
    b = torch.randn(size, size, generator=g).to(dtype)
    x, y = (a.T if layout == "a.T@b" else a), (b.T if layout == "a@b.T" else b)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats and (not times or time.perf_counter() - start < budget_s):
        t = time.perf_counter()
        x @ y
        times.append(time.perf_counter() - t)
    return min(times), len(times)


def measure_peak(precision: str, size: int, repeats: int, budget_s: float) -> dict[str, Any]:
    """Matmul peak FLOP/s in ``precision``: the best n^3 matmul, n = 512, 1024, ... up to ``size``, in each
    of the three layouts a Linear layer uses (see LAYOUTS).

    Each probe gets up to ``repeats`` timed calls within ``budget_s`` seconds. Several sizes and
    layouts, because a bf16 matmul without native bf16 instructions runs through a fallback whose
    speed depends on both (here 1 to 18 GFLOP/s): one probe alone could understate the peak badly.
    """
    dtype = DTYPES[precision]
    torch.ones(64, 64, dtype=dtype) @ torch.ones(64, 64, dtype=dtype)  # initialise the library
    sizes = sorted({n for n in (512, 1024, 2048, 4096) if n < size} | {size})
    probes = []
    for n in sizes:
        for layout in LAYOUTS:
            best, calls = _best_matmul(dtype, n, layout, repeats, budget_s)
            probes.append({"size": n, "layout": layout, "calls": calls, "best_s": best,
                           "flops_per_s": 2.0 * n**3 / best})
    top = max(probes, key=lambda q: q["flops_per_s"])
    return {"precision": precision, "size": top["size"], "layout": top["layout"], "calls": top["calls"],
            "flops_per_s": top["flops_per_s"], "probes": probes}


# --------------------------------------------------------------------------------------------
# Data: random token blocks, collated as the real objectives do
# --------------------------------------------------------------------------------------------


def collate_gpt(examples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Causal-LM blocks from PackedBlocks: idx and already-shifted targets, (B, T) each."""
    return {"idx": torch.stack([e["idx"] for e in examples]), "targets": torch.stack([e["targets"] for e in examples])}


class BertBlocks:
    """[CLS] t_1 .. t_{T-2} [SEP] rows of random ordinary tokens (no padding)."""

    def __init__(self, n: int, seq: int, vocab: int, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        body = torch.randint(MASK + 1, vocab, (n, seq - 2), generator=g)  # (n, T-2)
        self.rows = torch.cat([torch.full((n, 1), CLS), body, torch.full((n, 1), SEP)], dim=1)  # (n, T)

    def __len__(self) -> int:
        return self.rows.size(0)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.rows[i]


class BertMLMCollate:
    """MLM batch as gptbert's collators build it: 15 % masked (80/10/10), attention mask, token types."""

    def __init__(self, vocab: int) -> None:
        self.vocab = vocab

    def __call__(self, examples: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        idx = torch.stack(examples)  # (B, T)
        # fit runs collate_fn under a generator seeded per batch; draw this batch's mask seed from it.
        g = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,))))
        masked, targets = mask_tokens(idx, mask_id=MASK, vocab_size=self.vocab,
                                      special_ids=(PAD, CLS, SEP, MASK), mlm_probability=0.15, generator=g)
        ones = torch.ones_like(idx)
        return {"idx": masked, "targets": targets, "attention_mask": ones, "token_type_ids": torch.zeros_like(idx)}


class Recorder:
    """Wraps a collate function and keeps every batch it builds, in order."""

    def __init__(self, collate: Callable[[list[Any]], dict[str, torch.Tensor]]) -> None:
        self.collate, self.batches = collate, []

    def __call__(self, examples: list[Any]) -> dict[str, torch.Tensor]:
        batch = self.collate(examples)
        self.batches.append({k: v.clone() for k, v in batch.items()})
        return batch


def hf_inputs(family: str, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our batch under transformers' argument names (same tensors, same loss)."""
    if family == "gpt":
        # Our targets are already shifted; shift_labels tells transformers' loss not to shift again.
        return {"input_ids": batch["idx"], "labels": batch["targets"], "shift_labels": batch["targets"]}
    return {"input_ids": batch["idx"], "attention_mask": batch["attention_mask"],
            "token_type_ids": batch["token_type_ids"], "labels": batch["targets"]}


# --------------------------------------------------------------------------------------------
# One model, one precision
# --------------------------------------------------------------------------------------------


class StepClock(Callback):
    """(wall, process CPU) clocks at the start of fit's loop and at the end of every optimizer step."""

    def __init__(self) -> None:
        self.stamps: list[tuple[float, float]] = []
        self.losses: list[float] = []

    def on_train_begin(self, state: Any) -> None:
        self.stamps = [(time.perf_counter(), time.process_time())]

    def on_step_end(self, state: Any, loss: torch.Tensor) -> None:
        self.stamps.append((time.perf_counter(), time.process_time()))
        self.losses.append(float(loss))


def step_stats(stamps: list[tuple[float, float]], warmup: int, tokens_per_step: int) -> dict[str, Any]:
    """Per-step times of the measured steps (those after ``warmup``) from end-of-step (wall, CPU) stamps.

    The CPU time is the process's (all threads): on a shared machine it moves much less than wall time.
    """
    dts = [b[0] - a[0] for a, b in zip(stamps, stamps[1:])][warmup:]
    cpu = [b[1] - a[1] for a, b in zip(stamps, stamps[1:])][warmup:]
    best, mean = min(dts), statistics.fmean(dts)
    return {"step_s": dts, "cpu_step_s": cpu, "best_ms": best * 1e3, "mean_ms": mean * 1e3,
            "median_ms": statistics.median(dts) * 1e3, "tokens_per_s": tokens_per_step / best,
            "tokens_per_s_mean": tokens_per_step / mean}


def build_pair(family: str, args: argparse.Namespace, transformers: Any, tmp: Path):
    head = "lm" if family == "gpt" else "mlm"
    config = ModelConfig(name=f"{family}-{args.layers}x{args.width}", family=family, n_layer=args.layers,
                         n_head=args.heads, n_embd=args.width, block_size=args.seq, vocab_size=args.vocab,
                         dropout=args.dropout, head=head)
    torch.manual_seed(args.seed)
    ours = build_model(config)
    directory = export_hf(ours, tmp / f"{family}-{time.monotonic_ns()}")
    cls = transformers.GPT2LMHeadModel if family == "gpt" else transformers.BertForMaskedLM
    theirs = cls.from_pretrained(directory, attn_implementation="sdpa")
    return config, ours, theirs


def initial_losses(family: str, ours: torch.nn.Module, theirs: torch.nn.Module, batch: dict[str, torch.Tensor],
                   precision: str) -> tuple[float, float]:
    """The first batch's loss under both models, eval mode (no dropout), the run's autocast."""
    ours.eval(), theirs.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        a = float(ours(**batch)[1])
        b = float(theirs(**hf_inputs(family, batch)).loss)
    ours.train(), theirs.train()
    return a, b


def train_theirs(model: torch.nn.Module, family: str, batches: list[dict[str, torch.Tensor]], targs: TrainArgs,
                 ) -> tuple[list[float], list[float]]:
    """A plain training loop: the same optimizer, clipping and autocast as fit, over the given batches."""
    torch.manual_seed(targs.seed)
    model.train()
    optimizer = build_optimizer(model, targs)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    bf16 = targs.precision == "bf16"
    stamps, losses = [(time.perf_counter(), time.process_time())], []
    for batch in batches:
        inputs = hf_inputs(family, batch)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**inputs).loss
        loss.backward()
        if targs.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, targs.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        stamps.append((time.perf_counter(), time.process_time()))
    return stamps, losses


def bench_one(family: str, precision: str, args: argparse.Namespace, transformers: Any, tmp: Path,
              peaks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    total_steps = args.warmup + args.steps
    n_examples = total_steps * args.batch
    if family == "gpt":
        rng = np.random.default_rng(args.seed)
        stream = rng.integers(0, args.vocab, size=n_examples * args.seq + 1, dtype=np.int64)
        data: Any = PackedBlocks(stream, args.seq)
        collate: Callable = collate_gpt
    else:
        data, collate = BertBlocks(n_examples, args.seq, args.vocab, args.seed), BertMLMCollate(args.vocab)
    targs = TrainArgs(max_steps=total_steps, batch_size=args.batch, lr=args.lr, weight_decay=args.weight_decay,
                      beta1=0.9, beta2=0.999, eps=1e-8, schedule="constant", warmup_steps=0, grad_clip=1.0,
                      precision=precision, device="cpu", seed=args.seed, progress=False, tensorboard=False,
                      keep_best=False)
    tokens_per_step = args.batch * args.seq
    config, ours, theirs = build_pair(family, args, transformers, tmp)
    counts = count_parameters_analytic(config)
    assert counts is not None
    n_matmul = counts.non_embedding + config.vocab_size * config.n_embd  # tied output projection is a matmul
    flops_per_token = 6 * n_matmul
    est = flops_per_token * tokens_per_step / peaks[precision]["flops_per_s"]
    load = load_average()
    print(f"\n[{family} {precision}] {counts.total / 1e6:.1f}M params, N (matmul) {n_matmul / 1e6:.1f}M, "
          f"{total_steps} steps of {tokens_per_step} tokens; at the measured peak a step needs >= {est:.1f}s; "
          f"load {load}", flush=True)

    first = Recorder(collate)([data[i] for i in range(args.batch)])
    init_ours, init_theirs = initial_losses(family, ours, theirs, first, precision)
    print(f"  initial loss (first batch, eval mode): ours {init_ours:.5f}  theirs {init_theirs:.5f}  "
          f"|diff| {abs(init_ours - init_theirs):.1e}", flush=True)

    runs_ours, runs_theirs = [], []
    for r in range(args.repeats):
        if r > 0:  # fresh models with the same initial weights
            ours, theirs = build_pair(family, args, transformers, tmp)[1:]
        rec, clock = Recorder(collate), StepClock()
        result = fit(ours, targs, data, rec, callbacks=[clock])
        s = step_stats(clock.stamps, args.warmup, tokens_per_step)
        s.update(losses=clock.losses, fit_tokens_per_s=result.tokens_per_s)
        runs_ours.append(s)
        print(f"  ours   run {r + 1}: best {s['best_ms']:.0f} ms/step, mean {s['mean_ms']:.0f} "
              f"(fit's own tokens_per_s over all {total_steps} steps: {result.tokens_per_s:.0f})", flush=True)
        stamps, losses = train_theirs(theirs, family, rec.batches, targs)
        t = step_stats(stamps, args.warmup, tokens_per_step)
        t.update(losses=losses)
        runs_theirs.append(t)
        print(f"  theirs run {r + 1}: best {t['best_ms']:.0f} ms/step, mean {t['mean_ms']:.0f}", flush=True)
    del ours, theirs

    def merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
        dts = [dt for run in runs for dt in run["step_s"]]
        cpu = [dt for run in runs for dt in run["cpu_step_s"]]
        best, mean = min(dts), statistics.fmean(dts)
        tps = tokens_per_step / best
        return {"best_ms": best * 1e3, "mean_ms": mean * 1e3, "cpu_best_ms": min(cpu) * 1e3,
                "cpu_mean_ms": statistics.fmean(cpu) * 1e3, "tokens_per_s": tps,
                "tokens_per_s_mean": tokens_per_step / mean,
                "mfu": flops_per_token * tps / peaks[precision]["flops_per_s"], "runs": runs}

    o, t = merge(runs_ours), merge(runs_theirs)
    return {"model": family, "precision": precision, "batch": args.batch, "seq": args.seq,
            "tokens_per_step": tokens_per_step, "params": counts.total, "n_matmul": n_matmul,
            "flops_per_token": flops_per_token, "load_before": load, "load_after": load_average(),
            "initial_loss": {"ours": init_ours, "theirs": init_theirs},
            "ours": o, "theirs": t, "ratio": o["tokens_per_s"] / t["tokens_per_s"],
            "ratio_mean": o["tokens_per_s_mean"] / t["tokens_per_s_mean"]}


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def print_table(rows: list[dict[str, Any]], peaks: dict[str, dict[str, Any]]) -> None:
    print(f"\n{'model':<9} {'prec':<4} {'ours tok/s':>10} {'theirs tok/s':>12} {'ours/theirs':>11} "
          f"{'ours ms/step':>14} {'theirs ms/step':>16} {'MFU ours':>8} {'MFU theirs':>10} {'CPU s/step':>13}")
    print(f"{'':<9} {'':<4} {'(best)':>10} {'(best)':>12} {'best (mean)':>11} {'best / mean':>14} "
          f"{'best / mean':>16} {'':>8} {'':>10} {'ours/theirs':>13}")
    for r in rows:
        o, t = r["ours"], r["theirs"]
        name = "GPT" if r["model"] == "gpt" else "BERT-MLM"
        print(f"{name:<9} {r['precision']:<4} {o['tokens_per_s']:>10.0f} {t['tokens_per_s']:>12.0f} "
              f"{r['ratio']:>5.2f} ({r['ratio_mean']:.2f}) "
              f"{o['best_ms']:>6.0f} / {o['mean_ms']:<6.0f} {t['best_ms']:>7.0f} / {t['mean_ms']:<6.0f} "
              f"{o['mfu'] * 100:>7.1f}% {t['mfu'] * 100:>9.1f}% "
              f"{o['cpu_mean_ms'] / 1e3:>6.1f}/{t['cpu_mean_ms'] / 1e3:<6.1f}")
    peak_txt = ", ".join(f"{p} {v['flops_per_s'] / 1e9:.2f} GFLOP/s ({v['size']}^3 {v['layout']}, best of {v['calls']})"
                         for p, v in peaks.items())
    print(f"\nmeasured matmul peak: {peak_txt}")
    print("tok/s and ms/step: the best measured step (mean in brackets / after the slash); ratio > 1 = gptbert "
          "faster; MFU = 6*N*tok/s / the measured peak of that precision; CPU s/step: mean process CPU time "
          "(all threads) per measured step, less sensitive to other processes than wall time")
    if any(max(r["ours"]["mfu"], r["theirs"]["mfu"]) > 1 for r in rows):
        print("MFU above 100 %: training's matmuls ran faster than the peak probe did (other shapes, other "
              "kernels, or less load at the time); read MFU as relative only")
    bf16_rows = [r for r in rows if r["precision"] == "bf16"]
    if bf16_rows:
        print("context only, not comparable here: the issue's transformers bf16 figures on its AMX reference "
              "machine were GPT ~2,475 and BERT-MLM ~2,123 tok/s (goal: ours >= 2x the peer in bf16); this run's "
              "comparison is against transformers measured in the same run")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="gpt,bert", help="comma-separated: gpt, bert")
    p.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=256, help="tokens per row (also the block size)")
    p.add_argument("--steps", type=int, default=10, help="measured optimizer steps")
    p.add_argument("--warmup", type=int, default=2, help="untimed optimizer steps first (>= 1)")
    p.add_argument("--repeats", type=int, default=1, help="whole runs per side (alternating); the best step counts")
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--width", type=int, default=384)
    p.add_argument("--heads", type=int, default=6)
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--dropout", type=float, default=0.1, help="embedding, attention and residual dropout (both sides)")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--peak-size", type=int, default=2048,
                   help="largest n of the n^3 matmuls measuring the peak (512, 1024, ... up to it)")
    p.add_argument("--peak-repeats", type=int, default=5)
    p.add_argument("--peak-budget", type=float, default=20.0, help="seconds of timed peak calls per precision")
    p.add_argument("--quick", action="store_true", help="batch 2, seq 64, 1+1 steps, 512^3 peak: a smoke test")
    p.add_argument("--json", metavar="OUT", default=None, help="write the settings, machine and results here")
    args = p.parse_args(argv)
    if args.quick:
        args.batch, args.seq, args.steps, args.warmup, args.peak_size, args.peak_repeats = 2, 64, 1, 1, 512, 2
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    precisions = [x.strip() for x in args.precisions.split(",") if x.strip()]
    if bad := [m for m in models if m not in MODELS]:
        p.error(f"unknown model(s) {bad}; choose from {list(MODELS)}")
    if bad := [x for x in precisions if x not in PRECISIONS]:
        p.error(f"unknown precision(s) {bad}; choose from {list(PRECISIONS)}")
    if args.steps < 1 or args.warmup < 1 or args.repeats < 1:
        p.error("--steps, --warmup and --repeats must be >= 1 (the first step carries one-time costs)")
    if args.seq < 4 or args.width % args.heads:
        p.error("--seq must be >= 4 and --width divisible by --heads")
    try:
        import transformers
    except ImportError:
        p.error("this benchmark compares against transformers: pip install transformers")
    transformers.logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)

    hw = hardware_profile()
    flags = cpu_flags()
    load = load_average()
    bf16_native = None
    try:
        bf16_native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # op missing in this build
        pass
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, python {platform.python_version()}")
    print(f"CPU: {hw['cpu_model']}, {hw['physical_cores']} physical / {hw['usable_cores']} usable cores, "
          f"torch threads {torch.get_num_threads()}, ISA {torch.backends.cpu.get_cpu_capability()}, "
          f"oneDNN bf16 support: {bf16_native}")
    print("CPU flags: " + " ".join(f"{f}{'+' if v else '-'}" for f, v in flags.items()))
    print(f"load average (1/5/15 min): {load}")
    print(f"models {models}, precisions {precisions}: {args.layers} layers x {args.width} wide, {args.heads} heads, "
          f"vocab {args.vocab}, B={args.batch}, T={args.seq}, dropout {args.dropout}, "
          f"{args.warmup} warmup + {args.steps} measured steps, {args.repeats} run(s) per side")

    peaks: dict[str, dict[str, Any]] = {}
    for prec in precisions:
        peaks[prec] = measure_peak(prec, args.peak_size, args.peak_repeats, args.peak_budget)
        probes = ", ".join(f"{q['size']}^3 {q['layout']} {q['flops_per_s'] / 1e9:.2f}" for q in peaks[prec]["probes"])
        print(f"matmul peak {prec}: {peaks[prec]['flops_per_s'] / 1e9:.2f} GFLOP/s (GFLOP/s by probe: {probes})",
              flush=True)

    rows = []
    with tempfile.TemporaryDirectory() as d:
        for family in models:
            for prec in precisions:
                rows.append(bench_one(family, prec, args, transformers, Path(d), peaks))
    print_table(rows, peaks)
    end_load = load_average()
    print(f"load average at the end: {end_load}")

    if args.json:
        out = {"benchmark": "train_throughput", "settings": vars(args), "torch": torch.__version__,
               "transformers": transformers.__version__, "hardware": hw, "cpu_flags": flags,
               "onednn_bf16": bf16_native, "load_average": {"start": load, "end": end_load},
               "peaks": peaks, "peer_bf16_tokens_per_s_reference_machine": PEER_BF16, "results": rows}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2, default=str) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

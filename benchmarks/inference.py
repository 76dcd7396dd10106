"""Inference speed of compressed forms: gptbert vs transformers vs ONNX Runtime, in one process.

    python benchmarks/inference.py                      # BERT-base classifier, bs 32 x 128 + batch-1 latency
    python benchmarks/inference.py --quick              # batch 2, seq 32, 1 round: a smoke test
    python benchmarks/inference.py --variants ours-int8-dynamic,ort-int8 --threads 1
    python benchmarks/inference.py --compile            # add torch.compile variants (slow to compile)

Model: a BERT-base-shaped sequence classifier (12 x 768, 2 labels) with random weights (our
initialisation, seeded); ``transformers`` gets the same weights through
``gptbert.io.hf.export_hf`` and ONNX Runtime through ``gptbert.compress.export_onnx``.
Inputs are unpadded, so no attention mask is passed to any of them (SDPA runs without a mask).

Variants (``--variants``, comma-separated; default all but the compiled ones):

    ours-fp32           gptbert, fp32 weights, torch.inference_mode
    ours-bf16           gptbert, every weight in bf16
    ours-int8-dynamic   gptbert int8-dynamic: int8 weights, activations quantised per call (fbgemm)
    ours-int8-wo        gptbert int8-weight-only: int8 weights, bf16 activations
    ours-compile-fp32   torch.compile(ours-fp32)                         (with --compile)
    hf-fp32, hf-bf16    transformers BertForSequenceClassification (SDPA attention)
    ort-fp32            ONNX Runtime on the exported fp32 graph
    ort-int8            ONNX Runtime on onnxruntime.quantization.quantize_dynamic of that graph

Timing: one warmup call each, then ``--repeats`` rounds in which every variant in turn runs
``--iters`` batches; the best round of each is reported (other processes share the CPU, and
the best round is the least disturbed one). Batch-1 latency: the median of ``--latency-iters``
calls of one sequence, best round. Every variant's logits are compared with ours-fp32's.
A variant whose warmup batch takes longer than ``--max-call-s`` is timed from one more call only
(marked ``*``) so that a slow path (e.g. bf16 on a CPU without bf16 instructions) cannot stall
the run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# benchmarks/tokenize.py would shadow the standard library's tokenize module: drop this
# script's own folder from the import path and put the repository root there instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import torch  # noqa: E402

from gptbert.config import ModelConfig  # noqa: E402
from gptbert.measure import hardware_profile  # noqa: E402
from gptbert.models import build_model  # noqa: E402

ALL = ["ours-fp32", "ours-bf16", "ours-int8-dynamic", "ours-int8-wo", "ours-compile-fp32",
       "hf-fp32", "hf-bf16", "ort-fp32", "ort-int8"]
Runner = Callable[[torch.Tensor], torch.Tensor]
"""idx (B, T) -> logits (B, L) as fp32."""


def build_runners(names: list[str], model: torch.nn.Module, tmp: Path, threads: int, seq_len: int) -> dict[str, Runner]:
    import copy

    from gptbert.compress import compress, export_onnx, quantize_onnx_dynamic

    runners: dict[str, Runner] = {}

    def torch_runner(m: torch.nn.Module) -> Runner:
        def run(idx: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return m(idx)[0].float()
        return run

    for name in names:
        t0 = time.perf_counter()
        if name == "ours-fp32":
            runners[name] = torch_runner(model)
        elif name == "ours-bf16":
            runners[name] = torch_runner(compress(copy.deepcopy(model), "bf16")[0])
        elif name == "ours-int8-dynamic":
            runners[name] = torch_runner(compress(copy.deepcopy(model), "int8-dynamic")[0])
        elif name == "ours-int8-wo":
            runners[name] = torch_runner(compress(copy.deepcopy(model), "int8-weight-only", dtype="bfloat16")[0])
        elif name == "ours-compile-fp32":
            runners[name] = torch_runner(torch.compile(copy.deepcopy(model), dynamic=False))
        elif name in ("hf-fp32", "hf-bf16"):
            import transformers

            from gptbert.io.hf import export_hf

            transformers.logging.set_verbosity_error()
            hf_dir = tmp / "hf"
            if not hf_dir.exists():
                export_hf(model, hf_dir)
            hf = transformers.BertForSequenceClassification.from_pretrained(hf_dir, attn_implementation="sdpa").eval()
            if name == "hf-bf16":
                hf = hf.to(torch.bfloat16)

            def hf_run(idx: torch.Tensor, hf=hf) -> torch.Tensor:  # noqa: ANN001
                with torch.inference_mode():
                    return hf(input_ids=idx).logits.float()
            runners[name] = hf_run
        elif name in ("ort-fp32", "ort-int8"):
            import onnxruntime as ort

            fp32 = tmp / "model.onnx"
            if not fp32.exists():
                example = {"idx": torch.randint(1, model.config.vocab_size, (2, min(seq_len, 16)))}
                export_onnx(model, fp32, example)
            path = fp32
            if name == "ort-int8":
                path = quantize_onnx_dynamic(fp32, tmp / "model-int8.onnx")
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

            def ort_run(idx: torch.Tensor, session=session) -> torch.Tensor:  # noqa: ANN001
                return torch.from_numpy(session.run(None, {"idx": idx.numpy()})[0])
            runners[name] = ort_run
        else:
            raise ValueError(f"unknown variant {name!r}; choose from {', '.join(ALL)}")
        print(f"  built {name:<18} in {time.perf_counter() - t0:6.1f}s", flush=True)
    return runners


def measure(runners: dict[str, Runner], idx: torch.Tensor, *, repeats: int, iters: int, max_call_s: float) -> dict[str, tuple[float, bool]]:
    """Best seconds per batch of each runner (rounds interleaved) and whether it was a single call.

    A runner whose warmup call took longer than ``max_call_s`` is timed from one more call only.
    """
    best = {name: float("inf") for name in runners}
    single: dict[str, bool] = {}
    for name, run in runners.items():  # warmup (compiles, packs weights, allocates)
        t0 = time.perf_counter()
        run(idx)
        single[name] = time.perf_counter() - t0 > max_call_s
    for round_ in range(repeats):
        for name, run in runners.items():
            if single[name] and round_ > 0:
                continue
            t0 = time.perf_counter()
            for _ in range(1 if single[name] else iters):
                run(idx)
            best[name] = min(best[name], (time.perf_counter() - t0) / (1 if single[name] else iters))
    return {name: (best[name], single[name]) for name in runners}


def latency(runners: dict[str, Runner], idx: torch.Tensor, *, repeats: int, iters: int, skip: set[str]) -> dict[str, float]:
    """Best (over rounds) median milliseconds of one batch-1 call."""
    best = {name: float("inf") for name in runners if name not in skip}
    for name in best:
        runners[name](idx)
    for _ in range(repeats):
        for name in best:
            samples = []
            for _ in range(iters):
                t0 = time.perf_counter()
                runners[name](idx)
                samples.append(time.perf_counter() - t0)
            best[name] = min(best[name], statistics.median(samples) * 1e3)
    return best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--variants", default=None, help=f"comma-separated, from: {', '.join(ALL)}")
    p.add_argument("--compile", action="store_true", help="add ours-compile-fp32 to the default variants")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads for torch and ONNX Runtime (default: torch's)")
    p.add_argument("--repeats", type=int, default=3, help="rounds; the best is reported")
    p.add_argument("--iters", type=int, default=1, help="batches per round")
    p.add_argument("--latency-iters", type=int, default=10, help="batch-1 calls per round (0 = no latency)")
    p.add_argument("--max-call-s", type=float, default=60.0, help="time a variant slower than this from one call")
    p.add_argument("--config", default="bert-base", help="preset of the classifier (bert-base)")
    p.add_argument("--quick", action="store_true", help="batch 2 x 32, one round: a smoke test")
    args = p.parse_args(argv)
    if args.quick:
        args.batch, args.seq_len, args.repeats, args.iters, args.latency_iters = 2, 32, 1, 1, 2
    names = [v.strip() for v in args.variants.split(",")] if args.variants else [
        v for v in ALL if v != "ours-compile-fp32" or args.compile]
    if unknown := [v for v in names if v not in ALL]:
        p.error(f"unknown variant(s) {unknown}; choose from {', '.join(ALL)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()

    hw = hardware_profile()
    flags = ", ".join(f for f, on in hw["cpu_flags"].items() if on) or "none of interest"
    print(f"{hw['cpu_model']} ({hw['usable_cores']} usable cores; {flags}); torch {torch.__version__}, "
          f"{threads} threads; load average {os.getloadavg()[0]:.1f}")
    torch.manual_seed(0)
    model = build_model(ModelConfig.from_name(args.config, head="classify", dropout=0.0)).eval()
    idx = torch.randint(1, model.config.vocab_size, (args.batch, args.seq_len), generator=torch.Generator().manual_seed(1))
    one = idx[:1]
    with tempfile.TemporaryDirectory() as d:
        runners = build_runners(names, model, Path(d), threads, args.seq_len)
        with torch.inference_mode():
            ref = model(idx[:2])[0].float()
        diffs = {name: float((run(idx[:2]) - ref).abs().max()) for name, run in runners.items()}
        print(f"timing bs {args.batch} x {args.seq_len}: {args.repeats} round(s) of {args.iters} batch(es)", flush=True)
        seconds = measure(runners, idx, repeats=args.repeats, iters=args.iters, max_call_s=args.max_call_s)
        slow = {n for n, (_, single) in seconds.items() if single}
        lat: dict[str, float] = {}
        if args.latency_iters > 0:
            print(f"timing batch-1 latency: {args.repeats} round(s) of {args.latency_iters} calls", flush=True)
            lat = latency(runners, one, repeats=args.repeats, iters=args.latency_iters, skip=slow)

    base = args.batch / seconds["ours-fp32"][0] if "ours-fp32" in seconds else None
    print(f"\n{'variant':<19} {'seq/s':>9} {'vs fp32':>8} {'bs1 p50 ms':>11} {'max|Δlogit|':>12}")
    for name in names:
        s, single = seconds[name]
        rate = args.batch / s
        rel = f"{rate / base:7.2f}x" if base else ""
        ms = f"{lat[name]:11.1f}" if name in lat else f"{'-':>11}"
        print(f"{name:<19} {rate:>8.3g}{'*' if single else ' '} {rel:>8} {ms} {diffs[name]:>12.2e}")
    print(f"\nbest of {args.repeats} round(s); * = timed from one call after warmup (warmup slower than --max-call-s); "
          "max|Δlogit| vs ours-fp32 on 2 rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

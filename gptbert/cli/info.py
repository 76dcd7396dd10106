"""``gptbert info PRESET|PATH``: size, shape and cost of a model.

Presets and checkpoints of the BERT and GPT families are counted analytically from
their config (no torch import, no model built); ELMo models are built to be counted.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from gptbert.cli import CLIError
from gptbert.config import PRESETS, ModelConfig
from gptbert.flops import (
    FLOPS_CONVENTION,
    count_parameters_analytic,
    forward_flops_per_token,
)

MB = 1_000_000
BYTES_PER_PARAM = {"fp32": 4, "bf16": 2, "int8": 1}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "info",
        help="parameters, size on disk and FLOPs of a preset or a checkpoint",
        description="Parameters (tied weights counted once), size on disk, shape and estimated FLOPs per token "
        "of a preset name or a checkpoint directory (gptbert or Hugging Face).",
    )
    p.add_argument("model", nargs="?", help="preset name or checkpoint directory")
    p.add_argument("--all", action="store_true", help="a table over every preset")
    p.add_argument("--context", type=int, default=None,
                   help="context length for the attention FLOPs term (default: the model's block_size)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)


def _resolve(spec: str) -> tuple[ModelConfig, str, Path | None]:
    """(config, source, checkpoint directory or None) for a preset name or a path."""
    if spec in PRESETS:
        return ModelConfig.from_name(spec), "preset", None
    path = Path(spec)
    if path.is_dir():
        from gptbert.io.checkpoint import read_config
        from gptbert.io.layout import WEIGHTS_FILE
        from gptbert.io.weights import read_tensor_names

        try:
            config = read_config(path)
            if (path / WEIGHTS_FILE).is_file():
                read_tensor_names(path / WEIGHTS_FILE)  # header only: a truncated file is refused here too
            return config, str(path), path
        except ValueError as e:
            raise CLIError(str(e)) from None
    raise CLIError(f"{spec!r} is neither a preset nor a checkpoint directory; presets: {', '.join(PRESETS)}")


def _count(config: ModelConfig) -> tuple[int, int, str]:
    """(total, non-embedding, method) parameters: analytic, else by building the model."""
    analytic = count_parameters_analytic(config)
    if analytic is not None:
        return analytic.total, analytic.non_embedding, "analytic"
    try:
        import gptbert.models.elmo  # noqa: F401  (the ELMo family lives there)
        from gptbert.models import build_model, count_parameters
    except ImportError as e:
        raise CLIError(
            f"counting {config.family!r} models needs gptbert.models.{config.family}, which cannot be imported ({e})"
        ) from None
    import torch

    with torch.device("meta"):  # shapes only, no memory, no initialisation cost
        model = build_model(config)
    return count_parameters(model), count_parameters(model, non_embedding=True), "built"


def describe(config: ModelConfig, *, context: int | None = None) -> dict[str, Any]:
    """Everything ``gptbert info`` reports about ``config``, as plain data."""
    total, non_embedding, method = _count(config)
    n_ctx = context or config.block_size
    forward = forward_flops_per_token(config, non_embedding, n_ctx)
    return {
        "name": config.name,
        "family": config.family,
        "head": config.head,
        "n_layer": config.n_layer,
        "n_head": config.n_head if config.family != "elmo" else None,
        "n_embd": config.n_embd,
        "intermediate_size": config.intermediate_size,
        "block_size": config.block_size,
        "vocab_size": config.vocab_size,
        "parameters": total,
        "non_embedding_parameters": non_embedding,
        "embedding_parameters": total - non_embedding,
        "counted": method,
        "size_bytes": {k: total * b for k, b in BYTES_PER_PARAM.items()},
        "size_mb": {k: round(total * b / MB, 1) for k, b in BYTES_PER_PARAM.items()},
        "flops_per_token": {"forward": forward, "training": 3 * forward, "n_ctx": n_ctx,
                            "convention": FLOPS_CONVENTION},
    }


def _engine(path: Path) -> dict[str, Any] | None:
    """What runs an exported (ONNX) run directory, from its onnx.json; None for a PyTorch one."""
    from gptbert.io.onnx_engine import is_onnx_directory, read_onnx_meta

    if not is_onnx_directory(path):
        return None
    try:
        meta = read_onnx_meta(path)
    except ValueError as e:
        raise CLIError(str(e)) from None
    keys = ("file", "weights", "opset", "inputs", "outputs", "exported_from", "onnxruntime")
    return {"name": "onnxruntime", **{k: meta.get(k) for k in keys}}


def _gflop(x: int) -> str:
    return f"{x / 1e9:.3g} GFLOP"


def _text(info: dict[str, Any], source: str, disk: int | None) -> str:
    shape = f"{info['n_layer']} layers, width {info['n_embd']}, MLP/cell {info['intermediate_size']}"
    if info["n_head"] is not None:
        shape = f"{info['n_layer']} layers, {info['n_head']} heads, width {info['n_embd']}, " \
                f"MLP {info['intermediate_size']}"
    f = info["flops_per_token"]
    lines = [
        f"{info['name']}  ({info['family']}, head {info['head']}; {source})",
        f"  shape             {shape}, context {info['block_size']}, vocab {info['vocab_size']:,}",
        f"  parameters        {info['parameters']:>15,}  ({info['parameters'] / 1e6:.1f} M, tied weights counted once;"
        f" {info['counted']})",
        f"  non-embedding     {info['non_embedding_parameters']:>15,}",
        f"  embedding         {info['embedding_parameters']:>15,}",
        "  size on disk      " + ", ".join(f"{k} {v:,.1f} MB" for k, v in info["size_mb"].items())
        + "  (weights only, MB = 10^6 bytes)",
    ]
    if disk is not None:
        lines.append(f"  checkpoint files  {disk / MB:,.1f} MB")
    engine = info.get("engine")
    if engine:
        lines.append(f"  engine            ONNX Runtime: {engine['file']}, {engine['weights']} weights, opset "
                     f"{engine['opset']}, inputs {', '.join(engine['inputs'])} (exported from {engine['exported_from']})")
    lines += [
        f"  FLOPs per token   forward {_gflop(f['forward'])}, training ~{_gflop(f['training'])} (context {f['n_ctx']})",
        f"  convention        {f['convention']}",
    ]
    return "\n".join(lines)


def _table(rows: list[dict[str, Any]]) -> str:
    header = f"{'preset':<12} {'family':<6} {'L':>3} {'H':>3} {'width':>5} {'ctx':>5} {'params':>15} " \
             f"{'non-emb':>15} {'fp32 MB':>9} {'bf16 MB':>9} {'fwd GFLOP/tok':>13}"
    lines = [header, "-" * len(header)]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['name']:<12} {r['family']:<6} {r['n_layer']:>3} {'-':>3} {r['n_embd']:>5} "
                         f"{r['block_size']:>5} {'n/a':>15}  ({r['error']})")
            continue
        heads = "-" if r["n_head"] is None else r["n_head"]
        lines.append(
            f"{r['name']:<12} {r['family']:<6} {r['n_layer']:>3} {heads:>3} {r['n_embd']:>5} {r['block_size']:>5} "
            f"{r['parameters']:>15,} {r['non_embedding_parameters']:>15,} {r['size_mb']['fp32']:>9,.1f} "
            f"{r['size_mb']['bf16']:>9,.1f} {r['flops_per_token']['forward'] / 1e9:>13.3f}"
        )
    lines.append(f"FLOPs: {FLOPS_CONVENTION}; context = block_size.")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.context is not None and args.context <= 0:
        raise CLIError(f"--context must be positive, got {args.context}")
    if args.all:
        if args.model:
            raise CLIError("give either a model or --all, not both")
        rows = []
        for name in PRESETS:
            config = ModelConfig.from_name(name)
            try:
                rows.append(describe(config, context=args.context))
            except CLIError as e:
                rows.append({"name": name, "family": config.family, "n_layer": config.n_layer,
                             "n_embd": config.n_embd, "block_size": config.block_size, "error": str(e)})
        print(json.dumps(rows, indent=2) if args.json else _table(rows))
        return 0
    if not args.model:
        raise CLIError("give a preset name or a checkpoint directory (or --all)")
    from gptbert.baselines.tfidf import SETTINGS_FILE as TFIDF_SETTINGS

    if Path(args.model).is_dir() and (Path(args.model) / TFIDF_SETTINGS).is_file():
        return _tfidf_info(Path(args.model), as_json=args.json)
    config, source, path = _resolve(args.model)
    info = describe(config, context=args.context)
    disk = None
    if path is not None:
        disk = sum(p.stat().st_size for p in path.iterdir()
                   if p.is_file() and p.name.endswith((".safetensors", ".bin", ".onnx")))
        info["checkpoint_bytes"] = disk
        info["engine"] = _engine(path)
    info["source"] = source
    print(json.dumps(info, indent=2) if args.json else _text(info, source, disk))
    return 0


def _tfidf_info(path: Path, *, as_json: bool) -> int:
    """``info`` of a ``tfidf-lr`` run: features, labels, the C search, size on disk."""
    from gptbert.run import load_run

    try:
        run = load_run(path)
    except (OSError, ValueError, KeyError) as e:
        raise CLIError(f"{path}: {e}") from None
    model = run.baseline
    disk = sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    info = {"kind": "tfidf-lr", "source": str(path), "labels": len(model.labels),
            "features": model.features.num_features,
            "blocks": [f"{b.analyzer} {b.ngram_range[0]}-{b.ngram_range[1]}" for b in model.features.blocks],
            "C": model.search.C if model.search else None, "weights": int(model.coef.size + model.intercept.size),
            "files_bytes": disk}
    if as_json:
        print(json.dumps(info, indent=2))
    else:
        print(f"{path}: tfidf-lr (TF-IDF {', '.join(info['blocks'])}-grams + logistic regression), "
              f"{info['features']:,} features, {info['labels']} labels, C={info['C']}, "
              f"{info['weights']:,} weights, {disk / 2**20:.1f} MB on disk")
    return 0

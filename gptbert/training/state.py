"""What a run leaves on disk and reads back: checkpoints, RNG states, weights, model directories.

Files under ``out_dir`` (written by rank 0 only, each atomically through :mod:`gptbert.io.files`;
file names from :mod:`gptbert.io.layout`):

``checkpoint.safetensors``  everything needed to resume (model, optimizer, RNG states, data
                            position, results so far, args); tensors in safetensors, the rest as
                            JSON in its metadata: no pickle anywhere. Replaced atomically.
``best/model.safetensors``  the weights at the best evaluation (+ ``best/meta.json``).
``model.safetensors``       the final weights (the best ones when ``keep_best``). Beside both, a
                            ``config.json`` when the model has a ``config.to_dict()``, which makes
                            ``out_dir`` and ``best/`` loadable by ``gptbert.io.checkpoint.load_model``.

Weights go through :mod:`gptbert.io.weights` (tied tensors stored once).
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from gptbert.io.files import TMP_MARK, atomic_write, atomic_write_json, remove_stale_temp_files
from gptbert.io.layout import BEST_DIR, BEST_META_FILE, CONFIG_FILE, WEIGHTS_FILE
from gptbert.io.weights import WeightsError, dedupe_tensors, read_weights, write_weights
from gptbert.training.args import TrainArgs
from gptbert.training.distributed import unwrap, world_info

__all__ = [
    "BEST_META_FILE",
    "CheckpointError",
    "apply_checkpoint",
    "check_resumable",
    "load_checkpoint",
    "load_model_weights",
    "prepare_out_dir",
    "read_checkpoint",
    "rng_restore",
    "rng_snapshot",
    "save_best",
    "save_checkpoint",
    "save_model_dir",
    "save_model_weights",
    "seed_everything",
]

CKPT_FORMAT = "gptbert-train-checkpoint"
CKPT_VERSION = 1
"""Beside the best weights (``best/meta.json``): step, epoch, metric name and value, all metrics."""
RESUME_KEYS = ("batch_size", "grad_accum", "seed", "drop_last", "shuffle")
"""TrainArgs a resumed run must share with its checkpoint (else the data position would not match)."""


class CheckpointError(RuntimeError):
    """A training checkpoint that cannot be used: truncated, foreign, another version (one line)."""


# ---- seeds and generator states ---------------------------------------------------------------


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_snapshot() -> tuple[dict[str, Tensor], dict[str, Any]]:
    """This process's generator states: (tensors, JSON-able rest)."""
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda/{i}"] = s
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    tensors["numpy_keys"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    version, internal, gauss_next = random.getstate()
    info = {"numpy": [name, int(pos), int(has_gauss), float(gauss)], "python": [version, list(internal), gauss_next]}
    return tensors, info


def rng_restore(tensors: Mapping[str, Tensor], info: Mapping[str, Any]) -> None:
    """Put back the generator states of :func:`rng_snapshot`."""
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[f"cuda/{i}"] for i in range(len(tensors)) if f"cuda/{i}" in tensors]
    if cuda and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:
            torch.cuda.set_rng_state(cuda[0])
    name, pos, has_gauss, gauss = info["numpy"]
    np.random.set_state((name, tensors["numpy_keys"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = info["python"]
    random.setstate((version, tuple(internal), gauss_next))


# ---- weights and model directories ------------------------------------------------------------


def save_model_weights(
    path: str | Path, model: nn.Module | Mapping[str, Tensor], metadata: Mapping[str, Any] | None = None
) -> None:
    """Write a model's state dict to a safetensors file, atomically.

    Tied tensors are stored once; the file's metadata lists the aliases (``gptbert.tied``, the
    convention of ``gptbert.checkpoint``) so :func:`load_model_weights` restores them.
    ``metadata`` values are stored as JSON strings.
    """
    state = unwrap(model).state_dict() if isinstance(model, nn.Module) else model
    write_weights(path, state, metadata)


def load_model_weights(model: nn.Module, path: str | Path, *, strict: bool = True) -> dict[str, str]:
    """Load weights written by :func:`save_model_weights` (or any safetensors state dict) into ``model``.

    Returns the file's metadata.
    """
    tensors, meta = read_weights(path)
    unwrap(model).load_state_dict(tensors, strict=strict)
    return meta


def save_model_dir(directory: Path, model: nn.Module, metadata: Mapping[str, Any]) -> None:
    """``model.safetensors`` and, when the model carries a config with ``to_dict()`` (gptbert models
    do), ``config.json``: together a directory that ``gptbert.io.checkpoint.load_model`` reads."""
    save_model_weights(directory / WEIGHTS_FILE, model, metadata=metadata)
    config = getattr(unwrap(model), "config", None)
    if callable(getattr(config, "to_dict", None)):
        atomic_write_json(directory / CONFIG_FILE, config.to_dict())  # type: ignore[union-attr]


def save_best(out_dir: Path, model: nn.Module, meta: Mapping[str, Any]) -> None:
    """``out_dir/best/``: the model directory of the best evaluation and its ``meta.json``."""
    best = out_dir / BEST_DIR
    save_model_dir(best, model, {"gptbert_best": meta})
    atomic_write_json(best / BEST_META_FILE, meta)


def prepare_out_dir(out_dir: Path) -> None:
    """Create ``out_dir``; delete the temporary files that a killed writer left there."""
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(out_dir, f"{BEST_DIR}/.*{TMP_MARK}*")


# ---- training checkpoints ---------------------------------------------------------------------


def save_checkpoint(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    state: dict[str, Any],
    rng_per_rank: list[tuple[dict[str, Tensor], dict[str, Any]]],
) -> None:
    """One safetensors file: ``model/*``, ``optim/<param>/<key>``, ``rng/<rank>/*`` + JSON metadata."""
    from safetensors.torch import save_file

    weights, aliases = dedupe_tensors(unwrap(model).state_dict())
    tensors = {f"model/{k}": v for k, v in weights.items()}
    opt = optimizer.state_dict()
    opt_scalars: dict[str, dict[str, Any]] = {}
    for pid, pstate in opt["state"].items():
        for key, value in pstate.items():
            if isinstance(value, Tensor):
                tensors[f"optim/{pid}/{key}"] = value.detach().to("cpu").clone()
            else:
                opt_scalars.setdefault(str(pid), {})[key] = value
    rng_info = []
    for r, (rng_tensors, info) in enumerate(rng_per_rank):
        for key, value in rng_tensors.items():
            tensors[f"rng/{r}/{key}"] = value.detach().to("cpu").clone()
        rng_info.append(info)
    payload = {
        **state,
        "model_aliases": aliases,
        "optim_param_groups": opt["param_groups"],
        "optim_scalars": opt_scalars,
        "rng": rng_info,
    }
    meta = {"format": CKPT_FORMAT, "version": str(CKPT_VERSION), "state": json.dumps(payload)}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def read_checkpoint(path: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """(tensors, JSON state) of a checkpoint; :class:`CheckpointError` when it cannot be used."""
    try:
        tensors, meta = read_weights(path)
    except WeightsError as e:
        raise CheckpointError(str(e)) from None
    if meta.get("format") != CKPT_FORMAT:
        raise CheckpointError(f"{path} is not a gptbert training checkpoint (format={meta.get('format')!r})")
    if meta.get("version") != str(CKPT_VERSION):
        raise CheckpointError(
            f"{path}: checkpoint version {meta.get('version')!r} unsupported (expected {CKPT_VERSION})"
        )
    return tensors, json.loads(meta["state"])


def _with_prefix(tensors: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """The tensors named ``prefix...``, the prefix taken off."""
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _load_optimizer(optimizer: torch.optim.Optimizer, tensors: Mapping[str, Tensor], state: Mapping[str, Any]) -> None:
    opt_state: dict[int, dict[str, Any]] = {}
    for k, v in _with_prefix(tensors, "optim/").items():
        pid, key = k.split("/", 1)
        opt_state.setdefault(int(pid), {})[key] = v
    for pid, extra in state["optim_scalars"].items():
        opt_state.setdefault(int(pid), {}).update(extra)
    groups = [
        {**g, "betas": tuple(g["betas"])} if isinstance(g.get("betas"), list) else dict(g)
        for g in state["optim_param_groups"]
    ]
    if len(groups) != len(optimizer.param_groups) or any(
        len(g["params"]) != len(h["params"]) for g, h in zip(groups, optimizer.param_groups)
    ):
        raise ValueError(
            "the checkpoint's optimizer has different parameter groups (another model, other trainable "
            "parameters, or another no_decay_norm_bias_embed setting)"
        )
    # The hyper-parameters come from the current optimizer (i.e. the current TrainArgs).
    current = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
    for g, hyper in zip(optimizer.param_groups, current):
        g.update(hyper)


def apply_checkpoint(
    tensors: Mapping[str, Tensor],
    state: Mapping[str, Any],
    model: nn.Module | None,
    optimizer: torch.optim.Optimizer | None,
    rng_rank: int | None,
) -> None:
    """Load what :func:`read_checkpoint` read into the model / optimizer / this rank's generators."""
    if model is not None:
        weights = _with_prefix(tensors, "model/")
        for alias, name in state["model_aliases"].items():
            weights[alias] = weights[name]
        unwrap(model).load_state_dict(weights)
    if optimizer is not None:
        _load_optimizer(optimizer, tensors, state)
    if rng_rank is not None:
        if rng_rank >= len(state["rng"]):
            raise RuntimeError(
                f"the checkpoint holds RNG states of {len(state['rng'])} process(es), none for rank {rng_rank}"
            )
        rng_restore(_with_prefix(tensors, f"rng/{rng_rank}/"), state["rng"][rng_rank])


def load_checkpoint(
    path: str | Path,
    model: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    restore_rng: bool = False,
    rank: int | None = None,
) -> dict[str, Any]:
    """Read a training checkpoint; load the model/optimizer when given; optionally restore RNGs.

    Returns the JSON state: ``progress`` (step, epoch, batch_in_epoch, history, ...), ``args``,
    ``world_size``, ``dataset_len``. Raises ``RuntimeError`` for a truncated or foreign file.
    """
    tensors, state = read_checkpoint(Path(path))
    rng_rank = (world_info().rank if rank is None else rank) if restore_rng else None
    apply_checkpoint(tensors, state, model, optimizer, rng_rank)
    return state


def check_resumable(state: Mapping[str, Any], args: TrainArgs, *, world: int, dataset_len: int) -> None:
    """Raise ``ValueError`` when a checkpoint's run cannot continue with these arguments and data."""
    saved = state["args"]
    for key in RESUME_KEYS:
        if saved.get(key) != getattr(args, key):
            raise ValueError(
                f"resume: {key} differs from the checkpoint's ({saved.get(key)!r} there, "
                f"{getattr(args, key)!r} now); the data position would not match"
            )
    if state["world_size"] != world:
        raise ValueError(f"resume: the checkpoint was written by {state['world_size']} process(es), now {world}")
    if state["dataset_len"] != dataset_len:
        raise ValueError(f"resume: the training set had {state['dataset_len']} examples, now {dataset_len}")


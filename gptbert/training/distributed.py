"""Devices and processes: rank / world size, the device to train on, DDP wrapping, agreement.

Under torchrun (``WORLD_SIZE`` > 1) :func:`process_group` initialises torch.distributed when
needed, :func:`wrap_model` puts the model in DistributedDataParallel, and the small collective
helpers here make every process agree on the step loss, the clock and the stop decision.
Single-process runs go through the same functions, which then do nothing.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = [
    "WorldInfo",
    "agree_on_clock",
    "all_gather",
    "barrier",
    "broadcast_from_main",
    "is_main_process",
    "process_group",
    "reduce_step",
    "resolve_device",
    "unwrap",
    "world_info",
    "wrap_model",
]


class WorldInfo(NamedTuple):
    rank: int
    local_rank: int
    world_size: int


def world_info() -> WorldInfo:
    """(rank, local_rank, world_size): from torch.distributed when initialised, else torchrun's env."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_available() and dist.is_initialized():
        return WorldInfo(dist.get_rank(), local_rank, dist.get_world_size())
    return WorldInfo(int(os.environ.get("RANK", "0")), local_rank, int(os.environ.get("WORLD_SIZE", "1")))


def is_main_process() -> bool:
    """True on rank 0 (and in a single-process run)."""
    return world_info().rank == 0


class DeviceError(RuntimeError, ValueError):
    """A device that does not exist here, or a name that is not a device (one line)."""


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` → cuda when available else cpu; ``cuda`` picks ``cuda:LOCAL_RANK`` under torchrun."""
    name = str(name).strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if re.fullmatch(r"cuda(:\d+)?", name):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {name!r} requested but CUDA is not available (torch {torch.__version__}); use --device cpu"
            )
        if name == "cuda":
            index = world_info().local_rank if world_info().world_size > 1 else torch.cuda.current_device()
            name = f"cuda:{index}"
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"device {name!r} requested but only {torch.cuda.device_count()} GPU(s) visible")
        return device
    raise DeviceError(f"unknown device {name!r}: expected auto, cpu, cuda or cuda:N")


@contextlib.contextmanager
def process_group(device: torch.device) -> Iterator[None]:
    """Under torchrun, a torch.distributed process group for the block (when none exists yet).

    nccl on CUDA, gloo on CPU; a group created here is destroyed on the way out.
    """
    created = False
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        created = True
    try:
        yield
    finally:
        if created and dist.is_initialized():
            dist.destroy_process_group()


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside torch.compile and DistributedDataParallel wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod  # type: ignore[assignment]
        elif isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model


def wrap_model(
    model: nn.Module, device: torch.device, *, distributed: bool, find_unused_parameters: bool, compile: bool
) -> tuple[nn.Module, nn.parallel.DistributedDataParallel | None]:
    """(the module to call, its DDP wrapper or None): DDP when ``distributed``, then torch.compile."""
    ddp: nn.parallel.DistributedDataParallel | None = None
    if distributed:
        ids = [device.index] if device.type == "cuda" else None
        ddp = nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused_parameters)
        model = ddp
    if compile:
        model = torch.compile(model)  # type: ignore[assignment]
    return model, ddp


def reduce_step(loss: Tensor, tokens: int, *, distributed: bool, world: int) -> tuple[Tensor, int]:
    """Multi-process: the step loss averaged over processes, the tokens summed."""
    if not distributed:
        return loss, tokens
    vec = torch.stack([loss.double(), torch.tensor(float(tokens), dtype=torch.float64, device=loss.device)])
    dist.all_reduce(vec)
    return (vec[0] / world).float(), int(vec[1].item())


def agree_on_clock(
    signalled: bool, elapsed: float, *, distributed: bool, device: torch.device
) -> tuple[bool, float]:
    """(signal seen on any process, the largest elapsed seconds): agreed by all processes.

    The elapsed time drives the time budget and, with one, the LR schedule; processes must
    agree on both or their weights (and their decision to stop) would drift apart.
    """
    if not distributed:
        return signalled, elapsed
    vec = torch.tensor([float(signalled), elapsed], dtype=torch.float64, device=device)
    dist.all_reduce(vec, op=dist.ReduceOp.MAX)
    flag, elapsed = vec.tolist()
    return flag > 0, elapsed


def all_gather(obj: Any, *, distributed: bool, world: int) -> list[Any]:
    """Every process's ``obj``, in rank order (``[obj]`` in a single process)."""
    if not distributed:
        return [obj]
    gathered: list[Any] = [None] * world
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_from_main(obj: Any, *, distributed: bool) -> Any:
    """Rank 0's ``obj`` on every process."""
    if not distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(*, distributed: bool) -> None:
    """Wait for every process (no-op in a single process)."""
    if distributed:
        dist.barrier()

"""Run independent jobs in this process or as Ray tasks: :func:`run_jobs`.

A job is any picklable value; ``fn(job)`` does the work and returns a picklable result. With
``backend="local"`` (the default, no Ray needed) the jobs run one after another here; with
``backend="ray"`` each becomes a Ray task that asks for ``cpus_per_job`` CPUs and
``gpus_per_job`` GPUs, so a cluster runs as many at once as it has room for. Either way the results
come back in the order of ``jobs``, and a failing job raises :class:`JobError` naming it (its
``name`` attribute or key when it has one, else its index and repr) with the job's own error as the
cause. Ray also limits a task's threads to its CPUs (``OMP_NUM_THREADS``), so a figure timed inside
a job is timed on the resources it asked for.

``address``: ``None`` uses the Ray runtime this process already has, else starts a local one (and
shuts it down after the jobs); ``"auto"`` joins the cluster of this machine (``ray start --head``
here, ``ray start --address HEAD:6379`` on the others); ``"ray://HOST:10001"`` a remote cluster.
A runtime this call starts or joins gets this process's import path as the workers'
``PYTHONPATH`` (so that a checkout runs its own code on this machine); every other node needs
gptbert (and what ``fn`` imports) installed. A runtime the caller started with ``ray.init`` is used
as it is. Ray is imported only by the ray backend (``pip install 'gptbert[ray]'``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar

__all__ = ["BACKENDS", "JobError", "job_name", "run_jobs"]

J = TypeVar("J")
R = TypeVar("R")

BACKENDS = ("local", "ray")


class JobError(RuntimeError):
    """A job failed: ``index`` and ``name`` say which; ``__cause__`` is its error where it could be
    carried back (Ray: the task's exception)."""

    def __init__(self, index: int, name: str, backend: str, detail: str) -> None:
        self.index, self.name, self.backend = index, name, backend
        super().__init__(f"job {name} (#{index} of the {backend} backend) failed: {detail}")


def job_name(job: Any) -> str:
    """``job.name`` or ``job["name"]`` quoted, else the job's repr shortened: how errors name a job."""
    name = job.get("name") if isinstance(job, Mapping) else getattr(job, "name", None)
    if isinstance(name, str) and name:
        return repr(name)
    text = repr(job)
    return text if len(text) <= 60 else text[:57] + "..."


def _detail(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def _run_local(fn: Callable[[J], R], jobs: Sequence[J]) -> list[R]:
    out: list[R] = []
    for i, job in enumerate(jobs):
        try:
            out.append(fn(job))
        except Exception as e:
            raise JobError(i, job_name(job), "local", _detail(e)) from e
    return out


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ImportError("backend='ray' needs Ray: pip install 'gptbert[ray]'") from None
    return ray


def _start(ray: Any, address: str | None) -> bool:
    """Connect to (or start) a runtime; True when this call started it (and so shuts it down)."""
    if ray.is_initialized():
        return False
    # Workers on this machine import the same code as this process (a checkout on sys.path, not
    # only an installed copy): they get this process's import path.
    path = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
    ray.init(address=address, runtime_env={"env_vars": {"PYTHONPATH": path}}, include_dashboard=False,
             log_to_driver=True, configure_logging=False)
    return address is None


def _check_room(ray: Any, cpus: float, gpus: float) -> None:
    have = ray.cluster_resources()
    for what, want in (("CPU", cpus), ("GPU", gpus)):
        if want > have.get(what, 0.0):
            raise ValueError(f"each job asks for {want:g} {what}(s) but the Ray cluster has "
                             f"{have.get(what, 0.0):g} in all: no job could start (lower the request or add nodes)")


def _run_ray(fn: Callable[[J], R], jobs: Sequence[J], address: str | None, cpus: float, gpus: float) -> list[R]:
    ray = _import_ray()
    started = _start(ray, address)
    try:
        _check_room(ray, cpus, gpus)
        task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(fn)
        names = [job_name(job) for job in jobs]
        refs = [task.options(name=f"gptbert job {n}").remote(job) for n, job in zip(names, jobs)]
        out: list[R] = []
        for i, ref in enumerate(refs):
            try:
                out.append(ray.get(ref))
            except ray.exceptions.RayTaskError as e:
                for rest in refs[i + 1:]:
                    ray.cancel(rest)
                cause = e.cause if isinstance(getattr(e, "cause", None), BaseException) else None
                raise JobError(i, names[i], "ray", _detail(cause) if cause is not None else str(e)) from (cause or e)
            except ray.exceptions.RayError as e:  # a worker died, a task was cancelled, ...
                for rest in refs[i + 1:]:
                    ray.cancel(rest)
                raise JobError(i, names[i], "ray", _detail(e)) from e
        return out
    finally:
        if started:
            ray.shutdown()


def run_jobs(fn: Callable[[J], R], jobs: Sequence[J], *, backend: Literal["local", "ray"] = "local",
             address: str | None = None, cpus_per_job: float = 1, gpus_per_job: float = 0) -> list[R]:
    """``[fn(job) for job in jobs]``, here (``local``) or as Ray tasks (``ray``) with the given
    resource request each; results in the order of ``jobs``; :class:`JobError` for the first job
    (in that order) that failed."""
    jobs = list(jobs)
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    if cpus_per_job < 0 or gpus_per_job < 0:
        raise ValueError(f"cpus_per_job and gpus_per_job must be >= 0 (got {cpus_per_job}, {gpus_per_job})")
    if backend == "local":
        if address is not None:
            raise ValueError("address names a Ray cluster: use it with backend='ray'")
        return _run_local(fn, jobs)
    if not jobs:
        return []
    return _run_ray(fn, jobs, address, float(cpus_per_job), float(gpus_per_job))

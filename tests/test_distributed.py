"""gptbert.distributed.run_jobs: the local backend, and Ray tasks on a real local Ray runtime
(``ray.init(num_cpus=2)``) training real tf-idf baselines on SST-2 rows: same results in the same
order, a failing job named in the error, a resource request no node can meet refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gptbert.distributed import JobError, job_name, run_jobs


def _sst2(shared: Path, start: int, n: int) -> tuple[list[str], list[str]]:
    rows = (shared / "sst2" / "train.tsv").read_text(encoding="utf-8").splitlines()[1 + start:1 + start + n]
    texts, labels = zip(*(r.rsplit("\t", 1) for r in rows))
    return list(texts), list(labels)


def fit_tfidf(job: dict[str, Any]) -> dict[str, Any]:
    """One candidate: a tf-idf + logistic-regression baseline with one C, scored on the dev rows."""
    import os

    import gptbert
    from gptbert.baselines.tfidf import TfidfLR

    if job["C"] <= 0:
        raise ValueError(f"C must be positive, got {job['C']}")
    model = TfidfLR.fit(job["train"][0], job["train"][1], grid=(job["C"],), seed=0)
    probs = model.predict_proba(job["dev"][0])
    predicted = [model.labels[i] for i in probs.argmax(axis=1)]
    accuracy = sum(p == y for p, y in zip(predicted, job["dev"][1])) / len(predicted)
    return {"name": job["name"], "accuracy": accuracy, "C": model.search.C, "pid": os.getpid(),
            "code": gptbert.__file__}


@pytest.fixture(scope="module")
def jobs(shared_data: Path) -> list[dict[str, Any]]:
    train, dev = _sst2(shared_data, 0, 200), _sst2(shared_data, 200, 80)
    return [{"name": f"tfidf-C{c:g}", "C": c, "train": train, "dev": dev} for c in (0.3, 3.0, 30.0)]


def test_local_backend_runs_in_order_here(jobs: list[dict[str, Any]]) -> None:
    import os

    results = run_jobs(fit_tfidf, jobs)
    assert [r["name"] for r in results] == ["tfidf-C0.3", "tfidf-C3", "tfidf-C30"]
    assert {r["pid"] for r in results} == {os.getpid()}
    assert all(0.5 < r["accuracy"] <= 1.0 for r in results) and [r["C"] for r in results] == [0.3, 3.0, 30.0]
    bad = [{**jobs[1], "name": "broken", "C": -1.0}, *jobs[:1]]
    with pytest.raises(JobError, match=r"job 'broken' \(#0 of the local backend\) failed: ValueError: C must be "
                                       r"positive, got -1.0") as info:
        run_jobs(fit_tfidf, bad)
    assert isinstance(info.value.__cause__, ValueError) and info.value.index == 0


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="backend 'dask'"):
        run_jobs(len, ["a"], backend="dask")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="use it with backend='ray'"):
        run_jobs(len, ["a"], address="auto")
    assert job_name({"name": "x"}) == "'x'" and job_name(("a" * 80,)).endswith("...")


@pytest.fixture(scope="module")
def ray_runtime() -> Any:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_backend_matches_local(ray_runtime: Any, jobs: list[dict[str, Any]]) -> None:
    import os

    import gptbert

    local = run_jobs(fit_tfidf, jobs)
    remote = run_jobs(fit_tfidf, jobs, backend="ray", cpus_per_job=1)
    assert [r["name"] for r in remote] == [r["name"] for r in local]
    assert [r["accuracy"] for r in remote] == [r["accuracy"] for r in local]
    assert os.getpid() not in {r["pid"] for r in remote}  # they ran in Ray workers
    assert {r["code"] for r in remote} == {gptbert.__file__}  # on this checkout's code
    bad = [jobs[0], {**jobs[1], "name": "broken", "C": -1.0}, jobs[2]]
    with pytest.raises(JobError, match=r"job 'broken' \(#1 of the ray backend\) failed: ValueError: C must be "
                                       r"positive") as info:
        run_jobs(fit_tfidf, bad, backend="ray")
    assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(ValueError, match=r"each job asks for 4 CPU\(s\) but the Ray cluster has 2 in all"):
        run_jobs(fit_tfidf, jobs, backend="ray", cpus_per_job=4)
    with pytest.raises(ValueError, match=r"asks for 1 GPU\(s\) but the Ray cluster has 0"):
        run_jobs(fit_tfidf, jobs, backend="ray", gpus_per_job=1)


@pytest.mark.slow
def test_ray_runtime_started_here_is_shut_down(jobs: list[dict[str, Any]]) -> None:
    """Without a runtime, the ray backend starts a local one for the jobs (its workers import this
    checkout, on the driver's import path) and stops it after."""
    import gptbert

    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    (result,) = run_jobs(fit_tfidf, jobs[:1], backend="ray")
    assert result["name"] == "tfidf-C0.3" and result["code"] == gptbert.__file__
    assert not ray.is_initialized()

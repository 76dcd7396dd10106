"""Experiment tracking: one :class:`Tracker` interface over MLflow and TensorBoard.

A tracker records one run: its parameters, metrics (per step, or final measurements without a
step), and files; :meth:`Tracker.child` opens a run nested under it (one per candidate of a
comparison). :func:`open_tracker` makes one by name (``--track mlflow|tensorboard``);
:class:`TrackingCallback` feeds it from the one training loop (parameters at the start, every
``metrics.jsonl`` record as it is written, the fit summary at the end); :func:`log_run` adds a run
directory's final figures and small files, :func:`log_candidate` one comparison candidate.

=============  ==========================================================  ===============
tracker        where it writes                                             needs
=============  ==========================================================  ===============
mlflow         ``--track-uri``, else ``$MLFLOW_TRACKING_URI``, else the     ``[track]``
               local file store ``./mlruns`` (``mlflow ui`` shows it)
tensorboard    event files under a folder (``add_scalar`` / ``add_text``)   ``[tensorboard]``
=============  ==========================================================  ===============

Metric names are those of the training log, as TensorBoard tags: ``train/loss``,
``train/tokens_per_s``, ``eval/accuracy`` ... (characters MLflow does not allow become ``_``).
MLflow parameters are write-once: a parameter logged twice keeps its first value. Only rank 0 of
a multi-process run tracks. ``mlflow`` is imported only when an MLflow tracker is opened.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gptbert.io.layout import (
    COMPRESSION_FILE,
    CONFIG_FILE,
    LABELS_FILE,
    METRICS_FILE,
    TASK_FILE,
    TRAIN_ARGS_FILE,
    TRAIN_LOG_FILE,
)

__all__ = ["TRACKERS", "MlflowTracker", "TensorBoardTracker", "Tracker", "TrackingCallback", "log_candidate",
           "log_run", "open_tracker", "scalars"]

TRACKERS = ("mlflow", "tensorboard")
"""The names :func:`open_tracker` (and ``--track``) takes."""

DEFAULT_MLFLOW_DIR = "mlruns"
"""The local MLflow file store used when no tracking URI is given."""

RUN_FILES = (CONFIG_FILE, TASK_FILE, LABELS_FILE, METRICS_FILE, TRAIN_ARGS_FILE, TRAIN_LOG_FILE, COMPRESSION_FILE)
"""The files of a run directory a tracker keeps (not the weights)."""

_BAD_KEY = re.compile(r"[^\w\-. /:]")
MAX_PARAM_CHARS = 6000
"""MLflow's limit on a parameter value."""


def scalars(values: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The finite-or-not numbers of ``values`` (nested mappings flattened as ``a/b``); bools and
    strings left out."""
    out: dict[str, float] = {}
    for k, v in values.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(scalars(v, f"{key}/"))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = float(v)
    return out


def flat_params(values: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Parameters as strings, nested mappings flattened as ``a.b``; None left out."""
    out: dict[str, str] = {}
    for k, v in values.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flat_params(v, f"{key}."))
        elif v is not None:
            out[key] = str(v)
    return out


class Tracker:
    """One tracked run. Subclasses write somewhere; this base class records nothing."""

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Settings of the run (nested mappings flattened as ``a.b``)."""

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Numbers at ``step`` (a training step), or final measurements with ``step=None``."""

    def log_files(self, paths: Iterable[str | Path], folder: str | None = None) -> None:
        """Copy files (or folders) into the run's artifacts, under ``folder`` when given."""

    def child(self, name: str) -> Tracker:
        """A run nested under this one (a comparison candidate)."""
        raise NotImplementedError

    def close(self, status: str = "finished") -> None:
        """End the run (``status``: finished or failed)."""

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close("failed" if exc_type is not None else "finished")


def _key(name: str) -> str:
    return _BAD_KEY.sub("_", name)


def _default_mlflow_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or Path(DEFAULT_MLFLOW_DIR).resolve().as_uri()


def _is_file_store(uri: str) -> bool:
    return uri.startswith("file:") or "://" not in uri


class MlflowTracker(Tracker):
    """One MLflow run, written through ``MlflowClient`` (no global active run: children and several
    trackers in one process do not interfere).

    MLflow 3 refuses its file store unless ``MLFLOW_ALLOW_FILE_STORE`` is set; for a file store
    (the default ``./mlruns``) this sets it when it is unset.
    """

    def __init__(self, uri: str | None = None, *, experiment: str = "gptbert", run_name: str | None = None,
                 parent: MlflowTracker | None = None) -> None:
        if parent is not None:
            self.client, self.experiment_id, self.uri = parent.client, parent.experiment_id, parent.uri
        else:
            self.uri = uri or _default_mlflow_uri()
            if _is_file_store(self.uri):
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            try:
                from mlflow.tracking import MlflowClient
            except ImportError:
                raise ImportError("--track mlflow needs MLflow: pip install 'gptbert[track]'") from None
            self.client = MlflowClient(tracking_uri=self.uri)
            found = self.client.get_experiment_by_name(experiment)
            self.experiment_id = found.experiment_id if found is not None else self.client.create_experiment(experiment)
        tags = {"mlflow.parentRunId": parent.run_id} if parent is not None else {}
        self.run_id: str = self.client.create_run(self.experiment_id, run_name=run_name, tags=tags).info.run_id
        self.params: dict[str, str] = {}
        self.closed = False

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        new = {_key(k): v[:MAX_PARAM_CHARS] for k, v in flat_params(params).items() if _key(k) not in self.params}
        items = [Param(k, v) for k, v in new.items()]
        for i in range(0, len(items), 100):  # log_batch takes at most 100 parameters
            self.client.log_batch(self.run_id, params=items[i:i + 100])
        self.params.update(new)

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(_key(k), v, now, step or 0) for k, v in scalars(metrics).items()]
        for i in range(0, len(items), 1000):  # and at most 1000 metrics
            self.client.log_batch(self.run_id, metrics=items[i:i + 1000])

    def log_files(self, paths: Iterable[str | Path], folder: str | None = None) -> None:
        for p in map(Path, paths):
            if p.is_dir():
                self.client.log_artifacts(self.run_id, str(p), artifact_path=f"{folder}/{p.name}" if folder else p.name)
            else:
                self.client.log_artifact(self.run_id, str(p), artifact_path=folder)

    def child(self, name: str) -> MlflowTracker:
        return MlflowTracker(parent=self, run_name=name)

    def close(self, status: str = "finished") -> None:
        if not self.closed:
            self.closed = True
            self.client.set_terminated(self.run_id, status="FINISHED" if status == "finished" else "FAILED")


class TensorBoardTracker(Tracker):
    """TensorBoard events under ``log_dir``: metrics as scalars, parameters as a text table, files
    copied into ``log_dir/files``; a child is the sub-folder of its name (TensorBoard shows it as a
    run of its own)."""

    def __init__(self, log_dir: str | Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ImportError("--track tensorboard needs TensorBoard: pip install 'gptbert[tensorboard]'") from None
        self.log_dir = Path(log_dir)
        self.writer = SummaryWriter(log_dir=str(self.log_dir))
        self.last_step = 0

    def log_params(self, params: Mapping[str, Any]) -> None:
        rows = "\n".join(f"| {k} | {v} |" for k, v in flat_params(params).items())
        self.writer.add_text("params", "| parameter | value |\n|---|---|\n" + rows, 0)

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        if step is not None:
            self.last_step = max(self.last_step, step)
        for k, v in scalars(metrics).items():
            self.writer.add_scalar(k, v, self.last_step if step is None else step)
        self.writer.flush()

    def log_files(self, paths: Iterable[str | Path], folder: str | None = None) -> None:
        target = self.log_dir / "files" / (folder or "")
        target.mkdir(parents=True, exist_ok=True)
        for p in map(Path, paths):
            if p.is_dir():
                shutil.copytree(p, target / p.name, dirs_exist_ok=True)
            else:
                shutil.copy2(p, target / p.name)

    def child(self, name: str) -> TensorBoardTracker:
        return TensorBoardTracker(self.log_dir / _key(name).replace("/", "_"))

    def close(self, status: str = "finished") -> None:
        self.writer.close()


def open_tracker(kind: str, *, uri: str | None = None, experiment: str = "gptbert", run_name: str | None = None,
                 log_dir: str | Path | None = None) -> Tracker:
    """A tracker by name: ``mlflow`` (``uri``: a tracking URI, or a local folder for a file store),
    ``tensorboard`` (``log_dir``, or ``uri`` as the folder)."""
    if kind == "mlflow":
        if uri is not None and "://" not in uri:  # a plain folder: the file store there
            uri = Path(uri).resolve().as_uri()
        return MlflowTracker(uri, experiment=experiment, run_name=run_name)
    if kind == "tensorboard":
        folder = log_dir or uri
        if folder is None:
            raise ValueError("--track tensorboard: give the folder to write the events to")
        return TensorBoardTracker(folder)
    raise ValueError(f"--track {kind}: expected one of {', '.join(TRACKERS)}")


class TrackingCallback:
    """A training-loop callback (duck-typed, see :class:`gptbert.training.Callback`) that feeds a
    tracker on rank 0: the training arguments as parameters when training begins, each training-log
    record as ``train/*`` or ``eval/*`` metrics at its step, and the fit summary at the end."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker

    def on_train_begin(self, state: Any) -> None:
        if state.rank == 0:
            from dataclasses import asdict

            self.tracker.log_params({"train": asdict(state.args)})

    def on_log(self, state: Any, record: Mapping[str, Any]) -> None:
        if state.rank != 0:
            return
        kind = record.get("kind", "train")
        skip = ("kind", "step", "best")
        metrics = {(f"eval/{k.removeprefix('eval_')}" if kind == "eval" else f"train/{k}"): v
                   for k, v in record.items() if k not in skip}
        self.tracker.log_metrics(metrics, step=int(record.get("step", 0)))

    def on_train_end(self, state: Any, result: Any) -> None:
        if state.rank == 0:
            self.tracker.log_metrics({"fit/steps": result.steps, "fit/epochs": result.epochs,
                                      "fit/wall_s": result.wall_time, "fit/train_s": result.train_time,
                                      "fit/tokens_per_s": result.tokens_per_s, "fit/best_metric": result.best_metric})


def log_run(tracker: Tracker, run_dir: str | Path, measurements: Mapping[str, Any] | None = None) -> None:
    """A finished run directory: its final ``measurements`` (numbers, nested flattened) and the
    files of :data:`RUN_FILES` that it has (the weights are not copied)."""
    if measurements:
        tracker.log_metrics(measurements)
    d = Path(run_dir)
    tracker.log_files([d / name for name in RUN_FILES if (d / name).is_file()], folder="run")


def log_candidate(tracker: Tracker, name: str, params: Mapping[str, Any], measurements: Mapping[str, Any],
                  files: Iterable[str | Path] = ()) -> Tracker:
    """One comparison candidate as a run nested under ``tracker`` (the comparison's): its ``params``,
    its ``measurements`` (final numbers) and ``files`` (a run directory's :data:`RUN_FILES` when a
    folder is given); the child run is closed and returned."""
    child = tracker.child(name)
    try:
        child.log_params(params)
        if measurements:
            child.log_metrics(measurements)
        for f in map(Path, files):
            if f.is_dir():
                log_run(child, f)
            elif f.exists():
                child.log_files([f])
            else:
                raise FileNotFoundError(f"{f}: no such file (a file of candidate {name!r})")
    except BaseException:
        child.close("failed")
        raise
    child.close()
    return child

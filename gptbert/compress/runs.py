"""Compressing run directories (what ``gptbert compress`` does, step by step).

* :func:`save_compressed_run` - a compressed model saved as a run directory that every command
  loads (the task, labels and tokenizer files carried over);
* :func:`recover` - recovery fine-tuning of a pruned classifier (pruned weights kept at zero);
* :func:`distill_run` - a student trained on the run's soft targets, saved as a run;
* :func:`export_run` - ONNX / TorchScript export, checked against PyTorch;
* :func:`training_args` - the training settings of recovery and distillation.

Each of them reports in a plain dict (sizes, speeds, dev accuracy: :mod:`gptbert.compress.evaluate`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gptbert.compress.evaluate import PROBE_TEXTS, measure
from gptbert.io.layout import LABELS_FILE, TASK_FILE, TOKENIZER_FILES, TOKENIZER_META_FILE, WEIGHTS_FILE

__all__ = ["RUN_FILES", "distill_run", "export_run", "recover", "save_compressed_run", "training_args"]

RUN_FILES = (TASK_FILE, LABELS_FILE, *TOKENIZER_FILES, "merges.txt", TOKENIZER_META_FILE,
             "tokenizer_config.json", "special_tokens_map.json")
"""Files of a run directory that its compressed copy carries over unchanged (a BPE tokenizer's
merges.txt and a Hugging Face tokenizer's side files included)."""


def training_args(out_dir: str | Path, *, lr: float, max_steps: int | None = None, max_epochs: int | None = None,
                  time_budget: str | None = None, batch_size: int = 32, precision: str = "fp32", seed: int = 0,
                  eval_every: int = 0, progress: bool = True) -> Any:
    """The ``TrainArgs`` of recovery and distillation: one epoch when no other limit is set,
    6 % warm-up, accuracy as the dev metric, no intermediate checkpoints, no TensorBoard."""
    from gptbert.training import TrainArgs

    if max_steps is None and max_epochs is None and time_budget is None:
        max_epochs = 1
    return TrainArgs(max_steps=max_steps, max_epochs=max_epochs, time_budget=time_budget, lr=lr,
                     batch_size=batch_size, precision=precision, seed=seed, eval_every=eval_every,
                     progress=progress, out_dir=str(out_dir), warmup_ratio=0.06, eval_metric="accuracy",
                     save_every=0, tensorboard=False)


def _with_lr(train: Mapping[str, Any], default: float) -> dict[str, Any]:
    return {**train, "lr": default if train.get("lr") is None else train["lr"]}


def recover(run: Any, model: Any, method: str, train_path: str, train: Mapping[str, Any], *,
            dev_path: str | None = None, max_train: int | None = None) -> dict[str, Any]:
    """Recovery fine-tuning of a pruned classifier on ``train_path`` (pruned weights kept at zero).

    ``train``: :func:`training_args` keywords (lr defaults to 5e-5); its checkpoints go to a
    temporary folder, not to the output. The best dev accuracy (``best``) comes with the rows it
    was scored on (``best_dev_rows``: ``dev_path``, else a seeded split of ``train_path``).
    """
    from gptbert.compress import KeepPrunedZero, masks_from_zeros, sparsity
    from gptbert.recipes import classifier_data, recovery_finetune

    callbacks = [KeepPrunedZero(masks_from_zeros(model))] if method == "prune-magnitude" else []
    with tempfile.TemporaryDirectory(prefix="gptbert-recover-") as tmp:  # its checkpoints are not the output
        targs = training_args(tmp, **_with_lr(train, 5e-5))
        result = recovery_finetune(model, run, train_path, targs, dev_path=dev_path, max_train=max_train,
                                   callbacks=callbacks)
    dev = classifier_data(run, train_path, dev_path, seed=targs.seed, max_train=max_train).dev  # what fit scored
    rec: dict[str, Any] = {"steps": result.steps, "stop_reason": result.stop_reason,
                           "train_s": round(result.wall_time, 1), "best": result.best_metric,
                           "best_dev_rows": len(dev), "best_dev_on": dev_path or "a split of the training file"}
    if method == "prune-magnitude":
        rec["sparsity_after"] = sparsity(model)
    return rec


def save_compressed_run(model: Any, info: Mapping[str, Any], run_dir: str | Path, out: str | Path,
                        texts: list[str], scored: list[Any]) -> dict[str, Any]:
    """Save ``model`` as a run directory beside the files of ``run_dir``; reload it and measure it."""
    from gptbert.compress import save_compressed
    from gptbert.run import load_run

    src, out = Path(run_dir), Path(out)
    extra = {name: src / name for name in RUN_FILES if (src / name).exists()}
    save_compressed(model, out, info, extra_files=extra)
    return measure(load_run(out), out / WEIGHTS_FILE, texts, scored)


def export_run(run: Any, out: str | Path, fmt: str, texts: list[str] | None = None,
               scored: list[Any] | None = None) -> dict[str, Any]:
    """Export ``run`` into ``out``, checked against PyTorch.

    ``fmt`` 'torchscript': ``model.pt`` alone. 'onnx' / 'onnx-int8': a run directory that every
    command loads (``model.onnx`` fp32, or ONNX Runtime's dynamic int8 quantisation of it, with
    ``onnx.json``, the config, tokenizer, task and labels; :mod:`gptbert.io.onnx_engine`),
    reloaded and measured on ``texts`` / ``scored`` like any compressed run (``compressed``).
    """
    from gptbert.compress.export import export_onnx, export_torchscript, quantize_onnx_dynamic
    from gptbert.io.files import to_json, write_files
    from gptbert.io.layout import CONFIG_FILE, ONNX_FILE, ONNX_META_FILE
    from gptbert.io.onnx_engine import onnx_meta
    from gptbert.measure import saved_size_mb
    from gptbert.run import load_run
    from gptbert.tasks.classify import make_collator

    out = Path(out)
    example = make_collator(run.tokenizer, run.config, run.task.max_len)([(PROBE_TEXTS[0], None, None)])
    inputs = {k: v for k, v in example.items() if k not in ("targets",)}
    if fmt == "torchscript":
        out.mkdir(parents=True, exist_ok=True)
        path = out / "model.pt"
        export_torchscript(run.model, path, inputs)
        return {"exported": str(path), "checked_against_pytorch": True, "size_mb": saved_size_mb(path)}
    if fmt not in ("onnx", "onnx-int8"):
        raise ValueError(f"export format: expected onnx, onnx-int8 or torchscript, got {fmt!r}")
    with tempfile.TemporaryDirectory(prefix="gptbert-export-") as tmp:
        graph = Path(tmp) / ONNX_FILE
        export = export_onnx(run.model, graph, inputs)
        if fmt == "onnx-int8":
            graph = quantize_onnx_dynamic(graph, Path(tmp) / "int8.onnx")
        meta = onnx_meta(export, weights="int8-dynamic" if fmt == "onnx-int8" else "fp32", source=str(run.path),
                         config=run.config)
        with tempfile.TemporaryDirectory(prefix="gptbert-tokenizer-") as tok:
            run.tokenizer.save(tok)
            writers = {name.name: _copier(name) for name in sorted(Path(tok).iterdir()) if name.is_file()}
            writers[ONNX_FILE] = _copier(graph)
            writers[TASK_FILE] = _text_writer(to_json(run.task.to_dict()))
            if run.labels is not None:
                writers[LABELS_FILE] = _text_writer(to_json({"labels": list(run.labels)}))
            writers[CONFIG_FILE] = run.config.save
            writers[ONNX_META_FILE] = _text_writer(to_json(meta))  # last: marks the directory as an ONNX run
            write_files(out, writers)
    after = measure(load_run(out), out / ONNX_FILE, texts or list(PROBE_TEXTS), scored or [])
    return {"out": str(out), "exported": str(out / ONNX_FILE), "checked_against_pytorch": True,
            "max_abs_diff": export["max_abs_diff"], "size_mb": after["size_mb"], "compressed": after}


def _copier(source: Path) -> Any:
    import shutil

    return lambda path: shutil.copyfile(source, path)


def _text_writer(text: str) -> Any:
    return lambda path: path.write_text(text, encoding="utf-8")


def distill_run(run_dir: str | Path, student: str, train_path: str, out: str | Path, train: Mapping[str, Any], *,
                texts: list[str], scored: list[Any], dev_path: str | None = None, tokenizer: str | None = None,
                vocab_size: int | None = None, max_len: int | None = None, temperature: float = 2.0,
                alpha: float = 0.5, max_train: int | None = None) -> dict[str, Any]:
    """Train ``student`` (a preset or a run / HF directory) on the soft targets of the classifier in
    ``run_dir`` (weighted ``alpha``, at ``temperature``) plus the hard labels of ``train_path``; save it
    as a run in ``out`` and measure it. ``train``: :func:`training_args` keywords (lr defaults to 1e-3
    for a preset student, else 5e-5). Teacher and student dev accuracy are scored on the same
    ``dev_rows`` rows (``dev_path``, else a seeded split of ``train_path``)."""
    from gptbert.config import PRESETS
    from gptbert.recipes import distill
    from gptbert.run import load_run

    targs = training_args(out, **_with_lr(train, 1e-3 if student in PRESETS else 5e-5))
    path, result, extra = distill(
        run_dir, student, train_path, out, targs, dev_path=dev_path, tokenizer=tokenizer, vocab_size=vocab_size,
        max_len=max_len, temperature=temperature, alpha=alpha, skip_bad_rows=True, max_train=max_train)
    # Scored with the teacher's label map: the student was trained with it.
    after = measure(load_run(path), Path(path) / WEIGHTS_FILE, texts, scored)
    return {"out": str(path), "student": student, "steps": result.steps, "stop_reason": result.stop_reason,
            "train_s": round(result.wall_time, 1), "compressed": after,
            "teacher_dev_accuracy": extra["teacher_dev"].get("accuracy"),
            "student_dev_accuracy": extra["dev"].get("accuracy"), "dev_rows": extra["dev"].get("n"),
            "dev_on": dev_path or "a split of the training file"}

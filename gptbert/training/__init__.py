"""Training: the one loop (:func:`fit`) for pre-training, fine-tuning and distillation.

=================  ==========================================================================
``args``           :class:`TrainArgs` (its field docstrings are the CLI's ``--help``), durations
``schedule``       :func:`lr_at` and the schedule's total steps (pure functions), AdamW groups
``sampling``       the epoch order, its micro-batches, the batch source (seeded collation)
``evaluation``     the loss in a model's output, the dev loss, ``eval_fn`` runs, metric direction
``state``          checkpoints (save / read / resume), RNG states, weights and model directories
``reporting``      metrics.jsonl, TensorBoard, the progress bar or plain progress lines
``callbacks``      :class:`Callback` hooks, :class:`TrainState`, :class:`FitResult`, signals
``distributed``    rank / world size, the device, DDP wrapping, agreement between processes
``loop``           :func:`fit`
=================  ==========================================================================

File names of a run directory come from :mod:`gptbert.io.layout`.
"""

from gptbert.training.args import TrainArgs, parse_duration
from gptbert.training.callbacks import Callback, FitResult, StopReason, TrainState
from gptbert.training.distributed import WorldInfo, is_main_process, resolve_device, world_info
from gptbert.training.evaluation import evaluate_loss
from gptbert.training.loop import fit, resolve_precision
from gptbert.training.sampling import count_tokens, epoch_batches, epoch_indices
from gptbert.training.schedule import build_optimizer, lr_at, param_groups
from gptbert.training.state import (
    CheckpointError,
    load_checkpoint,
    load_model_weights,
    save_model_weights,
    seed_everything,
)

__all__ = [
    "Callback",
    "CheckpointError",
    "FitResult",
    "StopReason",
    "TrainArgs",
    "TrainState",
    "WorldInfo",
    "build_optimizer",
    "count_tokens",
    "epoch_batches",
    "epoch_indices",
    "evaluate_loss",
    "fit",
    "resolve_precision",
    "is_main_process",
    "load_checkpoint",
    "load_model_weights",
    "lr_at",
    "param_groups",
    "parse_duration",
    "resolve_device",
    "save_model_weights",
    "seed_everything",
    "world_info",
]

"""The training core both classifiers share (no scikit-learn inside).

* ``_loop``: :class:`Trainer` (fit -> epoch -> train step) and the
  :class:`TrainingState` that callbacks see;
* ``_steps``: what a batch and its loss are (:class:`SupervisedStep`,
  :class:`DomainAdaptationStep`);
* ``_batches``: target batches that keep pace with the source batches;
* ``_callbacks``: the :class:`Callback` protocol and the callbacks the
  estimators use (:class:`EarlyStopping`, :class:`EpochLogger`,
  :class:`ProgressBar`, :class:`FreezeSchedule`) or users add
  (:class:`Checkpoint`);
* ``_loggers``: callbacks that log epochs to trackers
  (:class:`TensorBoardLogger`, :class:`MLflowLogger`);
* ``_setup``: parameter groups, optimizers, schedules;
* ``_freeze``: which parameters train; ``_augment``: batched augmentation
  (and :class:`PerSample`, from :mod:`sktransfer.inputs`, for per-image
  transforms); ``_mixing``: MixUp and CutMix (:class:`BatchMixing`).
"""

from ..inputs import PerSample
from ._augment import DefaultAugment, StrongAugment, WeakAugment, resolve_augment
from ._batches import target_batches
from ._callbacks import (
    HOOKS,
    Callback,
    Checkpoint,
    EarlyStopping,
    EpochLogger,
    FreezeSchedule,
    ProgressBar,
    check_callbacks,
    epoch_line,
)
from ._freeze import freeze_all, frozen_batchnorm_to_eval, head_warmup, set_trainable, stages
from ._loggers import MLflowLogger, TensorBoardLogger, epoch_metrics
from ._loop import Trainer, TrainingState
from ._mixing import MIXUP_PRESETS, BatchMixing, check_mixup, make_mixing
from ._setup import (
    INTERVALS,
    OPTIMIZERS,
    PER_BATCH,
    SCHEDULERS,
    SchedulerSpec,
    build_optimizer,
    build_scheduler,
    check_scheduler,
    param_groups,
    scheduler_interval,
)
from ._steps import (
    DomainAdaptationStep,
    SourceOnlyStep,
    adapt_batchnorm,
    batch_statistics_logits,
    StepInputs,
    SupervisedStep,
    validation_scores,
    weighted_cross_entropy,
)

__all__ = [
    "HOOKS",
    "INTERVALS",
    "MIXUP_PRESETS",
    "OPTIMIZERS",
    "PER_BATCH",
    "SCHEDULERS",
    "BatchMixing",
    "Callback",
    "Checkpoint",
    "DefaultAugment",
    "DomainAdaptationStep",
    "EarlyStopping",
    "EpochLogger",
    "FreezeSchedule",
    "MLflowLogger",
    "PerSample",
    "ProgressBar",
    "SchedulerSpec",
    "SourceOnlyStep",
    "StepInputs",
    "StrongAugment",
    "SupervisedStep",
    "TensorBoardLogger",
    "Trainer",
    "TrainingState",
    "WeakAugment",
    "adapt_batchnorm",
    "batch_statistics_logits",
    "build_optimizer",
    "build_scheduler",
    "check_callbacks",
    "check_mixup",
    "check_scheduler",
    "epoch_line",
    "epoch_metrics",
    "freeze_all",
    "frozen_batchnorm_to_eval",
    "head_warmup",
    "make_mixing",
    "param_groups",
    "resolve_augment",
    "scheduler_interval",
    "set_trainable",
    "stages",
    "target_batches",
    "validation_scores",
    "weighted_cross_entropy",
]

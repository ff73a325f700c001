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
* ``_setup``: parameter groups, optimizers, schedules;
* ``_freeze``: which parameters train; ``_augment``: batched augmentation.
"""

from ._augment import DefaultAugment, resolve_augment
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
from ._loop import Trainer, TrainingState
from ._setup import (
    OPTIMIZERS,
    SCHEDULERS,
    build_optimizer,
    build_scheduler,
    param_groups,
)
from ._steps import (
    DomainAdaptationStep,
    StepInputs,
    SupervisedStep,
    validation_scores,
    weighted_cross_entropy,
)

__all__ = [
    "HOOKS",
    "OPTIMIZERS",
    "SCHEDULERS",
    "Callback",
    "Checkpoint",
    "DefaultAugment",
    "DomainAdaptationStep",
    "EarlyStopping",
    "EpochLogger",
    "FreezeSchedule",
    "ProgressBar",
    "StepInputs",
    "SupervisedStep",
    "Trainer",
    "TrainingState",
    "build_optimizer",
    "build_scheduler",
    "check_callbacks",
    "epoch_line",
    "freeze_all",
    "frozen_batchnorm_to_eval",
    "head_warmup",
    "param_groups",
    "resolve_augment",
    "set_trainable",
    "stages",
    "target_batches",
    "validation_scores",
    "weighted_cross_entropy",
]

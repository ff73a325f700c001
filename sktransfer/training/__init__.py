"""The training core both classifiers share (no scikit-learn inside).

What users pass, subclass or call:

* callbacks: :class:`Callback` (the base), :class:`EarlyStopping`,
  :class:`Checkpoint`, :class:`EpochLogger`, :class:`ProgressBar`,
  :class:`FreezeSchedule`, and the tracker loggers :class:`TensorBoardLogger`
  and :class:`MLflowLogger`; a callback sees a :class:`TrainingState`;
* training steps: :class:`TrainingStep` (the base), :class:`SupervisedStep`
  and :class:`DomainAdaptationStep`, built from a :class:`StepConfig`, run by
  the :class:`Trainer`;
* augmentations a user passes: :class:`PerSample` (a per-image transform, from
  :mod:`sktransfer.inputs`), :class:`WeakAugment` and :class:`StrongAugment`
  (the self-training views);
* :func:`stages`: what ``freeze=k`` counts.

The private modules hold the rest: ``_loop`` (the trainer), ``_steps``,
``_batches`` (target batches beside source batches), ``_callbacks``,
``_loggers``, ``_setup`` (parameter groups, optimizers, schedules),
``_freeze``, ``_augment`` and ``_mixing`` (MixUp, CutMix).
"""

from ..inputs import PerSample
from ._augment import StrongAugment, WeakAugment
from ._callbacks import (
    Callback,
    Checkpoint,
    EarlyStopping,
    EpochLogger,
    FreezeSchedule,
    ProgressBar,
)
from ._freeze import stages
from ._loggers import MLflowLogger, TensorBoardLogger
from ._loop import Trainer, TrainingState
from ._steps import DomainAdaptationStep, StepConfig, SupervisedStep, TrainingStep

__all__ = [
    "Callback",
    "Checkpoint",
    "DomainAdaptationStep",
    "EarlyStopping",
    "EpochLogger",
    "FreezeSchedule",
    "MLflowLogger",
    "PerSample",
    "ProgressBar",
    "StepConfig",
    "StrongAugment",
    "SupervisedStep",
    "TensorBoardLogger",
    "Trainer",
    "TrainingState",
    "TrainingStep",
    "WeakAugment",
    "stages",
]

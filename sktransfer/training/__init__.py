"""The training core both classifiers share (no scikit-learn inside)."""

from ._augment import DefaultAugment, resolve_augment
from ._core import EarlyStopping, Trainer
from ._freeze import freeze_all, frozen_batchnorm_to_eval, head_warmup, set_trainable, stages
from ._optim import (
    OPTIMIZERS,
    SCHEDULERS,
    build_optimizer,
    build_scheduler,
    param_groups,
)

__all__ = [
    "OPTIMIZERS",
    "SCHEDULERS",
    "DefaultAugment",
    "EarlyStopping",
    "Trainer",
    "build_optimizer",
    "build_scheduler",
    "freeze_all",
    "head_warmup",
    "frozen_batchnorm_to_eval",
    "param_groups",
    "resolve_augment",
    "set_trainable",
    "stages",
]

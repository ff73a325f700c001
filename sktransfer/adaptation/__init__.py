"""Domain-adaptation losses, separate from the estimator that trains with them.

Three layers, as in skada: pure tensor functions (:func:`coral_loss`,
:func:`mmd_loss`, :func:`mcc_loss`, :func:`entropy`, :func:`reverse_gradient`),
small modules that hold hyper-parameters and trainable parts (:class:`DANNLoss`
with its discriminator and gradient reversal), and the criterion of
:class:`~sktransfer.DomainAdaptClassifier`, which adds ``trade_off *
adaptation_loss`` to the supervised loss. :class:`AdaptationLoss` is the
contract every loss follows (and the base of a user's own method); a method
that needs its own training step defines it beside its loss, as
``_vada.VADAStep`` and ``_self_training.EpochSelfTrainingStep`` are.
"""

from ._functional import coral_loss, entropy, mcc_loss, mmd_loss, reverse_gradient
from ._losses import (
    AdaptationLoss,
    CDANLoss,
    CORALLoss,
    DANNLoss,
    DomainDiscriminator,
    FunctionLoss,
    MCCLoss,
    MMDLoss,
)
from ._methods import METHODS
from ._self_training import EpochSelfTrainingLoss, SelfTrainingLoss
from ._vada import DIRTTLoss, VADALoss

__all__ = [
    "METHODS",
    "AdaptationLoss",
    "CDANLoss",
    "CORALLoss",
    "DIRTTLoss",
    "DANNLoss",
    "DomainDiscriminator",
    "EpochSelfTrainingLoss",
    "FunctionLoss",
    "MCCLoss",
    "MMDLoss",
    "SelfTrainingLoss",
    "VADALoss",
    "coral_loss",
    "entropy",
    "mcc_loss",
    "mmd_loss",
    "reverse_gradient",
]

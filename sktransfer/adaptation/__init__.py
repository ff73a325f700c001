"""Domain-adaptation losses, separate from the estimator that trains with them.

Three layers, as in skada: pure tensor functions (``coral_loss``,
``mmd_loss``, ...), small modules that hold hyper-parameters and trainable parts
(``DANNLoss`` with its discriminator and gradient reversal), and the criterion
of :class:`~sktransfer.DomainAdaptClassifier`, which adds
``trade_off * adaptation_loss`` to the supervised loss.
"""

from ._functional import (
    coral_loss,
    dann_coefficient,
    entropy,
    mcc_loss,
    mmd_loss,
    reverse_gradient,
)
from ._losses import (
    AdaptationLoss,
    CDANLoss,
    CORALLoss,
    DANNLoss,
    DomainDiscriminator,
    MCCLoss,
    MMDLoss,
)
from ._vada import DIRTTLoss, VADALoss, VADAStep, conditional_entropy, vat_loss
from ._methods import METHODS, resolve_method
from ._self_training import (
    EpochSelfTrainingLoss,
    EpochSelfTrainingStep,
    SelfTrainingLoss,
    align_distribution,
    pseudo_labels,
    relative_threshold,
)

__all__ = [
    "METHODS",
    "AdaptationLoss",
    "CDANLoss",
    "CORALLoss",
    "DIRTTLoss",
    "DANNLoss",
    "DomainDiscriminator",
    "EpochSelfTrainingLoss",
    "EpochSelfTrainingStep",
    "MCCLoss",
    "MMDLoss",
    "SelfTrainingLoss",
    "VADALoss",
    "VADAStep",
    "align_distribution",
    "conditional_entropy",
    "coral_loss",
    "dann_coefficient",
    "entropy",
    "mcc_loss",
    "mmd_loss",
    "pseudo_labels",
    "relative_threshold",
    "resolve_method",
    "reverse_gradient",
    "vat_loss",
]

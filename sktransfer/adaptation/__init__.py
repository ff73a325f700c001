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
    METHODS,
    AdaptationLoss,
    CDANLoss,
    CORALLoss,
    DANNLoss,
    DomainDiscriminator,
    MCCLoss,
    MMDLoss,
    resolve_method,
)

__all__ = [
    "METHODS",
    "AdaptationLoss",
    "CDANLoss",
    "CORALLoss",
    "DANNLoss",
    "DomainDiscriminator",
    "MCCLoss",
    "MMDLoss",
    "coral_loss",
    "dann_coefficient",
    "entropy",
    "mcc_loss",
    "mmd_loss",
    "resolve_method",
    "reverse_gradient",
]

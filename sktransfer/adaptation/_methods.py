"""The ``method=`` names of :class:`~sktransfer.DomainAdaptClassifier` and the
losses behind them."""

from ._losses import AdaptationLoss, CDANLoss, CORALLoss, DANNLoss, FunctionLoss, MCCLoss, MMDLoss
from ._self_training import EpochSelfTrainingLoss, SelfTrainingLoss
from ._vada import DIRTTLoss, VADALoss

#: ``method=`` names of :class:`~sktransfer.DomainAdaptClassifier` and their losses
#: (``"source_only"`` trains without any).
METHODS = {
    "dann": DANNLoss,
    "cdan": CDANLoss,
    "coral": CORALLoss,
    "mmd": MMDLoss,
    "mcc": MCCLoss,
    "adamatch": SelfTrainingLoss,
    "self_training": EpochSelfTrainingLoss,
    "vada": VADALoss,
    "dirt-t": DIRTTLoss,
    "source_only": None,
}


def resolve_method(method):
    """A fresh :class:`AdaptationLoss` for ``method`` (a name or a user loss),
    or None for ``"source_only"``. A user's :class:`AdaptationLoss` is returned
    as given (the caller copies it); another callable is wrapped in a
    :class:`FunctionLoss`."""
    if isinstance(method, str):
        if method not in METHODS:
            raise ValueError(f"method={method!r} is not one of {sorted(METHODS)} or a "
                             "loss object (see sktransfer.adaptation).")
        cls = METHODS[method]
        return None if cls is None else cls()
    if not callable(method):
        raise ValueError(f"method={method!r} is neither a method name "
                         f"({sorted(METHODS)}) nor a callable loss "
                         "loss(features_source, logits_source, features_target, "
                         "logits_target) -> scalar.")
    if isinstance(method, AdaptationLoss):
        return method
    return FunctionLoss(method)

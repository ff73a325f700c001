"""What both domain-adaptation estimators do with their ``method``: resolve and
check it before any input is read, and build the step that trains with it."""

import copy
import functools

from .._utils.seeding import global_generator
from ..adaptation._methods import resolve_method
from ..training import DomainAdaptationStep


def resolve_adaptation(estimator, *, hint="", classes=True):
    """``estimator.method`` as an adaptation loss (None for ``"source_only"``),
    its own parameters checked and its input modality against the estimator's
    backbone; ``hint`` ends the modality error. Without ``classes`` (a
    regression), a loss that reads the outputs as class scores is refused."""
    adaptation = resolve_method(estimator.method)
    if adaptation is not None:
        if not classes and adaptation.needs_classes:
            raise ValueError(
                f"method={estimator.method!r} reads the network's outputs as class "
                f"scores ({type(adaptation).__name__}.needs_classes is True), and a "
                f"{type(estimator).__name__} outputs numbers: use a method that aligns "
                "the features, 'dann', 'coral' or 'mmd', or a loss on the features.")
        step = adaptation.training_step
        if not (isinstance(step, type) and issubclass(step, DomainAdaptationStep)):
            raise TypeError(
                f"{type(adaptation).__name__}.training_step = {step!r:.100} is not a "
                "subclass of sktransfer.training.DomainAdaptationStep: a method's step "
                "extends it (its constructor takes the step's config and adaptation=, "
                "target_rows=, trade_off=, adabn=; override batches or loss).")
        adaptation.check_parameters()
        if estimator._modality not in adaptation.modalities:
            raise ValueError(
                f"method={estimator.method!r} does not work on {estimator._modality} "
                f"input (it works on {', '.join(adaptation.modalities)}); model="
                f"{estimator.model!r} reads {estimator._modality}.{hint}")
    return adaptation


def adapts(method):
    """Whether ``method`` (a name or a loss) adapts to the target domain: every
    method but ``"source_only"``."""
    return not (isinstance(method, str) and method == "source_only")


def check_domains(estimator, adaptation, unlabeled, target, *, mark, supervised):
    """Refuse, before any network is built, a ``y`` with no labeled sample, and
    an adapting method with no target sample. ``mark`` names how ``y`` marks an
    unlabeled sample (``"-1"``, ``"NaN"``); ``supervised`` the estimator to use
    when every sample is labeled."""
    if unlabeled.all():
        raise ValueError(f"y has no labeled sample (every entry is {mark}): domain "
                         "adaptation needs labeled source samples.")
    if adaptation is not None and not target.any():
        marked = "y == -1" if mark == "-1" else f"{mark} in y"
        raise ValueError(
            f"method={estimator.method!r} adapts to target samples, but there is none "
            f"(no {marked} and no negative sample_domain): with every sample labeled "
            f"this is plain supervised learning; use {supervised}, or "
            "method='source_only'.")


def adaptation_step(estimator, adaptation, data, target_rows, *, n_outputs, adabn):
    """The ``make_step`` of a fit that adapts with ``adaptation`` to
    ``target_rows``: the loss built for the network's features and
    ``n_outputs`` outputs (seeded by the fit; a user's loss object is copied,
    never trained in place)."""
    if not isinstance(estimator.method, str):
        adaptation = copy.deepcopy(adaptation)
    with global_generator(data.seed):
        adaptation = adaptation.build(estimator.module_.backbone.num_features,
                                      n_outputs) or adaptation
    return functools.partial(
        adaptation.training_step, adaptation=adaptation, target_rows=target_rows,
        trade_off=estimator.trade_off, adabn=adabn)

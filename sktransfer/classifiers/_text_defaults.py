"""What a parameter left at ``"auto"`` stands for, per modality of the backbone.

A pretrained image backbone and a pretrained language model want different
fine-tuning: the image recipe slows the backbone down a lot beside its new head,
while a language model fine-tuned on a few labeled texts (one or a handful of
optimizer steps an epoch) barely moves at that rate and needs a larger share of
the head's rate. The rules are pure functions of what the estimator knows
before training; a value the user set is never passed through them.
"""

__all__ = ["auto_adapt_epochs", "auto_backbone_lr_ratio", "auto_finetune_epochs",
           "auto_head_init"]

# The share of the head's learning rate that a pretrained backbone trains at
# (figures behind the choice: benchmarks/RESULTS.md, "Few-shot text accuracy").
_PRETRAINED_RATIO = 0.1
#: A pretrained text backbone in a fit of fewer optimizer steps than this trains
#: at the larger share below.
FEW_STEPS = 20
_FEW_STEPS_TEXT_RATIO = 0.3
_MODALITIES = ("image", "text")

#: Epochs of a supervised fit (images, flat rows, a backbone trained from scratch).
FINETUNE_EPOCHS = 10
#: Optimizer steps that a supervised fit of a pretrained text backbone aims at,
#: and the fewest and most epochs it takes to get there (figures behind the
#: choice: benchmarks/RESULTS.md, "Few-shot text accuracy").
TEXT_FINETUNE_STEPS = 120
TEXT_FINETUNE_EPOCHS = (3, 30)

#: Epochs of a domain-adapting fit (images, flat rows, a backbone trained from
#: scratch): adaptation needs longer than supervised training.
ADAPT_EPOCHS = 30
#: Optimizer steps that a domain-adapting fit of a pretrained text backbone
#: aims at: about one epoch of 2,000 labeled texts at batch 32, which takes
#: minutes on two CPU cores where thirty epochs take hours.
TEXT_ADAPT_STEPS = 64


def auto_backbone_lr_ratio(modality, *, pretrained, steps=None, adapting=False):
    """The ``backbone_lr_ratio`` that ``"auto"`` stands for.

    A backbone that is not pretrained trains at the head's rate (nothing to
    preserve). A pretrained backbone trains at a tenth of it, the
    discriminative rates of transfer learning. A pretrained text backbone in a
    scheduled fit of fewer than :data:`FEW_STEPS` optimizer steps (a few
    labeled texts per class: one batch an epoch) trains at a larger share: at a
    tenth, the transformer barely moves in so few steps; with more steps the
    tenth moves it enough, and the larger share made fits unstable. A
    pretrained image backbone in an adapting fit (a domain-adaptation method
    other than ``"source_only"``) trains at the head's rate: the adaptation
    works through the backbone's features, which at a tenth of the rate stay
    close to where the labeled source domain puts them (a language model keeps
    its own rule: at the head's rate a transformer's fit diverges).

    Parameters
    ----------
    modality : {"image", "text"}
        What the backbone reads.
    pretrained : bool
        Whether the backbone starts from pretrained weights.
    steps : int or None, default=None
        Optimizer steps of the fit under its schedule; None when unknown or
        unscheduled (``partial_fit``).
    adapting : bool, default=False
        Whether the fit adapts to a target domain (a method other than
        ``"source_only"`` of a domain-adapting estimator).

    Returns
    -------
    float
    """
    if modality not in _MODALITIES:
        raise ValueError(f"modality={modality!r} is not one of {sorted(_MODALITIES)}.")
    if not pretrained:
        return 1.0
    if modality == "image" and adapting:
        return 1.0
    if modality == "text" and steps is not None and steps < FEW_STEPS:
        return _FEW_STEPS_TEXT_RATIO
    return _PRETRAINED_RATIO


def auto_head_init(modality, *, pretrained):
    """The ``head_init`` that ``"auto"`` stands for.

    A pretrained language model gets a linear probe first (its head fitted on
    its frozen features before fine-tuning): on few labeled texts, a random
    head's first gradients pull the model away from features that already
    separate the classes. Image backbones and backbones that are not
    pretrained keep a random head.

    Parameters
    ----------
    modality : {"image", "text"}
    pretrained : bool

    Returns
    -------
    {"linear_probe", "random"}
    """
    if modality not in _MODALITIES:
        raise ValueError(f"modality={modality!r} is not one of {sorted(_MODALITIES)}.")
    return "linear_probe" if modality == "text" and pretrained else "random"


def auto_adapt_epochs(modality, *, pretrained, n_batches):
    """The ``epochs`` that ``"auto"`` stands for in a domain-adapting fit.

    :data:`ADAPT_EPOCHS` for images, flat rows and backbones that are not
    pretrained. A pretrained text backbone instead gets a budget of about
    :data:`TEXT_ADAPT_STEPS` optimizer steps: as many whole epochs of
    ``n_batches`` steps as fit in it, at least one and at most
    :data:`ADAPT_EPOCHS`. A transformer's adapting step (the source batch, the
    target batch and its views through the whole network) costs hundreds of
    times an image step of the default backbone at 64 pixels, and a pretrained
    language model adapts within one epoch of a few thousand texts once its
    head starts from a linear probe (``head_init="auto"``).

    Parameters
    ----------
    modality : {"image", "text", "tabular"}
        What the estimator reads.
    pretrained : bool
        Whether the backbone starts from pretrained weights.
    n_batches : int
        Optimizer steps in one epoch of the fit.

    Returns
    -------
    int
    """
    _check_estimator_modality(modality)
    if modality == "text" and pretrained:
        return max(1, min(ADAPT_EPOCHS, TEXT_ADAPT_STEPS // max(int(n_batches), 1)))
    return ADAPT_EPOCHS


def auto_finetune_epochs(modality, *, pretrained, n_batches):
    """The ``epochs`` that ``"auto"`` stands for in a supervised fit.

    :data:`FINETUNE_EPOCHS` for images, flat rows and backbones that are not
    pretrained. A pretrained text backbone instead gets a budget of about
    :data:`TEXT_FINETUNE_STEPS` optimizer steps: as many epochs of ``n_batches``
    steps as fit in it, within :data:`TEXT_FINETUNE_EPOCHS`. A language model
    fine-tuned on a few labeled texts (one or a few batches an epoch) needs
    more passes than ten to move from its pretrained features, and on a few
    thousand texts it fits them within a few epochs and then overfits; a step
    budget serves both ends, as NLP recipes count steps rather than epochs.

    Parameters
    ----------
    modality : {"image", "text", "tabular"}
        What the estimator reads.
    pretrained : bool
        Whether the backbone starts from pretrained weights.
    n_batches : int
        Optimizer steps in one epoch of the fit.

    Returns
    -------
    int
    """
    _check_estimator_modality(modality)
    if modality == "text" and pretrained:
        fewest, most = TEXT_FINETUNE_EPOCHS
        return max(fewest, min(most, round(TEXT_FINETUNE_STEPS / max(int(n_batches), 1))))
    return FINETUNE_EPOCHS


def _check_estimator_modality(modality):
    if modality not in (*_MODALITIES, "tabular"):
        raise ValueError(f"modality={modality!r} is not one of "
                         f"{sorted((*_MODALITIES, 'tabular'))}.")

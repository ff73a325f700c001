"""What a parameter left at ``"auto"`` stands for, per modality of the backbone.

A pretrained image backbone and a pretrained language model want different
fine-tuning: the image recipe slows the backbone down a lot beside its new head,
while a language model fine-tuned on a few labeled texts (one or a handful of
optimizer steps an epoch) barely moves at that rate and needs a larger share of
the head's rate. The rules are pure functions of what the estimator knows
before training; a value the user set is never passed through them.
"""

__all__ = ["auto_backbone_lr_ratio", "auto_head_init"]

# The share of the head's learning rate that a pretrained backbone trains at
# (figures behind the choice: benchmarks/RESULTS.md, "Few-shot text accuracy").
_PRETRAINED_RATIO = 0.1
#: A pretrained text backbone in a fit of fewer optimizer steps than this trains
#: at the larger share below.
FEW_STEPS = 20
_FEW_STEPS_TEXT_RATIO = 0.3
_MODALITIES = ("image", "text")


def auto_backbone_lr_ratio(modality, *, pretrained, steps=None):
    """The ``backbone_lr_ratio`` that ``"auto"`` stands for.

    A backbone that is not pretrained trains at the head's rate (nothing to
    preserve). A pretrained backbone trains at a tenth of it, the
    discriminative rates of transfer learning. A pretrained text backbone in a
    scheduled fit of fewer than :data:`FEW_STEPS` optimizer steps (a few
    labeled texts per class: one batch an epoch) trains at a larger share: at a
    tenth, the transformer barely moves in so few steps; with more steps the
    tenth moves it enough, and the larger share made fits unstable.

    Parameters
    ----------
    modality : {"image", "text"}
        What the backbone reads.
    pretrained : bool
        Whether the backbone starts from pretrained weights.
    steps : int or None, default=None
        Optimizer steps of the fit under its schedule; None when unknown or
        unscheduled (``partial_fit``).

    Returns
    -------
    float
    """
    if modality not in _MODALITIES:
        raise ValueError(f"modality={modality!r} is not one of {sorted(_MODALITIES)}.")
    if not pretrained:
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

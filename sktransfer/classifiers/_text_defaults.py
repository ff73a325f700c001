"""What a parameter left at ``"auto"`` stands for, per modality of the backbone.

A pretrained image backbone and a pretrained language model want different
fine-tuning: the image recipe slows the backbone down a lot beside its new head,
while a language model fine-tuned on a few labeled texts (one or a handful of
optimizer steps an epoch) barely moves at that rate and needs a larger share of
the head's rate. The rules are pure functions of what the estimator knows
before training; a value the user set is never passed through them.
"""

__all__ = ["auto_backbone_lr_ratio"]

# The share of the head's learning rate that a pretrained backbone trains at,
# per modality (figures behind the choice: benchmarks/RESULTS.md, "Few-shot
# text accuracy").
_PRETRAINED_RATIO = {"image": 0.1, "text": 0.3}


def auto_backbone_lr_ratio(modality, *, pretrained):
    """The ``backbone_lr_ratio`` that ``"auto"`` stands for.

    A backbone that is not pretrained trains at the head's rate (nothing to
    preserve). A pretrained image backbone trains at a tenth of it, the
    discriminative rates of image transfer learning. A pretrained text backbone
    trains at a larger share: its new head still learns fastest, while the
    transformer moves enough within the few steps of a small labeled set.

    Parameters
    ----------
    modality : {"image", "text"}
        What the backbone reads.
    pretrained : bool
        Whether the backbone starts from pretrained weights.

    Returns
    -------
    float
    """
    if modality not in _PRETRAINED_RATIO:
        raise ValueError(f"modality={modality!r} is not one of {sorted(_PRETRAINED_RATIO)}.")
    return _PRETRAINED_RATIO[modality] if pretrained else 1.0

"""Which parameters train: freezing by stage, and frozen BatchNorm in eval mode."""

from numbers import Integral

from torch import nn


def stages(body):
    """The backbone's stages, first to last: its top-level children that hold
    parameters, with containers of stages (timm's ``blocks``, torchvision's
    ``features``) opened one level."""
    found = []
    for child in body.children():
        if not any(True for _ in child.parameters()):
            continue
        grand = [g for g in child.children() if any(True for _ in g.parameters())]
        if isinstance(child, nn.Sequential) and any(
            isinstance(g, (nn.Sequential, nn.ModuleList)) for g in grand
        ):
            found.extend(grand)
        else:
            found.append(child)
    return found or [body]


def set_trainable(backbone, freeze):
    """Apply a freeze policy to ``backbone``.

    ``"backbone"`` freezes all of it, ``"none"`` nothing, an int ``k`` all but its
    last ``k`` stages.
    """
    if freeze == "none":
        trainable = [backbone]
    elif freeze == "backbone":
        trainable = []
    elif isinstance(freeze, Integral) and not isinstance(freeze, bool) and freeze >= 0:
        all_stages = stages(backbone.body if hasattr(backbone, "body") else backbone)
        trainable = all_stages[len(all_stages) - int(freeze):] if freeze else []
    else:
        raise ValueError(f"freeze={freeze!r} must be 'backbone', 'none' or an int >= 0 "
                         "(number of last stages to train).")
    for parameter in backbone.parameters():
        parameter.requires_grad_(False)
    for module in trainable:
        for parameter in module.parameters():
            parameter.requires_grad_(True)


def head_warmup(backbone, freeze):
    """The head-only warm-up before ``freeze`` applies (``unfreeze_after``).

    The backbone's weights are frozen, but the BatchNorm layers of the parts that
    ``freeze`` will train later keep training (affine parameters, batch
    statistics), as fastai's ``fine_tune`` does. Freezing them too would make the
    head learn on features normalised by the pretrained running statistics and
    then see them re-normalised by batch statistics at unfreezing, a jump that
    undoes the warm-up. BatchNorm of parts that stay frozen stays in eval mode.
    """
    set_trainable(backbone, freeze)
    for layer in backbone.modules():
        is_norm = isinstance(layer, nn.modules.batchnorm._BatchNorm)
        for parameter in layer.parameters(recurse=False):
            if not is_norm:
                parameter.requires_grad_(False)


def freeze_all(module):
    for parameter in module.parameters():
        parameter.requires_grad_(False)


def frozen_batchnorm_to_eval(module):
    """Put BatchNorm layers whose parameters are all frozen in eval mode, so their
    running statistics (the pretrained ones) are neither used per batch nor updated."""
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            params = list(layer.parameters())
            if params and not any(p.requires_grad for p in params):
                layer.eval()

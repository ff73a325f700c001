"""Which parameters train: freezing by stage, and frozen BatchNorm in eval mode."""

from numbers import Integral

from torch import nn

from ..backbones._base import Backbone

#: BatchNorm layers, by torch's public classes (torch's common base
#: ``_BatchNorm`` is private). timm's ``BatchNormAct2d`` and friends subclass
#: these; a lazy BatchNorm becomes one at its first forward pass.
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm,
               nn.LazyBatchNorm1d, nn.LazyBatchNorm2d, nn.LazyBatchNorm3d)


#: Names under which timm (ConvNeXt, CSPNet, Swin, MLP-Mixer) and torchvision
#: (MaxViT) keep their stages.
_STAGE_CONTAINERS = ("stages", "layers", "blocks")


class _ParameterStage(nn.Module):
    """Parameters of several modules that train or freeze together: a vision
    transformer's embeddings (patch projection, class token, position
    embeddings), or its last block with the final norm.

    Parameters
    ----------
    named_parameters : list of (str, nn.Parameter)
        The network's own parameters (held by reference, never copied) and
        their names in it, for the repr.
    """

    def __init__(self, named_parameters):
        super().__init__()
        self.names = [name for name, _ in named_parameters]
        self.held = nn.ParameterList([parameter for _, parameter in named_parameters])

    def extra_repr(self):
        return ", ".join(self.names)


def _holds_parameters(module):
    return any(True for _ in module.parameters())


def _transformer_blocks(body):
    """The name of the sequence of transformer blocks in ``body`` (timm's
    ``blocks`` beside a ``patch_embed``, torchvision's ``encoder.layers`` beside
    a ``pos_embedding``), or None when ``body`` is not a vision transformer."""
    modules = dict(body.named_modules())
    for name, module in modules.items():
        parent_name, _, leaf = name.rpartition(".")
        parent = modules[parent_name]
        is_timm = leaf == "blocks" and hasattr(parent, "patch_embed")
        is_torchvision = leaf == "layers" and hasattr(parent, "pos_embedding")
        is_sequence = isinstance(module, (nn.Sequential, nn.ModuleList))
        if (is_timm or is_torchvision) and is_sequence and _holds_parameters(module):
            return name
    return None


def _transformer_stages(body, blocks_name):
    """One stage per block; what comes before the first block (the embeddings)
    is the first stage, what comes after the last (the final norm, an attention
    pool) joins the last block."""
    blocks = [b for b in body.get_submodule(blocks_name).children() if _holds_parameters(b)]
    in_block = {id(p): i for i, block in enumerate(blocks) for p in block.parameters()}
    before, last, after = [], [], []
    for name, parameter in body.named_parameters():
        position = in_block.get(id(parameter))
        if position == len(blocks) - 1:
            last.append((name, parameter))
        elif position is None:
            (after if last else before).append((name, parameter))
    first = [_ParameterStage(before)] if before else []
    final = _ParameterStage(last + after) if after else blocks[-1]
    return first + blocks[:-1] + [final]


def stages(body):
    """The backbone's stages, first to last, as modules.

    A vision transformer (timm's ``blocks``, torchvision's ``encoder.layers``)
    has one stage per transformer block: the embeddings before the first block
    are a stage of their own, the final norm joins the last block, so
    ``freeze=k`` trains the last ``k`` blocks. Other networks have their
    top-level children that hold parameters as stages, with containers of
    stages opened one level: a ``Sequential`` holding ``Sequential`` ones (timm's
    EfficientNet ``blocks``, torchvision's ``features``), and a ``Sequential``
    or ``ModuleList`` named ``stages``, ``layers`` or ``blocks`` (timm's
    ConvNeXt, CSPNet, Swin, MLP-Mixer; torchvision's MaxViT). The table in
    ``docs/finetune.md`` gives the count of each family.

    Parameters
    ----------
    body : nn.Module
        The backbone's network (``Backbone.body``).

    Returns
    -------
    stages : list of nn.Module
        First to last. A stage made of parts of several modules (a ViT's
        embeddings, its last block with the final norm) is a module that holds
        those parameters (its ``names`` list them).
    """
    blocks_name = _transformer_blocks(body)
    if blocks_name is not None:
        return _transformer_stages(body, blocks_name)
    found = []
    for name, child in body.named_children():
        if not _holds_parameters(child):
            continue
        grand = [g for g in child.children() if _holds_parameters(g)]
        holds_stages = isinstance(child, nn.Sequential) and any(
            isinstance(g, (nn.Sequential, nn.ModuleList)) for g in grand
        )
        if holds_stages or (name in _STAGE_CONTAINERS and isinstance(
                child, (nn.Sequential, nn.ModuleList))):
            found.extend(grand)
        else:
            found.append(child)
    return found or [body]


def backbone_stages(backbone):
    """The stages ``freeze=k`` counts: those a :class:`Backbone` declares (a text
    backbone: its embeddings and each transformer layer), else :func:`stages`
    of its body."""
    if isinstance(backbone, Backbone):
        declared = backbone.stages()
        return list(declared) if declared is not None else stages(backbone.body)
    return stages(backbone)


def set_trainable(backbone, freeze):
    """Apply a freeze policy to ``backbone``.

    ``"backbone"`` freezes all of it, None nothing (``"none"`` is the
    deprecated spelling), an int ``k`` all but its last ``k`` stages
    (:func:`stages`); ``k`` at least the number of stages trains them all.
    """
    if freeze is None or freeze == "none":
        trainable = [backbone]
    elif freeze == "backbone":
        trainable = []
    elif isinstance(freeze, Integral) and not isinstance(freeze, bool) and freeze >= 0:
        all_stages = backbone_stages(backbone)
        trainable = all_stages[max(len(all_stages) - int(freeze), 0):] if freeze else []
    else:
        raise ValueError(f"freeze={freeze!r} must be 'backbone', None or an int >= 0 "
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
        is_norm = isinstance(layer, BATCH_NORMS)
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
        if isinstance(layer, BATCH_NORMS):
            params = list(layer.parameters())
            if params and not any(p.requires_grad for p in params):
                layer.eval()

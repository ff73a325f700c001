"""Removing a classifier head, and taking an inner layer instead."""

from torch import nn

from ._base import Backbone, GlobalPool

_HEAD_ATTRIBUTES = ("fc", "classifier", "head", "heads")


def strip_classifier(model):
    """Replace the last layer of ``model``'s classifier by an identity.

    Returns the feature size the architecture states (the in-size of that layer),
    so the feature dimension is known without running the model.
    """
    for flag, aux in (("aux_logits", ("AuxLogits", "aux1", "aux2")),):
        if getattr(model, flag, False):
            setattr(model, flag, False)
            for name in aux:
                if hasattr(model, name):
                    setattr(model, name, None)
    for attribute in _HEAD_ATTRIBUTES:
        head = getattr(model, attribute, None)
        if isinstance(head, (nn.Linear, nn.Conv2d)):
            setattr(model, attribute, nn.Identity())
            return _in_size(head)
        if isinstance(head, nn.Sequential):
            last_name, last = None, None
            for child_name, child in head.named_children():
                if isinstance(child, (nn.Linear, nn.Conv2d)):
                    last_name, last = child_name, child
            if last is not None:
                setattr(head, last_name, nn.Identity())
                return _in_size(last)
    raise ValueError(
        f"could not find the classifier head of {type(model).__name__} (looked for "
        f"a Linear layer in {', '.join(_HEAD_ATTRIBUTES)}); pass the network "
        "without its head as an nn.Module instead."
    )


def _in_size(layer):
    return layer.in_features if isinstance(layer, nn.Linear) else layer.in_channels


def layer_backbone(model, layer, pooling, preprocess, name):
    """A backbone returning node ``layer`` of ``model``, pooled to a vector."""
    from torchvision.models.feature_extraction import (
        create_feature_extractor,
        get_graph_node_names,
    )

    _, eval_nodes = get_graph_node_names(model)
    # A module name (``"layer3"``) selects that module's output, as in torchvision.
    if layer not in eval_nodes and layer not in dict(model.named_modules()):
        close = [n for n in eval_nodes if layer.split(".")[0] in n][:10]
        raise ValueError(
            f"layer={layer!r} is not a node of {name}. Some nodes: "
            f"{close or eval_nodes[-10:]}; sktransfer.backbones.list_layers(model) "
            "lists them all."
        )
    body = create_feature_extractor(model.eval(), return_nodes=[layer])
    pool = GlobalPool(pooling) if pooling is not None else None
    return Backbone(body, preprocess=preprocess, pool=pool, name=f"{name}[{layer}]")


def list_layers(module):
    """Node names of ``module`` that ``layer=`` accepts (in eval mode)."""
    from torchvision.models.feature_extraction import get_graph_node_names

    return get_graph_node_names(module)[1]

"""Removing a classifier head, and taking an inner layer instead."""

import threading

import torch

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


def _is_timm(model):
    return type(model).__module__.split(".")[0] == "timm"


def _graph_nodes(model):
    """torchvision's eval-mode graph node names of ``model``, or None when torch.fx
    cannot trace it (most timm models, modules with data-dependent control flow)."""
    if _is_timm(model):
        return None
    from torchvision.models.feature_extraction import get_graph_node_names

    try:
        return get_graph_node_names(model)[1]
    except Exception as exc:  # torch.fx.proxy.TraceError, and what tracing raises
        if isinstance(exc, (KeyboardInterrupt, MemoryError)):
            raise
        return None


def _module_names(model):
    return [name for name, _ in model.named_modules() if name]


class _StopForward(BaseException):
    """Raised by the hook once the wanted output is taken: the rest of the network
    does not run. A BaseException, so that a model's own ``except Exception``
    around a submodule call cannot swallow it."""


class ModuleOutput(nn.Module):
    """The output of submodule ``layer`` of ``model`` (found by a forward hook).

    The hook is registered for one call and removed after it, so the module
    pickles and deep-copies like any other; it only acts in the thread that
    registered it, so a module shared by threads stays correct. The layers after
    ``layer`` are not run.
    """

    def __init__(self, model, layer):
        super().__init__()
        self.model = model
        self.layer = layer

    def forward(self, x):
        target = self.model.get_submodule(self.layer)
        thread = threading.get_ident()
        taken = []

        def hook(module, args, output):
            if threading.get_ident() == thread and not taken:
                taken.append(output)
                raise _StopForward

        handle = target.register_forward_hook(hook)
        try:
            self.model(x)
        except _StopForward:
            pass
        finally:
            handle.remove()
        if not taken:
            raise RuntimeError(
                f"module {self.layer!r} did not run in the forward pass of "
                f"{type(self.model).__name__}, so it has no output to return."
            )
        output = taken[0]
        if not isinstance(output, torch.Tensor):
            raise ValueError(
                f"module {self.layer!r} of {type(self.model).__name__} returns a "
                f"{type(output).__name__}, not a tensor: choose a layer whose output "
                "is a feature map (sktransfer.backbones.list_layers lists them).")
        return output

    def extra_repr(self):
        return f"layer={self.layer!r}"


def layer_backbone(model, layer, pooling, preprocess, name):
    """A backbone returning node ``layer`` of ``model``, pooled to a vector.

    A model that torch.fx traces (torchvision's) goes through torchvision's
    ``create_feature_extractor``: ``layer`` is a graph node name. Others (timm
    models, untraceable modules) return the output of the submodule named
    ``layer`` (a ``named_modules()`` name), taken with a forward hook.
    """
    model.eval()
    nodes = _graph_nodes(model)
    # A module name (``"layer3"``) selects that module's output, in both routes.
    is_module = bool(layer) and layer in dict(model.named_modules())
    if nodes is not None and (layer in nodes or is_module):
        from torchvision.models.feature_extraction import create_feature_extractor

        body = create_feature_extractor(model, return_nodes=[layer])
    elif nodes is None and is_module:
        body = ModuleOutput(model, layer)
    else:
        names = nodes if nodes is not None else _module_names(model)
        close = [n for n in names if layer.split(".")[0] in n][:10]
        raise ValueError(
            f"layer={layer!r} is not a node of {name}. Some nodes: "
            f"{close or names[-10:]}; sktransfer.backbones.list_layers(model) "
            "lists them all."
        )
    # a vision transformer's blocks give (N, tokens, width): timm names the
    # width embed_dim, torchvision hidden_dim
    width = getattr(model, "embed_dim", None) or getattr(model, "hidden_dim", None)
    token_width = width if isinstance(width, int) else None
    pool = GlobalPool(pooling, token_width) if pooling is not None else None
    return Backbone(body, preprocess=preprocess, pool=pool, name=f"{name}[{layer}]")


def module_layers(module):
    """Names of ``module``'s nodes that ``layer=`` accepts (in eval mode).

    torchvision's graph node names for a model that torch.fx traces (torchvision
    models, most plain modules); the submodule names (``named_modules()``, in
    order) for timm models and for modules that cannot be traced.
    """
    nodes = _graph_nodes(module)
    return nodes if nodes is not None else _module_names(module)

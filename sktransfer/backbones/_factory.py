"""``load_backbone``: from what a user passes as ``model=`` and ``weights=`` to a
:class:`Backbone`."""

import enum
import functools
import os
from numbers import Integral

import torch
from torch import nn

from ..inputs import PreprocessConfig
from ._base import Backbone, GlobalPool
from ._checkpoint import CheckpointPath, load_state_into, read_checkpoint
from ._input_size import (
    check_image_size,
    first_conv_channels,
    is_resizable,
    resize_for_input,
)
from ._layers import ModuleOutput, layer_backbone
from ._registry import list_registered, registered_builder
from ._timm import build_timm, preprocess_from_timm
from ._torchvision import build_torchvision, torchvision_names

_CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".tar")


def weights_is_path(weights):
    """Whether ``weights`` names a checkpoint file rather than a weights name."""
    if isinstance(weights, os.PathLike):
        return True
    if not isinstance(weights, str) or weights == "DEFAULT":
        return False
    return (
        os.sep in weights
        or (os.altsep is not None and os.altsep in weights)
        or weights.endswith(_CHECKPOINT_SUFFIXES)
        or os.path.exists(weights)
    )


def is_rebuildable(model, weights, random_state):
    """Whether (model, weights, random_state) alone rebuild the same backbone, so
    that its tensors need not be pickled: named weights of a named model, or a
    seeded random initialisation."""
    if not isinstance(model, str) or weights_is_path(weights):
        return False
    return weights is not None or random_state is not None


def _built_for(backbone, image_size):
    """``backbone``, built elsewhere (a registered builder's, a user's
    :class:`Backbone`), made to take images of ``image_size``: its network
    resized (a vision transformer's position embeddings resampled; that of a
    ``layer=`` taken with a forward hook too) and its preprocessing's geometry
    set."""
    body = backbone.body
    network = body.model if isinstance(body, ModuleOutput) else body
    resize_for_input(network, image_size, backbone.name)
    backbone.preprocess = backbone.preprocess.with_image_size(image_size)
    if image_size is not None and is_resizable(network):
        # A transformer's token count changes with the size, and the size of
        # a layer's features with it.
        backbone.num_features = backbone._dry_run()
    return backbone


def _user_backbone(module, weights, layer, pooling, image_size):
    is_path = isinstance(weights, CheckpointPath)
    if weights is not None and weights != "DEFAULT" and not is_path:
        raise ValueError(
            f"weights={weights!r} is not a file path: a user module keeps its own "
            "weights (weights='DEFAULT' or None) or loads a checkpoint file; build "
            "the module with the pretrained weights instead."
        )
    if isinstance(module, Backbone) and layer is None:
        backbone = _built_for(module, image_size)
    else:
        if is_path:
            load_state_into(module, read_checkpoint(weights), source=str(weights))
        in_chans = first_conv_channels(module)
        if getattr(module, "pretrained_cfg", None):
            preprocess = preprocess_from_timm(module, in_chans=in_chans)
        else:
            preprocess = PreprocessConfig(in_chans=in_chans)
        preprocess = preprocess.with_image_size(image_size)
        resize_for_input(module, image_size, type(module).__name__)
        if layer is not None:
            return layer_backbone(module, layer, pooling, preprocess, type(module).__name__)
        declared = getattr(module, "num_features", None)
        backbone = Backbone(
            module,
            num_features=declared if isinstance(declared, Integral) else None,
            preprocess=preprocess,
            name=type(module).__name__,
        )
    return backbone


def _builder_for(model, image_size):
    """The builder (contract: :mod:`._registry`) that ``model=<name>`` selects.

    The timm and torchvision builders build for ``image_size`` (a vision
    transformer resamples its position embeddings); a registered builder's
    network is resized once built, as a user's :class:`Backbone` is.
    """
    builder = registered_builder(model)
    if builder is not None:
        def registered(weights, layer, pooling):
            return _built_for(builder(weights, layer, pooling), image_size)

        return registered if image_size is not None else builder
    if model.startswith("timm:"):
        return functools.partial(build_timm, model[5:], image_size=image_size)
    if model in torchvision_names():
        return functools.partial(build_torchvision, model, image_size=image_size)
    return None


def _check_weights_type(weights):
    if weights is None or isinstance(weights, (str, os.PathLike, enum.Enum)):
        return
    raise TypeError(
        f"weights must be 'DEFAULT', a weights name or enum, a file path or None; "
        f"got {type(weights).__name__}."
    )


def load_backbone(model, weights="DEFAULT", *, layer=None, pooling="avg",
                  image_size=None, random_state=None):
    """Build a :class:`Backbone` from a name or a module.

    Parameters
    ----------
    model : str or nn.Module
        A name registered with :func:`register_backbone` (``"efficientnet_lite0"``,
        ``"simple_cnn"``), a torchvision classification model name
        (``"resnet50"``, ``"convnext_tiny"``, ``"vit_b_16"``), ``"timm:<name>"``
        (also ``"timm:<name>.<tag>"``, ``"timm:hf-hub:<repo>"`` and
        ``"timm:local-dir:<folder>"``, a folder holding ``config.json`` and
        ``model.safetensors`` as timm's ``save_for_hf`` writes it; all go through
        ``timm.create_model`` and its pretrained config), or a module whose
        flattened output is the feature vector.
    weights : "DEFAULT", str, weights enum, path or None, default="DEFAULT"
        ``"DEFAULT"`` or a weights name (``"IMAGENET1K_V2"``) or enum member load
        the named weights (torchvision: through its weights API and cache); a path
        loads a checkpoint with ``torch.load(weights_only=True)``, remapping key
        names by verified order and shape when they differ; ``None`` initialises
        randomly. For a user module, ``"DEFAULT"`` and ``None`` keep its weights.
    layer : str or None, default=None
        Return this graph node instead of the penultimate features.
    pooling : {"avg", "max", "avgmax"} or None, default="avg"
        Global pooling of a ``layer`` feature map; ``None`` flattens it.
    image_size : int, (height, width) or None, default=None
        The input size the backbone is built for, and the geometry of its
        ``preprocess`` (see
        :meth:`~sktransfer.inputs.PreprocessConfig.with_image_size`). A CNN is
        unchanged by it; a vision transformer (timm's, torchvision's
        ``VisionTransformer``, a user module of either kind) has its position
        embeddings resampled to it once its weights are loaded, so each side
        must be a multiple of its patch size (a ``ValueError`` says which). A
        registered builder's network, and a :class:`Backbone` passed as
        ``model``, are resized once built; a vision transformer traced by
        torch.fx (a ``layer=`` graph) cannot be, and is refused for a size it
        does not take.
    random_state : int or None
        Seed of the random initialisation (``weights=None``).

    Returns
    -------
    backbone : Backbone
    """
    _check_weights_type(weights)
    check_image_size(image_size)
    if pooling is not None:
        GlobalPool(pooling)  # validates the name
    if layer is not None and not isinstance(layer, str):
        raise TypeError(f"layer must be a node name (str) or None; got {layer!r}.")
    if weights_is_path(weights):  # the one place a weights string is inspected
        weights = CheckpointPath(os.fsdecode(weights))
    if isinstance(model, nn.Module):
        return _user_backbone(model, weights, layer, pooling, image_size)
    if not isinstance(model, str):
        raise TypeError(
            f"model must be a backbone name or an nn.Module; got {type(model).__name__}."
        )
    # Only a seeded build runs on a forked RNG: an unseeded one draws from (and
    # advances) torch's global RNG, so that two unseeded builds differ.
    with torch.random.fork_rng(devices=[], enabled=random_state is not None):
        if random_state is not None:
            torch.manual_seed(int(random_state))
        builder = _builder_for(model, image_size)
        if builder is not None:
            return builder(weights, layer, pooling)
    raise ValueError(
        f"unknown model {model!r}: not a registered backbone "
        f"({', '.join(list_backbones(torchvision=False))}), not a torchvision "
        "classification model (torchvision.models.list_models()), and not "
        "'timm:<name>'."
    )


def list_backbones(*, torchvision=True):
    """Names ``model=`` accepts: registered ones, then torchvision's."""
    names = list_registered()
    if torchvision:
        names += [n for n in torchvision_names() if n not in names]
    return names

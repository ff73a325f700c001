"""Preprocessing that travels with a backbone's weights.

A :class:`PreprocessConfig` holds what the weights were trained with (resize,
centre crop, mean and std, interpolation), as torchvision's ``Weights.transforms()``
and timm's pretrained config describe it. The same config drives two places:

* :func:`apply_geometry` (resize and crop) runs per image in DataLoader workers for
  images of mixed sizes (files, PIL images), or on the whole batch, on the device,
  for an in-memory array; both resize float32 images in [0, 1] (never uint8), so
  the same pixels give the same model input whichever way they came;
* :func:`to_model_input` (scale to [0, 1], match channels, normalise) runs on the
  device, batch by batch, right before the forward pass.
"""

import math
from dataclasses import dataclass, replace
from numbers import Integral

import torch
from torchvision.transforms.v2 import functional as TF

INTERPOLATIONS = {
    "nearest": TF.InterpolationMode.NEAREST,
    "bilinear": TF.InterpolationMode.BILINEAR,
    "bicubic": TF.InterpolationMode.BICUBIC,
}


def _pair(size):
    if size is None:
        return None
    if isinstance(size, Integral):
        return (int(size), int(size))
    return tuple(int(s) for s in size)


@dataclass(frozen=True)
class PreprocessConfig:
    """How images are prepared for a backbone.

    Parameters
    ----------
    crop_size : tuple of int (height, width) or None
        Size of the centre crop fed to the model; ``None`` keeps the size the
        resize step produced (or the native size when there is no resize).
    resize_size : int, tuple of int or None
        An int resizes the shorter side to that length, keeping the aspect ratio
        (torchvision's and timm's convention); a tuple resizes to exactly
        ``(height, width)``; ``None`` does not resize.
    mean, std : tuple of float
        Per-channel normalisation applied to images scaled to [0, 1].
    interpolation : {"bilinear", "bicubic", "nearest"}
        Interpolation of the resize step.
    in_chans : int
        Number of channels the model takes (grey images are repeated to 3).
    """

    crop_size: tuple | None = None
    resize_size: object = None
    mean: tuple = (0.0, 0.0, 0.0)
    std: tuple = (1.0, 1.0, 1.0)
    interpolation: str = "bilinear"
    in_chans: int = 3

    def __post_init__(self):
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"interpolation={self.interpolation!r} is not one of "
                f"{sorted(INTERPOLATIONS)}."
            )
        object.__setattr__(self, "crop_size", _pair(self.crop_size))
        if self.resize_size is not None and not isinstance(self.resize_size, Integral):
            object.__setattr__(self, "resize_size", _pair(self.resize_size))
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))
        for name in ("crop_size", "resize_size"):
            size = getattr(self, name)
            if size is not None and min(_pair(size)) < 1:
                raise ValueError(f"{name}={size!r} is not a size of at least one "
                                 "pixel a side.")
        if not all(math.isfinite(m) for m in self.mean):
            raise ValueError(f"mean={self.mean!r} holds a value that is not finite.")
        if not all(math.isfinite(s) and s > 0 for s in self.std):
            raise ValueError(f"std={self.std!r} must be finite and above 0 (images "
                             "are divided by it).")

    def with_image_size(self, image_size):
        """This config with its geometry replaced by ``image_size``.

        An int resizes the shorter side to ``image_size`` and crops the centre
        square, so the whole image is seen (no crop margin); a ``(height, width)``
        tuple resizes to exactly that size. ``None`` returns the config unchanged.
        """
        if image_size is None:
            return self
        if isinstance(image_size, Integral):
            return replace(self, resize_size=int(image_size), crop_size=image_size)
        size = _pair(image_size)
        return replace(self, resize_size=size, crop_size=None)

    @property
    def output_size(self):
        """(height, width) of the model input, or None when it follows the image."""
        if self.crop_size is not None:
            return self.crop_size
        if isinstance(self.resize_size, tuple):
            return self.resize_size
        return None

    @property
    def has_geometry(self):
        return self.resize_size is not None or self.crop_size is not None


def resize_target(height, width, config):
    """(height, width) the resize step of ``config`` gives an image of that size
    (the size itself when ``config`` does not resize)."""
    if config.resize_size is None:
        return (height, width)
    if isinstance(config.resize_size, tuple):
        return tuple(config.resize_size)
    short = config.resize_size
    if height <= width:
        return (short, max(1, int(short * width / height)))
    return (max(1, int(short * height / width)), short)


def needs_resize(height, width, config):
    """Whether the resize step of ``config`` changes an image of that size.

    Cropping is exact in any dtype; resizing is not, so an image that is resized
    must be resized as float32 in [0, 1] for it to give the same values whether
    it came as an array, a PIL image or a file.
    """
    return resize_target(height, width, config) != (height, width)


def apply_geometry(images, config):
    """Resize and centre-crop ``images`` ((C, H, W) or (N, C, H, W)) as ``config`` says.

    Every input kind is resized the same way: as float32 in [0, 1] (uint8 images
    passed here are resized in uint8, with torchvision's uint8 kernels, which
    round; the estimators never do that, see :func:`needs_resize`).
    """
    if config.resize_size is not None:
        height, width = images.shape[-2:]
        target = resize_target(height, width, config)
        if (height, width) != tuple(target):
            images = TF.resize(
                images,
                list(target),
                interpolation=INTERPOLATIONS[config.interpolation],
                antialias=True,
            )
    if config.crop_size is not None and tuple(images.shape[-2:]) != config.crop_size:
        images = TF.center_crop(images, list(config.crop_size))
    return images


def match_channels(images, in_chans):
    """Repeat grey to 3 channels, drop alpha, or turn RGB to grey for a 1-channel model."""
    channels = images.shape[-3]
    if channels == in_chans:
        return images
    if in_chans == 3 and channels == 1:
        return images.expand(*images.shape[:-3], 3, *images.shape[-2:])
    if in_chans == 3 and channels == 4:
        return images[..., :3, :, :]
    if in_chans == 1 and channels in (3, 4):
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=images.dtype, device=images.device)
        return (images[..., :3, :, :] * weights.view(3, 1, 1)).sum(-3, keepdim=True)
    raise ValueError(
        f"images have {channels} channels; the model takes {in_chans}."
    )


def _per_channel(values, n_channels):
    if len(values) == n_channels:
        return torch.tensor(values, dtype=torch.float32)
    if len(values) == 1:
        return torch.tensor(values * n_channels, dtype=torch.float32)
    if n_channels == 1:
        return torch.tensor([sum(values) / len(values)], dtype=torch.float32)
    raise ValueError(f"{len(values)} normalisation values for {n_channels} channels.")


def _memory_format(images):
    """The layout of a 4-d batch, which an augmentation must hand back: resampling
    (``grid_sample``) returns NCHW, and on CPU a channels-last batch (what an
    NHWC array becomes) runs a convolutional network up to twice as fast; a
    training batch made of a channels-last and an NCHW half loses it."""
    if images.dim() == 4 and not images.is_contiguous() and images.is_contiguous(
            memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


class BatchPreprocessor:
    """Turns a raw batch (uint8 0-255 or float 0-1) into the model's input, on its device.

    ``geometry_done`` says that the images were already resized and cropped (per
    image, in the data loader workers); ``augment`` (training only) maps a float
    batch in [0, 1] to an augmented one, before normalisation.
    """

    def __init__(self, config, device, *, channels_last=False):
        self.config = config
        self.device = device
        self.channels_last = channels_last
        shape = (1, config.in_chans, 1, 1)
        self._mean = _per_channel(config.mean, config.in_chans).reshape(shape).to(device)
        self._std = _per_channel(config.std, config.in_chans).reshape(shape).to(device)

    def __call__(self, batch, *, geometry_done=False, augment=None):
        batch = batch.to(self.device, non_blocking=True)
        if batch.dtype == torch.uint8:
            batch = batch.float().div_(255.0)
        elif batch.dtype != torch.float32:
            batch = batch.float()
        batch = match_channels(batch, self.config.in_chans)
        if not geometry_done:
            batch = apply_geometry(batch, self.config)
        if augment is not None:  # on [0, 1] images, before normalisation
            batch = augment(batch).contiguous(memory_format=_memory_format(batch))
        batch = (batch - self._mean) / self._std
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch


def check_restored_channels(preprocess, built):
    """Raise ValueError when ``preprocess`` (a file's fitted ``preprocess_``)
    feeds another number of channels than the network ``built`` from the file's
    parameters reads (its ``preprocess``); the normalisation and the geometry
    may differ: they come with the weights a fit chose and with ``image_size``."""
    if type(preprocess) is PreprocessConfig and preprocess.in_chans != built.in_chans:
        raise ValueError(f"preprocess_.in_chans={preprocess.in_chans!r} is not the "
                         f"{built.in_chans} channels that the network its parameters "
                         "build reads.")

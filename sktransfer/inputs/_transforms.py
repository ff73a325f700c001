"""Per-image training transforms, run where the images are decoded.

A batched ``augment`` (a callable on a float batch on the device) draws its
random parameters however it likes, often once per batch; a transform wrapped
in :class:`PerSample` is called on each image on its own, before the images are
batched, so each image draws its own parameters (torchvision's transforms, and
the policies that need uint8 pixels, work as they do in a torchvision training
pipeline).
"""

import torch
from torchvision.transforms import v2

#: Augmentation policies by name, each applied per image.
POLICIES = {
    "randaugment": v2.RandAugment,
    "trivialaugment": v2.TrivialAugmentWide,
}


class PerSample:
    """Apply ``transform`` to each training image on its own, before batching.

    The transform runs where the image is decoded (in the DataLoader workers
    when ``num_workers > 0``), after the estimator's resize and centre crop, so
    it sees the image at the model's input size: a ``(C, H, W)`` tensor with the
    model's channels, uint8 (0-255) when the pixels were 8-bit and needed no
    resampling, float32 in [0, 1] otherwise (float or 16-bit images, images
    resized to the model's input). torchvision's ``transforms.v2`` take both.
    It returns a ``(C, H, W)`` tensor, uint8 or float in [0, 1]; keep the
    model's input size (and one size for all images, which are then batched).

    Given a batch ``(N, C, H, W)`` (a target batch of
    :class:`~sktransfer.DomainAdaptClassifier`, already on the device), it
    transforms each image in turn.

    Parameters
    ----------
    transform : callable
        One image in, one image out; e.g. a ``torchvision.transforms.v2``
        transform, which the estimators wrap in ``PerSample`` by themselves.

    Examples
    --------
    >>> import torch
    >>> from torchvision.transforms import v2
    >>> from sktransfer.training import PerSample
    >>> augment = PerSample(v2.RandomHorizontalFlip())
    >>> augment(torch.zeros(3, 8, 8, dtype=torch.uint8)).shape
    torch.Size([3, 8, 8])
    """

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, images):
        if images.ndim == 3:
            return self._one(images)
        return torch.stack([self._one(image) for image in images])

    def _one(self, image):
        out = self.transform(image)
        if not (isinstance(out, torch.Tensor) and out.ndim == 3
                and (out.dtype == torch.uint8 or out.is_floating_point())):
            what = (f"a tensor of shape {tuple(out.shape)} and dtype {out.dtype}"
                    if isinstance(out, torch.Tensor) else f"a {type(out).__name__}")
            raise TypeError(
                f"the per-sample transform {self.transform!r} returned {what}; it must "
                "return the image as a (C, H, W) tensor, uint8 (0-255) or float in "
                "[0, 1]. (A transform that takes or returns PIL images does not fit: "
                "use torchvision.transforms.v2, which works on tensors.)"
            )
        if type(out) is not torch.Tensor:  # a tv_tensors.Image: a plain tensor
            out = out.as_subclass(torch.Tensor)
        if out.is_floating_point() and out.dtype != torch.float32:
            out = out.float()
        return out

    def __repr__(self):
        return f"PerSample({self.transform!r})"


def as_per_sample(augment):
    """``augment`` as a :class:`PerSample` when it is one, a policy name of
    :data:`POLICIES` or a ``torchvision.transforms.v2`` transform; else None."""
    if isinstance(augment, PerSample):
        return augment
    if isinstance(augment, str):
        policy = POLICIES.get(augment)
        return None if policy is None else PerSample(policy())
    if isinstance(augment, v2.Transform):
        return PerSample(augment)
    return None

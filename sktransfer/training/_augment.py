"""Light, batched data augmentation that runs on the device."""

import torch
import torch.nn.functional as F


class DefaultAugment:
    """Random flips, zoom-and-shift crops and brightness/contrast jitter.

    Applied to a float batch (N, C, H, W) in [0, 1] on its device; every image
    draws its own parameters, all in a few batched tensor operations. The crop is
    an affine resample, so it suits any input size.

    Parameters
    ----------
    flip : bool, default=True
    max_zoom : float, default=1.15
        Images are zoomed in by a factor drawn in [1, max_zoom] (a random crop of
        1/zoom of the side, resized back).
    jitter : float, default=0.1
        Brightness and contrast factors drawn in [1 - jitter, 1 + jitter].
    """

    def __init__(self, *, flip=True, max_zoom=1.15, jitter=0.1):
        self.flip = flip
        self.max_zoom = max_zoom
        self.jitter = jitter

    def __call__(self, images):
        n = images.shape[0]
        device = images.device
        zoom = 1.0 + torch.rand(n, device=device) * (self.max_zoom - 1.0)
        scale = 1.0 / zoom
        shift = (torch.rand(n, 2, device=device) * 2 - 1) * (1 - scale)[:, None]
        sign = torch.ones(n, device=device)
        if self.flip:
            sign = torch.where(torch.rand(n, device=device) < 0.5, -sign, sign)
        theta = torch.zeros(n, 2, 3, device=device)
        theta[:, 0, 0] = scale * sign
        theta[:, 1, 1] = scale
        theta[:, :, 2] = shift
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        images = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection",
                               align_corners=False)
        if self.jitter:
            bright = 1 + (torch.rand(n, 1, 1, 1, device=device) * 2 - 1) * self.jitter
            contrast = 1 + (torch.rand(n, 1, 1, 1, device=device) * 2 - 1) * self.jitter
            mean = images.mean(dim=(1, 2, 3), keepdim=True)
            images = ((images - mean) * contrast + mean) * bright
            images = images.clamp(0.0, 1.0)
        return images

    def __repr__(self):
        return (f"DefaultAugment(flip={self.flip}, max_zoom={self.max_zoom}, "
                f"jitter={self.jitter})")


def resolve_augment(augment):
    """``"default"`` -> :class:`DefaultAugment`, ``None`` -> None, a callable as is."""
    if augment is None:
        return None
    if augment == "default":
        return DefaultAugment()
    if callable(augment):
        return augment
    raise ValueError(
        f"augment={augment!r} must be 'default', None or a callable mapping a float "
        "batch (N, C, H, W) in [0, 1] to an augmented batch."
    )



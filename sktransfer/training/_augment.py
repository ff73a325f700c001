"""Light, batched data augmentation that runs on the device."""

import torch
import torch.nn.functional as F

from ..inputs import as_per_sample
from ..inputs._text import TextBatch


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


def _affine(images, *, max_rotation, max_shear, scale_range, max_shift):
    """Per-image random affine resample (degrees, shift as a share of the side)."""
    n, device = images.shape[0], images.device

    def uniform(low, high, *shape):
        return low + (high - low) * torch.rand(n, *shape, device=device)

    angle = uniform(-max_rotation, max_rotation) * (torch.pi / 180)
    shear = uniform(-max_shear, max_shear) * (torch.pi / 180)
    scale = uniform(*scale_range)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.zeros(n, 2, 3, device=device)
    theta[:, 0, 0] = cos
    theta[:, 0, 1] = -sin + torch.tan(shear) * cos
    theta[:, 1, 0] = sin
    theta[:, 1, 1] = cos + torch.tan(shear) * sin
    theta[:, :, 2] = uniform(-2 * max_shift, 2 * max_shift, 2)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border",
                         align_corners=False)


class WeakAugment:
    """The weak view of self-training (FixMatch's): a random shift of up to
    ``max_shift`` of the side, and a horizontal flip only when ``flip=True``
    (off by default: digits and text are not mirror-symmetric).

    Parameters
    ----------
    max_shift : float, default=0.125
    flip : bool, default=False
    """

    def __init__(self, *, max_shift=0.125, flip=False):
        self.max_shift = max_shift
        self.flip = flip

    def __call__(self, images):
        if isinstance(images, TextBatch):
            return images  # text: the weak view is the text itself (dropout adds noise)
        images = _affine(images, max_rotation=0.0, max_shear=0.0, scale_range=(1.0, 1.0),
                         max_shift=self.max_shift)
        if self.flip:
            flip = torch.rand(images.shape[0], device=images.device) < 0.5
            images = torch.where(flip[:, None, None, None], images.flip(3), images)
        return images

    def __repr__(self):
        return f"WeakAugment(max_shift={self.max_shift}, flip={self.flip})"


class StrongAugment:
    """The strong view of self-training: geometry and colour changes that keep
    the class of a digit or a photo, every image drawing its own.

    In order: a random affine (rotation, shear, zoom, shift); brightness,
    contrast and saturation jitter; a random permutation of the colour channels
    and, with probability ``invert``, the negative image (colour and polarity
    are what differ between domains such as MNIST and MNIST-M); and one cutout
    square of up to ``cutout`` of the side (RandAugment / FixMatch's cutout).
    No flips unless ``flip=True``.

    On text (a :class:`~sktransfer.inputs.TextBatch`) the strong view masks a
    share ``text_mask`` of the tokens and drops one span of up to ``text_span``
    of each text (:func:`text_strong_view`); the weak view of text is the text
    itself, dropout giving its noise.

    Parameters
    ----------
    max_rotation : float, default=20.0
        Degrees.
    max_shear : float, default=15.0
        Degrees.
    scale_range : (float, float), default=(0.85, 1.15)
    max_shift : float, default=0.125
    jitter : float, default=0.5
        Brightness, contrast and saturation factors in [1 - jitter, 1 + jitter].
    invert : float, default=0.5
        Probability of the negative image.
    cutout : float, default=0.5
        Largest side of the erased square, as a share of the image side.
    flip : bool, default=False
    text_mask : float, default=0.15
        Share of each text's tokens replaced by the mask token (text only).
    text_span : float, default=0.2
        Largest span dropped from each text, as a share of its tokens (text only).
    """

    def __init__(self, *, max_rotation=20.0, max_shear=15.0, scale_range=(0.85, 1.15),
                 max_shift=0.125, jitter=0.5, invert=0.5, cutout=0.5, flip=False,
                 text_mask=0.15, text_span=0.2):
        self.max_rotation = max_rotation
        self.max_shear = max_shear
        self.scale_range = scale_range
        self.max_shift = max_shift
        self.jitter = jitter
        self.invert = invert
        self.cutout = cutout
        self.flip = flip
        self.text_mask = text_mask
        self.text_span = text_span

    def __call__(self, images):
        if isinstance(images, TextBatch):
            return text_strong_view(images, mask=self.text_mask, span=self.text_span)
        n, channels, height, width = images.shape
        device = images.device
        images = _affine(images, max_rotation=self.max_rotation, max_shear=self.max_shear,
                         scale_range=self.scale_range, max_shift=self.max_shift)
        if self.flip:
            flip = torch.rand(n, device=device) < 0.5
            images = torch.where(flip[:, None, None, None], images.flip(3), images)
        if self.jitter:
            def factor():
                return 1 + (torch.rand(n, 1, 1, 1, device=device) * 2 - 1) * self.jitter

            grey = images.mean(dim=1, keepdim=True)
            images = (images - grey) * factor() + grey  # saturation
            mean = images.mean(dim=(1, 2, 3), keepdim=True)
            images = ((images - mean) * factor() + mean) * factor()  # contrast, brightness
            images = images.clamp(0.0, 1.0)
        if channels > 1:
            order = torch.argsort(torch.rand(n, channels, device=device), dim=1)
            images = torch.gather(images, 1, order[:, :, None, None].expand_as(images))
        if self.invert:
            negative = torch.rand(n, device=device) < self.invert
            images = torch.where(negative[:, None, None, None], 1.0 - images, images)
        if self.cutout:
            side = (torch.rand(n, device=device) * self.cutout)[:, None]
            centre_y, centre_x = torch.rand(n, 1, device=device), torch.rand(n, 1, device=device)
            rows = (torch.arange(height, device=device) + 0.5) / height
            cols = (torch.arange(width, device=device) + 0.5) / width
            inside_y = (rows[None] - centre_y).abs() < side / 2
            inside_x = (cols[None] - centre_x).abs() < side / 2
            erased = inside_y[:, :, None] & inside_x[:, None, :]
            images = torch.where(erased[:, None], torch.full_like(images, 0.5), images)
        return images

    def __repr__(self):
        return (f"StrongAugment(max_rotation={self.max_rotation}, max_shear={self.max_shear}, "
                f"scale_range={self.scale_range}, max_shift={self.max_shift}, "
                f"jitter={self.jitter}, invert={self.invert}, cutout={self.cutout}, "
                f"flip={self.flip}, text_mask={self.text_mask}, text_span={self.text_span})")


def text_strong_view(batch, *, mask=0.15, span=0.2):
    """A strong view of tokenized texts: each content token replaced by the mask
    token with probability ``mask`` (by padding when the tokenizer has none), and
    one contiguous span of up to ``span`` of each text's tokens dropped from the
    attention (special tokens and padding are never touched)."""
    content = batch.content_mask()
    ids = batch["input_ids"]
    attention = batch["attention_mask"].clone()
    device = ids.device
    if mask:
        masked = content & (torch.rand(ids.shape, device=device) < mask)
        fill = batch.mask_id if batch.mask_id is not None else batch.pad_id
        ids = torch.where(masked, torch.full_like(ids, fill), ids)
    if span:
        n_tokens = content.sum(1, keepdim=True).float()
        width = (torch.rand(len(batch), 1, device=device) * span * n_tokens).floor()
        start = (torch.rand(len(batch), 1, device=device) * (n_tokens - width + 1)).floor()
        position = content.long().cumsum(1) - 1  # rank among the content tokens
        dropped = content & (position >= start) & (position < start + width)
        attention = attention.masked_fill(dropped, 0)
    view = batch._like(dict(batch))
    view["input_ids"], view["attention_mask"] = ids, attention
    return view


def resolve_augment(augment):
    """``"default"`` -> :class:`DefaultAugment`; ``"randaugment"``,
    ``"trivialaugment"``, a ``torchvision.transforms.v2`` transform or a
    :class:`~sktransfer.training.PerSample` -> a ``PerSample`` (run per image,
    before batching); ``None`` -> None; another callable as is (batched)."""
    if augment is None:
        return None
    if isinstance(augment, str) and augment == "default":
        return DefaultAugment()
    per_sample = as_per_sample(augment)
    if per_sample is not None:
        return per_sample
    if callable(augment):
        return augment
    raise ValueError(
        f"augment={augment!r} must be 'default', 'randaugment', 'trivialaugment', "
        "None, a torchvision.transforms.v2 transform or PerSample(transform) (applied "
        "to each image), or a callable mapping a float batch (N, C, H, W) in [0, 1] "
        "to an augmented batch."
    )



"""MixUp and CutMix: training batches mixed with their labels, on the device.

As torchvision's ``v2.MixUp`` / ``v2.CutMix``: one mixing factor per batch,
drawn from Beta(alpha, alpha), each sample mixed with the next one of the
(shuffled) batch. The targets become class probabilities, and the sample
weights are mixed with them, so that the weighted cross-entropy of a mixed
batch is the mix of the weighted losses of its two label sets.
"""

import math
from numbers import Real

import torch
import torch.nn.functional as F

#: ``mixup=`` by name: the alphas of the mixup and CutMix papers (and of
#: torchvision's reference training recipes).
MIXUP_PRESETS = {
    "mixup": {"mixup_alpha": 0.2},
    "cutmix": {"cutmix_alpha": 1.0},
    "mixup_cutmix": {"mixup_alpha": 0.2, "cutmix_alpha": 1.0},
}
_KEYS = ("mixup_alpha", "cutmix_alpha")


def check_mixup(mixup, *, images=True):
    """``mixup`` (None, a name of :data:`MIXUP_PRESETS` or a dict of
    ``mixup_alpha`` / ``cutmix_alpha``) as ``{"mixup_alpha": a, "cutmix_alpha": b}``
    (0 turns one off), or None; ValueError for anything else, and for CutMix
    without ``images``."""
    if mixup is None:
        return None
    if isinstance(mixup, str):
        if mixup not in MIXUP_PRESETS:
            raise ValueError(f"mixup={mixup!r} must be one of {sorted(MIXUP_PRESETS)}, "
                             "a dict of 'mixup_alpha' and 'cutmix_alpha', or None.")
        alphas = MIXUP_PRESETS[mixup]
    elif isinstance(mixup, dict):
        unknown = sorted(map(repr, set(mixup) - set(_KEYS)))
        if unknown:
            raise ValueError(f"mixup={mixup!r} has unknown keys {', '.join(unknown)}; "
                             "its keys are 'mixup_alpha' and 'cutmix_alpha'.")
        alphas = mixup
    else:
        raise ValueError(f"mixup={mixup!r} must be a name, a dict or None.")
    alphas = {key: alphas.get(key, 0.0) for key in _KEYS}
    for key, alpha in alphas.items():
        if (not isinstance(alpha, Real) or isinstance(alpha, bool)
                or not math.isfinite(alpha) or alpha < 0):
            raise ValueError(f"mixup={mixup!r}: {key} must be a number >= 0 (0 turns "
                             f"it off); got {alpha!r}.")
    if not any(alphas.values()):
        raise ValueError(f"mixup={mixup!r} mixes nothing: give mixup_alpha or "
                         "cutmix_alpha > 0, or mixup=None.")
    if alphas["cutmix_alpha"] and not images:
        raise ValueError(f"mixup={mixup!r}: CutMix pastes image patches, and this "
                         "input is flat (not images); use mixup='mixup'.")
    return {key: float(alpha) for key, alpha in alphas.items()}


def make_mixing(mixup, n_classes, *, images=True):
    """The :class:`BatchMixing` of the ``mixup`` parameter, or None."""
    alphas = check_mixup(mixup, images=images)
    return None if alphas is None else BatchMixing(n_classes, **alphas)


def _beta(alpha):
    """One draw of Beta(alpha, alpha), from torch's (seeded) global generator."""
    return float(torch.distributions.Beta(torch.tensor(alpha), torch.tensor(alpha)).sample())


class BatchMixing:
    """Mix a training batch: MixUp (a blend of two images) or CutMix (a patch of
    one pasted into the other); with both alphas > 0, one of them per batch,
    with equal odds.

    Parameters
    ----------
    n_classes : int
    mixup_alpha : float, default=0.0
        Beta(alpha, alpha) of MixUp's blending factor; 0: no MixUp.
    cutmix_alpha : float, default=0.0
        Beta(alpha, alpha) of CutMix's kept area; 0: no CutMix.
    """

    def __init__(self, n_classes, *, mixup_alpha=0.0, cutmix_alpha=0.0):
        self.n_classes = n_classes
        self.mixup_alpha = mixup_alpha
        self.cutmix_alpha = cutmix_alpha

    def __call__(self, inputs, targets, sample_weight):
        """``(inputs, targets, sample_weight)`` mixed: targets (N,) class indices
        in, (N, n_classes) probabilities out (each row sums to 1)."""
        probabilities = F.one_hot(targets, self.n_classes).to(torch.float32)
        if len(inputs) < 2:
            return inputs, probabilities, sample_weight
        cutmix = self.cutmix_alpha > 0 and (
            self.mixup_alpha == 0 or bool(torch.rand(()) < 0.5))
        if cutmix:
            inputs, lam = self._cutmix(inputs)
        else:
            lam = _beta(self.mixup_alpha)
            inputs = inputs.mul(lam).add_(inputs.roll(1, 0), alpha=1.0 - lam)
        # Each label set weighs its share times its sample's weight.
        first = lam * sample_weight
        second = (1.0 - lam) * sample_weight.roll(1, 0)
        weight = first + second
        mixed = first[:, None] * probabilities + second[:, None] * probabilities.roll(1, 0)
        plain = lam * probabilities + (1.0 - lam) * probabilities.roll(1, 0)
        positive = (weight > 0)[:, None]
        mixed = torch.where(positive, mixed / weight.clamp_min(1e-12)[:, None], plain)
        return inputs, mixed, weight

    def _cutmix(self, images):
        """A box of the rolled batch pasted into ``images``; the share of each
        image kept (the box clipped at the borders)."""
        lam = _beta(self.cutmix_alpha)
        height, width = images.shape[-2:]
        centre_y = int(torch.randint(height, ()))
        centre_x = int(torch.randint(width, ()))
        half = 0.5 * math.sqrt(1.0 - lam)
        half_h, half_w = int(half * height), int(half * width)
        y0, y1 = max(centre_y - half_h, 0), min(centre_y + half_h, height)
        x0, x1 = max(centre_x - half_w, 0), min(centre_x + half_w, width)
        mixed = images.clone()
        mixed[..., y0:y1, x0:x1] = images.roll(1, 0)[..., y0:y1, x0:x1]
        return mixed, 1.0 - (y1 - y0) * (x1 - x0) / (height * width)

    def __repr__(self):
        return (f"BatchMixing(n_classes={self.n_classes}, mixup_alpha={self.mixup_alpha}, "
                f"cutmix_alpha={self.cutmix_alpha})")

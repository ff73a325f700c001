"""Self-training with pseudo-labels: AdaMatch (Berthelot et al., ICLR 2022) and
FixMatch's fixed threshold (Sohn et al., NeurIPS 2020) as one loss.

Each step sees two views of every target image, a weak and a strong
augmentation (its ``target_augments``). The weak view's prediction, aligned to
the source class distribution, is the pseudo-label; when it is confident enough
the strong view is trained to predict it (cross-entropy). Confidence is
relative in AdaMatch: ``threshold`` times the mean confidence on the source
batch, so the bar rises as the network learns, and no threshold needs tuning
per task.
"""

import math

import torch
import torch.nn.functional as F

from ..training import StrongAugment, WeakAugment
from ._losses import AdaptationLoss


def relative_threshold(probabilities_source, threshold):
    """AdaMatch's relative confidence threshold: ``threshold`` times the mean
    top-class probability of the source batch."""
    return threshold * probabilities_source.max(dim=1).values.mean()


def align_distribution(probabilities_target, source_mean, target_mean):
    """Distribution alignment: scale target predictions by the ratio of the
    source to the target class distribution, and renormalise each row."""
    aligned = probabilities_target * (source_mean / target_mean.clamp_min(1e-6))
    return aligned / aligned.sum(dim=1, keepdim=True).clamp_min(1e-12)


def pseudo_labels(probabilities, threshold):
    """``(labels, mask)``: the top class of each row, and whether its probability
    reaches ``threshold``."""
    confidence, labels = probabilities.max(dim=1)
    return labels, (confidence >= threshold).float()


class SelfTrainingLoss(AdaptationLoss):
    """Pseudo-labels from a weak view, learned on a strong view (AdaMatch).

    ``forward(fs, ls, ft_weak, lt_weak, ft_strong, lt_strong)``: the mean, over
    the target batch, of the cross-entropy of the strong view's logits against
    the aligned weak-view pseudo-label, counted only where the label is
    confident. The weight ramps up over the first half of the fit as in
    AdaMatch (``0.5 - cos(min(pi, 2 pi progress)) / 2``).

    Parameters
    ----------
    threshold : float, default=0.9
        Confidence a pseudo-label needs: relative to the mean source confidence
        when ``relative=True`` (AdaMatch), absolute otherwise (FixMatch).
    relative : bool, default=True
    distribution_alignment : bool, default=True
        Align target predictions to the source class distribution, with running
        means of both over the fit (``momentum``).
    momentum : float, default=0.99
        Of the running class distributions.
    warmup : bool, default=True
        AdaMatch's ramp-up of the weight.
    weak, strong : callable or None
        The two augmentations, on float batches (N, C, H, W) in [0, 1];
        defaults :class:`~sktransfer.training.WeakAugment` (shift) and
        :class:`~sktransfer.training.StrongAugment` (affine, colour, inversion,
        cutout; no flips, so it suits digits as well as photos).

    Attributes
    ----------
    mask_rate : float
        Share of target samples above the threshold at the last step.
    """

    def __init__(self, threshold=0.9, relative=True, distribution_alignment=True,
                 momentum=0.99, warmup=True, weak=None, strong=None):
        super().__init__()
        self.threshold = threshold
        self.relative = relative
        self.distribution_alignment = distribution_alignment
        self.momentum = momentum
        self.warmup = warmup
        self.weak = weak
        self.strong = strong
        self.mask_rate = 0.0
        self.register_buffer("source_mean", None)
        self.register_buffer("target_mean", None)

    def _hyper_parameters(self):
        return {"threshold": self.threshold, "relative": self.relative,
                "distribution_alignment": self.distribution_alignment}

    def build(self, n_features, n_classes):
        self.source_mean = torch.full((n_classes,), 1.0 / n_classes)
        self.target_mean = torch.full((n_classes,), 1.0 / n_classes)
        return self

    @property
    def target_augments(self):
        """The weak and the strong augmentation, in the order of ``forward``."""
        return [WeakAugment() if self.weak is None else self.weak,
                StrongAugment() if self.strong is None else self.strong]

    @property
    def weight(self):
        if not self.warmup:
            return 1.0
        return 0.5 - math.cos(min(math.pi, 2 * math.pi * self.progress)) / 2

    def forward(self, features_source, logits_source, features_weak, logits_weak,
                features_strong, logits_strong):
        with torch.no_grad():
            source = F.softmax(logits_source.float(), dim=1)
            target = F.softmax(logits_weak.float(), dim=1)
            if self.source_mean is None:  # called without build()
                self.build(0, target.shape[1])
            self.source_mean = self.source_mean.to(target.device)
            self.target_mean = self.target_mean.to(target.device)
            if self.training:
                self.source_mean.mul_(self.momentum).add_(source.mean(0), alpha=1 - self.momentum)
                self.target_mean.mul_(self.momentum).add_(target.mean(0), alpha=1 - self.momentum)
            if self.distribution_alignment:
                target = align_distribution(target, self.source_mean, self.target_mean)
            bar = (relative_threshold(source, self.threshold) if self.relative
                   else torch.as_tensor(self.threshold, device=target.device))
            labels, mask = pseudo_labels(target, bar)
            self.mask_rate = mask.mean()
        losses = F.cross_entropy(logits_strong.float(), labels, reduction="none")
        return self.weight * (losses * mask).mean()

"""Self-training with pseudo-labels: AdaMatch (Berthelot et al., ICLR 2022) and
FixMatch's fixed threshold (Sohn et al., NeurIPS 2020) as one loss, and
:class:`EpochSelfTrainingLoss`, whose pseudo-labels come from one pass over the
target set each epoch (more often in a fit of few epochs).

Each step sees two views of every target image, a weak and a strong
augmentation (its ``target_augments``). The weak view's prediction, aligned to
the source class distribution, is the pseudo-label; when it is confident enough
the strong view is trained to predict it (cross-entropy). Confidence is
relative in AdaMatch: ``threshold`` times the mean confidence on the source
batch, so the bar rises as the network learns, and no threshold needs tuning
per task.
"""

import math
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F

from ..training import DomainAdaptationStep, StrongAugment, WeakAugment
from ..inputs._text import concat_inputs
from ..training._batches import target_batches
from ..training._steps import batch_statistics_logits
from .._sklearn_compat import Interval, StrOptions
from ._losses import AdaptationLoss

_SELF_TRAINING_CONSTRAINTS = {
    "threshold": [Interval(Real, 0, 1, closed="both")],
    "relative": ["boolean"],
    "distribution_alignment": ["boolean"],
    "momentum": [Interval(Real, 0, 1, closed="left")],
    "warmup": ["boolean"],
    "strong": [callable, None],
}


def relative_threshold(probabilities_source, threshold):
    """AdaMatch's relative confidence threshold: ``threshold`` times the mean
    top-class probability of the source batch."""
    return threshold * probabilities_source.max(dim=1).values.mean()


def align_distribution(probabilities_target, source_mean, target_mean):
    """Distribution alignment: scale target predictions by the ratio of the
    source to the target class distribution, and renormalise each row."""
    aligned = probabilities_target * (source_mean / target_mean.clamp_min(1e-6))
    return aligned / aligned.sum(dim=1, keepdim=True).clamp_min(1e-12)


def _ramp(progress):
    """AdaMatch's warm-up of the pseudo-label weight: 0 -> 1 over the first half
    of the fit (``0.5 - cos(min(pi, 2 pi progress)) / 2``), then 1."""
    return 0.5 - math.cos(min(math.pi, 2 * math.pi * progress)) / 2


def pseudo_labels(probabilities, threshold):
    """``(labels, mask)``: the top class of each row, and whether its probability
    reaches ``threshold``."""
    confidence, labels = probabilities.max(dim=1)
    return labels, (confidence >= threshold).float()


class _PseudoLabelLoss(AdaptationLoss):
    """What both self-training losses hold: the confidence threshold, the
    alignment, the running-mean momentum, the ramp-up and the strong view."""

    _parameter_constraints = _SELF_TRAINING_CONSTRAINTS
    needs_classes = True

    def __init__(self, *, threshold, relative, distribution_alignment, momentum, warmup,
                 strong):
        super().__init__()
        self.threshold = threshold
        self.relative = relative
        self.distribution_alignment = distribution_alignment
        self.momentum = momentum
        self.warmup = warmup
        self.strong = strong
        self.mask_rate = 0.0

    def check_parameters(self):
        super().check_parameters()
        for name in ("weak", "strong"):
            if isinstance(getattr(self, name, None), type):
                raise ValueError(
                    f"The {name!r} parameter of {type(self).__name__} must be an "
                    f"augmentation object (an instance), not the class "
                    f"{getattr(self, name).__name__}: write "
                    f"{getattr(self, name).__name__}().")

    @property
    def weight(self):
        return _ramp(self.progress) if self.warmup else 1.0


class SelfTrainingLoss(_PseudoLabelLoss):
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

    _parameter_constraints = {**_SELF_TRAINING_CONSTRAINTS, "weak": [callable, None]}

    def __init__(self, threshold=0.9, relative=True, distribution_alignment=True,
                 momentum=0.99, warmup=True, weak=None, strong=None):
        super().__init__(threshold=threshold, relative=relative,
                         distribution_alignment=distribution_alignment,
                         momentum=momentum, warmup=warmup, strong=strong)
        self.weak = weak
        self.register_buffer("source_mean", None)
        self.register_buffer("target_mean", None)

    def build(self, n_features, n_classes):
        self.source_mean = torch.full((n_classes,), 1.0 / n_classes)
        self.target_mean = torch.full((n_classes,), 1.0 / n_classes)
        return self

    @property
    def target_augments(self):
        """The weak and the strong augmentation, in the order of ``forward``."""
        return [WeakAugment() if self.weak is None else self.weak,
                StrongAugment() if self.strong is None else self.strong]

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


#: Epochs from which ``EpochSelfTrainingLoss(refresh_every="auto")`` refreshes
#: once per epoch; a shorter fit refreshes every ``ceil(steps / AUTO_REFRESHES)``
#: optimizer steps instead (about this many passes, evenly spread).
AUTO_REFRESHES = 4


class EpochSelfTrainingStep(DomainAdaptationStep):
    """The step of :class:`EpochSelfTrainingLoss`: a pseudo-label pass over the
    target rows when each epoch starts, or more often in a short fit
    (:meth:`refresh_period`; :func:`~sktransfer.training._steps.batch_statistics_logits`,
    batches twice the training batch), then each step one forward over the
    source batch and a strong view of a target batch."""

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self._labels = self._mask = None
        # row id -> position in target_rows, to look up a batch's pseudo-labels
        rows = np.asarray(self.target_rows)
        position = np.full(int(rows.max()) + 1 if len(rows) else 0, -1, dtype=np.int64)
        position[rows] = np.arange(len(rows))
        self._position = torch.as_tensor(position)

    def target_stream(self):
        """Target batches with their rows, to look up their pseudo-labels."""
        config = self.config
        return target_batches(config.loader, self.target_rows, config.batch_size,
                              self.generator, with_rows=True, shard=config.shard)

    def refresh(self):
        """Pseudo-label every target row with the network as it is now."""
        config = self.config
        logits = batch_statistics_logits(self.net, config.loader, self.target_rows,
                                         batch_size=2 * config.batch_size,
                                         generator=self.generator)
        labels, mask = self.adaptation.label(logits)
        self._labels, self._mask = labels, mask

    def epoch_metrics(self):
        metrics = super().epoch_metrics()
        if metrics:
            metrics["pseudo_label_rate"] = self.adaptation.mask_rate
        return metrics

    def refresh_period(self):
        """Optimizer steps between two pseudo-label passes, counted from the
        fit's first step: ``refresh_every`` epochs; for ``"auto"`` one epoch in
        a fit of at least :data:`AUTO_REFRESHES` epochs, and in a shorter fit
        ``ceil(steps / AUTO_REFRESHES)`` steps (at most one epoch)."""
        n_batches = max(self.config.n_batches, 1)
        every = self.adaptation.refresh_every
        if every == "auto":
            return max(1, min(n_batches, -(-self._total_steps // AUTO_REFRESHES)))
        return every * n_batches

    def batches(self, epoch):
        """``(supervised batch, (strong view, pseudo-labels, mask), progress)``."""
        done = (epoch - self.config.first_epoch) * self.config.n_batches
        period = self.refresh_period()
        # An epoch's own pass comes before its source batches are drawn, so a
        # fit that refreshes once per epoch draws its random numbers in the
        # same order whatever refresh_every says.
        if self._labels is None or done % period == 0:
            self.refresh()
        (strong,) = self.adaptation.target_augments
        for step, supervised in enumerate(self.supervised_batches(epoch)):
            if step and (done + step) % period == 0:
                self.refresh()
            rows, raw = next(self._targets_stream)
            index = self._position[torch.as_tensor(rows)].to(self._labels.device)
            view = self.config.loader.prepare(raw, augment=strong)
            target = (view, self._labels[index].to(view.device),
                      self._mask[index].to(view.device))
            yield supervised, target, self.progress(epoch, step)

    def loss(self, batch):
        (inputs, targets, sample_weight), (view, labels, mask), progress = batch
        loss_module = self.adaptation
        loss_module.progress = progress
        n_source = len(inputs)
        logits, _ = self.forward(concat_inputs([inputs, view]))
        supervised = self.criterion(logits[:n_source], targets, sample_weight)
        loss_module.observe_source(logits[:n_source].detach())
        adapt = loss_module(logits[n_source:], labels, mask)
        self.record(supervised, adapt)
        return supervised + self.trade_off * adapt


class EpochSelfTrainingLoss(_PseudoLabelLoss):
    """Self-training whose pseudo-labels are refreshed once per epoch (more
    often in a fit of few epochs), from one pass over the whole target set
    (``method="self_training"``).

    At the start of every epoch (in a short fit, every few steps: see
    ``refresh_every``) :class:`EpochSelfTrainingStep` predicts every target
    image, unaugmented, with BatchNorm normalising each (shuffled) batch with
    its own statistics: the regime AdaBN gives at prediction, so the
    pseudo-labels are what the finished model would predict. The predictions
    are aligned to the source class distribution, and a target image gets the
    top class as its pseudo-label when its aligned confidence reaches
    ``threshold`` times the mean source confidence (AdaMatch's relative
    threshold and distribution alignment, from running means over the
    training steps). Each step then trains a strong augmentation of the
    target batch on its pseudo-labels (FixMatch's consistency); the weight
    ramps up over the first half of the fit.

    Against :class:`SelfTrainingLoss` (AdaMatch, a weak view forwarded every
    step): one target view per step instead of two, so a step costs what an
    MCC step costs, plus one forward pass (no gradients) over the target set
    per refresh; and pseudo-labels from the prediction regime rather than from
    the mixed-batch regime of training.

    ``forward(logits_strong, labels, mask)``: the masked cross-entropy of the
    strong view, times the ramp-up weight; the step calls it.

    Parameters
    ----------
    threshold : float, default=0.9
        Relative to the mean source confidence when ``relative=True``,
        absolute otherwise.
    relative : bool, default=True
    distribution_alignment : bool, default=True
    momentum : float, default=0.99
        Of the running source class distribution and confidence.
    warmup : bool, default=True
    strong : callable or None
        The strong augmentation of the target views, on float batches in
        [0, 1]; :class:`~sktransfer.training.StrongAugment` by default (no
        flips).
    refresh_every : int or "auto", default="auto"
        Epochs between two pseudo-label passes (the first step of a fit always
        has one). Each pass is a forward over the whole target set without
        gradients. ``"auto"``: every epoch in a fit of at least four epochs;
        in a shorter fit, instead, every ``ceil(steps / 4)`` optimizer steps
        of the fit (about four passes, evenly spread), so that a short fit
        (the one epoch of a pretrained text backbone's default) trains on
        pseudo-labels of the network it is becoming, not only on those of its
        first step. Each ``warm_start`` fit counts as a fit of its own
        ``epochs``.

    Attributes
    ----------
    mask_rate : float
        Share of target images with a pseudo-label after the last refresh.
    """

    training_step = EpochSelfTrainingStep
    _parameter_constraints = {**_SELF_TRAINING_CONSTRAINTS,
                              "refresh_every": [Interval(Integral, 1, None, closed="left"),
                                                StrOptions({"auto"})]}

    def __init__(self, threshold=0.9, relative=True, distribution_alignment=True,
                 momentum=0.99, warmup=True, strong=None, refresh_every="auto"):
        super().__init__(threshold=threshold, relative=relative,
                         distribution_alignment=distribution_alignment,
                         momentum=momentum, warmup=warmup, strong=strong)
        self.refresh_every = refresh_every
        self.register_buffer("source_mean", None)
        self.register_buffer("source_confidence", None)

    def build(self, n_features, n_classes):
        self.source_mean = torch.full((n_classes,), 1.0 / n_classes)
        self.source_confidence = torch.tensor(1.0 / n_classes)
        return self

    @property
    def target_augments(self):
        """The one target view: the strong augmentation."""
        return [StrongAugment() if self.strong is None else self.strong]

    @torch.no_grad()
    def observe_source(self, logits_source):
        """Update the running source class distribution and mean confidence."""
        probabilities = F.softmax(logits_source.float(), dim=1)
        if self.source_mean is None:
            self.build(0, probabilities.shape[1])
        self.source_mean = self.source_mean.to(probabilities.device)
        self.source_confidence = self.source_confidence.to(probabilities.device)
        self.source_mean.mul_(self.momentum).add_(probabilities.mean(0),
                                                  alpha=1 - self.momentum)
        self.source_confidence.mul_(self.momentum).add_(
            probabilities.max(dim=1).values.mean(), alpha=1 - self.momentum)

    @torch.no_grad()
    def label(self, logits_target):
        """``(labels, mask)`` of a whole target set's logits (N, n_classes)."""
        probabilities = F.softmax(logits_target.float(), dim=1)
        if self.source_mean is None:
            self.build(0, probabilities.shape[1])
        if self.distribution_alignment:
            probabilities = align_distribution(
                probabilities, self.source_mean.to(probabilities.device),
                probabilities.mean(0))
        bar = self.threshold
        if self.relative:
            bar = self.threshold * float(self.source_confidence)
        labels, mask = pseudo_labels(probabilities, bar)
        self.mask_rate = float(mask.mean()) if len(mask) else 0.0
        return labels, mask

    def forward(self, logits_strong, labels, mask):
        losses = F.cross_entropy(logits_strong.float(), labels, reduction="none")
        return self.weight * (losses * mask).mean()

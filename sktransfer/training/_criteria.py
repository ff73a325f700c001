"""Supervised criteria: the loss a step trains with and what validation reports.

A :class:`Criterion` is what the kind of target of an estimator means to the
training core: the loss of a batch of network outputs against its targets
(weighted per sample), the dtype of the targets on the device, and the
``valid_loss`` / ``valid_score`` of held-out rows. The steps take their
criterion from :class:`~sktransfer.training.StepConfig` and never ask what kind
of target they train on.

* :class:`CrossEntropy`: one class per sample (softmax over the outputs).
* :class:`BinaryCrossEntropy`: a 0/1 indicator per label (one sigmoid per
  output), weights per sample or per (sample, label).
* :class:`RegressionLoss`: real-valued targets, ``squared_error``,
  ``absolute_error`` or ``huber``.
"""

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import log_softmax

#: The regression losses by name.
REGRESSION_LOSSES = ("squared_error", "absolute_error", "huber")


def weighted_cross_entropy(logits, targets, sample_weight, *, label_smoothing=0.0):
    """The supervised loss: cross-entropy weighted per sample, with label smoothing.

    ``targets`` are class indices (N,), or class probabilities (N, n_classes)
    (the soft targets of MixUp and CutMix); for one-hot probabilities both give
    the same loss.
    """
    if targets.is_floating_point():
        targets = targets.float()
    losses = F.cross_entropy(logits.float(), targets, reduction="none",
                             label_smoothing=label_smoothing)
    return (losses * sample_weight).sum() / sample_weight.sum().clamp_min(1e-12)


def _weighted_mean(losses, weights):
    return (losses * weights).sum() / weights.sum().clamp_min(1e-12)


class Criterion:
    """Base of the supervised criteria.

    Subclasses implement :meth:`__call__` (the training loss, a tensor) and
    :meth:`scores` (the validation record, from NumPy outputs).

    Attributes
    ----------
    target_dtype : torch.dtype
        The dtype of the targets on the device (class indices are
        ``torch.long``; indicators and real values ``torch.float32``).
    """

    target_dtype = torch.float32
    #: What ``valid_score`` measures, as the epoch log names it (``valid_<name>``).
    score_name = "score"

    def __call__(self, outputs, targets, sample_weight):
        """The weighted mean loss of a batch (a scalar tensor, float32)."""
        raise NotImplementedError(f"{type(self).__name__} must implement __call__.")

    def scores(self, outputs, targets, sample_weight=None):
        """``{"valid_loss": float, "valid_score": float}`` of the network's
        ``outputs`` (float32 ndarray, one row per held-out sample) against the
        ``targets`` of those rows (ndarray), each row weighed by
        ``sample_weight`` (the loss weights of those rows, as :meth:`__call__`
        takes them; None: equal weights), as scikit-learn's estimators score
        held-out rows: a row of weight 0 does not count, one of weight 2 counts
        twice."""
        raise NotImplementedError(f"{type(self).__name__} must implement scores.")


def _weights(sample_weight, n_rows):
    """``sample_weight`` as float64, ones when None."""
    if sample_weight is None:
        return np.ones(n_rows)
    return np.asarray(sample_weight, dtype=np.float64)


def _average(values, weights):
    """The weighted mean, NaN when every weight is 0 (nothing held out counts)."""
    total = weights.sum()
    return float((values * weights).sum() / total) if total > 0 else float("nan")


class CrossEntropy(Criterion):
    """Softmax cross-entropy on class indices; validation reports the log loss
    and the accuracy.

    Parameters
    ----------
    label_smoothing : float, default=0.0
    """

    target_dtype = torch.long
    score_name = "acc"

    def __init__(self, label_smoothing=0.0):
        self.label_smoothing = label_smoothing

    def __call__(self, outputs, targets, sample_weight):
        return weighted_cross_entropy(outputs, targets, sample_weight,
                                      label_smoothing=self.label_smoothing)

    def scores(self, outputs, targets, sample_weight=None):
        weights = _weights(sample_weight, len(targets))
        log_proba = log_softmax(outputs.astype(np.float64), axis=1)
        return {
            "valid_loss": _average(-log_proba[np.arange(len(targets)), targets], weights),
            "valid_score": _average(outputs.argmax(1) == targets, weights),
        }


class BinaryCrossEntropy(Criterion):
    """One sigmoid per label and binary cross-entropy, for multi-label targets
    (a 0/1 indicator matrix). Validation reports the mean binary log loss and
    the samples-averaged F1 of the labels predicted above ``threshold`` (a
    sample with no true and no predicted label counts as a perfect match).

    Parameters
    ----------
    label_smoothing : float, default=0.0
        Targets move from 0 and 1 towards 0.5 by half this amount.
    threshold : float, default=0.5
        The probability above which a label is predicted.

    Notes
    -----
    The weights a batch comes with are per sample (N,) or per sample and
    label (N, n_labels); the loss is the weighted mean over every (sample,
    label) pair.
    """

    score_name = "f1_samples"

    def __init__(self, label_smoothing=0.0, threshold=0.5):
        self.label_smoothing = label_smoothing
        self.threshold = threshold

    def __call__(self, outputs, targets, sample_weight):
        targets = targets.float()
        if self.label_smoothing:
            targets = targets * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        losses = F.binary_cross_entropy_with_logits(outputs.float(), targets,
                                                    reduction="none")
        weights = sample_weight if sample_weight.dim() == 2 else sample_weight[:, None]
        return _weighted_mean(losses, weights.expand_as(losses))

    def scores(self, outputs, targets, sample_weight=None):
        logits = outputs.astype(np.float64)
        targets = np.asarray(targets, dtype=np.float64)
        weights = _weights(sample_weight, len(targets))
        # per (sample, label) as the loss weighs them; a sample's F1 by the mean
        # of its labels' weights (its sample_weight when no class_weight is set)
        pairs = np.broadcast_to(weights if weights.ndim == 2 else weights[:, None],
                                targets.shape)
        # log(1 + exp(z)) - t z: the binary log loss, stable for large |z|.
        losses = np.logaddexp(0.0, logits) - targets * logits
        predicted = logits > np.log(self.threshold / (1.0 - self.threshold))
        truth = targets > 0.5
        overlap = (predicted & truth).sum(axis=1)
        total = predicted.sum(axis=1) + truth.sum(axis=1)
        f1 = np.where(total > 0, 2.0 * overlap / np.maximum(total, 1), 1.0)
        return {"valid_loss": _average(losses, pairs),
                "valid_score": _average(f1, pairs.mean(axis=1))}


def _regression_losses(errors, loss):
    if loss == "squared_error":
        return errors.square()
    if loss == "absolute_error":
        return errors.abs()
    # Huber, quadratic within one unit of the (standardised) target: 0.5 e^2, then
    # |e| - 0.5.
    return F.huber_loss(errors, torch.zeros_like(errors), reduction="none", delta=1.0)


class RegressionLoss(Criterion):
    """A regression loss on real-valued targets (N, n_outputs), averaged over
    the outputs, then weighted per sample. Validation reports the same loss
    and R² (averaged over the outputs, as :func:`sklearn.metrics.r2_score`).

    Parameters
    ----------
    loss : {"squared_error", "absolute_error", "huber"}, default="squared_error"
        ``"huber"`` is quadratic for errors up to 1 and linear beyond (the
        estimators train on standardised targets: one standard deviation).
    """

    score_name = "r2"

    def __init__(self, loss="squared_error"):
        if loss not in REGRESSION_LOSSES:
            raise ValueError(f"loss={loss!r} must be one of {list(REGRESSION_LOSSES)}.")
        self.loss = loss

    def __call__(self, outputs, targets, sample_weight):
        errors = outputs.float() - targets.float()
        return _weighted_mean(_regression_losses(errors, self.loss).mean(dim=1),
                              sample_weight)

    def scores(self, outputs, targets, sample_weight=None):
        outputs = outputs.astype(np.float64)
        targets = np.asarray(targets, dtype=np.float64)
        weights = _weights(sample_weight, len(targets))
        losses = _regression_losses(torch.from_numpy(outputs - targets), self.loss)
        loss = _average(losses.numpy().mean(axis=1), weights)
        if len(targets) < 2 or not weights.sum() > 0:
            # as r2_score: not defined on fewer than two rows (or none that counts)
            return {"valid_loss": loss, "valid_score": float("nan")}
        # as r2_score with sample_weight: weighted sums of squares
        column = weights[:, None]
        residual = (column * (targets - outputs) ** 2).sum(axis=0)
        centre = (column * targets).sum(axis=0) / weights.sum()
        spread = (column * (targets - centre) ** 2).sum(axis=0)
        # As r2_score: a constant column scores 1 when predicted exactly, else 0.
        r2 = np.where(spread > 0, 1.0 - residual / np.where(spread > 0, spread, 1.0),
                      np.where(residual > 0, 0.0, 1.0))
        return {"valid_loss": loss, "valid_score": float(r2.mean())}

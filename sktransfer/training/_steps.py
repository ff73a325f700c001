"""Training steps: what a batch is and what its loss is.

A step is the part of a fit that differs between estimators. It has
``batches(epoch)`` (an iterable of the epoch's batches, drawn from the step's
own shuffling generator) and ``loss(batch)`` (a scalar, computed under
autocast); :class:`~sktransfer.training.Trainer` does the rest.

* :class:`SupervisedStep`: shuffled batches of labeled rows
  ``(inputs, targets, sample_weight)``, weighted cross-entropy.
* :class:`DomainAdaptationStep`: each step a supervised source batch and a
  target batch of the same size (:func:`~sktransfer.training.target_batches`),
  one forward pass over both, and the supervised loss plus ``trade_off`` times
  the adaptation loss. The adaptation loss is an ``nn.Module`` that lives for
  the whole fit, so it can keep state across steps (a teacher network, a running
  class distribution). ``target_views`` says how many views of each target batch
  a loss sees; a method that needs another kind of step (two views, a teacher
  update) names it as its ``training_step`` attribute.
"""

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import log_softmax

from .._runtime import run_batches
from ..inputs import PerSample
from ._batches import target_batches
from ._freeze import BATCH_NORMS


@dataclasses.dataclass
class StepInputs:
    """What every step is built from.

    Attributes
    ----------
    net : ClassifierNet
        ``net(x, return_features=False)`` -> logits (and features).
    pipeline : InputPipeline
        Raw batches of the training data, and ``prepare`` to make them inputs.
    rows : ndarray of int
        The labeled rows trained on (the validation rows held out).
    targets : ndarray of int64
        Encoded labels of every row (``-1`` for unlabeled rows).
    sample_weight : ndarray of float
        Weight of every row in the supervised loss (0 for unlabeled rows).
    batch_size : int
    augment : callable, PerSample or None
        Applied to float batches in [0, 1] on the device; a
        :class:`~sktransfer.training.PerSample` to each image where it is decoded.
    generator : torch.Generator
        Shuffles the rows; seeded by the estimator.
    device : torch.device
    label_smoothing : float
    epochs : int
        Epochs of this fit.
    first_epoch : int
        Number of its first epoch (continuing a fit).
    mix : BatchMixing or None
        Mixes each supervised batch and its labels (MixUp, CutMix) on the device.
    """

    net: torch.nn.Module
    pipeline: object
    rows: np.ndarray
    targets: np.ndarray
    sample_weight: np.ndarray
    batch_size: int
    augment: object
    generator: torch.Generator
    device: torch.device
    label_smoothing: float = 0.0
    epochs: int = 1
    first_epoch: int = 0
    mix: object = None

    @property
    def n_batches(self):
        """Batches per epoch."""
        return -(-len(self.rows) // self.batch_size)


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


class SupervisedStep:
    """Shuffled batches of the labeled rows and their weighted cross-entropy.

    A per-sample ``augment`` runs where the images are decoded, through a
    pipeline of the step's own (validation and prediction keep the plain one);
    ``mix`` mixes each batch and turns its targets into class probabilities.

    Parameters
    ----------
    inputs : StepInputs
    """

    def __init__(self, inputs):
        self.inputs = inputs
        self.net = inputs.net
        self.generator = inputs.generator
        self._targets = torch.as_tensor(inputs.targets, dtype=torch.long)
        self._weights = torch.as_tensor(inputs.sample_weight, dtype=torch.float32)
        if isinstance(inputs.augment, PerSample):
            self._pipeline = inputs.pipeline.with_transform(inputs.augment)
            self._batch_augment = None
        else:
            self._pipeline, self._batch_augment = inputs.pipeline, inputs.augment

    def extra_modules(self):
        """Modules trained besides the network, by name (none here)."""
        return {}

    def batches(self, epoch):
        """``(inputs, targets, sample_weight)`` on the device, the rows reshuffled
        (targets: class indices, or class probabilities when ``mix`` is set)."""
        inputs, size = self.inputs, self.inputs.batch_size
        pipeline, device = self._pipeline, inputs.device
        order = inputs.rows[torch.randperm(len(inputs.rows), generator=self.generator).numpy()]
        for start, batch in zip(range(0, len(order), size),
                                pipeline.batches(size, indices=order)):
            index = torch.as_tensor(order[start:start + size])
            batch = (pipeline.prepare(batch, augment=self._batch_augment),
                     self._targets[index].to(device, non_blocking=True),
                     self._weights[index].to(device, non_blocking=True))
            yield batch if inputs.mix is None else inputs.mix(*batch)

    def criterion(self, logits, targets, sample_weight):
        """The supervised loss of a batch."""
        return weighted_cross_entropy(logits, targets, sample_weight,
                                      label_smoothing=self.inputs.label_smoothing)

    def loss(self, batch):
        inputs, targets, sample_weight = batch
        return self.criterion(self.net(inputs), targets, sample_weight)


class DomainAdaptationStep(SupervisedStep):
    """A source batch and a target batch each step, and the adaptation loss.

    Parameters
    ----------
    inputs : StepInputs
    adaptation : callable
        ``adaptation(features_s, logits_s, features_t, logits_t) -> scalar``
        (see :mod:`sktransfer.adaptation`); its ``progress`` attribute, when it
        has one, is set before every step (0 -> 1 over the fit).
    target_rows : ndarray of int
        The rows of the target domain.
    trade_off : float
        Weight of the adaptation loss.
    adabn : bool, default=False
        At the end of the fit, replace the BatchNorm statistics by those of the
        target rows (:func:`adapt_batchnorm`).
    """

    #: Views of each target batch that :meth:`target_views` prepares.
    n_target_views = 1

    def __init__(self, inputs, *, adaptation, target_rows, trade_off, adabn=False):
        super().__init__(inputs)
        self.adaptation = adaptation
        self.trade_off = float(trade_off)
        self.target_rows = target_rows
        self.adabn = adabn
        self._targets_stream = target_batches(inputs.pipeline, target_rows,
                                              inputs.batch_size, self.generator)
        self._total_steps = max(inputs.epochs * inputs.n_batches, 1)
        self._sums, self._steps = None, 0

    def epoch_metrics(self):
        """The epoch's mean supervised loss and mean (unweighted) adaptation loss,
        for the history; resets the sums for the next epoch."""
        if not self._steps:
            return {}
        supervised, adaptation = (float(total) / self._steps for total in self._sums)
        self._sums, self._steps = None, 0
        return {"supervised_loss": supervised, "adaptation_loss": adaptation}

    def extra_modules(self):
        if isinstance(self.adaptation, torch.nn.Module):
            return {"adaptation": self.adaptation}
        return {}

    def target_views(self, raw):
        """The target batch as network input: one view per entry of the
        adaptation loss's ``target_augments`` (callables on float batches in
        [0, 1], or None for no augmentation) when it has them, else
        ``n_target_views`` views augmented by the estimator's ``augment``."""
        augments = getattr(self.adaptation, "target_augments", None)
        if augments is None:
            augments = [self.inputs.augment] * self.n_target_views
        return [self.inputs.pipeline.prepare(raw, augment=augment) for augment in augments]

    def batches(self, epoch):
        """``(supervised batch, target views, progress)`` for each step."""
        done = (epoch - self.inputs.first_epoch) * self.inputs.n_batches
        for step, supervised in enumerate(super().batches(epoch)):
            views = self.target_views(next(self._targets_stream))
            yield supervised, views, min((done + step) / self._total_steps, 1.0)

    def finish(self):
        """Called once the fit's epochs are done (not after an interruption)."""
        if self.adabn:
            adapt_batchnorm(self.net, self.inputs.pipeline, self.target_rows,
                            batch_size=self.inputs.batch_size, generator=self.generator)

    def forward(self, inputs):
        """``(logits, features)`` of the network on ``inputs``, in float32."""
        logits, features = self.net(inputs, return_features=True)
        return logits.float(), features.float()

    def loss(self, batch):
        (inputs, targets, sample_weight), views, progress = batch
        if hasattr(self.adaptation, "progress"):
            self.adaptation.progress = progress
        n_source = len(inputs)
        # One forward over both domains (and every target view): one pass per
        # step, and BatchNorm normalises with statistics of the mixture, whose
        # running averages are what predict() uses on target data.
        logits, features = self.forward(torch.cat([inputs, *views]))
        supervised = self.criterion(logits[:n_source], targets, sample_weight)
        # The loss sees (features, logits) of the source batch, then of each
        # target view in order: fs, ls, ft, lt[, ft2, lt2, ...].
        parts = []
        for chunk in zip(features.split([n_source, *map(len, views)]),
                         logits.split([n_source, *map(len, views)])):
            parts.extend(chunk)
        adapt = self.adaptation(*parts)
        parts = (supervised.detach(), torch.as_tensor(adapt).detach().float())
        # Summed on the device: no host sync per step.
        self._sums = parts if self._sums is None else tuple(
            total + part for total, part in zip(self._sums, parts))
        self._steps += 1
        return supervised + self.trade_off * adapt


class SourceOnlyStep(SupervisedStep):
    """:class:`SupervisedStep` on the labeled rows, with AdaBN on the target
    rows at the end of the fit (``method="source_only", adabn=True``)."""

    def __init__(self, inputs, *, target_rows):
        super().__init__(inputs)
        self.target_rows = target_rows

    def finish(self):
        adapt_batchnorm(self.net, self.inputs.pipeline, self.target_rows,
                        batch_size=self.inputs.batch_size, generator=self.generator)


def _shuffled(rows, generator):
    """``rows`` in a random order (drawn from ``generator``, or a fixed seed), so
    that batches mix classes even when the rows are sorted by class, as an
    image folder's are."""
    rows = np.asarray(rows)
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    return rows[torch.randperm(len(rows), generator=generator).numpy()]


def _batchnorm_layers(net):
    return [m for m in net.modules() if isinstance(m, BATCH_NORMS) and m.track_running_stats]


class _BatchStatistics:
    """Within the block, ``net`` normalises every batch with that batch's own
    statistics (its BatchNorm layers in training mode) and nothing else trains
    (every other module in eval mode: no dropout); on exit the modes, momenta
    and batch counts are restored. ``update=False`` also leaves the running
    statistics as they were (momentum 0)."""

    def __init__(self, net, *, update):
        self.net, self.update = net, update
        self.layers = _batchnorm_layers(net)

    def __enter__(self):
        self.modes = [(module, module.training) for module in self.net.modules()]
        self.saved = [(layer.momentum, layer.num_batches_tracked.clone())
                      for layer in self.layers]
        self.net.eval()
        for layer in self.layers:
            layer.train()
            if not self.update:
                layer.momentum = 0.0
        return self.layers

    def __exit__(self, *exc):
        for layer, (momentum, tracked) in zip(self.layers, self.saved):
            layer.momentum = momentum
            layer.num_batches_tracked.copy_(tracked)
        for module, mode in self.modes:
            module.training = mode
        return False


def adapt_batchnorm(net, pipeline, rows, *, batch_size, generator=None):
    """AdaBN (Li et al., 2018): recompute every BatchNorm layer's running mean
    and variance over ``rows`` (forward passes, no gradients, no augmentation,
    dropout off), so that prediction normalises with the target domain's
    statistics. Batches are weighted by their size, so the running mean is the
    exact mean over ``rows``; the rows are visited in a shuffled order (drawn
    from ``generator``), because the variance is the mean of the batches' own
    variances, which class-sorted batches would underestimate. Returns the
    number of layers updated."""
    layers = _batchnorm_layers(net)
    if not layers or not len(rows):
        return 0
    seen = 0
    with _BatchStatistics(net, update=True), torch.no_grad():
        for layer in layers:
            layer.reset_running_stats()
        for batch in pipeline.batches(batch_size, indices=_shuffled(rows, generator)):
            inputs = pipeline.prepare(batch)
            for layer in layers:  # a running average weighted by batch size
                layer.momentum = len(inputs) / (seen + len(inputs))
            seen += len(inputs)
            net(inputs)
    return len(layers)


def batch_statistics_logits(net, pipeline, rows, *, batch_size, generator=None):
    """Logits of ``net`` on ``rows`` (float32, in the order of ``rows``), each
    batch normalised with its own BatchNorm statistics, as AdaBN will normalise
    the target domain at prediction, and none of the network's state changed
    (running statistics, modes). The rows are visited shuffled (``generator``)
    so every batch mixes classes. A network without BatchNorm gives its
    eval-mode logits."""
    rows = np.asarray(rows)
    order = _shuffled(np.arange(len(rows)), generator)
    chunks = []
    with _BatchStatistics(net, update=False), torch.no_grad():
        for batch in pipeline.batches(batch_size, indices=rows[order]):
            logits = net(pipeline.prepare(batch))
            chunks.append(logits.float())
    logits = torch.cat(chunks)
    result = torch.empty_like(logits)
    result[torch.as_tensor(order, device=logits.device)] = logits
    return result


def validation_scores(net, pipeline, rows, targets, *, autocast_dtype, batch_size):
    """``{"valid_loss", "valid_score"}``: log loss and accuracy of ``net`` on
    the labeled ``rows``."""
    logits = run_batches(net, pipeline, autocast_dtype=autocast_dtype,
                         batch_size=batch_size, indices=rows)
    targets = targets[rows]
    log_proba = log_softmax(logits.astype(np.float64), axis=1)
    return {
        "valid_loss": float(-log_proba[np.arange(len(targets)), targets].mean()),
        "valid_score": float((logits.argmax(1) == targets).mean()),
    }

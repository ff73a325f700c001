"""Training steps: what a batch is and what its loss is.

:class:`TrainingStep` is the contract between the estimators and
:class:`~sktransfer.training.Trainer`: ``batches(epoch)`` (an iterable of the
epoch's batches, drawn from the step's own shuffling generator) and
``loss(batch)`` (a scalar, computed under autocast) are required; the other
methods have empty defaults that the trainer and the estimators call without
probing (``extra_modules``, ``epoch_metrics``, ``finish``).

* :class:`SupervisedStep`: shuffled batches of labeled rows
  ``(inputs, targets, sample_weight)``, weighted cross-entropy.
* :class:`DomainAdaptationStep`: each step a supervised source batch and a
  target batch of the same size (:func:`target_batches`), one forward pass over
  both, and the supervised loss plus ``trade_off`` times the adaptation loss.
  The adaptation loss (an :class:`~sktransfer.adaptation.AdaptationLoss`) lives
  for the whole fit, so it can keep state across steps (a teacher network, a
  running class distribution). Its ``target_augments`` say which views of each
  target batch it sees; a method that needs another kind of step (a teacher
  update, its own forward passes) names a subclass of this step as its
  ``training_step``, defined beside the loss.
"""

import dataclasses
from numbers import Real

import numpy as np
import torch

from .._utils.notes import add_note
from .._utils.runtime import run_batches
from ..inputs import PerSample
from ..inputs._text import concat_inputs
from ._batches import target_batches
from ._criteria import CrossEntropy, weighted_cross_entropy  # noqa: F401 (re-exported)
from ._distributed import Shard
from ._freeze import BATCH_NORMS


def batches_per_epoch(n_rows, batch_size, world_size=1):
    """Batches (optimizer steps) in one epoch over ``n_rows`` rows (a last batch
    that would give a rank one row is left out: see :func:`epoch_rows`)."""
    return -(-epoch_length(n_rows, batch_size, world_size) // batch_size)


def epoch_length(n_rows, batch_size, world_size=1):
    """How many of ``n_rows`` rows an epoch trains on: all, but a last batch
    that would give each of ``world_size`` ranks (one process: itself) a single
    row. BatchNorm in training mode cannot normalise one sample with a 1x1
    feature map (torch raises "Expected more than 1 value per channel"), and a
    fit should not depend on ``n_samples % batch_size``."""
    remainder = n_rows % batch_size
    if n_rows > batch_size and 0 < remainder <= world_size:
        return n_rows - remainder
    return n_rows


def epoch_rows(order, batch_size, world_size=1):
    """``order`` (an epoch's shuffled rows) cut to :func:`epoch_length`; the rows
    left out are others each epoch."""
    return order[:epoch_length(len(order), batch_size, world_size)]


@dataclasses.dataclass
class StepConfig:
    """What every step is built from.

    Attributes
    ----------
    net : ClassifierNet
        ``net(x, return_features=False)`` -> logits (and features).
    loader : BatchLoader
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
    criterion : Criterion or None
        The supervised loss and the validation scores (what the targets are:
        classes, label indicators, real values); None: cross-entropy on class
        indices with ``label_smoothing``.
    shard : Shard
        This process's part of a fit over several processes (each global batch
        of ``batch_size`` rows is split between them); ``Shard()``: one process.
    """

    net: torch.nn.Module
    loader: object
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
    criterion: object = None
    shard: Shard = Shard()

    def __post_init__(self):
        if self.criterion is None:
            self.criterion = CrossEntropy(self.label_smoothing)

    @property
    def n_batches(self):
        """Batches per epoch."""
        return batches_per_epoch(len(self.rows), self.batch_size, self.shard.world_size)


class TrainingStep:
    """Base of training steps: the part of a fit that differs between estimators.

    Subclasses implement :meth:`batches` and :meth:`loss`; the other methods
    are hooks with empty defaults. :class:`~sktransfer.training.Trainer` runs a
    step's batches through forward, backward and the optimizer, and the
    estimators call :meth:`extra_modules` (before building the optimizer) and
    :meth:`finish` (once the epochs are done).

    Parameters
    ----------
    config : StepConfig
        What the step is built from: the network, the data, the batch size,
        the shuffling generator, the device.

    Attributes
    ----------
    config : StepConfig
    net : nn.Module
        ``config.net``.
    generator : torch.Generator
        ``config.generator``: shuffles the batches (saved by checkpoints).
    """

    def __init__(self, config):
        self.config = config
        self.net = config.net
        self.generator = config.generator

    def batches(self, epoch):
        """The batches of epoch ``epoch`` (counted from 0 over the estimator's
        whole history), each passed to :meth:`loss` as it is."""
        raise NotImplementedError(f"{type(self).__name__} must implement batches(epoch).")

    def loss(self, batch):
        """The scalar loss of one batch (called under autocast); the trainer
        runs its backward pass."""
        raise NotImplementedError(f"{type(self).__name__} must implement loss(batch).")

    def extra_modules(self):
        """Modules trained besides the network, by name (a discriminator); they
        join the optimizer at the head's learning rate. None by default."""
        return {}

    def epoch_metrics(self):
        """Values the epoch's history record gets besides the loss (the parts
        of a composite loss); called once after each epoch. Values are
        numbers, strings, None, or lists and dicts of them (what a history
        record holds, and a checkpoint writes as JSON); a one-element tensor or
        numpy scalar is recorded as a Python number; the keys are not the
        loop's own (``epoch``, ``train_loss``, ...). None by default."""
        return {}

    def finish(self):
        """Called once the fit's epochs are done, not after an interruption
        (AdaBN's target statistics). Nothing by default."""


class SupervisedStep(TrainingStep):
    """Shuffled batches of the labeled rows and their weighted cross-entropy.

    A per-sample ``augment`` runs where the images are decoded, through a
    loader of the step's own (validation and prediction keep the plain one);
    ``mix`` mixes each batch and turns its targets into class probabilities.

    Parameters
    ----------
    config : StepConfig
    """

    def __init__(self, config):
        super().__init__(config)
        self._targets = torch.as_tensor(config.targets, dtype=config.criterion.target_dtype)
        self._weights = torch.as_tensor(config.sample_weight, dtype=torch.float32)
        if isinstance(config.augment, PerSample):
            self._loader = config.loader.with_transform(config.augment)
            self._batch_augment = None
        else:
            self._loader, self._batch_augment = config.loader, config.augment

    def batches(self, epoch):
        """``(inputs, targets, sample_weight)`` on the device, the rows reshuffled
        (targets: class indices, or class probabilities when ``mix`` is set)."""
        config, size = self.config, self.config.batch_size
        order = config.rows[torch.randperm(len(config.rows), generator=self.generator).numpy()]
        order = epoch_rows(order, size, config.shard.world_size)
        if config.shard.distributed:
            yield from self._sharded_batches(order)
            return
        loader, device = self._loader, config.device
        for start, batch in zip(range(0, len(order), size),
                                loader.batches(size, indices=order)):
            index = torch.as_tensor(order[start:start + size])
            batch = (loader.prepare(batch, augment=self._batch_augment),
                     self._targets[index].to(device, non_blocking=True),
                     self._weights[index].to(device, non_blocking=True))
            yield batch if config.mix is None else config.mix(*batch)

    def _sharded_batches(self, order):
        """This rank's part of each global batch of ``order`` (padding rows
        weigh nothing), with the loss scale that makes the ranks' average the
        global batch's loss (see :mod:`sktransfer.training._distributed`)."""
        config, shard = self.config, self.config.shard
        loader, device = self._loader, config.device
        parts = shard.split(order, config.batch_size)
        local_order = np.concatenate([local for _, local, _ in parts])
        batches = loader.batches(shard.local_size(config.batch_size), indices=local_order)
        for (rows, local, keep), batch in zip(parts, batches):
            index = torch.as_tensor(local)
            weights = self._weights[index]
            weights = weights * torch.as_tensor(keep).reshape(-1, *[1] * (weights.ndim - 1))
            self._loss_scale = shard.loss_scale(float(weights.sum()),
                                                float(self._weights[torch.as_tensor(rows)].sum()))
            batch = (loader.prepare(batch, augment=self._batch_augment),
                     self._targets[index].to(device, non_blocking=True),
                     weights.to(device, non_blocking=True))
            yield batch if config.mix is None else config.mix(*batch)

    def criterion(self, logits, targets, sample_weight):
        """The supervised loss of a batch: ``config.criterion`` (scaled by the
        rank's share of the global batch in a fit over several processes)."""
        loss = self.config.criterion(logits, targets, sample_weight)
        if self.config.shard.distributed:
            loss = loss * self._loss_scale
        return loss

    def loss(self, batch):
        inputs, targets, sample_weight = batch
        return self.criterion(self.net(inputs), targets, sample_weight)


class DomainAdaptationStep(SupervisedStep):
    """A source batch and a target batch each step, and the adaptation loss.

    Parameters
    ----------
    config : StepConfig
    adaptation : AdaptationLoss
        ``adaptation(features_s, logits_s, features_t, logits_t) -> scalar``
        (see :class:`~sktransfer.adaptation.AdaptationLoss`); its ``progress``
        is set before every step (0 -> 1 over the fit).
    target_rows : ndarray of int
        The rows of the target domain.
    trade_off : float
        Weight of the adaptation loss.
    adabn : bool, default=False
        At the end of the fit, replace the BatchNorm statistics by those of the
        target rows (:func:`adapt_batchnorm`).
    """

    def __init__(self, config, *, adaptation, target_rows, trade_off, adabn=False):
        super().__init__(config)
        self.adaptation = adaptation
        self.trade_off = float(trade_off)
        self.target_rows = target_rows
        self.adabn = adabn
        self._targets_stream = self.target_stream()
        self._total_steps = max(config.epochs * config.n_batches, 1)
        self._sums, self._steps = None, 0

    def target_stream(self):
        """The endless stream of raw target batches the steps draw from
        (:func:`target_batches`); a subclass that needs each batch's rows
        returns ``target_batches(..., with_rows=True)``."""
        config = self.config
        return target_batches(config.loader, self.target_rows, config.batch_size,
                              self.generator, shard=config.shard)

    def record(self, supervised, adapt):
        """Add a step's two losses to the epoch's sums (on the device: no host
        sync per step), for :meth:`epoch_metrics`."""
        parts = (supervised.detach(), torch.as_tensor(adapt).detach().float())
        self._sums = parts if self._sums is None else tuple(
            total + part for total, part in zip(self._sums, parts))
        self._steps += 1

    def progress(self, epoch, step):
        """Share of the fit done at ``step`` of ``epoch`` (0 -> 1)."""
        done = (epoch - self.config.first_epoch) * self.config.n_batches
        return min((done + step) / self._total_steps, 1.0)

    def epoch_metrics(self):
        """The epoch's mean supervised loss and mean (unweighted) adaptation loss,
        for the history; resets the sums for the next epoch."""
        if not self._steps:
            return {}
        supervised, adaptation = (float(total) / self._steps for total in self._sums)
        self._sums, self._steps = None, 0
        return {"supervised_loss": supervised, "adaptation_loss": adaptation}

    def extra_modules(self):
        """The adaptation loss (its discriminator trains with the network)."""
        return {"adaptation": self.adaptation}

    def target_views(self, raw):
        """The target batch as network input: one view per entry of the
        adaptation loss's ``target_augments`` (callables on float batches in
        [0, 1], or None for no augmentation), or, when it has none, one view
        augmented by the estimator's ``augment``."""
        augments = self.adaptation.target_augments
        if augments is None:
            return [self.config.loader.prepare(raw, augment=self.config.augment)]
        views = []
        for i, augment in enumerate(augments):
            try:
                views.append(self.config.loader.prepare(raw, augment=augment))
            except Exception as exc:
                add_note(exc,
                    f"Raised by target_augments[{i}] of {type(self.adaptation).__name__}, "
                    f"on a batch of {type(raw).__name__}: a loss whose views work on "
                    "some inputs only declares them in its modalities (the estimator "
                    "then refuses the others before training).")
                raise
        return views

    def supervised_batches(self, epoch):
        """The source batches of :class:`SupervisedStep`."""
        return super().batches(epoch)

    def batches(self, epoch):
        """``(supervised batch, target views, progress)`` for each step."""
        for step, supervised in enumerate(self.supervised_batches(epoch)):
            views = self.target_views(next(self._targets_stream))
            yield supervised, views, self.progress(epoch, step)

    def finish(self):
        """AdaBN on the target rows when ``adabn``."""
        if self.adabn:
            adapt_batchnorm(self.net, self.config.loader, self.target_rows,
                            batch_size=self.config.batch_size, generator=self.generator)

    def forward(self, inputs):
        """``(logits, features)`` of the network on ``inputs``, in float32."""
        logits, features = self.net(inputs, return_features=True)
        return logits.float(), features.float()

    def loss(self, batch):
        (inputs, targets, sample_weight), views, progress = batch
        self.adaptation.progress = progress
        n_source = len(inputs)
        # One forward over both domains (and every target view): one pass per
        # step, and BatchNorm normalises with statistics of the mixture, whose
        # running averages are what predict() uses on target data.
        logits, features = self.forward(concat_inputs([inputs, *views]))
        supervised = self.criterion(logits[:n_source], targets, sample_weight)
        # The loss sees (features, logits) of the source batch, then of each
        # target view in order: fs, ls, ft, lt[, ft2, lt2, ...].
        parts = []
        for chunk in zip(features.split([n_source, *map(len, views)]),
                         logits.split([n_source, *map(len, views)])):
            parts.extend(chunk)
        adapt = self.adaptation(*parts)
        if not (isinstance(adapt, torch.Tensor) and adapt.numel() == 1
                or isinstance(adapt, Real) and not isinstance(adapt, bool)):
            shown = (f"a tensor of shape {tuple(adapt.shape)}"
                     if isinstance(adapt, torch.Tensor) else repr(adapt)[:80])
            raise TypeError(f"method={self.adaptation!r:.200} returned {shown}: an "
                            "adaptation loss returns a scalar (a 0-d tensor); reduce it "
                            "with .mean() or .sum().")
        self.record(supervised, adapt)
        return supervised + self.trade_off * adapt


class SourceOnlyStep(SupervisedStep):
    """:class:`SupervisedStep` on the labeled rows, with AdaBN on the target
    rows at the end of the fit (``method="source_only", adabn=True``)."""

    def __init__(self, config, *, target_rows):
        super().__init__(config)
        self.target_rows = target_rows

    def finish(self):
        adapt_batchnorm(self.net, self.config.loader, self.target_rows,
                        batch_size=self.config.batch_size, generator=self.generator)


def _shuffled(rows, generator):
    """``rows`` in a random order (drawn from ``generator``, or a fixed seed), so
    that batches mix classes even when the rows are sorted by class, as an
    image folder's are."""
    rows = np.asarray(rows)
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    return rows[torch.randperm(len(rows), generator=generator).numpy()]


def _statistics_batches(loader, rows, batch_size):
    """The batches of ``rows`` (in that order) for a pass in BatchNorm's
    training mode, none of a single row: a layer that sees one value per
    channel (a 1 x 1 feature map, a BatchNorm1d) cannot normalise one row, so a
    last row left alone joins the batch before it."""
    rows = np.asarray(rows)
    if len(rows) > batch_size and len(rows) % batch_size == 1:
        head, tail = rows[:-(batch_size + 1)], rows[-(batch_size + 1):]
        if len(head):
            yield from loader.batches(batch_size, indices=head)
        yield from loader.batches(batch_size + 1, indices=tail)
    else:
        yield from loader.batches(batch_size, indices=rows)


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


def adapt_batchnorm(net, loader, rows, *, batch_size, generator=None):
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
        for batch in _statistics_batches(loader, _shuffled(rows, generator), batch_size):
            inputs = loader.prepare(batch)
            for layer in layers:  # a running average weighted by batch size
                layer.momentum = len(inputs) / (seen + len(inputs))
            seen += len(inputs)
            net(inputs)
    return len(layers)


def batch_statistics_logits(net, loader, rows, *, batch_size, generator=None):
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
        for batch in _statistics_batches(loader, rows[order], batch_size):
            logits = net(loader.prepare(batch))
            chunks.append(logits.float())
    logits = torch.cat(chunks)
    result = torch.empty_like(logits)
    result[torch.as_tensor(order, device=logits.device)] = logits
    return result


def validation_scores(net, loader, rows, targets, *, autocast_dtype, batch_size,
                      criterion=None, shard=Shard(), sample_weight=None):
    """``{"valid_loss", "valid_score"}`` of ``net`` on the labeled ``rows``, as
    ``criterion`` reports them (None: log loss and accuracy of class indices),
    each row weighed by its ``sample_weight`` (the loss weights of every row;
    None: equal weights).
    Over several processes each rank runs its part of ``rows`` and the outputs
    are gathered back in order, so every rank reports the same scores."""
    local = np.array_split(np.asarray(rows), shard.world_size)[shard.rank]
    outputs = run_batches(net, loader, autocast_dtype=autocast_dtype,
                          batch_size=batch_size, indices=local) if len(local) else None
    if shard.distributed:
        outputs = shard.gather_rows(
            outputs if outputs is not None else np.empty((0, 0), dtype=np.float32))
    return (criterion or CrossEntropy()).scores(
        outputs, targets[rows], None if sample_weight is None else sample_weight[rows])

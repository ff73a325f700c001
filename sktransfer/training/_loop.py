"""The training loop both classifiers share: fit -> epoch -> train step.

No scikit-learn here. The estimators hand the :class:`Trainer` a module, an
optimizer and a *step* (a :class:`~sktransfer.training.TrainingStep`:
``batches(epoch)``, the training batches of an epoch, and ``loss(batch)``, the
scalar loss of one); the trainer owns the rest: mixed precision,
gradient scaling and clipping, the learning-rate schedule (stepped per batch or
per epoch), the history, clean interruption, and the callbacks (progress, early
stopping, checkpoints, the user's) that it calls at each point of the fit.
"""

import dataclasses
import time

import numpy as np
import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau

from .._utils.caller import warn
from .._utils.device import autocast
from ._callbacks import call_hook, snapshot
from ._distributed import Shard
from ._freeze import frozen_batchnorm_to_eval
from ._setup import INTERVALS
from ._steps import TrainingStep


@dataclasses.dataclass
class TrainingState:
    """What callbacks see of a fit in progress.

    Attributes
    ----------
    module : nn.Module
        What trains (the network, and the adaptation loss's own parameters).
    optimizer : torch.optim.Optimizer
    scheduler : LRScheduler or None
    history : list of dict
        One record per finished epoch: ``epoch`` (from 1), ``train_loss``,
        ``valid_loss``, ``valid_score``, ``lr``, ``duration``, and what the
        step's ``epoch_metrics()`` adds (``supervised_loss`` and
        ``adaptation_loss`` for domain adaptation).
    epoch : int
        The epoch about to train or training (from 0; ``len(history)`` between
        epochs).
    end_epoch : int
        The epoch the fit stops before.
    n_batches : int
        Batches per epoch.
    generator : torch.Generator or None
        The random generator that shuffles the batches.
    stop_training : bool
        Set it to True to end the fit after the current epoch.
    interrupted : bool
        Whether a KeyboardInterrupt stopped the fit (the module then holds the
        weights of the last finished epoch).
    error : BaseException or None
        The exception that ended the fit, which ``fit`` raises again once the
        callbacks' ``on_fit_end`` ran; None for a fit that finished, stopped
        early or was interrupted.
    fingerprint : callable or None
        ``fingerprint()`` returns a digest (str) of everything that defines the
        fit: the estimator, its parameters, the data and the seed. Computed
        only when called; :class:`~sktransfer.training.Checkpoint` resumes only
        a fit with the same digest. None when the caller gives none.
    callbacks : tuple of Callback
        The fit's callbacks, in the order they run (a checkpoint saves and
        restores what their ``state_dict`` holds).
    stopped_by : Callback or None
        The callback that set ``stop_training`` first; None while nothing did.
    distributed : bool
        Whether the fit runs over several processes (rank 0 alone runs the
        callbacks that write, such as a checkpoint).
    """

    module: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    history: list
    epoch: int
    end_epoch: int
    n_batches: int
    generator: object = None
    stop_training: bool = False
    interrupted: bool = False
    error: BaseException | None = None
    fingerprint: object = None
    callbacks: tuple = ()
    stopped_by: object = None
    distributed: bool = False


class Trainer:
    """Runs epochs of a step over a module.

    Parameters
    ----------
    module : nn.Module
        Already on ``device``.
    optimizer : torch.optim.Optimizer
    device : torch.device
    autocast_dtype : torch.dtype or None
        Mixed precision (bf16 or fp16), or None for float32. fp16 uses a
        ``GradScaler``.
    scheduler : LRScheduler or None
        The learning-rate schedule, stepped as ``scheduler_interval`` says.
    scheduler_interval : {"batch", "epoch"}, default="batch"
        ``"batch"``: step the schedule after every optimizer step; ``"epoch"``:
        after each epoch and its validation (:meth:`step_schedule`).
    grad_clip : float or None
        Maximum gradient norm.
    callbacks : list of Callback
        Called in order at each hook. In a fit over several processes, those
        whose ``main_process_only`` is true (writers of files and logs) run on
        rank 0 only.
    shard : Shard, default=Shard()
        This process's place in a fit over several processes. Then the
        network's gradients are averaged by DistributedDataParallel (the step's
        ``net`` is wrapped in it), ``sync_parameters``' by the trainer; every
        record holds the ranks' mean losses, so every rank writes the same
        history; rank 0's BatchNorm statistics are sent to every rank after each
        epoch (validation scores the model that is kept); a stop asked on one
        rank stops all; and what rank 0's callbacks restore at ``on_fit_begin``
        (a checkpoint) is sent to every rank.
    sync_parameters : list of Parameter, default=()
        Parameters trained outside the network (an adaptation loss's
        discriminator), whose gradients are averaged over the ranks each step.
    """

    def __init__(self, module, optimizer, *, device, autocast_dtype=None, scheduler=None,
                 scheduler_interval="batch", grad_clip=None, callbacks=(), shard=Shard(),
                 sync_parameters=()):
        if scheduler_interval not in INTERVALS:
            raise ValueError(f"scheduler_interval={scheduler_interval!r} is not one of "
                             f"{INTERVALS}.")
        self.module = module
        self.optimizer = optimizer
        self.device = device
        self.autocast_dtype = autocast_dtype
        self.scheduler = scheduler
        self.scheduler_interval = scheduler_interval
        self.grad_clip = grad_clip
        self.shard = shard
        self.sync_parameters = list(sync_parameters)
        self.callbacks = [callback for callback in callbacks
                          if shard.is_main or not callback.main_process_only]
        use_scaler = autocast_dtype == torch.float16 and device.type == "cuda"
        self.scaler = torch.amp.GradScaler(device.type) if use_scaler else None

    # -- one step ------------------------------------------------------------
    def train_step(self, batch, loss_fn):
        """Forward, backward and optimizer step on one batch; returns the loss."""
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device, self.autocast_dtype):
            loss = loss_fn(batch)
        if not (isinstance(loss, torch.Tensor) and loss.numel() == 1
                and loss.is_floating_point()):
            what = (f"a tensor of shape {tuple(loss.shape)} and dtype {loss.dtype}"
                    if isinstance(loss, torch.Tensor) else f"a {type(loss).__name__}")
            raise TypeError(
                f"{getattr(loss_fn, '__qualname__', 'the step loss')}(batch) returned "
                f"{what}: a step's loss is one float tensor of one element that "
                "backward() runs from (reduce a per-sample loss with .mean(); return "
                "the sum of a composite loss, and its parts from epoch_metrics()).")
        loss = loss.reshape(())  # a (1,) loss sums as a number in the epoch's mean
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            # averaged before unscaling: every rank then finds the same
            # overflows and skips the same steps
            self.shard.average_gradients(self.sync_parameters)
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
            self.shard.average_gradients(self.sync_parameters)
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(
                [p for p in self.module.parameters() if p.grad is not None], self.grad_clip
            )
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        if self.scheduler is not None and self.scheduler_interval == "batch":
            self.scheduler.step()
        return loss.detach()

    def step_schedule(self, record):
        """Step a per-epoch schedule after the epoch of ``record``: ReduceLROnPlateau
        on the record's ``valid_loss``, or ``train_loss`` without validation."""
        if self.scheduler is None or self.scheduler_interval != "epoch":
            return
        if isinstance(self.scheduler, ReduceLROnPlateau):
            loss = record.get("valid_loss")
            self.scheduler.step(record["train_loss"] if loss is None else loss)
        else:
            self.scheduler.step()

    # -- one epoch -----------------------------------------------------------
    def train_epoch(self, batches, loss_fn, state):
        """Train on every batch; returns the mean training loss."""
        self.module.train()
        frozen_batchnorm_to_eval(self.module)
        total, count = None, 0
        for batch in batches:
            loss = self.train_step(batch, loss_fn)
            total = loss if total is None else total + loss  # no host sync per step
            count += 1
            call_hook(self.callbacks, "on_batch_end", state, loss=loss)
        return float(total) / count if count else float("nan")

    # -- the loop ------------------------------------------------------------
    def fit(self, step, *, epochs, n_batches, history=None, validate=None, start_epoch=0,
            generator=None, fingerprint=None):
        """Run ``epochs`` epochs of ``step``.

        Parameters
        ----------
        step : TrainingStep
            ``step.batches(epoch)`` returns the batches of that epoch and
            ``step.loss(batch)`` the scalar loss of one (under autocast);
            ``step.epoch_metrics()`` adds to each epoch's record.
        epochs : int
        n_batches : int
            Batches per epoch (for progress bars and schedules).
        history : list of dict
            Appended with one record per finished epoch (see :class:`TrainingState`).
        validate : callable or None
            ``validate()`` returns ``{"valid_loss": ..., "valid_score": ...}``.
        start_epoch : int
            Number of the first epoch (continuing training).
        generator : torch.Generator or None
            The step's shuffling generator, for callbacks that save it.
        fingerprint : callable or None
            See :attr:`TrainingState.fingerprint`.

        Returns
        -------
        state : TrainingState
            ``state.interrupted`` tells whether a KeyboardInterrupt stopped it.

        Raises
        ------
        Exception
            What a step or a callback raised (but a KeyboardInterrupt), once the
            module is in eval mode and every callback's ``on_fit_end`` ran with
            ``state.error`` set, so that loggers close their runs.
        """
        if not isinstance(step, TrainingStep):
            raise TypeError(f"step={step!r:.100} is not a sktransfer.training.TrainingStep: "
                            "subclass it (batches(epoch) and loss(batch)).")
        state = TrainingState(
            module=self.module, optimizer=self.optimizer, scheduler=self.scheduler,
            history=[] if history is None else history, epoch=start_epoch,
            end_epoch=start_epoch + epochs, n_batches=n_batches, generator=generator,
            fingerprint=fingerprint, callbacks=tuple(self.callbacks),
            distributed=self.shard.distributed,
        )
        before = (len(state.history), state.epoch)
        call_hook(self.callbacks, "on_fit_begin", state)
        if self.shard.any(before != (len(state.history), state.epoch)):
            self._share_resumed_state(state)
        # A callback of rank 0 may end the fit before it starts (a checkpoint of
        # a finished fit): every rank then skips the loop.
        state.stop_training = self.shard.any(state.stop_training)
        last_finished = snapshot(self.module)
        # A continued fit trains its network in place: its starting weights (the
        # snapshot above, which each epoch replaces rather than changes) to put
        # back if it diverges; a new fit's network is dropped anyway.
        start_weights = last_finished if state.history else None
        try:
            while state.epoch < state.end_epoch and not state.stop_training:
                call_hook(self.callbacks, "on_epoch_begin", state)
                start = time.perf_counter()
                lr = self.optimizer.param_groups[-1]["lr"]
                train_loss = self.train_epoch(step.batches(state.epoch), step.loss, state)
                self._check_finite(state.epoch + 1, train_loss, start_weights)
                record = {"epoch": state.epoch + 1, "train_loss": train_loss,
                          "valid_loss": None, "valid_score": None, "lr": lr}
                # a step's parts of the loss, as plain numbers (a 0-d tensor would
                # keep the history from being saved, and print as a tensor)
                record.update(_epoch_metrics(step, record))
                if self.shard.distributed:
                    # the same history on every rank, and validation of the
                    # model that is kept: rank 0's BatchNorm statistics
                    record.update(self.shard.mean_values(record))
                    self.shard.broadcast_buffers(self.module)
                if validate is not None:
                    self.module.eval()
                    record.update(validate())
                record["duration"] = time.perf_counter() - start
                state.history.append(record)
                self.step_schedule(record)
                last_finished = snapshot(self.module)
                state.epoch += 1
                call_hook(self.callbacks, "on_epoch_end", state)
                state.stop_training = self.shard.any(state.stop_training)
        except KeyboardInterrupt:
            self.module.load_state_dict(last_finished)
            state.interrupted = True
        except BaseException as exc:
            state.error = exc
            self.module.eval()
            _end_after_failure(self.callbacks, state)
            raise
        finally:
            self.module.eval()
        call_hook(self.callbacks, "on_fit_end", state)
        return state


    def _check_finite(self, epoch, train_loss, start):
        """Raise, as scikit-learn's MLP does, when the weights are no longer
        finite after ``epoch``: the fit diverged, and every later epoch and
        prediction would be NaN. A continued fit's network gets its ``start``
        weights back first. (A mixed-precision step that overflows is skipped by
        the gradient scaler and leaves the weights finite.)"""
        by_device = {}
        for parameter in self.module.parameters():
            by_device.setdefault(parameter.device, []).append(
                torch.isfinite(parameter).all())
        if all(bool(torch.stack(checks).all()) for checks in by_device.values()):
            return
        if start is not None:
            self.module.load_state_dict(start)
        raise ValueError(
            f"training diverged: the weights are not finite after epoch {epoch} "
            f"(training loss {train_loss}). Lower lr, set grad_clip, scale the "
            "input, or check a custom loss for NaN or inf.")

    def _share_resumed_state(self, state):
        """After ``on_fit_begin`` of a fit over several processes, when rank
        0's callbacks resumed it (a checkpoint): send rank 0's weights,
        optimizer, schedule, history, epochs and shuffling state to every rank."""
        saved = self.shard.broadcast({
            "module": self.module.state_dict() if self.shard.is_main else None,
            "optimizer": self.optimizer.state_dict() if self.shard.is_main else None,
            "scheduler": (self.scheduler.state_dict()
                          if self.shard.is_main and self.scheduler is not None else None),
            "history": state.history, "epoch": state.epoch, "end_epoch": state.end_epoch,
            "generator": (state.generator.get_state()
                          if self.shard.is_main and state.generator is not None else None),
        })
        if self.shard.is_main:
            return
        self.module.load_state_dict(saved["module"])
        self.optimizer.load_state_dict(saved["optimizer"])
        if saved["scheduler"] is not None:
            self.scheduler.load_state_dict(saved["scheduler"])
        state.history[:] = saved["history"]
        state.epoch, state.end_epoch = saved["epoch"], saved["end_epoch"]
        if saved["generator"] is not None:
            state.generator.set_state(saved["generator"])


def _epoch_metrics(step, record):
    """``step.epoch_metrics()`` as a record holds them (see
    :func:`_record_value`), checked: its own keys are the loop's."""
    metrics = {}
    for key, value in (step.epoch_metrics() or {}).items():
        where = f"{type(step).__name__}.epoch_metrics()[{key!r}]"
        if key in record or key == "duration":
            raise ValueError(f"{where}: {key!r} is a key the loop writes in each "
                             "epoch's record; name the value otherwise.")
        metrics[key] = _record_value(_plain_number(value), where)
    return metrics


def _record_value(value, where):
    """``value`` as a history record holds it: what JSON writes (a checkpoint's
    history), a log prints and a safe file stores. Numbers (numpy's float64, a
    float, included), strings and None, in lists (a tuple becomes one, as JSON
    gives it back on resume) and dicts of str keys; a TypeError naming
    ``where`` (the key whose value is or holds it) for anything else."""
    if isinstance(value, (list, tuple)):
        return [_record_value(item, where) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: _record_value(item, where) for key, item in value.items()}
    if isinstance(value, (int, float, str, type(None))):
        return value
    shape = getattr(value, "shape", None)
    raise TypeError(
        f"{where} is a {type(value).__name__}"
        f"{'' if shape is None else f' of shape {tuple(shape)}'}: a history record "
        "holds numbers, strings, None, and lists and dicts of them (a one-element "
        "tensor or array becomes a number): reduce it, or .tolist() it.")


def _plain_number(value):
    """A one-element tensor or array, or a numpy scalar, as a Python number;
    anything else as it is."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, np.ndarray) and value.size == 1:
        return value.item()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _end_after_failure(callbacks, state):
    """Call every callback's ``on_fit_end`` after the fit failed with
    ``state.error``; one that fails too is reported as a warning, so that the
    others still run and the fit's own error is the one raised."""
    for callback in callbacks:
        try:
            callback.on_fit_end(state)
        except Exception as exc:
            warn(
                f"{callback!r:.100}.on_fit_end failed after the fit failed "
                f"({type(exc).__name__}: {exc}); the fit's own error follows.",
                RuntimeWarning,
            )

"""Callbacks: objects with no-op hooks that the training loop calls.

A callback sees the :class:`~sktransfer.training.TrainingState` at five points
of a fit (``on_fit_begin``, ``on_epoch_begin``, ``on_batch_end``,
``on_epoch_end``, ``on_fit_end``): the module, the history, the epoch, the loss
of the last batch. Setting ``state.stop_training = True`` ends the fit after the
current epoch. Hooks take keyword arguments after ``state`` and accept
``**kwargs``, so a later version can pass more without breaking a callback.

The estimators build their own callbacks under names (``"freeze"``,
``"progress_bar"``, ``"epoch_logger"``, ``"early_stopping"``) before the
user's ``callbacks=``, which are copied at each ``fit`` and never changed by
it; a user's ``(name, callback)`` pair replaces the default of that name, and
``(name, None)`` drops it.
"""

import json
import os
import time
from numbers import Integral, Real

import numpy as np
import torch

from .._utils.caller import warn
from .._utils.files import replacing
from ._freeze import head_warmup, set_trainable

HOOKS = ("on_fit_begin", "on_epoch_begin", "on_batch_end", "on_epoch_end", "on_fit_end")


class Callback:
    """Base of callbacks: every hook is a no-op; override the ones you need.

    Each hook receives ``state``, a :class:`~sktransfer.training.TrainingState`,
    and keyword arguments: ``on_batch_end`` gets ``loss``, the batch's loss as a
    0-d tensor (read it with ``float(loss)``, which waits for the device).
    Accept ``**kwargs`` in your hooks, so that arguments added later do not
    break them. Store constructor arguments as given (``clone`` copies them);
    state a callback builds during a fit ends with an underscore and is set in
    ``on_fit_begin``.

    Examples
    --------
    A callback that ends the fit once the training loss is low enough:

    >>> from sktransfer.training import Callback
    >>> class StopBelow(Callback):
    ...     def __init__(self, threshold=0.05):
    ...         self.threshold = threshold  # stored as given: clone copies it
    ...
    ...     def on_epoch_end(self, state, **kwargs):
    ...         if state.history[-1]["train_loss"] < self.threshold:
    ...             state.stop_training = True
    >>> StopBelow(0.1)
    StopBelow(threshold=0.1)

    Pass it as ``FineTuneClassifier(callbacks=[StopBelow(0.1)])``. To log
    epochs to TensorBoard or MLflow, use
    :class:`~sktransfer.training.TensorBoardLogger` and
    :class:`~sktransfer.training.MLflowLogger`.
    """

    #: In a fit over several processes (``devices=2`` and more), whether this
    #: callback runs on rank 0 only. Writers of files and logs (checkpoints,
    #: loggers, progress bars) set it; a callback that decides something (stops
    #: the fit, freezes layers) runs on every rank, and sees the same history on
    #: each.
    main_process_only = False

    def check_params(self, **kwargs):
        """Called when an estimator's fit starts, before any data is read or
        network built (with no arguments yet: accept ``**kwargs`` all the same):
        raise ``ValueError`` (or ``TypeError``) naming a bad constructor
        argument, so the user hears of it before the expensive work. The
        default checks nothing."""

    def on_fit_begin(self, state, **kwargs):
        """Before the first epoch (the network, optimizer and schedule are built)."""

    def on_epoch_begin(self, state, **kwargs):
        """Before epoch ``state.epoch`` (counted from 0) trains."""

    def on_batch_end(self, state, *, loss=None, **kwargs):
        """After each optimizer step; ``loss`` is the batch's loss (0-d tensor)."""

    def on_epoch_end(self, state, **kwargs):
        """After an epoch and its validation; ``state.history[-1]`` is its record."""

    def on_fit_end(self, state, **kwargs):
        """After the last epoch, an early stop, an interruption
        (``state.interrupted``), or an error (``state.error``, raised again
        after this hook)."""

    def state_dict(self):
        """What this callback has learned of the fit so far, for a
        :class:`~sktransfer.training.Checkpoint` to save with the training
        state, so that a resumed fit continues it (early stopping's best epoch
        and count): tensors and plain containers (dict, list, str, numbers,
        None), or None for nothing to keep; it is written with the training
        state after every epoch (early stopping's holds a copy of the best
        weights). The default keeps nothing."""
        return None

    def load_state_dict(self, state_dict):
        """Take back what :meth:`state_dict` returned, when a checkpointed fit
        resumes: in the checkpoint's ``on_fit_begin``, after this callback's
        own (a callback that has a state goes before the checkpoint), and only
        into a callback of the same class and settings. The default does
        nothing."""

    def __repr__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items()
                           if not k.startswith("_") and not k.endswith("_"))
        return f"{type(self).__name__}({params})"


def _bad_callback(i, callback):
    return ValueError(
        f"callbacks[{i}] = {callback!r:.100} is not a callback: pass instances of a "
        "subclass of sktransfer.training.Callback, or (name, callback) pairs (a "
        "default's name replaces it; (name, None) drops it)."
    )


def check_callbacks(callbacks):
    """The user's ``callbacks=`` as a list of ``(name, callback or None)``,
    each checked; unnamed callbacks get their class name (``"Checkpoint"``,
    then ``"Checkpoint_1"``, ...)."""
    if callbacks is None:
        return []
    named, seen = [], set()
    for i, item in enumerate(callbacks):
        if isinstance(item, tuple):
            if len(item) != 2 or not isinstance(item[0], str):
                raise _bad_callback(i, item)
            name, callback = item
            if callback is not None and not isinstance(callback, Callback):
                raise _bad_callback(i, item)
            if name in seen:
                raise ValueError(f"callbacks[{i}]: the name {name!r} is given twice.")
        elif isinstance(item, Callback):
            name, callback = type(item).__name__, item
            suffix = 0
            while name in seen:
                suffix += 1
                name = f"{type(item).__name__}_{suffix}"
        else:
            raise _bad_callback(i, item)
        seen.add(name)
        named.append((name, callback))
    return named


def merge_callbacks(defaults, callbacks):
    """The callbacks of a fit, in order: the ``defaults`` (``(name, callback)``
    pairs), each replaced by the user's callback of the same name or dropped
    by ``(name, None)``, then the user's other callbacks."""
    user = check_callbacks(callbacks)
    by_name = dict(user)
    merged = [by_name.pop(name, callback) for name, callback in defaults]
    default_names = {name for name, _ in defaults}
    merged += [callback for name, callback in user if name not in default_names]
    return [callback for callback in merged if callback is not None]


def _check_bool(callback, name):
    value = getattr(callback, name)
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{type(callback).__name__}({name}={value!r}): must be True or False.")


def _check_monitor(callback):
    if not isinstance(callback.monitor, str):
        raise TypeError(f"{type(callback).__name__}(monitor={callback.monitor!r}): must "
                        "be the name of a history key, such as 'valid_loss'.")


def check_folder(owner, name, folder):
    """Refuse ``folder`` (a constructor argument of ``owner`` named ``name``)
    unless it is a path whose existing part is a folder: a writer would fail on
    it after the network is built."""
    if not isinstance(folder, (str, os.PathLike)):
        raise TypeError(f"{type(owner).__name__}({name}={folder!r}): must be a path "
                        "(str or path-like).")
    path = os.path.abspath(os.fsdecode(folder).split("{fingerprint}")[0] or ".")
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    if not os.path.isdir(path):
        raise ValueError(f"{type(owner).__name__}({name}={os.fspath(folder)!r}): {path!r} "
                         "is a file, not a folder.")


def _improves(value, best, lower_is_better, min_delta=0.0):
    """Whether a monitored ``value`` beats ``best`` by more than ``min_delta``."""
    if lower_is_better:
        return value < best - min_delta
    return value > best + min_delta


def call_hook(callbacks, hook, state, **kwargs):
    """Call ``hook`` on every callback, in order; the first callback that asks
    the fit to stop is ``state.stopped_by``."""
    for callback in callbacks:
        stopping = state.stop_training
        getattr(callback, hook)(state, **kwargs)
        if state.stop_training and not stopping and state.stopped_by is None:
            state.stopped_by = callback


def _callback_key(callback):
    """What tells a callback's settings apart across processes: its class and
    its public attributes but the callables and None (``log=print`` or
    ``log=None``: printing changes nothing learned, and a function's repr holds
    its address)."""
    kind = type(callback)
    settings = ", ".join(
        f"{key}={float(value)!r}" if isinstance(value, Real) and not isinstance(value, bool)
        else f"{key}={value!r}"  # 0 and 0.0 alike
        for key, value in sorted(vars(callback).items())
        if not key.startswith("_") and not key.endswith("_")
        and value is not None and not callable(value))
    return f"{kind.__module__}.{kind.__qualname__}({settings})"


def _by_occurrence(callbacks):
    """``((class name, k), callback)``: the k-th callback of its class, which
    matches a saved state to its callback whatever other callbacks the fit
    has (a progress bar, a logger)."""
    seen = {}
    for callback in callbacks:
        name = type(callback).__name__
        seen[name] = seen.get(name, -1) + 1
        yield (name, seen[name]), callback


_PLAIN = (str, int, float, bool, type(None))


def _plain(value, callback, path="state_dict()"):
    """``value`` when it holds only what ``torch.load(weights_only=True)``
    reads back (tensors, str, int, float, bool, None, in dicts of str or int
    keys, lists and tuples), else a TypeError naming the callback and entry."""
    if isinstance(value, dict):
        for key, item in value.items():
            if type(key) not in (str, int):
                raise TypeError(f"{type(callback).__name__}.{path} has the key {key!r}: "
                                "a checkpoint holds str and int keys.")
            _plain(item, callback, f"{path}[{key!r}]")
        return value
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _plain(item, callback, f"{path}[{i}]")
        return value
    if type(value) in _PLAIN or isinstance(value, torch.Tensor):  # and Parameter
        return value
    raise TypeError(
        f"{type(callback).__name__}.{path} is a {type(value).__name__}: a checkpoint "
        "holds tensors, str, int, float, bool and None (in dicts, lists, tuples); "
        "convert it (float(...), torch.as_tensor(...)).")


def snapshot(module):
    """A detached copy of ``module``'s state dict, on its device."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


class FreezeSchedule(Callback):
    """Which parameters train, epoch by epoch: ``freeze`` from the start, or a
    head-only warm-up for ``unfreeze_after`` epochs first (fastai's ``fine_tune``).

    Parameters
    ----------
    backbone : nn.Module
    freeze : "backbone", None or int
        See :func:`~sktransfer.training.stages` and the estimators' ``freeze``.
    unfreeze_after : int or None
        Epochs of a head-only warm-up before ``freeze`` applies.
    """

    def __init__(self, backbone, freeze, unfreeze_after=None):
        self.backbone = backbone
        self.freeze = freeze
        self.unfreeze_after = unfreeze_after

    def on_fit_begin(self, state, **kwargs):
        self._phase = None

    def on_epoch_begin(self, state, **kwargs):
        warming_up = self.unfreeze_after is not None and state.epoch < self.unfreeze_after
        phase = "warm-up" if warming_up else "train"
        if phase == self._phase:
            return
        if warming_up:
            head_warmup(self.backbone, self.freeze)
        else:
            set_trainable(self.backbone, self.freeze)
        self._phase = phase


class LongFitWarning(Callback):
    """Warn once, early in a fit, when its pace says it will take long: after
    ``probe_batches`` batches, the time they took, times the batches left,
    against ``threshold`` seconds. The estimators add it (named
    ``"long_fit_warning"``) when they train on a CPU.

    Parameters
    ----------
    threshold : float, default=900.0
        Seconds of estimated fit time above which to warn.
    probe_batches : int, default=5
        Batches timed before estimating (the first ones pay for start-up, so
        the estimate leans high).
    advice : str, default=""
        What to suggest, appended to the warning.
    """

    main_process_only = True  # writes: rank 0 only

    def __init__(self, threshold=900.0, probe_batches=5, advice=""):
        self.threshold = threshold
        self.probe_batches = probe_batches
        self.advice = advice

    def on_fit_begin(self, state, **kwargs):
        self._start, self._seen, self._done = None, 0, False

    def on_batch_end(self, state, **kwargs):
        if self._done:
            return
        if self._start is None:  # timed from the first batch: a resumed fit's
            # checkpoint and the fit's set-up are behind it
            self._start, self._first_epoch = time.perf_counter(), state.epoch
            return
        self._seen += 1
        if self._seen < min(self.probe_batches, state.n_batches - 1):
            return
        self._done = True
        per_batch = (time.perf_counter() - self._start) / self._seen
        total = per_batch * state.n_batches * (state.end_epoch - self._first_epoch)
        if total > self.threshold:
            warn(
                f"This fit will take about {total / 60:.0f} minutes at the pace of its "
                f"first {self._seen} batches ({per_batch:.2f} s each, "
                f"{state.n_batches} batches per epoch, "
                f"{state.end_epoch - self._first_epoch} epochs). {self.advice}".rstrip(),
                UserWarning)


class EarlyStopping(Callback):
    """Stop when the monitored value has not improved for ``patience`` epochs,
    and keep the best weights (unless the fit was interrupted: then the last
    finished epoch's).

    Parameters
    ----------
    patience : int, default=5
        Epochs without improvement before the fit stops.
    monitor : str, default="valid_loss"
        The history key to watch (``"valid_loss"``, ``"valid_score"``,
        ``"train_loss"``, or what a step's ``epoch_metrics`` adds). An epoch
        whose record has no value for it (no validation set) is not counted.
    lower_is_better : bool, default=True
        False for a score such as ``"valid_score"`` (accuracy).
    min_delta : float, default=0.0
        The least change that counts as an improvement.
    load_best : bool, default=True
        At the end of the fit, load the weights of the best epoch.
    log : callable or None, default=None
        Where to say that training stopped (``print``); None says nothing.

    Attributes
    ----------
    best_value_ : float
        The best monitored value of the fit.
    best_epoch_ : int or None
        Its epoch (from 1).
    misses_ : int
        Epochs since the last improvement.
    best_state_ : dict or None
        A copy of the module's state dict at the best epoch (when
        ``load_best``).
    """

    def __init__(self, patience=5, *, monitor="valid_loss", lower_is_better=True,
                 min_delta=0.0, load_best=True, log=None):
        self.patience = patience
        self.monitor = monitor
        self.lower_is_better = lower_is_better
        self.min_delta = min_delta
        self.load_best = load_best
        self.log = log

    def check_params(self, **kwargs):
        if not isinstance(self.patience, Integral) or isinstance(self.patience, bool) \
                or self.patience < 1:
            raise ValueError(f"EarlyStopping(patience={self.patience!r}): must be an int "
                             ">= 1.")
        _check_monitor(self)
        _check_bool(self, "lower_is_better")
        _check_bool(self, "load_best")
        if not isinstance(self.min_delta, Real) or not self.min_delta >= 0:
            raise ValueError(f"EarlyStopping(min_delta={self.min_delta!r}): must be a "
                             "number >= 0.")
        if self.log is not None and not callable(self.log):
            raise TypeError(f"EarlyStopping(log={self.log!r}): must be callable or None.")

    def on_fit_begin(self, state, **kwargs):
        self.reset()
        self._checked_monitor = False

    def state_dict(self):
        if "misses_" not in vars(self):
            return None
        return {"best_value": float(self.best_value_), "best_epoch": self.best_epoch_,
                "misses": int(self.misses_), "best_state": self.best_state_}

    def load_state_dict(self, state_dict):
        self.best_value_ = float(state_dict["best_value"])
        self.best_epoch_ = state_dict["best_epoch"]
        self.misses_ = int(state_dict["misses"])
        self.best_state_ = state_dict["best_state"]

    def reset(self):
        """Forget the fit seen so far (``on_fit_begin`` calls it)."""
        self.best_value_ = float("inf") if self.lower_is_better else -float("inf")
        self.best_epoch_ = None
        self.misses_ = 0
        self.best_state_ = None

    def _improves(self, value):
        return _improves(value, self.best_value_, self.lower_is_better, self.min_delta)

    def update(self, record, module):
        """Record an epoch; return True when training should stop."""
        if "misses_" not in vars(self):  # called outside a fit
            self.reset()
        value = record.get(self.monitor)
        if value is None:
            return False
        if self._improves(value):
            self.best_value_ = value
            self.best_epoch_ = record["epoch"]
            if self.load_best:
                self.best_state_ = snapshot(module)
            self.misses_ = 0
            return False
        self.misses_ += 1
        return self.misses_ >= self.patience

    def on_epoch_end(self, state, **kwargs):
        record = state.history[-1]
        if not vars(self).get("_checked_monitor", True):
            if self.monitor not in record:
                warn(
                    f"EarlyStopping: the history has no {self.monitor!r}, so it will "
                    f"never stop this fit; the history's keys are "
                    f"{', '.join(map(repr, record))}.", UserWarning)
            elif record[self.monitor] is None:
                warn(
                    f"EarlyStopping: this fit's epochs have no value of "
                    f"{self.monitor!r} (no validation set: early_stopping=True holds "
                    "some samples out), so it will never stop this fit.", UserWarning)
        self._checked_monitor = True
        if self.update(record, state.module):
            state.stop_training = True
            if self.log is not None:
                self.log(f"early stopping: no improvement of {self.monitor} for "
                         f"{self.patience} epochs")

    def on_fit_end(self, state, **kwargs):
        best = vars(self).get("best_state_")
        if not state.interrupted and best is not None:
            state.module.load_state_dict(best)


class EpochLogger(Callback):
    """One line per epoch (loss, validation, learning rate, time) to ``log``.

    Parameters
    ----------
    log : callable, default=print
        Called with each line.
    score_label : str, default="valid_score"
        The name the line gives the history's ``valid_score``; the estimators
        name their score (``"valid_acc"``: accuracy, ``"valid_r2"``: R²,
        ``"valid_f1_samples"``: samples-averaged F1).
    """

    main_process_only = True  # writes: rank 0 only
    #: The default, which a logger pickled before the parameter existed reads.
    score_label = "valid_score"

    def __init__(self, log=print, score_label="valid_score"):
        self.log = log
        self.score_label = score_label

    def check_params(self, **kwargs):
        if not callable(self.log):
            raise TypeError(f"EpochLogger(log={self.log!r}): must be callable (print).")
        if not isinstance(self.score_label, str):
            raise TypeError(f"EpochLogger(score_label={self.score_label!r}): must be a str.")

    def on_epoch_end(self, state, **kwargs):
        self.log(epoch_line(state.history[-1], self.score_label))

    def on_fit_end(self, state, **kwargs):
        if state.interrupted:
            self.log("interrupted: keeping the model of the last finished epoch"
                     if state.history else
                     "interrupted before the first epoch finished: no model to keep")


def epoch_line(record, score_label="valid_score"):
    """The text :class:`EpochLogger` writes for one history record, its
    ``valid_score`` named ``score_label``."""
    parts = [f"epoch {record['epoch']:3d}", f"train_loss {record['train_loss']:.4f}"]
    if record.get("valid_loss") is not None:
        parts.append(f"valid_loss {record['valid_loss']:.4f}")
    if record.get("valid_score") is not None:
        parts.append(f"{score_label} {record['valid_score']:.4f}")
    parts.append(f"lr {record['lr']:.2e}")
    parts.append(f"{record['duration']:.1f}s")
    return "  ".join(parts)


class ProgressBar(Callback):
    """A tqdm bar over the batches of each epoch."""

    main_process_only = True  # writes: rank 0 only

    def on_epoch_begin(self, state, **kwargs):
        from tqdm.auto import tqdm

        self._bar = tqdm(total=state.n_batches, desc=f"epoch {state.epoch + 1}",
                         leave=False, unit="batch")

    def on_batch_end(self, state, **kwargs):
        self._bar.update(1)

    def on_epoch_end(self, state, **kwargs):
        self._bar.close()

    def on_fit_end(self, state, **kwargs):
        bar = self.__dict__.pop("_bar", None)
        if bar is not None:
            bar.close()


class Checkpoint(Callback):
    """Write the last and the best weights to ``folder`` as safetensors after
    every epoch, and resume an interrupted fit from them.

    Files: ``last.safetensors`` and ``best.safetensors`` (the network's state
    dict; their metadata name the epoch and the monitored value), and
    ``last_training_state.pt``: the optimizer, the schedule, the random states,
    the history, the fit's fingerprint and, once the fit finished, the weights
    it returned, read back with
    ``torch.load(weights_only=True)`` (tensors and plain containers only). Each
    file is written to a temporary name and renamed, so a crash leaves the
    previous one whole.

    To resume a long fit after a crash, run the same ``fit`` again (same
    estimator, parameters, data, ``random_state`` and ``folder``): with
    ``resume=True`` it starts after the last finished epoch, with its weights,
    optimizer, schedule and random states, and a
    :class:`~sktransfer.FineTuneClassifier` ends with the weights an
    uninterrupted fit would have had, early stopping's best epoch included (what
    each other callback's ``state_dict`` holds is saved with the training
    state). (A :class:`~sktransfer.DomainAdaptClassifier` resumes with fresh
    target batches.)
    A finished fit's files make the same ``fit`` return that model at once: when
    the fit ends (all its epochs, or stopped early), the training state says so
    and holds the weights the module has then (early stopping's best epoch, when
    it loads them). Callbacks run in order, so a callback of yours that changes
    the weights at the end of the fit (an ``EarlyStopping`` of your own) goes
    before the ``Checkpoint``; the estimators' own early stopping runs before
    every callback you pass.

    The folder is keyed by the fit's fingerprint (the estimator, its parameters,
    a digest of the data and the seed): a ``fit`` whose fingerprint differs
    (another learning rate, another fold of ``cross_val_score``, another
    candidate of ``GridSearchCV``) refuses the folder with a ``ValueError``
    rather than returning another fit's model or overwriting its files. Put
    ``{fingerprint}`` in ``folder`` to give each fit a folder of its own (what
    ``cross_val_score`` and ``GridSearchCV`` need), or pass ``resume=False`` to
    train anew and overwrite the files. The callbacks are not in the
    fingerprint; a fit that one of them stopped early records which (its class
    and settings), and its model is refused to a fit without that callback. A
    continued fit (``partial_fit``, ``warm_start``) is a fit of its own: with
    ``{fingerprint}`` in ``folder`` each call gets its folder. A callback that
    has a state (``state_dict``) goes before the checkpoint, which refuses the
    other order (its state would be saved an epoch behind); in a fit over
    several processes the callbacks' states are not restored (every rank
    restarts them alike).

    Parameters
    ----------
    folder : str or path-like
        Created if missing. ``"{fingerprint}"`` in it is replaced by the fit's
        fingerprint (32 hexadecimal digits).
    monitor : str, default="valid_loss"
        The history key whose best value is "best"; ``train_loss`` when the
        record has no such value (no validation set).
    lower_is_better : bool, default=True
        False for a score such as ``"valid_score"`` (accuracy, R²).
    resume : bool, default=True
        Continue from ``last_training_state.pt`` when the folder holds one.

    Attributes
    ----------
    best_value_ : float
        The best monitored value seen in the last fit.
    folder_ : str
        The folder of the last fit (``folder`` with its fingerprint filled in).
        The estimators copy their callbacks at each ``fit`` (the parameter is
        never changed), so these are set on that copy, which a callback of
        yours can read (``state`` does not hold it); the files are in the
        folder either way.
    """

    main_process_only = True  # writes: rank 0 only

    #: The default, which a checkpoint pickled before the parameter existed reads.
    lower_is_better = True

    def __init__(self, folder, *, monitor="valid_loss", lower_is_better=True,
                 resume=True):
        self.folder = folder
        self.monitor = monitor
        self.lower_is_better = lower_is_better
        self.resume = resume

    def _path(self, name):
        return os.path.join(self.folder_, name)

    def _fingerprint(self, state):
        return None if state.fingerprint is None else state.fingerprint()

    def check_params(self, **kwargs):
        check_folder(self, "folder", self.folder)
        _check_monitor(self)
        _check_bool(self, "lower_is_better")
        _check_bool(self, "resume")

    def on_fit_begin(self, state, **kwargs):
        folder = os.fsdecode(self.folder)
        self._fit_fingerprint = fingerprint = self._fingerprint(state)
        if "{fingerprint}" in folder:
            if fingerprint is None:
                raise ValueError("Checkpoint: the folder names {fingerprint}, but this "
                                 "fit has none (a Trainer run without fingerprint=).")
            folder = folder.replace("{fingerprint}", fingerprint)
        self.folder_ = folder
        self._warned_monitor = self._returned_saved = False
        after = state.callbacks[state.callbacks.index(self) + 1:] \
            if self in state.callbacks else ()
        stateful = [callback for callback in after
                    if type(callback).state_dict is not Callback.state_dict]
        if stateful and self.resume:
            raise ValueError(
                f"Checkpoint: {type(stateful[0]).__name__}, a callback with a state, "
                "comes after the Checkpoint in callbacks, so its state would be saved "
                "one epoch behind and a resumed fit would not end as an uninterrupted "
                "one: put it before the Checkpoint.")
        os.makedirs(folder, exist_ok=True)
        self.best_value_ = float("inf") if self.lower_is_better else -float("inf")
        if self.resume and os.path.exists(self._path("last_training_state.pt")):
            self._restore(state)

    def _restore(self, state):
        from safetensors import safe_open

        path = self._path("last_training_state.pt")
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            with safe_open(self._path("last.safetensors"), framework="pt") as file:
                weights = {key: file.get_tensor(key) for key in file.keys()}
                weights_epoch = (file.metadata() or {}).get("state_epoch")
        except Exception as exc:  # a damaged or foreign file
            raise ValueError(f"Checkpoint: cannot resume from {path!r} ({exc}); delete "
                             "the folder or pass resume=False to train anew.") from exc
        expected = state.module.state_dict()
        if (saved.get("fingerprint") != self._fit_fingerprint
                or saved.get("end_epoch") != state.end_epoch
                or set(weights) != set(expected)
                or any(weights[k].shape != expected[k].shape for k in expected)):
            if state.history:
                raise ValueError(
                    f"Checkpoint: this fit continues a fitted estimator (partial_fit "
                    f"or warm_start, from epoch {len(state.history)}), and "
                    f"{self.folder_!r} holds the files of another fit, which are "
                    "kept: a checkpoint resumes one whole fit. Put '{fingerprint}' in "
                    "the folder name (each call then gets a folder of its own), use "
                    "another folder, or pass resume=False to write over it.")
            raise ValueError(
                f"Checkpoint: the fit saved in {self.folder_!r} is not this one (another "
                "estimator, parameters, data, random_state or number of epochs; "
                "random_state=None, or a RandomState, draws another seed for each "
                "fit), and "
                "its files are kept. Use another folder, put '{fingerprint}' in the "
                "folder name to give each fit its own (cross-validation, grid search), "
                "or pass resume=False to train anew over them."
            )
        if (weights_epoch is not None and not saved.get("finished")
                and weights_epoch != str(saved.get("epoch"))):
            raise ValueError(
                f"Checkpoint: in {self.folder_!r}, last.safetensors holds the weights "
                f"of epoch {weights_epoch} and last_training_state.pt the state of "
                f"epoch {saved.get('epoch')} (the process stopped between the two "
                "writes): the pair cannot resume this fit exactly. Pass resume=False "
                "to train anew (best.safetensors is kept until then).")
        stopped_by = saved.get("stopped_by")
        if saved.get("finished") and stopped_by is not None and not any(
                _callback_key(callback) == stopped_by for callback in state.callbacks):
            raise ValueError(
                f"Checkpoint: the fit saved in {self.folder_!r} was stopped after epoch "
                f"{saved.get('epoch')} of {saved.get('end_epoch')} by {stopped_by:.200}, "
                "which this fit does not have, so its model is not this fit's. Add that "
                "callback, use another folder, or pass resume=False to train anew.")
        state.module.load_state_dict(weights)
        state.optimizer.load_state_dict(saved["optimizer"])
        if state.scheduler is not None and saved.get("scheduler") is not None:
            state.scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["torch_rng"])
        if state.generator is not None and saved.get("generator_rng") is not None:
            state.generator.set_state(saved["generator_rng"])
        state.history[:] = [dict(record) for record in saved["history"]]
        self.best_value_ = float(saved["best_value"])
        if not saved.get("finished") and not state.distributed:
            # The callbacks with a state come before this one (on_fit_begin
            # checks it): their on_fit_begin, which resets them, has run. A
            # finished fit's model is returned as it is.
            states = {tuple(entry[0]): entry[1:] for entry in saved.get("callbacks") or ()}
            for occurrence, callback in _by_occurrence(self._others(state)):
                key, values = states.get(occurrence, (None, None))
                if values is not None and key == _callback_key(callback):
                    callback.load_state_dict(values)
            # an epoch a callback ended the fit after (early stopping's patience)
            state.stop_training = bool(saved.get("stop_training", False))
        state.epoch = int(saved["epoch"])
        if saved.get("finished"):  # the model that fit returned: nothing to train
            state.module.load_state_dict(saved["returned"])
            state.stop_training = True
            self._returned_saved = True  # its files stay as they are

    def on_epoch_end(self, state, **kwargs):
        record = state.history[-1]
        if self.monitor not in record and not vars(self).get("_warned_monitor"):
            self._warned_monitor = True
            warn(f"Checkpoint: the history has no {self.monitor!r}, so "
                 "best.safetensors ranks the epochs by train_loss; the "
                 f"history's keys are {', '.join(map(repr, record))}.", UserWarning)
        value = record.get(self.monitor)
        if value is None:
            value = record["train_loss"]
        # "state_epoch": what the training state written next says, so that a
        # resume can tell a pair of files from two epochs apart
        metadata = {"epoch": str(record["epoch"]), "monitor": self.monitor,
                    "value": repr(float(value)), "state_epoch": str(state.epoch)}
        weights = {k: v.detach().to("cpu").contiguous()
                   for k, v in state.module.state_dict().items()}
        _write_weights(self._path("last.safetensors"), weights, metadata)
        if _improves(value, self.best_value_, self.lower_is_better):
            self.best_value_ = float(value)
            _write_weights(self._path("best.safetensors"), weights, metadata)
        self._write_state(state)

    def on_fit_end(self, state, **kwargs):
        """A fit that ended (its epochs run, or stopped early) stores the weights
        it returns, which the callbacks before this one may have changed (early
        stopping's best epoch), and says it finished."""
        if (state.interrupted or state.error is not None or not state.history
                or vars(self).get("_returned_saved")):
            return
        self._write_state(state, returned={
            k: v.detach().to("cpu").contiguous()
            for k, v in state.module.state_dict().items()})

    def _others(self, state):
        """The fit's callbacks but this one, in order."""
        return [callback for callback in state.callbacks if callback is not self]

    def _write_state(self, state, *, returned=None):
        """``last_training_state.pt``; ``returned``: the weights of a finished
        fit."""
        training_state = {
            "epoch": state.epoch,
            "end_epoch": state.end_epoch,
            "fingerprint": self._fit_fingerprint,
            "optimizer": state.optimizer.state_dict(),
            "scheduler": None if state.scheduler is None else state.scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "generator_rng": None if state.generator is None else state.generator.get_state(),
            "history": json.loads(json.dumps(state.history)),
            "best_value": self.best_value_,
            "finished": returned is not None,
            "returned": returned,
            # what the other callbacks know of the fit (early stopping's best
            # epoch), and which one stopped it early
            "callbacks": [(occurrence, _callback_key(callback),
                           _plain(callback.state_dict(), callback))
                          for occurrence, callback in _by_occurrence(self._others(state))],
            "stop_training": bool(state.stop_training),
            "stopped_by": (_callback_key(state.stopped_by) if returned is not None
                           and state.stopped_by is not None else None),
        }
        _atomic(self._path("last_training_state.pt"),
                lambda path: torch.save(training_state, path))


def _write_weights(path, tensors, metadata):
    from safetensors.torch import save_file

    _atomic(path, lambda temporary: save_file(tensors, temporary, metadata=metadata))


def _atomic(path, write):
    with replacing(path, durable=True) as temporary:  # a resume point: not recomputable
        write(temporary)

"""Callbacks: objects with no-op hooks that the training loop calls.

A callback sees the :class:`~sktransfer.training.TrainingState` at five points
of a fit (``on_fit_begin``, ``on_epoch_begin``, ``on_batch_end``,
``on_epoch_end``, ``on_fit_end``): the module, the history, the epoch, the loss
of the last batch. Setting ``state.stop_training = True`` ends the fit after the
current epoch. The estimators pass their own callbacks (progress, epoch lines,
early stopping, the freezing schedule) before the user's ``callbacks=``, which
are copied at each ``fit`` and never changed by it.
"""

import json
import os

import torch

from ._freeze import head_warmup, set_trainable

HOOKS = ("on_fit_begin", "on_epoch_begin", "on_batch_end", "on_epoch_end", "on_fit_end")


class Callback:
    """Base of callbacks: every hook is a no-op; override the ones you need.

    Each hook receives ``state``, a :class:`~sktransfer.training.TrainingState`;
    ``on_batch_end`` also gets ``loss``, the batch's loss as a 0-d tensor (read
    it with ``float(loss)``, which waits for the device).

    Examples
    --------
    A callback that ends the fit once the training loss is low enough::

        from sktransfer.training import Callback

        class StopBelow(Callback):
            def __init__(self, threshold=0.05):
                self.threshold = threshold  # stored as given: clone copies it

            def on_epoch_end(self, state):
                if state.history[-1]["train_loss"] < self.threshold:
                    state.stop_training = True

    To log epochs to TensorBoard or MLflow, use
    :class:`~sktransfer.training.TensorBoardLogger` and
    :class:`~sktransfer.training.MLflowLogger`.
    """

    def on_fit_begin(self, state):
        """Before the first epoch (the network, optimizer and schedule are built)."""

    def on_epoch_begin(self, state):
        """Before epoch ``state.epoch`` (counted from 0) trains."""

    def on_batch_end(self, state, loss):
        """After each optimizer step; ``loss`` is the batch's loss (0-d tensor)."""

    def on_epoch_end(self, state):
        """After an epoch and its validation; ``state.history[-1]`` is its record."""

    def on_fit_end(self, state):
        """After the last epoch, an early stop, an interruption
        (``state.interrupted``), or an error (``state.error``, raised again
        after this hook)."""

    def __repr__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items()
                           if not k.startswith("_"))
        return f"{type(self).__name__}({params})"


def check_callbacks(callbacks):
    """The user's ``callbacks=`` as a list, each checked to be a callback."""
    if callbacks is None:
        return []
    checked = []
    for i, callback in enumerate(callbacks):
        if isinstance(callback, (str, bytes, type)) or not any(
            callable(getattr(callback, hook, None)) for hook in HOOKS
        ):
            raise ValueError(
                f"callbacks[{i}] = {callback!r} is not a callback: pass instances of "
                "sktransfer.training.Callback (or objects with its hooks: "
                f"{', '.join(HOOKS)})."
            )
        checked.append(callback)
    return checked


def call_hook(callbacks, hook, state, *args):
    """Call ``hook`` on every callback that has it, in order."""
    for callback in callbacks:
        method = getattr(callback, hook, None)
        if method is not None:
            method(state, *args)


def snapshot(module):
    """A detached copy of ``module``'s state dict, on its device."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


class FreezeSchedule(Callback):
    """Which parameters train, epoch by epoch: ``freeze`` from the start, or a
    head-only warm-up for ``unfreeze_after`` epochs first (fastai's ``fine_tune``).

    Parameters
    ----------
    backbone : nn.Module
    freeze : "backbone", "none" or int
        See :func:`~sktransfer.training.set_trainable`.
    unfreeze_after : int or None
        Epochs of :func:`~sktransfer.training.head_warmup` before ``freeze``
        applies.
    """

    def __init__(self, backbone, freeze, unfreeze_after=None):
        self.backbone = backbone
        self.freeze = freeze
        self.unfreeze_after = unfreeze_after
        self._phase = None

    def on_epoch_begin(self, state):
        warming_up = self.unfreeze_after is not None and state.epoch < self.unfreeze_after
        phase = "warm-up" if warming_up else "train"
        if phase == self._phase:
            return
        if warming_up:
            head_warmup(self.backbone, self.freeze)
        else:
            set_trainable(self.backbone, self.freeze)
        self._phase = phase


class EarlyStopping(Callback):
    """Stop when ``valid_loss`` has not improved for ``patience`` epochs, and
    keep the best weights (unless the fit was interrupted: then the last
    finished epoch's).

    Parameters
    ----------
    patience : int, default=5
    min_delta : float, default=0.0
        The least decrease that counts as an improvement.
    log : callable or None, default=None
        Where to say that training stopped (``print``); None says nothing.
    """

    def __init__(self, patience=5, min_delta=0.0, log=None):
        self.patience = patience
        self.min_delta = min_delta
        self.log = log
        self.best_loss = float("inf")
        self.best_epoch = None
        self.best_state = None
        self.bad_epochs = 0

    def update(self, record, module):
        """Record an epoch; return True when training should stop."""
        loss = record.get("valid_loss")
        if loss is None:
            return False
        if loss < self.best_loss - self.min_delta:
            self.best_loss = loss
            self.best_epoch = record["epoch"]
            self.best_state = snapshot(module)
            self.bad_epochs = 0
            return False
        self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def on_epoch_end(self, state):
        if self.update(state.history[-1], state.module):
            state.stop_training = True
            if self.log is not None:
                self.log(f"early stopping: no improvement for {self.patience} epochs")

    def on_fit_end(self, state):
        if not state.interrupted and self.best_state is not None:
            state.module.load_state_dict(self.best_state)


class EpochLogger(Callback):
    """One line per epoch (loss, validation, learning rate, time) to ``log``."""

    def __init__(self, log=print):
        self.log = log

    def on_epoch_end(self, state):
        self.log(epoch_line(state.history[-1]))

    def on_fit_end(self, state):
        if state.interrupted:
            self.log("interrupted: keeping the model of the last finished epoch")


def epoch_line(record):
    """The text :class:`EpochLogger` writes for one history record."""
    parts = [f"epoch {record['epoch']:3d}", f"train_loss {record['train_loss']:.4f}"]
    if record.get("valid_loss") is not None:
        parts.append(f"valid_loss {record['valid_loss']:.4f}")
    if record.get("valid_score") is not None:
        parts.append(f"valid_acc {record['valid_score']:.4f}")
    parts.append(f"lr {record['lr']:.2e}")
    parts.append(f"{record['duration']:.1f}s")
    return "  ".join(parts)


class ProgressBar(Callback):
    """A tqdm bar over the batches of each epoch."""

    def on_epoch_begin(self, state):
        from tqdm.auto import tqdm

        self._bar = tqdm(total=state.n_batches, desc=f"epoch {state.epoch + 1}",
                         leave=False, unit="batch")

    def on_batch_end(self, state, loss):
        self._bar.update(1)

    def on_epoch_end(self, state):
        self._bar.close()

    def on_fit_end(self, state):
        bar = self.__dict__.pop("_bar", None)
        if bar is not None:
            bar.close()


class Checkpoint(Callback):
    """Write the last and the best weights to ``folder`` as safetensors after
    every epoch, and resume an interrupted fit from them.

    Files: ``last.safetensors`` and ``best.safetensors`` (the network's state
    dict; their metadata name the epoch and the monitored value), and
    ``last_training_state.pt``: the optimizer, the schedule, the random states
    and the history, read back with ``torch.load(weights_only=True)`` (tensors
    and plain containers only). Each file is written to a temporary name and
    renamed, so a crash leaves the previous one whole.

    To resume a long fit after a crash, run the same ``fit`` again (same data,
    parameters and ``folder``): with ``resume=True`` it starts after the last
    finished epoch, with its weights, optimizer, schedule and random states, and
    a :class:`~sktransfer.FineTuneClassifier` ends with the weights an
    uninterrupted fit would have had. (A :class:`~sktransfer.DomainAdaptClassifier`
    resumes with fresh target batches, and early stopping restarts its count.)
    A finished fit's files make the next ``fit`` return that model at once:
    delete the folder, or pass ``resume=False``, to train anew.

    Parameters
    ----------
    folder : str or path-like
        Created if missing.
    monitor : str, default="valid_loss"
        The history key whose lowest value is "best"; ``train_loss`` when the
        record has no such value (no validation set).
    resume : bool, default=True
        Continue from ``last_training_state.pt`` when the folder holds one.

    Attributes
    ----------
    best_value : float
        The best monitored value seen in the last fit.
    """

    def __init__(self, folder, *, monitor="valid_loss", resume=True):
        self.folder = folder
        self.monitor = monitor
        self.resume = resume

    def _path(self, name):
        return os.path.join(os.fspath(self.folder), name)

    def on_fit_begin(self, state):
        os.makedirs(os.fspath(self.folder), exist_ok=True)
        self.best_value = float("inf")
        if self.resume and os.path.exists(self._path("last_training_state.pt")):
            self._restore(state)

    def _restore(self, state):
        from safetensors.torch import load_file

        path = self._path("last_training_state.pt")
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            weights = load_file(self._path("last.safetensors"))
        except Exception as exc:  # a damaged or foreign file
            raise ValueError(f"Checkpoint: cannot resume from {path!r} ({exc}); delete "
                             "the folder or pass resume=False to train anew.") from exc
        expected = state.module.state_dict()
        if saved.get("end_epoch") != state.end_epoch or set(weights) != set(expected) or any(
            weights[k].shape != expected[k].shape for k in expected
        ):
            raise ValueError(
                f"Checkpoint: the fit saved in {os.fspath(self.folder)!r} is not this "
                "one (another network or number of epochs); delete the folder or pass "
                "resume=False to train anew."
            )
        state.module.load_state_dict(weights)
        state.optimizer.load_state_dict(saved["optimizer"])
        if state.scheduler is not None and saved.get("scheduler") is not None:
            state.scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["torch_rng"])
        if state.generator is not None and saved.get("generator_rng") is not None:
            state.generator.set_state(saved["generator_rng"])
        state.history[:] = [dict(record) for record in saved["history"]]
        self.best_value = float(saved["best_value"])
        state.epoch = int(saved["epoch"])

    def on_epoch_end(self, state):
        record = state.history[-1]
        value = record.get(self.monitor)
        if value is None:
            value = record["train_loss"]
        metadata = {"epoch": str(record["epoch"]), "monitor": self.monitor,
                    "value": repr(float(value))}
        weights = {k: v.detach().to("cpu").contiguous()
                   for k, v in state.module.state_dict().items()}
        _write_weights(self._path("last.safetensors"), weights, metadata)
        if value < self.best_value:
            self.best_value = float(value)
            _write_weights(self._path("best.safetensors"), weights, metadata)
        training_state = {
            "epoch": state.epoch,
            "end_epoch": state.end_epoch,
            "optimizer": state.optimizer.state_dict(),
            "scheduler": None if state.scheduler is None else state.scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "generator_rng": None if state.generator is None else state.generator.get_state(),
            "history": json.loads(json.dumps(state.history)),
            "best_value": self.best_value,
        }
        _atomic(self._path("last_training_state.pt"),
                lambda path: torch.save(training_state, path))


def _write_weights(path, tensors, metadata):
    from safetensors.torch import save_file

    _atomic(path, lambda temporary: save_file(tensors, temporary, metadata=metadata))


def _atomic(path, write):
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise

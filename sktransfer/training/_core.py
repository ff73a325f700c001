"""The training loop both classifiers share: epochs of small, overridable steps.

No scikit-learn here. The estimators hand the :class:`Trainer` a module, an
optimizer, a function that yields the training batches of an epoch, a loss for
one batch and, optionally, a validation function; the trainer owns the rest:
devices, mixed precision, gradient scaling and clipping, the learning-rate
schedule, history, early stopping, progress and clean interruption.
"""

import time

import torch

from .._device import autocast
from ._freeze import frozen_batchnorm_to_eval


class EarlyStopping:
    """Stop when ``valid_loss`` has not improved for ``patience`` epochs, and
    keep the best weights."""

    def __init__(self, patience=5, min_delta=0.0):
        self.patience = patience
        self.min_delta = min_delta
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
            self.best_state = _snapshot(module)
            self.bad_epochs = 0
            return False
        self.bad_epochs += 1
        return self.bad_epochs >= self.patience


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


class Trainer:
    """Runs epochs over a module.

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
        Stepped after every optimizer step.
    grad_clip : float or None
        Maximum gradient norm.
    verbose : int
        0 silent, 1 one line per epoch, 2 a progress bar per epoch too.
    log : callable
        Where epoch lines go (``print`` by default).
    """

    def __init__(self, module, optimizer, *, device, autocast_dtype=None, scheduler=None,
                 grad_clip=None, verbose=0, log=print):
        self.module = module
        self.optimizer = optimizer
        self.device = device
        self.autocast_dtype = autocast_dtype
        self.scheduler = scheduler
        self.grad_clip = grad_clip
        self.verbose = verbose
        self.log = log
        use_scaler = autocast_dtype == torch.float16 and device.type == "cuda"
        self.scaler = torch.amp.GradScaler(device.type) if use_scaler else None

    # -- one step ------------------------------------------------------------
    def train_step(self, batch, loss_fn):
        """Forward, backward and optimizer step on one batch; returns the loss."""
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device, self.autocast_dtype):
            loss = loss_fn(batch)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(
                [p for p in self.module.parameters() if p.grad is not None], self.grad_clip
            )
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return loss.detach()

    # -- one epoch -----------------------------------------------------------
    def train_epoch(self, batches, loss_fn, *, n_batches=None, desc=None):
        """Train on every batch; returns the mean training loss."""
        self.module.train()
        frozen_batchnorm_to_eval(self.module)
        if self.verbose >= 2:
            from tqdm.auto import tqdm

            batches = tqdm(batches, total=n_batches, desc=desc, leave=False, unit="batch")
        total, count = None, 0
        for batch in batches:
            loss = self.train_step(batch, loss_fn)
            total = loss if total is None else total + loss  # no host sync per step
            count += 1
        return float(total) / count if count else float("nan")

    # -- the loop ------------------------------------------------------------
    def fit(self, *, epochs, train_batches, loss_fn, validate=None, history=None,
            early_stopping=None, on_epoch_start=None, n_batches=None, start_epoch=0):
        """Run ``epochs`` epochs.

        Parameters
        ----------
        epochs : int
        train_batches : callable
            ``train_batches(epoch)`` returns an iterable of batches for that epoch.
        loss_fn : callable
            ``loss_fn(batch)`` returns the scalar loss of a batch (under autocast).
        validate : callable or None
            ``validate()`` returns ``{"valid_loss": ..., "valid_score": ...}``.
        history : list of dict
            Appended with one record per finished epoch: ``epoch``, ``train_loss``,
            ``valid_loss``, ``valid_score``, ``lr``, ``duration``.
        early_stopping : EarlyStopping or None
        on_epoch_start : callable or None
            ``on_epoch_start(epoch)``, e.g. to unfreeze the backbone.
        n_batches : int or None
            Batches per epoch, for the progress bar.
        start_epoch : int
            Number of the first epoch (continuing training).

        Returns
        -------
        interrupted : bool
            True when a KeyboardInterrupt stopped training; the module then holds
            the weights of the last finished epoch.
        """
        history = [] if history is None else history
        last_finished = _snapshot(self.module)
        try:
            for epoch in range(start_epoch, start_epoch + epochs):
                if on_epoch_start is not None:
                    on_epoch_start(epoch)
                start = time.perf_counter()
                lr = self.optimizer.param_groups[-1]["lr"]
                train_loss = self.train_epoch(
                    train_batches(epoch), loss_fn, n_batches=n_batches,
                    desc=f"epoch {epoch + 1}",
                )
                record = {"epoch": epoch + 1, "train_loss": train_loss,
                          "valid_loss": None, "valid_score": None, "lr": lr}
                if validate is not None:
                    self.module.eval()
                    record.update(validate())
                record["duration"] = time.perf_counter() - start
                history.append(record)
                last_finished = _snapshot(self.module)
                if self.verbose:
                    self.log(_epoch_line(record))
                if early_stopping is not None and early_stopping.update(record, self.module):
                    if self.verbose:
                        self.log(f"early stopping: no improvement for "
                                 f"{early_stopping.patience} epochs")
                    break
        except KeyboardInterrupt:
            self.module.load_state_dict(last_finished)
            if self.verbose:
                self.log("interrupted: keeping the model of the last finished epoch")
            return True
        finally:
            self.module.eval()
        if early_stopping is not None and early_stopping.best_state is not None:
            self.module.load_state_dict(early_stopping.best_state)
        return False


def _epoch_line(record):
    parts = [f"epoch {record['epoch']:3d}", f"train_loss {record['train_loss']:.4f}"]
    if record.get("valid_loss") is not None:
        parts.append(f"valid_loss {record['valid_loss']:.4f}")
    if record.get("valid_score") is not None:
        parts.append(f"valid_acc {record['valid_score']:.4f}")
    parts.append(f"lr {record['lr']:.2e}")
    parts.append(f"{record['duration']:.1f}s")
    return "  ".join(parts)

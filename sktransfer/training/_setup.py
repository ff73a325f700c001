"""Setting a fit up: parameter groups, the optimizer and the learning-rate schedule."""

import inspect
import typing

import torch
from torch.optim import lr_scheduler

OPTIMIZERS = {"adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
SCHEDULERS = ("onecycle", "cosine")
#: When a schedule steps: after every optimizer step, or once an epoch.
INTERVALS = ("batch", "epoch")
#: Schedules that move the learning rate within an epoch (stepped per batch);
#: every other torch schedule steps once an epoch.
PER_BATCH = (lr_scheduler.OneCycleLR, lr_scheduler.CyclicLR)
#: Schedules built from other schedules, which a class and its arguments cannot give.
_COMPOSITE = (lr_scheduler.ChainedScheduler, lr_scheduler.SequentialLR)


class SchedulerSpec(typing.NamedTuple):
    """A torch schedule as ``scheduler=`` gives it, checked."""

    cls: type
    kwargs: dict
    interval: str


def param_groups(backbone, head, *, lr, backbone_lr_ratio):
    """Two groups: the backbone at ``lr * backbone_lr_ratio``, the head at ``lr``.

    Frozen parameters are included too, so that unfreezing later needs no new
    optimizer: a parameter without a gradient is skipped by every torch optimizer.
    """
    return [
        {"params": list(backbone.parameters()), "lr": lr * backbone_lr_ratio,
         "name": "backbone"},
        {"params": list(head.parameters()), "lr": lr, "name": "head"},
    ]


def build_optimizer(optimizer, groups, *, weight_decay):
    if isinstance(optimizer, str):
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer={optimizer!r} is not one of {sorted(OPTIMIZERS)} "
                             "or a torch optimizer class.")
        cls = OPTIMIZERS[optimizer]
        kwargs = {"weight_decay": weight_decay}
        if cls is torch.optim.SGD:
            kwargs["momentum"] = 0.9
        return cls(groups, **kwargs)
    if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
        return optimizer(groups, weight_decay=weight_decay)
    raise ValueError(f"optimizer={optimizer!r} must be 'adamw', 'sgd' or a "
                     "torch.optim.Optimizer subclass.")


def _supplied(cls, kwargs):
    """The arguments the trainer fills in when ``kwargs`` lack them: OneCycleLR's
    peak rates (each group's ``lr``) and length: ``total_steps`` (the steps of
    the fit), or ``steps_per_epoch`` when ``kwargs`` give its ``epochs``."""
    if not issubclass(cls, lr_scheduler.OneCycleLR):
        return set()
    supplied = {"max_lr"}
    if "total_steps" not in kwargs:
        supplied.add("steps_per_epoch" if "epochs" in kwargs else "total_steps")
    return supplied - set(kwargs)


def check_scheduler(scheduler):
    """``scheduler=`` checked: None, a name of :data:`SCHEDULERS`, or a
    :class:`SchedulerSpec` for a torch schedule given as a class, ``(class,
    kwargs)`` or ``(class, kwargs, interval)``; raises ValueError otherwise."""
    if scheduler is None or (isinstance(scheduler, str) and scheduler in SCHEDULERS):
        return scheduler
    what = f"scheduler={scheduler!r:.200}"
    if isinstance(scheduler, type):
        scheduler = (scheduler, {})
    if not (isinstance(scheduler, tuple) and len(scheduler) in (2, 3)):
        raise ValueError(f"{what} must be one of {SCHEDULERS}, None, a "
                         "torch.optim.lr_scheduler class, or a tuple (class, kwargs) "
                         "or (class, kwargs, interval).")
    cls, kwargs, *rest = scheduler
    if not (isinstance(cls, type) and issubclass(cls, lr_scheduler.LRScheduler)):
        raise ValueError(f"{what}: {cls!r:.80} is not a torch.optim.lr_scheduler class "
                         "(a subclass of torch.optim.lr_scheduler.LRScheduler).")
    if issubclass(cls, _COMPOSITE):
        raise ValueError(f"{what}: {cls.__name__} is built from other schedules, which "
                         "a class and its arguments cannot give; use LambdaLR.")
    if not (isinstance(kwargs, dict) and all(isinstance(k, str) for k in kwargs)):
        raise ValueError(f"{what}: the keyword arguments must be a dict with str keys, "
                         f"not {kwargs!r:.80}.")
    if "optimizer" in kwargs:
        raise ValueError(f"{what}: the estimator passes the optimizer itself; remove "
                         "'optimizer' from the keyword arguments.")
    default = "batch" if issubclass(cls, PER_BATCH) else "epoch"
    interval = rest[0] if rest else default
    if interval not in INTERVALS:
        raise ValueError(f"{what}: the interval {interval!r} is not one of {INTERVALS}.")
    if interval == "batch" and issubclass(cls, lr_scheduler.ReduceLROnPlateau):
        raise ValueError(f"{what}: ReduceLROnPlateau follows the loss of each epoch; "
                         "it cannot step per batch.")
    filled = dict.fromkeys(_supplied(cls, kwargs))
    try:
        inspect.signature(cls).bind(None, **kwargs, **filled)
    except TypeError as exc:
        raise ValueError(f"{what}: the keyword arguments do not fit "
                         f"{cls.__name__}: {exc}.") from None
    return SchedulerSpec(cls, dict(kwargs), interval)


def scheduler_interval(scheduler):
    """When the schedule of ``scheduler=`` steps: ``"batch"``, ``"epoch"``, or
    None without a schedule."""
    spec = check_scheduler(scheduler)
    if spec is None:
        return None
    return spec.interval if isinstance(spec, SchedulerSpec) else "batch"


def build_scheduler(scheduler, optimizer, *, epochs, n_batches):
    """The schedule of ``scheduler=`` over a fit of ``epochs`` epochs of
    ``n_batches`` optimizer steps, or None for a constant rate.

    The named schedules step per batch, over ``epochs * n_batches`` steps; a
    torch schedule given as ``(class, kwargs)`` is built as ``class(optimizer,
    **kwargs)`` and steps as :func:`scheduler_interval` says. OneCycleLR gets
    each group's ``lr`` as ``max_lr`` and the length of the fit in its own
    steps when ``kwargs`` lack them: ``total_steps`` (``epochs * n_batches``
    stepped per batch, ``epochs`` stepped per epoch), or ``steps_per_epoch``
    (``n_batches``, or 1) beside the ``epochs`` that ``kwargs`` give.
    """
    spec = check_scheduler(scheduler)
    if spec is None:
        return None
    if isinstance(spec, SchedulerSpec):
        return _build_torch_scheduler(spec, optimizer, epochs=epochs, n_batches=n_batches)
    total_steps = epochs * n_batches
    if spec == "onecycle" and total_steps >= 8:
        return lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=[group["lr"] for group in optimizer.param_groups],
            total_steps=max(total_steps, 1),
            pct_start=0.25,
        )
    # "cosine", or "onecycle" with too few steps for a warm-up phase
    return lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total_steps, 1))


def _build_torch_scheduler(spec, optimizer, *, epochs, n_batches):
    steps_per_epoch = n_batches if spec.interval == "batch" else 1
    filled = {"max_lr": [group["lr"] for group in optimizer.param_groups],
              "total_steps": max(epochs * steps_per_epoch, 1),
              "steps_per_epoch": max(steps_per_epoch, 1)}
    kwargs = dict(spec.kwargs)
    for name in _supplied(spec.cls, kwargs):
        kwargs[name] = filled[name]
    try:
        return spec.cls(optimizer, **kwargs)
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"scheduler: {spec.cls.__name__}(optimizer, "
                         f"**{spec.kwargs!r:.120}) failed: {exc}") from exc

"""Setting a fit up: parameter groups, the optimizer and the learning-rate schedule."""

import torch

OPTIMIZERS = {"adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
SCHEDULERS = ("onecycle", "cosine")


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


def build_scheduler(scheduler, optimizer, *, total_steps):
    """A per-step schedule over ``total_steps``, or None for a constant rate."""
    if scheduler is None:
        return None
    if scheduler == "onecycle" and total_steps >= 8:
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=[group["lr"] for group in optimizer.param_groups],
            total_steps=max(total_steps, 1),
            pct_start=0.25,
        )
    if scheduler in ("cosine", "onecycle"):  # too few steps for a warm-up phase
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(total_steps, 1)
        )
    raise ValueError(f"scheduler={scheduler!r} is not one of {SCHEDULERS} or None.")

"""Batches for domain adaptation: target batches that keep pace with the
source batches (the data side of domain balance, as skada's
``DomainBalancedDataLoader``; the losses never see an unbalanced step)."""

import numpy as np
import torch

from ._distributed import Shard


def target_batches(loader, rows, batch_size, generator, *, with_rows=False,
                   shard=Shard()):
    """Raw batches of the target ``rows`` for the whole fit: reshuffled passes,
    full batches only when there are enough rows, so that every step pairs
    ``batch_size`` source samples with ``batch_size`` target samples. Endless;
    the rows are drawn from ``generator`` when a pass starts. ``with_rows=True``
    yields ``(rows_of_the_batch, raw_batch)`` pairs instead (for a step that
    looks up per-row state, such as a pseudo-label). Over several processes
    (``shard``), each rank gets its part of every global batch, as the source
    batches are split."""
    while True:
        order = rows[torch.randperm(len(rows), generator=generator).numpy()]
        if len(order) >= batch_size:
            order = order[:len(order) - len(order) % batch_size]
        size = batch_size
        if shard.distributed:
            order = np.concatenate([local for _, local, _ in shard.split(order, batch_size)])
            size = shard.local_size(batch_size)
        batches = loader.batches(size, indices=order)
        if not with_rows:
            yield from batches
            continue
        for start, batch in zip(range(0, len(order), size), batches):
            yield order[start:start + size], batch

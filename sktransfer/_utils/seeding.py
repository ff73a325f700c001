"""torch's global random generator, seeded for a block, one thread at a time.

A network's initialisation, dropout and augmentations draw from torch's global
generator, which every thread of a process shares: two fits in threads (joblib's
``"threading"`` backend) would draw from each other's seeded state. Every block
that seeds it, or draws from it while building or training, holds one lock of the
process; fits in threads of one process so run one after the other, and each
gives what it gives alone. Processes (joblib's default ``loky``, dask) each have
their own generator and run in parallel.
"""

import contextlib
import threading

import torch

__all__ = ["global_generator", "loader_generator"]

_LOCK = threading.RLock()
_HELD = threading.local()  # how deep this thread is in global_generator blocks


@contextlib.contextmanager
def global_generator(seed=None):
    """Hold torch's global CPU generator for the block: seeded with ``seed`` and
    put back as it was after (None: left unseeded and advanced by the block's
    draws, as an unseeded build does)."""
    with _LOCK, torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(int(seed))
        _HELD.depth = getattr(_HELD, "depth", 0) + 1
        try:
            yield
        finally:
            _HELD.depth -= 1


def loader_generator():
    """The ``generator`` of a DataLoader made here: None (torch's global
    generator, which the DataLoader draws its workers' base seed from) inside a
    :func:`global_generator` block of this thread, where the draw is the fit's
    own; a generator of its own outside (predictions, features), so that they
    never advance the global generator that a seeded fit in another thread
    draws from."""
    return None if getattr(_HELD, "depth", 0) else torch.Generator()

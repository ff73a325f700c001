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

__all__ = ["global_generator"]

_LOCK = threading.RLock()


@contextlib.contextmanager
def global_generator(seed=None):
    """Hold torch's global CPU generator for the block: seeded with ``seed`` and
    put back as it was after (None: left unseeded and advanced by the block's
    draws, as an unseeded build does)."""
    with _LOCK, torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(int(seed))
        yield

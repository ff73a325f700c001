import numpy as np
import pytest
import torch
from domain_shift import shift_task

# One intra-op thread: tiny test models gain nothing from more, and on a shared
# machine with few cores OpenMP threads spin while other processes hold the
# cores, which slows every test many times over.
torch.set_num_threads(1)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def uint8_images(rng):
    """Eight 32x32 RGB uint8 images, channels last."""
    return rng.integers(0, 256, size=(8, 32, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def task():
    """The covariate-shift task of ``domain_shift.shift_task``."""
    return shift_task()

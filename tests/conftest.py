import numpy as np
import pytest
import torch

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def uint8_images(rng):
    """Eight 32x32 RGB uint8 images, channels last."""
    return rng.integers(0, 256, size=(8, 32, 32, 3), dtype=np.uint8)

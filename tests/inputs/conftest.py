"""Small images for the image input tests, and the features of the RGB ones."""

import numpy as np
import pytest

from image_inputs import features


@pytest.fixture
def rgb(rng):
    """Six 16x16 RGB uint8 images, channels last."""
    return rng.integers(0, 256, size=(6, 16, 16, 3), dtype=np.uint8)


@pytest.fixture
def grey(rng):
    """Six 16x16 grey uint8 images."""
    return rng.integers(0, 256, size=(6, 16, 16), dtype=np.uint8)


@pytest.fixture
def expected(rgb):
    """Features of ``rgb`` given as a uint8 (N, H, W, C) array."""
    result = features(rgb)
    assert result.shape == (6, 64) and result.dtype == np.float32
    # Different images give clearly different features, so equalities below mean
    # something.
    assert np.abs(result[0] - result[1]).max() > 1e-3
    assert np.abs(result).max() > 1e-3
    return result

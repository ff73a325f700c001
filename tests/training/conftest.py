"""The fixture the training core's tests share: three blobs in six dimensions."""

import pytest
from sklearn.datasets import make_blobs


@pytest.fixture
def blobs():
    return make_blobs(n_samples=90, centers=3, n_features=6, random_state=0)

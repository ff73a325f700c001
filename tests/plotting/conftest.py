"""Figures closed after each display test; two DomainAdaptClassifiers fitted once."""

import numpy as np
import pytest

from sktransfer import DomainAdaptClassifier

from plot_data import blobs


@pytest.fixture(autouse=True)
def close_figures():
    yield
    import matplotlib.pyplot as plt  # the test modules chose the Agg backend

    plt.close("all")


@pytest.fixture(scope="session")
def adapted():
    """A source-only and a CORAL DomainAdaptClassifier on the blobs, 3 epochs."""
    X_source, y_source, X_target = blobs()
    X = np.vstack([X_source, X_target])
    y = np.concatenate([y_source, -np.ones(len(X_target), dtype=int)])
    params = dict(model=None, epochs=3, device="cpu", random_state=0)
    before = DomainAdaptClassifier(method="source_only", **params).fit(X, y)
    after = DomainAdaptClassifier(method="coral", **params).fit(X, y)
    return before, after, X_source, y_source, X_target

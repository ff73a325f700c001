"""A covariate-shift task and a small DomainAdaptClassifier, shared by the tests
of the classifier (classifiers/test_domain_adapt.py) and of the scorers
(test_metrics.py)."""

import numpy as np

from sktransfer import DomainAdaptClassifier


def shift_task(n=200, offset=3.0, seed=0):
    """Two classes split along x0; the target domain is the source moved by
    ``offset`` along x0 and x1, so a source-only boundary puts most target
    samples of class 0 into class 1."""
    rng = np.random.default_rng(seed)

    def domain(off):
        y = rng.integers(0, 2, n)
        X = rng.normal(size=(n, 4)) * 0.6
        X[:, 0] += np.where(y == 1, 2.0, -2.0) + off
        X[:, 1] += off
        return X.astype(np.float32), y

    X_source, y_source = domain(0.0)
    X_target, _ = domain(offset)
    X_test, y_test = domain(offset)
    X = np.vstack([X_source, X_target])
    y = np.concatenate([y_source, -np.ones(n, dtype=int)])
    return X, y, X_test, y_test


def da(**params):
    defaults = dict(model=None, epochs=40, lr=1e-2, random_state=0, device="cpu")
    defaults.update(params)
    return DomainAdaptClassifier(**defaults)

"""What the display tests share: two shifted blobs, a hand-written history and a
small prediction task."""

import numpy as np


def blobs(n=40, seed=0):
    """Two classes; the target domain is the source shifted by 2."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X_source = (rng.normal(size=(n, 3)) + np.where(y == 1, 2.0, -2.0)[:, None])
    X_target = X_source + 2.0
    return X_source.astype(np.float32), y, X_target.astype(np.float32)


def hand_history(n=5):
    return [{"epoch": e, "train_loss": 1.0 / e + 0.1, "supervised_loss": 0.8 / e,
             "adaptation_loss": 0.3 / e, "valid_loss": None if e == 1 else 0.9 / e,
             "valid_score": 0.5 + 0.05 * e, "lr": 1e-3 * e, "duration": 0.1}
            for e in range(1, n + 1)]


def proba_task(n=12, seed=0):
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(3), size=n)
    classes = np.array(["ant", "bee", "cat"])
    y_true = classes[rng.integers(0, 3, n)]
    return proba, classes, y_true

"""The estimators' one entry point for ``X``: flat sklearn data or images."""

import numpy as np

from .._sklearn_compat import validate_data
from ._sources import check_images, check_input_shape, is_tabular


def validate_images(estimator, X, *, reset, input_shape, in_chans=3):
    """Check ``X`` for ``estimator`` and return an ``ImageSource``.

    Flat ``(n_samples, n_features)`` input goes through scikit-learn's
    ``validate_data`` (so ``n_features_in_`` and ``feature_names_in_`` are set at
    fit and checked afterwards) and is reshaped to images by ``input_shape``.
    Anything else is checked by :func:`check_images`.
    """
    if is_tabular(X):
        X = validate_data(
            estimator, X, reset=reset, dtype=[np.float32, np.float64],
            ensure_min_samples=1,
        )
        if input_shape is None:
            raise ValueError(
                f"X is a 2-D array of shape {X.shape}, but "
                f"{type(estimator).__name__} expects images (N, H, W[, C]), a list "
                "of PIL images or file paths. If each row is a flattened image, "
                "pass input_shape=(height, width) or (height, width, channels), "
                "e.g. input_shape=(8, 8) for sklearn's load_digits().data."
            )
        shape = check_input_shape(input_shape, X.shape[1])
        images = X.reshape(X.shape[0], *shape).astype(np.float32, copy=False)
        return check_images(images, in_chans=in_chans)
    if reset:
        for attribute in ("n_features_in_", "feature_names_in_"):
            if hasattr(estimator, attribute):
                delattr(estimator, attribute)
    return check_images(X, in_chans=in_chans)

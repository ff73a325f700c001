"""The estimators' one entry point for ``X``: flat sklearn data or images."""

import os

import numpy as np
import torch

from .._sklearn_compat import validate_data
from .._utils.frames import in_memory
from ._sources import check_images, check_input_shape, is_tabular


def _has_integer_dtype(X):
    """Whether flat ``X`` holds integers (not bool), which must reach
    :func:`check_images` as integers: uint8 rows are 0-255 pixels, not 0-1 floats."""
    if isinstance(X, torch.Tensor):
        return not (X.is_floating_point() or X.is_complex() or X.dtype == torch.bool)
    dtypes = getattr(X, "dtypes", None)  # a DataFrame: every column
    if dtypes is not None and not hasattr(X, "tocsr"):
        kinds = [getattr(dtype, "kind", "O") for dtype in dtypes]
        return len(kinds) > 0 and all(kind in "iu" for kind in kinds)
    dtype = getattr(X, "dtype", None)
    if dtype is None:
        try:
            dtype = np.asarray(X).dtype
        except Exception:  # let validate_data report it
            return False
    return getattr(dtype, "kind", "O") in "iu"


def _refuse_frame_of_paths(X):
    """A DataFrame of several columns, some of them strings (file paths, most
    likely), is refused with how to pass the path column, before scikit-learn's
    validation fails to read the strings as numbers."""
    if type(X).__name__ != "DataFrame" or X.ndim != 2:
        return
    text = []
    for position in range(X.shape[1]):
        column = X.iloc[:, position].dropna()
        if len(column) and isinstance(column.iloc[0], (str, os.PathLike)):
            text.append(X.columns[position])
    if not text:
        return
    first = text[0]
    raise ValueError(
        f"X is a DataFrame of {X.shape[1]} columns, and the column(s) "
        f"{', '.join(repr(name) for name in text)} hold strings (file paths?), which "
        "are not numbers. For images from file paths, pass the path column alone: "
        f"X[[{first!r}]] (a one-column DataFrame) or X[{first!r}]; to use the other "
        "columns too, send the path column to this estimator and the others "
        "elsewhere with a ColumnTransformer, e.g. make_column_transformer("
        f"(estimator, [{first!r}]), remainder='passthrough')."
    )


def validate_images(estimator, X, *, reset, input_shape, in_chans=3):
    """Check ``X`` for ``estimator`` and return an ``ImageSource``.

    Flat ``(n_samples, n_features)`` input goes through scikit-learn's
    ``validate_data`` (so ``n_features_in_`` and ``feature_names_in_`` are set at
    fit and checked afterwards) and is reshaped to images by ``input_shape``.
    Integer rows keep their dtype through it and follow the integer rule of
    :func:`check_images` (uint8 and other integers in 0-255 are 8-bit pixels,
    uint16 is 0-65535); other rows become floats read as values in [0, 1].
    Anything else is checked by :func:`check_images`. A dask DataFrame or
    Series is computed first.
    """
    X = in_memory(X)
    if is_tabular(X):
        _refuse_frame_of_paths(X)
        integer = _has_integer_dtype(X)
        X = validate_data(
            estimator, X, reset=reset,
            dtype=None if integer else [np.float32, np.float64],
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
        if X.dtype.kind in "iu":
            # C order (a DataFrame's values are column-major), so that rows give
            # the very features of the same (N, H, W, C) array.
            images = np.ascontiguousarray(X).reshape(X.shape[0], *shape)
        else:
            images = X.reshape(X.shape[0], *shape).astype(np.float32, copy=False)
        return check_images(images, in_chans=in_chans)
    if reset:
        for attribute in ("n_features_in_", "feature_names_in_"):
            if hasattr(estimator, attribute):
                delattr(estimator, attribute)
    return check_images(X, in_chans=in_chans)

"""The one place that imports scikit-learn's private helpers.

scikit-learn does not promise these names; keeping them here means a change in
a later release is mended in one file.
"""

from sklearn.base import _fit_context
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data


def get_param_names(cls):
    """The names of the constructor parameters of the scikit-learn estimator
    class ``cls`` (sorted), as ``get_params`` lists them: scikit-learn's private
    ``BaseEstimator._get_param_names``."""
    return cls._get_param_names()


__all__ = [
    "HasMethods",
    "Interval",
    "StrOptions",
    "_check_sample_weight",
    "_fit_context",
    "_safe_indexing",
    "check_is_fitted",
    "get_param_names",
    "validate_data",
    "validate_parameter_constraints",
]

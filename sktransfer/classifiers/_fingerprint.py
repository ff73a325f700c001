"""The fingerprint of a fit: a digest of everything that defines it.

:class:`~sktransfer.training.Checkpoint` resumes a fit only when the fit it
finds in its folder has the same fingerprint, so a folder copied by ``clone``
into every fold of ``cross_val_score`` or candidate of ``GridSearchCV`` never
hands one fit's model to another. The digest covers the estimator's class, its
parameters (but those that do not change what is learned: ``callbacks``,
``verbose``, ``num_workers``, ``device``), a digest of every sample (the
feature cache's content keys: bytes for arrays and images, identity and
version for files), the labels, the sample weights, the rows trained on, the
seed and where the fit starts (its first epoch, whether it is scheduled).
"""

import json

import numpy as np
import torch

from .._utils.hashing import digest_parts, weights_fingerprint
from ..feature_extraction._cache import image_keys

#: Parameters that do not change what a fit learns.
_NOT_DEFINING = ("callbacks", "verbose", "num_workers", "device")


def _describe(value):
    """A JSON-able description of a parameter value: modules by their class,
    structure and weights, other objects by their class and repr."""
    if isinstance(value, torch.nn.Module):
        kind = type(value)
        return {"module": f"{kind.__module__}.{kind.__qualname__}", "repr": repr(value),
                "weights": weights_fingerprint(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_describe(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _describe(item) for key, item in sorted(value.items(), key=str)}
    if isinstance(value, np.generic):
        return value.item()
    kind = type(value)
    return {"object": f"{kind.__module__}.{kind.__qualname__}", "repr": repr(value)}


def fit_fingerprint(estimator, data, *, start_epoch, schedule, extra=()):
    """The digest (32 hexadecimal digits) of the fit of ``estimator`` on
    ``data`` (a :class:`~sktransfer.classifiers._base.FitData`), starting at
    epoch ``start_epoch``; ``extra`` arrays join it."""
    params = {name: _describe(value)
              for name, value in estimator.get_params(deep=False).items()
              if name not in _NOT_DEFINING}
    kind = type(estimator)
    digest = digest_parts(f"{kind.__module__}.{kind.__qualname__}",
                          json.dumps(params, sort_keys=True, default=str),
                          data.seed, start_epoch, schedule)
    for key in image_keys(data.source):
        digest.update(key.encode())
    for array in (data.targets, data.sample_weight, data.labeled_rows, *extra):
        array = np.ascontiguousarray(array)
        digest.update(f"|{array.dtype}|{array.shape}|".encode())
        digest.update(array.data)
    return digest.hexdigest()

"""Parameters every estimator shares, written once: their constraints (checked
at ``fit`` by scikit-learn's ``_parameter_constraints``) and their docs.

Each estimator keeps an explicit ``__init__`` signature (scikit-learn reads its
parameters from it) and takes the constraints of the shared ones from
:data:`COMMON_CONSTRAINTS`; the classifiers take their docs from
:mod:`sktransfer.classifiers._parameters`, which builds on this one.
"""

import enum
import os
from numbers import Integral

import torch

from ._device import PRECISIONS
from ._sklearn_compat import Interval, StrOptions

COMMON_CONSTRAINTS = {
    "weights": [str, os.PathLike, enum.Enum, None],
    "image_size": [Interval(Integral, 1, None, closed="left"), tuple, None],
    "input_shape": [tuple, list, None],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "device": [str, torch.device],
    "precision": [StrOptions(set(PRECISIONS))],
    "num_workers": [Interval(Integral, 0, None, closed="left")],
    "random_state": ["random_state"],
}

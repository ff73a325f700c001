"""Warnings attributed to the user's line (a leaf).

A warning of sktransfer is raised deep inside a fit, a load or a transform,
under scikit-learn's and joblib's wrappers; a hand-counted ``stacklevel`` is
right for one path and wrong for the next. :func:`warn` attributes the warning
to the first frame, walking out from where it is raised, whose file belongs to
none of the libraries a call passes through on its way in (sktransfer,
scikit-learn, joblib, torch, and the standard library's pickle, threading and
concurrent.futures): the user's line, as scikit-learn's own warnings point at
the line that called ``fit``.
"""

import concurrent.futures
import os
import pickle
import sys
import threading
import warnings

import joblib
import sklearn
import torch

__all__ = ["warn"]


def _folder(module):
    return os.path.dirname(os.path.abspath(module.__file__)) + os.sep


_PASSED_THROUGH = tuple({
    _folder(sys.modules[__name__.split(".")[0]]),
    _folder(sklearn),
    _folder(joblib),
    _folder(torch),
    _folder(concurrent.futures),
})
_PASSED_THROUGH_FILES = frozenset(os.path.abspath(module.__file__)
                                  for module in (pickle, threading))


def _passed_through(filename):
    path = os.path.abspath(filename)
    return path.startswith(_PASSED_THROUGH) or path in _PASSED_THROUGH_FILES


def warn(message, category=UserWarning):
    """``warnings.warn(message, category)`` at the user's line (see the module).

    Where every frame belongs to those libraries (a worker thread), the
    warning is attributed to the outermost frame.
    """
    frame = sys._getframe(1)
    level = 2
    while frame.f_back is not None and _passed_through(frame.f_code.co_filename):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)

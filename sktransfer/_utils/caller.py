"""Warnings attributed to the user's line (a leaf).

A warning of sktransfer is raised deep inside a fit, a load or a transform,
under scikit-learn's and joblib's wrappers; a hand-counted ``stacklevel`` is
right for one path and wrong for the next. :func:`warn` attributes the warning
to the first frame, walking out from where it is raised, whose file belongs to
none of the libraries a call passes through on its way in (sktransfer,
scikit-learn, joblib, torch, and the standard library's pickle, threading,
multiprocessing and concurrent.futures): the user's line, as scikit-learn's own warnings point at
the line that called ``fit``.

Nothing is imported here: a library that is not imported yet has no frame on
the stack (the command line's ``--help`` imports neither torch nor
scikit-learn).
"""

import os
import sys
import warnings

__all__ = ["warn"]

_PACKAGES = (__name__.split(".")[0], "sklearn", "joblib", "torch", "concurrent.futures",
             "multiprocessing")
_MODULES = ("pickle", "threading")


def _passed_through(filename):
    path = os.path.abspath(filename)
    for name in _PACKAGES:
        module = sys.modules.get(name)
        if module is not None and path.startswith(
                os.path.dirname(os.path.abspath(module.__file__)) + os.sep):
            return True
    return any(name in sys.modules and path == os.path.abspath(sys.modules[name].__file__)
               for name in _MODULES)


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

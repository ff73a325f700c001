"""Version stamps on pickled estimators, and the warning for another version.

A leaf: every estimator stamps its pickled state here, and the safe file format
of :mod:`sktransfer.persistence` warns through the same function.
"""


from .caller import warn
from .. import _version

_VERSION_KEY = "_sktransfer_version"  # the key stamped into pickled states


class InconsistentVersionWarning(UserWarning):
    """An estimator is loaded by another version of sktransfer than saved it.

    Raised when unpickling (``pickle``, ``joblib``) or loading with
    :func:`sktransfer.load`. The estimator loads, but its parameters, fitted
    attributes or weights may not mean the same thing in this version.

    Parameters
    ----------
    estimator_name : str
        Name of the estimator's class.
    current_version : str
        The sktransfer version loading it.
    original_version : str or None
        The sktransfer version that saved it; ``None`` for a pickle written
        before sktransfer recorded its version.
    """

    # Not keyword-only: an exception pickles (between processes) through its args.
    def __init__(self, estimator_name, current_version, original_version):
        super().__init__(estimator_name, current_version, original_version)
        self.estimator_name = estimator_name
        self.current_version = current_version
        self.original_version = original_version

    def __str__(self):
        saved = (f"sktransfer {self.original_version}" if self.original_version
                 else "a version of sktransfer too old to record it (version unknown)")
        return (
            f"{self.estimator_name} was saved by {saved} and is loaded by sktransfer "
            f"{self.current_version}. Its parameters, fitted attributes or weights "
            "may not mean the same thing in this version: check its predictions, or "
            "refit it with this version and save it again."
        )


def current_version():
    """The version of sktransfer running now (read at call time)."""
    return _version.__version__  # looked up now: a test may change it


def stamp_version(state):
    """``state`` (an estimator's pickled ``__dict__``) with sktransfer's version."""
    state[_VERSION_KEY] = current_version()
    return state


def check_version(estimator, state):
    """Take the version stamp out of a pickled ``state``; warn when it is not ours."""
    original = state.pop(_VERSION_KEY, None)
    warn_if_other_version(type(estimator), original)
    return state


def warn_if_other_version(cls, original):
    """Warn with :class:`InconsistentVersionWarning` when ``original`` (the
    version that saved an estimator of class ``cls``) is not this one."""
    current = current_version()
    if original != current:
        warn(
            InconsistentVersionWarning(
                estimator_name=cls.__name__,
                current_version=current,
                original_version=original,
            ),  # the caller of pickle.loads / joblib.load / sktransfer.load
        )

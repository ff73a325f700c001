"""Parameters every estimator shares, written once: their constraints (checked
at ``fit`` by scikit-learn's ``_parameter_constraints``) and their docs.

Each estimator keeps an explicit ``__init__`` signature (scikit-learn reads its
parameters from it) and takes the constraints of the shared ones from
:data:`COMMON_CONSTRAINTS`; the classifiers take their docs from
:mod:`sktransfer.classifiers._parameters`, which builds on this one.
:class:`TorchParameters` makes ``get_params`` and ``clone`` take torch modules
as plain values.
"""

import copy
import enum
import inspect
import os
from numbers import Integral

import torch

from .device import PRECISIONS
from .._sklearn_compat import Interval, StrOptions

COMMON_CONSTRAINTS = {
    "weights": [str, os.PathLike, enum.Enum, None],
    "image_size": [Interval(Integral, 1, None, closed="left"), tuple, None],
    "input_shape": [tuple, list, None],
    "max_length": [Interval(Integral, 1, None, closed="left"), None],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "device": [str, torch.device],
    "precision": [StrOptions(set(PRECISIONS))],
    "num_workers": [Interval(Integral, 0, None, closed="left")],
    "random_state": ["random_state"],
}


class ParameterizedModule(torch.nn.Module):
    """A torch module with scikit-learn's parameter protocol: ``get_params``
    reads the constructor's arguments stored under their own names (those not
    stored are left out), ``set_params`` sets them, and an estimator's
    ``get_params(deep=True)`` lists them as ``<parameter>__<name>`` (so
    ``set_params`` and ``GridSearchCV`` reach them). ``clone`` still deep-copies
    such a module as a plain value (see :func:`_is_plain`)."""

    @classmethod
    def _param_names(cls):
        init = cls.__init__
        if init is ParameterizedModule.__init__ or init is torch.nn.Module.__init__:
            return []
        # The named arguments only (scikit-learn's estimators take no **kwargs:
        # what goes through them is not a parameter get_params can read).
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return sorted(p.name for p in inspect.signature(init).parameters.values()
                      if p.name != "self" and p.kind in kinds)

    def get_params(self, deep=True):
        """The constructor's arguments, as stored.

        Parameters
        ----------
        deep : bool, default=True
            Ignored (the arguments are values).

        Returns
        -------
        params : dict
        """
        params = {}
        for name in self._param_names():
            try:  # an argument that is a module lives in _modules: getattr finds it
                params[name] = getattr(self, name)
            except AttributeError:  # not stored under its name: left out
                continue
        return params

    def set_params(self, **params):
        """Set constructor arguments by name.

        Returns
        -------
        self
        """
        names = self._param_names()
        for name, value in params.items():
            if name not in names:
                raise ValueError(f"Invalid parameter {name!r} for {type(self).__name__}; "
                                 f"its parameters are {names}.")
            setattr(self, name, value)
        return self

    def changed_params(self):
        """The arguments that differ from their defaults (what scikit-learn's
        repr shows); a module among them is shown by torch's repr as a child."""
        defaults = {p.name: p.default for p in
                    inspect.signature(type(self).__init__).parameters.values()}
        return {name: value for name, value in self.get_params().items()
                if not isinstance(value, torch.nn.Module)
                and not _same(value, defaults.get(name, inspect.Parameter.empty))}


def _same(value, default):
    try:
        return type(value) is type(default) and bool(value == default)
    except Exception:  # an array, a tensor: not the default
        return False


def _is_plain(value):
    """Whether a parameter value is a value, never a nested estimator: a torch
    module (a network, a ``torchvision.transforms.v2`` transform) is one, even
    with a ``get_params`` of its own (``RandomResizedCrop.get_params`` is
    torchvision's static draw of a crop, which scikit-learn would call)."""
    return isinstance(value, torch.nn.Module)


class _PlainValue:
    """A parameter that :func:`sklearn.base.clone` deep-copies as it is."""

    def __init__(self, value):
        self.value = value

    def __sklearn_clone__(self):
        return copy.deepcopy(self.value)


class TorchParameters:
    """``get_params`` and ``__sklearn_clone__`` for estimators whose parameters
    may be torch modules (``model=``, ``augment=``).

    scikit-learn treats any value with a ``get_params`` as a nested estimator:
    ``get_params(deep=True)`` lists its parameters and ``clone`` clones it
    through them. A torch module is a plain value instead (see
    :func:`_is_plain`): listed as it is, and deep-copied by ``clone``. Put it
    before ``BaseEstimator`` in the bases.
    """

    def get_params(self, deep=True):
        """Parameters of this estimator, and of the estimators among them when
        ``deep`` (a torch module is a plain value, not recursed into).

        Parameters
        ----------
        deep : bool, default=True

        Returns
        -------
        params : dict
        """
        params = super().get_params(deep=False)
        if not deep:
            return params
        out = {}
        for key, value in params.items():
            if isinstance(value, ParameterizedModule) or (
                    hasattr(value, "get_params") and not isinstance(value, type)
                    and not _is_plain(value)):
                out.update((f"{key}__{k}", v) for k, v in value.get_params().items())
            out[key] = value
        return out

    def __sklearn_clone__(self):
        plain = {k: v for k, v in self.get_params(deep=False).items() if _is_plain(v)}
        if not plain:
            return super().__sklearn_clone__()
        # scikit-learn's clone of a stand-in whose plain values deep-copy
        # themselves. A shallow copy of the attributes, not copy.copy: that
        # would go through __getstate__, which serialises a fitted network.
        stand_in = object.__new__(type(self))
        vars(stand_in).update(vars(self))
        vars(stand_in).update({k: _PlainValue(v) for k, v in plain.items()})
        return super(TorchParameters, stand_in).__sklearn_clone__()

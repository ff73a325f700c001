"""sktransfer: transfer learning with pretrained networks (image CNNs and ViTs, text
transformers) as scikit-learn estimators."""

import importlib

from ._version import __version__
from ._utils.versioning import InconsistentVersionWarning

# The estimators and ``save`` / ``load`` import torch and scikit-learn, which
# take seconds; they are imported on first use (PEP 562), so that ``import
# sktransfer`` and the command line's ``--help`` stay fast. ``from sktransfer
# import FineTuneClassifier`` and ``sktransfer.FineTuneClassifier`` work as ever.
_LAZY = {
    "DomainAdaptClassifier": "classifiers",
    "DomainAdaptRegressor": "classifiers",
    "FineTuneClassifier": "classifiers",
    "FineTuneRegressor": "classifiers",
    "PretrainedFeatureExtractor": "feature_extraction",
    "load": "persistence",
    "save": "persistence",
}
# Subpackages reachable as attributes after a plain ``import sktransfer``.
_SUBMODULES = frozenset({
    "adaptation", "backbones", "classifiers", "datasets", "feature_extraction",
    "inputs", "metrics", "persistence", "plotting", "training",
})

__all__ = [
    "DomainAdaptClassifier",
    "DomainAdaptRegressor",
    "FineTuneClassifier",
    "FineTuneRegressor",
    "InconsistentVersionWarning",
    "PretrainedFeatureExtractor",
    "__version__",
    "load",
    "save",
]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_LAZY, *_SUBMODULES})

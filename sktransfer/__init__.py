"""sktransfer: transfer learning with pretrained CNNs as scikit-learn estimators."""

from ._persistence import InconsistentVersionWarning, load, save
from ._version import __version__
from .classifiers import DomainAdaptClassifier, FineTuneClassifier
from .feature_extraction import PretrainedFeatureExtractor

__all__ = [
    "DomainAdaptClassifier",
    "FineTuneClassifier",
    "InconsistentVersionWarning",
    "PretrainedFeatureExtractor",
    "__version__",
    "load",
    "save",
]

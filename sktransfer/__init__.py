"""sktransfer: transfer learning with pretrained CNNs as scikit-learn estimators."""

from ._version import __version__
from ._versioning import InconsistentVersionWarning
from .classifiers import DomainAdaptClassifier, FineTuneClassifier
from .feature_extraction import PretrainedFeatureExtractor
from .persistence import load, save

__all__ = [
    "DomainAdaptClassifier",
    "FineTuneClassifier",
    "InconsistentVersionWarning",
    "PretrainedFeatureExtractor",
    "__version__",
    "load",
    "save",
]

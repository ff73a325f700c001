"""sktransfer: transfer learning with pretrained CNNs as scikit-learn estimators."""

from ._version import __version__
from .classifiers import FineTuneClassifier
from .feature_extraction import PretrainedFeatureExtractor

__all__ = ["FineTuneClassifier", "PretrainedFeatureExtractor", "__version__"]

"""sktransfer: transfer learning with pretrained CNNs as scikit-learn estimators."""

from ._version import __version__
from .feature_extraction import PretrainedFeatureExtractor

__all__ = ["PretrainedFeatureExtractor", "__version__"]

"""The two classifiers, on one shared training core."""

from .domain_adapt import DomainAdaptClassifier
from .finetune import FineTuneClassifier

__all__ = ["DomainAdaptClassifier", "FineTuneClassifier"]

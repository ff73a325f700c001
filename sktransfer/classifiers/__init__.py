"""The two classifiers, on one shared training core."""

from .finetune import FineTuneClassifier

__all__ = ["FineTuneClassifier"]

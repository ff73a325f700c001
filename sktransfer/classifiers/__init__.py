"""The classifiers and the regressor, on one shared training core."""

from .domain_adapt import DomainAdaptClassifier
from .domain_adapt_regressor import DomainAdaptRegressor
from .finetune import FineTuneClassifier
from .finetune_regressor import FineTuneRegressor

__all__ = ["DomainAdaptClassifier", "DomainAdaptRegressor", "FineTuneClassifier",
           "FineTuneRegressor"]

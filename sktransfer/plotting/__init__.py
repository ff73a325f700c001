"""Pictures of transfer learning, as scikit-learn Display objects.

Each display computes its values in a ``from_estimator`` (or ``from_*``)
classmethod, keeps them as attributes, and draws them with ``plot(ax=None)``,
which keeps the matplotlib artists as attributes ending in ``_`` (``ax_``,
``figure_``, ``lines_``, ...), as scikit-learn's displays do.

* :class:`TrainingHistoryDisplay` - loss, validation score and learning rate
  per epoch of a FineTuneClassifier or DomainAdaptClassifier.
* :class:`DomainShiftDisplay` - source and target features in 2-D (PCA or
  t-SNE), before and after adaptation.
* :class:`TopLossesDisplay` - the samples with the highest loss as thumbnails.
* :class:`ConfusionMatrixDisplay` - scikit-learn's, re-exported unchanged.

matplotlib is imported only when something is drawn: this module imports
without it, and drawing without it raises an ImportError that says
``pip install "sktransfer[plot]"``.
"""

from sklearn.metrics import ConfusionMatrixDisplay

from ._domain_shift import DomainShiftDisplay
from ._history import TrainingHistoryDisplay
from ._top_losses import TopLossesDisplay

__all__ = [
    "ConfusionMatrixDisplay",
    "DomainShiftDisplay",
    "TopLossesDisplay",
    "TrainingHistoryDisplay",
]

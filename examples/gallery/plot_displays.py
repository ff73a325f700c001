"""
Pictures of a domain shift and of a model's mistakes
====================================================

:mod:`sktransfer.plotting` follows scikit-learn's Display convention:
``XxxDisplay.from_estimator(...)`` computes and draws, and the artists stay on the
display (``ax_``, ``figure_``, ...). Here a tiny LeNet adapts from grey digits to
digits blended with photographs (:func:`~sktransfer.datasets.load_digits_shift`),
and three displays show what happened: the training history with the adaptation
loss apart from the supervised one, the source and target features before and
after adaptation, and the target images the adapted model gets most confidently
wrong.
"""

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from sktransfer import DomainAdaptClassifier
from sktransfer.datasets import load_digits_shift
from sktransfer.plotting import DomainShiftDisplay, TopLossesDisplay, TrainingHistoryDisplay

torch.set_num_threads(1)
data = load_digits_shift(random_state=0)
X = np.concatenate([data.X_source, data.X_target])
y = np.concatenate([data.y_source, np.full(len(data.X_target), -1)])


def lenet():
    """32x32 RGB images -> 64 features."""
    model = nn.Sequential(
        nn.Conv2d(3, 16, 5), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 5 * 5, 64), nn.ReLU(),
    )
    model.num_features = 64
    return model


def fit(method):
    torch.manual_seed(0)
    return DomainAdaptClassifier(model=lenet(), weights=None, method=method, epochs=8,
                                 batch_size=64, lr=3e-3, device="cpu",
                                 random_state=0).fit(X, y)


before, after = fit("source_only"), fit("mcc")
print(f"target test accuracy: source only {before.score(data.X_test, data.y_test):.3f}, "
      f"mcc {after.score(data.X_test, data.y_test):.3f}")

# %%
# The training history
# --------------------
# ``train_loss`` is the supervised loss plus ``trade_off`` times the adaptation
# loss; the history keeps both parts.
display = TrainingHistoryDisplay.from_estimator(after)
display.figure_.set_size_inches(9, 3)
plt.show()

# %%
# The domain shift, before and after adaptation
# ---------------------------------------------
# A PCA of the network's features of source and target test images: colour is the
# domain, the marker the class.
display = DomainShiftDisplay.from_estimator(
    after, data.X_source[:300], data.X_test[:300], y_source=data.y_source[:300],
    y_target=data.y_test[:300], before=before)
display.figure_.set_size_inches(10, 4.5)
plt.show()

# %%
# The most confidently wrong target images
# ----------------------------------------
# fastai's "top losses": the images with the highest loss, their true and
# predicted labels and the probability given to the prediction.
display = TopLossesDisplay.from_estimator(after, data.X_test, data.y_test, n=12)
display.figure_.set_size_inches(8, 6)
plt.show()

"""
Fine-tuning a pretrained CNN
============================

:class:`~sktransfer.FineTuneClassifier` puts a new linear head on a pretrained
backbone and trains it, with a scikit-learn interface. Here the head trains alone
for one epoch, then the last stage of EfficientNet-Lite0 trains with it; a
held-out validation set is scored after every epoch and kept in ``history_``.
"""

import time

import matplotlib.pyplot as plt
import torch

from sktransfer import FineTuneClassifier
from sktransfer.datasets import load_photo_patches

torch.set_num_threads(1)

X_train, y_train = load_photo_patches(split="train", n_per_class=12, patch_size=64)
X_test, y_test = load_photo_patches(split="test", n_per_class=10, patch_size=64)

clf = FineTuneClassifier(
    model="efficientnet_lite0",
    freeze=1,              # train the last stage of the backbone ...
    unfreeze_after=1,      # ... after one epoch of the head alone
    epochs=4,
    lr=3e-3,
    batch_size=16,
    image_size=64,
    early_stopping=True,   # holds out validation_fraction, keeps the best epoch
    validation_fraction=0.2,
    patience=3,
    device="cpu",
    random_state=0,
)
start = time.perf_counter()
clf.fit(X_train, y_train)
print(f"fit in {time.perf_counter() - start:.1f} s")
print(f"test accuracy: {clf.score(X_test, y_test):.3f}")

# %%
# The history
# -----------
# One dict per epoch: the training loss, and the validation loss and score.
for record in clf.history_:
    print({key: round(value, 3) if isinstance(value, float) else value
           for key, value in record.items()})

# %%
# :class:`~sktransfer.plotting.TrainingHistoryDisplay` draws it: losses, the
# validation score and the learning rate, epoch by epoch.
from sktransfer.plotting import TrainingHistoryDisplay

display = TrainingHistoryDisplay.from_estimator(clf)
display.figure_.set_size_inches(9, 3)
plt.show()

# %%
# It is a scikit-learn classifier: ``predict_proba``, ``clone``, ``GridSearchCV``,
# ``cross_val_score`` and pickling all work as for any other.
print(clf.predict_proba(X_test[:3]).round(2))

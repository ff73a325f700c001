"""Tiny fits shared by the tests of the training core (tests/training) and of
the classifiers' parameters (tests/classifiers): an MLP on flat rows, a small
CNN on 16x16 images, and a callback that presses Ctrl-C once."""

import numpy as np

from sktransfer import FineTuneClassifier
from sktransfer.training import Callback


def mlp(**params):
    params = {**dict(model=None, epochs=4, batch_size=16, device="cpu", random_state=0),
              **params}
    return FineTuneClassifier(**params)


class InterruptAt(Callback):
    """Ctrl-C in the middle of an epoch, once."""

    def __init__(self, epoch, batch=1):
        self.epoch = epoch
        self.batch = batch
        self.seen = 0

    def on_epoch_begin(self, state):
        self.seen = 0

    def on_batch_end(self, state, loss):
        self.seen += 1
        if state.epoch == self.epoch and self.seen == self.batch:
            raise KeyboardInterrupt


def images_task():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (48, 16, 16, 3), dtype=np.uint8)
    y = np.repeat([0, 1, 2], 16)
    X[y == 1, :8] //= 3  # something to learn
    return X, y


def cnn(**params):
    params = {**dict(model="simple_cnn", weights=None, image_size=16, epochs=4,
                     batch_size=8, device="cpu", random_state=0), **params}
    return FineTuneClassifier(**params)

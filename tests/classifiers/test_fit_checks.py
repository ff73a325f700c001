"""What a fit says before and while it trains: missing labels named by row, a
freeze beyond the backbone's stages, a fit that will clearly be long on a CPU."""

import warnings

import numpy as np
import pytest

from sktransfer import DomainAdaptClassifier, FineTuneClassifier
from sktransfer.training._callbacks import LongFitWarning


def images(n=16):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8), np.arange(n) % 2


def cnn(**params):
    return FineTuneClassifier(**{**dict(model="simple_cnn", weights=None, image_size=16,
                                        epochs=1, batch_size=8, device="cpu",
                                        random_state=0), **params})


@pytest.mark.parametrize("y", [
    np.array([0, 1, None, 1, 0, 1] * 2, dtype=object),
    np.array(["a", "b", None, "a", "b", "a"] * 2, dtype=object),
    np.array([0.0, 1.0, np.nan, 1.0, 0.0, 1.0] * 2),
])
def test_missing_labels_are_named_by_row(y):
    X = np.random.default_rng(0).normal(size=(12, 4))
    with pytest.raises(ValueError, match="missing label.*row 2"):
        FineTuneClassifier(model=None, epochs=1, device="cpu").fit(X, y)


def test_missing_labels_in_domain_adaptation():
    X = np.random.default_rng(0).normal(size=(12, 4))
    y = np.array([0, 1, -1, None, 0, 1, -1, -1, 0, 1, -1, -1], dtype=object)
    with pytest.raises(ValueError, match="row 3"):
        DomainAdaptClassifier(model=None, epochs=1, device="cpu").fit(X, y)


def test_texts_given_to_the_flat_input_model_say_which_backbone_reads_them():
    """scikit-learn's error ("could not convert string to float") stays, as its
    checks ask, with a note naming the text backbone."""
    texts = np.array([["I love this phone"], ["awful"]] * 4, dtype=object)
    with pytest.raises(ValueError, match="could not convert string to float") as info:
        FineTuneClassifier(model=None, epochs=1, device="cpu").fit(texts, [0, 1] * 4)
    assert any("model='all-MiniLM-L6-v2'" in note for note in info.value.__notes__)


def test_freeze_beyond_the_stages_warns():
    X, y = images()
    with pytest.warns(UserWarning, match="freeze=1000 is more than the 6 stages"):
        cnn(freeze=1000).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        cnn(freeze=6).fit(X, y)  # exactly every stage: no warning


def test_long_fit_warning_estimates_from_the_first_batches():
    X, y = images(32)
    slow = LongFitWarning(threshold=0.0, probe_batches=2, advice="Try something.")
    with pytest.warns(UserWarning, match=r"about \d+ minutes.*first 2 batches.*4 batches "
                                         r"per epoch, 3 epochs\). Try something."):
        cnn(epochs=3, callbacks=[("long_fit_warning", slow)]).fit(X, y)


def test_long_fit_warning_is_a_named_default_on_cpu_and_can_be_dropped(monkeypatch):
    import sktransfer.training._callbacks as callbacks

    X, y = images()
    created = []
    real = callbacks.LongFitWarning.on_fit_begin

    def record(self, state, **kwargs):
        created.append(self)
        real(self, state, **kwargs)

    monkeypatch.setattr(callbacks.LongFitWarning, "on_fit_begin", record)
    cnn().fit(X, y)
    assert len(created) == 1 and created[0].threshold == 900.0
    cnn(callbacks=[("long_fit_warning", None)]).fit(X, y)
    assert len(created) == 1  # dropped


@pytest.mark.parametrize("image_size, error", [
    ((32,), r"image_size must be an int, a \(height, width\) pair of ints or None; got "
            r"\(32,\)"),
    ((32.5, 32), r"got \(32.5, 32\)"),
    ((32, 0), r"image_size=\(32, 0\) must be positive"),
])
def test_a_bad_image_size_is_refused_before_the_backbone_is_built(monkeypatch, image_size,
                                                                   error):
    # the tuple's contents were checked only once the backbone had loaded
    import sktransfer.classifiers._base as base
    from sktransfer import DomainAdaptClassifier, FineTuneClassifier, FineTuneRegressor

    def no_backbone(*args, **kwargs):
        raise AssertionError("the backbone was built before image_size was checked")

    monkeypatch.setattr(base, "load_backbone", no_backbone)
    X = np.zeros((4, 16, 16, 3), dtype=np.uint8)
    for estimator, y in ((FineTuneClassifier, [0, 1, 0, 1]), (FineTuneRegressor, [0., 1, 2, 3]),
                         (DomainAdaptClassifier, [0, 1, -1, -1])):
        with pytest.raises((TypeError, ValueError), match=error):
            estimator(image_size=image_size).fit(X, y)

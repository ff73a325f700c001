"""DomainShiftDisplay (``plotting/_domain_shift.py``): the embedding of source and
target features, from features or an estimator before and after adaptation."""

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sktransfer import FineTuneClassifier  # noqa: E402
from sktransfer.plotting import DomainShiftDisplay  # noqa: E402

from plot_data import blobs  # noqa: E402


def test_domain_shift_from_features_offsets_are_the_embedding():
    rng = np.random.default_rng(0)
    source, target = rng.normal(size=(30, 5)), rng.normal(size=(20, 5)) + 2
    y_source = rng.integers(0, 3, 30)
    display = DomainShiftDisplay.from_features(source, target, y_source=y_source)
    expected = PCA(n_components=2, random_state=0).fit_transform(np.vstack([source, target]))
    np.testing.assert_allclose(display.embedding_source, expected[:30])
    np.testing.assert_allclose(display.embedding_target, expected[30:])
    assert len(display.axes_) == 1 and display.ax_ is display.axes_[0]
    scatters = display.scatters_[0]
    assert sorted(scatters, key=str) == [("source", 0), ("source", 1), ("source", 2),
                                         ("target", None)]
    for c in (0, 1, 2):
        np.testing.assert_allclose(scatters[("source", c)].get_offsets(),
                                   expected[:30][y_source == c])
    np.testing.assert_allclose(scatters[("target", None)].get_offsets(), expected[30:])
    assert len(display.ax_.collections) == 4
    markers = {tuple(s.get_paths()[0].vertices.ravel().round(3)) for s in
               (scatters[("source", c)] for c in (0, 1, 2))}
    assert len(markers) == 3  # one marker per class
    legend = [t.get_text() for t in display.legend_.get_texts()]
    assert legend == ["source", "target", "class 0", "class 1", "class 2"]
    assert display.ax_.get_xlabel() == "PC 1" and display.ax_.get_ylabel() == "PC 2"
    assert display.ax_.get_title() == "source and target features"


def test_domain_shift_target_labels_and_string_classes():
    rng = np.random.default_rng(1)
    source, target = rng.normal(size=(12, 4)), rng.normal(size=(10, 4))
    y_source = np.array(["cat", "dog"] * 6)
    display = DomainShiftDisplay.from_features(source, target, y_source=y_source,
                                               y_target=np.array(["dog"] * 10))
    assert sorted(display.scatters_[0]) == [("source", "cat"), ("source", "dog"),
                                            ("target", "dog")]
    # -1 target labels are unknown: drawn as circles, apart from the labelled ones
    y_target = np.array([0, 1, -1, -1, 0, 1, -1, 0, 1, -1])
    display = DomainShiftDisplay.from_features(
        source, target, y_source=np.arange(12) % 2, y_target=y_target)
    np.testing.assert_allclose(display.scatters_[0][("target", None)].get_offsets(),
                               display.embedding_target[y_target == -1])
    with pytest.raises(ValueError, match="features must match|must match"):
        DomainShiftDisplay.from_features(source, target[:, :3])


def test_domain_shift_refuses_real_valued_labels():
    """A regressor's targets are no classes: one marker per value would draw a
    legend entry per sample."""
    rng = np.random.default_rng(2)
    source, target = rng.normal(size=(12, 4)), rng.normal(size=(10, 4))
    for y in (source[:, 0], np.r_[np.zeros(11), np.nan]):
        with pytest.raises(ValueError, match="y_source holds real values"):
            DomainShiftDisplay.from_features(source, target, y_source=y)
    with pytest.raises(ValueError, match="y_target holds real values"):
        DomainShiftDisplay.from_features(source, target, y_target=target[:, 0])
    # whole numbers stored as floats are classes
    display = DomainShiftDisplay.from_features(source, target,
                                               y_source=(np.arange(12) % 2).astype(float))
    assert sorted(display.scatters_[0]) == [("source", 0.0), ("source", 1.0),
                                            ("target", None)]
    plt.close("all")


def test_domain_shift_from_estimator_before_and_after(adapted):
    before, after, X_source, y_source, X_target = adapted
    display = DomainShiftDisplay.from_estimator(
        after, X_source, X_target, y_source=y_source, before=before)
    assert [a.get_title() for a in display.axes_] == ["before adaptation",
                                                      "after adaptation"]
    assert display.ax_ is display.axes_[1]
    for model, emb_source, emb_target in (
            (before, display.embedding_source_before, display.embedding_target_before),
            (after, display.embedding_source, display.embedding_target)):
        stacked = np.vstack([model.transform(X_source), model.transform(X_target)])
        expected = PCA(n_components=2, random_state=0).fit_transform(stacked)
        np.testing.assert_allclose(emb_source, expected[:len(X_source)], atol=1e-4)
        np.testing.assert_allclose(emb_target, expected[len(X_source):], atol=1e-4)
    for panel, (emb_source, emb_target) in enumerate(
            [(display.embedding_source_before, display.embedding_target_before),
             (display.embedding_source, display.embedding_target)]):
        scatters = display.scatters_[panel]
        np.testing.assert_allclose(scatters[("target", None)].get_offsets(), emb_target)
        for c in (0, 1):
            np.testing.assert_allclose(scatters[("source", c)].get_offsets(),
                                       emb_source[y_source == c])


def test_domain_shift_pipeline_features_and_tsne_and_ax():
    X_source, y, X_target = blobs(n=30)
    pipe = make_pipeline(StandardScaler(), FineTuneClassifier(
        model=None, epochs=1, device="cpu", random_state=0)).fit(X_source, y)
    fig, ax = plt.subplots()
    display = DomainShiftDisplay.from_estimator(pipe, X_source, X_target,
                                                y_source=y, method="tsne", ax=ax)
    assert display.ax_ is ax and display.figure_ is fig
    assert display.embedding_source.shape == (30, 2)
    assert ax.get_xlabel() == "t-SNE 1"
    # the Pipeline's features: every step's transform, the classifier's too
    features = pipe[-1].transform(pipe[0].transform(X_source))
    direct = DomainShiftDisplay.from_features(
        features, pipe[-1].transform(pipe[0].transform(X_target)), method="tsne")
    np.testing.assert_allclose(display.embedding_source, direct.embedding_source,
                               atol=1e-3)
    fig, axes = plt.subplots(1, 2)
    display = DomainShiftDisplay.from_features(
        X_source, X_target, features_source_before=X_source * 2,
        features_target_before=X_target, ax=axes, names=("raw", "adapted"))
    assert display.axes_ == list(axes)
    assert [a.get_title() for a in axes] == ["raw", "adapted"]
    with pytest.raises(ValueError, match="both"):
        DomainShiftDisplay.from_features(X_source, X_target,
                                         features_source_before=X_source)

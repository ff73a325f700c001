"""sktransfer.plotting: the displays' values, artists, ax= handling and the
missing-matplotlib error."""

import doctest
import importlib
import os
import subprocess
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sktransfer import DomainAdaptClassifier, FineTuneClassifier  # noqa: E402
from sktransfer.plotting import (  # noqa: E402
    ConfusionMatrixDisplay,
    DomainShiftDisplay,
    TopLossesDisplay,
    TrainingHistoryDisplay,
)

INSTALL = 'pip install "sktransfer[plot]"'


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def blobs(n=40, seed=0):
    """Two classes; the target domain is the source shifted by 2."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X_source = (rng.normal(size=(n, 3)) + np.where(y == 1, 2.0, -2.0)[:, None])
    X_target = X_source + 2.0
    return X_source.astype(np.float32), y, X_target.astype(np.float32)


@pytest.fixture(scope="module")
def adapted():
    """A source-only and a CORAL DomainAdaptClassifier on the blobs, 3 epochs."""
    X_source, y_source, X_target = blobs()
    X = np.vstack([X_source, X_target])
    y = np.concatenate([y_source, -np.ones(len(X_target), dtype=int)])
    params = dict(model=None, epochs=3, device="cpu", random_state=0)
    before = DomainAdaptClassifier(method="source_only", **params).fit(X, y)
    after = DomainAdaptClassifier(method="coral", **params).fit(X, y)
    return before, after, X_source, y_source, X_target


def hand_history(n=5):
    return [{"epoch": e, "train_loss": 1.0 / e + 0.1, "supervised_loss": 0.8 / e,
             "adaptation_loss": 0.3 / e, "valid_loss": None if e == 1 else 0.9 / e,
             "valid_score": 0.5 + 0.05 * e, "lr": 1e-3 * e, "duration": 0.1}
            for e in range(1, n + 1)]


# -- TrainingHistoryDisplay ------------------------------------------------------

def test_history_lines_are_the_recorded_values():
    history = hand_history()
    display = TrainingHistoryDisplay.from_history(history, name="DA")
    assert list(display.axes_) == ["loss", "adaptation", "score", "lr"]
    assert sorted(display.lines_) == ["adaptation_loss", "lr", "supervised_loss",
                                      "train_loss", "valid_loss", "valid_score"]
    epochs = [r["epoch"] for r in history]
    for key, line in display.lines_.items():
        expected = [np.nan if r[key] is None else r[key] for r in history]
        np.testing.assert_array_equal(line.get_xdata(), epochs)
        np.testing.assert_allclose(line.get_ydata(), expected)
    loss_ax = display.axes_["loss"]
    assert display.ax_ is loss_ax
    assert len(loss_ax.get_lines()) == 3  # train, supervised, validation
    assert len(display.axes_["adaptation"].get_lines()) == 1
    assert display.lines_["adaptation_loss"].axes is display.axes_["adaptation"]
    labels = [t.get_text() for t in loss_ax.get_legend().get_texts()]
    assert labels == ["train loss", "supervised loss (train)", "validation loss"]
    assert display.axes_["lr"].get_yscale() == "linear"  # 1e-3..5e-3: no decade
    assert display.figure_._suptitle.get_text() == "DA"
    for panel_ax in display.axes_.values():
        assert panel_ax.get_xlabel() == "epoch" and panel_ax.figure is display.figure_


def test_history_without_validation_or_adaptation_draws_two_panels():
    history = [{"epoch": e, "train_loss": 1.0 / e, "valid_loss": None,
                "valid_score": None, "lr": 10.0 ** -e, "duration": 0.1}
               for e in (1, 2, 3)]
    display = TrainingHistoryDisplay.from_history(history)
    assert list(display.axes_) == ["loss", "lr"]
    assert sorted(display.lines_) == ["lr", "train_loss"]
    assert display.axes_["lr"].get_yscale() == "log"
    assert display.axes_["loss"].get_legend() is None  # one line: no legend
    with pytest.raises(ValueError, match="no values recorded.*score"):
        TrainingHistoryDisplay.from_history(history, panels=["score"])
    with pytest.raises(ValueError, match="unknown panels"):
        TrainingHistoryDisplay.from_history(history, panels=["accuracy"])
    with pytest.raises(ValueError, match="empty"):
        TrainingHistoryDisplay.from_history([])


def test_history_from_fitted_domain_adapt_classifier(adapted):
    _, after, *_ = adapted
    display = TrainingHistoryDisplay.from_estimator(after)
    history = after.history_
    assert len(history) == 3
    np.testing.assert_allclose(display.lines_["train_loss"].get_ydata(),
                               [r["train_loss"] for r in history])
    np.testing.assert_allclose(display.lines_["lr"].get_ydata(),
                               [r["lr"] for r in history])
    np.testing.assert_array_equal(display.lines_["train_loss"].get_xdata(), [1, 2, 3])
    for key in ("supervised_loss", "adaptation_loss"):  # when the history has them
        if key in history[0]:
            np.testing.assert_allclose(display.lines_[key].get_ydata(),
                                       [r[key] for r in history])
        else:
            assert key not in display.lines_
    assert ("adaptation" in display.axes_) == ("adaptation_loss" in history[0])
    assert "valid_loss" not in display.lines_  # no early stopping: no validation
    assert display.figure_._suptitle.get_text() == "DomainAdaptClassifier"


def test_history_from_finetune_with_validation_and_pipeline():
    X_source, y, _ = blobs()
    pipe = make_pipeline(StandardScaler(), FineTuneClassifier(
        model=None, epochs=3, early_stopping=True, patience=5, device="cpu",
        random_state=0)).fit(X_source, y)
    display = TrainingHistoryDisplay.from_estimator(pipe)
    history = pipe[-1].history_
    assert list(display.axes_) == ["loss", "score", "lr"]
    np.testing.assert_allclose(display.lines_["valid_score"].get_ydata(),
                               [r["valid_score"] for r in history])
    np.testing.assert_allclose(display.lines_["valid_loss"].get_ydata(),
                               [r["valid_loss"] for r in history])


def test_history_honours_ax():
    history = hand_history()
    _, ax = plt.subplots()
    display = TrainingHistoryDisplay.from_history(history, ax=ax, panels=["loss"])
    assert display.ax_ is ax and display.axes_ == {"loss": ax}
    assert display.figure_ is ax.figure and display.bounding_ax_ is None
    assert len(ax.get_lines()) == 3

    fig, ax = plt.subplots()  # one Axes, several panels: its area is split
    display = TrainingHistoryDisplay.from_history(history, ax=ax, panels=["loss", "lr"])
    assert display.bounding_ax_ is ax and not ax.axison
    assert all(a.figure is fig and a is not ax for a in display.axes_.values())

    fig, axes = plt.subplots(1, 2)
    display = TrainingHistoryDisplay.from_history(history, ax=axes,
                                                  panels=["score", "lr"])
    assert display.axes_["score"] is axes[0] and display.axes_["lr"] is axes[1]
    assert display.lines_["lr"].axes is axes[1]
    with pytest.raises(ValueError, match="at least 4 Axes"):
        TrainingHistoryDisplay.from_history(history, ax=axes)


# -- DomainShiftDisplay ------------------------------------------------------------

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


# -- TopLossesDisplay --------------------------------------------------------------

def proba_task(n=12, seed=0):
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(3), size=n)
    classes = np.array(["ant", "bee", "cat"])
    y_true = classes[rng.integers(0, 3, n)]
    return proba, classes, y_true


def highest_losses(proba, classes, y_true, n):
    p_true = proba[np.arange(len(proba)), np.searchsorted(classes, y_true)]
    return np.argsort(-(-np.log(p_true)), kind="stable")[:n], -np.log(p_true)


def test_top_losses_are_the_highest_loss_samples():
    proba, classes, y_true = proba_task()
    images = np.random.default_rng(0).integers(0, 256, (12, 10, 10, 3), dtype=np.uint8)
    display = TopLossesDisplay.from_predictions(images, y_true, proba, classes, n=5)
    order, loss = highest_losses(proba, classes, y_true, 5)
    np.testing.assert_array_equal(display.indices, order)
    np.testing.assert_allclose(display.loss, loss[order])
    assert np.all(np.diff(display.loss) <= 0)
    assert display.axes_.shape == (2, 3)
    image_axes = [a for a in display.axes_.ravel() if a.images]
    assert len(image_axes) == 5 and len(display.images_) == 5
    assert not display.axes_.ravel()[5].axison  # the spare cell is off
    for i, (image, title) in enumerate(zip(display.images_, display.titles_)):
        k = order[i]
        np.testing.assert_array_equal(image.get_array(), images[k])
        predicted = classes[proba[k].argmax()]
        text = title.get_text()
        assert f"true: {y_true[k]}" in text
        assert f"pred: {predicted} ({proba[k].max():.2f})" in text
        assert f"loss: {loss[k]:.2f}" in text
        assert (title.get_color() == "C3") == (predicted != y_true[k])
    assert display.ax_ is display.axes_[0, 0]


def test_top_losses_grey_arrays_paths_and_pil_images(tmp_path):
    proba, classes, y_true = proba_task(n=6)
    grey = np.random.default_rng(1).integers(0, 256, (6, 8, 8), dtype=np.uint8)
    display = TopLossesDisplay.from_predictions(grey, y_true, proba, classes, n=20)
    assert len(display.images_) == 6  # n is capped at the number of samples
    assert display.images_[0].get_cmap().name == "gray"
    np.testing.assert_array_equal(display.images_[0].get_array(),
                                  grey[display.indices[0]])
    paths = []
    for i, image in enumerate(grey):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.stack([image] * 3, axis=-1)).resize((200, 100)).save(path)
        paths.append(str(path))
    display = TopLossesDisplay.from_predictions(paths, y_true, proba, classes, n=2,
                                                thumbnail_size=64)
    assert display.images[0].shape == (32, 64, 3)  # shrunk, aspect kept
    pil = [Image.open(p) for p in paths]
    from_pil = TopLossesDisplay.from_predictions(pil, y_true, proba, classes, n=2,
                                                 thumbnail_size=64)
    np.testing.assert_array_equal(from_pil.images[1], display.images[1])
    with pytest.raises(ValueError, match="not one of the classes"):
        TopLossesDisplay.from_predictions(grey, ["fox"] * 6, proba, classes)
    with pytest.raises(ValueError, match="cannot draw an image"):
        TopLossesDisplay.from_predictions(grey.reshape(6, -1), y_true, proba, classes)


def drawn_colours(display, k=0):
    """The RGBA colours (0-1) the k-th thumbnail is drawn with: its data through
    its colour map and limits, as the Agg canvas paints them."""
    artist = display.images_[k]
    display.figure_.canvas.draw()
    return np.asarray(artist.to_rgba(artist.get_array(), norm=True), dtype=float)


def one_top_loss(image, size=128):
    return TopLossesDisplay.from_predictions([image], ["a"], [[0.2, 0.8]], ["a", "b"],
                                             n=1, thumbnail_size=size)


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_top_losses_thumbnails_are_upright_as_the_model_sees_them(tmp_path, fmt):
    from sktransfer.inputs import check_images

    # Upright: 60 high, 40 wide, bright at the top; stored turned a quarter,
    # with the EXIF tag (Orientation 6) that turns it back.
    upright = np.zeros((60, 40, 3), dtype=np.uint8)
    upright[:20] = 230
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / f"sideways.{fmt}"
    stored.save(path, exif=exif)
    seen = next(check_images([str(path)]).batches(1))[0].permute(1, 2, 0).numpy()
    assert seen.shape == (60, 40, 3)  # the model sees it upright
    for item in (str(path), Image.open(path)):
        display = one_top_loss(item)
        drawn = display.images_[0].get_array()
        assert drawn.shape == (60, 40, 3)
        np.testing.assert_array_equal(drawn, seen)
        colours = drawn_colours(display)[..., :3]
        assert colours[:15].mean() > 0.8 and colours[25:].mean() < 0.1  # top bright
    shrunk = one_top_loss(str(path), size=30).images_[0].get_array()
    assert shrunk.shape == (30, 20, 3)


def test_top_losses_sixteen_bit_png_is_drawn_as_read_not_white(tmp_path):
    from sktransfer.inputs import check_images

    # A ramp over the whole 16-bit range; 8-bit conversion saturates it to white.
    values = (np.arange(32 * 48, dtype=np.uint32).reshape(32, 48) * 42).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    with Image.open(path) as image:
        assert image.mode.startswith("I")
    seen = next(check_images([str(path)]).batches(1))[0, 0].numpy()
    for item in (str(path), Image.fromarray(values)):
        display = one_top_loss(item)
        drawn = display.images_[0].get_array()
        np.testing.assert_allclose(drawn, seen, atol=1e-6)
        np.testing.assert_allclose(drawn, values / 65535.0, atol=1e-6)
        colours = drawn_colours(display)[..., :3]
        assert not np.all(colours == 1.0)
        np.testing.assert_allclose(colours.mean(axis=-1), values / 65535.0, atol=0.01)
    small = one_top_loss(str(path), size=24).images_[0].get_array()
    assert small.shape == (16, 24) and 0.3 < small.mean() < 0.7


def test_top_losses_honours_ax():
    proba, classes, y_true = proba_task(n=8)
    images = np.zeros((8, 6, 6, 3), dtype=np.uint8)
    fig, axes = plt.subplots(2, 2)
    display = TopLossesDisplay.from_predictions(images, y_true, proba, classes, n=4,
                                                ax=axes)
    assert display.figure_ is fig
    assert [im.axes for im in display.images_] == list(axes.ravel())
    fig, ax = plt.subplots()
    display = TopLossesDisplay.from_predictions(images, y_true, proba, classes, n=4,
                                                ax=ax, n_cols=4)
    assert display.bounding_ax_ is ax and display.axes_.shape == (1, 4)
    assert all(a.figure is fig for a in display.axes_.ravel())


def test_top_losses_from_estimator_images_cnn():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 128, size=(16, 16, 16, 3), dtype=np.uint8)
    y = np.array([0, 1] * 8)
    X[y == 1] += 120
    clf = FineTuneClassifier(model="simple_cnn", weights=None, image_size=16, epochs=1,
                             batch_size=8, device="cpu", random_state=0).fit(X, y)
    display = TopLossesDisplay.from_estimator(clf, X, y, n=4)
    order, _ = highest_losses(clf.predict_proba(X), clf.classes_, y, 4)
    np.testing.assert_array_equal(display.indices, order)
    for image, k in zip(display.images_, order):
        np.testing.assert_array_equal(image.get_array(), X[k])


def test_top_losses_from_estimator_flat_features_with_images():
    X_source, y, _ = blobs(n=20)
    clf = FineTuneClassifier(model=None, epochs=1, device="cpu", random_state=0)
    clf.fit(X_source, y)
    pictures = np.random.default_rng(0).random((20, 5, 5))
    display = TopLossesDisplay.from_estimator(clf, X_source, y, n=3, images=pictures)
    assert len(display.images_) == 3
    np.testing.assert_allclose(display.images_[0].get_array(),
                               pictures[display.indices[0]])


def test_confusion_matrix_display_is_sklearns(adapted):
    import sklearn.metrics

    assert ConfusionMatrixDisplay is sklearn.metrics.ConfusionMatrixDisplay
    _, after, X_source, y_source, _ = adapted
    display = ConfusionMatrixDisplay.from_estimator(after, X_source, y_source)
    assert display.confusion_matrix.sum() == len(y_source)


# -- without matplotlib ------------------------------------------------------------

def test_missing_matplotlib_gives_a_clear_error(monkeypatch, adapted):
    _, after, X_source, y_source, X_target = adapted
    proba, classes, y_true = proba_task(n=4)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    calls = [
        lambda: TrainingHistoryDisplay.from_estimator(after),
        lambda: TrainingHistoryDisplay.from_history(hand_history()),
        lambda: TrainingHistoryDisplay([1], [1.0]).plot(),
        lambda: DomainShiftDisplay.from_estimator(after, X_source, X_target),
        lambda: DomainShiftDisplay.from_features(X_source, X_target),
        lambda: TopLossesDisplay.from_predictions(np.zeros((4, 4, 4)), y_true, proba,
                                                  classes),
        lambda: TopLossesDisplay.from_estimator(after, X_source, y_source),
    ]
    for call in calls:
        with pytest.raises(ImportError, match="requires matplotlib") as info:
            call()
        assert INSTALL in str(info.value)


def test_import_without_matplotlib():
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "import sktransfer.plotting as p\n"
            "assert not any(m.startswith('matplotlib.') for m in sys.modules)\n"
            "try:\n"
            "    p.TopLossesDisplay.from_predictions([], [], [], [])\n"
            "except ImportError as e:\n"
            "    print(e)\n")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                            text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert INSTALL in result.stdout


# -- docstring examples ------------------------------------------------------------

@pytest.mark.parametrize("name", ["sktransfer.plotting._history",
                                  "sktransfer.plotting._domain_shift",
                                  "sktransfer.plotting._top_losses"])
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS
                             | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("display", [DomainShiftDisplay, TrainingHistoryDisplay])
def test_shared_docstring_entries_are_filled_in(display):
    # The docstrings write "<<ax>>" and the like for entries kept once in _base.
    for documented in (display, display.plot):
        assert "<<" not in documented.__doc__
    assert "ax : matplotlib Axes or array-like of Axes" in display.plot.__doc__
    assert "bounding_ax_ : matplotlib Axes or None" in display.__doc__

"""TopLossesDisplay (``plotting/_top_losses.py``): the highest-loss samples, their
thumbnails as the model sees them, from predictions or an estimator."""

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

from sktransfer import FineTuneClassifier  # noqa: E402
from sktransfer.plotting import TopLossesDisplay  # noqa: E402

from plot_data import blobs, proba_task  # noqa: E402


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


def test_top_losses_of_a_text_classifier_draws_its_texts(tmp_path):
    import pandas as pd
    from sklearn.pipeline import make_pipeline
    from sklearn.linear_model import LogisticRegression

    from sktransfer import PretrainedFeatureExtractor
    from text_models import sentiment_texts, write_tiny_bert

    model = f"hf:{write_tiny_bert(tmp_path / 'bert')}"
    X, y = sentiment_texts(12)
    X[3] = "good " * 200  # longer than a cell holds
    clf = FineTuneClassifier(model=model, epochs=1, device="cpu", random_state=0).fit(X, y)
    pipe = make_pipeline(PretrainedFeatureExtractor(model=model, device="cpu"),
                         LogisticRegression()).fit(X, y)
    for estimator, samples in ((clf, X), (pipe, pd.Series(X, index=range(100, 112)))):
        display = TopLossesDisplay.from_estimator(estimator, samples, y, n=12)
        order, _ = highest_losses(estimator.predict_proba(X), estimator.classes_, y, 12)
        np.testing.assert_array_equal(display.indices, order)
        drawn = [artist.get_text() for artist in display.images_]
        for text, k in zip(drawn, order):
            if k != 3:
                assert " ".join(text.split()) == X[k]
        assert all(len(text) < 320 for text in drawn)
        assert drawn[list(order).index(3)].replace("\n", " ").endswith("…")
        plt.close("all")
    # images= still draws pictures in place of the texts
    pictures = np.random.default_rng(0).random((12, 5, 5))
    display = TopLossesDisplay.from_estimator(clf, X, y, n=2, images=pictures)
    np.testing.assert_allclose(display.images_[0].get_array(), pictures[display.indices[0]])
    # texts given as image samples are file paths: the error names the sample
    with pytest.raises(ValueError, match=r"X\[\d+\] = .* not a decodable image"):
        TopLossesDisplay.from_predictions(X, y, clf.predict_proba(X), clf.classes_, n=2)
    with pytest.raises(ValueError, match="modality='audio'"):
        TopLossesDisplay.from_predictions(X, y, clf.predict_proba(X), clf.classes_,
                                          modality="audio")
    plt.close("all")


def test_top_losses_refuses_a_multilabel_target():
    X = np.random.default_rng(0).normal(size=(12, 4))
    Y = np.array([[0, 1], [1, 0], [1, 1], [0, 1]] * 3)
    clf = FineTuneClassifier(model=None, epochs=1, device="cpu", random_state=0).fit(X, Y)
    with pytest.raises(ValueError, match=r"y has shape \(12, 2\).*multi-label"):
        TopLossesDisplay.from_estimator(clf, X, Y, images=np.zeros((12, 4, 4)))
    with pytest.raises(ValueError, match=r"y_true has shape \(12, 2\)"):
        TopLossesDisplay.from_predictions(np.zeros((12, 4, 4)), Y, clf.predict_proba(X),
                                          [0, 1])

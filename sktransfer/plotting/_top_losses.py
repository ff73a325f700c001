"""TopLossesDisplay: the samples a classifier gets most confidently wrong."""

import math
import os
import textwrap

import numpy as np

from ..backbones._factory import estimator_reads_text
from ..inputs._sources import decode_image
from ._base import check_matplotlib, layout_axes

#: What a sample of :class:`TopLossesDisplay` can be.
MODALITIES = ("image", "text")

#: Characters of a text drawn in one cell, and per line.
_TEXT_CHARACTERS, _TEXT_WIDTH = 280, 30


def _is_path(item):
    return isinstance(item, (str, os.PathLike))


def _as_list(images):
    """Indexable images: a list, an array, or the one column of a DataFrame."""
    if type(images).__name__ == "DataFrame":
        if images.shape[1] != 1:
            raise ValueError("a DataFrame of images must have one column of paths.")
        return images.iloc[:, 0].tolist()
    if hasattr(images, "detach"):
        return images.detach().cpu().numpy()
    if isinstance(images, np.ndarray):
        return images
    return list(images)


def _shrink(pixels, size):
    """A decoded image's (C, H, W) pixels as an (H, W) or (H, W, 3) array of at
    most ``size`` pixels a side (aspect kept, as ``PIL.Image.thumbnail``
    shrinks), uint8 or float in [0, 1]. Alpha is dropped, as the models drop it."""
    from PIL import Image

    array = pixels.numpy()
    array = array[0] if array.shape[0] == 1 else np.moveaxis(array[:3], 0, -1)
    if array.dtype == np.uint8:
        image = Image.fromarray(array)
        image.thumbnail((size, size))
        return np.asarray(image)
    # Floats (16-bit and float images): each channel shrunk as a float image.
    channels = [Image.fromarray(np.ascontiguousarray(channel, dtype=np.float32))
                for channel in (array[..., None] if array.ndim == 2 else array)
                .transpose(2, 0, 1)]
    for channel in channels:
        channel.thumbnail((size, size))
    shrunk = np.stack([np.asarray(channel) for channel in channels], axis=-1)
    return np.clip(shrunk[..., 0] if array.ndim == 2 else shrunk, 0.0, 1.0)


def thumbnail(item, size=128, *, index=None):
    """One image as an array ``imshow`` draws: (H, W) grey or (H, W, 3|4) colour,
    uint8 or float in [0, 1]. Paths and PIL images are decoded as the estimators
    decode them (turned upright by their EXIF orientation; 16-bit and float
    images scaled as arrays are), then shrunk to at most ``size`` pixels a side;
    arrays are drawn at their size."""
    from PIL import Image

    where = "an image" if index is None else f"X[{index}]"
    if _is_path(item):
        where += f" = {os.fspath(item)!r}"
    if _is_path(item) or isinstance(item, Image.Image):
        return _shrink(decode_image(item, where=where), size)
    where = "" if index is None else f" (sample {index})"
    if hasattr(item, "detach"):
        item = item.detach().cpu().numpy()
    array = np.asarray(item)
    if array.ndim == 3 and array.shape[-1] not in (1, 3, 4) and array.shape[0] in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)  # channels first
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise ValueError(
            f"cannot draw an image of shape {array.shape}{where}: an image is a "
            "(H, W) or (H, W, C) array with C in 1, 3, 4 (or channels first), a "
            "PIL image or a file path. For flat features pass the pictures "
            "themselves as images=."
        )
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    array = array.astype(float)
    low, high = np.nanmin(array), np.nanmax(array)
    if low >= 0 and high <= 1:
        return array
    if low >= 0 and high <= 255 and np.issubdtype(np.asarray(item).dtype, np.integer):
        return array / 255.0
    return (array - low) / (high - low) if high > low else np.zeros_like(array)


def _text_cell(text):
    """``text`` wrapped to a cell: its first characters, whole words per line."""
    text = " ".join(str(text).split())
    if len(text) > _TEXT_CHARACTERS:
        text = text[:_TEXT_CHARACTERS - 1] + "…"
    return textwrap.fill(text, _TEXT_WIDTH) if text else "(empty text)"


def _check_one_label(y, name):
    if np.ndim(y) != 1:
        raise ValueError(
            f"{name} has shape {np.shape(y)}: TopLossesDisplay ranks samples by the "
            f"loss of their one true class, so {name} is 1-D. A multi-label "
            "indicator matrix has one loss per label; rank the samples by, say, "
            "sklearn.metrics.log_loss of each row's labels instead.")


def _text_sample(item, index):
    if not isinstance(item, str):
        raise ValueError(f"X[{index}] is a {type(item).__name__}, not a text (str).")
    return item


def _short(label, width=18):
    text = str(label)
    return text if len(text) <= width else text[:width - 1] + "…"


class TopLossesDisplay:
    """The samples with the highest loss, as a grid of thumbnails (or of texts):
    what a classifier gets most confidently wrong (fastai's "top losses").

    The loss of a sample is its cross-entropy, ``-log p(true class)``, from
    ``predict_proba``; the ``n`` highest are drawn from the highest down, each
    titled with its true label, the predicted label with its probability, and
    the loss (in red when the prediction is wrong). Wrong labels in the data,
    ambiguous images and classes the model confuses show up here first.

    It is recommended to create it with :meth:`from_estimator` or
    :meth:`from_predictions`; both call :meth:`plot`.

    Parameters
    ----------
    images : list of ndarray or str
        The samples to draw, highest loss first: thumbnails, (H, W) grey or
        (H, W, 3|4) colour, uint8 or float in [0, 1]; a ``str`` is a text,
        drawn as its first words.
    y_true : ndarray of shape (n,)
        Their true labels.
    y_pred : ndarray of shape (n,)
        Their predicted labels (the most probable class).
    probability : ndarray of shape (n,)
        The predicted probability of ``y_pred``.
    loss : ndarray of shape (n,)
        Their cross-entropy losses.
    indices : ndarray of shape (n,), default=None
        Their positions in the data they were chosen from.

    Attributes
    ----------
    ax_ : matplotlib Axes
        The Axes of the first (highest-loss) thumbnail.
    axes_ : ndarray of matplotlib Axes of shape (n_rows, n_cols)
        The grid; the Axes past the ``n`` thumbnails are turned off.
    images_ : list of matplotlib AxesImage or Text
        The thumbnails (texts: the Text artists) drawn, highest loss first.
    titles_ : list of matplotlib Text
        Their titles: ``"true: ...\\npred: ... (p)\\nloss: ..."``.
    figure_ : matplotlib Figure
        The figure holding the grid.
    bounding_ax_ : matplotlib Axes or None
        The Axes passed as ``ax`` and split into the grid, if any.

    See Also
    --------
    sklearn.metrics.ConfusionMatrixDisplay : Counts of each (true, predicted)
        pair; re-exported by :mod:`sktransfer.plotting`.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sktransfer.plotting import TopLossesDisplay
    >>> rng = np.random.default_rng(0)
    >>> images = rng.integers(0, 256, size=(6, 16, 16, 3), dtype=np.uint8)
    >>> proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4],
    ...                   [0.1, 0.9], [0.7, 0.3], [0.5, 0.5]])
    >>> y_true = np.array(["cat", "cat", "dog", "dog", "dog", "cat"])
    >>> display = TopLossesDisplay.from_predictions(
    ...     images, y_true, proba, classes=["cat", "dog"], n=4)
    >>> display.indices
    array([1, 4, 2, 5])
    >>> print(display.titles_[0].get_text())
    true: cat
    pred: dog (0.80)
    loss: 1.61
    """

    def __init__(self, images, y_true, y_pred, probability, loss, *, indices=None):
        self.images = list(images)
        self.y_true = np.asarray(y_true)
        self.y_pred = np.asarray(y_pred)
        self.probability = np.asarray(probability, dtype=float)
        self.loss = np.asarray(loss, dtype=float)
        self.indices = None if indices is None else np.asarray(indices)
        n = len(self.images)
        for name in ("y_true", "y_pred", "probability", "loss"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} values for "
                                 f"{n} images.")

    def plot(self, ax=None, *, n_cols=None, imshow_kwargs=None, title_fontsize=9):
        """Draw the grid of thumbnails.

        Parameters
        ----------
        ax : matplotlib Axes or array-like of Axes, default=None
            None: a new figure. One Axes: its area is split into the grid (or
            used as is for one image). Several Axes: one per image, in order.
        n_cols : int, default=None
            Columns of the grid; by default ``ceil(sqrt(n))``.
        imshow_kwargs : dict, default=None
            Keyword arguments for every ``Axes.imshow`` call.
        title_fontsize : float or str, default=9
            Font size of the titles.

        Returns
        -------
        display : TopLossesDisplay
        """
        check_matplotlib(f"{type(self).__name__}.plot")
        n = len(self.images)
        if n == 0:
            raise ValueError("there is no image to draw.")
        n_cols = n_cols or math.ceil(math.sqrt(n))
        n_rows = math.ceil(n / n_cols)
        axes, figure, bounding = layout_axes(
            ax, n, nrows=n_rows, ncols=n_cols, figsize=(2.3 * n_cols, 2.75 * n_rows))
        self.images_, self.titles_ = [], []
        for i, (image_ax, image) in enumerate(zip(axes, self.images)):
            if isinstance(image, str):
                self.images_.append(image_ax.text(
                    0.04, 0.96, _text_cell(image), transform=image_ax.transAxes,
                    va="top", ha="left", fontsize=title_fontsize, family="serif"))
            else:
                kwargs = {}
                if np.ndim(image) == 2:
                    kwargs.update(cmap="gray", vmin=0,
                                  vmax=255 if np.asarray(image).dtype == np.uint8 else 1)
                kwargs.update(imshow_kwargs or {})
                self.images_.append(image_ax.imshow(image, **kwargs))
            image_ax.set_xticks([])
            image_ax.set_yticks([])
            wrong = self.y_true[i] != self.y_pred[i]
            title = (f"true: {_short(self.y_true[i])}\n"
                     f"pred: {_short(self.y_pred[i])} ({self.probability[i]:.2f})\n"
                     f"loss: {self.loss[i]:.2f}")
            self.titles_.append(image_ax.set_title(
                title, fontsize=title_fontsize, color="C3" if wrong else "0.15",
                loc="left"))
        if ax is None:
            figure.suptitle("Top losses: true label, prediction (probability), loss")
        self.axes_ = np.asarray(axes[:n_rows * n_cols], dtype=object).reshape(
            n_rows, n_cols) if len(axes) >= n_rows * n_cols else np.asarray(
            axes, dtype=object)
        self.ax_ = axes[0]
        self.figure_ = figure
        self.bounding_ax_ = bounding
        return self

    @classmethod
    def from_predictions(cls, images, y_true, proba, classes, *, n=9,
                         thumbnail_size=128, modality="image", ax=None, n_cols=None,
                         imshow_kwargs=None, title_fontsize=9):
        """Plot the ``n`` highest-loss samples from predicted probabilities.

        Parameters
        ----------
        images : array-like or list
            The samples: a uint8 or float array (N, H, W, C) or (N, H, W) (or
            channels first), or a list of file paths, PIL images or arrays. Only
            the ``n`` drawn are read, decoded as the estimators decode them
            (upright by their EXIF orientation, 16-bit and float images scaled
            to [0, 1]), and shrunk to thumbnails. With ``modality="text"``: the
            texts (a list, a 1-D array, a Series or a one-column DataFrame of
            ``str``), each drawn as its first words.
        y_true : array-like of shape (N,)
            True labels, each one of ``classes``.
        proba : array-like of shape (N, n_classes)
            Predicted class probabilities, columns in the order of ``classes``.
        classes : array-like of shape (n_classes,)
            The class of each column (``estimator.classes_``).
        n : int, default=9
            How many samples to draw (at most N).
        thumbnail_size : int, default=128
            Largest side of the thumbnails read from paths and PIL images.
        modality : {"image", "text"}, default="image"
            What the samples are: images (a ``str`` is a file path) or texts.
        ax, n_cols, imshow_kwargs, title_fontsize
            As in :meth:`plot`.

        Returns
        -------
        display : TopLossesDisplay
        """
        check_matplotlib(f"{cls.__name__}.from_predictions")
        if modality not in MODALITIES:
            raise ValueError(f"modality={modality!r}: the samples are 'image' or "
                             "'text'.")
        proba = np.asarray(proba, dtype=float)
        classes = np.asarray(classes)
        y_true = np.asarray(y_true)
        _check_one_label(y_true, "y_true")
        if proba.ndim != 2 or proba.shape[1] != len(classes):
            raise ValueError(f"proba must have shape (n_samples, {len(classes)}) "
                             f"(one column per class); got {proba.shape}.")
        if len(y_true) != len(proba):
            raise ValueError(f"y_true has {len(y_true)} labels and proba "
                             f"{len(proba)} rows.")
        column = {c.item() if hasattr(c, "item") else c: i for i, c in enumerate(classes)}
        try:
            true_index = np.array([column[c.item() if hasattr(c, "item") else c]
                                   for c in y_true], dtype=int)
        except KeyError as error:
            raise ValueError(f"y_true holds the label {error.args[0]!r}, which is "
                             f"not one of the classes {classes.tolist()}.") from None
        images = _as_list(images)
        if len(images) != len(y_true):
            raise ValueError(f"{len(images)} images for {len(y_true)} labels.")
        p_true = proba[np.arange(len(proba)), true_index]
        loss = -np.log(np.clip(p_true, np.finfo(float).tiny, None))
        order = np.argsort(-loss, kind="stable")[:max(0, int(n))]
        predicted = proba[order].argmax(axis=1)
        if modality == "text":
            drawn = [_text_sample(images[i], int(i)) for i in order]
        else:
            drawn = [thumbnail(images[i], thumbnail_size, index=int(i)) for i in order]
        display = cls(
            drawn,
            y_true[order], classes[predicted], proba[order, predicted], loss[order],
            indices=order)
        return display.plot(ax=ax, n_cols=n_cols, imshow_kwargs=imshow_kwargs,
                            title_fontsize=title_fontsize)

    @classmethod
    def from_estimator(cls, estimator, X, y, *, n=9, images=None,
                       thumbnail_size=128, ax=None, n_cols=None, imshow_kwargs=None,
                       title_fontsize=9):
        """Plot the ``n`` samples of ``X`` a fitted classifier has the highest
        loss on.

        Parameters
        ----------
        estimator : fitted classifier with ``predict_proba`` and ``classes_``
            E.g. a FineTuneClassifier, or a Pipeline ending in a classifier.
        X : array-like or list of images, or texts
            Samples, in any form the estimator accepts. The samples of an
            estimator whose backbone reads texts (its ``model``, or that of a
            Pipeline's first sktransfer step) are drawn as texts, the others as
            images.
        y : array-like of shape (N,)
            Their true labels.
        n : int, default=9
            How many samples to draw.
        images : array-like or list, default=None
            What to draw for each sample, when ``X`` is not images itself (flat
            features, say); by default ``X``.
        thumbnail_size, ax, n_cols, imshow_kwargs, title_fontsize
            As in :meth:`from_predictions`.

        Returns
        -------
        display : TopLossesDisplay

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import numpy as np
        >>> from sktransfer import FineTuneClassifier
        >>> from sktransfer.plotting import TopLossesDisplay
        >>> rng = np.random.default_rng(0)
        >>> X = rng.integers(0, 256, size=(24, 16, 16, 3), dtype=np.uint8)
        >>> y = np.array(["dark", "light"] * 12)
        >>> X[y == "light"] //= 2
        >>> X[y == "light"] += 128
        >>> clf = FineTuneClassifier(model="simple_cnn", weights=None, epochs=2,
        ...                          image_size=16, random_state=0, device="cpu")
        >>> display = TopLossesDisplay.from_estimator(clf.fit(X, y), X, y, n=4)
        >>> len(display.images_)
        4
        """
        check_matplotlib(f"{cls.__name__}.from_estimator")
        if not hasattr(estimator, "predict_proba"):
            raise TypeError(f"{type(estimator).__name__} has no predict_proba; "
                            "TopLossesDisplay ranks samples by their loss from "
                            "class probabilities.")
        _check_one_label(y, "y")  # before predict_proba
        modality = "text" if images is None and estimator_reads_text(estimator) else "image"
        proba = estimator.predict_proba(X)
        return cls.from_predictions(
            X if images is None else images, y, proba, estimator.classes_, n=n,
            thumbnail_size=thumbnail_size, modality=modality, ax=ax, n_cols=n_cols,
            imshow_kwargs=imshow_kwargs, title_fontsize=title_fontsize)

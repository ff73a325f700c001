"""TrainingHistoryDisplay: loss, score and learning rate per epoch."""

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ._base import check_matplotlib, layout_axes, shared_docs

# The series a record may hold, the panel each is drawn in and its legend label.
SERIES = {
    "train_loss": ("loss", "train loss"),
    "supervised_loss": ("loss", "supervised loss (train)"),
    "valid_loss": ("loss", "validation loss"),
    "adaptation_loss": ("adaptation", "adaptation loss (train)"),
    "valid_score": ("score", "validation score"),
    "lr": ("lr", "learning rate"),
}
PANELS = ("loss", "adaptation", "score", "lr")
_YLABELS = {"loss": "loss", "adaptation": "adaptation loss",
            "score": "validation score", "lr": "learning rate"}
_TITLES = {"loss": "Loss", "adaptation": "Adaptation loss",
           "score": "Validation score", "lr": "Learning rate"}
_STYLES = {"train_loss": dict(color="C0", marker="o"),
           "supervised_loss": dict(color="C2", marker="^", linestyle="-."),
           "valid_loss": dict(color="C1", marker="s", linestyle="--"),
           "adaptation_loss": dict(color="C3", marker="D"),
           "valid_score": dict(color="C1", marker="s", linestyle="--"),
           "lr": dict(color="C4", marker=".")}


def _series(history, key):
    values = [record.get(key) for record in history]
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


@shared_docs
class TrainingHistoryDisplay:
    """Training curves of a fitted network: loss, validation score and learning
    rate per epoch.

    Draws up to four panels side by side, each only when its values were
    recorded: **loss** (the training loss, the supervised part of it and the
    validation loss), **adaptation loss** (the adaptation part of a
    :class:`~sktransfer.DomainAdaptClassifier`'s training loss, when its history
    records it apart as ``adaptation_loss``), **validation score** and
    **learning rate** (log scale when it spans more than a decade).

    It is recommended to create it with :meth:`from_estimator` or
    :meth:`from_history`; both call :meth:`plot`. The values are stored as
    float arrays, ``nan`` where a record has none (``valid_loss`` without
    ``early_stopping``, for instance).

    Parameters
    ----------
    epoch : array-like of shape (n_epochs,)
        The epoch numbers (from 1).
    train_loss : array-like of shape (n_epochs,)
        Mean training loss per epoch (for DomainAdaptClassifier the supervised
        loss plus ``trade_off`` times the adaptation loss).
    valid_loss, valid_score, lr : array-like of shape (n_epochs,), default=None
        Validation loss, validation score and learning rate per epoch.
    supervised_loss, adaptation_loss : array-like of shape (n_epochs,), \
default=None
        The two parts of a domain-adaptation training loss, when recorded.
    estimator_name : str, default=None
        Shown in the figure title.

    Attributes
    ----------
    ax_ : matplotlib Axes
        The first panel drawn (the loss panel when there is one).
    axes_ : dict of str to matplotlib Axes
        The Axes of each panel drawn, by name: ``"loss"``, ``"adaptation"``,
        ``"score"``, ``"lr"``.
    lines_ : dict of str to matplotlib Line2D
        The line of each series drawn, by history key (``"train_loss"``,
        ``"supervised_loss"``, ``"valid_loss"``, ``"adaptation_loss"``,
        ``"valid_score"``, ``"lr"``); its data are ``(epoch, values)``.
    <<figure_>>
    <<bounding_ax_>>

    See Also
    --------
    DomainShiftDisplay : Source and target features before and after adaptation.
    TopLossesDisplay : The samples a classifier gets most confidently wrong.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sktransfer import FineTuneClassifier
    >>> from sktransfer.plotting import TrainingHistoryDisplay
    >>> X, y = make_classification(n_samples=80, n_features=8, random_state=0)
    >>> clf = FineTuneClassifier(model=None, epochs=8, lr=1e-2, early_stopping=True,
    ...                          patience=8, random_state=0, device="cpu").fit(X, y)
    >>> display = TrainingHistoryDisplay.from_estimator(clf)
    >>> sorted(display.axes_)
    ['loss', 'lr', 'score']
    >>> sorted(display.lines_)
    ['lr', 'train_loss', 'valid_loss', 'valid_score']
    >>> display.lines_["train_loss"].get_ydata().shape
    (8,)
    """

    def __init__(self, epoch, train_loss, *, valid_loss=None, valid_score=None,
                 lr=None, supervised_loss=None, adaptation_loss=None,
                 estimator_name=None):
        self.epoch = np.asarray(epoch)
        n = len(self.epoch)

        def values(v):
            if v is None:
                return np.full(n, np.nan)
            v = np.array([np.nan if x is None else x for x in v], dtype=float)
            if v.shape != (n,):
                raise ValueError(f"expected {n} values (one per epoch), got shape "
                                 f"{v.shape}.")
            return v

        self.train_loss = values(train_loss)
        self.valid_loss = values(valid_loss)
        self.valid_score = values(valid_score)
        self.lr = values(lr)
        self.supervised_loss = values(supervised_loss)
        self.adaptation_loss = values(adaptation_loss)
        self.estimator_name = estimator_name

    def _present(self):
        """The history keys with at least one recorded value, in SERIES order."""
        return [key for key in SERIES if not np.isnan(getattr(self, key)).all()]

    @shared_docs
    def plot(self, ax=None, *, panels=None, name=None, line_kwargs=None):
        """Draw the panels.

        Parameters
        ----------
        <<ax>>
        panels : list of {"loss", "adaptation", "score", "lr"}, default=None
            The panels to draw; by default every panel with recorded values.
        name : str, default=None
            Shown in the figure title; defaults to ``estimator_name``.
        line_kwargs : dict, default=None
            Keyword arguments for every ``Axes.plot`` call (override the
            defaults: colour, marker and line style per series).

        Returns
        -------
        display : TrainingHistoryDisplay
            The object, with the artists as attributes.
        """
        check_matplotlib(f"{type(self).__name__}.plot")
        from matplotlib.ticker import MaxNLocator

        present = self._present()
        available = [p for p in PANELS if any(SERIES[k][0] == p for k in present)]
        if panels is None:
            panels = available
        else:
            panels = list(panels)
            unknown = [p for p in panels if p not in PANELS]
            if unknown:
                raise ValueError(f"unknown panels {unknown}; choose among {list(PANELS)}.")
            empty = [p for p in panels if p not in available]
            if empty:
                raise ValueError(f"no values recorded for the panels {empty}; the "
                                 f"history has values for {available}.")
        if not panels:
            raise ValueError("the history has no recorded values to draw.")
        n = len(panels)
        nrows, ncols = (2, 2) if n == 4 else (1, n)
        axes, figure, bounding = layout_axes(
            ax, n, nrows=nrows, ncols=ncols, figsize=(4.2 * ncols, 3.4 * nrows))

        self.axes_ = dict(zip(panels, axes))
        self.lines_ = {}
        for key in present:
            panel, label = SERIES[key]
            if panel not in self.axes_:
                continue
            kwargs = dict(_STYLES[key], label=label, markersize=4)
            kwargs.update(line_kwargs or {})
            (self.lines_[key],) = self.axes_[panel].plot(self.epoch, getattr(self, key),
                                                         **kwargs)
        for panel, panel_ax in self.axes_.items():
            panel_ax.set_xlabel("epoch")
            panel_ax.set_ylabel(_YLABELS[panel])
            panel_ax.set_title(_TITLES[panel])
            panel_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            panel_ax.grid(True, alpha=0.3)
            if len(panel_ax.get_lines()) > 1:
                panel_ax.legend(fontsize="small")
        if "lr" in self.axes_:
            lr = self.lr[np.isfinite(self.lr)]
            if lr.size and lr.min() > 0 and lr.max() / lr.min() > 10:
                self.axes_["lr"].set_yscale("log")
        name = self.estimator_name if name is None else name
        if name is not None and bounding is None and ax is None:
            figure.suptitle(name)
        self.ax_ = axes[0]
        self.figure_ = figure
        self.bounding_ax_ = bounding
        return self

    @classmethod
    def from_history(cls, history, *, ax=None, panels=None, name=None,
                     line_kwargs=None):
        """Plot a ``history_`` list of records.

        Parameters
        ----------
        history : list of dict
            One record per epoch with ``epoch`` and ``train_loss``, and any of
            ``valid_loss``, ``valid_score``, ``lr``, ``supervised_loss``,
            ``adaptation_loss`` (missing keys and ``None`` values are not drawn).
        ax, panels, name, line_kwargs
            As in :meth:`plot`.

        Returns
        -------
        display : TrainingHistoryDisplay
            Drawn: its ``axes_`` and ``lines_`` hold the artists.

        Examples
        --------
        >>> from sktransfer.plotting import TrainingHistoryDisplay
        >>> history = [{"epoch": e, "train_loss": 1 / e, "supervised_loss": 0.8 / e,
        ...             "adaptation_loss": 0.2 / e, "lr": 1e-3} for e in (1, 2, 3)]
        >>> display = TrainingHistoryDisplay.from_history(history)
        >>> sorted(display.axes_)
        ['adaptation', 'loss', 'lr']
        """
        check_matplotlib(f"{cls.__name__}.from_history")
        history = list(history)
        if not history:
            raise ValueError("the history is empty: nothing was trained yet.")
        epoch = [record.get("epoch", i + 1) for i, record in enumerate(history)]
        display = cls(epoch, _series(history, "train_loss"),
                      **{key: _series(history, key) for key in SERIES
                         if key != "train_loss"},
                      estimator_name=name)
        return display.plot(ax=ax, panels=panels, line_kwargs=line_kwargs)

    @classmethod
    def from_estimator(cls, estimator, *, ax=None, panels=None, name=None,
                       line_kwargs=None):
        """Plot the ``history_`` of a fitted FineTuneClassifier or
        DomainAdaptClassifier (or of a Pipeline ending in one).

        Parameters
        ----------
        estimator : estimator with ``history_``
            A fitted :class:`~sktransfer.FineTuneClassifier`,
            :class:`~sktransfer.DomainAdaptClassifier`, or a Pipeline whose last
            step is one.
        ax, panels, line_kwargs
            As in :meth:`plot`.
        name : str, default=None
            Shown in the figure title; defaults to the estimator's class name.

        Returns
        -------
        display : TrainingHistoryDisplay
        """
        check_matplotlib(f"{cls.__name__}.from_estimator")
        final = estimator[-1] if isinstance(estimator, Pipeline) else estimator
        check_is_fitted(final)
        if not hasattr(final, "history_"):
            raise TypeError(f"{type(final).__name__} has no history_; "
                            "TrainingHistoryDisplay plots the training of "
                            "FineTuneClassifier and DomainAdaptClassifier.")
        name = type(final).__name__ if name is None else name
        return cls.from_history(final.history_, ax=ax, panels=panels, name=name,
                                line_kwargs=line_kwargs)

"""DomainShiftDisplay: source and target features in two dimensions."""

import numpy as np
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from .._utils.representation import estimator_features
from ._base import check_matplotlib, layout_axes, shared_docs

DOMAINS = ("source", "target")
_COLOURS = {"source": "C0", "target": "C1"}
_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">", "h", "p")
_AXIS_NAMES = {"pca": "PC", "tsne": "t-SNE"}


def _matrix(features, name):
    if hasattr(features, "toarray"):
        features = features.toarray()
    if hasattr(features, "detach"):
        features = features.detach().cpu().numpy()
    features = np.asarray(features, dtype=float)
    if features.ndim < 2 or len(features) == 0:
        raise ValueError(f"{name} must hold at least one sample as a 2-D array "
                         f"(n_samples, n_features); got shape {features.shape}.")
    return features.reshape(len(features), -1)


def _labels(y, n, name):
    if y is None:
        return None
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"{name} must hold one label per sample ({n}); got shape "
                         f"{y.shape}.")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y) & (y == np.round(y))):
        raise ValueError(
            f"{name} holds real values (a regression target, or NaN): the display "
            "draws one marker per class. Pass None, or classes made from the values "
            "(np.digitize(y, bins)).")
    return y


def embed(features_source, features_target, *, method="pca", random_state=None):
    """2-D embedding of the stacked source and target features, fitted on both.

    Returns ``(embedding_source, embedding_target)``.
    """
    stacked = np.vstack([features_source, features_target])
    if isinstance(method, str):
        if method == "pca":
            reducer = PCA(n_components=min(2, *stacked.shape), random_state=random_state)
        elif method == "tsne":
            perplexity = min(30.0, max(1.0, (len(stacked) - 1) / 3))
            reducer = TSNE(n_components=2, perplexity=perplexity, init="pca",
                           random_state=random_state)
        else:
            raise ValueError(f'method must be "pca", "tsne" or a transformer with '
                             f"fit_transform; got {method!r}.")
    elif hasattr(method, "fit_transform"):
        reducer = clone(method)
    else:
        raise ValueError(f'method must be "pca", "tsne" or a transformer with '
                         f"fit_transform; got {method!r}.")
    embedding = np.asarray(reducer.fit_transform(stacked), dtype=float)
    embedding = embedding.reshape(len(stacked), -1)[:, :2]
    if embedding.shape[1] < 2:  # one feature: a line, drawn at y = 0
        embedding = np.hstack([embedding, np.zeros((len(embedding), 1))])
    n = len(features_source)
    return embedding[:n], embedding[n:]


@shared_docs
class DomainShiftDisplay:
    """Source and target features in two dimensions, coloured by domain and
    marked by class: how far apart the domains lie, before and after adaptation.

    Each panel is a scatter plot of a 2-D embedding (PCA by default, t-SNE on
    request) fitted on the source and target features together. Source samples
    are blue, target samples orange; each class has its own marker (target
    samples without labels are circles). With a ``before`` model, two panels are
    drawn side by side: the features of that model (e.g. trained on the source
    alone) and those of the adapted one. When adaptation works, the two colours
    overlap more in the second panel, class by class.

    It is recommended to create it with :meth:`from_estimator` or
    :meth:`from_features`; both call :meth:`plot`.

    Parameters
    ----------
    embedding_source : ndarray of shape (n_source, 2)
        The 2-D embedding of the source samples (of the adapted model).
    embedding_target : ndarray of shape (n_target, 2)
        The 2-D embedding of the target samples.
    y_source : array-like of shape (n_source,), default=None
        Source labels (one marker per class); None: all circles.
    y_target : array-like of shape (n_target,), default=None
        Target labels when known (for evaluation), ``-1`` for unknown.
    embedding_source_before, embedding_target_before : ndarray, default=None
        The embeddings of the model before adaptation, drawn in a first panel.
    method : str, default="pca"
        The embedding method, for the axis labels.
    names : tuple of str, default=None
        Panel titles; by default ``("before adaptation", "after adaptation")``,
        or ``("source and target features",)`` for one panel.

    Attributes
    ----------
    ax_ : matplotlib Axes
        The panel of the adapted model (the last panel).
    axes_ : list of matplotlib Axes
        The panels: ``[before, after]``, or ``[after]`` alone.
    scatters_ : list of dict
        Per panel, the scatter (matplotlib PathCollection) of each group, keyed
        by ``(domain, label)``, ``domain`` in ``{"source", "target"}`` and
        ``label`` a class (None without labels); its offsets are the embedded
        samples of that group, in sample order.
    legend_ : matplotlib Legend
        The legend (domains by colour, classes by marker).
    <<figure_>>
    <<bounding_ax_>>

    See Also
    --------
    TrainingHistoryDisplay : Training curves of a fitted network.
    sktransfer.metrics : Unsupervised scorers of domain adaptation.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_blobs
    >>> from sktransfer import DomainAdaptClassifier
    >>> from sktransfer.plotting import DomainShiftDisplay
    >>> X_source, y_source = make_blobs(n_samples=60, centers=2, random_state=0)
    >>> X_target = X_source + 1.5
    >>> X = np.vstack([X_source, X_target])
    >>> y = np.concatenate([y_source, -np.ones(60, dtype=int)])
    >>> params = dict(model=None, epochs=3, random_state=0, device="cpu")
    >>> before = DomainAdaptClassifier(method="source_only", **params).fit(X, y)
    >>> after = DomainAdaptClassifier(method="coral", **params).fit(X, y)
    >>> display = DomainShiftDisplay.from_estimator(
    ...     after, X_source, X_target, y_source=y_source, before=before)
    >>> len(display.axes_)
    2
    >>> sorted(display.scatters_[1])
    [('source', 0), ('source', 1), ('target', None)]
    >>> display.scatters_[1][("target", None)].get_offsets().shape
    (60, 2)
    """

    def __init__(self, embedding_source, embedding_target, *, y_source=None,
                 y_target=None, embedding_source_before=None,
                 embedding_target_before=None, method="pca", names=None):
        self.embedding_source = np.asarray(embedding_source, dtype=float)
        self.embedding_target = np.asarray(embedding_target, dtype=float)
        self.y_source = _labels(y_source, len(self.embedding_source), "y_source")
        self.y_target = _labels(y_target, len(self.embedding_target), "y_target")
        if (embedding_source_before is None) != (embedding_target_before is None):
            raise ValueError("give both embedding_source_before and "
                             "embedding_target_before, or neither.")
        self.embedding_source_before = (
            None if embedding_source_before is None
            else np.asarray(embedding_source_before, dtype=float))
        self.embedding_target_before = (
            None if embedding_target_before is None
            else np.asarray(embedding_target_before, dtype=float))
        self.method = method
        self.names = names

    def _groups(self, domain):
        y = self.y_source if domain == "source" else self.y_target
        n = len(self.embedding_source if domain == "source" else self.embedding_target)
        if y is None:
            return [(None, np.ones(n, dtype=bool))]
        numeric = np.issubdtype(y.dtype, np.number)
        unknown = (y == -1) if numeric else np.zeros(n, dtype=bool)
        labels = np.unique(y[~unknown])
        groups = [(c.item() if hasattr(c, "item") else c, y == c) for c in labels]
        if np.any(unknown):
            groups.append((None, unknown))
        return groups

    @shared_docs
    def plot(self, ax=None, *, names=None, scatter_kwargs=None, legend=True):
        """Draw the scatter panels.

        Parameters
        ----------
        <<ax>>
        names : tuple of str, default=None
            Panel titles; defaults to the ``names`` given at construction, else
            ``("before adaptation", "after adaptation")`` for two panels and
            ``("source and target features",)`` for one.
        scatter_kwargs : dict, default=None
            Keyword arguments for every ``Axes.scatter`` call.
        legend : bool, default=True
            Whether to draw the legend (beside the last panel).

        Returns
        -------
        display : DomainShiftDisplay
        """
        check_matplotlib(f"{type(self).__name__}.plot")
        from matplotlib.lines import Line2D

        panels = [(self.embedding_source, self.embedding_target)]
        if self.embedding_source_before is not None:
            panels.insert(0, (self.embedding_source_before, self.embedding_target_before))
        names = names if names is not None else self.names
        if names is None:
            names = (("before adaptation", "after adaptation") if len(panels) == 2
                     else ("source and target features",))
        names = list(names)[-len(panels):]
        axes, figure, bounding = layout_axes(ax, len(panels), nrows=1,
                                             ncols=len(panels),
                                             figsize=(5.2 * len(panels) + 1.6, 4.6))
        axes = axes[:len(panels)]
        axis = _AXIS_NAMES.get(self.method, "component") if isinstance(self.method, str) \
            else type(self.method).__name__
        marker_of = {}
        self.scatters_ = []
        for panel_ax, (emb_source, emb_target), title in zip(axes, panels, names):
            scatters = {}
            for domain, emb in (("source", emb_source), ("target", emb_target)):
                for label, mask in self._groups(domain):
                    if label is not None and label not in marker_of:
                        marker_of[label] = _MARKERS[len(marker_of) % len(_MARKERS)]
                    kwargs = dict(c=_COLOURS[domain], marker=marker_of.get(label, "o"),
                                  s=22, alpha=0.6, linewidths=0)
                    kwargs.update(scatter_kwargs or {})
                    scatters[(domain, label)] = panel_ax.scatter(
                        emb[mask, 0], emb[mask, 1], **kwargs)
            self.scatters_.append(scatters)
            panel_ax.set_title(title)
            panel_ax.set_xlabel(f"{axis} 1")
            panel_ax.set_ylabel(f"{axis} 2")
            panel_ax.grid(True, alpha=0.3)
        self.legend_ = None
        if legend:
            handles = [Line2D([], [], linestyle="", marker="o", markersize=7,
                              color=_COLOURS[d], label=d) for d in DOMAINS]
            handles += [Line2D([], [], linestyle="", marker=m, markersize=7,
                               color="0.35", label=f"class {c}")
                        for c, m in marker_of.items()]
            self.legend_ = axes[-1].legend(handles=handles, loc="upper left",
                                           bbox_to_anchor=(1.02, 1.0),
                                           borderaxespad=0.0, fontsize="small")
        self.ax_ = axes[-1]
        self.axes_ = list(axes)
        self.figure_ = figure
        self.bounding_ax_ = bounding
        return self

    @classmethod
    def from_features(cls, features_source, features_target, *, y_source=None,
                      y_target=None, features_source_before=None,
                      features_target_before=None, method="pca", random_state=0,
                      ax=None, names=None, scatter_kwargs=None, legend=True):
        """Embed and plot source and target features.

        Parameters
        ----------
        features_source : array-like of shape (n_source, n_features)
        features_target : array-like of shape (n_target, n_features)
            Features of the adapted model (any number of columns; images are
            flattened).
        y_source, y_target : array-like, default=None
            As in the constructor.
        features_source_before, features_target_before : array-like, default=None
            Features of a model before adaptation, embedded on their own and
            drawn in a first panel.
        method : {"pca", "tsne"} or transformer, default="pca"
            :class:`~sklearn.decomposition.PCA`,
            :class:`~sklearn.manifold.TSNE` (slower; the perplexity is capped
            for small sets), or any transformer with ``fit_transform`` (cloned),
            fitted on the source and target features together.
        random_state : int or None, default=0
            Seed of PCA's solver and t-SNE.
        ax, names, scatter_kwargs, legend
            As in :meth:`plot`.

        Returns
        -------
        display : DomainShiftDisplay
            Drawn: its ``axes_``, ``scatters_`` and ``legend_`` hold the artists.

        Examples
        --------
        >>> import numpy as np
        >>> from sktransfer.plotting import DomainShiftDisplay
        >>> rng = np.random.default_rng(0)
        >>> display = DomainShiftDisplay.from_features(
        ...     rng.normal(size=(30, 5)), rng.normal(size=(20, 5)) + 2,
        ...     y_source=rng.integers(0, 2, 30))
        >>> display.embedding_source.shape, display.embedding_target.shape
        ((30, 2), (20, 2))
        """
        check_matplotlib(f"{cls.__name__}.from_features")
        source = _matrix(features_source, "features_source")
        target = _matrix(features_target, "features_target")
        if source.shape[1] != target.shape[1]:
            raise ValueError(f"features_source has {source.shape[1]} features and "
                             f"features_target {target.shape[1]}; they must match.")
        emb_source, emb_target = embed(source, target, method=method,
                                       random_state=random_state)
        before = (None, None)
        if (features_source_before is None) != (features_target_before is None):
            raise ValueError("give both features_source_before and "
                             "features_target_before, or neither.")
        if features_source_before is not None:
            before = embed(_matrix(features_source_before, "features_source_before"),
                           _matrix(features_target_before, "features_target_before"),
                           method=method, random_state=random_state)
        display = cls(emb_source, emb_target, y_source=y_source, y_target=y_target,
                      embedding_source_before=before[0],
                      embedding_target_before=before[1], method=method, names=names)
        return display.plot(ax=ax, scatter_kwargs=scatter_kwargs, legend=legend)

    @classmethod
    def from_estimator(cls, estimator, X_source, X_target, *, y_source=None,
                       y_target=None, before=None, method="pca", random_state=0,
                       ax=None, names=None, scatter_kwargs=None, legend=True):
        """Embed and plot the features a fitted model computes for source and
        target samples.

        Parameters
        ----------
        estimator : fitted estimator
            Its features are ``estimator.transform(X)`` (the penultimate layer of
            FineTuneClassifier and DomainAdaptClassifier, and of the regressors);
            for a Pipeline, every step's ``transform`` in turn (the last step's
            too, when it has one). An estimator without ``transform`` (a
            ``LogisticRegression``) shows ``X`` itself.
        X_source, X_target : array-like or list of images
            Source and target samples, in any form the estimator accepts.
        y_source, y_target : array-like, default=None
            Labels, for one marker per class (``-1``: unknown).
        before : fitted estimator, default=None
            Another model (e.g. ``DomainAdaptClassifier(method="source_only")``
            or a FineTuneClassifier trained on the source), whose features are
            drawn in a first panel, "before adaptation".
        method, random_state, ax, names, scatter_kwargs, legend
            As in :meth:`from_features`.

        Returns
        -------
        display : DomainShiftDisplay
        """
        check_matplotlib(f"{cls.__name__}.from_estimator")
        features = dict(
            features_source=estimator_features(estimator, X_source),
            features_target=estimator_features(estimator, X_target))
        if before is not None:
            features.update(
                features_source_before=estimator_features(before, X_source),
                features_target_before=estimator_features(before, X_target))
        return cls.from_features(**features, y_source=y_source, y_target=y_target,
                                 method=method, random_state=random_state, ax=ax,
                                 names=names, scatter_kwargs=scatter_kwargs,
                                 legend=legend)

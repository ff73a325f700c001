"""Unsupervised model selection for domain adaptation.

The scorers read a mixed sample in scikit-learn's semi-supervised convention:
rows with ``y == -1`` are unlabeled target rows, every other row is a labeled
source row. They plug into ``GridSearchCV(..., scoring=...)`` as any scorer
``scorer(estimator, X, y) -> float`` does, greater is better, and never read a
target label. See ``docs/domain_adaptation_metrics.md`` for which to use when.
"""

import inspect
import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone, is_regressor
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_array, check_random_state

from ._utils.caller import warn
from ._sklearn_compat import _safe_indexing
from ._utils.domains import check_no_missing_labels, unlabeled_mask
from ._utils.frames import in_memory
from ._utils.representation import estimator_features

__all__ = [
    "DeepEmbeddedValidation",
    "ImportanceWeightedScorer",
    "PredictionEntropyScorer",
    "SoftNeighborhoodDensityScorer",
    "density_ratio",
    "dev_risk",
    "soft_neighborhood_density",
]

_FEATURES = ("auto", "input")


# --- pure functions --------------------------------------------------------

# The C of the default domain classifier's logistic regression, sharpest first,
# that ``min_effective_fraction`` steps through.
_SHRINKING_C = (1.0, 0.1, 0.01, 0.001)


def _is_number(value, kind=numbers.Real):
    """``value`` is a ``kind`` number, a bool not counted as one."""
    return isinstance(value, kind) and not isinstance(value, (bool, np.bool_))


def _check_density_params(cv, min_effective_fraction, prefix=""):
    """The checks of :func:`density_ratio`'s ``cv`` and ``min_effective_fraction``
    (``prefix`` names the scorer that holds them)."""
    if not _is_number(cv, numbers.Integral):
        raise ValueError(f"{prefix}cv={cv!r} must be an int: the number of cross-fitting "
                         "folds of the domain classifier (a splitter is not taken: the "
                         "folds are stratified by domain, shuffled with random_state).")
    if min_effective_fraction is not None and not (
            _is_number(min_effective_fraction) and 0 < min_effective_fraction <= 1):
        raise ValueError(f"{prefix}min_effective_fraction={min_effective_fraction!r} must "
                         "be None or a number in (0, 1].")


def _check_temperature(temperature, prefix=""):
    if not (_is_number(temperature) and temperature > 0):
        raise ValueError(f"{prefix}temperature={temperature!r} must be a number > 0.")


def density_ratio(source_features, target_features, *, domain_classifier=None,
                  cv=5, random_state=0, min_effective_fraction=None):
    """Estimate ``p_target(x) / p_source(x)`` at the source samples.

    A probabilistic classifier learns to tell source (0) from target (1)
    samples; by Bayes' rule the density ratio is
    ``(n_source / n_target) * P(target | x) / P(source | x)``. The probabilities
    of each sample come from a classifier that did not see it (``cv``-fold
    cross-fitting), so that a flexible classifier cannot memorise the samples
    and push every ratio to 0.

    Parameters
    ----------
    source_features : array-like or sparse matrix of shape (n_source, n_features)
    target_features : array-like or sparse matrix of shape (n_target, n_features)
    domain_classifier : classifier with ``predict_proba``, default=None
        Cloned before fitting. None means ``StandardScaler`` then
        ``LogisticRegression(max_iter=1000)``.
    cv : int, default=5
        Cross-fitting folds, stratified by domain; lowered to the size of the
        smaller domain. Below 2, the classifier is fitted and evaluated on all
        samples.
    random_state : int, RandomState instance or None, default=0
        Shuffles the folds. The fixed default scores every candidate of a
        search with the same folds.
    min_effective_fraction : float in (0, 1] or None, default=None
        With the default domain classifier only: the inverse regularisation
        ``C`` of its logistic regression is the largest of 1, 0.1, 0.01 and
        0.001 whose ratios keep at least this fraction of the source samples
        effective (the effective sample size ``sum(w) ** 2 / sum(w ** 2)``),
        0.001 when none does. Where the domains are easy to tell apart, the
        sharpest classifier gives a few samples all the weight, and a
        stronger prior on the ratios (a smaller ``C``) trades that variance
        for a bias towards equal weights. None: ``C=1``, one fit.

    Returns
    -------
    weights : ndarray of shape (n_source,)
        Density ratio at each source sample; its mean is close to 1 when the
        classifier is calibrated.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer.metrics import density_ratio
    >>> rng = np.random.default_rng(0)
    >>> source = rng.normal(0, 1, size=(400, 1))
    >>> target = rng.normal(1, 1, size=(400, 1))
    >>> weights = density_ratio(source, target)
    >>> bool(weights[source[:, 0] > 1].mean() > weights[source[:, 0] < 0].mean())
    True
    """
    _check_density_params(cv, min_effective_fraction)
    if min_effective_fraction is not None and domain_classifier is not None:
        raise ValueError(
            f"min_effective_fraction={min_effective_fraction!r} sets the C of the "
            "default domain classifier; with domain_classifier given, regularise "
            "that classifier itself and pass min_effective_fraction=None.")
    # lists, as array-like says; NaN and inf refused, naming the input, but for a
    # given classifier, which may take them
    source_features, target_features = (
        check_array(features, accept_sparse="csr", ensure_min_samples=0, input_name=name,
                    ensure_all_finite=domain_classifier is None)
        for features, name in ((source_features, "source_features"),
                               (target_features, "target_features")))
    n_source, n_target = source_features.shape[0], target_features.shape[0]
    if n_source == 0 or n_target == 0:
        raise ValueError(
            f"density_ratio needs samples of both domains, got {n_source} source "
            f"and {n_target} target samples."
        )
    sparse = sp.issparse(source_features) or sp.issparse(target_features)
    if domain_classifier is not None and not hasattr(domain_classifier, "predict_proba"):
        raise TypeError(
            f"domain_classifier {domain_classifier!r} has no predict_proba; the "
            "density ratio needs class probabilities."
        )
    stack = sp.vstack if sparse else np.concatenate
    features = stack([source_features, target_features])
    domain = np.r_[np.zeros(n_source, dtype=int), np.ones(n_target, dtype=int)]
    n_splits = min(int(cv), n_source, n_target)

    def ratios(classifier):
        if n_splits >= 2:
            folds = StratifiedKFold(n_splits, shuffle=True, random_state=random_state)
            proba = cross_val_predict(clone(classifier), features, domain,
                                      cv=folds, method="predict_proba")
        else:
            proba = clone(classifier).fit(features, domain).predict_proba(features)
        p_target = np.clip(proba[:n_source, 1], 1e-6, 1 - 1e-6)
        return (n_source / n_target) * p_target / (1 - p_target)

    if domain_classifier is not None:
        return ratios(domain_classifier)
    for C in _SHRINKING_C if min_effective_fraction is not None else (1.0,):
        weights = ratios(make_pipeline(StandardScaler(with_mean=not sparse),
                                       LogisticRegression(C=C, max_iter=1000)))
        if (min_effective_fraction is None
                or _effective_sample_size(weights) >= min_effective_fraction * n_source):
            break
    return weights


def _effective_sample_size(weights):
    """Kish's effective sample size of importance ``weights``,
    ``sum(w) ** 2 / sum(w ** 2)``: 1 when one sample carries all the weight,
    ``len(weights)`` when the weights are equal."""
    weights = np.asarray(weights, dtype=np.float64).ravel()
    return float(np.sum(weights) ** 2 / np.sum(weights ** 2))


def dev_risk(losses, weights):
    """Deep Embedded Validation risk: importance-weighted loss with a control variate.

    With ``L = weights * losses``, the estimate is
    ``mean(L) + eta * mean(weights) - eta`` and ``eta = -Cov(L, weights) /
    Var(weights)``: as the true weights average to 1, ``mean(weights) - 1`` is a
    zero-mean control variate, and this ``eta`` minimises the estimate's variance
    (You et al., 2019).

    Parameters
    ----------
    losses : array-like of shape (n_samples,)
        Per-sample losses on labeled source samples.
    weights : array-like of shape (n_samples,)
        Density ratios ``p_target / p_source`` at those samples.

    Returns
    -------
    risk : float
        Estimated target risk (lower is better).

    Examples
    --------
    >>> from sktransfer.metrics import dev_risk
    >>> dev_risk([1.0, 2.0], [1.0, 1.0])  # constant weights: the plain mean
    1.5
    """
    losses = np.asarray(losses, dtype=np.float64).ravel()
    weights = np.asarray(weights, dtype=np.float64).ravel()
    if losses.shape != weights.shape or losses.size == 0:
        raise ValueError(
            f"losses and weights must be non-empty and of one length, got "
            f"{losses.size} and {weights.size}."
        )
    weighted = weights * losses
    eta = 0.0
    if weights.size > 1:
        variance = np.var(weights, ddof=1)
        if variance > 0:
            eta = -np.cov(weighted, weights, ddof=1)[0, 1] / variance
    return float(np.mean(weighted) + eta * np.mean(weights) - eta)


def soft_neighborhood_density(probabilities, *, temperature=0.05, chunk_size=1024):
    """Soft neighborhood density (Saito et al., ICCV 2021) of target predictions.

    Each row of ``probabilities`` is L2-normalised; row ``i``'s similarities to
    every other row, divided by ``temperature``, go through a softmax, and the
    score is the mean entropy of those distributions (in nats). Predictions
    that form dense clusters (each sample has many close neighbours) score
    high, scattered predictions low. Rows are processed ``chunk_size`` at a
    time, so memory grows as ``chunk_size * n``, not ``n ** 2``.

    Parameters
    ----------
    probabilities : array-like of shape (n_samples, n_classes)
        Predicted class probabilities (or any non-negative scores) of at least
        2 samples; finite, and no row all zeros.
    temperature : float, default=0.05
        Of the softmax over similarities; the paper's value.
    chunk_size : int, default=1024
        Rows per block of the similarity matrix (an int >= 1).

    Returns
    -------
    density : float
        In ``[0, log(n_samples - 1)]``; greater is better.

    See Also
    --------
    SoftNeighborhoodDensityScorer : This density as a scorer for model selection.

    Notes
    -----
    The left-out self-similarity is excluded exactly and the logarithm is
    exact; the authors' code masks it with ``-1 / temperature`` and takes
    ``log(p + 1e-5)``, so its values differ slightly (see
    ``benchmarks/RESULTS.md``), not its ranking of candidates in general.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer.metrics import soft_neighborhood_density
    >>> clusters = np.repeat(np.eye(3), 20, axis=0) * 0.9 + 0.1 / 3
    >>> scattered = np.random.default_rng(0).dirichlet(np.ones(3), size=60)
    >>> bool(soft_neighborhood_density(clusters)
    ...      > soft_neighborhood_density(scattered))
    True
    """
    if sp.issparse(probabilities):
        raise TypeError("soft_neighborhood_density needs dense class probabilities; "
                        "got a sparse matrix (call .toarray() first).")
    shape = np.shape(probabilities)
    if len(shape) != 2 or shape[0] < 2:
        raise ValueError(
            "soft_neighborhood_density needs a 2-D array of at least 2 rows of class "
            f"probabilities; got shape {shape}."
        )
    proba = check_array(probabilities, dtype=np.float64, input_name="probabilities")
    _check_temperature(temperature)
    if not (_is_number(chunk_size, numbers.Integral) and chunk_size >= 1):
        raise ValueError(f"chunk_size={chunk_size!r} must be an int >= 1.")
    norms = np.linalg.norm(proba, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError(
            "soft_neighborhood_density: rows "
            f"{np.flatnonzero(norms[:, 0] == 0)[:10].tolist()} are all zeros; "
            "they have no direction to compare."
        )
    unit = proba / norms
    n = len(unit)
    total = 0.0
    for start in range(0, n, chunk_size):
        rows = unit[start:start + chunk_size]
        logits = rows @ unit.T / temperature
        # Each row's own similarity is left out.
        logits[np.arange(len(rows)), np.arange(start, start + len(rows))] = -np.inf
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        normaliser = weights.sum(axis=1, keepdims=True)
        log_p = logits - np.log(normaliser)
        p = weights / normaliser
        log_p[p == 0] = 0.0  # the left-out self (-inf), and underflows
        total += float(-np.sum(p * log_p))
    return total / n


# --- helpers shared by the scorers -----------------------------------------

def _take(X, mask):
    return _safe_indexing(X, np.flatnonzero(mask))


def _check_classifier(scorer, estimator):
    """Refuse a regressor: every scorer here reads class predictions, and a
    regressor's target rows are NaN, not ``-1``."""
    if is_regressor(estimator):
        raise ValueError(
            f"{type(scorer).__name__} scores classifiers (it reads class "
            f"predictions on rows marked y == -1); {type(estimator).__name__} is a "
            "regressor.")


def _domain_masks(scorer, X, y, *, need_source):
    """Boolean masks of the target (``y == -1``) and source rows."""
    name = type(scorer).__name__
    if y is None:
        raise ValueError(
            f"{name} needs y, with -1 on the unlabeled target rows; got y=None."
        )
    y = np.asarray(y)
    n_rows = X.shape[0] if hasattr(X, "shape") else len(X)
    if y.ndim != 1 or len(y) != n_rows:
        raise ValueError(
            f"{name} needs a 1-D y with one label per row of X; got y of shape "
            f"{y.shape} for {n_rows} rows."
        )
    try:
        check_no_missing_labels(y)
    except ValueError as exc:
        # a missing source label was charged as a wrong prediction (a log loss of
        # about 36 in DEV), silently
        raise ValueError(f"{name}: {exc}") from None
    target = unlabeled_mask(y)
    if not target.any():
        raise ValueError(
            f"{name}: no target rows (y == -1) in the scored data, so nothing tells "
            "it about the target domain. Mix unlabeled target rows into X with "
            "y == -1 (sktransfer.datasets.mix_domains), and split so that every "
            "fold holds some (a classifier's default StratifiedKFold does)."
        )
    if need_source and target.all():
        raise ValueError(
            f"{name}: no labeled source rows (y != -1) in the scored data; it "
            "estimates the target risk from labeled source rows."
        )
    return target, ~target


def _as_matrix(features, name):
    if sp.issparse(features):
        return features.tocsr()
    if hasattr(features, "detach"):
        features = features.detach().cpu().numpy()
    features = np.asarray(features)
    if features.ndim == 0 or not (np.issubdtype(features.dtype, np.number)
                                  or features.dtype == bool):
        raise TypeError(
            f"{name} cannot train its domain classifier on features of dtype "
            f"{features.dtype} and shape {features.shape}: give the estimator a "
            "transform (or a Pipeline whose steps produce numbers), or use an X of "
            "numbers."
        )
    return features.reshape(len(features), -1).astype(np.float64, copy=False)


def _check_density_scorer(scorer):
    """A density-ratio scorer's parameters, before any prediction."""
    if scorer.features not in _FEATURES:
        raise ValueError(
            f"{type(scorer).__name__}: features={scorer.features!r} must be one of "
            f"{_FEATURES}."
        )
    _check_density_params(scorer.cv, scorer.min_effective_fraction,
                          prefix=f"{type(scorer).__name__}: ")


def _source_weights(scorer, estimator, X, target, source):
    """Density ratios ``p_target / p_source`` at the source rows of ``X``.

    Warns when the domains barely overlap in those features (low mean weight,
    or a few rows carrying it all): the weighted estimate is then unreliable.
    """
    name = type(scorer).__name__
    own = False  # the features are the model's representation, not the input
    if scorer.features == "auto":
        features = estimator_features(estimator, X)
        own = features is not X
        features = _as_matrix(features, name)
        source_features, target_features = features[source], features[target]
    else:
        source_features = _as_matrix(_take(X, source), name)
        target_features = _as_matrix(_take(X, target), name)
    weights = density_ratio(source_features, target_features,
                            domain_classifier=scorer.domain_classifier,
                            cv=scorer.cv, random_state=scorer.random_state,
                            # the C of the default classifier: a given one has its own
                            min_effective_fraction=(scorer.min_effective_fraction
                                                    if scorer.domain_classifier is None
                                                    else None))
    # Calibrated ratios average to the share of the target that the source
    # covers, about 1; a low mean or a low effective sample size says the
    # domains barely overlap in these features.
    mean = float(np.mean(weights))
    effective = _effective_sample_size(weights)
    if mean < 0.25 or effective < max(2.0, 0.05 * len(weights)):
        advice = ("the model's own features do not align the domains: rank such "
                  "models with PredictionEntropyScorer" if own
                  else "score features that the model aligns across domains "
                  "(features='auto' with an estimator that has a transform), or use "
                  "PredictionEntropyScorer")
        warn(
            f"{name}: the source and target rows barely overlap in the features "
            f"the domain classifier sees (mean importance weight {mean:.2g}, about 1 "
            f"with overlap; {effective:.1f} effective source rows out of "
            f"{len(weights)}), so the estimate is unreliable: {advice}.",
            UserWarning,
        )
    return weights


def _predict_proba(scorer, estimator, X):
    if not hasattr(estimator, "predict_proba"):
        raise AttributeError(
            f"{type(scorer).__name__} needs class probabilities, and "
            f"{type(estimator).__name__} has no predict_proba."
        )
    proba = np.asarray(estimator.predict_proba(X), dtype=np.float64)
    bad = ~np.isfinite(proba).all(axis=tuple(range(1, proba.ndim)))
    if bad.any():
        # NaN read as a certain prediction gave a diverged model the best
        # entropy: NaN instead, which a search ranks last
        warn(f"{type(scorer).__name__}: the probabilities of {int(bad.sum())} of the "
             f"{len(bad)} rows it reads are not finite (NaN or inf): the model's "
             "outputs overflow (as after a fit that diverged), and the score is NaN.",
             UserWarning)
        return None
    return proba


def _log_losses(scorer, estimator, X, y):
    """Per-sample cross-entropy of the estimator's probabilities for labels ``y``;
    None where the probabilities are not finite (said)."""
    proba = _predict_proba(scorer, estimator, X)
    if proba is None:  # not finite: said
        return None
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        raise AttributeError(
            f"{type(scorer).__name__} needs the estimator's classes_ to read the "
            f"probability of each label; {type(estimator).__name__} has none."
        )
    column = {label: i for i, label in enumerate(np.asarray(classes).tolist())}
    columns = np.array([column.get(label, -1) for label in np.asarray(y).tolist()])
    picked = np.where(columns >= 0,
                      proba[np.arange(len(proba)), np.maximum(columns, 0)], 0.0)
    eps = np.finfo(np.float64).eps
    return -np.log(np.clip(picked, eps, 1.0))


class _DomainScorer:
    """A scorer for mixed source + target data; ``repr`` shows its parameters."""

    def __repr__(self):
        parameters = inspect.signature(type(self).__init__).parameters.values()
        keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        names = [p.name for p in parameters if p.name != "self" and p.kind in keyword]
        args = ", ".join(f"{p}={getattr(self, p)!r}" for p in names)
        return f"{type(self).__name__}({args})"


# What the scorers' docstrings share, written once: the parameters of both
# density-ratio scorers, and the head of every scorer's Examples section (a mixed
# sample, and a model fitted on its labeled source rows).
_SHARED_DOCS = {
    "<<domain_classifier>>": """    domain_classifier : classifier with ``predict_proba``, default=None
        Cloned for each score. None means ``StandardScaler`` then
        ``LogisticRegression(max_iter=1000)``.""",
    "<<cv>>": """    cv : int, default=5
        Cross-fitting folds of the domain classifier (see :func:`density_ratio`).
    random_state : int, RandomState instance or None, default=0
        Shuffles those folds; the fixed default scores every candidate of a
        search with the same folds.""",
    "<<examples>>": """    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_blobs
    >>> from sklearn.linear_model import LogisticRegression
    >>> X_source, y_source = make_blobs(n_samples=100, centers=2, random_state=0)
    >>> X = np.concatenate([X_source, X_source + 0.5])  # source, then shifted target
    >>> y = np.concatenate([y_source, np.full(100, -1)])  # -1: unlabeled target rows
    >>> model = LogisticRegression().fit(X_source, y_source)""",
}


def _scorer_doc(text):
    """A scorer's docstring, each marker of ``_SHARED_DOCS`` replaced by its text."""
    for marker, fragment in _SHARED_DOCS.items():
        text = text.replace(marker, fragment)
    return text


class _DensityRatioScorer(_DomainScorer):
    """A scorer that weights source rows by a cross-fitted domain classifier's
    density ratio; the parameters of :func:`density_ratio`."""

    def __init__(self, *, domain_classifier=None, features="auto", cv=5,
                 random_state=0, min_effective_fraction=None):
        self.domain_classifier = domain_classifier
        self.features = features
        self.cv = cv
        self.random_state = random_state
        self.min_effective_fraction = min_effective_fraction


# --- the scorers -----------------------------------------------------------

class PredictionEntropyScorer(_DomainScorer):
    __doc__ = _scorer_doc("""Negated mean entropy of the predicted class probabilities on the target rows.

    Confident target predictions score higher (Morerio et al., 2018). Only the
    target rows (``y == -1``) are read; the labeled rows are ignored.

    The score is ``-mean_i sum_k -p_ik log p_ik`` in nats, between ``-log(K)``
    (uniform predictions over ``K`` classes) and 0 (one-hot predictions). A
    model whose probabilities are not finite (NaN or inf: its outputs
    overflow, as after a fit that diverged) scores NaN with a warning, as it
    does with :class:`SoftNeighborhoodDensityScorer` and
    :class:`DeepEmbeddedValidation`: a search ranks it last.

    See Also
    --------
    ImportanceWeightedScorer : Estimated target accuracy from weighted source rows.
    DeepEmbeddedValidation : Estimated target log loss with a control variate.
    SoftNeighborhoodDensityScorer : How densely the target predictions cluster.

    Notes
    -----
    Entropy rewards confidence, not correctness: a model that puts every target
    sample in one class with certainty scores the best possible 0. Use it to
    compare models that are all reasonable on the source domain (e.g. a
    ``trade_off`` grid of one adaptation method), not against degenerate ones.

    References
    ----------
    P. Morerio, J. Cavazza and V. Murino, "Minimal-Entropy Correlation Alignment
    for Unsupervised Deep Domain Adaptation", ICLR 2018.

<<examples>>
    >>> from sktransfer.metrics import PredictionEntropyScorer
    >>> score = PredictionEntropyScorer()(model, X, y)
    >>> bool(-np.log(2) < score < 0)
    True
    """)

    def __call__(self, estimator, X, y):
        X = in_memory(X)  # a dask DataFrame given whole, as scikit-learn computes it
        _check_classifier(self, estimator)
        target, _ = _domain_masks(self, X, y, need_source=False)
        proba = _predict_proba(self, estimator, _take(X, target))
        if proba is None:  # not finite: said
            return float("nan")
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(proba > 0, proba * np.log(proba), 0.0)
        return float(np.mean(np.sum(terms, axis=1)))


class SoftNeighborhoodDensityScorer(_DomainScorer):
    __doc__ = _scorer_doc("""Soft neighborhood density (SND) of the target rows' predictions.

    Saito et al., ICCV 2021.

    :func:`soft_neighborhood_density` of ``predict_proba`` on the target rows
    (``y == -1``): how densely the target predictions cluster. A model that
    adapts well puts target samples in tight, class-like groups; one that does
    not leaves them scattered between classes. Unlike the mean entropy, it looks
    at the neighbourhood of each sample, not only at its own confidence. Only
    the target rows are read.

    Parameters
    ----------
    temperature : float, default=0.05
        Of the softmax over similarities; the paper's value.
    max_samples : int or None, default=5000
        Score on at most this many target rows, drawn with ``random_state``
        (the cost grows with the square of the rows). None: all of them.
    random_state : int, RandomState instance or None, default=0
        The fixed default scores every candidate of a search on the same rows.

    See Also
    --------
    PredictionEntropyScorer : Confidence on the target rows.

    Notes
    -----
    Like entropy, density rewards a collapse: if every target sample gets the
    same prediction, all are each other's close neighbours and the score is its
    maximum, ``log(n - 1)``. Compare candidates that are reasonable on the source
    domain (a ``trade_off`` grid), not degenerate ones.

    References
    ----------
    K. Saito, D. Kim, P. Teterwak, S. Sclaroff, T. Darrell and K. Saenko, "Tune
    it the Right Way: Unsupervised Validation of Domain Adaptation via Soft
    Neighborhood Density", ICCV 2021.

<<examples>>
    >>> from sktransfer.metrics import SoftNeighborhoodDensityScorer
    >>> score = SoftNeighborhoodDensityScorer()(model, X, y)
    >>> bool(0 < score < np.log(99))  # log(n - 1) for the 100 target rows
    True
    """)

    def __init__(self, *, temperature=0.05, max_samples=5000, random_state=0):
        self.temperature = temperature
        self.max_samples = max_samples
        self.random_state = random_state

    def __call__(self, estimator, X, y):
        X = in_memory(X)  # a dask DataFrame given whole, as scikit-learn computes it
        _check_temperature(self.temperature, prefix=f"{type(self).__name__}: ")
        if self.max_samples is not None and not (
                _is_number(self.max_samples, numbers.Integral) and self.max_samples >= 2):
            raise ValueError(f"{type(self).__name__}: max_samples={self.max_samples!r} "
                             "must be None or an int >= 2.")
        _check_classifier(self, estimator)
        target, _ = _domain_masks(self, X, y, need_source=False)
        rows = np.flatnonzero(target)
        if self.max_samples is not None and len(rows) > self.max_samples:
            rng = check_random_state(self.random_state)
            rows = np.sort(rng.choice(rows, size=int(self.max_samples), replace=False))
        if len(rows) < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 target rows (y == -1) in "
                f"the scored data; got {len(rows)}."
            )
        proba = _predict_proba(self, estimator, _safe_indexing(X, rows))
        if proba is None:  # not finite: said
            return float("nan")
        return soft_neighborhood_density(proba, temperature=self.temperature)


class ImportanceWeightedScorer(_DensityRatioScorer):
    __doc__ = _scorer_doc("""Accuracy on the labeled source rows, weighted to estimate target accuracy.

    Each source row is weighted by the density ratio
    ``p_target(x) / p_source(x)``, estimated by a domain classifier that tells
    the source rows from the target rows (``y == -1``) of the scored data
    (:func:`density_ratio`). The weights are normalised to sum to 1
    (importance-weighted cross-validation, Sugiyama et al., 2007), so the score
    is an estimated target accuracy, in [0, 1].

    Parameters
    ----------
<<domain_classifier>>
    features : {"auto", "input"}, default="auto"
        What the domain classifier sees. "auto": the estimator's representation,
        that is ``estimator.transform(X)`` when it has one, and for a Pipeline
        all steps but the last, then the last step's ``transform`` when it has
        one; without one, the input, flattened. "input": always the flattened
        input, which gives every candidate of a search the same weights (the
        classical covariate-shift weighting), but is hard to estimate on raw
        images, where the domains are often easy to tell apart.
<<cv>>
    min_effective_fraction : float in (0, 1] or None, default=0.05
        With the default domain classifier (ignored with another): its
        logistic regression's ``C`` is the largest of 1, 0.1, 0.01 and 0.001
        that keeps at least this fraction of the source rows effective
        (:func:`density_ratio`). On a network's hidden features the domains
        are often told apart easily, a few rows take all the weight at
        ``C=1``, and the pick follows noise. The default is the effective
        share below which the score warns that the domains barely overlap:
        weights that would warn for it are shrunk towards equal ones first,
        and the others are those of ``C=1`` (a low mean weight still warns).
        It was measured on photo shifts and MNIST -> MNIST-M
        (``docs/domain_adaptation_metrics.md``). None: ``C=1``.

    See Also
    --------
    DeepEmbeddedValidation : The same idea on the log loss, with lower variance.
    PredictionEntropyScorer : Confidence on the target rows.

    Notes
    -----
    Accuracy rather than the log loss, because it is what the selection is
    usually about, and because it stays bounded when a few rows carry most of
    the weight.

    The estimate is only as good as the overlap between the domains in the
    features the domain classifier sees. When it separates them, a handful of
    source rows take all the weight and the score falls back to the accuracy on
    those rows; with the default domain classifier, ``min_effective_fraction``
    first shrinks its ratios towards equal weights. A ``UserWarning`` says so
    when the mean weight (about 1 with overlap) falls below 0.25 or the
    effective sample size ``sum(w) ** 2 / sum(w ** 2)`` below 5 % of the source
    rows.

    References
    ----------
    M. Sugiyama, M. Krauledat and K.-R. Mueller, "Covariate Shift Adaptation by
    Importance Weighted Cross Validation", JMLR 2007.

<<examples>>
    >>> from sktransfer.metrics import ImportanceWeightedScorer
    >>> score = ImportanceWeightedScorer()(model, X, y)
    >>> bool(0.9 < score <= 1.0)
    True
    """)

    def __init__(self, *, domain_classifier=None, features="auto", cv=5,
                 random_state=0, min_effective_fraction=0.05):
        super().__init__(domain_classifier=domain_classifier, features=features, cv=cv,
                         random_state=random_state,
                         min_effective_fraction=min_effective_fraction)

    def __call__(self, estimator, X, y):
        X = in_memory(X)  # a dask DataFrame given whole, as scikit-learn computes it
        _check_classifier(self, estimator)
        _check_density_scorer(self)
        target, source = _domain_masks(self, X, y, need_source=True)
        weights = _source_weights(self, estimator, X, target, source)
        correct = np.asarray(estimator.predict(_take(X, source))) == np.asarray(y)[source]
        return float(np.sum(weights * correct) / np.sum(weights))


class DeepEmbeddedValidation(_DensityRatioScorer):
    __doc__ = _scorer_doc("""Negated Deep Embedded Validation risk: target log loss estimated from source rows.

    Deep Embedded Validation (You et al., 2019) weights the per-sample log loss
    of the labeled source rows by the density ratio ``p_target / p_source``
    estimated in the model's feature space (:func:`density_ratio`), and reduces
    the variance of that weighted mean with a control variate
    (:func:`dev_risk`). The score is the negated risk: greater is better.

    Parameters
    ----------
<<domain_classifier>>
    features : {"auto", "input"}, default="auto"
        What the domain classifier sees; see :class:`ImportanceWeightedScorer`.
        "auto" (the model's features) is the method of the paper.
<<cv>>
    min_effective_fraction : float in (0, 1] or None, default=None
        As for :class:`ImportanceWeightedScorer`; None (``C=1``) here: with the
        control variate, shrunken weights chose far worse on MNIST -> MNIST-M
        and only a little better on the photo shifts
        (``docs/domain_adaptation_metrics.md``).

    See Also
    --------
    ImportanceWeightedScorer : Weighted accuracy, without the control variate.
    PredictionEntropyScorer : Confidence on the target rows.

    Notes
    -----
    The paper fits the domain classifier on training-source and target features
    and weights a separate source validation set. Here the scored data (a
    held-out fold of a search) plays the validation set, and cross-fitting keeps
    each row's weight from a classifier that did not see it.

    As for :class:`ImportanceWeightedScorer`, the domains must overlap in the
    features: when they barely do, a ``UserWarning`` says so. Where the
    weights average so far from 1 that the control variate pushes the
    estimated log loss below 0, which no model reaches, the score is NaN (with
    a warning): a search ranks it last rather than first.

    The estimator needs ``predict_proba`` and ``classes_``; a label of the scored
    rows outside ``classes_`` gets probability 0, that is a loss of about 36.

    References
    ----------
    K. You, X. Wang, M. Long and M. I. Jordan, "Towards Accurate Model Selection
    in Deep Unsupervised Domain Adaptation", ICML 2019.

<<examples>>
    >>> from sktransfer.metrics import DeepEmbeddedValidation
    >>> swapped = LogisticRegression().fit(X_source, 1 - y_source)  # wrong labels
    >>> dev = DeepEmbeddedValidation()
    >>> bool(dev(model, X, y) > dev(swapped, X, y))
    True
    """)

    def __call__(self, estimator, X, y):
        X = in_memory(X)  # a dask DataFrame given whole, as scikit-learn computes it
        _check_classifier(self, estimator)
        _check_density_scorer(self)
        target, source = _domain_masks(self, X, y, need_source=True)
        losses = _log_losses(self, estimator, _take(X, source), np.asarray(y)[source])
        if losses is None:  # probabilities not finite: said
            return float("nan")
        weights = _source_weights(self, estimator, X, target, source)
        risk = dev_risk(losses, weights)
        if risk < 0:
            # A log loss is never negative: the control variate went past it
            # (the weights average far from 1). A score of NaN, which a search
            # ranks last, rather than one above every sane candidate.
            warn(f"DeepEmbeddedValidation: the estimated target log loss is {risk:.3g}, "
                 "below 0, which no model reaches: the importance weights average "
                 f"{float(np.mean(weights)):.3g} instead of about 1, and the score is "
                 "NaN.", UserWarning)
            return float("nan")
        return -risk

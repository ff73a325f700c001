"""The representation an estimator classifies from (a leaf), used by the scorers
of :mod:`sktransfer.metrics` and the domain-shift picture of
:mod:`sktransfer.plotting`."""

from sklearn.pipeline import Pipeline


def estimator_features(estimator, X):
    """The representation ``estimator`` classifies from.

    A Pipeline applies all its steps but the last, then the last step's
    ``transform`` when it has one; any other estimator its own ``transform``;
    without one, the input itself.
    """
    if isinstance(estimator, Pipeline):
        if len(estimator.steps) > 1:
            X = estimator[:-1].transform(X)
        last = estimator.steps[-1][1]
        return last.transform(X) if hasattr(last, "transform") else X
    if hasattr(estimator, "transform"):
        return estimator.transform(X)
    return X

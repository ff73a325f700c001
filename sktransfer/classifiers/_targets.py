"""What ``y`` is to a neural estimator: the kinds of target.

A :class:`TargetType` tells the shared machinery of :mod:`._base` everything
that depends on the kind of ``y``: how validated labels or values become
training targets and weights (:meth:`~TargetType.encode`,
:meth:`~TargetType.sample_weights`), the width of the network's head
(:attr:`~TargetType.n_outputs`), the criterion the training step uses and that
validation reports (:meth:`~TargetType.criterion`, a
:class:`~sktransfer.training._criteria.Criterion`), how the validation split is
stratified, whether batches may be mixed, and how the network's outputs become
predictions (:meth:`~TargetType.predict`). An estimator builds its target type
from its parameters and fitted attributes (``_target_type()``), so a
refitted, unpickled or loaded estimator gets the same one.

* :class:`SingleLabel`: one class per sample (softmax, cross-entropy).
* :class:`MultiLabel`: a 0/1 indicator matrix (one sigmoid per label, binary
  cross-entropy).
* :class:`Regression`: real values, standardised for training.

The checks of ``y`` that come before any state (:func:`check_multilabel_y`,
:func:`check_regression_y`) refuse bad input with a ValueError that names it.
"""

import numpy as np
from scipy import sparse
from scipy.special import expit, log_expit, log_softmax, softmax

from ..training._criteria import (
    BinaryCrossEntropy,
    CrossEntropy,
    RegressionLoss,
)
from ..training._mixing import make_mixing


class TargetType:
    """Base of the kinds of target; the defaults suit targets without classes.

    Subclasses set :attr:`n_outputs` and implement :meth:`encode`,
    :meth:`criterion` and :meth:`predict`.
    """

    #: Width of the network's head.
    n_outputs = 1

    def encode(self, y):
        """Training targets of validated ``y`` (an ndarray, one row per sample)."""
        raise NotImplementedError(f"{type(self).__name__} must implement encode.")

    def sample_weights(self, encoded, sample_weight):
        """Weights in the loss of the rows of ``encoded``: ``sample_weight`` (a
        checked float64 array) by default; a subclass adds class weights."""
        return sample_weight

    def criterion(self):
        """The :class:`~sktransfer.training._criteria.Criterion` of a fit."""
        raise NotImplementedError(f"{type(self).__name__} must implement criterion.")

    def strata(self, targets):
        """What the validation split stratifies on (one value per row), or None
        for a plain random split (the default)."""
        return None

    def mixing(self, *, images):
        """The batch mixing of a fit (MixUp, CutMix), or None (the default)."""
        return None

    def predict(self, outputs):
        """Predictions from the network's ``outputs`` (float32, one row per sample)."""
        raise NotImplementedError(f"{type(self).__name__} must implement predict.")


class ClassTargets(TargetType):
    """Base of the classification kinds: probabilities and decision values too."""

    def decision_function(self, outputs):
        raise NotImplementedError

    def predict_proba(self, outputs):
        raise NotImplementedError

    def predict_log_proba(self, outputs):
        raise NotImplementedError


def check_class_weight(class_weight, classes):
    """Refuse a ``class_weight`` dict that names a class not among ``classes``."""
    if isinstance(class_weight, dict):
        missing = set(class_weight) - set(np.asarray(classes).tolist())
        if missing:
            raise ValueError(f"class_weight names classes {sorted(missing)} "
                             "that are not in y.")


class SingleLabel(ClassTargets):
    """One class per sample, as index of ``classes``.

    Parameters
    ----------
    classes : ndarray
        The sorted labels (``classes_``).
    label_smoothing : float, default=0.0
    class_weight : "balanced", dict or None, default=None
    mixup : str, dict or None, default=None
        The ``mixup`` parameter (MixUp / CutMix of images and class labels).
    """

    def __init__(self, classes, *, label_smoothing=0.0, class_weight=None, mixup=None):
        self.classes = classes
        self.label_smoothing = label_smoothing
        self.class_weight = class_weight
        self.mixup = mixup

    @property
    def n_outputs(self):
        return len(self.classes)

    def encode(self, y):
        unknown = np.setdiff1d(np.unique(y), self.classes)
        if len(unknown):
            raise ValueError(f"y has labels {unknown.tolist()} that are not in "
                             f"classes_ {self.classes.tolist()}.")
        return np.searchsorted(self.classes, y)

    def sample_weights(self, encoded, sample_weight):
        weights = sample_weight
        if self.class_weight is not None:
            check_class_weight(self.class_weight, self.classes)
            lookup = np.ones(len(self.classes))
            if isinstance(self.class_weight, str):  # "balanced"
                # rows counted by their weight, as scikit-learn's estimators
                # count them: a row of weight 0 is a row left out
                counts = np.bincount(encoded, weights=sample_weight,
                                     minlength=len(self.classes))
                present = counts > 0
                lookup[present] = counts.sum() / (present.sum() * counts[present])
            else:  # a dict: its classes weighted, the others 1 (any batch)
                lookup = np.array([float(self.class_weight.get(label, 1.0))
                                   for label in self.classes.tolist()])
            weights = weights * lookup[encoded]
        return weights

    def criterion(self):
        return CrossEntropy(self.label_smoothing)

    def strata(self, targets):
        return targets

    def mixing(self, *, images):
        return make_mixing(self.mixup, len(self.classes), images=images)

    def decision_function(self, outputs):
        logits = outputs.astype(np.float64)
        if logits.shape[1] == 2:
            return logits[:, 1] - logits[:, 0]
        return logits

    def predict_proba(self, outputs):
        return softmax(outputs.astype(np.float64), axis=1)

    def predict_log_proba(self, outputs):
        return log_softmax(outputs.astype(np.float64), axis=1)

    def predict(self, outputs):
        return self.classes[outputs.argmax(axis=1)]


def check_multilabel_y(y, n_samples, *, require_both_values=True):
    """``y`` as an int64 (n_samples, n_labels) 0/1 indicator matrix, or a
    ValueError naming what is wrong: strings, NaN or infinity, values other
    than 0 and 1, and (``require_both_values``) a label column that is all 0
    or all 1, which the network could learn nothing from."""
    y = np.asarray(y)
    if y.ndim != 2 or y.shape[1] < 2:
        raise ValueError(f"a multi-label y is a 2-D 0/1 indicator matrix with one "
                         f"column per label; got shape {y.shape}.")
    if len(y) != n_samples:
        raise ValueError(f"X has {n_samples} samples but y has {len(y)}: they must "
                         "have the same length.")
    if y.dtype.kind not in "biuf":
        raise ValueError(f"a 2-D y is read as a multi-label indicator matrix and must "
                         f"hold 0 and 1; it holds values of dtype {y.dtype} (for "
                         "label sets, use sklearn.preprocessing.MultiLabelBinarizer).")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        row = int(np.flatnonzero(~np.isfinite(y).all(axis=1))[0])
        raise ValueError(f"y holds NaN or infinity, the first at row {row}: a "
                         "multi-label y holds 0 and 1 only.")
    bad = (y != 0) & (y != 1)
    if bad.any():
        row, column = map(int, np.argwhere(bad)[0])
        raise ValueError(f"a 2-D y is read as a multi-label indicator matrix and must "
                         f"hold 0 and 1 only; y[{row}, {column}] is {y[row, column].item()!r}.")
    y = y.astype(np.int64)
    if require_both_values:
        positives = y.sum(axis=0)
        constant = np.flatnonzero((positives == 0) | (positives == len(y)))
        if len(constant):
            column = int(constant[0])
            value = int(y[0, column])
            raise ValueError(
                f"label column {column} of y is all {value} ({len(constant)} such "
                f"column(s)): each label needs samples with and without it. Drop "
                "the column, or gather samples that have both.")
    return y


class MultiLabel(ClassTargets):
    """A 0/1 indicator per label (one sigmoid per label, binary cross-entropy).

    Parameters
    ----------
    n_labels : int
    threshold : float, default=0.5
        Probability above which ``predict`` sets a label.
    label_smoothing : float, default=0.0
    class_weight : "balanced", list of dict or None, default=None
        ``"balanced"``: within each label, the samples with and without it
        weigh ``n / (2 n_with)`` and ``n / (2 n_without)``; a list of one dict
        per label, ``{0: weight without, 1: weight with}`` (scikit-learn's
        multi-output form; a missing key weighs 1).
    mixup : str, dict or None, default=None
        Refused: the mixing of class labels applies to one label per sample.
    """

    def __init__(self, n_labels, *, threshold=0.5, label_smoothing=0.0, class_weight=None,
                 mixup=None):
        self.n_labels = n_labels
        self.threshold = threshold
        self.label_smoothing = label_smoothing
        self.class_weight = class_weight
        self.mixup = mixup

    @property
    def n_outputs(self):
        return self.n_labels

    def check_params(self):
        """ValueError for parameters that have no meaning for multi-label y."""
        if self.mixup is not None:
            raise ValueError(f"mixup={self.mixup!r} mixes single class labels; a "
                             "multi-label y takes mixup=None.")
        weight = self.class_weight
        if isinstance(weight, dict):
            raise ValueError(
                "class_weight as one dict weighs the classes of single-label y; for a "
                "multi-label y pass 'balanced' or a list of one dict per label, "
                "{0: weight without the label, 1: weight with it}.")
        if isinstance(weight, list):
            if len(weight) != self.n_labels or not all(isinstance(w, dict) for w in weight):
                raise ValueError(f"class_weight holds {len(weight)} entries; a multi-label "
                                 f"y with {self.n_labels} labels needs one dict per label.")
            for w in weight:
                if set(w) - {0, 1}:
                    raise ValueError(f"class_weight entry {w!r} has keys other than 0 "
                                     "and 1 (without / with the label).")

    def encode(self, y):
        if y.shape[1] != self.n_labels:
            raise ValueError(f"y has {y.shape[1]} label columns; this estimator was "
                             f"fitted with {self.n_labels}.")
        return np.asarray(y, dtype=np.float32)

    def sample_weights(self, encoded, sample_weight):
        """Per (sample, label) weights, (n_samples, n_labels), when ``class_weight``
        is set; else the per-sample weights."""
        if self.class_weight is None:
            return sample_weight
        positive = encoded > 0.5
        weights = np.empty(encoded.shape)
        for column in range(self.n_labels):
            has = positive[:, column]
            if isinstance(self.class_weight, list):
                per_value = self.class_weight[column]
                without, with_ = per_value.get(0, 1.0), per_value.get(1, 1.0)
            else:  # rows counted by their weight, as for one label per row
                n_with = sample_weight[has].sum()
                n_without = sample_weight[~has].sum()
                total = n_with + n_without
                with_ = total / (2.0 * n_with) if n_with else 1.0
                without = total / (2.0 * n_without) if n_without else 1.0
            weights[:, column] = np.where(has, with_, without)
        return weights * sample_weight[:, None]

    def criterion(self):
        return BinaryCrossEntropy(self.label_smoothing, threshold=self.threshold)

    def decision_function(self, outputs):
        return outputs.astype(np.float64)

    def predict_proba(self, outputs):
        return expit(outputs.astype(np.float64))

    def predict_log_proba(self, outputs):
        return log_expit(outputs.astype(np.float64))

    def predict(self, outputs):
        return (self.predict_proba(outputs) > self.threshold).astype(np.int64)


def check_regression_y(y, n_samples):
    """``y`` as float64, (n_samples,) or (n_samples, n_outputs), or a ValueError
    naming what is wrong: strings, NaN or infinity, more than two dimensions,
    a length other than ``n_samples``."""
    if y is None:
        raise ValueError("a regressor requires y to be passed, but the target y is None.")
    if sparse.issparse(y):
        raise ValueError("a sparse y is not supported for regression: pass a dense "
                         "array (y.toarray()).")
    array = np.asarray(y)
    if array.dtype.kind in "OUSV":
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"regression targets must be numbers; y holds values of dtype "
                f"{array.dtype} that are not (e.g. {array.ravel()[0]!r}). For class "
                "labels use FineTuneClassifier.") from None
    if array.dtype.kind not in "biuf":
        raise ValueError(f"regression targets must be numbers; y has dtype {array.dtype}.")
    if array.ndim not in (1, 2):
        raise ValueError(f"y must be 1-D (n_samples,) or 2-D (n_samples, n_outputs); "
                         f"got shape {array.shape}.")
    if len(array) != n_samples:
        raise ValueError(f"X has {n_samples} samples but y has {len(array)}: they must "
                         "have the same length.")
    if array.ndim == 2 and array.shape[1] == 0:
        raise ValueError("y has 0 outputs: it needs at least one column.")
    array = array.astype(np.float64)
    finite = np.isfinite(array) if array.ndim == 1 else np.isfinite(array).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise ValueError(f"y holds {int((~finite).sum())} row(s) with NaN or infinity, "
                         f"the first at row {row}: drop or impute them.")
    return array


def standardisation(y, sample_weight=None):
    """``(mean, scale)`` of each column of ``y`` (n_samples, n_outputs),
    weighted by ``sample_weight`` (rows of weight 0 do not count), the scale 1
    where a column is constant (as ``StandardScaler``)."""
    with np.errstate(over="ignore", invalid="ignore"):
        mean = np.average(y, axis=0, weights=sample_weight)
        scale = np.sqrt(np.average((y - mean) ** 2, axis=0, weights=sample_weight))
        if not np.isfinite(scale).all():
            # Targets past 1e154 have a finite spread but squares that overflow:
            # the deviations divided by the largest one first.
            spread = np.abs(y - mean).max(axis=0)
            unit = np.where(spread > 0, spread, 1.0)
            scale = unit * np.sqrt(np.average(((y - mean) / unit) ** 2, axis=0,
                                              weights=sample_weight))
    if not (np.isfinite(mean).all() and np.isfinite(scale).all()):
        raise ValueError("y's values are too large to standardise in float64 (their "
                         "mean or spread overflows): rescale y, e.g. with "
                         "TransformedTargetRegressor.")
    scale[~(scale > 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0))] = 1.0
    return mean, scale


class Regression(TargetType):
    """Real values, trained on standardised targets.

    Parameters
    ----------
    mean, scale : ndarray of shape (n_outputs,)
        The standardisation fitted on the first ``fit`` (``mean_``, ``scale_``).
    loss : {"squared_error", "absolute_error", "huber"}, default="squared_error"
    """

    def __init__(self, mean, scale, *, loss="squared_error"):
        self.mean = mean
        self.scale = scale
        self.loss = loss

    @property
    def n_outputs(self):
        return len(self.mean)

    def encode(self, y):
        y = y.reshape(len(y), -1)
        if y.shape[1] != self.n_outputs:
            raise ValueError(f"y has {y.shape[1]} outputs; this estimator was fitted "
                             f"with {self.n_outputs}.")
        return ((y - self.mean) / self.scale).astype(np.float32)

    def criterion(self):
        return RegressionLoss(self.loss)

    def predict(self, outputs):
        """Values on the scale of ``y``; (n_samples,) for one output, as
        scikit-learn's ``MLPRegressor``."""
        values = outputs.astype(np.float64) * self.scale + self.mean
        return values.ravel() if self.n_outputs == 1 else values


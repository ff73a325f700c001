"""FineTuneClassifier: fine-tune a pretrained CNN behind fit / predict, for one
label per sample or a multi-label indicator matrix."""

from numbers import Real

import numpy as np
import scipy.sparse

from .._sklearn_compat import Interval, StrOptions, _fit_context
from .._utils.hints import ImagesLike, LabelsLike
from ._base import NeuralClassifierBase, restored_on_failure
from ._parameters import PARAMETER_DOCS, parameters_doc
from ._targets import MultiLabel, check_multilabel_y

_THRESHOLD_DOC = """threshold : float, default=0.5
        Multi-label ``y`` only: ``predict`` sets the labels whose probability is
        above it."""
_CLASS_WEIGHT_DOC = PARAMETER_DOCS["class_weight"].replace(
    '"balanced", dict or None', '"balanced", dict, list of dict or None') + """
        For a multi-label ``y``: ``"balanced"`` weighs, within each label, the
        samples with and without it as ``n / (2 n_with)`` and ``n / (2
        n_without)``; a list of one dict per label, ``{0: weight without,
        1: weight with}``, sets them (a missing key weighs 1)."""


def _label_matrix(y):
    """``y`` as an array when it is 2-D with several columns (a multi-label
    indicator matrix, dense or sparse), else None."""
    if scipy.sparse.issparse(y):
        y = y.toarray()
    try:
        array = np.asarray(y)
    except ValueError:  # rows of different lengths
        array = None
    if array is None or (array.dtype == object and array.ndim == 1 and any(
            isinstance(label, (list, tuple, set, np.ndarray)) for label in array)):
        raise ValueError(
            "y holds a sequence of labels per sample (a list of lists): a multi-label "
            "y is a 2-D 0/1 indicator matrix, one column per label; "
            "sklearn.preprocessing.MultiLabelBinarizer().fit_transform(y) makes one.")
    if (array.dtype == object and array.ndim == 2 and hasattr(y, "dtypes")
            and all(dtype.kind in "biuf" for dtype in y.dtypes)):
        # pandas' nullable numbers (Int64, boolean) come out of np.asarray as
        # objects: read them as numbers (NA as NaN), as scikit-learn does.
        array = y.to_numpy(dtype=np.float64, na_value=np.nan)
    return array if array.ndim == 2 and array.shape[1] > 1 else None


class FineTuneClassifier(NeuralClassifierBase):
    __doc__ = """Fine-tune a pretrained network (image or text) as a scikit-learn classifier.

    A new linear head is put on a pretrained backbone and trained with it (or
    alone) on your labelled images. ``y`` holds one label per sample, or is a
    2-D 0/1 indicator matrix (one column per label, as
    :class:`~sklearn.preprocessing.MultiLabelBinarizer` makes): then each label
    gets a sigmoid, trained with binary cross-entropy, ``predict`` returns the
    indicator matrix of the labels whose probability is above ``threshold``,
    and ``predict_proba`` the (n_samples, n_labels) probabilities, as
    :class:`~sklearn.neural_network.MLPClassifier` does. Works in :class:`~sklearn.pipeline.Pipeline`,
    :class:`~sklearn.model_selection.GridSearchCV` and ``cross_val_score``, and
    pickles with joblib. With ``model=None`` it is a small MLP for flat feature
    input (e.g. the output of :class:`~sktransfer.PretrainedFeatureExtractor`).

    Parameters
    ----------
{parameters}

    Attributes
    ----------
    classes_ : ndarray
        The labels seen at fit (any type sklearn accepts); ``0 .. n_labels - 1``
        for a multi-label ``y``.
    multilabel_ : bool
        Whether the fit was on a multi-label indicator matrix.
    module_ : torch.nn.Module
        The trained network (``backbone`` + ``head``).
    history_ : list of dict
        One record per epoch: ``epoch``, ``train_loss``, ``valid_loss``,
        ``valid_score``, ``lr``, ``duration``.
    preprocess_ : PreprocessConfig or None
        The image preprocessing used (None for flat input).
    n_iter_ : int
        Epochs trained.
    interrupted_ : bool
        Whether the last fit was stopped by KeyboardInterrupt (the model then
        holds the weights of the last finished epoch; a Ctrl-C before the first
        epoch finished lets the KeyboardInterrupt through and leaves the
        estimator as it was).
    n_features_in_ : int
        Features of flat input seen at fit (flat input only).
    feature_names_in_ : ndarray of str
        Column names of a DataFrame seen at fit.

    See Also
    --------
    PretrainedFeatureExtractor : Frozen features for any scikit-learn estimator.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sktransfer import FineTuneClassifier
    >>> X, y = make_classification(n_samples=60, n_features=8, random_state=0)
    >>> clf = FineTuneClassifier(model=None, epochs=20, lr=1e-2, random_state=0,
    ...                          device="cpu").fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    >>> len(clf.history_)
    20
    """.format(parameters=parameters_doc(class_weight=_CLASS_WEIGHT_DOC,
                                         last=[("threshold", _THRESHOLD_DOC)]))

    _parameter_constraints = {
        **NeuralClassifierBase._parameter_constraints,
        "class_weight": [StrOptions({"balanced"}), dict, list, None],
        "threshold": [Interval(Real, 0, 1, closed="neither")],
    }

    def __init__(
        self,
        *,
        model="efficientnet_lite0",
        weights="DEFAULT",
        freeze=None,
        unfreeze_after=None,
        epochs="auto",
        batch_size=32,
        lr=1e-3,
        backbone_lr_ratio="auto",
        head_init="auto",
        optimizer="adamw",
        weight_decay=1e-4,
        scheduler="onecycle",
        augment="default",
        mixup=None,
        label_smoothing=0.0,
        class_weight=None,
        validation_fraction=0.1,
        early_stopping=False,
        patience=3,
        grad_clip=None,
        hidden_layer_sizes=(256,),
        device="auto",
        precision="auto",
        num_workers=0,
        compile=False,
        devices="auto",
        strategy="auto",
        sync_batchnorm=False,
        callbacks=None,
        random_state=None,
        verbose=0,
        warm_start=False,
        input_shape=None,
        image_size=None,
        max_length=None,
        threshold=0.5,
    ):
        self.model = model
        self.weights = weights
        self.freeze = freeze
        self.unfreeze_after = unfreeze_after
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.backbone_lr_ratio = backbone_lr_ratio
        self.head_init = head_init
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.scheduler = scheduler
        self.augment = augment
        self.mixup = mixup
        self.label_smoothing = label_smoothing
        self.class_weight = class_weight
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.grad_clip = grad_clip
        self.hidden_layer_sizes = hidden_layer_sizes
        self.device = device
        self.precision = precision
        self.num_workers = num_workers
        self.compile = compile
        self.devices = devices
        self.strategy = strategy
        self.sync_batchnorm = sync_batchnorm
        self.callbacks = callbacks
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.input_shape = input_shape
        self.image_size = image_size
        self.max_length = max_length
        self.threshold = threshold

    def _validate_labels(self, y, n_samples, *, whole):
        """A multi-label indicator matrix (checked by :func:`check_multilabel_y`;
        ``whole``: every label column must hold both values), or labels as
        the classifiers read them."""
        matrix = _label_matrix(y)
        if matrix is not None:
            return check_multilabel_y(matrix, n_samples, require_both_values=whole)
        return self._validate_y(y, n_samples)

    def _fit_targets(self, y, *, continuing, classes=None, sample_weight=None):
        multilabel = y.ndim == 2
        # A fit from before multi-label support has no multilabel_: it was single-label.
        if continuing and multilabel != vars(self).get("multilabel_", False):
            raise ValueError(
                f"y is {'a multi-label matrix' if multilabel else 'one label per sample'}"
                f", and this estimator was fitted on "
                f"{'one label per sample' if multilabel else 'a multi-label matrix'}: "
                "call fit (without warm_start) to start over.")
        if not multilabel:
            super()._fit_targets(y, continuing=continuing, classes=classes,
                                 sample_weight=sample_weight)
            self.multilabel_ = False
            return
        n_labels = y.shape[1]
        if classes is not None and not np.array_equal(np.unique(np.asarray(classes)),
                                                      np.arange(n_labels)):
            raise ValueError(f"classes={classes!r}: with a multi-label y the classes are "
                             f"the {n_labels} columns, 0 .. {n_labels - 1}.")
        # The parameters first: a refused fit leaves a fitted estimator as it was.
        MultiLabel(n_labels, threshold=self.threshold, label_smoothing=self.label_smoothing,
                   class_weight=self.class_weight, mixup=self.mixup).check_params()
        if not continuing:
            self.classes_ = np.arange(n_labels)
            self.multilabel_ = True

    def _target_type(self):
        if vars(self).get("multilabel_", False):
            return MultiLabel(len(self.classes_), threshold=self.threshold,
                              label_smoothing=self.label_smoothing,
                              class_weight=self.class_weight, mixup=self.mixup)
        return super()._target_type()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    @restored_on_failure
    def fit(self, X: ImagesLike, y: LabelsLike,
            sample_weight: LabelsLike | None = None) -> "FineTuneClassifier":
        """Fine-tune on images ``X`` with labels ``y``.

        Parameters
        ----------
        X : images, list of PIL images, list of paths, or flat rows
            As for :class:`~sktransfer.PretrainedFeatureExtractor` (flat rows with
            ``model=None`` or ``input_shape``).
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Labels, or a 0/1 indicator matrix of labels (each column must hold
            both values).
        sample_weight : array-like of shape (n_samples,) or None
            Weights of the samples in the loss.

        Returns
        -------
        self : FineTuneClassifier
        """
        continuing = self._begin_fit()
        source = self._validate_X(X, reset=not continuing)
        y = self._validate_labels(y, len(source), whole=True)
        data = self._fit_data(source, y, sample_weight, continuing=continuing)
        return self._fit_epochs(data, epochs=self.epochs)

    @_fit_context(prefer_skip_nested_validation=True)
    @restored_on_failure
    def partial_fit(self, X: ImagesLike, y: LabelsLike, classes: LabelsLike | None = None,
                    sample_weight: LabelsLike | None = None) -> "FineTuneClassifier":
        """Train one more epoch on ``X, y`` (a constant learning rate).

        Parameters
        ----------
        X, y, sample_weight : as in :meth:`fit`
        classes : array-like or None
            All the classes: required at the first call (as for scikit-learn's
            ``SGDClassifier``: a first batch rarely holds every class), fixed
            afterwards; optional at later calls. Not needed for a multi-label
            ``y``, whose columns are the labels.

        Returns
        -------
        self : FineTuneClassifier
        """
        continuing = self._begin_fit(incremental=True)
        if isinstance(self.class_weight, str) and self.class_weight == "balanced":
            raise ValueError(
                "class_weight='balanced' is not supported by partial_fit: each batch "
                "would be weighed by its own class counts, not the data's (as for "
                "SGDClassifier). Pass weights computed on all the data: a dict, e.g. "
                "from sklearn.utils.class_weight.compute_class_weight('balanced', "
                "classes=..., y=y_all), or for a multi-label y a list of one dict "
                "per label.")
        if not continuing and classes is None and _label_matrix(y) is None:
            raise ValueError(
                "classes= is required at the first call to partial_fit: pass every "
                "class the model will see (e.g. classes=np.unique(y_all)); a first "
                "batch rarely holds them all.")
        source = self._validate_X(X, reset=not continuing)
        y = self._validate_labels(y, len(source), whole=False)
        data = self._fit_data(source, y, sample_weight, continuing=continuing,
                              classes=classes)
        # One epoch at a time: no schedule to follow.
        return self._fit_epochs(data, epochs=1, schedule=False)

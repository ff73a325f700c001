"""DomainAdaptRegressor: unsupervised domain adaptation for numbers."""

import os
from numbers import Real

import numpy as np
import pandas as pd
from sklearn.metrics import r2_score
from sklearn.utils import check_consistent_length

from .._sklearn_compat import Interval, StrOptions, _fit_context, _safe_indexing
from .._utils.frames import in_memory
from .._utils.domains import target_mask
from .._utils.hints import ImagesLike, LabelsLike
from ._adapting import adaptation_step, adapts, check_domains, resolve_adaptation
from ._base import restored_on_failure
from ._parameters import parameters_doc
from ._text_defaults import auto_adapt_epochs
from ._targets import check_regression_y
from .finetune_regressor import (
    _EARLY_STOPPING_DOC,
    _LOSS_DOC,
    _NOT_FOR_REGRESSION,
    FineTuneRegressor,
    RegressorBase,
)

#: The methods that align features, which a real-valued target leaves meaningful;
#: those built on class predictions (pseudo-labels, class confusion, a
#: discriminator conditioned on classes) have nothing to work on.
REGRESSION_METHODS = ("dann", "coral", "mmd", "source_only")

_METHOD_DOC = """method : {"dann", "coral", "mmd", "source_only"} or loss, default="dann"
        How the features of the two domains are brought together while the
        regression head trains on the source: ``"dann"`` a domain
        discriminator behind gradient reversal, ``"coral"`` the second-order
        statistics, ``"mmd"`` a kernel two-sample distance; ``"source_only"``
        no adaptation (the baseline). The methods of
        :class:`~sktransfer.DomainAdaptClassifier` that use class predictions
        (self-training, MCC, AdaMatch, CDAN, VADA) do not apply to numbers,
        given by name or as loss objects. Another
        :class:`~sktransfer.adaptation.AdaptationLoss` object is used as it is
        (it sees features and outputs); one whose ``needs_classes`` is True is
        refused."""


class DomainAdaptRegressor(RegressorBase):
    __doc__ = """A regressor trained on labeled source data that adapts, while it trains,
    to unlabeled target data.

    Source and target travel through scikit-learn as skada's regressors take
    them: ``fit(X, y)`` with ``y`` NaN on the unlabeled samples (every labeled
    sample is source and every NaN sample target), or ``sample_domain``
    (positive ids source, negative ids target). Each training step sees a
    source batch and a target batch of ``batch_size`` samples each; the loss
    is the regression loss on the source batch (targets standardised as in
    :class:`~sktransfer.FineTuneRegressor`) plus ``trade_off`` times the
    adaptation loss of ``method`` on the features of both. ``score`` is R² on
    the labeled samples.

    Parameters
    ----------
{parameters}

    Attributes
    ----------
    mean_, scale_ : ndarray of shape (n_outputs,)
        The standardisation of the labeled targets (see
        :class:`~sktransfer.FineTuneRegressor`).
    n_outputs_ : int
    module_ : torch.nn.Module
        The trained network (``backbone`` + ``head``).
    history_ : list of dict
        One record per epoch; ``supervised_loss`` and ``adaptation_loss`` give
        the two parts of ``train_loss`` when a method adapts.
    preprocess_ : PreprocessConfig, TextPreprocess or None
    n_iter_ : int
    interrupted_ : bool
    n_source_ : int
        Labeled samples of the last fit (those held out for early stopping
        included).
    n_target_ : int
        Target samples adapted to at the last fit.
    n_features_in_ : int
        Features of flat input seen at fit (flat input only).
    feature_names_in_ : ndarray of str
        Column names of a DataFrame seen at fit.

    See Also
    --------
    FineTuneRegressor : Supervised fine-tuning, when every sample is labeled.
    DomainAdaptClassifier : The same for class labels.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer import DomainAdaptRegressor
    >>> rng = np.random.default_rng(0)
    >>> X_source = rng.normal(size=(80, 4))
    >>> y_source = X_source @ [1.0, -2.0, 0.5, 0.0]
    >>> X_target = X_source * 1.5 + 1.0               # the shifted domain
    >>> X = np.vstack([X_source, X_target])
    >>> y = np.concatenate([y_source, np.full(80, np.nan)])  # NaN: unlabeled
    >>> reg = DomainAdaptRegressor(model=None, method="coral", epochs=5,
    ...                            random_state=0, device="cpu").fit(X, y)
    >>> reg.predict(X_target[:3]).shape
    (3,)
    >>> reg.n_source_, reg.n_target_
    (80, 80)
    """.format(parameters=parameters_doc(
        ("method", _METHOD_DOC),
        ("trade_off", """trade_off : float, default=1.0
        Weight of the adaptation loss."""),
        ("loss", _LOSS_DOC), omit=_NOT_FOR_REGRESSION,
        epochs="""epochs : int or "auto", default="auto"
        Epochs over the labeled samples (target batches are drawn alongside),
        as for :class:`~sktransfer.DomainAdaptClassifier`: ``"auto"`` is 30,
        or about 64 optimizer steps for a pretrained text backbone.""",
        augment="""augment : "default", "randaugment", "trivialaugment", transform, \
callable or None, default=None
        Off by default, as for :class:`~sktransfer.DomainAdaptClassifier` (a
        flip or a rotation may change what a target means: an angle, a
        position); target batches are augmented too.""",
        early_stopping=_EARLY_STOPPING_DOC))

    _parameter_constraints = {
        **FineTuneRegressor._parameter_constraints,
        "method": [StrOptions(set(REGRESSION_METHODS)), callable],
        "trade_off": [Interval(Real, 0, None, closed="left")],
    }
    _auto_epochs = staticmethod(auto_adapt_epochs)

    def __init__(
        self,
        *,
        method="dann",
        trade_off=1.0,
        loss="squared_error",
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
        augment=None,
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
    ):
        self.method = method
        self.trade_off = trade_off
        self.loss = loss
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

    @property
    def _adapting(self):
        """Whether a fit adapts (``method`` other than ``"source_only"``), which
        ``backbone_lr_ratio="auto"`` reads."""
        return adapts(self.method)

    @_fit_context(prefer_skip_nested_validation=True)
    @restored_on_failure
    def fit(self, X: ImagesLike, y: LabelsLike, *, sample_domain: LabelsLike | None = None,
            sample_weight: LabelsLike | None = None) -> "DomainAdaptRegressor":
        """Train on labeled source samples while adapting to target samples.

        Parameters
        ----------
        X : images, list of PIL images, list of paths, texts, or flat rows
            Source and target samples together, as for
            :class:`~sktransfer.FineTuneRegressor`.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets of the source samples and NaN for unlabeled (target)
            samples (a whole row of NaN with several outputs).
        sample_domain : array-like of int, shape (n_samples,), or None
            Domain of each sample: positive ids source, negative ids target.
            ``None``: labeled samples are source, unlabeled ones target.
        sample_weight : array-like of shape (n_samples,) or None
            Weights of the labeled samples in the loss.

        Returns
        -------
        self : DomainAdaptRegressor
        """
        continuing = self._begin_fit()
        adaptation = resolve_adaptation(self, classes=False)
        source = self._validate_X(X, reset=not continuing)
        y, unlabeled = _split_unlabeled(y, len(source))
        target = target_mask(unlabeled, sample_domain, marker="y is NaN")
        check_domains(self, adaptation, unlabeled, target, mark="NaN",
                      supervised="FineTuneRegressor")
        data = self._fit_data(source, y, sample_weight, continuing=continuing,
                              labeled=~unlabeled)
        self.n_source_ = len(data.labeled_rows)
        target_rows = np.flatnonzero(target)
        if adaptation is None:
            self.n_target_ = 0
            return self._fit_epochs(data, epochs=self.epochs)
        make_step = adaptation_step(self, adaptation, data, target_rows,
                                    n_outputs=self.n_outputs_, adabn=False)
        self.n_target_ = len(target_rows)
        return self._fit_epochs(data, epochs=self.epochs, make_step=make_step,
                                fingerprint_parts=(target_rows,))

    def score(self, X: ImagesLike, y: LabelsLike,
              sample_weight: LabelsLike | None = None) -> float:
        """R² on the labeled samples of ``X, y``; rows of NaN are ignored.

        Parameters
        ----------
        X : images, texts or flat rows
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,) or None

        Returns
        -------
        score : float
        """
        X = in_memory(X)
        if isinstance(X, (str, os.PathLike)):
            self.predict(X)  # refuses a single path, saying what to pass instead
        check_consistent_length(X, y, sample_weight)
        y, unlabeled = _split_unlabeled(y, len(y))
        labeled = np.flatnonzero(~unlabeled)
        if not len(labeled):
            raise ValueError("y has no labeled sample to score (every entry is NaN).")
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight)[labeled]
        return r2_score(y[labeled], self.predict(_safe_indexing(X, labeled)),
                        sample_weight=sample_weight)


def _split_unlabeled(y, n_samples):
    """``(y, unlabeled)``: the targets as float64 with NaN rows kept, and which
    rows are unlabeled (all NaN); a row with some outputs NaN is refused, as are
    the values :func:`check_regression_y` refuses among the labeled rows.
    ``None`` and ``pd.NA`` mark an unlabeled row as NaN does."""
    array = _missing_as_nan(np.asarray(y))
    array = array.astype(np.float64) if array.dtype.kind in "biuf" else None
    if array is None:
        return check_regression_y(y, n_samples), np.zeros(n_samples, dtype=bool)
    if array.ndim not in (1, 2) or len(array) != n_samples:
        return check_regression_y(array, n_samples), None  # raises: says what is wrong
    missing = np.isnan(array)
    if missing.ndim == 2:
        partial = missing.any(axis=1) & ~missing.all(axis=1)
        if partial.any():
            row = int(np.flatnonzero(partial)[0])
            raise ValueError(f"y row {row} has NaN in some outputs but not all: mark an "
                             "unlabeled sample with NaN in every output.")
        missing = missing.all(axis=1)
    labeled = np.flatnonzero(~missing)
    checked = check_regression_y(array[labeled], len(labeled))
    array = array.copy()
    array[labeled] = checked.reshape(array[labeled].shape)
    return array, missing


def _missing_as_nan(array):
    """An object array whose missing entries (``None``, ``pd.NA``, NaN) are NaN,
    as float64 when every other entry is a number; any other array as given."""
    if array.dtype.kind != "O" or array.ndim == 0:  # y=None: check_regression_y says so
        return array
    missing = pd.isna(array)
    if not missing.any():
        return array
    filled = array.copy()
    filled[missing] = np.nan
    try:
        return filled.astype(np.float64)
    except (TypeError, ValueError):
        return array  # strings among them: check_regression_y names one

"""FineTuneRegressor: fine-tune a pretrained network to predict numbers."""


import numpy as np
from sklearn.base import RegressorMixin

from .._utils.caller import warn
from .._sklearn_compat import StrOptions, _fit_context
from .._utils.hints import ImagesLike, LabelsLike
from ..training._criteria import REGRESSION_LOSSES
from ._base import NeuralNetworkBase, restored_on_failure
from ._targets import Regression, check_regression_y, standardisation
from ._parameters import parameters_doc

_LOSS_DOC = """loss : {"squared_error", "absolute_error", "huber"}, default="squared_error"
        The training loss, on standardised targets (each output centred and
        divided by its standard deviation at the first fit): the squared
        error, the absolute error (robust to outlying targets), or Huber's
        loss (squared for errors up to one standard deviation, absolute
        beyond)."""
_VALIDATION_FRACTION_DOC = """validation_fraction : float, default=0.1
        Share of the training data held out (at random) when
        ``early_stopping=True``."""
_EARLY_STOPPING_DOC = """early_stopping : bool, default=False
        Stop when the validation loss (``loss``, on standardised targets) has
        not improved for ``patience`` epochs and keep the best weights; each
        epoch's ``valid_score`` is the validation R². The held-out rows weigh
        in both by their ``sample_weight``."""
_NOT_FOR_REGRESSION = ("mixup", "label_smoothing", "class_weight")


class RegressorBase(RegressorMixin, NeuralNetworkBase):
    """What the regressors share: standardised targets, their loss, and
    predictions on the scale of ``y``."""

    # -- targets -------------------------------------------------------------
    def _fit_targets(self, y, *, continuing, classes=None, sample_weight=None):
        """``mean_``, ``scale_`` (weighted by ``sample_weight``) and
        ``n_outputs_`` at a first fit; later fits (``warm_start``,
        ``partial_fit``) keep them, so the network's outputs keep their
        meaning."""
        if not continuing:
            targets = y.reshape(len(y), -1)
            self.mean_, self.scale_ = standardisation(targets, sample_weight)
            self.n_outputs_ = len(self.mean_)
            constant = [j for j in range(targets.shape[1])
                        if len(np.unique(targets[:, j])) < 2]
            if constant:
                warn(
                    f"the targets of output(s) {constant} take one value in this first "
                    "fit, so their scale is set to 1 and every later partial_fit or "
                    "warm start keeps it: fit on a first batch whose targets vary.",
                    UserWarning)

    def _check_fitted_targets(self):
        mean, scale = vars(self).get("mean_"), vars(self).get("scale_")
        arrays = (mean, scale)
        if not (all(isinstance(a, np.ndarray) and a.ndim == 1 and a.dtype.kind == "f"
                    for a in arrays)
                and len(mean) == len(scale) == vars(self).get("n_outputs_") >= 1
                and np.isfinite(mean).all() and np.isfinite(scale).all()
                and (scale > 0).all()):
            raise ValueError("mean_, scale_ and n_outputs_ are not what a fit sets: "
                             "finite float arrays of n_outputs_ values, scale_ > 0.")

    def _target_type(self):
        return Regression(self.mean_, self.scale_, loss=self.loss)

    def predict(self, X: ImagesLike):
        """Predicted values on the scale of ``y``: (n_samples,) for one target,
        (n_samples, n_outputs) for several."""
        return super().predict(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class FineTuneRegressor(RegressorBase):
    __doc__ = """Fine-tune a pretrained network as a scikit-learn regressor.

    A new linear head with one output per target is put on a pretrained
    backbone (images, or text with a text backbone) and trained with it (or
    alone) on your numbers; with ``model=None`` it is a small MLP on flat
    feature input (e.g. the output of
    :class:`~sktransfer.PretrainedFeatureExtractor`). Targets are
    standardised inside ``fit`` (``mean_`` and ``scale_``) and the scaling is
    undone at ``predict``, so the default learning rates suit any scale of
    ``y``. ``score`` is R². Works in :class:`~sklearn.pipeline.Pipeline`,
    :class:`~sklearn.compose.TransformedTargetRegressor`,
    :class:`~sklearn.model_selection.GridSearchCV`, ``cross_val_score`` and
    :class:`~sklearn.ensemble.BaggingRegressor`, and pickles with joblib.

    Parameters
    ----------
{parameters}

    Attributes
    ----------
    mean_ : ndarray of shape (n_outputs,)
        Mean of each target at the first fit.
    scale_ : ndarray of shape (n_outputs,)
        Standard deviation of each target at the first fit (1 for a constant
        target). The network learns ``(y - mean_) / scale_``.
    n_outputs_ : int
        Number of targets; ``predict`` returns (n_samples,) for one, as
        :class:`~sklearn.neural_network.MLPRegressor`, else (n_samples,
        n_outputs).
    module_ : torch.nn.Module
        The trained network (``backbone`` + ``head``).
    history_ : list of dict
        One record per epoch: ``epoch``, ``train_loss``, ``valid_loss``,
        ``valid_score`` (R²), ``lr``, ``duration``.
    preprocess_ : PreprocessConfig, TextPreprocess or None
        The input preprocessing used (None for flat input).
    n_iter_ : int
        Epochs trained.
    interrupted_ : bool
        Whether the last fit was stopped by KeyboardInterrupt.
    n_features_in_ : int
        Features of flat input seen at fit (flat input only).
    feature_names_in_ : ndarray of str
        Column names of a DataFrame seen at fit.

    See Also
    --------
    FineTuneClassifier : The same network and training, for class labels.
    PretrainedFeatureExtractor : Frozen features for any scikit-learn regressor.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sktransfer import FineTuneRegressor
    >>> X, y = make_regression(n_samples=60, n_features=8, random_state=0)
    >>> reg = FineTuneRegressor(model=None, epochs=20, lr=1e-2, random_state=0,
    ...                         device="cpu").fit(X, y)
    >>> reg.predict(X[:2]).shape
    (2,)
    >>> reg.mean_.shape
    (1,)
    """.format(parameters=parameters_doc(
        ("loss", _LOSS_DOC), omit=_NOT_FOR_REGRESSION,
        validation_fraction=_VALIDATION_FRACTION_DOC, early_stopping=_EARLY_STOPPING_DOC))

    _parameter_constraints = {
        **{name: constraint
           for name, constraint in NeuralNetworkBase._parameter_constraints.items()
           if name not in _NOT_FOR_REGRESSION},
        "loss": [StrOptions(set(REGRESSION_LOSSES))],
    }

    def __init__(
        self,
        *,
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
        augment="default",
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

    # -- fitting -------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    @restored_on_failure
    def fit(self, X: ImagesLike, y: LabelsLike,
            sample_weight: LabelsLike | None = None) -> "FineTuneRegressor":
        """Fine-tune on ``X`` with targets ``y``.

        Parameters
        ----------
        X : images, list of PIL images, list of paths, texts, or flat rows
            As for :class:`~sktransfer.PretrainedFeatureExtractor` (flat rows with
            ``model=None`` or ``input_shape``; texts with a text backbone).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Numbers (no NaN or infinity).
        sample_weight : array-like of shape (n_samples,) or None
            Weights of the samples in the loss.

        Returns
        -------
        self : FineTuneRegressor
        """
        continuing = self._begin_fit()
        source = self._validate_X(X, reset=not continuing)
        y = check_regression_y(y, len(source))
        data = self._fit_data(source, y, sample_weight, continuing=continuing)
        return self._fit_epochs(data, epochs=self.epochs)

    @_fit_context(prefer_skip_nested_validation=True)
    @restored_on_failure
    def partial_fit(self, X: ImagesLike, y: LabelsLike,
                    sample_weight: LabelsLike | None = None) -> "FineTuneRegressor":
        """Train one more epoch on ``X, y`` (a constant learning rate); the
        first call fixes ``mean_`` and ``scale_`` from its ``y``.

        Parameters
        ----------
        X, y, sample_weight : as in :meth:`fit`

        Returns
        -------
        self : FineTuneRegressor
        """
        continuing = self._begin_fit(incremental=True)
        source = self._validate_X(X, reset=not continuing)
        y = check_regression_y(y, len(source))
        data = self._fit_data(source, y, sample_weight, continuing=continuing)
        return self._fit_epochs(data, epochs=1, schedule=False)

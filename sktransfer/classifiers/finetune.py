"""FineTuneClassifier: fine-tune a pretrained CNN behind fit / predict."""

from .._sklearn_compat import _fit_context
from ._base import NeuralClassifierBase


class FineTuneClassifier(NeuralClassifierBase):
    """Fine-tune a pretrained CNN as a scikit-learn classifier.

    A new linear head is put on a pretrained backbone and trained with it (or
    alone) on your labelled images. Works in :class:`~sklearn.pipeline.Pipeline`,
    :class:`~sklearn.model_selection.GridSearchCV` and ``cross_val_score``, and
    pickles with joblib. With ``model=None`` it is a small MLP for flat feature
    input (e.g. the output of :class:`~sktransfer.PretrainedFeatureExtractor`).

    Parameters
    ----------
    model : str, torch.nn.Module or None, default="efficientnet_lite0"
        The backbone, as in :class:`~sktransfer.PretrainedFeatureExtractor`, or
        ``None`` / ``"mlp"`` for an MLP on flat ``(n_samples, n_features)`` input.
    weights : "DEFAULT", str, weights enum, path or None, default="DEFAULT"
        Weights of the backbone (see :func:`sktransfer.backbones.load_backbone`).
    freeze : "backbone", "none" or int, default="none"
        What trains besides the new head: ``"backbone"`` nothing (linear probe),
        ``"none"`` everything, an int ``k`` the last ``k`` stages of the backbone.
    unfreeze_after : int or None, default=None
        Train only the head for this many epochs first, then apply ``freeze``
        (fastai's ``fine_tune`` recipe). ``None``: apply ``freeze`` from the start.
    epochs : int, default=10
    batch_size : int, default=32
    lr : float, default=1e-3
        Learning rate of the head (the peak rate with ``scheduler="onecycle"``).
    backbone_lr_ratio : float, default=0.1
        The backbone's learning rate is ``lr * backbone_lr_ratio``
        (discriminative learning rates). Not applied to the MLP of flat input,
        which is not pretrained.
    optimizer : {"adamw", "sgd"} or torch optimizer class, default="adamw"
        SGD uses momentum 0.9.
    weight_decay : float, default=1e-4
    scheduler : {"onecycle", "cosine"} or None, default="onecycle"
        Per-step learning-rate schedule over all epochs of a ``fit``.
    augment : "default", callable or None, default="default"
        ``"default"``: random flips, zoom-and-shift crops (up to 1.15x) and
        brightness/contrast jitter, on the device, at the backbone's input size; a
        callable maps a float batch (N, C, H, W) in [0, 1] to an augmented one.
        Ignored for flat input.
    label_smoothing : float, default=0.0
    class_weight : "balanced", dict or None, default=None
        Weights of the classes in the loss, as in scikit-learn.
    validation_fraction : float, default=0.1
        Share of the training data held out (stratified) when
        ``early_stopping=True``.
    early_stopping : bool, default=False
        Stop when the validation loss has not improved for ``patience`` epochs and
        keep the best weights.
    patience : int, default=3
    grad_clip : float or None, default=None
        Maximum norm of the gradients.
    hidden_layer_sizes : tuple of int, default=(256,)
        Hidden layers of the MLP (``model=None`` only).
    device : str or torch.device, default="auto"
    precision : {"auto", "32", "bf16", "fp16"}, default="auto"
        Mixed precision; ``"auto"`` is bf16 on a CUDA device that supports it,
        float32 elsewhere; ``"fp16"`` uses a gradient scaler.
    num_workers : int, default=0
        DataLoader workers for files and PIL images.
    random_state : int, RandomState instance or None, default=None
        Seeds the head, the shuffling, the augmentation and the validation split;
        training on a CPU is then reproducible. A torch module given as ``model``
        keeps the weights it has (it is copied at ``fit``, never trained in
        place): seed torch before building it.
    verbose : int, default=0
        1: one line per epoch; 2: a progress bar per epoch too.
    warm_start : bool, default=False
        ``fit`` continues from the fitted weights instead of starting over.
    input_shape : tuple or None, default=None
        ``(height, width[, channels])`` of flat rows that are images.
    image_size : int, tuple or None, default=None
        Override the weights' preprocessing geometry.

    Attributes
    ----------
    classes_ : ndarray
        The labels seen at fit (any type sklearn accepts).
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
        holds the weights of the last finished epoch).
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
    """

    def __init__(
        self,
        *,
        model="efficientnet_lite0",
        weights="DEFAULT",
        freeze="none",
        unfreeze_after=None,
        epochs=10,
        batch_size=32,
        lr=1e-3,
        backbone_lr_ratio=0.1,
        optimizer="adamw",
        weight_decay=1e-4,
        scheduler="onecycle",
        augment="default",
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
        random_state=None,
        verbose=0,
        warm_start=False,
        input_shape=None,
        image_size=None,
    ):
        self.model = model
        self.weights = weights
        self.freeze = freeze
        self.unfreeze_after = unfreeze_after
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.backbone_lr_ratio = backbone_lr_ratio
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.scheduler = scheduler
        self.augment = augment
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
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.input_shape = input_shape
        self.image_size = image_size

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fine-tune on images ``X`` with labels ``y``.

        Parameters
        ----------
        X : images, list of PIL images, list of paths, or flat rows
            As for :class:`~sktransfer.PretrainedFeatureExtractor` (flat rows with
            ``model=None`` or ``input_shape``).
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,) or None
            Weights of the samples in the loss.

        Returns
        -------
        self : FineTuneClassifier
        """
        source, y_encoded, weights, seed, *_ = self._prepare_fit(X, y, sample_weight)
        return self._fit_epochs(source, y_encoded, weights, seed, epochs=self.epochs)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Train one more epoch on ``X, y`` (a constant learning rate).

        Parameters
        ----------
        X, y, sample_weight : as in :meth:`fit`
        classes : array-like or None
            All the classes, required at the first call when a batch may not hold
            every class; fixed afterwards.

        Returns
        -------
        self : FineTuneClassifier
        """
        prepared = self._prepare_fit(X, y, sample_weight, classes=classes,
                                     incremental=True)
        source, y_encoded, weights, seed, *_ = prepared
        # One epoch at a time: no schedule to follow.
        return self._fit_epochs(source, y_encoded, weights, seed, epochs=1,
                                scheduler=None)

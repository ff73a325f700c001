"""DomainAdaptClassifier: unsupervised domain adaptation behind fit / predict."""

import functools
import os
from numbers import Real

import numpy as np
from sklearn.metrics import accuracy_score
from sklearn.utils import check_consistent_length, column_or_1d

from .._utils.frames import in_memory
from .._utils.domains import target_mask, unlabeled_mask
from .._sklearn_compat import Interval, StrOptions, _fit_context, _safe_indexing
from .._utils.hints import ImagesLike, LabelsLike
from ..adaptation import METHODS
from ..training._steps import SourceOnlyStep
from ._adapting import adaptation_step, adapts, check_domains, resolve_adaptation
from ._base import NeuralClassifierBase, restored_on_failure
from ._parameters import parameters_doc
from ._text_defaults import auto_adapt_epochs

_METHOD_DOC = """method : {"self_training", "mcc", "adamatch", "dann", "cdan", "coral", "mmd", \
"vada", "dirt-t", "source_only"} or loss, default="self_training"
        ``"self_training"``, the default: pseudo-labels refreshed each epoch
        (every few steps in a fit of fewer than four epochs) from one pass over
        the target set in AdaBN's BatchNorm regime, with
        AdaMatch's relative threshold and distribution alignment, learned on a
        strong augmentation of each target batch
        (:class:`~sktransfer.adaptation.EpochSelfTrainingLoss`); the best and
        steadiest target accuracy on MNIST -> MNIST-M and digits -> digits-M
        (see ``docs/domain_adaptation.md``). On flat input (``model=None``)
        there is no image to augment: target rows train on their pseudo-labels
        as they are. ``"mcc"`` minimum class confusion
        (Jin et al., 2020); ``"adamatch"`` self-training with
        pseudo-labels from a weak view learned on a strong view of each target
        image, with AdaMatch's relative threshold and distribution alignment
        (Berthelot et al., 2022); ``"dann"`` domain-adversarial training with
        gradient reversal (Ganin et al., 2016); ``"cdan"`` conditional
        adversarial with entropy conditioning (Long et al., 2018); ``"coral"``
        Deep CORAL (Sun & Saenko, 2016); ``"mmd"`` multi-kernel MMD (DAN, Long et
        al., 2015); ``"vada"`` DANN plus target conditional entropy and virtual
        adversarial training, and ``"dirt-t"`` VADA then target-only refinement
        with a teacher (Shu et al., 2018); ``"source_only"`` the same network
        and training without adaptation (the baseline; target samples are then
        not needed and are ignored, unless ``adabn=True``). Or a loss object
        following the contract of :mod:`sktransfer.adaptation`:
        ``loss(features_source, logits_source, features_target, logits_target)
        -> scalar`` (an ``nn.Module`` has its parameters trained too). The loss
        is copied at ``fit``."""
_TRADE_OFF_DOC = """trade_off : float, default=1.0
        Weight of the adaptation loss."""
_ADABN_DOC = """adabn : bool or "auto", default="auto"
        AdaBN (Li et al., 2018), with any method: once training ends, every
        BatchNorm layer's running statistics are recomputed on the target
        samples alone (no augmentation), so that prediction normalises with
        the target domain's statistics instead of those of the source/target
        mixture. ``"auto"``: on for every adapting method, off for
        ``"source_only"`` (the baseline stays unadapted; ``adabn=True`` makes
        it the AdaBN baseline). On MNIST -> MNIST-M it lifted ``"dann"`` and
        ``"source_only"`` markedly and left ``"mcc"`` unchanged (see
        ``benchmarks/RESULTS.md``). No effect on a network without
        BatchNorm."""


class DomainAdaptClassifier(NeuralClassifierBase):
    __doc__ = """A classifier trained on labeled source data that adapts, while it trains,
    to unlabeled target data: the data it will be used on.

    Source and target travel through scikit-learn by the semi-supervised
    convention: ``fit(X, y)`` with ``y == -1`` on the unlabeled samples. By
    default every labeled sample is source and every ``-1`` sample is target, so
    the estimator sits at the end of a :class:`~sklearn.pipeline.Pipeline` and
    inside :class:`~sklearn.model_selection.GridSearchCV` with no extra plumbing.
    Each training step sees a source batch and a target batch of ``batch_size``
    samples each; the loss is the supervised loss on the source batch plus
    ``trade_off`` times the adaptation loss of ``method``. Model selection
    without target labels: see :mod:`sktransfer.metrics`.

    Parameters
    ----------
{parameters}

    Attributes
    ----------
    classes_ : ndarray
        The labels of the labeled samples (``-1`` is never a class).
    module_ : torch.nn.Module
        The trained network (``backbone`` + ``head``).
    history_ : list of dict
        One record per epoch, as in :class:`~sktransfer.FineTuneClassifier`;
        ``train_loss`` includes the weighted adaptation loss, and (when a method
        adapts) ``supervised_loss`` and ``adaptation_loss`` (unweighted) give its
        two parts, epoch means. The refinement steps of ``"dirt-t"`` train on
        target rows alone, and record ``refinement_loss`` (target entropy, VAT
        and the teacher's KL): an epoch spent refining has it as its
        ``train_loss``, not comparable with the epochs before; the epoch where
        refinement starts records both kinds of part, each the mean over its
        own steps.
    preprocess_ : PreprocessConfig or None
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
    FineTuneClassifier : Supervised fine-tuning, when every sample is labeled.
    sktransfer.metrics : Unsupervised scorers for model selection.

    Notes
    -----
    ``sample_domain`` (positive ids source, negative ids target, as in skada)
    marks labeled target samples or several source domains; they travel through
    Pipelines and GridSearchCV by metadata routing
    (``clf.set_fit_request(sample_domain=True)``). Labeled target samples are
    trained on as well as adapted to; several source domains are pooled.

    scikit-learn's estimator checks (which never pass ``-1`` labels) run with
    ``method="source_only"``, which accepts all-labeled ``y``; every other method
    refuses ``y`` without target samples.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_blobs
    >>> from sktransfer import DomainAdaptClassifier
    >>> X_source, y_source = make_blobs(n_samples=100, centers=2, random_state=0)
    >>> X_target = X_source + 1.5                      # the shifted domain
    >>> X = np.vstack([X_source, X_target])
    >>> y = np.concatenate([y_source, -np.ones(100, dtype=int)])  # -1: unlabeled
    >>> clf = DomainAdaptClassifier(model=None, method="coral", epochs=5,
    ...                             random_state=0, device="cpu").fit(X, y)
    >>> clf.classes_
    array([0, 1])
    >>> clf.predict(X_target[:3]).shape
    (3,)
    """.format(parameters=parameters_doc(
        ("method", _METHOD_DOC), ("trade_off", _TRADE_OFF_DOC), ("adabn", _ADABN_DOC),
        epochs="""epochs : int or "auto", default="auto"
        Epochs over the labeled samples (target batches are drawn alongside).
        ``"auto"``: 30 for images, flat rows and backbones trained from
        scratch; thirty, not ten as for :class:`~sktransfer.FineTuneClassifier`,
        because adaptation needs longer than supervised training (on MNIST ->
        MNIST-M ``"self_training"`` gains clearly from 10 to 30 epochs and a
        little more by 60; see ``benchmarks/RESULTS.md``). For a pretrained
        text backbone, as many epochs as fit in about 64 optimizer steps (at
        least one, at most 30): one epoch of 2,000 labeled texts at the
        default batch, minutes on a CPU where thirty epochs of a transformer
        take hours. The epochs a fit ran are in ``n_iter_``.""",
        batch_size="""batch_size : int, default=32
        Samples per domain in each step.""",
        lr="""lr : float, default=1e-3
        Learning rate of the head and of the adaptation loss's own parameters
        (a domain discriminator); the peak rate with ``scheduler="onecycle"``.""",
        augment="""augment : "default", "randaugment", "trivialaugment", transform, \
callable or None, default=None
        Off by default: the default augmentation flips images, which digits,
        text and many shifted domains do not tolerate. Otherwise as in
        :class:`~sktransfer.FineTuneClassifier`; target batches are augmented
        too (by a per-image transform image by image, on the device, after
        batching).""",
        mixup="""mixup : {"mixup", "cutmix", "mixup_cutmix"}, dict or None, default=None
        As in :class:`~sktransfer.FineTuneClassifier`, for the source batch
        only: its supervised loss takes the soft targets, and the adaptation
        loss sees the mixed source batch beside the unmixed target batch.""",
        validation_fraction="""validation_fraction : float, default=0.1
        Share of the labeled samples held out when ``early_stopping=True``.""",
        early_stopping="""early_stopping : bool, default=False
        Stop on the validation loss of held-out labeled (source) samples, and
        keep the best weights.""",
        random_state="""random_state : int, RandomState instance or None, default=None
        As in :class:`~sktransfer.FineTuneClassifier`; also seeds the
        discriminator of ``"dann"`` / ``"cdan"`` and the target batches.""",
        warm_start="""warm_start : bool, default=False
        Continue from the fitted network (the adaptation loss starts afresh).""",
    ))

    _parameter_constraints = {
        **NeuralClassifierBase._parameter_constraints,
        "method": [StrOptions(set(METHODS)), callable],
        "trade_off": [Interval(Real, 0, None, closed="left")],
        "adabn": ["boolean", StrOptions({"auto"})],
    }
    _auto_epochs = staticmethod(auto_adapt_epochs)

    def __init__(
        self,
        *,
        method="self_training",
        trade_off=1.0,
        adabn="auto",
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
    ):
        self.method = method
        self.trade_off = trade_off
        self.adabn = adabn
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

    # -- fit ------------------------------------------------------------------
    @property
    def _adapting(self):
        """Whether a fit adapts (``method`` other than ``"source_only"``), which
        ``backbone_lr_ratio="auto"`` reads."""
        return adapts(self.method)

    @_fit_context(prefer_skip_nested_validation=True)
    @restored_on_failure
    def fit(self, X: ImagesLike, y: LabelsLike, *, sample_domain: LabelsLike | None = None,
            sample_weight: LabelsLike | None = None) -> "DomainAdaptClassifier":
        """Train on labeled source samples while adapting to target samples.

        Parameters
        ----------
        X : images, list of PIL images, list of paths, or flat rows
            Source and target samples together, as for
            :class:`~sktransfer.FineTuneClassifier`.
        y : array-like of shape (n_samples,)
            Labels of the source samples and ``-1`` for unlabeled (target)
            samples.
        sample_domain : array-like of int, shape (n_samples,), or None
            Domain of each sample: positive ids source, negative ids target.
            ``None``: labeled samples are source, unlabeled ones target.
        sample_weight : array-like of shape (n_samples,) or None
            Weights of the labeled samples in the supervised loss.

        Returns
        -------
        self : DomainAdaptClassifier
        """
        continuing = self._begin_fit()
        # The method's own parameters, before any input is read or recorded.
        adaptation = resolve_adaptation(self, hint=(
            " For text, choose among 'self_training', 'mcc', 'adamatch', 'dann', "
            "'cdan', 'coral', 'mmd'."))
        source = self._validate_X(X, reset=not continuing)
        y = column_or_1d(y, warn=True)
        unlabeled = unlabeled_mask(y)
        y = self._validate_y(y, len(source), labeled=~unlabeled)
        # Refuse what cannot be adapted before any network is built.
        target = target_mask(unlabeled, sample_domain, marker="y == -1")
        check_domains(self, adaptation, unlabeled, target, mark="-1",
                      supervised="FineTuneClassifier")
        data = self._fit_data(source, y, sample_weight, continuing=continuing,
                              labeled=~unlabeled)
        self.n_source_ = len(data.labeled_rows)
        target_rows = np.flatnonzero(target)
        if adaptation is None:
            self.n_target_ = 0
            if self.adabn != "auto" and self.adabn and len(target_rows):
                self.n_target_ = len(target_rows)
                return self._fit_epochs(data, epochs=self.epochs, make_step=functools.partial(
                    SourceOnlyStep, target_rows=target_rows),
                    fingerprint_parts=(target_rows,))
            return self._fit_epochs(data, epochs=self.epochs)
        make_step = adaptation_step(self, adaptation, data, target_rows,
                                    n_outputs=len(self.classes_), adabn=bool(self.adabn))
        self.n_target_ = len(target_rows)
        return self._fit_epochs(data, epochs=self.epochs, make_step=make_step,
                                fingerprint_parts=(target_rows,))

    # -- scoring --------------------------------------------------------------
    def score(self, X: ImagesLike, y: LabelsLike,
              sample_weight: LabelsLike | None = None) -> float:
        """Accuracy on the labeled samples of ``X, y``; rows with ``y == -1`` are
        ignored.

        Parameters
        ----------
        X : images or flat rows
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,) or None

        Returns
        -------
        score : float
        """
        X = in_memory(X)
        if isinstance(X, (str, os.PathLike)):
            self.predict(X)  # refuses a single path, saying what to pass instead
        check_consistent_length(X, y, sample_weight)
        y = column_or_1d(y, warn=True)
        labeled = np.flatnonzero(~unlabeled_mask(y))
        if not len(labeled):
            raise ValueError(
                "y has no labeled sample to score (every entry is -1); rank models "
                "without target labels with a scorer of sktransfer.metrics."
            )
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight)[labeled]
        return accuracy_score(y[labeled], self.predict(_safe_indexing(X, labeled)),
                              sample_weight=sample_weight)

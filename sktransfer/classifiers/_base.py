"""What both neural classifiers share on the scikit-learn side.

:class:`NeuralNetworkBase` validates input and parameters, encodes targets
(through the estimator's target type, :mod:`._targets`),
builds the network (a backbone from :mod:`sktransfer.backbones`, or an MLP for
flat input), hands training to :class:`sktransfer.training.Trainer` with a
training step, predicts through :func:`sktransfer._utils.runtime.run_batches` and
pickles weights as a CPU state dict; :class:`NeuralClassifierBase` adds what
classifiers share (labels, probabilities). A subclass's ``fit`` validates what is its
own, then calls :meth:`_fit_data` and :meth:`_fit_epochs`, passing the step it
trains with (``make_step``).
"""

import contextlib
import copy
import dataclasses
import functools
import inspect
import itertools
import numbers
from numbers import Integral

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.model_selection import train_test_split
from sklearn.utils import TransformerTags, check_random_state, column_or_1d
from sklearn.utils.multiclass import check_classification_targets

from .._utils.caller import warn
from .._utils.compile import compile_options, compiled
from .._utils.device import resolve_autocast_dtype, resolve_device
from .._utils.domains import check_no_missing_labels
from .._utils.notes import add_note
from .._utils.torch_parameters import TorchParameters
from .._utils.seeding import global_generator
from .._utils.runtime import BatchLoader, placed, run_batches
from .._sklearn_compat import _check_sample_weight, check_is_fitted, validate_data
from .._utils.hints import ImagesLike
from .._utils.versioning import check_version, stamp_version
from ..backbones import load_backbone
from ..backbones._base import (
    check_user_module,
    features_at_input_size,
    note_size_dependence,
)
from ..backbones._input_size import check_image_size
from ..backbones._factory import backbone_modality
from ..inputs import ArraySource, TextPreprocess, validate_images
from ..inputs._preprocess import check_restored_channels
from ..inputs._text import validate_text_data, warn_truncated
from ..training import (
    EarlyStopping,
    EpochLogger,
    FreezeSchedule,
    ProgressBar,
    StepConfig,
    SupervisedStep,
    Trainer,
)
from ..training._augment import resolve_augment
from ..training._callbacks import (Checkpoint, LongFitWarning, check_callbacks,
                                   merge_callbacks)
from ..training._freeze import backbone_stages
from ..training._mixing import check_mixup
from ..training._setup import (
    build_optimizer,
    build_scheduler,
    check_scheduler,
    param_groups,
    scheduler_interval,
)
from ..training._steps import batches_per_epoch, validation_scores
from ..training._distributed import Shard, wrap_for_ranks
from ..training._probe import linear_probe
from ._distributed import check_devices, join_launcher, spawn_fit
from ._fingerprint import fit_fingerprint
from ._network import ClassifierNet, FeaturesOnly, mlp_backbone, mlp_hidden_sizes
from ._parameters import CONSTRAINTS
from ._targets import SingleLabel, TargetType, check_class_weight
from ._text_defaults import auto_backbone_lr_ratio, auto_finetune_epochs, auto_head_init

TABULAR_MODELS = (None, "mlp")
#: Names of the estimators' own callbacks (see ``_default_callbacks``).
DEFAULT_CALLBACKS = ("freeze", "long_fit_warning", "progress_bar", "epoch_logger",
                     "early_stopping")
NETWORK = "module_"  # the attribute holding the trained network


def _is_freeze(value):
    return value is None or value in ("backbone", "none") or (
        isinstance(value, Integral) and not isinstance(value, bool) and value >= 0
    )


_CPU_ADVICE = (
    "On a CPU, fine-tuning a pretrained network suits small images (image_size=64 "
    "to 96), few epochs, or freeze='backbone'; the cheapest route is a "
    "PretrainedFeatureExtractor(cache=True) then model=None (an MLP on the "
    "features). Drop this warning with callbacks=[('long_fit_warning', None)].")


def _check_text_params(estimator):
    """What a text backbone refuses: image augmentations, ``image_size`` and
    ``input_shape`` (text has no pixels)."""
    augment = estimator.augment
    if augment is not None and not (isinstance(augment, str) and augment == "default"):
        raise ValueError(
            f"augment={augment!r} augments images, and model={estimator.model!r} "
            "reads text: pass augment=None or 'default' (on text, 'default' adds "
            "nothing: dropout is the noise of a training step; self-training methods "
            "make their own text views).")
    for name in ("image_size", "input_shape"):
        if getattr(estimator, name) is not None:
            raise ValueError(f"{name}={getattr(estimator, name)!r} applies to images; "
                             f"model={estimator.model!r} reads text (max_length= sets "
                             "the tokens kept per text).")


def _warn_if_freeze_exceeds_stages(backbone, freeze):
    """``freeze=k`` above the backbone's number of stages trains them all, as
    documented, but is likely a mistake: say so."""
    if isinstance(freeze, Integral) and not isinstance(freeze, bool) and freeze > 0:
        n_stages = len(backbone_stages(backbone))
        if freeze > n_stages:
            warn(
                f"freeze={freeze} is more than the {n_stages} stages of the backbone "
                f"{backbone.name!r}: every stage trains, as with freeze=None.",
                UserWarning)


def _meta_memo(module):
    """A ``copy.deepcopy`` memo under which ``module``'s parameters and buffers
    are copied as meta tensors of their shapes: the copy allocates nothing
    (lazy ones, which have no shape yet, are copied as they are)."""
    def meta(tensor):
        copied = torch.empty_like(tensor, device="meta")
        if isinstance(tensor, torch.nn.Parameter):
            return torch.nn.Parameter(copied, requires_grad=tensor.requires_grad)
        return copied

    return {id(tensor): meta(tensor)
            for tensor in itertools.chain(module.parameters(), module.buffers())
            if not isinstance(tensor, torch.nn.parameter.UninitializedTensorMixin)}


def restored_on_failure(fit):
    """Decorate a ``fit`` or ``partial_fit``: an exception that leaves it (an
    error, or Ctrl-C during a fit over several processes, which stops every
    worker) puts back the attributes the estimator held before the call (its
    ``history_`` included), so a fitted estimator keeps its model and a new one
    stays unfitted. (A fit in this process catches Ctrl-C itself and keeps its
    last finished epoch; a network that a warm start trains in this process is
    trained in place, so after an error it keeps the steps it took, but for a
    fit that diverged, which gets its starting weights back.)"""
    @functools.wraps(fit)
    def wrapper(self, *args, **kwargs):
        # The history is appended to in place by a continued fit: a copy of it.
        before = {name: list(value) if name == "history_" else value
                  for name, value in vars(self).items()}
        try:
            return fit(self, *args, **kwargs)
        except BaseException:
            vars(self).clear()
            vars(self).update(before)
            raise
    return wrapper


@dataclasses.dataclass
class FitData:
    """What a fit trains on, once validated.

    Attributes
    ----------
    source : ImageSource
        The samples (images, or flat rows as an ArraySource).
    targets : ndarray
        Encoded targets (the estimator's target type says how: int64 class
        indices, float32 label indicators or standardised values); ``-1`` for
        unlabeled rows.
    sample_weight : ndarray of float
        Weights in the supervised loss, per row (or per row and label); 0 for
        unlabeled rows.
    labeled_rows : ndarray of int
    seed : int
        Seeds the head, the shuffling, the augmentation and the split.
    """

    source: object
    targets: np.ndarray
    sample_weight: np.ndarray
    labeled_rows: np.ndarray
    seed: int


class NeuralNetworkBase(ClassNamePrefixFeaturesOutMixin, TransformerMixin, TorchParameters,
                        BaseEstimator):
    """Shared machinery of the neural estimators (classifiers and the
    regressor); not meant to be used directly.

    What depends on the kind of ``y`` comes from the target type a subclass
    builds in :meth:`_target_type`, and from :meth:`_fit_targets`, which sets
    the fitted attributes ``y`` defines at a first fit.
    """

    _parameter_constraints = dict(CONSTRAINTS)
    __sktransfer_network__ = NETWORK

    # -- inputs --------------------------------------------------------------
    @property
    def _tabular(self):
        return self.model in TABULAR_MODELS if not isinstance(self.model, torch.nn.Module) else False

    @property
    def _modality(self):
        """How ``X`` is read: ``"tabular"`` (flat rows, the MLP), or the
        backbone's modality, ``"image"`` or ``"text"``, known from ``model``
        without building it."""
        return "tabular" if self._tabular else backbone_modality(self.model)

    def _validate_X(self, X, *, reset):
        """An ImageSource for images, a TextSource for texts, or an ArraySource
        of (N, F) rows for the MLP."""
        if self._tabular:
            try:
                X = validate_data(self, X, reset=reset, dtype=[np.float32, np.float64])
            except ValueError as exc:
                if "could not convert string to float" in str(exc):  # numpy's words
                    add_note(exc,
                        f"model={self.model!r} reads rows of numbers: for texts, pass "
                        "a text backbone (model='all-MiniLM-L6-v2'); for image files, "
                        "an image backbone (model='efficientnet_lite0').")
                raise
            return ArraySource(torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)))
        if self._modality == "text":
            return validate_text_data(self, X, reset=reset, model=self.model)
        in_chans = (self.preprocess_.in_chans if "preprocess_" in vars(self) and not reset
                    else 3)
        return validate_images(self, X, reset=reset, input_shape=self.input_shape,
                               in_chans=in_chans)

    # -- targets: what y is, from the subclass --------------------------------
    def _target_type(self) -> TargetType:
        """The kind of target of this estimator (its parameters and the
        fitted attributes of :meth:`_fit_targets`)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _target_type.")

    def _fit_targets(self, y, *, continuing, classes=None, sample_weight=None):
        """Set the fitted attributes that the (labeled) targets ``y`` and their
        weights define (``classes_``; ``mean_`` and ``scale_``), or check ``y``
        against them when ``continuing``."""
        raise NotImplementedError(f"{type(self).__name__} must implement _fit_targets.")

    def _check_fitted_targets(self):
        """Raise ValueError when the fitted attributes of :meth:`_fit_targets`
        (read from a safe file) are not what a fit sets."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement _check_fitted_targets.")

    # -- the network ---------------------------------------------------------
    def _build_network(self, *, weights, seed, source=None, shapes_only=False):
        """The network to train; ``source`` (the training images) sizes the
        features of a backbone that keeps images at their own size.
        ``shapes_only``: built on the meta device with ``weights=None``, a
        user's module included (its tensors stand in as meta tensors of their
        shapes), so that nothing is allocated and no weights are read or
        copied."""
        device = torch.device("meta") if shapes_only else contextlib.nullcontext()
        with device, global_generator(seed):
            if self._tabular:
                backbone = mlp_backbone(self.n_features_in_, tuple(self.hidden_layer_sizes))
            else:
                # A user's module is copied: fitting never trains the parameter itself.
                model = self.model
                if isinstance(model, torch.nn.Module):
                    model = copy.deepcopy(model, _meta_memo(model) if shapes_only else None)
                weights = None if shapes_only else weights
                options = ({"max_length": self.max_length} if self._modality == "text"
                           else {})
                backbone = load_backbone(model, weights, image_size=self.image_size,
                                         random_state=seed, **options)
                if source is not None:
                    found = features_at_input_size(backbone, source)
                    if found != backbone.num_features:
                        # kept, so that an unpickled or loaded copy rebuilds it
                        self._input_features_ = backbone.num_features = found
                    else:
                        vars(self).pop("_input_features_", None)
                elif "_input_features_" in vars(self) and not backbone._declared:
                    backbone.num_features = self._input_features_
            return ClassifierNet(backbone, self._target_type().n_outputs)

    def _network_mismatch(self, tensors, layers=None):
        """Where the network that the parameters and fitted attributes build
        (on the meta device: nothing is allocated, no weights are read or
        copied) differs from the state dict ``tensors``, or from the ``layers``
        (name -> layer class name) of a network, in words; None where it
        does not."""
        network = self._build_network(weights=None, seed=0, shapes_only=True)
        built = {k: tuple(v.shape) for k, v in network.state_dict().items()}
        held = {k: tuple(v.shape) for k, v in tensors.items()}
        if built == held and layers is not None:
            # the same shapes, other layers (an activation or a pooling swapped)
            built = {name: type(layer).__name__ for name, layer in network.named_modules()}
            held = layers
        if built == held:
            return None
        key = min(built.keys() ^ held.keys() or {k for k in built if built[k] != held[k]})
        return (f"{key!r} is {built.get(key, 'absent')} as the parameters build it and "
                f"{held.get(key, 'absent')}")

    def _check_same_network(self):
        """A continued fit trains the network of the first fit: refuse
        parameters set since to build another (``model`` above all), which
        would be ignored, and whose saved copy could not be loaded."""
        mismatch = self._network_mismatch(
            self.module_.state_dict(),
            {name: type(layer).__name__ for name, layer in self.module_.named_modules()})
        if mismatch:
            model = (type(self.model).__name__ if isinstance(self.model, torch.nn.Module)
                     else repr(self.model))
            sizing = ("hidden_layer_sizes" if self._tabular else "max_length"
                      if self._modality == "text" else "image_size")
            raise ValueError(
                f"the parameters (model={model}, and {sizing}, which sizes it) build "
                f"another network than the fitted one: {mismatch} in the fitted "
                "network. A continued fit (warm_start, partial_fit) keeps the first "
                "fit's network: set the parameters back to what the first fit had, or "
                "fit anew (warm_start=False).")

    def _check_same_preprocessing(self):
        """A continued fit (``warm_start``, ``partial_fit``) trains on the
        preprocessing of the first fit: refuse a ``max_length`` or
        ``image_size`` set to another value since, which would be ignored."""
        text = self._modality == "text"
        name, value = ("max_length", self.max_length) if text else \
            ("image_size", self.image_size)
        if value is None:
            return
        changed = (self.preprocess_.with_max_length(value) if text
                   else self.preprocess_.with_image_size(value))
        if changed != self.preprocess_:
            if text:
                fitted = f"max_length={self.preprocess_.max_length}"
            else:
                resize, crop = self.preprocess_.resize_size, self.preprocess_.crop_size
                fitted = ", ".join([
                    "images kept at their own size" if resize is None
                    else f"images resized to {resize}",
                    "not cropped" if crop is None else f"cropped to {crop}"])
            raise ValueError(
                f"{name}={value!r} changes the preprocessing the model was fitted "
                f"with ({fitted}): a continued fit (warm_start, partial_fit) keeps "
                f"the first fit's. Set {name} back to what the first fit had, or fit "
                "anew (warm_start=False).")

    def _check_same_hidden_layers(self):
        """A continued fit trains the MLP of the first fit: refuse
        ``hidden_layer_sizes`` set to other sizes since, which would be ignored."""
        fitted = mlp_hidden_sizes(self.module_.backbone)
        if tuple(self.hidden_layer_sizes) != fitted:
            raise ValueError(
                f"hidden_layer_sizes={self.hidden_layer_sizes!r} changes the network "
                f"the model was fitted with (hidden layers {fitted}): a continued fit "
                "(warm_start, partial_fit) keeps the first fit's network. Set "
                "hidden_layer_sizes back to what the first fit had, or fit anew "
                "(warm_start=False).")

    def _preprocess(self, backbone):
        if self._tabular:
            return None
        if self._modality == "text":
            return backbone.preprocess.with_max_length(self.max_length)
        return backbone.preprocess.with_image_size(self.image_size)

    # -- training ------------------------------------------------------------
    def _check_params(self):
        """Checks that _parameter_constraints cannot express."""
        if not (self._tabular or isinstance(self.model, (str, torch.nn.Module))):
            raise ValueError(f"model={self.model!r}: a backbone name, an nn.Module, "
                             "or None / 'mlp' for flat input.")
        if isinstance(self.model, torch.nn.Module):
            check_user_module(self.model)
        if not self._tabular and self._modality == "image":
            check_image_size(self.image_size)  # before the backbone is built
        if not _is_freeze(self.freeze):
            raise ValueError(f"freeze={self.freeze!r} must be 'backbone', None or "
                             "an int >= 0.")
        if isinstance(self.freeze, str) and self.freeze == "none":
            warn("freeze='none' is deprecated and will be refused in a later "
                          "version: write freeze=None to train the whole network.",
                          FutureWarning)
        resolve_augment(self.augment)
        if self._modality == "text":
            _check_text_params(self)
        elif self.max_length is not None:
            raise ValueError(f"max_length={self.max_length!r} applies to text; model="
                             f"{self.model!r} reads {self._modality} input.")
        if isinstance(self.optimizer, type) and not issubclass(self.optimizer, torch.optim.Optimizer):
            raise ValueError(f"optimizer={self.optimizer!r} is not a torch optimizer class.")
        if not all(isinstance(h, Integral) and h > 0 for h in self.hidden_layer_sizes):
            raise ValueError(f"hidden_layer_sizes={self.hidden_layer_sizes!r} must hold "
                             "positive ints.")
        for i, item in enumerate(self.callbacks or ()):
            try:  # what _callbacks does, before any input is read or sent to a rank
                copy.deepcopy(item)
            except Exception as exc:
                raise TypeError(
                    f"callbacks[{i}] = {item!r:.100} cannot be copied ({exc}): each fit "
                    "runs copies of the callbacks (the ones passed stay as they are, "
                    "for clone and grid search). Make locks, open files and writers "
                    "in on_fit_begin, not in __init__.") from exc
        for name, callback in check_callbacks(self.callbacks):
            if callback is not None:
                callback.check_params()
            if isinstance(callback, Checkpoint) and callback.resume \
                    and not isinstance(self.random_state, Integral):
                warn(f"{name}: a Checkpoint resumes only the fit it saved, and with "
                     f"random_state={self.random_state!r:.60} each fit draws its own seed "
                     "(its network's first weights, validation split and batches), so "
                     "no later fit can resume this one: set random_state to an int.")
            if callback is None and name not in DEFAULT_CALLBACKS:
                raise ValueError(
                    f"callbacks: ({name!r}, None) drops the default callback of that "
                    f"name, and there is none; the defaults are "
                    f"{', '.join(map(repr, DEFAULT_CALLBACKS))}.")
        check_scheduler(self.scheduler)
        # fp16 training on a CPU is refused here, before any input is read.
        resolve_autocast_dtype(self.precision, resolve_device(self.device))
        compile_options(self.compile)
        check_devices(self.devices, self.strategy, resolve_device(self.device),
                      sync_batchnorm=self.sync_batchnorm)

    def _begin_fit(self, *, incremental=False):
        """Check the parameters; return whether this fit continues the last one
        (whose network the parameters must still build: checked here, before
        any input is read)."""
        self._check_params()
        continuing = (self.warm_start or incremental) and NETWORK in vars(self)
        if continuing:
            if self._tabular:
                self._check_same_hidden_layers()
            elif self.preprocess_ is not None:
                self._check_same_preprocessing()
            self._check_same_network()
        return continuing

    def _seed(self):
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _split(self, strata, seed, rows):
        """Training and validation rows among ``rows``, stratified on
        ``strata`` (one value per row) unless it is None."""
        indices = np.asarray(rows)
        if not self.early_stopping:
            return indices, None
        try:
            train, valid = train_test_split(
                indices, test_size=self.validation_fraction,
                stratify=None if strata is None else strata[indices], random_state=seed)
        except ValueError:  # too few samples of a class to stratify
            try:
                train, valid = train_test_split(
                    indices, test_size=self.validation_fraction, random_state=seed)
            except ValueError:  # an empty side: said below, in the package's words
                train = valid = ()
        if len(train) == 0 or len(valid) == 0:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} leaves an empty "
                f"training or validation set for {len(indices)} samples."
            )
        return train, valid

    def _fit_data(self, source, y, sample_weight, *, continuing, labeled=None,
                  classes=None):
        """Encode the targets and weights of the ``labeled`` rows (all by
        default) as the target type says, then build the network unless
        ``continuing``; no training yet."""
        n_samples = len(source)
        labeled_rows = (np.arange(n_samples) if labeled is None
                        else np.flatnonzero(labeled))
        sample_weight = _check_sample_weight(sample_weight, np.empty((n_samples, 0)),
                                             dtype=np.float64, ensure_non_negative=True)
        if not sample_weight[labeled_rows].any():
            raise ValueError(
                f"sample_weight is 0 on every one of the {len(labeled_rows)} labeled "
                "samples (it weighs only labeled samples in the loss): nothing would "
                "be learned from the labels.")
        self._fit_targets(y[labeled_rows], continuing=continuing, classes=classes,
                          sample_weight=sample_weight[labeled_rows])
        target = self._target_type()
        encoded = target.encode(y[labeled_rows])
        targets = np.full((n_samples, *encoded.shape[1:]), -1, dtype=encoded.dtype)
        targets[labeled_rows] = encoded
        labeled_weights = target.sample_weights(encoded, sample_weight[labeled_rows])
        weights = np.zeros((n_samples, *labeled_weights.shape[1:]))
        weights[labeled_rows] = labeled_weights
        seed = self._seed()
        if not continuing:
            self.module_ = self._build_network(weights=self.weights, seed=seed,
                                               source=source)
            self.preprocess_ = self._preprocess(self.module_.backbone)
            self.history_ = []
        if isinstance(self.preprocess_, TextPreprocess):
            warn_truncated(self.preprocess_, source.texts)
        return FitData(source, targets, weights, labeled_rows, seed)

    def _default_callbacks(self, net):
        """The estimator's own callbacks as ``(name, callback)`` pairs: the
        freezing schedule (``"freeze"``, images only), ``"long_fit_warning"``
        (on a CPU: warns when the first batches' pace says the fit will take
        long), ``"progress_bar"``
        (``verbose >= 2``), ``"epoch_logger"`` (``verbose``) and
        ``"early_stopping"`` (``early_stopping=True``)."""
        own = []
        if not self._tabular:
            freeze = None if self.freeze == "none" else self.freeze
            _warn_if_freeze_exceeds_stages(net.backbone, freeze)
            own.append(("freeze", FreezeSchedule(net.backbone, freeze, self.unfreeze_after)))
        if resolve_device(self.device).type == "cpu":
            own.append(("long_fit_warning", LongFitWarning(advice=_CPU_ADVICE)))
        if int(self.verbose) >= 2:
            own.append(("progress_bar", ProgressBar()))
        if self.verbose:
            score = self._target_type().criterion().score_name
            own.append(("epoch_logger", EpochLogger(score_label=f"valid_{score}")))
        if self.early_stopping:
            own.append(("early_stopping", EarlyStopping(
                self.patience, log=print if self.verbose else None)))
        return own

    def _replaced_callbacks(self):
        """The user's ``(name, callback)`` pairs that replace or drop a default."""
        return [(name, callback) for name, callback in check_callbacks(self.callbacks)
                if name in DEFAULT_CALLBACKS]

    def _callbacks(self, net):
        """The default callbacks, each replaced or dropped by a user's callback
        of its name, then (copies of) the user's other callbacks."""
        user = copy.deepcopy(list(self.callbacks or ()))  # checked at fit start
        return merge_callbacks(self._default_callbacks(net), user)

    def _backbone_lr_ratio(self, steps=None):
        """``backbone_lr_ratio`` resolved: ``"auto"`` slows down only a
        pretrained backbone (``weights`` not None), by its modality's rule, the
        fit's optimizer ``steps`` and whether it adapts (``_text_defaults``);
        the MLP of flat input is never pretrained."""
        if self._tabular:
            return 1.0
        if self.backbone_lr_ratio == "auto":
            return auto_backbone_lr_ratio(self._modality, pretrained=self.weights is not None,
                                          steps=steps, adapting=self._adapting)
        return float(self.backbone_lr_ratio)

    @property
    def _adapting(self):
        """Whether a fit adapts to a target domain (the domain-adapting
        estimators, with a method other than ``"source_only"``)."""
        return False

    #: The rule that ``epochs="auto"`` follows (``_text_defaults``): a
    #: supervised fit's; the domain-adapting estimators name their own.
    _auto_epochs = staticmethod(auto_finetune_epochs)

    def _epochs(self, epochs, n_batches):
        """``epochs`` resolved: ``"auto"`` (the default) by the estimator's
        rule (``_auto_epochs``) from the fit's ``n_batches`` steps an epoch; a
        number as given."""
        if epochs != "auto":
            return epochs
        return self._auto_epochs(self._modality, n_batches=n_batches,
                                 pretrained=not self._tabular and self.weights is not None)

    def _head_init(self):
        """``head_init`` resolved: ``"auto"`` by the modality's rule
        (``_text_defaults.auto_head_init``); the MLP of flat input is not
        pretrained, so its head starts at random."""
        if self.head_init != "auto":
            return self.head_init
        if self._tabular:
            return "random"
        return auto_head_init(self._modality, pretrained=self.weights is not None)

    def _fit_epochs(self, data, *, epochs, schedule=True, make_step=SupervisedStep,
                    fingerprint_parts=()):
        """Train ``module_`` for ``epochs`` epochs on the labeled rows of
        ``data`` (see :meth:`_train`): in this process, in processes of its own
        (``devices`` > 1), or in the process group of a launcher (``torchrun``);
        see :mod:`sktransfer.classifiers._distributed`."""
        device = resolve_device(self.device)
        layout = check_devices(self.devices, self.strategy, device,
                               sync_batchnorm=self.sync_batchnorm)
        kwargs = {"data": data, "epochs": epochs, "schedule": schedule,
                  "make_step": make_step, "fingerprint_parts": fingerprint_parts}
        if layout.world_size == 1:
            return self._train(**kwargs)
        if layout.launched:
            shard, device = join_launcher(layout, device)
            return self._train(shard=shard, device=device, **kwargs)
        return spawn_fit(self, layout, device, kwargs)

    def _train(self, data, *, epochs, schedule=True, make_step=SupervisedStep,
               fingerprint_parts=(), shard=Shard(), device=None):
        """Train ``module_`` for ``epochs`` epochs on the labeled rows of
        ``data`` (early stopping holds out a share of them), as rank ``shard``
        of a fit over several processes when it says so, on ``device`` (None:
        the estimator's ``device``).

        ``make_step(config)`` builds the training step (a
        :class:`~sktransfer.training.TrainingStep`) from a
        :class:`~sktransfer.training.StepConfig`; a step's ``extra_modules()``
        (an adaptation loss with a discriminator) train with the network at the
        head's learning rate. ``schedule=False`` keeps the learning rate
        constant (``partial_fit``). ``fingerprint_parts`` (arrays) join the
        fit's fingerprint (what else defines the fit: target rows).
        """
        device = resolve_device(self.device) if device is None else device
        autocast_dtype = resolve_autocast_dtype(self.precision, device)
        net = placed(self.module_, device)
        loader = BatchLoader(data.source, self.preprocess_, device,
                                 num_workers=self.num_workers)
        target = self._target_type()
        criterion = target.criterion()
        train_idx, valid_idx = self._split(target.strata(data.targets), data.seed,
                                           data.labeled_rows)
        if valid_idx is not None and not data.sample_weight[valid_idx].sum() > 0:
            raise ValueError(
                f"the {len(valid_idx)} rows held out for early stopping "
                f"(validation_fraction={self.validation_fraction}) all have a "
                "sample_weight of 0: their validation loss is undefined. Give them "
                "weight, or set early_stopping=False.")
        requested = epochs
        epochs = self._epochs(epochs, n_batches=batches_per_epoch(
            len(train_idx), self.batch_size, shard.world_size))
        if (requested == "auto" and not self._tabular and self.unfreeze_after is not None
                and self.unfreeze_after >= len(self.history_) + epochs):
            # The user chose the warm-up but not the epochs it has to fit in.
            warn(
                f'epochs="auto" is {epochs} epoch(s) for this fit, and unfreeze_after='
                f"{self.unfreeze_after} keeps the backbone frozen until then: only the "
                f"head trains. Pass epochs= larger than unfreeze_after, or a smaller "
                "unfreeze_after.", UserWarning)
        head_before = None
        if not self.history_ and self._head_init() == "linear_probe":
            # The fit's fingerprint (Checkpoint) hashes the head as it was:
            # the probed one depends on the device's arithmetic.
            head_before = {name: tensor.detach().clone()
                           for name, tensor in net.head.state_dict().items()}
            # Before the ranks wrap the network: every rank fits the same head
            # on all training rows, and DDP starts from rank 0's weights anyway.
            linear_probe(net, loader, train_idx, data.targets, data.sample_weight,
                         criterion, batch_size=self.batch_size,
                         autocast_dtype=autocast_dtype)
        train_net, unwrap = wrap_for_ranks(
            net, shard, device, sync_batchnorm=self.sync_batchnorm,
            find_unused=not self._tabular)
        config = StepConfig(
            # The forward passes go through torch.compile when asked; module_
            # stays the plain network.
            net=compiled(train_net, self.compile), loader=loader, rows=train_idx,
            targets=data.targets,
            sample_weight=data.sample_weight, batch_size=self.batch_size,
            augment=None if self._modality != "image" else resolve_augment(self.augment),
            generator=torch.Generator().manual_seed(data.seed), device=device,
            criterion=criterion, epochs=epochs, first_epoch=len(self.history_),
            mix=target.mixing(images=self._modality == "image"), shard=shard,
        )
        step = make_step(config)
        n_batches = config.n_batches

        # The MLP of flat input is not pretrained: no reason to slow it down.
        ratio = self._backbone_lr_ratio(steps=epochs * n_batches if schedule else None)
        groups = param_groups(net.backbone, net.head, lr=self.lr, backbone_lr_ratio=ratio)
        extra = step.extra_modules()
        for name, module in extra.items():
            module.to(device)
            trainable = [p for p in module.parameters() if p.requires_grad]
            if trainable:
                groups.append({"params": trainable, "lr": self.lr, "name": name})
        # One module for the trainer: train/eval modes, snapshots and
        # interruption cover the extra modules too.
        trained = torch.nn.ModuleDict({"net": net, **extra}) if extra else net
        optimizer = build_optimizer(self.optimizer, groups, weight_decay=self.weight_decay)
        scheduler = build_scheduler(self.scheduler if schedule else None, optimizer,
                                    epochs=epochs, n_batches=n_batches)
        # Over several processes, validation runs the plain network: each rank
        # its part of the rows, with no collective hidden in a forward pass.
        eval_net = compiled(net, self.compile) if shard.distributed else config.net
        validate = None if valid_idx is None else functools.partial(
            validation_scores, eval_net, loader, valid_idx, data.targets,
            autocast_dtype=autocast_dtype, batch_size=self.batch_size, criterion=criterion,
            shard=shard, sample_weight=data.sample_weight)

        trainer = Trainer(trained, optimizer, device=device, autocast_dtype=autocast_dtype,
                          scheduler=scheduler,
                          scheduler_interval=scheduler_interval(self.scheduler) or "batch",
                          grad_clip=self.grad_clip,
                          callbacks=self._callbacks(net), shard=shard,
                          sync_parameters=[p for module in extra.values()
                                           for p in module.parameters() if p.requires_grad])
        prefix = "net.head." if extra else "head."
        fingerprint = functools.partial(
            fit_fingerprint, self, data, start_epoch=len(self.history_), schedule=schedule,
            network=trained, replaced_callbacks=self._replaced_callbacks(),
            extra=fingerprint_parts,
            start_state=None if head_before is None else {
                prefix + name: tensor for name, tensor in head_before.items()})
        # Each rank augments with its own draws; rank 0 as one process would.
        with global_generator(data.seed + shard.rank):
            state = trainer.fit(step, epochs=epochs, n_batches=n_batches,
                                history=self.history_, validate=validate,
                                start_epoch=len(self.history_), generator=step.generator,
                                fingerprint=fingerprint)
            if not state.interrupted:
                step.finish()  # e.g. AdaBN's target statistics
        unwrap()
        if state.interrupted and not self.history_:
            # Ctrl-C before any epoch finished: there is no model to keep (the
            # network is the untrained one); the estimator is put back as it was.
            raise KeyboardInterrupt
        for parameter in net.parameters():
            parameter.requires_grad_(True)
        self.module_ = net
        self.interrupted_ = state.interrupted
        self.n_iter_ = len(self.history_)
        return self

    # -- prediction ----------------------------------------------------------
    def _forward_all(self, X, module=None, desc="predict"):
        check_is_fitted(self, NETWORK)
        source = self._validate_X(X, reset=False)
        device = resolve_device(self.device)
        net = placed(self.module_, device)
        loader = BatchLoader(source, self.preprocess_, device,
                                 num_workers=self.num_workers)
        try:
            outputs = run_batches(
                compiled(net if module is None else module(net), self.compile), loader,
                autocast_dtype=resolve_autocast_dtype(self.precision, device,
                                                      inference=True),
                batch_size=self.batch_size,
                progress=bool(self.verbose), desc=f"{type(self).__name__}.{desc}",
            )
        except RuntimeError as exc:
            note_size_dependence(exc, self.preprocess_)
            raise
        bad = ~np.isfinite(outputs.reshape(len(outputs), -1)).all(axis=1)
        if bad.any():
            # Weights that stayed finite (so the fit's check passed) can still
            # overflow float32 on some inputs: NaN probabilities would read as
            # the first class, or as certainty, without a word.
            warn(f"{type(self).__name__}.{desc}: the network's outputs are not finite "
                 f"(NaN or inf) for {int(bad.sum())} of the {len(bad)} samples, the "
                 f"first at sample {int(np.flatnonzero(bad)[0])}: its weights or "
                 "these inputs are too large (as after a fit that diverged). Lower "
                 "lr, set grad_clip, or scale the input.", UserWarning)
        return outputs

    def predict(self, X: ImagesLike) -> np.ndarray:
        """Predictions from the network's outputs, as the target type decodes them."""
        outputs = self._forward_all(X)  # checks that the estimator is fitted
        return self._target_type().predict(outputs)

    def transform(self, X: ImagesLike) -> np.ndarray:
        """Penultimate features of the trained network, float32
        (n_samples, n_features), to feed another estimator."""
        return self._forward_all(X, module=FeaturesOnly, desc="transform")

    @property
    def _n_features_out(self):
        return self.module_.backbone.num_features

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # a text backbone reads a sequence of strings, as CountVectorizer does;
        # images and flat features come as arrays
        reads_text = backbone_modality(self.model) == "text"
        tags.input_tags.two_d_array = not reads_text
        tags.input_tags.string = reads_text
        # transform() returns the trained network's features (float32).
        tags.transformer_tags = TransformerTags(preserves_dtype=["float32"])
        return tags

    # -- persistence: one rebuild path for pickles and safe files ------------
    def __sktransfer_state__(self):
        """What :func:`sktransfer.save` stores: ``(fitted, tensors)``, the fitted
        attributes but the network, and the network's state dict (empty when
        unfitted)."""
        params = self.get_params(deep=False)
        fitted = {k: v for k, v in vars(self).items() if k not in params and k != NETWORK}
        if isinstance(fitted.get("preprocess_"), TextPreprocess):
            del fitted["preprocess_"]  # the tokenizer comes with the rebuilt backbone
        module = self.__dict__.get(NETWORK)
        return fitted, ({} if module is None else module.state_dict())

    def __sktransfer_restore__(self, fitted, tensors):
        """Set the fitted attributes and rebuild the network from ``tensors``
        (the architecture from the parameters, ``weights=None``: no checkpoint
        file is needed); raises ValueError when they do not fit it."""
        if fitted:
            # What fit checks, for the parameters predict uses unchecked: a
            # file's checksum does not stop an author who recomputes it.
            self._validate_params()
        vars(self).update(fitted)
        if fitted:  # and what fit sets, which predict uses as it is
            self._check_fitted_targets()
        if tensors:
            if not isinstance(self.model, torch.nn.Module):
                # Shapes first, on the meta device (nothing is allocated): a
                # crafted file's widths or classes must match the tensors it holds.
                mismatch = self._network_mismatch(tensors)
                if mismatch:
                    raise ValueError(
                        f"its weights do not fit the network that its parameters and "
                        f"fitted attributes build: {mismatch} in the file.")
            net = self._build_network(weights=None, seed=0)
            try:
                net.load_state_dict(tensors)
            except RuntimeError as exc:
                raise ValueError(f"its weights do not fit the network that its "
                                 f"parameters build in this version of sktransfer: "
                                 f"{exc}") from exc
            check_restored_channels(self.__dict__.get("preprocess_"),
                                    net.backbone.preprocess)
            self.module_ = net.eval()
            if self._modality == "text":
                self.preprocess_ = self._preprocess(net.backbone)
        return self

    def __getstate__(self):
        # object.__getstate__ is the live __dict__
        state = stamp_version(dict(super().__getstate__()))
        if isinstance(state.get("preprocess_"), TextPreprocess):
            del state["preprocess_"]  # rebuilt with the network, tokenizer included
        module = state.pop(NETWORK, None)
        if module is not None:
            state["_module_state"] = {k: v.detach().cpu().clone()
                                      for k, v in module.state_dict().items()}
        return state

    def _added_parameters(self):
        """Parameters added since the first release, with their defaults, which
        a pickle written before them lacks."""
        return {name: inspect.signature(type(self)).parameters[name].default
                for name in ("max_length", "threshold", "devices", "strategy",
                             "sync_batchnorm", "head_init")
                if name in inspect.signature(type(self)).parameters}

    def __setstate__(self, state):
        module_state = state.pop("_module_state", None)
        state = check_version(self, state)  # warns for another version
        for name, default in self._added_parameters().items():
            state.setdefault(name, default)  # pickled before the parameter existed
        super().__setstate__(state)
        self.__sktransfer_restore__({}, module_state)


class NeuralClassifierBase(ClassifierMixin, NeuralNetworkBase):
    """Shared machinery of :class:`FineTuneClassifier` and
    :class:`DomainAdaptClassifier`: labels, probabilities, decision values;
    not meant to be used directly."""

    def _check_params(self):
        super()._check_params()
        check_mixup(self.mixup, images=self._modality == "image")
        if self._modality == "text" and self.mixup is not None:
            raise ValueError(f"mixup={self.mixup!r} mixes images (or flat rows); "
                             f"model={self.model!r} reads text, whose token ids do not "
                             "mix: pass mixup=None.")

    def _validate_y(self, y, n_samples, labeled=None):
        """``y`` as a 1-D array of ``n_samples`` whose ``labeled`` entries (all
        by default) are classification targets."""
        y = column_or_1d(y, warn=True)
        if len(y) != n_samples:
            raise ValueError(
                f"X has {n_samples} samples but y has {len(y)}: they must have the "
                "same length."
            )
        check_no_missing_labels(y if labeled is None else np.where(labeled, y, y[0]))
        check_classification_targets(y if labeled is None else y[labeled])
        return y

    def _check_fitted_targets(self):
        classes = vars(self).get("classes_")
        labels = (isinstance(classes, np.ndarray) and classes.ndim == 1 and (
            classes.dtype.kind in "biufUS" or classes.dtype.kind == "O" and all(
                isinstance(c, (str, numbers.Number)) for c in classes.tolist())))
        try:  # np.unique's order: strictly increasing, so distinct
            ordered = labels and len(classes) >= 2 and bool(np.all(classes[:-1] < classes[1:]))
        except TypeError:  # labels of several types
            ordered = False
        if not ordered:
            raise ValueError("classes_ is not what a fit sets: a 1-D array of at least "
                             "2 distinct labels (numbers or strings), sorted.")
        if vars(self).get("multilabel_", False) and not np.array_equal(
                classes, np.arange(len(classes))):
            raise ValueError("classes_ of a multi-label fit is not 0 .. n_labels - 1.")

    def _fit_targets(self, y, *, continuing, classes=None, sample_weight=None):
        """``classes_`` from the labels ``y`` (or ``classes``) at a first fit;
        afterwards ``classes``, when given, must be the same."""
        if isinstance(self.class_weight, list):
            raise ValueError("class_weight as a list (one dict per label) weighs the "
                             "labels of a multi-label y; for one label per sample pass "
                             "'balanced' or a dict {class: weight}.")
        if not continuing:
            classes = np.unique(y) if classes is None else np.unique(np.asarray(classes))
            if len(classes) < 2:
                raise ValueError(
                    f"{type(self).__name__} needs samples of at least 2 classes in y; y "
                    f"has one class: {classes[0]!r}."
                )
            check_class_weight(self.class_weight, classes)  # before classes_ changes
            self.classes_ = classes
        elif classes is not None and not np.array_equal(np.unique(np.asarray(classes)),
                                                        self.classes_):
            raise ValueError(
                f"classes={list(np.unique(np.asarray(classes)))!r} is not the same as at "
                f"the first call to partial_fit, which fixed classes_ = "
                f"{self.classes_.tolist()!r}; pass those, or call fit to start over."
            )

    def _target_type(self):
        return SingleLabel(self.classes_, label_smoothing=self.label_smoothing,
                           class_weight=self.class_weight, mixup=self.mixup)

    def decision_function(self, X: ImagesLike) -> np.ndarray:
        """Logits: shape (n_samples, n_classes), or (n_samples,) for two classes
        (the logit difference, positive for ``classes_[1]``); (n_samples,
        n_labels) for a multi-label fit (:class:`~sktransfer.FineTuneClassifier`)."""
        outputs = self._forward_all(X, desc="decision_function")  # checks it is fitted
        return self._target_type().decision_function(outputs)

    def predict_proba(self, X: ImagesLike) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), rows summing to 1;
        for a multi-label fit (:class:`~sktransfer.FineTuneClassifier`), the
        probability of each label, (n_samples, n_labels)."""
        outputs = self._forward_all(X, desc="predict_proba")  # checks it is fitted
        return self._target_type().predict_proba(outputs)

    def predict_log_proba(self, X: ImagesLike) -> np.ndarray:
        """Log of :meth:`predict_proba`, computed stably from the logits."""
        outputs = self._forward_all(X, desc="predict_log_proba")  # checks it is fitted
        return self._target_type().predict_log_proba(outputs)

    def predict(self, X: ImagesLike) -> np.ndarray:
        """The most probable class of each sample, as a label of ``classes_``;
        for a multi-label fit (:class:`~sktransfer.FineTuneClassifier`), the
        0/1 indicator matrix of the labels whose probability is above its
        ``threshold``."""
        return super().predict(X)

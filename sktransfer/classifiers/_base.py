"""What both neural classifiers share on the scikit-learn side.

:class:`NeuralClassifierBase` validates input and parameters, encodes labels,
builds the network (a backbone from :mod:`sktransfer.backbones`, or an MLP for
flat input), hands training to :class:`sktransfer.training.Trainer`, predicts
through :func:`sktransfer._runtime.run_batches` and pickles weights as a CPU
state dict. Subclasses say what a training batch and its loss are.
"""

import copy
import enum
import os
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import log_softmax, softmax
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.model_selection import train_test_split
from sklearn.utils import TransformerTags, check_random_state, column_or_1d
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets

from .._device import PRECISIONS, resolve_autocast_dtype, resolve_device
from .._runtime import InputPipeline, placed, run_batches
from .._sklearn_compat import (
    HasMethods,
    Interval,
    StrOptions,
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)
from ..backbones import load_backbone
from ..inputs import ArraySource, validate_images
from ..training import (
    SCHEDULERS,
    EarlyStopping,
    Trainer,
    build_optimizer,
    build_scheduler,
    head_warmup,
    param_groups,
    resolve_augment,
    set_trainable,
)
from ._network import ClassifierNet, FeaturesOnly, mlp_backbone

TABULAR_MODELS = (None, "mlp")


def _is_freeze(value):
    return value in ("backbone", "none") or (
        isinstance(value, Integral) and not isinstance(value, bool) and value >= 0
    )


class NeuralClassifierBase(ClassNamePrefixFeaturesOutMixin, ClassifierMixin,
                           TransformerMixin, BaseEstimator):
    """Shared machinery of :class:`FineTuneClassifier` and
    :class:`DomainAdaptClassifier`; not meant to be used directly."""

    _parameter_constraints = {
        "model": [str, HasMethods(["forward"]), None],
        "weights": [str, os.PathLike, enum.Enum, None],
        "freeze": [StrOptions({"backbone", "none"}), Interval(Integral, 0, None, closed="left")],
        "unfreeze_after": [Interval(Integral, 0, None, closed="left"), None],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "backbone_lr_ratio": [Interval(Real, 0, None, closed="left")],
        "optimizer": [StrOptions({"adamw", "sgd"}), type],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "scheduler": [StrOptions(set(SCHEDULERS)), None],
        "augment": [StrOptions({"default"}), callable, None],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "early_stopping": ["boolean"],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "grad_clip": [Interval(Real, 0, None, closed="neither"), None],
        "hidden_layer_sizes": [tuple, list],
        "device": [str, torch.device],
        "precision": [StrOptions(set(PRECISIONS))],
        "num_workers": [Interval(Integral, 0, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "input_shape": [tuple, list, None],
        "image_size": [Interval(Integral, 1, None, closed="left"), tuple, None],
    }

    # -- inputs --------------------------------------------------------------
    @property
    def _tabular(self):
        return self.model in TABULAR_MODELS if not isinstance(self.model, torch.nn.Module) else False

    def _validate_X(self, X, *, reset):
        """An ImageSource for images, or an ArraySource of (N, F) rows for the MLP."""
        if self._tabular:
            X = validate_data(self, X, reset=reset, dtype=[np.float32, np.float64])
            return ArraySource(torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)))
        in_chans = self.preprocess_.in_chans if hasattr(self, "preprocess_") and not reset else 3
        return validate_images(self, X, reset=reset, input_shape=self.input_shape,
                               in_chans=in_chans)

    def _set_classes(self, y, classes=None):
        classes = np.unique(y) if classes is None else np.unique(np.asarray(classes))
        if len(classes) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in y; y "
                f"has one class: {classes[0]!r}."
            )
        self.classes_ = classes

    def _encode(self, y):
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if len(unknown):
            raise ValueError(f"y has labels {unknown.tolist()} that are not in "
                             f"classes_ {self.classes_.tolist()}.")
        return np.searchsorted(self.classes_, y)

    def _sample_weights(self, y_encoded, sample_weight, X_for_check):
        weights = _check_sample_weight(sample_weight, X_for_check, dtype=np.float64)
        if self.class_weight is not None:
            present = np.unique(y_encoded)
            if isinstance(self.class_weight, dict):
                missing = set(self.class_weight) - set(self.classes_.tolist())
                if missing:
                    raise ValueError(f"class_weight names classes {sorted(missing)} "
                                     "that are not in y.")
            per_class = compute_class_weight(
                self.class_weight, classes=self.classes_[present],
                y=self.classes_[y_encoded],
            )
            lookup = np.ones(len(self.classes_))
            lookup[present] = per_class
            weights = weights * lookup[y_encoded]
        return weights

    # -- the network ---------------------------------------------------------
    def _build_network(self, *, weights, seed):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if self._tabular:
                backbone = mlp_backbone(self.n_features_in_, tuple(self.hidden_layer_sizes))
            else:
                # A user's module is copied: fitting never trains the parameter itself.
                model = (copy.deepcopy(self.model)
                         if isinstance(self.model, torch.nn.Module) else self.model)
                backbone = load_backbone(model, weights, random_state=seed)
            return ClassifierNet(backbone, len(self.classes_))

    def _preprocess(self, backbone):
        if self._tabular:
            return None
        return backbone.preprocess.with_image_size(self.image_size)

    # -- training ------------------------------------------------------------
    def _check_params(self):
        """Checks that _parameter_constraints cannot express."""
        if not (self._tabular or isinstance(self.model, (str, torch.nn.Module))):
            raise ValueError(f"model={self.model!r}: a backbone name, an nn.Module, "
                             "or None / 'mlp' for flat input.")
        if not _is_freeze(self.freeze):
            raise ValueError(f"freeze={self.freeze!r} must be 'backbone', 'none' or "
                             "an int >= 0.")
        resolve_augment(self.augment)
        if isinstance(self.optimizer, type) and not issubclass(self.optimizer, torch.optim.Optimizer):
            raise ValueError(f"optimizer={self.optimizer!r} is not a torch optimizer class.")
        if not all(isinstance(h, Integral) and h > 0 for h in self.hidden_layer_sizes):
            raise ValueError(f"hidden_layer_sizes={self.hidden_layer_sizes!r} must hold "
                             "positive ints.")
        resolve_device(self.device)

    def _seed(self):
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _split(self, y_encoded, seed, rows=None):
        """Training and validation rows among ``rows`` (all rows by default)."""
        indices = np.arange(len(y_encoded)) if rows is None else np.asarray(rows)
        if not self.early_stopping:
            return indices, None
        try:
            train, valid = train_test_split(indices, test_size=self.validation_fraction,
                                            stratify=y_encoded[indices], random_state=seed)
        except ValueError:  # too few samples of a class to stratify
            train, valid = train_test_split(indices, test_size=self.validation_fraction,
                                            random_state=seed)
        if len(train) == 0 or len(valid) == 0:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} leaves an empty "
                f"training or validation set for {len(indices)} samples."
            )
        return train, valid

    def _prepare_fit(self, X, y, sample_weight, *, classes=None, incremental=False,
                     unlabeled=None, check_rows=None):
        """Validate everything and build (or reuse) the network; no training yet.

        ``unlabeled`` (``y -> bool mask``) marks rows without a label (the
        semi-supervised ``-1``): they are no class, get label ``-1`` and weight
        0. ``check_rows(unlabeled_mask)`` runs after ``y`` is validated and
        before any network is built, to refuse bad input early; what it returns
        comes back as ``checked``.

        Returns
        -------
        source, y_encoded, weights, seed, continuing, labeled_rows, checked
        """
        self._check_params()
        continuing = (self.warm_start or incremental) and hasattr(self, "module_")
        source = self._validate_X(X, reset=not continuing)
        n_samples = len(source)
        y = column_or_1d(y, warn=True)
        if len(y) != n_samples:
            raise ValueError(
                f"X has {n_samples} samples but y has {len(y)}: they must have the "
                "same length."
            )
        mask = np.zeros(n_samples, dtype=bool) if unlabeled is None else unlabeled(y)
        # -1 beside string labels (an object array) is not a class: check the rest.
        check_classification_targets(y[~mask])
        checked = None if check_rows is None else check_rows(mask)
        labeled_rows = np.flatnonzero(~mask)
        sample_weight = _check_sample_weight(sample_weight, np.empty((n_samples, 0)),
                                             dtype=np.float64)
        if not continuing:
            self._set_classes(y[labeled_rows], classes)
        y_encoded = np.full(n_samples, -1, dtype=np.int64)
        y_encoded[labeled_rows] = self._encode(y[labeled_rows])
        weights = np.zeros(n_samples)
        weights[labeled_rows] = self._sample_weights(
            y_encoded[labeled_rows], sample_weight[labeled_rows],
            np.empty((len(labeled_rows), 0)),
        )
        seed = self._seed()
        if not continuing:
            self._start_network(seed)
        return source, y_encoded, weights, seed, continuing, labeled_rows, checked

    def _start_network(self, seed):
        """A fresh network (pretrained backbone, new head) and an empty history."""
        self.module_ = self._build_network(weights=self.weights, seed=seed)
        self.preprocess_ = self._preprocess(self.module_.backbone)
        self.history_ = []

    def _criterion(self, logits, targets, sample_weight):
        """The supervised loss: weighted cross-entropy with label smoothing."""
        losses = F.cross_entropy(logits.float(), targets, reduction="none",
                                 label_smoothing=self.label_smoothing)
        return (losses * sample_weight).sum() / sample_weight.sum().clamp_min(1e-12)

    def _fit_epochs(self, source, y_encoded, weights, seed, *, epochs, labeled=None,
                    adaptation=None, target_rows=None, scheduler="from_params"):
        """Train ``module_`` for ``epochs`` epochs on the rows ``labeled`` (all by
        default; early stopping holds out a share of them).

        Subclasses change what a step sees through two hooks: ``_train_batches``
        (the batches of an epoch) and ``_batch_loss`` (the loss of one batch).
        ``adaptation`` is an extra trainable loss module (domain adaptation),
        optimised with the network at the head's learning rate; ``target_rows``
        the rows of the target domain it aligns with.
        """
        device = resolve_device(self.device)
        autocast_dtype = resolve_autocast_dtype(self.precision, device)
        net = placed(self.module_, device)
        pipeline = InputPipeline(source, self.preprocess_, device,
                                 num_workers=self.num_workers)
        train_idx, valid_idx = self._split(y_encoded, seed, rows=labeled)
        y_device = torch.as_tensor(y_encoded, dtype=torch.long)
        w_device = torch.as_tensor(weights, dtype=torch.float32)
        augment = None if self._tabular else resolve_augment(self.augment)
        n_batches = -(-len(train_idx) // self.batch_size)

        start_epoch = len(self.history_)
        head_only_until = None
        if self.unfreeze_after is not None and not self._tabular:
            head_only_until = self.unfreeze_after
        if head_only_until is not None and start_epoch < head_only_until:
            head_warmup(net.backbone, self.freeze)
        elif not self._tabular:
            set_trainable(net.backbone, self.freeze)

        # The MLP of flat input is not pretrained: no reason to slow it down.
        ratio = 1.0 if self._tabular else self.backbone_lr_ratio
        groups = param_groups(net.backbone, net.head, lr=self.lr, backbone_lr_ratio=ratio)
        trained = net
        if isinstance(adaptation, torch.nn.Module):
            adaptation.to(device)
            extra = [p for p in adaptation.parameters() if p.requires_grad]
            if extra:
                groups.append({"params": extra, "lr": self.lr, "name": "adaptation"})
            # One module for the trainer: train/eval modes, snapshots and
            # interruption cover the adaptation loss too.
            trained = torch.nn.ModuleDict({"net": net, "adaptation": adaptation})
        optimizer = build_optimizer(self.optimizer, groups, weight_decay=self.weight_decay)
        if scheduler == "from_params":
            scheduler = self.scheduler
        scheduler = build_scheduler(scheduler, optimizer,
                                    total_steps=epochs * n_batches)
        trainer = Trainer(trained, optimizer, device=device, autocast_dtype=autocast_dtype,
                          scheduler=scheduler, grad_clip=self.grad_clip,
                          verbose=int(self.verbose))
        generator = torch.Generator().manual_seed(seed)

        def on_epoch_start(epoch):
            if head_only_until is not None and epoch == head_only_until:
                set_trainable(net.backbone, self.freeze)

        def supervised_batches(epoch):
            order = train_idx[torch.randperm(len(train_idx), generator=generator).numpy()]
            for start, batch in zip(range(0, len(order), self.batch_size),
                                    pipeline.batches(self.batch_size, indices=order)):
                index = torch.as_tensor(order[start:start + self.batch_size])
                yield (pipeline.prepare(batch, augment=augment),
                       y_device[index].to(device, non_blocking=True),
                       w_device[index].to(device, non_blocking=True))

        def supervised_loss(batch):
            inputs, targets, sample_w = batch
            return self._criterion(net(inputs), targets, sample_w)

        validate = None
        if valid_idx is not None:
            def validate():
                logits = run_batches(net, pipeline, autocast_dtype=autocast_dtype,
                                     batch_size=self.batch_size, indices=valid_idx)
                targets = y_encoded[valid_idx]
                log_proba = log_softmax(logits.astype(np.float64), axis=1)
                return {
                    "valid_loss": float(-log_proba[np.arange(len(targets)), targets].mean()),
                    "valid_score": float((logits.argmax(1) == targets).mean()),
                }

        stopper = EarlyStopping(self.patience) if self.early_stopping else None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            context = dict(net=net, pipeline=pipeline, augment=augment,
                           generator=generator, device=device, epochs=epochs,
                           start_epoch=start_epoch, n_batches=n_batches,
                           adaptation=adaptation, target_rows=target_rows)
            interrupted = trainer.fit(
                epochs=epochs,
                train_batches=self._train_batches(supervised_batches, context),
                loss_fn=self._batch_loss(supervised_loss, context),
                validate=validate,
                history=self.history_,
                early_stopping=stopper,
                on_epoch_start=on_epoch_start,
                n_batches=n_batches,
                start_epoch=start_epoch,
            )
        for parameter in net.parameters():
            parameter.requires_grad_(True)
        self.module_ = net
        self.interrupted_ = interrupted
        self.n_iter_ = len(self.history_)
        return self

    def _train_batches(self, supervised_batches, context):
        """``train_batches(epoch)`` for the trainer: here the supervised batches
        ``(inputs, targets, sample_weight)`` of the labeled training rows."""
        return supervised_batches

    def _batch_loss(self, supervised_loss, context):
        """``loss(batch)`` for the trainer: here the supervised loss."""
        return supervised_loss

    # -- prediction ----------------------------------------------------------
    def _forward_all(self, X, module=None):
        check_is_fitted(self, "module_")
        source = self._validate_X(X, reset=False)
        device = resolve_device(self.device)
        net = placed(self.module_, device)
        pipeline = InputPipeline(source, self.preprocess_, device,
                                 num_workers=self.num_workers)
        return run_batches(
            net if module is None else module(net), pipeline,
            autocast_dtype=resolve_autocast_dtype(self.precision, device),
            batch_size=self.batch_size,
        )

    def decision_function(self, X):
        """Logits: shape (n_samples, n_classes), or (n_samples,) for two classes
        (the logit difference, positive for ``classes_[1]``)."""
        logits = self._forward_all(X).astype(np.float64)
        if logits.shape[1] == 2:
            return logits[:, 1] - logits[:, 0]
        return logits

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes); rows sum to 1."""
        return softmax(self._forward_all(X).astype(np.float64), axis=1)

    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba`, computed stably from the logits."""
        return log_softmax(self._forward_all(X).astype(np.float64), axis=1)

    def predict(self, X):
        """The most probable class of each sample, as a label of ``classes_``."""
        indices = self._forward_all(X).argmax(axis=1)
        return self.classes_[indices]

    def transform(self, X):
        """Penultimate features of the trained network, float32
        (n_samples, n_features), to feed another estimator."""
        return self._forward_all(X, module=FeaturesOnly)

    @property
    def _n_features_out(self):
        return self.module_.backbone.num_features

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        # transform() returns the trained network's features (float32).
        tags.transformer_tags = TransformerTags(preserves_dtype=["float32"])
        return tags

    # -- persistence ---------------------------------------------------------
    def __getstate__(self):
        from .._persistence import stamp_version  # _persistence imports this module

        # object.__getstate__ is the live __dict__
        state = stamp_version(dict(super().__getstate__()))
        module = state.pop("module_", None)
        if module is not None:
            state["_module_state"] = {k: v.detach().cpu().clone()
                                      for k, v in module.state_dict().items()}
        return state

    def __setstate__(self, state):
        from .._persistence import check_version

        module_state = state.pop("_module_state", None)
        super().__setstate__(check_version(self, state))  # warns for another version
        if module_state is not None:
            # The architecture alone (weights=None): no network, no checkpoint file.
            net = self._build_network(weights=None, seed=0)
            net.load_state_dict(module_state)
            self.module_ = net.eval()

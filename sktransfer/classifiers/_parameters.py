"""The parameters both classifiers share, written once: their constraints and
their docs. Each classifier keeps an explicit ``__init__`` (scikit-learn reads
the parameters from its signature) and builds its docstring's Parameters
section from :data:`PARAMETER_DOCS` with :func:`parameters_doc`, overriding
only what differs, so the two cannot drift apart."""

from numbers import Integral, Real

from .._parameters import COMMON_CONSTRAINTS
from .._sklearn_compat import HasMethods, Interval, StrOptions
from ..training import SCHEDULERS

CONSTRAINTS = {
    **COMMON_CONSTRAINTS,
    "model": [str, HasMethods(["forward"]), None],
    "freeze": [StrOptions({"backbone", "none"}), Interval(Integral, 0, None, closed="left")],
    "unfreeze_after": [Interval(Integral, 0, None, closed="left"), None],
    "epochs": [Interval(Integral, 1, None, closed="left")],
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
    "callbacks": [list, tuple, None],
    "verbose": ["verbose"],
    "warm_start": ["boolean"],
}

PARAMETER_DOCS = {
    "model": '''model : str, torch.nn.Module or None, default="efficientnet_lite0"
        The backbone, as in :class:`~sktransfer.PretrainedFeatureExtractor`, or
        ``None`` / ``"mlp"`` for an MLP on flat ``(n_samples, n_features)`` input
        (e.g. the output of a :class:`~sktransfer.PretrainedFeatureExtractor`
        earlier in a Pipeline).''',
    "weights": '''weights : "DEFAULT", str, weights enum, path or None, default="DEFAULT"
        Weights of the backbone (see :func:`sktransfer.backbones.load_backbone`).''',
    "freeze": '''freeze : "backbone", "none" or int, default="none"
        What trains besides the new head: ``"backbone"`` nothing (linear probe),
        ``"none"`` everything, an int ``k`` the last ``k`` stages of the backbone.''',
    "unfreeze_after": '''unfreeze_after : int or None, default=None
        Train only the head for this many epochs first, then apply ``freeze``
        (fastai's ``fine_tune`` recipe). ``None``: apply ``freeze`` from the start.''',
    "epochs": '''epochs : int, default=10''',
    "batch_size": '''batch_size : int, default=32''',
    "lr": '''lr : float, default=1e-3
        Learning rate of the head (the peak rate with ``scheduler="onecycle"``).''',
    "backbone_lr_ratio": '''backbone_lr_ratio : float, default=0.1
        The backbone's learning rate is ``lr * backbone_lr_ratio``
        (discriminative learning rates). Not applied to the MLP of flat input,
        which is not pretrained.''',
    "optimizer": '''optimizer : {"adamw", "sgd"} or torch optimizer class, default="adamw"
        SGD uses momentum 0.9.''',
    "weight_decay": '''weight_decay : float, default=1e-4''',
    "scheduler": '''scheduler : {"onecycle", "cosine"} or None, default="onecycle"
        Per-step learning-rate schedule over all epochs of a ``fit``.''',
    "augment": '''augment : "default", callable or None, default="default"
        ``"default"``: random flips, zoom-and-shift crops (up to 1.15x) and
        brightness/contrast jitter, on the device, at the backbone's input size; a
        callable maps a float batch (N, C, H, W) in [0, 1] to an augmented one.
        Ignored for flat input.''',
    "label_smoothing": '''label_smoothing : float, default=0.0''',
    "class_weight": '''class_weight : "balanced", dict or None, default=None
        Weights of the classes in the loss, as in scikit-learn.''',
    "validation_fraction": '''validation_fraction : float, default=0.1
        Share of the training data held out (stratified) when
        ``early_stopping=True``.''',
    "early_stopping": '''early_stopping : bool, default=False
        Stop when the validation loss has not improved for ``patience`` epochs and
        keep the best weights.''',
    "patience": '''patience : int, default=3''',
    "grad_clip": '''grad_clip : float or None, default=None
        Maximum norm of the gradients.''',
    "hidden_layer_sizes": '''hidden_layer_sizes : tuple of int, default=(256,)
        Hidden layers of the MLP (``model=None`` only).''',
    "device": '''device : str or torch.device, default="auto"''',
    "precision": '''precision : {"auto", "32", "bf16", "fp16"}, default="auto"
        Mixed precision; ``"auto"`` is bf16 on a CUDA device that supports it,
        float32 elsewhere; ``"fp16"`` uses a gradient scaler.''',
    "num_workers": '''num_workers : int, default=0
        DataLoader workers for files and PIL images.''',
    "callbacks": '''callbacks : list of Callback or None, default=None
        Objects whose hooks the training loop calls (see
        :class:`sktransfer.training.Callback`), after the estimator's own
        (progress, early stopping); e.g. a
        :class:`~sktransfer.training.Checkpoint`. They are copied at each
        ``fit``: the parameter is never changed.''',
    "random_state": '''random_state : int, RandomState instance or None, default=None
        Seeds the head, the shuffling, the augmentation and the validation split;
        training on a CPU is then reproducible. A torch module given as ``model``
        keeps the weights it has (it is copied at ``fit``, never trained in
        place): seed torch before building it.''',
    "verbose": '''verbose : int, default=0
        1: one line per epoch, and a progress bar over the batches of
        ``predict``, ``predict_proba`` and ``transform``; 2: a progress bar per
        training epoch too.''',
    "warm_start": '''warm_start : bool, default=False
        ``fit`` continues from the fitted weights instead of starting over.''',
    "input_shape": '''input_shape : tuple or None, default=None
        ``(height, width[, channels])`` of flat rows that are images.''',
    "image_size": '''image_size : int, tuple or None, default=None
        Override the weights' preprocessing geometry.''',
}

#: The shared parameters, in signature order.
SHARED = tuple(PARAMETER_DOCS)


def parameters_doc(*first, **overrides):
    """The numpydoc lines of the Parameters section: the parameters ``first``
    (given as ``(name, doc)`` pairs: a classifier's own) and then every shared
    one, with ``overrides`` (``name=doc``) replacing a shared entry's text."""
    entries = [doc for _, doc in first]
    entries += [overrides.get(name, PARAMETER_DOCS[name]) for name in SHARED]
    return "\n".join("    " + entry for entry in entries)

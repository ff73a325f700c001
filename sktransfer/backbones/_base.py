"""The :class:`Backbone` module every estimator puts its heads on."""

import torch
from torch import nn

from .._utils.notes import add_note
from ..inputs import ImageSource, PreprocessConfig

#: The poolings of an image backbone's feature map (``pooling=``): average, max,
#: or both concatenated (twice the features).
POOLINGS = ("avg", "max", "avgmax")


class GlobalPool(nn.Module):
    """Pool a (N, C, ...) feature map over its positions to (N, C) (or (N, 2C)
    for ``"avgmax"``).

    ``token_width``: the width of a transformer's tokens; a (N, tokens,
    ``token_width``) sequence, what a block of a vision transformer gives, is
    pooled over its tokens to (N, ``token_width``) instead.
    """

    def __init__(self, pooling, token_width=None):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling={pooling!r} is not one of {POOLINGS} or None.")
        if token_width is not None and not (
                isinstance(token_width, int) and not isinstance(token_width, bool)
                and token_width >= 1):
            raise ValueError(f"token_width={token_width!r} must be None or an int >= 1.")
        self.pooling = pooling
        self.token_width = token_width

    def forward(self, x):
        if x.ndim <= 2:
            return x
        tokens = (x.ndim == 3 and self.token_width is not None
                  and x.shape[2] == self.token_width != x.shape[1])
        # a token sequence's width is its last axis (pooled as a feature map's
        # first, it gave one number per token)
        x = x.transpose(1, 2) if tokens else x.flatten(2)
        if self.pooling == "avg":
            return x.mean(2)
        if self.pooling == "max":
            return x.amax(2)
        return torch.cat([x.mean(2), x.amax(2)], dim=1)

    def extra_repr(self):
        if self.token_width is None:
            return repr(self.pooling)
        return f"{self.pooling!r}, token_width={self.token_width}"


class Backbone(nn.Module):
    """A network that maps normalised images (N, C, H, W) to features (N, F).

    Parameters
    ----------
    body : nn.Module
        The network without its classifier head. Its output is flattened after
        ``pool``; a dict gives its first value and a list or tuple its last (the
        deepest map of torchvision's and timm's feature extractors).
    num_features : int or None
        Size of the feature vector; ``None`` finds it with one dry forward pass
        (at the preprocessing's size, else 32 x 32; when the network does not
        take 32 x 32 images, the estimators find it at their training images'
        size, and it is None until then).
    preprocess : PreprocessConfig
        How images are prepared for ``body`` (travels with the weights).
    pool : nn.Module or None
        Applied to the body's output before flattening (for a feature map).
    name : str
        What the backbone is, for reprs and errors.

    Attributes
    ----------
    num_features : int
    preprocess : PreprocessConfig
    modality : {"image", "text"}
        What the backbone reads, which decides how ``X`` is read (a string is a
        path for an image backbone, a text for a text backbone).
    """

    modality = "image"
    #: Whether ``num_features`` was declared by the user's module, and is checked
    #: at each forward pass (the default, which a backbone pickled before reads).
    _declared = False
    #: Whether ``num_features`` was given to the constructor, not found by the
    #: dry run.
    _size_given = False

    def __init__(self, body, *, num_features=None, preprocess=None, pool=None,
                 name="custom"):
        super().__init__()
        self.body = body
        self.pool = pool if pool is not None else nn.Identity()
        self.preprocess = preprocess if preprocess is not None else PreprocessConfig()
        self.name = name
        self._size_given = num_features is not None
        found = None
        if _has_lazy_parameters(self):
            # a lazy layer's parameters are made by the first forward pass:
            # here, not in an inference pass where they would be inference tensors
            found = self._dry_run()
        elif num_features is None:
            try:
                found = self._dry_run()
            except RuntimeError as exc:
                size = self.preprocess.output_size
                if size is not None and not is_shape_error(exc):
                    raise
                if size is not None:  # the size every image is resized to
                    raise _size_refused(name, size, "image_size", exc) from exc
                # 32 x 32 was a guess, and the network takes images of another
                # size: an estimator finds the size at its training images'
                # size (features_at_input_size)
        self.num_features = int(num_features) if num_features is not None else found

    def forward(self, x):
        features = self.body(x)
        if isinstance(features, dict):  # torchvision / timm feature extractors
            features = next(iter(features.values()))
        elif isinstance(features, (list, tuple)):
            features = features[-1]
        features = self.pool(features).flatten(1)
        if (self._declared and self.num_features is not None
                and features.shape[1] != self.num_features):
            raise ValueError(
                f"{self.name}: the network gives {features.shape[1]} features per "
                f"sample (at this input size), but its module declares num_features="
                f"{self.num_features}, which sizes the heads and the feature names: fix "
                "the declared size, or drop it (one dry forward pass finds it).")
        return features

    def _dry_run(self, size=None):
        """The number of features of one forward pass of zeros, at ``size``
        (height, width), else the size the preprocessing gives, else 32 x 32,
        on the device of the backbone's parameters."""
        size = size or self.preprocess.output_size or (32, 32)
        parameter = next(self.parameters(), None)
        device = parameter.device if parameter is not None else None
        probe = torch.zeros(1, self.preprocess.in_chans, *size, device=device)
        was_training = self.training
        self.eval()
        try:
            # no_grad, not inference_mode: a lazy layer's parameters are made
            # here, and must stay tensors that training can set requires_grad on
            with torch.no_grad():
                return int(self(probe).shape[1])
        finally:
            self.train(was_training)

    def stages(self):
        """The backbone's stages, first to last, for ``freeze=k``; None (the
        default) lets :func:`sktransfer.training.stages` find them in ``body``."""
        return None

    def extra_repr(self):
        return f"name={self.name!r}, num_features={self.num_features}"


def features_at_input_size(backbone, source):
    """The number of features ``backbone`` gives for the images of ``source``
    when they keep their own size: one forward pass at the first image's size.

    A backbone whose size was found by a dry run at 32 x 32 (no ``image_size``)
    may give another number at the training images' size (a module ending in
    ``Flatten`` and ``Linear``, a trunk returning its feature map); a backbone
    that declares its size, or whose preprocessing resizes, keeps its own.
    A network that cannot take that size raises ValueError saying so."""
    if not isinstance(source, ImageSource) or backbone.modality != "image":
        return backbone.num_features
    resized = backbone.preprocess.output_size
    if backbone.num_features is not None and (backbone._declared or resized is not None):
        return backbone.num_features
    size = resized or source.first_image_size()
    try:
        return backbone._dry_run(size)
    except RuntimeError as exc:
        if not is_shape_error(exc):
            raise
        where = ("image_size" if resized is not None
                 else "the training images' own size")
        raise _size_refused(backbone.name, size, where, exc) from exc


def _size_refused(name, size, where, exc):
    """The ValueError for a network that cannot take images of ``size``
    (``where`` says where that size came from), from torch's shape error."""
    return ValueError(
        f"model={name}: the network cannot take images of {size[0]} x {size[1]} "
        f"({where}): {str(exc).splitlines()[0]}. Set image_size to the size the "
        "network takes, so that every image is resized to it.")


def is_shape_error(exc):
    """Whether torch's ``exc`` says that a layer got a tensor of a shape it
    cannot take (not, say, that memory ran out)."""
    text = str(exc).lower()
    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in text:
        return False
    # torch words them many ways: "mat1 and mat2 shapes cannot be multiplied",
    # "Calculated padded input size ... Kernel size can't be greater", "Sizes of
    # tensors must match", "Expected 4D input", "input image is smaller than kernel"
    # (not "Expected all tensors to be on the same device", a device's error)
    return any(word in text for word in ("size", "shape", "smaller than",
                                         "expected input", "d input", "dimension"))


def note_size_dependence(exc, preprocess):
    """Add to ``exc`` (torch's error from a forward pass) what it does not say
    when images keep their own size (no ``image_size``) and a layer refused a
    shape: a network whose layers fix the input size (``Flatten`` then
    ``Linear``) takes no other."""
    if (isinstance(preprocess, PreprocessConfig) and preprocess.output_size is None
            and is_shape_error(exc)):
        add_note(exc, "The images kept their own size (no image_size): a network whose "
                      "layers fix the input size (Flatten then Linear) takes only the "
                      "size it was fitted on. Give images of that size, or fit with "
                      "image_size so that every image is resized to one size.")


def _has_lazy_parameters(module):
    return any(isinstance(parameter, nn.parameter.UninitializedParameter)
               for parameter in module.parameters())


def check_user_module(module):
    """Raise ValueError, before any work, for what a user's ``module`` holds
    that the estimators cannot run: lazy layers with buffers not made yet
    (``nn.LazyBatchNorm2d``: such a module cannot be copied before its first
    forward pass, and the estimators copy a user's module rather than train it
    in place), or floating-point weights that are not float32 (inputs are fed
    as float32, and ``precision`` casts inside autocast, so torch's own error
    would name neither the layer nor the fix). Buffers are the module's own
    business: one it casts in ``forward`` works."""
    for name, tensor in module.named_parameters():
        if (isinstance(tensor, nn.parameter.UninitializedTensorMixin)
                or not tensor.is_floating_point() or tensor.dtype == torch.float32):
            continue
        raise ValueError(
            f"model: its tensor {name!r} is {tensor.dtype}, and the estimators feed "
            "float32 inputs to a float32 network (mixed precision is the "
            "precision parameter's job); convert the module with module.float().")
    for name, layer in module.named_modules():
        if any(isinstance(buffer, nn.parameter.UninitializedBuffer)
               for buffer in layer.buffers(recurse=False)):
            raise ValueError(
                f"model: its layer {name or type(module).__name__!r} "
                f"({type(layer).__name__}) is lazy and holds buffers that are made "
                "at its first forward pass, so the module cannot be copied before "
                "it; give it its sizes (e.g. nn.BatchNorm2d(channels)), or run one "
                "forward pass on it first.")

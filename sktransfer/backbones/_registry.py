"""Named backbones that are not plain torchvision or timm names.

The builder contract, shared by every builder :func:`load_backbone` calls
(registered ones, the built-in ``efficientnet_lite0`` and ``simple_cnn``, and the
torchvision and timm builders, which take the model name first)::

    builder(*, weights, layer, pooling, image_size, **options) -> Backbone

called with keyword arguments only, so that options added later (a text
backbone's ``max_length``, say) reach the builders that use them and leave the
others alone: a builder takes ``**options`` and ignores what it does not know.
``load_backbone`` resolves every argument once:

* ``weights``: ``None`` (random initialisation, seeded by ``load_backbone`` when
  asked); a weights name (``"DEFAULT"``, ``"IMAGENET1K_V2"``, a timm tag) or a
  weights enum member, passed on as given; or a checkpoint file as a
  :class:`pathlib.Path`, so a builder tells a file from a name with
  ``isinstance(weights, os.PathLike)`` and never inspects strings itself. A
  name must build the same weights at every call: a
  ``PretrainedFeatureExtractor`` rebuilds a named backbone from its name and
  weights (its pickle and safe file hold those, not the tensors), and refuses
  to go on when the rebuilt weights differ. A random initialisation is ``weights=None``, which the estimators
  seed with their ``random_state``;
* ``layer``: a graph node name, or ``None`` for the penultimate features;
* ``pooling``: one of :data:`~sktransfer.backbones.POOLINGS` or ``None``;
* ``image_size``: ``None`` or the input size, as the user gave it (an int or a
  ``(height, width)`` pair, already checked). A builder may build for it (a
  vision transformer at that size); whatever it returns, ``load_backbone`` then
  makes the network take that size and sets the preprocessing's geometry, as it
  does for a :class:`Backbone` passed as ``model``, so a builder that ignores
  ``image_size`` is still correct.

Builders written for the earlier contract, ``builder(weights, layer, pooling)``
called positionally with a checkpoint path as a ``str``, are still accepted
for now: :func:`register_backbone` tells them by their signature (they do not
take the four keywords, nor ``**options``), warns with a ``FutureWarning``, and
calls them that way (a checkpoint path as a ``str``). That support will be
removed; add ``*, image_size, **options`` to such a builder.

A name is registered for one modality (``"image"`` by default, ``"text"``
for a builder that returns a text backbone), which tells the estimators how to
read ``X`` before anything is built; builders of text backbones also take the
options ``max_length`` and ``normalize`` (given only when the caller sets them).

Names are never silently overwritten.
"""

import inspect
import os
from .._utils.caller import warn

#: The keyword arguments every builder is called with.
BUILDER_KEYWORDS = ("weights", "layer", "pooling", "image_size")

#: What a backbone reads.
MODALITIES = ("image", "text")

_REGISTRY = {}  # name -> _Registration


class _Registration:
    """A registered builder and how it is called."""

    __slots__ = ("builder", "positional", "modality")

    def __init__(self, builder, positional, modality="image"):
        self.builder = builder
        self.positional = positional  # the earlier three-argument contract
        self.modality = modality

    def __call__(self, *, weights, layer, pooling, image_size, **options):
        if self.positional:
            if options:
                raise TypeError(
                    f"options {sorted(options)} cannot reach a builder written for "
                    "the earlier contract (weights, layer, pooling); add "
                    "'*, image_size, **options' to it.")
            if isinstance(weights, os.PathLike):
                weights = os.fspath(weights)  # what those builders were given
            return self.builder(weights, layer, pooling)
        return self.builder(weights=weights, layer=layer, pooling=pooling,
                            image_size=image_size, **options)


def _takes_keywords(builder):
    """Whether ``builder`` can be called as the builder contract says."""
    try:
        parameters = inspect.signature(builder).parameters.values()
    except (TypeError, ValueError):  # no signature to read (some builtins)
        return True
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return True
    named = {p.name for p in parameters
             if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                           inspect.Parameter.KEYWORD_ONLY)}
    return set(BUILDER_KEYWORDS) <= named


def _register(name, builder, overwrite, modality):
    if not callable(builder):
        raise TypeError(f"the builder of backbone {name!r} must be callable; got "
                        f"{type(builder).__name__}.")
    if name in _REGISTRY and not overwrite:
        raise ValueError(
            f"a backbone named {name!r} is already registered; pass overwrite=True "
            "to replace it."
        )
    positional = not _takes_keywords(builder)
    if positional:
        warn(
            f"the builder of backbone {name!r} takes (weights, layer, pooling) "
            "positionally, the earlier builder contract; builders are now called "
            "as builder(*, weights, layer, pooling, image_size, **options) (a "
            "checkpoint arrives as a pathlib.Path). It is called the old way for "
            "now; that support will be removed.",
            FutureWarning,
        )
    _REGISTRY[name] = _Registration(builder, positional, modality)
    return builder


def register_backbone(name, builder=None, *, overwrite=False, modality="image"):
    """Register a builder under ``name`` so that ``model=name`` builds it.

    Used as a function, ``register_backbone(name, builder)``, or as a decorator,
    ``@register_backbone(name)`` above the builder's definition.

    Parameters
    ----------
    name : str
        The name users pass as ``model=``. It takes precedence over a torchvision
        model of the same name, and must not start with ``"timm:"`` or ``"hf:"``.
    builder : callable or None, default=None
        ``builder(*, weights, layer, pooling, image_size, **options) ->
        Backbone``, following the builder contract in this module's docstring.
        ``None`` returns a decorator that registers the function it decorates.
    overwrite : bool, default=False
        Replace an existing registration instead of refusing it.
    modality : {"image", "text"}, default="image"
        What the backbone the builder returns reads: the estimators read ``X``
        as images (strings are paths) or as texts from it, before building.

    Returns
    -------
    builder : callable
        ``builder`` itself, or, without it, the decorator (which returns the
        function it decorates unchanged).

    Examples
    --------
    >>> from sktransfer.backbones import Backbone, SimpleCNN, register_backbone
    >>> @register_backbone("tiny_cnn_example")
    ... def tiny_cnn(*, weights, layer, pooling, image_size, **options):
    ...     return Backbone(SimpleCNN(), num_features=64, name="tiny_cnn_example")
    >>> from sktransfer.backbones import load_backbone
    >>> load_backbone("tiny_cnn_example", None).num_features
    64
    """
    if not isinstance(name, str) or not name or name.startswith(("timm:", "hf:")):
        raise ValueError(f"a backbone name must be a non-empty str not starting "
                         f"with 'timm:' or 'hf:'; got {name!r}.")
    if modality not in MODALITIES:
        raise ValueError(f"modality={modality!r} is not one of {MODALITIES}.")
    if builder is None:
        def decorator(function):
            return _register(name, function, overwrite, modality)

        return decorator
    return _register(name, builder, overwrite, modality)


def registered_builder(name):
    """The builder registered under ``name`` (as the user gave it), or None."""
    entry = _REGISTRY.get(name)
    return None if entry is None else entry.builder


def registered_modality(name):
    """The modality ``name`` was registered for, or None when it is not registered."""
    entry = _REGISTRY.get(name)
    return None if entry is None else entry.modality


def build_registered(name, **arguments):
    """Call the builder registered under ``name`` with ``arguments`` (the
    builder contract's keywords), the way its registration says."""
    return _REGISTRY[name](**arguments)


def list_registered():
    """Names registered with :func:`register_backbone`, sorted."""
    return sorted(_REGISTRY)

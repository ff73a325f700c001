"""Named backbones that are not plain torchvision or timm names.

A builder takes ``(weights, layer, pooling)`` and returns a
:class:`~sktransfer.backbones.Backbone`. Names are never silently overwritten.
"""

_REGISTRY = {}


def register_backbone(name, builder, *, overwrite=False):
    """Register ``builder`` under ``name`` so that ``model=name`` builds it.

    Parameters
    ----------
    name : str
        The name users pass as ``model=``. It takes precedence over a torchvision
        model of the same name.
    builder : callable
        ``builder(weights, layer, pooling) -> Backbone``.
    overwrite : bool, default=False
        Replace an existing registration instead of refusing it.
    """
    if not isinstance(name, str) or not name or name.startswith("timm:"):
        raise ValueError(f"a backbone name must be a non-empty str not starting "
                         f"with 'timm:'; got {name!r}.")
    if name in _REGISTRY and not overwrite:
        raise ValueError(
            f"a backbone named {name!r} is already registered; pass overwrite=True "
            "to replace it."
        )
    _REGISTRY[name] = builder
    return builder


def registered_builder(name):
    """The builder registered under ``name``, or None."""
    return _REGISTRY.get(name)


def list_registered():
    """Names registered with :func:`register_backbone`, sorted."""
    return sorted(_REGISTRY)

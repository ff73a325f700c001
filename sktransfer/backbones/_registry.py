"""Named backbones that are not plain torchvision or timm names.

The builder contract, shared by every builder :func:`load_backbone` calls
(registered ones, the built-in ``efficientnet_lite0`` and ``simple_cnn``, and the
torchvision and timm builders with their model name bound first)::

    builder(weights, layer, pooling) -> Backbone

called positionally, where ``weights`` is resolved once by ``load_backbone``:

* ``None``: random initialisation (seeded by ``load_backbone`` when asked);
* a weights name (``"DEFAULT"``, ``"IMAGENET1K_V2"``, a timm tag) or a weights
  enum member, passed on as given;
* a checkpoint file: a :class:`~sktransfer.backbones._checkpoint.CheckpointPath`,
  which is a ``str`` holding the path (``weights_is_path`` decided it), so a
  builder tells it apart with ``isinstance`` and never inspects strings itself;

``layer`` is a graph node name or ``None`` (the penultimate features) and
``pooling`` one of :data:`~sktransfer.backbones.POOLINGS` or ``None``. Names are
never silently overwritten.
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
        ``builder(weights, layer, pooling) -> Backbone``, following the builder
        contract in this module's docstring (a checkpoint path arrives as a
        ``str``).
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

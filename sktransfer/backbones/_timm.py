"""timm models as backbones (timm is a dependency of sktransfer)."""

import math

from ..inputs import PreprocessConfig
from ._base import Backbone
from ._checkpoint import CheckpointPath, load_state_into, read_checkpoint
from ._layers import layer_backbone


def import_timm(purpose):
    try:
        import timm
    except ImportError as exc:
        raise ImportError(
            f"{purpose} needs timm: pip install timm (or sktransfer[timm])."
        ) from exc
    return timm


def preprocess_from_timm(model, in_chans=3):
    """timm's pretrained config of ``model`` as a :class:`PreprocessConfig`."""
    timm = import_timm("reading a timm preprocessing config")
    cfg = timm.data.resolve_data_config({}, model=model)
    _, height, width = cfg["input_size"]
    crop_pct = cfg.get("crop_pct") or 1.0
    if height == width:
        resize = int(math.floor(height / crop_pct))
    else:
        resize = tuple(int(math.floor(s / crop_pct)) for s in (height, width))
    return PreprocessConfig(
        crop_size=(height, width),
        resize_size=resize,
        mean=tuple(cfg["mean"]),
        std=tuple(cfg["std"]),
        interpolation=cfg.get("interpolation", "bilinear")
        if cfg.get("interpolation") in ("bilinear", "bicubic", "nearest")
        else "bilinear",
        in_chans=in_chans,
    )


def finish_timm_backbone(model, layer, pooling, name, preprocess=None):
    """Head removal (``reset_classifier(0)``) or an inner layer, as a Backbone."""
    preprocess = preprocess or preprocess_from_timm(model)
    if layer is not None:
        return layer_backbone(model, layer, pooling, preprocess, name)
    model.reset_classifier(0)
    return Backbone(
        model, num_features=model.num_features, preprocess=preprocess, name=name
    )


def build_timm(name, weights, layer, pooling):
    """``timm:<name>`` as a :class:`Backbone`; with ``name`` bound, a builder.

    ``weights="DEFAULT"`` loads timm's pretrained weights (its hub cache);
    another string is a pretrained tag (``"in1k"``); ``None`` random; a
    :class:`CheckpointPath` is loaded into the randomly initialised model.
    """
    weights_path = weights if isinstance(weights, CheckpointPath) else None
    timm = import_timm(f"model='timm:{name}'")
    if weights_path is None and weights is not None and not isinstance(weights, str):
        raise ValueError(
            f"timm:{name} takes weights='DEFAULT', a pretrained tag such as 'in1k', a "
            f"file path or None; got {weights!r}."
        )
    if name not in timm.list_models() and name.split(".")[0] not in timm.list_models():
        raise ValueError(f"timm has no model named {name!r}.")
    full_name = name if weights in (None, "DEFAULT") or weights_path else f"{name}.{weights}"
    pretrained = weights is not None and weights_path is None
    try:
        model = timm.create_model(full_name, pretrained=pretrained)
    except Exception as exc:
        if not pretrained or isinstance(exc, (KeyboardInterrupt, MemoryError)):
            raise
        raise OSError(
            f"could not load timm's pretrained weights for {full_name!r} "
            f"({type(exc).__name__}: {exc}). timm looks in its Hugging Face cache "
            "($HF_HOME, by default ~/.cache/huggingface/hub) and downloads what is "
            "missing; without network, pass weights='/path/to/checkpoint.pth' "
            "(a state dict saved from that architecture)."
        ) from exc
    if weights_path is not None:
        load_state_into(model, read_checkpoint(weights_path), source=str(weights_path))
    return finish_timm_backbone(model, layer, pooling, f"timm:{name}")

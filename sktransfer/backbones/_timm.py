"""timm models as backbones (timm is a dependency of sktransfer).

``model="timm:<spec>"`` takes what :func:`timm.create_model` takes, and goes
through it, so the preprocessing comes from the model's own pretrained config:

* ``<name>`` or ``<name>.<tag>`` (``"vit_small_patch14_dinov2.lvd142m"``): an
  architecture of timm's registry and, optionally, its pretrained tag;
* ``hf-hub:<repo>`` (``"hf-hub:timm/resnet18.a1_in1k"``): the ``config.json`` and
  weights of a Hugging Face Hub repository (its local cache is used first; with
  ``HF_HUB_OFFLINE=1`` nothing is downloaded);
* ``local-dir:<path>``: a folder in the Hub layout, as timm's ``save_for_hf`` and
  ``push_to_hf_hub`` write it (``config.json`` beside ``model.safetensors`` or
  ``pytorch_model.bin``), read without network.
"""

import contextlib
import math
import os
import socket
import threading
from urllib.parse import urlparse

from ..inputs import PreprocessConfig
from ._base import Backbone
from ._checkpoint import load_state_into, read_checkpoint
from ._input_size import resize_for_input
from ._layers import layer_backbone

_HUB_FILES = ("model.safetensors", "pytorch_model.bin", "pytorch_model.pth", "model.pth")


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
    return Backbone(model, num_features=timm_width(model), preprocess=preprocess,
                    name=name)


def timm_width(model):
    """The features a module outputs as its ``num_features`` or, for timm 1.0's
    networks with a head convolution (MobileNetV3/V4, EfficientViT), its
    ``head_hidden_size`` (``num_features`` is then the width before that
    convolution); None when it says neither."""
    return getattr(model, "head_hidden_size", None) or getattr(model, "num_features", None)


def _check_local_dir(path, spec):
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f"model='timm:{spec}': {path!r} is not a folder. local-dir: names a "
            "folder in the Hugging Face Hub layout (config.json and "
            "model.safetensors or pytorch_model.bin, as timm.models.save_for_hf "
            "writes it)."
        )
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise FileNotFoundError(
            f"model='timm:{spec}': the folder {path!r} has no config.json (timm's "
            "model config, written by timm.models.save_for_hf / push_to_hf_hub)."
        )


def _creation_name(timm, spec, weights):
    """``(name for timm.create_model, source)`` for ``timm:<spec>`` and ``weights``.

    ``source`` is None for a registry name, else ``"hf-hub"`` or ``"local-dir"``.
    """
    try:
        source, model_id = timm.models.parse_model_name(spec)
    except ValueError as exc:
        raise ValueError(f"model='timm:{spec}': {exc}") from None
    is_tag = isinstance(weights, str) and weights != "DEFAULT"
    if source is not None:
        if is_tag:
            raise ValueError(
                f"model='timm:{spec}' comes with its own weights ({source}); pass "
                f"weights='DEFAULT' (those), None (random) or a checkpoint path, "
                f"not {weights!r}."
            )
        if source == "local-dir":
            _check_local_dir(model_id, spec)
        return f"{source}:{model_id}", source
    architecture, tag = timm.models.split_model_name_tag(model_id)
    if not timm.is_model(architecture):
        raise ValueError(f"timm has no model named {spec!r}.")
    if is_tag and tag:
        raise ValueError(
            f"model='timm:{spec}' names the pretrained tag {tag!r} and "
            f"weights={weights!r} another; give the tag in one place only."
        )
    return (f"{model_id}.{weights}" if is_tag else model_id), None


#: Seconds to wait for the Hub's host before treating the machine as offline.
HUB_PROBE_TIMEOUT = 3.0


def hub_endpoint():
    """``(host, port)`` of the Hugging Face Hub (``HF_ENDPOINT`` or huggingface.co)."""
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    return url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)


def hub_reachable(timeout=HUB_PROBE_TIMEOUT):
    """Whether a TCP connection to the Hub's host opens within ``timeout`` seconds."""
    try:
        with socket.create_connection(hub_endpoint(), timeout=timeout):
            return True
    except OSError:
        return False


#: Held while the Hub is switched to its cache: the switch is process-wide, so
#: builds in threads (dask's threaded scheduler, joblib threads) take turns.
_OFFLINE_LOCK = threading.RLock()


@contextlib.contextmanager
def _offline_hub():
    """Within the block, huggingface_hub answers from its local cache only (its
    documented ``HF_HUB_OFFLINE`` switch), so a missing file fails at once
    instead of after a minute of retries."""
    from huggingface_hub import constants

    with _OFFLINE_LOCK:
        saved = constants.HF_HUB_OFFLINE
        constants.HF_HUB_OFFLINE = True
        try:
            yield
        finally:
            constants.HF_HUB_OFFLINE = saved


def _hub_is_offline(source):
    """Whether the Hub cannot be reached for this model: checked only when the
    weights may come from the Hub and the user has not said ``HF_HUB_OFFLINE=1``."""
    if source == "local-dir":
        return False
    try:
        from huggingface_hub import constants
    except ImportError:  # timm without huggingface_hub: torch.hub downloads
        return False
    return not constants.HF_HUB_OFFLINE and not hub_reachable()


def _create(timm, full_name, source, pretrained):
    reads_files = pretrained or source is not None
    offline = reads_files and _hub_is_offline(source)
    try:
        with _offline_hub() if offline else contextlib.nullcontext():
            return timm.create_model(full_name, pretrained=pretrained)
    except Exception as exc:
        if not reads_files or isinstance(exc, (KeyboardInterrupt, MemoryError)):
            raise
        if source == "local-dir":
            where = (f"from the folder {full_name.partition(':')[2]!r} (expected "
                     f"config.json and one of {', '.join(_HUB_FILES)})")
        elif offline:
            host, port = hub_endpoint()
            where = (f"from timm's Hugging Face cache ($HF_HOME, by default "
                     f"~/.cache/huggingface/hub): the Hub ({host}:{port}) could not be "
                     f"reached within {HUB_PROBE_TIMEOUT:g} s and the files are not "
                     "in the cache")
        else:
            where = ("from timm's Hugging Face cache ($HF_HOME, by default "
                     "~/.cache/huggingface/hub), downloading what is missing")
        raise OSError(
            f"could not load timm's {'pretrained weights' if pretrained else 'config'} "
            f"for {full_name!r} {where} ({type(exc).__name__}: {exc}). Without "
            "network, pass weights=pathlib.Path('/path/to/checkpoint.pth') (a state "
            "dict saved from that architecture), or "
            "model='timm:local-dir:/path/to/folder'."
        ) from exc


def build_timm(spec, *, weights, layer, pooling, image_size=None, **options):
    """``timm:<spec>`` as a :class:`Backbone` (the builder contract of
    :mod:`._registry`, the spec first).

    Parameters
    ----------
    spec : str
        What follows ``timm:``: a registry name, ``<name>.<tag>``,
        ``hf-hub:<repo>`` or ``local-dir:<path>`` (see the module docstring).
    weights : "DEFAULT", str, os.PathLike or None
        ``"DEFAULT"`` loads the pretrained weights ``spec`` names (timm's default
        tag, the Hub repository's or the folder's); another string is a
        pretrained tag (``"in1k"``) of a registry name; ``None`` random; a
        checkpoint file (an ``os.PathLike``) is loaded into the randomly
        initialised model (weights at the model's native input size).
    layer : str or None
        A submodule whose output is returned instead of the features.
    pooling : str or None
        Pooling of the ``layer`` output.
    image_size : int, (height, width) or None, default=None
        Input size; a vision transformer's position embeddings are resampled to
        it (``set_input_size``) after its weights are loaded.

    Returns
    -------
    backbone : Backbone
    """
    weights_path = weights if isinstance(weights, os.PathLike) else None
    timm = import_timm(f"model='timm:{spec}'")
    if weights_path is None and weights is not None and not isinstance(weights, str):
        raise ValueError(
            f"timm:{spec} takes weights='DEFAULT', a pretrained tag such as 'in1k', a "
            f"checkpoint path (pathlib.Path) or None; got {weights!r}."
        )
    full_name, source = _creation_name(timm, spec, weights)
    pretrained = weights is not None and weights_path is None
    model = _create(timm, full_name, source, pretrained)
    if weights_path is not None:
        load_state_into(model, read_checkpoint(weights_path), source=str(weights_path))
    name = f"timm:{spec}"
    preprocess = preprocess_from_timm(model).with_image_size(image_size)
    resize_for_input(model, image_size, name)
    return finish_timm_backbone(model, layer, pooling, name, preprocess)

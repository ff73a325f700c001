"""Keeping fitted estimators: version stamps on pickles, and a safe file format.

Two ways to keep an estimator, for two levels of trust:

* ``pickle`` / ``joblib``: every estimator's state carries the version of
  sktransfer that wrote it (:func:`stamp_version`); unpickling it under another
  version warns with :class:`InconsistentVersionWarning` (:func:`check_version`),
  as scikit-learn does for its own estimators. A pickle runs code when it is
  loaded: load only the ones you trust.
* :func:`save` / :func:`load`: one `safetensors <https://huggingface.co/docs/safetensors>`_
  file whose tensors are the weights and whose metadata holds, as JSON, the
  hyper-parameters and the fitted attributes. :func:`load` never unpickles: a
  file from anyone can hold data, not code. What cannot be written as data (a
  user's module, an optimizer class, a callable) is refused at save.

The safe file
-------------
The safetensors header's ``__metadata__`` maps ``"sktransfer"`` to a JSON
document::

    {"format": "sktransfer-safe", "format_version": 1,
     "sktransfer_version": "...", "torch_version": "...", "sklearn_version": "...",
     "estimator": "FineTuneClassifier",
     "params": {...}, "fitted": {...} or null,
     "weights": "module_" or "_backbone" or null, "weights_sha256": "..."}

Values that JSON has no type for carry a one-key tag: ``{"$tuple": [...]}``,
``{"$ndarray": {"dtype": "<U3", "shape": [2], "data": [...]}}``,
``{"$scalar": ...}``, ``{"$float": "nan"}``, ``{"$dict": ...}`` /
``{"$pairs": ...}``, ``{"$path": ...}``, ``{"$device": ...}``,
``{"$weights": "ResNet50_Weights.IMAGENET1K_V2"}``, ``{"$preprocess": ...}``,
``{"$random_state": ...}``. The tensors are the state dict of the attribute
``weights`` names, under ``"<attribute>.<key>"``.
"""

import dataclasses
import hashlib
import json
import math
import os
import pathlib
import re
import warnings

import numpy as np
import sklearn
import torch
from torchvision.models import WeightsEnum, get_weight

from . import _version
from .backbones import is_rebuildable, load_backbone
from .classifiers._base import NeuralClassifierBase
from .feature_extraction import PretrainedFeatureExtractor, weights_fingerprint
from .inputs import PreprocessConfig

FORMAT_NAME = "sktransfer-safe"
FORMAT_VERSION = 1
_METADATA_KEY = "sktransfer"
_VERSION_KEY = "_sktransfer_version"  # the key stamped into pickled states
_DTYPE_PATTERN = re.compile(r"^[<>|=]?[biufUO]\d*$")
_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class InconsistentVersionWarning(UserWarning):
    """An estimator is loaded by another version of sktransfer than saved it.

    Raised when unpickling (``pickle``, ``joblib``) or loading with
    :func:`sktransfer.load`. The estimator loads, but its parameters, fitted
    attributes or weights may not mean the same thing in this version.

    Parameters
    ----------
    estimator_name : str
        Name of the estimator's class.
    current_version : str
        The sktransfer version loading it.
    original_version : str or None
        The sktransfer version that saved it; ``None`` for a pickle written
        before sktransfer recorded its version.
    """

    # Not keyword-only: an exception pickles (between processes) through its args.
    def __init__(self, estimator_name, current_version, original_version):
        super().__init__(estimator_name, current_version, original_version)
        self.estimator_name = estimator_name
        self.current_version = current_version
        self.original_version = original_version

    def __str__(self):
        saved = (f"sktransfer {self.original_version}" if self.original_version
                 else "a version of sktransfer too old to record it (version unknown)")
        return (
            f"{self.estimator_name} was saved by {saved} and is loaded by sktransfer "
            f"{self.current_version}. Its parameters, fitted attributes or weights "
            "may not mean the same thing in this version: check its predictions, or "
            "refit it with this version and save it again."
        )


# -- pickles: a version stamp ---------------------------------------------------
def stamp_version(state):
    """``state`` (an estimator's pickled ``__dict__``) with sktransfer's version."""
    state[_VERSION_KEY] = _version.__version__
    return state


def check_version(estimator, state):
    """Take the version stamp out of a pickled ``state``; warn when it is not ours."""
    original = state.pop(_VERSION_KEY, None)
    _warn_if_other_version(type(estimator), original)
    return state


def _warn_if_other_version(cls, original):
    if original != _version.__version__:
        warnings.warn(
            InconsistentVersionWarning(
                estimator_name=cls.__name__,
                current_version=_version.__version__,
                original_version=original,
            ),
            stacklevel=4,  # the caller of pickle.loads / joblib.load / sktransfer.load
        )


# -- the safe format: which estimators, and where their weights are ------------
def _safe_classes():
    """sktransfer's own estimators, by class name: the only classes a file may name."""
    found, todo = {}, [PretrainedFeatureExtractor, NeuralClassifierBase]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls is not NeuralClassifierBase and cls.__module__.startswith("sktransfer."):
            found[cls.__name__] = cls
    return found


def _weights_attribute(estimator):
    """The attribute holding the estimator's network, and the module to store
    (None when there is none, or when named weights or a seed rebuild it)."""
    if isinstance(estimator, NeuralClassifierBase):
        module = vars(estimator).get("module_")
        return "module_", module
    backbone = vars(estimator).get("_backbone")
    if backbone is not None and is_rebuildable(
        estimator.model, estimator.weights, getattr(estimator, "_seed_", None)
    ):
        backbone = None  # named weights or a seeded initialisation: rebuilt on use
    return "_backbone", backbone


def _restore_weights(estimator, attribute, tensors, source):
    if attribute == "module_":
        # The architecture alone (weights=None), as unpickling does.
        module = estimator._build_network(weights=None, seed=0)
    else:
        module = load_backbone(estimator.model, None, layer=estimator.layer,
                               pooling=estimator.pooling, random_state=0)
        for parameter in module.parameters():
            parameter.requires_grad_(False)
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise ValueError(
            f"{source}: its weights do not fit the network that its parameters "
            f"build in this version of sktransfer: {exc}"
        ) from exc
    module.eval()
    if attribute == "_backbone" and (
        weights_fingerprint(module) != getattr(estimator, "_weights_fingerprint", None)
    ):
        raise ValueError(f"{source}: its weights are not those the extractor was "
                         "fitted with (the file is inconsistent).")
    setattr(estimator, attribute, module)


# -- values <-> JSON --------------------------------------------------------------
class _Unsafe(Exception):
    """A value the safe format cannot hold as data."""


def _encode(value):
    if value is None or type(value) in (bool, int, str):
        return value
    if type(value) is float:
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, np.generic):
        _check_dtype(value.dtype)
        return {"$scalar": {"dtype": value.dtype.str, "value": _encode(value.item())}}
    if isinstance(value, np.ndarray):
        return {"$ndarray": _encode_array(value)}
    if type(value) is list:
        return [_encode(v) for v in value]
    if type(value) is tuple:
        return {"$tuple": [_encode(v) for v in value]}
    if type(value) is dict:
        if all(type(k) is str for k in value):
            return {"$dict": {k: _encode(v) for k, v in value.items()}}
        return {"$pairs": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if isinstance(value, WeightsEnum):
        return {"$weights": f"{type(value).__name__}.{value.name}"}
    if isinstance(value, os.PathLike):
        return {"$path": os.fspath(value)}
    if isinstance(value, torch.device):
        return {"$device": str(value)}
    if type(value) is PreprocessConfig:
        return {"$preprocess": {f.name: _encode(getattr(value, f.name))
                                for f in dataclasses.fields(value)}}
    if type(value) is np.random.RandomState:
        return {"$random_state": _encode(value.get_state(legacy=True))}
    raise _Unsafe(value)


def _check_dtype(dtype):
    if not _DTYPE_PATTERN.match(dtype.str):
        raise _Unsafe(f"an array of dtype {dtype}")


def _encode_array(array):
    _check_dtype(array.dtype)
    flat = array.ravel()
    if array.dtype.kind == "O":
        items = []
        for item in flat:
            if not (item is None or type(item) in (bool, int, float, str)
                    or isinstance(item, np.generic)):
                raise _Unsafe(item)
            items.append(_encode(item))
    elif array.dtype.kind == "f":
        items = [v if math.isfinite(v) else repr(v) for v in flat.tolist()]
    else:
        items = flat.tolist()
    return {"dtype": array.dtype.str, "shape": list(array.shape), "data": items}


def _decode(value):
    if value is None or type(value) in (bool, int, float, str):
        return value
    if type(value) is list:
        return [_decode(v) for v in value]
    if type(value) is not dict or len(value) != 1:
        raise ValueError(f"unexpected value {value!r:.80}")
    (tag, content), = value.items()
    decoder = _DECODERS.get(tag)
    if decoder is None:
        raise ValueError(f"unknown value tag {tag!r}")
    return decoder(content)


def _decode_float(text):
    if text not in _NON_FINITE:
        raise ValueError(f"{text!r} is not a non-finite float")
    return _NON_FINITE[text]


def _decode_dtype(text):
    if type(text) is not str or not _DTYPE_PATTERN.match(text):
        raise ValueError(f"dtype {text!r} is not one the safe format stores")
    return np.dtype(text)


def _decode_scalar(content):
    dtype = _decode_dtype(content["dtype"])
    return dtype.type(_decode(content["value"]))


def _decode_array(content):
    dtype = _decode_dtype(content["dtype"])
    shape = tuple(int(n) for n in content["shape"])
    data = content["data"]
    if type(data) is not list or len(data) != int(np.prod(shape, dtype=np.int64)):
        raise ValueError(f"array data do not fill its shape {shape}")
    if dtype.kind == "O":
        array = np.empty(len(data), dtype=object)
        array[:] = [_decode(v) for v in data]
    elif dtype.kind == "f":
        array = np.array([float(_NON_FINITE.get(v, v)) for v in data], dtype=dtype)
    else:
        array = np.array(data, dtype=dtype)
    return array.reshape(shape)


def _decode_preprocess(content):
    names = {f.name for f in dataclasses.fields(PreprocessConfig)}
    if type(content) is not dict or not set(content) <= names:
        raise ValueError(f"unexpected preprocessing fields {content!r:.80}")
    return PreprocessConfig(**{k: _decode(v) for k, v in content.items()})


def _decode_weights(name):
    return get_weight(str(name))  # a lookup among torchvision's weights enums


def _decode_random_state(content):
    random_state = np.random.RandomState()
    random_state.set_state(_decode(content))
    return random_state


_DECODERS = {
    "$float": _decode_float,
    "$scalar": _decode_scalar,
    "$ndarray": _decode_array,
    "$tuple": lambda items: tuple(_decode(v) for v in items),
    "$dict": lambda items: {str(k): _decode(v) for k, v in items.items()},
    "$pairs": lambda pairs: {_decode(k): _decode(v) for k, v in pairs},
    "$weights": _decode_weights,
    "$path": lambda text: pathlib.Path(str(text)),
    "$device": lambda text: torch.device(str(text)),
    "$preprocess": _decode_preprocess,
    "$random_state": _decode_random_state,
}


def _refusal(estimator, what, value):
    if isinstance(value, torch.nn.Module):
        shown, why = f"a {type(value).__name__} module", "its architecture is Python code"
    elif isinstance(value, type):
        shown, why = f"the class {value.__module__}.{value.__qualname__}", "a class is code"
    elif callable(value):
        name = getattr(value, "__qualname__", type(value).__qualname__)
        shown, why = f"the callable {name}", "a function is code"
    else:
        shown, why = f"{type(value).__name__} {str(value)[:60]!r}", "not a plain value"
    return ValueError(
        f"cannot save {type(estimator).__name__} in the safe format: {what} is {shown} "
        f"({why}), and a safe file holds data only: numbers, strings, arrays, lists, "
        "tuples, dicts, paths, devices, torchvision weights names and tensors. Save "
        "this estimator with joblib.dump instead, and load that file only from a "
        "source you trust."
    )


def _digest(tensors):
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name]
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


# -- save / load -----------------------------------------------------------------
def save(estimator, path):
    """Save an estimator to a file that :func:`load` reads without unpickling.

    The file is a safetensors file: the weights are its tensors, the
    hyper-parameters and fitted attributes are JSON in its metadata, with the
    format name, the format version and the sktransfer version. Weights that
    named weights or a seed rebuild (a :class:`PretrainedFeatureExtractor` with
    ``weights="DEFAULT"``) are not stored: they are reloaded and checked on first
    use, as after unpickling.

    Parameters
    ----------
    estimator : PretrainedFeatureExtractor, FineTuneClassifier or another of
        sktransfer's classifiers, fitted or not.
    path : str, path-like or binary file object
        Where to write. A ``.safetensors`` suffix lets other safetensors tools
        recognise it.

    Raises
    ------
    TypeError
        When ``estimator`` is not one of sktransfer's estimators.
    ValueError
        When a parameter or fitted attribute cannot be written as data: a user
        ``nn.Module`` as ``model``, an optimizer class, a callable ``augment``.
        Such an estimator pickles with ``joblib.dump``.

    See Also
    --------
    load : Read the file back.

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> import sktransfer
    >>> X = np.random.default_rng(0).normal(size=(40, 4))
    >>> y = np.where(X[:, 0] > 0, "yes", "no")
    >>> clf = sktransfer.FineTuneClassifier(model=None, epochs=2, device="cpu",
    ...                                     random_state=0).fit(X, y)
    >>> file = io.BytesIO()  # or a path: sktransfer.save(clf, "clf.safetensors")
    >>> sktransfer.save(clf, file)
    >>> loaded = sktransfer.load(io.BytesIO(file.getvalue()))
    >>> loaded.classes_
    array(['no', 'yes'], dtype='<U3')
    >>> bool((loaded.predict_proba(X) == clf.predict_proba(X)).all())
    True
    """
    from safetensors.torch import save as safetensors_bytes

    classes = _safe_classes()
    name = type(estimator).__name__
    if classes.get(name) is not type(estimator):
        raise TypeError(
            f"sktransfer.save writes sktransfer's own estimators "
            f"({', '.join(sorted(classes))}); {type(estimator).__module__}."
            f"{type(estimator).__qualname__} is not one of them. Save it with "
            "joblib.dump instead."
        )
    params = estimator.get_params(deep=False)
    encoded_params = {}
    for key, value in params.items():
        try:
            encoded_params[key] = _encode(value)
        except _Unsafe:
            raise _refusal(estimator, f"parameter {key}", value) from None

    attribute, module = _weights_attribute(estimator)
    fitted = {}
    for key, value in vars(estimator).items():
        if key in params or key == attribute:
            continue
        try:
            fitted[key] = _encode(value)
        except _Unsafe:
            raise _refusal(estimator, f"fitted attribute {key}", value) from None

    tensors = {}
    if module is not None:
        tensors = {f"{attribute}.{k}": v.detach().to("cpu", copy=True).contiguous()
                   for k, v in module.state_dict().items()}
    document = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "sktransfer_version": _version.__version__,
        "torch_version": torch.__version__,
        "sklearn_version": sklearn.__version__,
        "estimator": name,
        "params": encoded_params,
        "fitted": fitted or None,
        "weights": attribute if module is not None else None,
        "weights_sha256": _digest(tensors),
    }
    text = json.dumps(document, allow_nan=False)
    data = safetensors_bytes(tensors, metadata={_METADATA_KEY: text})
    if hasattr(path, "write"):
        path.write(data)
    else:
        with open(os.fspath(path), "wb") as file:
            file.write(data)


def load(path):
    """Load an estimator that :func:`save` wrote; never unpickles.

    Parameters
    ----------
    path : str, path-like or binary file object

    Returns
    -------
    estimator : PretrainedFeatureExtractor, FineTuneClassifier, ...
        On the CPU: its ``device`` parameter is kept, and it moves there at
        the next ``predict`` or ``transform``; ``set_params(device="cpu")`` runs
        a model saved with ``device="cuda"`` on a machine without a GPU.

    Raises
    ------
    ValueError
        When the file is not an sktransfer safe file (a pickle, a joblib file, a
        plain checkpoint), is truncated or damaged, comes from a newer format
        version, or names an estimator or parameter this version lacks.

    Warns
    -----
    InconsistentVersionWarning
        When another version of sktransfer saved it.

    See Also
    --------
    save : Write the file.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as safetensors_tensors

    if hasattr(path, "read"):
        source = repr(getattr(path, "name", "the file object"))
        data = path.read()
    else:
        source = repr(os.fspath(path))
        with open(os.fspath(path), "rb") as file:
            data = file.read()
    document = _read_document(data, source)

    try:
        tensors = safetensors_tensors(data)
    except SafetensorError as exc:
        raise ValueError(f"{source} is a damaged sktransfer safe file (truncated or "
                         f"corrupted): {exc}") from exc
    if _digest(tensors) != document.get("weights_sha256"):
        raise ValueError(f"{source} is a damaged sktransfer safe file: its weights do "
                         "not match the checksum they were saved with.")

    try:
        return _build(document, tensors, source)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{source} is a damaged sktransfer safe file: "
                         f"{type(exc).__name__}: {exc}") from exc


def _read_document(data, source):
    """The JSON document of a safe file, its format checked; nothing else is read."""
    not_ours = (f"{source} is not an sktransfer safe file (one that sktransfer.save "
                "writes)")
    if len(data) < 8:
        raise ValueError(f"{not_ours}: it is too short.")
    size = int.from_bytes(data[:8], "little")
    if size > len(data) - 8:
        raise ValueError(f"{not_ours}, or is a truncated one: its first 8 bytes do "
                         "not give the size of a header that the file holds. "
                         "sktransfer.load never unpickles; a pickle or joblib file "
                         "loads with joblib.load, from a source you trust.")
    try:
        header = json.loads(data[8:8 + size].decode("utf-8"))
        text = header["__metadata__"][_METADATA_KEY]
        document = json.loads(text)
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{not_ours}: it has no sktransfer metadata "
                         f"({type(exc).__name__}: {exc}).") from None
    if type(document) is not dict or document.get("format") != FORMAT_NAME:
        raise ValueError(f"{not_ours}: its metadata do not name the format "
                         f"{FORMAT_NAME!r}.")
    version = document.get("format_version")
    if type(version) is not int or version < 1:
        raise ValueError(f"{source} is a damaged sktransfer safe file: format version "
                         f"{version!r}.")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{source} was written in version {version} of the sktransfer safe format "
            f"(by sktransfer {document.get('sktransfer_version')}); this sktransfer "
            f"({_version.__version__}) reads up to version {FORMAT_VERSION}. Upgrade "
            "sktransfer to load it."
        )
    return document


def _read_value(value, what, source):
    try:
        return _decode(value)
    except (ValueError, TypeError, KeyError, AttributeError, RuntimeError) as exc:
        raise ValueError(f"{source}: the {what} cannot be read ({type(exc).__name__}: "
                         f"{exc}); the file is damaged or from a newer sktransfer.") from None


def _build(document, tensors, source):
    name = document["estimator"]
    cls = _safe_classes().get(name)
    if cls is None:
        raise ValueError(f"{source} holds a {name!r}, which is not an estimator of "
                         f"this version of sktransfer ({_version.__version__}).")
    known = set(cls().get_params(deep=False))
    params = {}
    for key, value in document["params"].items():
        if key not in known:
            raise ValueError(f"{source}: {name} of this version of sktransfer has no "
                             f"parameter {key!r}.")
        params[key] = _read_value(value, f"parameter {key}", source)
    # Warn once the file is known to be readable, as unpickling does.
    _warn_if_other_version(cls, document.get("sktransfer_version"))
    estimator = cls(**params)

    network, _ = _weights_attribute(estimator)
    for key, value in (document["fitted"] or {}).items():
        if (not _NAME_PATTERN.match(key) or key.startswith("__") or key in known
                or key == network or hasattr(cls, key)):
            raise ValueError(f"{source}: {key!r} is not a fitted attribute name.")
        setattr(estimator, key, _read_value(value, f"fitted attribute {key}", source))

    attribute = document["weights"]
    if attribute is None:
        if tensors:
            raise ValueError(f"{source}: it holds tensors but names no network.")
        return estimator
    if attribute != network:
        raise ValueError(f"{source}: its weights belong to {attribute!r}, which a "
                         f"{name} does not have.")
    prefix = f"{attribute}."
    if not all(k.startswith(prefix) for k in tensors):
        raise ValueError(f"{source}: tensors outside {attribute!r}.")
    _restore_weights(estimator, attribute,
                     {k[len(prefix):]: v for k, v in tensors.items()}, source)
    return estimator


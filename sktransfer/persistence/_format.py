"""The safe file format: :func:`save` and :func:`load`.

Two ways to keep an estimator, for two levels of trust:

* ``pickle`` / ``joblib``: every estimator's state carries the version of
  sktransfer that wrote it (:mod:`sktransfer._versioning`); unpickling it under
  another version warns with :class:`InconsistentVersionWarning`, as
  scikit-learn does for its own estimators. A pickle runs code when it is
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

    {"format": "sktransfer-safe", "format_version": 2,
     "sktransfer_version": "...", "torch_version": "...", "sklearn_version": "...",
     "estimator": "FineTuneClassifier",
     "params": {...}, "fitted": {...} or null,
     "weights": "module_" or "_backbone" or null, "weights_sha256": "...",
     "document_sha256": "..."}

``document_sha256`` (format version 2) is the SHA-256 of the canonical JSON
(``json.dumps(..., sort_keys=True, separators=(",", ":"), allow_nan=False)``,
ASCII) of the document without that key; with ``weights_sha256`` inside, it
covers the whole file. Version 1 (sktransfer before this check) had no
``document_sha256``; such files still load.

Values that JSON has no type for carry a one-key tag: ``{"$tuple": [...]}``,
``{"$ndarray": {"dtype": "<U3", "shape": [2], "data": [...]}}``,
``{"$scalar": ...}``, ``{"$float": "nan"}``, ``{"$dict": ...}`` /
``{"$pairs": ...}``, ``{"$path": ...}``, ``{"$device": ...}``,
``{"$weights": "ResNet50_Weights.IMAGENET1K_V2"}``, ``{"$preprocess": ...}``,
``{"$random_state": ...}``. The tensors are the state dict of the attribute
``weights`` names, under ``"<attribute>.<key>"``.
"""

import hashlib
import json
import os
import re
import warnings

import sklearn
import torch

from .. import _version
from .._hashing import tensors_checksum
from .._versioning import warn_if_other_version
from ..classifiers import DomainAdaptClassifier, FineTuneClassifier
from ..feature_extraction import PretrainedFeatureExtractor
from ._codec import Budget, Unsafe, decode, encode

FORMAT_NAME = "sktransfer-safe"
FORMAT_VERSION = 2
#: The document key of the checksum of the document itself (format version 2).
_CHECKSUM_KEY = "document_sha256"
#: What the arrays of one file may allocate: a constant plus a multiple of the
#: file's size (a JSON item takes at least 2 bytes; an array item at most 8,
#: a str item 4 per character).
_BUDGET_BASE, _BUDGET_PER_BYTE = 4 << 20, 64
_METADATA_KEY = "sktransfer"
_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

#: The only classes a safe file may name. Each exposes the persistence protocol:
#: ``__sktransfer_state__()`` -> ``(fitted, network, tensors)`` (what to store)
#: and ``__sktransfer_restore__(fitted, tensors)`` (how to rebuild).
SAFE_CLASSES = {cls.__name__: cls for cls in (
    DomainAdaptClassifier, FineTuneClassifier, PretrainedFeatureExtractor)}


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

    classes = SAFE_CLASSES
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
            encoded_params[key] = encode(value)
        except Unsafe:
            raise _refusal(estimator, f"parameter {key}", value) from None

    attribute = estimator.__sktransfer_network__
    state, network = estimator.__sktransfer_state__()
    fitted = {}
    for key, value in state.items():
        try:
            fitted[key] = encode(value)
        except Unsafe:
            raise _refusal(estimator, f"fitted attribute {key}", value) from None

    tensors = {f"{attribute}.{k}": v.detach().to("cpu", copy=True).contiguous()
               for k, v in network.items()}
    document = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "sktransfer_version": _version.__version__,
        "torch_version": torch.__version__,
        "sklearn_version": sklearn.__version__,
        "estimator": name,
        "params": encoded_params,
        "fitted": fitted or None,
        "weights": attribute if tensors else None,
        "weights_sha256": tensors_checksum(tensors),
    }
    document[_CHECKSUM_KEY] = _document_checksum(document)
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
        plain checkpoint), is truncated or damaged (the weights and the JSON
        document each have a SHA-256), comes from a newer format version, names
        an estimator or parameter this version lacks, declares arrays larger
        than the file justifies or values nested too deeply, or holds parameters
        that ``fit`` would refuse. No other exception is raised for a bad file.

    Warns
    -----
    InconsistentVersionWarning
        When another version of sktransfer saved it.
    UserWarning
        When the file sets ``cache`` to a folder: the loaded extractor has
        ``cache=None`` (a safe file does not make it write or read files); set
        the cache with ``set_params`` after loading.

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
    budget = Budget(_BUDGET_BASE + _BUDGET_PER_BYTE * len(data))

    try:
        tensors = safetensors_tensors(data)
    except SafetensorError as exc:
        raise ValueError(f"{source} is a damaged sktransfer safe file (truncated or "
                         f"corrupted): {exc}") from exc
    if tensors_checksum(tensors) != document.get("weights_sha256"):
        raise ValueError(f"{source} is a damaged sktransfer safe file: its weights do "
                         "not match the checksum they were saved with.")

    try:
        return _build(document, tensors, source, budget)
    except (KeyError, TypeError, AttributeError, IndexError, OverflowError,
            RecursionError) as exc:
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
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, RecursionError) as exc:
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
    damaged = f"{source} is a damaged sktransfer safe file"
    stored = document.get(_CHECKSUM_KEY)
    if version == 1:  # written before the document had a checksum
        if _CHECKSUM_KEY in document:
            raise ValueError(f"{damaged}: a version 1 document has no {_CHECKSUM_KEY}.")
        return document
    if type(stored) is not str:
        raise ValueError(f"{damaged}: its document has no checksum ({_CHECKSUM_KEY}).")
    try:
        expected = _document_checksum(document)
    except (ValueError, TypeError, RecursionError) as exc:
        raise ValueError(f"{damaged}: its document cannot be checked "
                         f"({type(exc).__name__}: {exc}).") from None
    if stored != expected:
        raise ValueError(f"{damaged}: its document (parameters and fitted attributes) "
                         "does not match the checksum it was saved with.")
    return document


def _document_checksum(document):
    """The SHA-256 (hex) of the canonical JSON of ``document`` but its checksum."""
    body = {k: v for k, v in document.items() if k != _CHECKSUM_KEY}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _read_value(value, what, source, budget):
    try:
        return decode(value, budget)
    except (ValueError, TypeError, KeyError, AttributeError, RuntimeError, IndexError,
            OverflowError) as exc:
        raise ValueError(f"{source}: the {what} cannot be read ({type(exc).__name__}: "
                         f"{exc}); the file is damaged or from a newer sktransfer.") from None


def _build(document, tensors, source, budget):
    name = document["estimator"]
    cls = SAFE_CLASSES.get(name)
    if cls is None:
        raise ValueError(f"{source} holds a {name!r}, which is not an estimator of "
                         f"this version of sktransfer ({_version.__version__}).")
    known = set(cls().get_params(deep=False))
    params = {}
    for key, value in document["params"].items():
        if key not in known:
            raise ValueError(f"{source}: {name} of this version of sktransfer has no "
                             f"parameter {key!r}.")
        params[key] = _read_value(value, f"parameter {key}", source, budget)
    _check_side_effects(cls, params, source)
    # Warn once the file is known to be readable, as unpickling does.
    warn_if_other_version(cls, document.get("sktransfer_version"))
    estimator = cls(**params)

    network = cls.__sktransfer_network__
    fitted = {}
    for key, value in (document["fitted"] or {}).items():
        if (not _NAME_PATTERN.match(key) or key.startswith("__") or key in known
                or key == network or hasattr(cls, key)):
            raise ValueError(f"{source}: {key!r} is not a fitted attribute name.")
        fitted[key] = _read_value(value, f"fitted attribute {key}", source, budget)
    attribute = document["weights"]
    if attribute is None and tensors:
        raise ValueError(f"{source}: it holds tensors but names no network.")
    if attribute is not None and attribute != network:
        raise ValueError(f"{source}: its weights belong to {attribute!r}, which a "
                         f"{name} does not have.")
    prefix = f"{attribute}."
    if not all(k.startswith(prefix) for k in tensors):
        raise ValueError(f"{source}: tensors outside {attribute!r}.")
    try:
        return estimator.__sktransfer_restore__(
            fitted, {k[len(prefix):]: v for k, v in tensors.items()})
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from exc


def _check_side_effects(cls, params, source):
    """Refuse or neutralise parameters that would make the loaded estimator act
    on its own beyond computing: write or read files, call objects."""
    callbacks = params.get("callbacks")
    if callbacks is not None and callbacks != [] and callbacks != ():
        # Callback objects are code: save refuses them, so no honest file has any.
        raise ValueError(f"{source}: callbacks={callbacks!r:.80} in a safe file; "
                         "callbacks are objects, which the safe format does not hold "
                         "(set them with set_params after loading).")
    cache = params.get("cache")
    if isinstance(cache, (str, os.PathLike)):
        params["cache"] = None
        warnings.warn(
            f"{source} sets cache={cache!r:.200}, a folder on disk. A safe file does "
            "not make the estimator it loads write or read files of its own: the "
            f"loaded {cls.__name__} has cache=None. Call set_params(cache=...) "
            "after loading to use that cache.", UserWarning, stacklevel=4)


"""The safe file format: :func:`save` and :func:`load`.

Two ways to keep an estimator, for two levels of trust:

* ``pickle`` / ``joblib``: every estimator's state carries the version of
  sktransfer that wrote it (:mod:`sktransfer._utils.versioning`); unpickling it under
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

A scikit-learn ``Pipeline`` has ``"estimator": "Pipeline"`` and a list of
``"steps"``, each an estimator's record as above or a scikit-learn estimator
written by skops (see :mod:`._pipeline`); the format version is the same.
"""

import hashlib
import json
import os
import stat
from typing import BinaryIO

import sklearn
from sklearn.base import BaseEstimator
import torch

from .. import _version
from .._utils.files import write_atomic
from .._utils.hashing import tensors_checksum
from .._utils.hints import PathLike
from . import _pipeline
from ._codec import Budget
from ._limits import MAX_HEADER_BYTES
from ._records import build as build_estimator, record as estimator_record

#: The ``format`` a safe file's header names: what :func:`sktransfer.persistence.read_header`
#: checks before anything else is read.
FORMAT_NAME = "sktransfer-safe"
#: The version of the safe format this sktransfer writes (it reads this one and
#: the earlier ones).
FORMAT_VERSION = 2
#: The document key of the checksum of the document itself (format version 2).
_CHECKSUM_KEY = "document_sha256"
#: What the arrays of one file may allocate: a constant plus a multiple of the
#: file's size (a JSON item takes at least 2 bytes; an array item at most 8,
#: a str item 4 per character).
_BUDGET_BASE, _BUDGET_PER_BYTE = 4 << 20, 64
_METADATA_KEY = "sktransfer"


def save(estimator: BaseEstimator, path: PathLike | BinaryIO) -> None:
    """Save an estimator to a file that :func:`load` reads without unpickling.

    The file is a safetensors file: the weights are its tensors, the
    hyper-parameters and fitted attributes are JSON in its metadata, with the
    format name, the format version and the sktransfer version. Weights that
    named weights or a seed rebuild (a :class:`PretrainedFeatureExtractor` with
    ``weights="DEFAULT"``) are not stored: they are reloaded and checked on first
    use, as after unpickling.

    A scikit-learn :class:`~sklearn.pipeline.Pipeline` is saved with its steps:
    sktransfer's estimators as above, scikit-learn's (a ``StandardScaler``, a
    ``LogisticRegression``) through :func:`skops.io.dumps`, which writes data,
    not a pickle (``pip install "sktransfer[pipeline]"``).

    Parameters
    ----------
    estimator : PretrainedFeatureExtractor, FineTuneClassifier or another of
        sktransfer's classifiers, or a Pipeline of them and of scikit-learn
        estimators; fitted or not.
    path : str, path-like or binary file object
        Where to write. A ``.safetensors`` suffix lets other safetensors tools
        recognise it.

    Raises
    ------
    TypeError
        When ``estimator`` is not one of sktransfer's estimators or a Pipeline.
    ValueError
        When a parameter or fitted attribute cannot be written as data: a user
        ``nn.Module`` as ``model``, an optimizer class, a callable ``augment``;
        for a Pipeline, also a nested Pipeline, a ``joblib.Memory`` as
        ``memory``, or a step holding a type that :func:`load` would not trust
        (a decision tree, a class of your own; see
        :data:`sktransfer.persistence.TRUSTED_TYPES`). Such an estimator
        pickles with ``joblib.dump``.
    ImportError
        When a Pipeline has scikit-learn steps and skops is not installed.

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

    if type(estimator) is _pipeline.Pipeline:
        entry, tensors = _pipeline.pipeline_record(estimator)
    else:
        entry, tensors = estimator_record(estimator)
    document = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "sktransfer_version": _version.__version__,
        "torch_version": torch.__version__,
        "sklearn_version": sklearn.__version__,
        **entry,
        "weights_sha256": tensors_checksum(tensors),
    }
    document[_CHECKSUM_KEY] = _document_checksum(document)
    text = json.dumps(document, allow_nan=False)
    data = safetensors_bytes(tensors, metadata={_METADATA_KEY: text})
    if hasattr(path, "write"):
        path.write(data)
    else:  # a file saved there before stays whole until the new one is
        write_atomic(path, data, durable=True)


def _open_regular_file(path, source):
    """``path`` opened for reading in binary; a device (``/dev/zero``), a named
    pipe or a folder is refused before anything is read (reading would not end,
    or would wait for a writer)."""
    # O_NONBLOCK: opening a named pipe does not wait for a writer
    fd = os.open(os.fspath(path), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
                 | getattr(os, "O_BINARY", 0))
    try:
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
    except BaseException:
        os.close(fd)
        raise
    if not regular:
        os.close(fd)
        raise ValueError(f"{source} is not a regular file: a safe file is read "
                         "from a file on a disk (or a file object).")
    return os.fdopen(fd, "rb")


def load(path: PathLike | BinaryIO) -> BaseEstimator:
    """Load an estimator that :func:`save` wrote; never unpickles.

    Parameters
    ----------
    path : str, path-like or binary file object

    Returns
    -------
    estimator : PretrainedFeatureExtractor, FineTuneClassifier, ..., Pipeline
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
        that ``fit`` would refuse; for a Pipeline, when a scikit-learn step holds
        a type outside skops's trusted defaults and
        :data:`sktransfer.persistence.TRUSTED_TYPES` (checked before anything
        of the step is built). No other exception is raised for a bad file.
    ImportError
        When the file holds a Pipeline with scikit-learn steps and skops is not
        installed.

    Warns
    -----
    InconsistentVersionWarning
        When another version of sktransfer saved it.
    UserWarning
        When the file sets ``cache`` to a folder: the loaded extractor has
        ``cache=None`` (a safe file does not make it write or read files); set
        the cache with ``set_params`` after loading; the same for a Pipeline's
        ``memory`` (the loaded one has ``memory=None``).

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
        with _open_regular_file(path, source) as file:
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

    rebuild = (_pipeline.build_pipeline if document.get("estimator") == "Pipeline"
               else build_estimator)
    try:
        return rebuild(document, tensors, source, budget)
    except (KeyError, TypeError, AttributeError, IndexError, OverflowError,
            RecursionError) as exc:
        raise ValueError(f"{source} is a damaged sktransfer safe file: "
                         f"{type(exc).__name__}: {exc}") from exc


def read_header(path: PathLike) -> tuple[dict, dict]:
    """What a safe file says about itself, from its header alone: no tensor is
    read, nothing is unpickled, no estimator is built.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    document : dict
        The JSON document :func:`save` wrote (format, versions, ``estimator``,
        and the parameters and fitted attributes as the format encodes them),
        its checksum verified.
    tensors : dict
        ``name -> (dtype, shape)`` of the tensors the file holds.

    Raises
    ------
    ValueError
        When the file is not an sktransfer safe file, or its document is damaged.
    """
    source = repr(os.fspath(path))
    with _open_regular_file(path, source) as file:
        prefix = file.read(8)
        size = int.from_bytes(prefix, "little") if len(prefix) == 8 else 0
        if size > min(os.fstat(file.fileno()).st_size - 8, MAX_HEADER_BYTES):
            _read_document(prefix, source)  # raises: says what is wrong, reads no more
        data = prefix + file.read(size)
    document = _read_document(data, source)
    header = json.loads(data[8:].decode("utf-8"))
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if (type(entry.get("dtype") if shape is not None else None) is not str
                or type(shape) is not list
                or not all(type(n) is int and n >= 0 for n in shape)):
            raise ValueError(f"{source} is a damaged sktransfer safe file: the header "
                             f"entry of tensor {name!r:.80} is not a dtype and a shape.")
        tensors[name] = (entry["dtype"], tuple(shape))
    return document, tensors


def _read_document(data, source):
    """The JSON document of a safe file, its format checked; nothing else is read."""
    not_ours = (f"{source} is not an sktransfer safe file (one that sktransfer.save "
                "writes)")
    if len(data) < 8:
        raise ValueError(f"{not_ours}: it is too short.")
    size = int.from_bytes(data[:8], "little")
    if size > min(len(data) - 8, MAX_HEADER_BYTES):
        raise ValueError(f"{not_ours}, or is a truncated one: its first 8 bytes do "
                         "not give the size of a header that the file holds (at most "
                         f"{MAX_HEADER_BYTES} bytes, safetensors' bound). "
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



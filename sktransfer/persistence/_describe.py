"""What a safe file holds, from its header alone: :func:`describe`.

It sits beside the format it reads, as skops's ``visualize`` sits beside
skops's: the values are decoded by the same decoder that :func:`load` uses
(:mod:`._codec`), within the same byte budget, and nothing else is read: no
tensor, no estimator, no backbone, no network, no other file.
"""

import math
import os
from dataclasses import dataclass, field

from .._utils.hints import PathLike
from ._codec import Budget, decode
from ._format import _BUDGET_BASE, _BUDGET_PER_BYTE, _open_regular_file, read_header
from ._limits import problems as limit_problems
from ._records import SAFE_CLASSES

#: Bytes per item of the safetensors dtypes.
_DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2,
                "U16": 2, "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8,
                "U64": 8, "F64": 8}
#: The document keys this version reads; any other is listed in ``other``.
_KNOWN_KEYS = {"format", "format_version", "sktransfer_version", "torch_version",
               "sklearn_version", "skops_version", "estimator", "params", "fitted",
               "weights", "weights_sha256", "document_sha256", "steps"}
_VERSION_KEYS = {"sktransfer": "sktransfer_version", "torch": "torch_version",
                 "scikit-learn": "sklearn_version", "skops": "skops_version"}


class Unreadable:
    """A value of a file that does not decode (a damaged or crafted file, whose
    checksum its author recomputed); ``load`` refuses such a file. Its repr
    says why."""

    __slots__ = ("reason",)

    def __init__(self, reason):
        self.reason = reason

    def __repr__(self):
        return f"<unreadable: {self.reason}>"

    def __eq__(self, other):
        return type(other) is Unreadable and other.reason == self.reason

    def __hash__(self):
        return hash(self.reason)


@dataclass(frozen=True)
class EstimatorDescription:
    """One estimator of a safe file: the file's own, or a step of its Pipeline.

    Attributes
    ----------
    estimator : str
        The class the file names: ``"FineTuneClassifier"``, ``"Pipeline"``, the
        full name of a scikit-learn step's class
        (``"sklearn.linear_model._logistic.LogisticRegression"``), or
        ``"passthrough"`` / ``"None"`` for such a step.
    library : {"sktransfer", "scikit-learn"} or None
        Whose estimator it is; None for a passthrough step or one that does not
        decode.
    fitted : bool or None
        Whether it was saved fitted; None where the header does not say (a
        scikit-learn step keeps its state inside its skops bytes).
    params : dict
        Its parameters, decoded (a value that does not decode is an
        :class:`Unreadable`).
    attributes : dict
        Its fitted attributes but the network, decoded likewise.
    tensors : dict
        ``name -> (dtype, shape)`` of its tensors, named as in the file without
        a step's ``"<step name>."`` prefix.
    steps : tuple of (str, EstimatorDescription)
        A Pipeline's steps, in order; empty for any other estimator.
    problems : tuple of str
        What :func:`load` would refuse in it, as far as the header tells:
        a backbone that builds from files outside the safe file, sizes beyond
        the bounds that ``docs/persistence.md`` gives, a class that this
        version does not have. Not every check of ``load``: the weights are
        compared with the network only when it is built, and the values of the
        parameters and of the fitted attributes (``classes_``, a regressor's
        ``mean_`` and ``scale_``) are checked only by the estimator ``load``
        builds.
    """

    estimator: str
    library: str | None
    fitted: bool | None
    params: dict = field(default_factory=dict)
    attributes: dict = field(default_factory=dict)
    tensors: dict = field(default_factory=dict)
    steps: tuple = ()
    problems: tuple = ()


@dataclass(frozen=True)
class FileDescription:
    """What :func:`describe` read from a safe file's header.

    Attributes
    ----------
    path : str
    size_bytes : int
        The size of the file.
    format : str
        ``"sktransfer-safe"``.
    format_version : int
    versions : dict
        ``{"sktransfer": ..., "torch": ..., "scikit-learn": ...}`` (and
        ``"skops"`` for a Pipeline with scikit-learn steps): the versions that
        saved the file, as it states them.
    estimator : EstimatorDescription
        The estimator the file holds, with its steps if it is a Pipeline.
    tensors : dict
        ``name -> (dtype, shape)`` of every tensor of the file.
    tensor_bytes : int
        The bytes of all the tensors.
    other : dict
        Document keys this version of sktransfer does not read (written by a
        later one), with their JSON values.
    document : dict
        The JSON document as the file holds it (values encoded as the format
        writes them, see ``docs/persistence.md``).
    header_bytes : int
        The bytes before the tensors' data: the 8 that give the header's size,
        and the header.
    """

    path: str
    size_bytes: int
    format: str
    format_version: int
    versions: dict
    estimator: EstimatorDescription
    tensors: dict
    tensor_bytes: int
    other: dict
    document: dict
    header_bytes: int = 0

    @property
    def fitted(self):
        """Whether the estimator was saved fitted (None where the header does
        not say: a Pipeline of scikit-learn steps only)."""
        return self.estimator.fitted

    @property
    def n_weights(self):
        """The number of values the tensors hold."""
        return sum(math.prod(shape) for _, shape in self.tensors.values())

    def _first_attribute(self, name):
        """The fitted attribute ``name`` of the estimator or of the first step
        that has it in the header; None when none has."""
        for record in (self.estimator, *(step for _, step in self.estimator.steps)):
            if name in record.attributes:
                return record.attributes[name]
        return None

    @property
    def classes(self):
        """The ``classes_`` of the estimator or of the first step that has them
        in the header; None when none has."""
        return self._first_attribute("classes_")

    @property
    def n_outputs(self):
        """The ``n_outputs_`` of a regressor (the estimator or the first step
        that has them in the header); None when none has."""
        return self._first_attribute("n_outputs_")

    @property
    def problems(self):
        """What :func:`load` would refuse, as far as the header tells (see
        :attr:`EstimatorDescription.problems`), a step's prefixed by its name."""
        found = []
        declared = self.header_bytes + self.tensor_bytes
        if self.header_bytes and self.size_bytes < declared:
            found.append(f"the file is truncated: its header declares {declared:,} "
                         f"bytes ({self.tensor_bytes:,} of tensors), and it holds "
                         f"{self.size_bytes:,}")
        found += list(self.estimator.problems)
        for name, step in self.estimator.steps:
            found += [f"step {name!r}: {problem}" for problem in step.problems]
        return tuple(found)


def describe(path: PathLike) -> FileDescription:
    """What a safe file holds, from its header alone: the estimator and its
    steps, the versions that saved it, whether it is fitted, its parameters
    and fitted attributes, its tensors and what :func:`load` would refuse.

    No tensor is read, nothing is unpickled, no estimator or network is built
    and nothing beyond the file is read or contacted, so it is safe on a file
    from anyone. The values are decoded as :func:`load` decodes them, within
    the same bounds; a value that does not decode is shown as
    :class:`Unreadable`.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    description : FileDescription

    Raises
    ------
    ValueError
        When the file is not an sktransfer safe file, or its header is damaged
        (its document's checksum, a tensor's dtype or shape).

    See Also
    --------
    read_header : The document and the tensor list, undecoded.
    load : Build the estimator.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import sktransfer
    >>> from sktransfer.persistence import describe
    >>> X = np.random.default_rng(0).normal(size=(40, 4))
    >>> clf = sktransfer.FineTuneClassifier(model=None, epochs=1, device="cpu")
    >>> path = os.path.join(tempfile.mkdtemp(), "clf.safetensors")
    >>> sktransfer.save(clf.fit(X, X[:, 0] > 0), path)
    >>> description = describe(path)
    >>> description.estimator.estimator, description.fitted
    ('FineTuneClassifier', True)
    >>> description.classes
    array([False,  True])
    >>> description.estimator.params["epochs"]
    1
    """
    document, tensors = read_header(path)
    size = os.path.getsize(os.fspath(path))
    # read_header checked these 8 bytes
    with _open_regular_file(path, repr(os.fspath(path))) as file:
        header_bytes = 8 + int.from_bytes(file.read(8), "little")
    source = repr(os.fspath(path))
    tensor_bytes = 0
    for name, (dtype, shape) in tensors.items():
        if dtype not in _DTYPE_BYTES:
            raise ValueError(f"{source} is a damaged sktransfer safe file: the tensor "
                             f"{name!r:.80} has the dtype {dtype!r:.40}, which "
                             "sktransfer does not write.")
        tensor_bytes += math.prod(shape) * _DTYPE_BYTES[dtype]
    budget = Budget(_BUDGET_BASE + _BUDGET_PER_BYTE * size)
    if document.get("estimator") == "Pipeline":
        estimator = _pipeline(document, tensors, budget)
    else:
        estimator = _record(document, tensors, budget)
    return FileDescription(
        path=os.fspath(path),
        size_bytes=size,
        format=document.get("format"),
        format_version=document.get("format_version"),
        versions={library: document[key] for library, key in _VERSION_KEYS.items()
                  if document.get(key) is not None},
        estimator=estimator,
        tensors=tensors,
        tensor_bytes=tensor_bytes,
        other={key: value for key, value in document.items() if key not in _KNOWN_KEYS},
        document=document,
        header_bytes=header_bytes,
    )


def _decoded(values, budget):
    """A document's dict of encoded values, each decoded or :class:`Unreadable`."""
    if type(values) is not dict:
        return {}
    decoded = {}
    for key, value in values.items():
        try:
            decoded[key] = decode(value, budget)
        except (ValueError, TypeError, KeyError, AttributeError, RuntimeError,
                IndexError, OverflowError, RecursionError) as exc:
            decoded[key] = Unreadable(f"{type(exc).__name__}: {str(exc)[:80]}")
    return decoded


def _record(record, tensors, budget):
    """The description of one of sktransfer's estimators (a file's or a step's)."""
    name = record.get("estimator")
    params = _decoded(record.get("params"), budget)
    attributes = _decoded(record.get("fitted"), budget)
    found = limit_problems(params, attributes)
    if type(name) is not str or name not in SAFE_CLASSES:
        found.insert(0, f"{name!r:.80} is not an estimator of this version of "
                        "sktransfer")
    return EstimatorDescription(
        estimator=str(name), library="sktransfer", fitted=bool(record.get("fitted")),
        params=params, attributes=attributes, tensors=tensors, problems=tuple(found))


def _pipeline(document, tensors, budget):
    """The description of a Pipeline and of its steps."""
    steps = []
    items = document.get("steps")
    for item in items if type(items) is list else ():
        name, record = (item if type(item) is list and len(item) == 2
                        else ("?", Unreadable(f"{item!r:.60} is not a [name, step] pair")))
        name = str(name)
        prefix = f"{name}."
        step_tensors = {key[len(prefix):]: value for key, value in tensors.items()
                        if key.startswith(prefix)}
        if record is None or record == "passthrough":
            step = EstimatorDescription(estimator=str(record), library=None, fitted=None)
        elif type(record) is dict and record.get("estimator") == "skops":
            step = EstimatorDescription(estimator=str(record.get("class")),
                                        library="scikit-learn", fitted=None,
                                        tensors=step_tensors)
        elif type(record) is dict:
            step = _record(record, step_tensors, budget)
        else:
            step = EstimatorDescription(estimator=repr(record)[:80], library=None,
                                        fitted=None, problems=("not a step",))
        steps.append((name, step))
    states = [step.fitted for _, step in steps]
    fitted = (True if any(states) or document.get("fitted")
              else None if None in states and any(s.library for _, s in steps)
              else False)
    return EstimatorDescription(
        estimator="Pipeline", library="scikit-learn", fitted=fitted,
        params=_decoded(document.get("params"), budget),
        attributes=_decoded(document.get("fitted"), budget), tensors=tensors,
        steps=tuple(steps))

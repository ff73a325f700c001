"""The fingerprint of a fit: a digest of everything that defines it.

:class:`~sktransfer.training.Checkpoint` resumes a fit only when the fit it
finds in its folder has the same fingerprint, so a folder copied by ``clone``
into every fold of ``cross_val_score`` or candidate of ``GridSearchCV`` never
hands one fit's model to another. The digest covers the estimator's class, its
parameters (but those that do not change what is learned: ``callbacks``,
``verbose``, ``num_workers``, ``device``; the user's callbacks that replace a
default, such as another early stopping, count), the starting weights, a
digest of every sample (the
feature cache's content keys: bytes for arrays and images, identity and
version for files), the labels, the sample weights, the rows trained on, the
seed and where the fit starts (its first epoch, whether it is scheduled).
"""

import enum
import functools
import json
import os
import re
import types

import numpy as np
import torch

from .._utils.hashing import digest_parts, tensor_bytes, weights_fingerprint
from .._utils.torch_parameters import ParameterizedModule
from ..feature_extraction._cache import _code_digest, image_keys, model_identity

#: Parameters that do not change what a fit learns.
_NOT_DEFINING = ("callbacks", "verbose", "num_workers", "device")


def _unmatchable():
    """A description that matches no other: a value whose state cannot be read
    must not make two fits look alike (the folder is then refused)."""
    return "unreadable " + os.urandom(8).hex()


#: How deep :func:`_describe` follows values inside values (a closure's cells,
#: an object's attributes); a value deeper down makes the fit match no other.
_MAX_DEPTH = 8


def _function(function, depth):
    """A function by its name, its code (bytecode, names and constants), its
    defaults and the values its closure holds: two closures of one factory
    (``scaled_gap(0.0)``, ``scaled_gap(100.0)``) differ."""
    parts = []
    _code_digest(function.__code__, parts)
    cells = []
    for cell in function.__closure__ or ():
        try:
            content = cell.cell_contents
        except ValueError:  # an empty cell: a name assigned after the function
            content = "<empty>"
        if content is not function:
            cells.append(content)
    return {"callable": f"{function.__module__}.{function.__qualname__}",
            "code": digest_parts(*parts).hexdigest(),
            "defaults": _describe(list(function.__defaults__ or ()), depth + 1),
            "keyword defaults": _describe(function.__kwdefaults__ or {}, depth + 1),
            "closure": _describe(cells, depth + 1)}


def _describe(value, depth=0):
    """A JSON-able description of a parameter value that is the same in every
    process: modules by their class, the code of their methods, their own
    plain attributes, structure and weights (and an adaptation loss by its
    parameters); functions by their name, code, defaults and closure; classes
    by their qualified name; other objects by their class and their attributes
    (never a repr, which may hold a memory address)."""
    if depth > _MAX_DEPTH:  # not read: never the same fit as another
        return _unmatchable()
    if isinstance(value, torch.nn.Module):
        kind = type(value)
        described = {"module": f"{kind.__module__}.{kind.__qualname__}",
                     "identity": model_identity(value),
                     "weights": weights_fingerprint(value)}
        if isinstance(value, ParameterizedModule):
            described["params"] = _describe(value.get_params(), depth + 1)
        return described
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_describe(item, depth + 1) for item in value]
    if isinstance(value, (set, frozenset)):  # sorted: iteration follows the hash seed
        return {"set": sorted(json.dumps(_describe(item, depth + 1), sort_keys=True,
                                         default=str) for item in value)}
    if isinstance(value, dict):
        return {str(key): _describe(item, depth + 1)
                for key, item in sorted(value.items(), key=str)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.Tensor):  # by content: str shows a few values
        described = {"tensor": f"{value.dtype} {tuple(value.shape)}"}
        try:
            dense = value.to_dense() if value.is_sparse else value
            content = tensor_bytes(dense.resolve_conj().resolve_neg()).tobytes()
        except (RuntimeError, NotImplementedError):  # a meta tensor: no content
            return {**described, "unreadable": _unmatchable()}
        return {**described, "bytes": digest_parts(content).hexdigest()}
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biufc":
            return {"array": f"{value.dtype} {value.shape}",
                    "bytes": digest_parts(np.ascontiguousarray(value).tobytes()).hexdigest()}
        return {"array": f"{value.dtype} {value.shape}",
                "items": _describe(value.tolist(), depth + 1)}
    if isinstance(value, enum.Enum):
        return {"enum": f"{type(value).__qualname__}.{value.name}"}
    if isinstance(value, os.PathLike):
        return {"path": os.fsdecode(value)}
    if isinstance(value, types.FunctionType):
        return _function(value, depth)
    if isinstance(value, (types.BuiltinFunctionType, type)):
        return {"callable": f"{value.__module__}.{value.__qualname__}"}
    if isinstance(value, types.MethodType):
        return {"method": _describe(value.__func__, depth + 1),
                "of": _describe(value.__self__, depth + 1)}
    if isinstance(value, functools.partial):
        return {"partial": _describe(value.func, depth + 1),
                "args": _describe(list(value.args), depth + 1),
                "keywords": _describe(value.keywords, depth + 1)}
    kind = type(value)
    try:
        state = _describe(vars(value), depth + 1)
    except TypeError:  # no __dict__: its slots, or a value type (torch.float16)
        slots = value.__getstate__() if hasattr(value, "__getstate__") else None
        text = repr(value)
        if isinstance(slots, tuple) and len(slots) == 2 and slots[1]:
            state = _describe(slots[1], depth + 1)  # (None, {slot: value})
        elif not re.search(r" at 0x[0-9a-fA-F]+", text):
            state = text  # range(0, 3), torch.float16
        else:  # no readable state (a lock, a generator): never the same fit
            state = _unmatchable()
    return {"object": f"{kind.__module__}.{kind.__qualname__}", "state": state}


def fit_fingerprint(estimator, data, *, start_epoch, schedule, network,
                    replaced_callbacks=(), extra=(), start_state=None):
    """The digest (32 hexadecimal digits) of the fit of ``estimator`` on
    ``data`` (a :class:`~sktransfer.classifiers._base.FitData`), starting at
    epoch ``start_epoch`` from the weights ``network`` holds (called when the
    fit begins: its starting weights, which a changed checkpoint file or a
    warm start changes), with ``start_state`` (``{name: tensor}``) standing for
    the entries that changed before it began (the head a linear probe fitted:
    it depends on the device's arithmetic, and a fit resumed on another device
    is the same fit); ``replaced_callbacks`` (the user's callbacks that replace
    a default, which change what is learned) and ``extra`` arrays join it."""
    params = {name: _describe(value)
              for name, value in estimator.get_params(deep=False).items()
              if name not in _NOT_DEFINING}
    params["replaced callbacks"] = _describe(list(replaced_callbacks))
    kind = type(estimator)
    digest = digest_parts(f"{kind.__module__}.{kind.__qualname__}",
                          json.dumps(params, sort_keys=True, default=str),
                          data.seed, start_epoch, schedule,
                          weights_fingerprint(network, replaced=start_state))
    for key in image_keys(data.source):
        digest.update(key.encode())
    for array in (data.targets, data.sample_weight, data.labeled_rows, *extra):
        array = np.ascontiguousarray(array)
        digest.update(f"|{array.dtype}|{array.shape}|".encode())
        digest.update(array.data)
    return digest.hexdigest()

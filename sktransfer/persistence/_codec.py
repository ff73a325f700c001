"""Values <-> JSON for the safe file format: parameters and fitted attributes as
data, each type JSON lacks written as a one-key tag (see :mod:`._format`)."""

import dataclasses
import math
import os
import pathlib
import re

import numpy as np
import torch
from torchvision.models import WeightsEnum, get_weight

from ..inputs import PreprocessConfig

_DTYPE_PATTERN = re.compile(r"^[<>|=]?[biufUO]\d*$")
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class Unsafe(Exception):
    """A value the safe format cannot hold as data."""


def encode(value):
    if value is None or type(value) in (bool, int, str):
        return value
    if type(value) is float:
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, np.generic):
        _check_dtype(value.dtype)
        return {"$scalar": {"dtype": value.dtype.str, "value": encode(value.item())}}
    if isinstance(value, np.ndarray):
        return {"$ndarray": _encode_array(value)}
    if type(value) is list:
        return [encode(v) for v in value]
    if type(value) is tuple:
        return {"$tuple": [encode(v) for v in value]}
    if type(value) is dict:
        if all(type(k) is str for k in value):
            return {"$dict": {k: encode(v) for k, v in value.items()}}
        return {"$pairs": [[encode(k), encode(v)] for k, v in value.items()]}
    if isinstance(value, WeightsEnum):
        return {"$weights": f"{type(value).__name__}.{value.name}"}
    if isinstance(value, os.PathLike):
        return {"$path": os.fspath(value)}
    if isinstance(value, torch.device):
        return {"$device": str(value)}
    if type(value) is PreprocessConfig:
        return {"$preprocess": {f.name: encode(getattr(value, f.name))
                                for f in dataclasses.fields(value)}}
    if type(value) is np.random.RandomState:
        return {"$random_state": encode(value.get_state(legacy=True))}
    raise Unsafe(value)


def _check_dtype(dtype):
    if not _DTYPE_PATTERN.match(dtype.str):
        raise Unsafe(f"an array of dtype {dtype}")


def _encode_array(array):
    _check_dtype(array.dtype)
    flat = array.ravel()
    if array.dtype.kind == "O":
        items = []
        for item in flat:
            if not (item is None or type(item) in (bool, int, float, str)
                    or isinstance(item, np.generic)):
                raise Unsafe(item)
            items.append(encode(item))
    elif array.dtype.kind == "f":
        items = [v if math.isfinite(v) else repr(v) for v in flat.tolist()]
    else:
        items = flat.tolist()
    return {"dtype": array.dtype.str, "shape": list(array.shape), "data": items}


def decode(value):
    if value is None or type(value) in (bool, int, float, str):
        return value
    if type(value) is list:
        return [decode(v) for v in value]
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
    return dtype.type(decode(content["value"]))


def _decode_array(content):
    dtype = _decode_dtype(content["dtype"])
    shape = tuple(int(n) for n in content["shape"])
    data = content["data"]
    if type(data) is not list or len(data) != int(np.prod(shape, dtype=np.int64)):
        raise ValueError(f"array data do not fill its shape {shape}")
    if dtype.kind == "O":
        array = np.empty(len(data), dtype=object)
        array[:] = [decode(v) for v in data]
    elif dtype.kind == "f":
        array = np.array([float(_NON_FINITE.get(v, v)) for v in data], dtype=dtype)
    else:
        array = np.array(data, dtype=dtype)
    return array.reshape(shape)


def _decode_preprocess(content):
    names = {f.name for f in dataclasses.fields(PreprocessConfig)}
    if type(content) is not dict or not set(content) <= names:
        raise ValueError(f"unexpected preprocessing fields {content!r:.80}")
    return PreprocessConfig(**{k: decode(v) for k, v in content.items()})


def _decode_weights(name):
    return get_weight(str(name))  # a lookup among torchvision's weights enums


def _decode_random_state(content):
    random_state = np.random.RandomState()
    random_state.set_state(decode(content))
    return random_state


_DECODERS = {
    "$float": _decode_float,
    "$scalar": _decode_scalar,
    "$ndarray": _decode_array,
    "$tuple": lambda items: tuple(decode(v) for v in items),
    "$dict": lambda items: {str(k): decode(v) for k, v in items.items()},
    "$pairs": lambda pairs: {decode(k): decode(v) for k, v in pairs},
    "$weights": _decode_weights,
    "$path": lambda text: pathlib.Path(str(text)),
    "$device": lambda text: torch.device(str(text)),
    "$preprocess": _decode_preprocess,
    "$random_state": _decode_random_state,
}



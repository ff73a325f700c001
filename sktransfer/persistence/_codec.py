"""Values <-> JSON for the safe file format: parameters and fitted attributes as
data, each type JSON lacks written as a one-key tag (see :mod:`._format`).

Decoding is bounded: a value nests at most :data:`MAX_DEPTH` levels, an array's
dtype is one of a fixed list (bool, the standard integer and float sizes, str of
at most :data:`MAX_STRING_LENGTH` characters, object), its shape is filled by the
items the file holds, and all arrays together may allocate at most the byte
budget that the caller derives from the file's size. Anything else raises
ValueError before anything is allocated.
"""

import dataclasses
import math
import os
import pathlib

import numpy as np
import torch
from torchvision.models import WeightsEnum, get_weight

from ..inputs import PreprocessConfig

#: How deeply tagged values, lists and dicts may nest in a safe file.
MAX_DEPTH = 32
#: The longest str dtype (in characters) of an array or scalar in a safe file.
MAX_STRING_LENGTH = 4096
_MAX_NDIM = 32
_NUMERIC = {"b": (1,), "i": (1, 2, 4, 8), "u": (1, 2, 4, 8), "f": (2, 4, 8)}
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_MT19937_WORDS = 624


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


def _allowed(dtype):
    """Whether the safe format stores arrays of ``dtype`` (an np.dtype)."""
    if dtype.kind in _NUMERIC:
        return dtype.itemsize in _NUMERIC[dtype.kind]
    if dtype.kind == "U":
        return 0 < dtype.itemsize // 4 <= MAX_STRING_LENGTH
    return dtype.kind == "O"


def _check_dtype(dtype):
    if dtype.names is not None or dtype.subdtype is not None or not _allowed(dtype):
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


# -- decoding -----------------------------------------------------------------
def decode(value, max_bytes=None):
    """The value that ``encode`` wrote as ``value`` (parsed JSON).

    ``max_bytes`` bounds what the arrays of this value (and of every later
    value decoded with the same budget, see :class:`Budget`) may allocate;
    ValueError when the value is not one ``encode`` writes, nests deeper than
    :data:`MAX_DEPTH` or declares more than the budget.
    """
    budget = max_bytes if isinstance(max_bytes, Budget) else Budget(max_bytes)
    return _Decoder(budget).decode(value, 0)


class Budget:
    """The bytes that the arrays decoded from one file may still allocate."""

    def __init__(self, max_bytes=None):
        self.left = math.inf if max_bytes is None else int(max_bytes)

    def spend(self, nbytes, what):
        if nbytes > self.left:
            raise ValueError(f"{what} would take {nbytes} bytes, more than the "
                             "file's size justifies")
        self.left -= nbytes


def _expect(content, types, what):
    if type(content) not in types:
        raise ValueError(f"{what} is {type(content).__name__} {content!r:.60}, not "
                         f"{' or '.join(t.__name__ for t in types)}")
    return content


class _Decoder:
    def __init__(self, budget):
        self.budget = budget

    def decode(self, value, depth):
        if value is None or type(value) in (bool, int, float, str):
            return value
        if depth >= MAX_DEPTH:
            raise ValueError(f"values nest more than {MAX_DEPTH} levels deep")
        if type(value) is list:
            return [self.decode(v, depth + 1) for v in value]
        if type(value) is not dict or len(value) != 1:
            raise ValueError(f"unexpected value {value!r:.80}")
        (tag, content), = value.items()
        decoder = _DECODERS.get(tag)
        if decoder is None:
            raise ValueError(f"unknown value tag {tag!r}")
        return decoder(self, content, depth + 1)

    # one method per tag
    def float_(self, text, depth):
        if type(text) is not str or text not in _NON_FINITE:
            raise ValueError(f"{text!r:.40} is not a non-finite float")
        return _NON_FINITE[text]

    def scalar(self, content, depth):
        content = _expect(content, (dict,), "a $scalar")
        if set(content) != {"dtype", "value"}:
            raise ValueError(f"unexpected $scalar fields {sorted(content)!r:.80}")
        dtype = _decode_dtype(content["dtype"])
        if dtype.kind == "O":
            raise ValueError("a $scalar of dtype object")
        return _item(dtype, self.decode(content["value"], depth))

    def ndarray(self, content, depth):
        content = _expect(content, (dict,), "an $ndarray")
        if set(content) != {"dtype", "shape", "data"}:
            raise ValueError(f"unexpected $ndarray fields {sorted(content)!r:.80}")
        dtype = _decode_dtype(content["dtype"])
        shape = _expect(content["shape"], (list,), "an $ndarray shape")
        if len(shape) > _MAX_NDIM or not all(type(n) is int and n >= 0 for n in shape):
            raise ValueError(f"array shape {shape!r:.80} is not a list of at most "
                             f"{_MAX_NDIM} non-negative ints")
        data = _expect(content["data"], (list,), "an $ndarray data")
        size = math.prod(shape)  # Python ints: no overflow
        if len(data) != size:
            raise ValueError(f"array data ({len(data)} items) do not fill its shape "
                             f"{tuple(shape)}")
        # The budget is spent before anything is allocated.
        self.budget.spend(size * dtype.itemsize, f"an array of dtype {dtype.str} "
                          f"and shape {tuple(shape)}")
        array = np.empty(size, dtype=dtype)
        if dtype.kind == "O":
            for index, item in enumerate(data):
                item = self.decode(item, depth)
                if not (item is None or type(item) in (bool, int, float, str)
                        or isinstance(item, np.generic)):
                    raise ValueError(f"object array item {item!r:.60}")
                array[index] = item
        else:
            array[...] = [_item(dtype, item) for item in data]
        return array.reshape(shape)

    def tuple_(self, items, depth):
        items = _expect(items, (list,), "a $tuple")
        return tuple(self.decode(v, depth) for v in items)

    def dict_(self, items, depth):
        items = _expect(items, (dict,), "a $dict")
        return {k: self.decode(v, depth) for k, v in items.items()}

    def pairs(self, pairs, depth):
        pairs = _expect(pairs, (list,), "a $pairs")
        result = {}
        for pair in pairs:
            if type(pair) is not list or len(pair) != 2:
                raise ValueError(f"$pairs item {pair!r:.60} is not a [key, value] pair")
            key = self.decode(pair[0], depth)
            if not (key is None or type(key) in (bool, int, float, str, tuple)
                    or isinstance(key, np.generic)):
                raise ValueError(f"$pairs key {key!r:.60}")
            result[key] = self.decode(pair[1], depth)
        return result

    def weights(self, name, depth):
        name = _expect(name, (str,), "a $weights")
        try:  # a lookup among torchvision's weights enums
            return get_weight(name)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{name!r:.80} is not a torchvision weights name "
                             f"({type(exc).__name__}: {exc})") from None

    def path(self, text, depth):
        text = _expect(text, (str,), "a $path")
        if "\0" in text:
            raise ValueError("a $path with a NUL character")
        return pathlib.Path(text)

    def device(self, text, depth):
        return torch.device(_expect(text, (str,), "a $device"))

    def preprocess(self, content, depth):
        names = {f.name for f in dataclasses.fields(PreprocessConfig)}
        if type(content) is not dict or not set(content) <= names:
            raise ValueError(f"unexpected preprocessing fields {content!r:.80}")
        return PreprocessConfig(**{k: self.decode(v, depth) for k, v in content.items()})

    def random_state(self, content, depth):
        state = self.decode(content, depth)
        # The legacy state RandomState.get_state writes: checked here, since
        # set_state raises OverflowError or IndexError on what it cannot hold.
        if not (type(state) is tuple and len(state) == 5):
            raise ValueError("a $random_state is not a 5-tuple")
        algorithm, key, position, has_gauss, cached_gaussian = state
        if (algorithm != "MT19937" or type(key) is not np.ndarray
                or key.dtype != np.uint32 or key.shape != (_MT19937_WORDS,)
                or type(position) is not int or not 0 <= position <= _MT19937_WORDS
                or type(has_gauss) is not int or has_gauss not in (0, 1)
                or type(cached_gaussian) not in (int, float)):
            raise ValueError(f"{state!r:.80} is not the state of a RandomState")
        random_state = np.random.RandomState()
        random_state.set_state(state)
        return random_state


_DECODERS = {
    "$float": _Decoder.float_,
    "$scalar": _Decoder.scalar,
    "$ndarray": _Decoder.ndarray,
    "$tuple": _Decoder.tuple_,
    "$dict": _Decoder.dict_,
    "$pairs": _Decoder.pairs,
    "$weights": _Decoder.weights,
    "$path": _Decoder.path,
    "$device": _Decoder.device,
    "$preprocess": _Decoder.preprocess,
    "$random_state": _Decoder.random_state,
}


def _decode_dtype(text):
    if type(text) is not str or len(text) > 16:
        raise ValueError(f"dtype {text!r:.40} is not one the safe format stores")
    try:
        dtype = np.dtype(text)
    except (TypeError, ValueError):
        dtype = None
    if (dtype is None or dtype.str != text or dtype.names is not None
            or dtype.subdtype is not None or not _allowed(dtype)):
        raise ValueError(f"dtype {text!r} is not one the safe format stores (bool, "
                         "int and uint of 1, 2, 4 or 8 bytes, float of 2, 4 or 8 "
                         f"bytes, str of at most {MAX_STRING_LENGTH} characters, "
                         "object)")
    return dtype


def _item(dtype, value):
    """``value`` (a JSON item) as an item of ``dtype``, its type and range checked
    so that numpy neither converts (a str to an int) nor overflows."""
    kind = dtype.kind
    if kind == "b":
        if type(value) is not bool:
            raise ValueError(f"{value!r:.40} is not a bool")
    elif kind in "iu":
        info = np.iinfo(dtype)
        if type(value) is not int or not info.min <= value <= info.max:
            raise ValueError(f"{value!r:.40} is not an int of dtype {dtype.str}")
    elif kind == "f":
        if type(value) is str:
            value = _NON_FINITE.get(value, value)
        if type(value) not in (int, float):
            raise ValueError(f"{value!r:.40} is not a float")
        try:
            value = float(value)
        except OverflowError:
            raise ValueError(f"{value!r:.40} is too large for a float") from None
    elif kind == "U":
        if type(value) is not str:
            raise ValueError(f"{value!r:.40} is not a str")
    return dtype.type(value)

"""The feature cache of :class:`~sktransfer.PretrainedFeatureExtractor`: keys,
stores and the counters of :func:`feature_cache_info`.

Features are kept per image (``cache=True``: in this process's memory, bounded,
least recently used out first; ``cache=<directory>`` or a ``joblib.Memory``: on
disk, shared by processes and later runs). An entry's key is a digest of the
image's content together with a fingerprint of everything that changes its
feature (:func:`feature_fingerprint`), so a cross-validation fold's subset of
``X`` hits the entries the whole ``X`` made, and a changed image or parameter
misses. (Loaded backbones are shared through :mod:`._memo`, a separate concern.)

Disk layout: ``<root>/sktransfer-features/<fingerprint>/<key[:3]>/<key>.feat``, one
small file per image. A file per image lets any subset of ``X`` be read without an
index (which concurrent writers would have to lock), and each file is written to a
temporary name and renamed, which is atomic: a reader sees a whole entry or none.
The 3-hex-digit shard level (4096 folders) keeps each folder to a few thousand
files even for ten million images. An entry file is a 64-byte header (magic with
the format version, the 32-byte digest of the key it was stored for, the number of
values and a checksum of the payload) and the float32 values; nothing is pickled.
An entry whose header, length, key or checksum is wrong is deleted, recomputed and
reported with a :class:`FeatureCacheWarning`; so is one that is not a regular file
(a symbolic link, a FIFO, a device), which is never opened for reading beyond
``open(O_NOFOLLOW | O_NONBLOCK)`` and ``fstat``, and one of another size than an
entry, which is not read at all.
"""

import dataclasses
import errno
import json
import os
import stat as stat_module
import struct
import threading
import types
from collections import OrderedDict, namedtuple
from functools import lru_cache

import numpy as np
import torch

from .._utils.caller import warn
from .. import _version
from .._utils.files import write_atomic
from .._utils.hashing import bytes_digest, digest_parts
from ..backbones._registry import registered_builder
from ..inputs import ArraySource, PathSource, PILSource, TextSource
from ._memo import BACKBONES

#: Format of the keys and of the entry files; a change makes old entries miss.
FORMAT_VERSION = 1
DISK_FOLDER = "sktransfer-features"
DEFAULT_MEMORY_BYTES = 1 << 30  # 1 GiB of features, about 200,000 vectors of 1280

_MAGIC = b"SKTFEAT" + bytes([FORMAT_VERSION])
_HEADER = struct.Struct("<8s32sQ16s")  # magic, entry digest, n values, payload checksum
_HASH_CHUNK_BYTES = 64 << 20  # images copied to contiguous memory at a time for hashing
_ROW_OVERHEAD = 256  # bytes a memory entry costs besides its values (key, array object)


class FeatureCacheWarning(UserWarning):
    """A cached feature could not be used (corrupt entry) or stored (disk error)."""


CacheInfo = namedtuple(
    "CacheInfo", ["hits", "misses", "memory_entries", "memory_bytes", "memory_max_bytes"]
)
CacheInfo.__doc__ = """Counters of the feature cache in this process.

hits : images served without a forward pass (a cache's, or a repeat's in a call).
misses : images that went through the network because no cache held them.
memory_entries, memory_bytes : what the in-memory store (``cache=True``) holds.
memory_max_bytes : its bound (see :func:`set_feature_cache_size`).
"""


# -- keys ---------------------------------------------------------------------
def _array_keys(images):
    """One digest per sample of an (N, C, H, W) tensor: its bytes, shape and dtype."""
    prefix = f"array:{images.dtype}:{tuple(images.shape[1:])}".encode()
    per_sample = max(1, images[0].numel() * images.element_size())
    step = max(1, _HASH_CHUNK_BYTES // per_sample)
    keys = []
    for start in range(0, images.shape[0], step):
        chunk = images[start:start + step].contiguous().numpy()
        for sample in chunk:
            digest = digest_parts(prefix)
            digest.update(sample.data)  # a C-contiguous row: hashed without a copy
            keys.append(digest.hexdigest())
    return keys


def _pil_key(image):
    digest = digest_parts(f"pil:{image.mode}:{image.size}:{image.format}")
    if image.mode in ("P", "PA"):
        digest.update(bytes(image.getpalette() or ()))
    digest.update(image.tobytes())
    return digest.hexdigest()


def _path_key(path):
    # The file's identity and version, not its bytes (a hit never reads the
    # image). A write to the file sets its mtime, which a user can set back
    # (os.utime, touch -d, tar, rsync -t), and its status-change time ctime,
    # which only the kernel sets (to the current time, at every write, utime,
    # chmod or rename); a file moved over it has another inode. On Windows
    # st_ctime_ns is the creation time, so there only size and mtime speak.
    real = os.path.realpath(os.fspath(path))
    stat = os.stat(real)
    return digest_parts(
        f"path:{real}:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino}:"
        f"{stat.st_ctime_ns}"
    ).hexdigest()


def image_keys(source):
    """A content digest (hex) for each sample of a source: each image of an
    :class:`ImageSource`, each text of a :class:`TextSource` (its characters)."""
    if isinstance(source, ArraySource):
        return _array_keys(source.images)
    if isinstance(source, PathSource):
        return [_path_key(path) for path in source.items]
    if isinstance(source, PILSource):
        return [_pil_key(image) for image in source.items]
    if isinstance(source, TextSource):
        return [digest_parts("text", text.encode("utf-8", "surrogatepass")).hexdigest()
                for text in source.texts]
    raise TypeError(f"cannot key the images of a {type(source).__name__}.")


@lru_cache(maxsize=1)
def library_versions():
    """Versions of the libraries whose code computes a feature."""
    import PIL
    import torchvision

    try:
        from importlib.metadata import PackageNotFoundError, version

        timm = version("timm")
    except PackageNotFoundError:
        timm = None
    return {
        "sktransfer": _version.__version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "timm": timm,
        "pillow": PIL.__version__,
    }


#: The attributes ``nn.Module`` keeps for itself (parameters, submodules, hooks):
#: not part of what a user module's own attributes say.
_MODULE_INTERNALS = frozenset(vars(torch.nn.Module()))
#: The types of a module's own attributes whose values enter its identity.
_PLAIN = (bool, int, float, complex, str, bytes, type(None))


def _constant_text(constant):
    """A code constant as text that is the same in every process: a frozenset's
    items sorted (their order follows the process's hash seed)."""
    if isinstance(constant, frozenset):
        return "frozenset(" + ", ".join(sorted(map(_constant_text, constant))) + ")"
    if isinstance(constant, tuple):
        return "(" + ", ".join(map(_constant_text, constant)) + ")"
    return repr(constant)


def _code_digest(code, parts):
    """Add what a function's code does to ``parts``: its bytecode, the names
    and constants it uses, and those of the functions it defines."""
    parts += [code.co_code, repr(code.co_names)]
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            _code_digest(constant, parts)
        else:
            parts.append(_constant_text(constant))


def _functions(value):
    """The functions whose code a class attribute runs: a method (through its
    decorators' ``__wrapped__``, ``torch.no_grad()`` and ``functools.wraps``
    ones included), a static or class method, a property's accessors."""
    if isinstance(value, property):
        candidates = [value.fget, value.fset, value.fdel]
    else:
        candidates = [getattr(value, "__func__", value)]
    found = []
    for candidate in candidates:
        while isinstance(candidate, types.FunctionType):
            found.append(candidate)
            candidate = getattr(candidate, "__wrapped__", None)
    return found


def _plain(value, depth=0):
    """``value`` when it is plain data (numbers, numpy scalars, strings, and
    tuples or lists of at most 64 of them, nested at most 4 deep); otherwise
    its type's name."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (tuple, list)) and len(value) <= 64 and depth < 4:
        return [_plain(item, depth + 1) for item in value]
    return f"<{type(value).__qualname__}>"


def _module_parts(model):
    """What defines a user module beside its weights, for each of its modules:
    its class and the code of the methods its class and bases define (not
    ``nn.Module``'s own), and its own plain attributes (``self.depth = 2``)."""
    parts, seen = [], set()
    for name, module in model.named_modules():
        kind = type(module)
        parts.append(f"{name}: {kind.__module__}.{kind.__qualname__}")
        for owner in kind.__mro__:
            if owner in seen or owner.__module__.startswith("torch."):
                continue
            seen.add(owner)
            for attribute, value in sorted(vars(owner).items()):
                for function in _functions(value):
                    parts.append(f"{owner.__qualname__}.{attribute}")
                    _code_digest(function.__code__, parts)
        own = {key: _plain(value) for key, value in vars(module).items()
               if key not in _MODULE_INTERNALS}
        parts.append(json.dumps(own, sort_keys=True, default=repr))
    return parts


def model_identity(model):
    """What ``model=`` names: the string (and the builder registered under it),
    or a user module's class, structure, code and plain attributes."""
    if isinstance(model, str):
        builder = registered_builder(model)
        if builder is None:
            return model
        return f"{model} ({getattr(builder, '__module__', '')}." \
               f"{getattr(builder, '__qualname__', type(builder).__name__)})"
    kind = type(model)
    digest = digest_parts(repr(model), *_module_parts(model)).hexdigest()
    return f"{kind.__module__}.{kind.__qualname__} {digest}"


def feature_fingerprint(**description):
    """The fingerprint (hex) of everything that changes an image's feature, and the
    description it digests (a JSON-able dict, library versions added)."""
    description = dict(description, format=FORMAT_VERSION, versions=library_versions())
    for name, value in description.items():
        if dataclasses.is_dataclass(value):
            description[name] = dataclasses.asdict(value)
    text = json.dumps(description, sort_keys=True, default=str)
    return digest_parts(text).hexdigest(), description


# -- stores -------------------------------------------------------------------
class MemoryStore:
    """Features in this process's memory, least recently used evicted past a size."""

    def __init__(self, max_bytes=DEFAULT_MEMORY_BYTES):
        self.max_bytes = int(max_bytes)
        self._entries = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get_many(self, fingerprint, keys, n_values):
        rows = []
        with self._lock:
            for key in keys:
                row = self._entries.get((fingerprint, key))
                if row is not None:
                    self._entries.move_to_end((fingerprint, key))
                rows.append(row)
        return rows

    def put_many(self, fingerprint, keys, rows, description=None):
        with self._lock:
            for key, row in zip(keys, rows):
                size = row.nbytes + _ROW_OVERHEAD
                if size > self.max_bytes:
                    continue
                row = np.array(row, dtype=np.float32, copy=True)  # not a view of a batch
                row.setflags(write=False)
                old = self._entries.pop((fingerprint, key), None)
                if old is not None:
                    self._bytes -= old.nbytes + _ROW_OVERHEAD
                self._entries[(fingerprint, key)] = row
                self._bytes += size
            self._evict()

    def _evict(self):
        while self._bytes > self.max_bytes and self._entries:
            _, row = self._entries.popitem(last=False)
            self._bytes -= row.nbytes + _ROW_OVERHEAD

    def resize(self, max_bytes):
        with self._lock:
            self.max_bytes = int(max_bytes)
            self._evict()

    def clear(self):
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def info(self):
        with self._lock:
            return len(self._entries), self._bytes, self.max_bytes


class DiskStore:
    """Features in files under ``root`` (see the module docstring for the layout)."""

    def __init__(self, root):
        self.root = os.path.join(os.fspath(root), DISK_FOLDER)

    def check(self, cache):
        """Create the folder now, so that a path that cannot hold it fails at fit."""
        try:
            os.makedirs(self.root, exist_ok=True)
        except OSError as exc:
            raise ValueError(
                f"cache={cache!r}: cannot create the feature cache folder "
                f"{self.root!r} ({exc}); pass a writable directory, True (in "
                "memory) or None."
            ) from exc

    def _path(self, fingerprint, key):
        return os.path.join(self.root, fingerprint, key[:3], key + ".feat")

    @staticmethod
    def _entrydigest_parts(fingerprint, key):
        return bytes_digest(f"{fingerprint}/{key}".encode(), digest_size=32)

    def _read(self, path, entry_digest, n_values):
        """The row stored at ``path``, None when absent; raises ValueError when the
        file is not a whole, intact entry for this key.

        Only a regular file of exactly the entry's size is read, and only that
        many bytes: a symbolic link (to ``/dev/zero``, say), a FIFO, a device or a
        file of another size is refused before anything is read, so that a bad
        entry can neither hang nor exhaust memory.
        """
        data = _read_entry_file(path, _HEADER.size + 4 * n_values)
        if data is None:
            return None
        magic, digest, count, checksum = _HEADER.unpack_from(data)
        if magic != _MAGIC:
            raise ValueError("not a feature entry of this format")
        if digest != entry_digest:
            raise ValueError("stored for another key")
        if count != n_values:
            raise ValueError(f"holds {count} values, expected {n_values}")
        payload = memoryview(data)[_HEADER.size:]
        if bytes_digest(payload) != checksum:
            raise ValueError("checksum mismatch")
        return np.frombuffer(payload, dtype="<f4").astype(np.float32)

    def get_many(self, fingerprint, keys, n_values):
        rows, corrupt = [], []
        for key in keys:
            path = self._path(fingerprint, key)
            try:
                row = self._read(path, self._entrydigest_parts(fingerprint, key), n_values)
            except ValueError as exc:
                corrupt.append(f"{path} ({exc})")
                _remove(path)
                row = None
            except OSError as exc:  # unreadable (permissions): recompute, keep the file
                corrupt.append(f"{path} (unreadable: {exc})")
                row = None
            rows.append(row)
        if corrupt:
            warn(
                f"{len(corrupt)} corrupt feature cache entr"
                f"{'y' if len(corrupt) == 1 else 'ies'} discarded and recomputed: "
                + "; ".join(corrupt[:3]) + ("; ..." if len(corrupt) > 3 else ""),
                FeatureCacheWarning,
            )
        return rows

    def put_many(self, fingerprint, keys, rows, description=None):
        """Store ``rows``; ``description`` (the fingerprint's) goes to info.json."""
        try:
            folder = os.path.join(self.root, fingerprint)
            os.makedirs(folder, exist_ok=True)
            info = os.path.join(folder, "info.json")
            if description is not None and not os.path.exists(info):
                text = json.dumps(description, sort_keys=True, indent=1, default=str)
                write_atomic(info, text.encode())
            for key, row in zip(keys, rows):
                payload = np.ascontiguousarray(row, dtype="<f4").tobytes()
                header = _HEADER.pack(
                    _MAGIC, self._entrydigest_parts(fingerprint, key), len(payload) // 4,
                    bytes_digest(payload),
                )
                path = self._path(fingerprint, key)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                write_atomic(path, header + payload)
        except OSError as exc:
            warn(
                f"could not write to the feature cache {self.root!r} ({exc}); the "
                "features were computed but not all of them were stored.",
                FeatureCacheWarning,
            )


_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
               | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
# What opening a link with O_NOFOLLOW fails with: Linux, macOS; FreeBSD; NetBSD.
_LINK_ERRNOS = {errno.ELOOP, errno.EMLINK} | (
    {errno.EFTYPE} if hasattr(errno, "EFTYPE") else set())


def _read_entry_file(path, size):
    """The ``size`` bytes of the regular file at ``path``; None when there is
    none. Raises ValueError for a link, a non-regular file (FIFO, device,
    socket, folder) or a file of another size, and reads nothing from them."""
    if not hasattr(os, "O_NOFOLLOW"):  # (Windows) refuse links before opening
        try:
            if stat_module.S_ISLNK(os.lstat(path).st_mode):
                raise ValueError("a symbolic link, not an entry file")
        except FileNotFoundError:
            return None
    try:
        # O_NOFOLLOW: a link fails (ELOOP) instead of being followed;
        # O_NONBLOCK: opening a FIFO does not wait for a writer.
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in _LINK_ERRNOS:
            raise ValueError("a symbolic link, not an entry file") from None
        raise
    try:
        status = os.fstat(fd)
        if not stat_module.S_ISREG(status.st_mode):
            raise ValueError("not a regular file")
        if status.st_size != size:
            raise ValueError(f"{'truncated' if status.st_size < size else 'too long'} "
                             f"({status.st_size} bytes, expected {size})")
        chunks, left = [], size
        while left:
            chunk = os.read(fd, left)
            if not chunk:  # shrunk since fstat
                raise ValueError(f"truncated ({size - left} bytes, expected {size})")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _remove(path):
    """Delete a discarded entry: a file, a link, a FIFO, or an empty folder
    where an entry belongs (a folder with contents is not the cache's to
    delete; writing the entry then fails, and is reported)."""
    try:
        if stat_module.S_ISDIR(os.lstat(path).st_mode):
            os.rmdir(path)  # (os.remove of a folder fails, EISDIR or EPERM by system)
        else:
            os.remove(path)
    except OSError:
        pass


_MEMORY = MemoryStore()
_COUNTS = {"hits": 0, "misses": 0}
_COUNTS_LOCK = threading.Lock()


def resolve_store(cache):
    """The store that ``cache=`` names, or None for no cache.

    ``None``/``False``: none; ``True``: this process's memory; a directory path or
    a ``joblib.Memory`` (its ``location``; ``Memory(None)`` caches nothing, as in
    joblib): on disk.
    """
    if cache is None or cache is False or cache is np.False_:
        return None
    if cache is True or cache is np.True_:
        return _MEMORY
    if isinstance(cache, (str, os.PathLike)):
        location = cache
    elif hasattr(cache, "cache") and hasattr(cache, "location"):  # joblib.Memory
        location = cache.location
        if location is None:
            return None
        if not isinstance(location, (str, os.PathLike)):
            raise TypeError(
                f"cache={cache!r} has location={location!r}; only a joblib.Memory "
                "with a directory location can hold features."
            )
    else:
        raise TypeError(
            "cache must be None, True (in memory), a directory path or a "
            f"joblib.Memory; got {type(cache).__name__}."
        )
    if not os.fspath(location):
        raise ValueError("cache='' is not a directory; pass a path, True or None.")
    location = os.path.expanduser(location)
    if os.path.exists(location) and not os.path.isdir(location):
        raise ValueError(f"cache={cache!r}: {os.fspath(location)!r} exists and is not "
                         "a directory.")
    return DiskStore(location)


def cached_features(store, fingerprint, keys, n_features, compute, description=None):
    """Features of the images with ``keys``: from ``store`` where it holds them,
    from ``compute(positions)`` (positions in ``keys``, or None for all) for the
    others, which are then stored. Each distinct missing image is computed once."""
    rows = store.get_many(fingerprint, keys, n_features)
    first_missing = {}
    for position, (key, row) in enumerate(zip(keys, rows)):
        if row is None and key not in first_missing:
            first_missing[key] = position
    features = np.empty((len(keys), n_features), dtype=np.float32)
    if first_missing:
        positions = list(first_missing.values())
        computed = compute(None if len(positions) == len(keys) else positions)
        if computed.shape != (len(positions), n_features):
            raise RuntimeError(
                f"the network returned features of shape {computed.shape[1:]}; the "
                f"extractor was fitted with {n_features} features."
            )
        computed = computed.astype(np.float32, copy=False)
        features[positions] = computed
        store.put_many(fingerprint, list(first_missing), computed, description)
        fresh = dict(zip(first_missing, computed))
    else:
        fresh = {}
    for position, (key, row) in enumerate(zip(keys, rows)):
        if row is not None:
            features[position] = row
        elif first_missing[key] != position:  # a repeat of an image computed above
            features[position] = fresh[key]
    with _COUNTS_LOCK:
        _COUNTS["misses"] += len(first_missing)
        _COUNTS["hits"] += len(keys) - len(first_missing)
    return features


# -- public helpers -------------------------------------------------------------
def feature_cache_info():
    """Counters of the feature cache in this process.

    Returns
    -------
    info : CacheInfo
        ``hits`` (images served without a forward pass: from a cache, memory
        or disk, or as a repeat of an image earlier in the same call),
        ``misses`` (images that went through the network), and what the
        in-memory store of ``cache=True`` holds: ``memory_entries``,
        ``memory_bytes`` and its bound ``memory_max_bytes``. The counters add up
        every ``transform`` of every extractor with a cache since the process
        started or since :func:`clear_feature_cache`.
    """
    entries, size, max_bytes = _MEMORY.info()
    with _COUNTS_LOCK:
        return CacheInfo(_COUNTS["hits"], _COUNTS["misses"], entries, size, max_bytes)


def clear_feature_cache():
    """Empty the in-memory feature store and the loaded backbones of this process,
    and reset the counters of :func:`feature_cache_info`. Disk caches are left
    alone (delete their folder to empty one)."""
    _MEMORY.clear()
    BACKBONES.clear()
    with _COUNTS_LOCK:
        _COUNTS["hits"] = _COUNTS["misses"] = 0


def set_feature_cache_size(max_bytes):
    """Bound the in-memory feature store (``cache=True``) of this process.

    Parameters
    ----------
    max_bytes : int
        Bytes of features kept (default 1 GiB); the least recently used entries are
        evicted past it. 0 keeps none.
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)) \
            or max_bytes < 0:
        raise ValueError(f"max_bytes must be a non-negative int; got {max_bytes!r}.")
    _MEMORY.resize(max_bytes)

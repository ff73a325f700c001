"""Every kind of ``X`` an estimator accepts, checked once and served in batches.

:func:`check_images` inspects ``X`` before any expensive work, raises a clear
error naming the problem and the sample, and returns an :class:`ImageSource`:

* :class:`ArraySource` - an in-memory array or tensor; batches are slices (or
  index selections) of it, with no per-sample Python work;
* :class:`PILSource` and :class:`PathSource` - images of any size, decoded (files
  lazily, batch by batch), converted and resized per image, in DataLoader workers
  when ``num_workers > 0``; never all in memory at once.
"""

import os
import warnings
from numbers import Integral

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset

from ._preprocess import apply_geometry

_CHUNK = 256  # samples per chunk when scanning an array for NaN/inf


def _is_path(x):
    return isinstance(x, (str, os.PathLike))


def is_tabular(X):
    """Whether ``X`` is flat, numeric, sklearn-style data (n_samples, n_features).

    Such input goes through scikit-learn's own validation; it is an image batch
    only when the estimator is told its ``input_shape``.
    """
    if X is None:  # let check_images say so, not sklearn's "scalar array"
        return False
    if hasattr(X, "tocsr") or type(X).__name__ == "DataFrame":
        return True
    if isinstance(X, torch.Tensor):
        return X.ndim <= 2
    if isinstance(X, (list, tuple)):
        if len(X) == 0:
            return False
        first = X[0]
        if _is_path(first) or isinstance(first, Image.Image):
            return False
        if isinstance(first, (np.ndarray, torch.Tensor)) and np.ndim(first) >= 2:
            return False
    if isinstance(X, np.ndarray) and X.dtype.kind in "OUS" and X.ndim == 1:
        return False
    if type(X).__name__ == "Series":
        return False
    try:
        ndim = np.asarray(X).ndim if hasattr(X, "__array__") else np.ndim(X)
    except Exception:  # ragged nested lists: let the image checks report it
        return False
    return ndim <= 2


def check_input_shape(input_shape, n_features):
    """Resolve ``input_shape`` ((H, W) or (H, W, C), one entry may be -1) for rows
    of ``n_features`` values, into a full (H, W, C) shape."""
    shape = tuple(input_shape)
    if len(shape) not in (2, 3) or not all(
        isinstance(s, Integral) and (s > 0 or s == -1) for s in shape
    ):
        raise ValueError(
            f"input_shape={input_shape!r} must be (height, width) or "
            "(height, width, channels) of positive ints, one of which may be -1."
        )
    if len(shape) == 2:
        shape = shape + (1,)
    if sum(s == -1 for s in shape) > 1:
        raise ValueError(f"input_shape={input_shape!r} may have at most one -1.")
    known = int(np.prod([s for s in shape if s != -1]))
    if -1 in shape:
        if n_features % known:
            raise ValueError(
                f"X has {n_features} features per row, which does not divide into "
                f"input_shape={input_shape!r}."
            )
        shape = tuple(n_features // known if s == -1 else s for s in shape)
    if int(np.prod(shape)) != n_features:
        raise ValueError(
            f"X has {n_features} features per row but input_shape={input_shape!r} "
            f"holds {int(np.prod(shape))} values."
        )
    return shape


class ImageSource:
    """Checked images, served as batches of (N, C, H, W) tensors.

    A batch is uint8 (0-255) or float32 (0-1) and lives on the CPU;
    ``geometry_done`` tells whether it was already resized and cropped.
    """

    geometry_done = False

    def __len__(self):
        raise NotImplementedError

    def batches(self, batch_size, *, indices=None, config=None, num_workers=0,
                pin_memory=False):
        """Yield the images (all, or those at ``indices``, in that order)."""
        raise NotImplementedError


class ArraySource(ImageSource):
    """Images held in memory as one (N, C, H, W) tensor (possibly a strided view)."""

    def __init__(self, images):
        self.images = images

    def __len__(self):
        return self.images.shape[0]

    @property
    def image_shape(self):
        return tuple(self.images.shape[1:])

    def batches(self, batch_size, *, indices=None, config=None, num_workers=0,
                pin_memory=False):
        n_samples = len(self) if indices is None else len(indices)
        if indices is not None:
            indices = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        for start in range(0, n_samples, batch_size):
            stop = min(start + batch_size, n_samples)
            if indices is None:
                batch = self.images[start:stop]
            else:
                batch = self.images[indices[start:stop]]
            if pin_memory:
                batch = batch.pin_memory()
            yield batch


class _ImageDataset(Dataset):
    """Decodes one image per item and applies the geometry, in a worker."""

    def __init__(self, items, config, in_chans):
        self.items = items
        self.config = config
        self.in_chans = in_chans

    def __len__(self):
        return len(self.items)

    def _open(self, index):
        return self.items[index]

    def __getitem__(self, index):
        image = self._open(index)
        if image.mode.startswith("I;16") or (image.mode == "I" and image.format == "PNG"):
            # 16-bit grey (0-65535): scale to 8 bits; convert() would clip at 255.
            image = Image.fromarray(
                (np.asarray(image, dtype=np.float32) / 257.0).round().astype(np.uint8)
            )
        mode = "L" if self.in_chans == 1 else "RGB"
        if image.mode != mode:
            image = image.convert(mode)
        tensor = torch.from_numpy(np.array(image, dtype=np.uint8, copy=True))
        tensor = tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1)
        if self.config is not None:
            tensor = apply_geometry(tensor, self.config)
        return tensor


class _FileDataset(_ImageDataset):
    def _open(self, index):
        path = self.items[index]
        try:
            with Image.open(path) as image:
                image.load()
                return image
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise ValueError(
                f"X[{index}] = {os.fspath(path)!r} is not a decodable image: {exc}"
            ) from exc


def _collate(images):
    first = images[0].shape
    for i, image in enumerate(images):
        if image.shape != first:
            raise ValueError(
                "images of different sizes cannot share a batch: an image has shape "
                f"{tuple(image.shape)} and another {tuple(first)}; give the "
                "estimator an image_size (or use a backbone whose preprocessing "
                "resizes) so that they are brought to one size."
            )
    return torch.stack(images)


class _PerImageSource(ImageSource):
    geometry_done = True
    _dataset_class = _ImageDataset

    def __init__(self, items, in_chans):
        self.items = items
        self.in_chans = in_chans

    def __len__(self):
        return len(self.items)

    def batches(self, batch_size, *, indices=None, config=None, num_workers=0,
                pin_memory=False):
        dataset = self._dataset_class(self.items, config, self.in_chans)
        sampler = range(len(self)) if indices is None else [int(i) for i in indices]
        loader = DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=num_workers,
            pin_memory=pin_memory,
            collate_fn=_collate,
        )
        iterator = iter(loader)
        try:
            yield from iterator
        finally:
            # Stop the workers now: after an error (say, an undecodable file) the
            # iterator sits in a traceback cycle, and shutting it down later, from
            # the garbage collector, stalls 5 s per worker.
            shutdown = getattr(iterator, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()


class PILSource(_PerImageSource):
    """A list of PIL images, converted and resized one by one."""


class PathSource(_PerImageSource):
    """Image files, decoded lazily, batch by batch (in workers when asked)."""

    _dataset_class = _FileDataset


def _array_to_tensor(X, *, channels_first_hint):
    """Check an image array and view it as an (N, C, H, W) tensor (no copy for
    uint8 and float32)."""
    is_tensor = isinstance(X, torch.Tensor)
    if is_tensor:
        X = X.detach().cpu()
        kind = "f" if X.is_floating_point() else ("c" if X.is_complex() else "i")
        if X.dtype == torch.bool:
            kind = "b"
        if X.dtype == torch.uint8:
            kind = "u"
    else:
        X = np.asarray(X)
        kind = X.dtype.kind
    if kind == "c":
        raise ValueError("Complex data not supported: images must be real numbers.")
    if kind not in "biuf":
        raise TypeError(
            f"images must be numbers (uint8 0-255 or float 0-1); got dtype {X.dtype}."
        )
    if X.shape[0] == 0:
        raise ValueError("X is empty: found 0 images.")
    if X.ndim == 3:
        X = X[:, None] if is_tensor else X[:, None, :, :]
    elif X.ndim == 4:
        last, second = X.shape[3], X.shape[1]
        channels_last = last in (1, 3, 4) and not (
            channels_first_hint and second in (1, 3, 4)
        )
        if not channels_last and second not in (1, 3, 4):
            raise ValueError(
                f"cannot tell the channel axis of images of shape {tuple(X.shape)}: "
                "use (N, H, W, C) or (N, C, H, W) with 1, 3 or 4 channels."
            )
        if channels_last:
            X = X.permute(0, 3, 1, 2) if is_tensor else X.transpose(0, 3, 1, 2)
    else:
        raise ValueError(
            f"images must be (N, H, W), (N, H, W, C) or (N, C, H, W); got an array "
            f"of shape {tuple(X.shape)}."
        )
    if is_tensor:
        tensor = X
    else:
        if X.dtype == np.uint8 or X.dtype == np.float32:
            with warnings.catch_warnings():  # read-only inputs are never written to
                warnings.simplefilter("ignore", UserWarning)
                tensor = torch.from_numpy(X)
        elif X.dtype == np.uint16:
            tensor = torch.from_numpy(X.astype(np.float32) / 65535.0)
        else:
            tensor = torch.from_numpy(X.astype(np.float32))
    if tensor.dtype not in (torch.uint8, torch.float32):
        tensor = tensor.float()
    if tensor.dtype == torch.float32:
        _check_finite_and_range(tensor)
    return tensor


def _check_finite_and_range(images):
    low, high = np.inf, -np.inf
    for start in range(0, images.shape[0], _CHUNK):
        chunk = images[start:start + _CHUNK]
        finite = torch.isfinite(chunk).reshape(chunk.shape[0], -1).all(dim=1)
        if not bool(finite.all()):
            index = start + int(torch.nonzero(~finite)[0, 0])
            sample = images[index]
            what = "NaN" if bool(torch.isnan(sample).any()) else "infinity"
            raise ValueError(f"Input X contains {what}: sample {index} has {what} values.")
        low = min(low, float(chunk.min()))
        high = max(high, float(chunk.max()))
    if low < -0.01 or high > 1.01:
        warnings.warn(
            f"float images are read as values in [0, 1], but X ranges over "
            f"[{low:.3g}, {high:.3g}]; scale them (e.g. divide by their maximum) or "
            "pass uint8 images (0-255).",
            UserWarning,
            stacklevel=4,
        )


def _check_list(X, in_chans):
    """A list of paths or of PIL images; mixed kinds are refused by index."""
    first = X[0]
    if _is_path(first):
        for i, item in enumerate(X):
            if not _is_path(item):
                raise TypeError(
                    f"X[{i}] is a {type(item).__name__}, but X[0] is a file path; X "
                    "must hold one kind of image."
                )
            if not os.path.isfile(item):
                raise ValueError(f"X[{i}] = {os.fspath(item)!r}: no such file.")
        return PathSource(list(X), in_chans)
    if isinstance(first, Image.Image):
        for i, item in enumerate(X):
            if not isinstance(item, Image.Image):
                raise TypeError(
                    f"X[{i}] is a {type(item).__name__}, but X[0] is a PIL image; X "
                    "must hold one kind of image."
                )
        return PILSource(list(X), in_chans)
    arrays = []
    for i, item in enumerate(X):
        if not isinstance(item, (np.ndarray, torch.Tensor)):
            raise TypeError(
                f"X[{i}] is a {type(item).__name__}: images must be arrays, PIL images "
                "or file paths."
            )
        if tuple(item.shape) != tuple(first.shape):
            raise ValueError(
                f"images of different sizes in one array: X[{i}] has shape "
                f"{tuple(item.shape)}, X[0] has {tuple(first.shape)}. Pass them as a "
                "list of PIL images or file paths, which are resized one by one."
            )
        arrays.append(np.asarray(item))
    return np.stack(arrays)


def check_images(X, *, in_chans=3):
    """Check image input ``X`` and return an :class:`ImageSource`.

    Parameters
    ----------
    X : array-like, tensor, list of PIL images or list of paths
        ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)`` arrays or tensors
        (uint8 0-255, or float 0-1); a list of PIL images; a list or 1-D array of
        file paths. Flat ``(n_samples, n_features)`` input is handled by the
        estimators, with their ``input_shape``.
    in_chans : int
        Channels the model takes; 1-channel (grey) and 4-channel (RGBA) images are
        converted to it.

    Returns
    -------
    source : ImageSource
    """
    if X is None:
        raise ValueError("X is None; expected images.")
    if type(X).__name__ == "Series":
        X = X.tolist()
    if isinstance(X, np.ndarray) and X.ndim == 1 and X.dtype.kind in "OUS":
        X = X.tolist()
    if isinstance(X, (list, tuple)):
        if len(X) == 0:
            raise ValueError("X is empty: found 0 images.")
        X = _check_list(X, in_chans)
        if isinstance(X, ImageSource):
            return X
    is_tensor = isinstance(X, torch.Tensor)
    tensor = _array_to_tensor(X, channels_first_hint=is_tensor)
    channels = tensor.shape[1]
    if channels not in (1, 3, 4) or (in_chans == 1 and channels not in (1, 3, 4)):
        raise ValueError(f"images have {channels} channels; expected 1, 3 or 4.")
    return ArraySource(tensor)

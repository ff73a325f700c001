"""Every kind of ``X`` an estimator accepts, checked once and served in batches.

:func:`check_images` inspects ``X`` before any expensive work, raises a clear
error naming the problem and the sample, and returns an :class:`ImageSource`:

* :class:`ArraySource` - an in-memory array or tensor; batches are slices (or
  index selections) of it, with no per-sample Python work;
* :class:`PILSource` and :class:`PathSource` - images of any size, decoded (files
  lazily, batch by batch), converted and resized per image, in DataLoader workers
  when ``num_workers > 0``; never all in memory at once.

``source.with_transform(transform, in_chans=...)`` is the same images with a
per-image training transform (:class:`~sktransfer.training.PerSample`) applied
after the resize and crop, before batching; an array's images then go one by
one too, like PIL images.
"""

import os
import stat
import warnings
from numbers import Integral

import multiprocessing
import traceback

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset, get_worker_info

from .._utils.caller import warn
from .._utils.frames import in_memory
from .._utils.notes import add_note
from .._utils.seeding import loader_generator
from ._preprocess import apply_geometry, match_channels, needs_resize

_CHUNK = 256  # samples per chunk when scanning an array for NaN/inf


def _is_path(x):
    return isinstance(x, (str, os.PathLike))


def _frame_paths(X):
    """The paths of a one-column DataFrame of file paths (str or os.PathLike), as a
    list; ``None`` for any other ``X``."""
    if type(X).__name__ != "DataFrame" or X.ndim != 2 or X.shape[1] != 1:
        return None
    column = X.iloc[:, 0]
    if len(column) == 0 or getattr(column.dtype, "kind", "O") not in "OUS":
        return None
    if not _is_path(column.iloc[0]):
        return None
    return column.tolist()


def _refuse_single_path(X):
    """A lone path (not in a list) is refused with what to pass instead."""
    path = os.fspath(X)
    what = "a directory" if os.path.isdir(path) else (
        "a file" if os.path.isfile(path) else "neither a file nor a directory")
    raise ValueError(
        f"X is a single path ({path!r}, {what}), not a collection of images; pass a "
        "list of image file paths instead: [X] for one image file, or "
        "sktransfer.datasets.load_image_folder(root) for a folder of class "
        "subfolders."
    )


def is_tabular(X):
    """Whether ``X`` is flat, numeric, sklearn-style data (n_samples, n_features).

    Such input goes through scikit-learn's own validation; it is an image batch
    only when the estimator is told its ``input_shape``. A one-column DataFrame
    of file paths is not tabular (it is a list of paths); a single path is not
    either (:func:`check_images` refuses it with advice).
    """
    if X is None:  # let check_images say so, not sklearn's "scalar array"
        return False
    if _is_path(X):
        return False
    if type(X).__name__ == "DataFrame":
        return _frame_paths(X) is None
    if hasattr(X, "tocsr"):
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

    def with_transform(self, transform, *, in_chans):
        """These images, each passed through ``transform`` (one ``(C, H, W)``
        image at a time, after resize and crop, with ``in_chans`` channels)
        before batching; ``geometry_done`` is then True."""
        raise NotImplementedError

    def first_image_size(self):
        """``(height, width)`` of the first image as read, before any resize
        (a file is decoded for it)."""
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

    def first_image_size(self):
        return tuple(self.images.shape[-2:])

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

    def with_transform(self, transform, *, in_chans):
        return _TransformedArraySource(self.images, in_chans, transform)


class _ImageDataset(Dataset):
    """Decodes one image per item and applies the geometry, in a worker.

    Images are turned upright (EXIF orientation), and an image that is resized
    (or turned to grey) is first made float32 in [0, 1], exactly as an array is,
    so that files, PIL images and arrays of the same pixels agree; images left
    at their size stay uint8 (cropping and channel copies are exact). A
    ``transform`` (training only) is applied last, to the image at its final size.
    """

    def __init__(self, items, config, in_chans, transform=None):
        self.items = items
        self.config = config
        self.in_chans = in_chans
        self.transform = transform

    def __len__(self):
        return len(self.items)

    def _open(self, index):
        """The image at ``index``, upright (EXIF orientation applied)."""
        return _upright(self.items[index])

    def __getitem__(self, index):
        try:
            return self._decode(index)
        except Exception as exc:
            if get_worker_info() is None:
                raise
            # In a worker: hand the error to the main process as a batch, which
            # raises it with its own message first (not "Caught ... in worker").
            return _WorkerError(exc)

    def _where(self, index):
        """How errors and warnings name the image at ``index``."""
        return f"X[{index}]"

    def _tensor(self, index):
        """The image at ``index`` as a (C, H, W) tensor, uint8 or float32."""
        return _image_to_tensor(self._open(index), self.in_chans,
                                where=self._where(index))

    def _decode(self, index):
        tensor = self._tensor(index)
        resize = self.config is not None and needs_resize(*tensor.shape[-2:], self.config)
        if tensor.dtype == torch.uint8 and (
            resize or (self.in_chans == 1 and tensor.shape[0] > 1)
        ):
            # As for an array: to float32 in [0, 1] before any arithmetic on
            # pixels (resize, RGB to grey), never rounded back to uint8.
            tensor = tensor.float().div_(255.0)
        if tensor.dtype == torch.uint8:  # exact channel changes only
            if self.in_chans == 3 and tensor.shape[0] == 4:
                tensor = tensor[:3]
            elif self.in_chans == 3 and tensor.shape[0] == 1:
                tensor = tensor.expand(3, *tensor.shape[1:])
        else:
            tensor = match_channels(tensor, self.in_chans)
        if self.config is not None:
            tensor = apply_geometry(tensor, self.config)
        if self.transform is not None:
            tensor = self.transform(tensor)
        return tensor


class _TensorDataset(_ImageDataset):
    """The images of an (N, C, H, W) tensor, one per item (each a copy: a
    transform never writes into the caller's array)."""

    def _tensor(self, index):
        return self.items[index].clone()


_GREY_MODES = {"1", "L", "LA", "La", "I", "F"}


def _upright(image):
    """``image`` turned as its EXIF Orientation tag says (the image itself when it
    has none), as a camera or phone that stores photos sideways means it shown."""
    try:
        orientation = image.getexif().get(0x0112, 1)
    except Exception:  # unreadable EXIF: show the pixels as stored
        return image
    if orientation in (2, 3, 4, 5, 6, 7, 8):
        image_format = image.format
        image = ImageOps.exif_transpose(image)
        image.format = image_format  # exif_transpose loses it
    return image


def _float_pixels(image, where):
    """A mode "F" (32-bit float) image's values, read as float arrays are: in
    [0, 1], used as they are (a warning when they fall outside), NaN and
    infinity refused."""
    array = np.array(image, dtype=np.float32, copy=True)
    finite = np.isfinite(array)
    if not finite.all():
        what = "NaN" if np.isnan(array).any() else "infinity"
        raise ValueError(f"{where} is a float image that contains {what}.")
    if array.size and (array.min() < -0.01 or array.max() > 1.01):
        warn(
            f"{where} is a float image, read as values in [0, 1] as float arrays "
            f"are, but it ranges over [{array.min():.3g}, {array.max():.3g}]; scale "
            "it to [0, 1] or store 8- or 16-bit pixels.",
            UserWarning,
        )
    return array


def _image_to_tensor(image, in_chans, *, where="the image"):
    """A PIL image as a (C, H, W) tensor: uint8 for 8-bit images (1, 3 or 4
    channels), float32 in [0, 1] for 16-bit grey, float32 as they are for
    float images (mode "F", checked as float arrays are; ``where`` names the
    image in their errors)."""
    if image.mode.startswith("I;16") or (image.mode == "I" and image.format == "PNG"):
        # 16-bit grey (0-65535): scale like a uint16 array; convert() would clip.
        array = np.asarray(image, dtype=np.float32) / 65535.0
    elif image.mode == "F":
        # Floats, as a float array is read; convert("L") would round them to
        # whole 0-255 values (all black for [0, 1]) and clip the rest.
        array = _float_pixels(image, where)
    else:
        if image.mode not in ("L", "RGB", "RGBA"):
            image = image.convert("L" if image.mode in _GREY_MODES else "RGB")
        array = np.array(image, dtype=np.uint8, copy=True)
    tensor = torch.from_numpy(array)
    return tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1)


class _DecompressionBombError(ValueError, Image.DecompressionBombError):
    """PIL's DecompressionBombError, as the ValueError of an undecodable image."""


def _read_file(path):
    with Image.open(path) as image:
        image.load()
        return _upright(image)


def read_image_file(path, where):
    """The image file at ``path``, loaded and upright, as the estimators read it.

    A decompression bomb, or a file PIL cannot decode, is a ValueError whose
    message begins with ``where``; PIL's decompression-bomb warning is re-issued
    naming it too.
    """
    try:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                return _read_file(path)
        except Image.DecompressionBombWarning as warning:
            # Re-issued naming the file; the image is then read as PIL would.
            warn(f"{where}: {warning}", Image.DecompressionBombWarning)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return _read_file(path)
    except Image.DecompressionBombError as exc:
        raise _DecompressionBombError(
            f"{where} is not decoded: {exc} Raise PIL.Image.MAX_IMAGE_PIXELS "
            "(or set it to None) to read images this large."
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"{where} is not a decodable image: {exc}") from exc


def decode_image(item, *, where):
    """A file path or PIL image decoded exactly as the estimators decode it, before
    any resize: upright by its EXIF orientation, a (C, H, W) tensor, uint8 for
    8-bit images, float32 in [0, 1] for 16-bit and float ones (errors name
    ``where``). What a drawing of the image should show."""
    image = read_image_file(item, where) if _is_path(item) else _upright(item)
    return _image_to_tensor(image, None, where=where)


class _FileDataset(_ImageDataset):
    def _where(self, index):
        return f"X[{index}] = {os.fspath(self.items[index])!r}"

    def _open(self, index):
        return read_image_file(self.items[index], self._where(index))


class _WorkerError:
    """An exception raised in a DataLoader worker, carried to the main process
    (as the worker's batch) to be raised there with its own message."""

    def __init__(self, exc):
        self.exc_type = type(exc)
        self.message = str(exc)
        self.args = exc.args
        self.worker = getattr(get_worker_info(), "id", None)
        self.traceback = "".join(traceback.format_exception(exc))

    def __reduce__(self):
        state = dict(self.__dict__)
        try:  # the type must come back in the main process
            import pickle
            pickle.dumps(self.exc_type)
        except Exception:
            state["exc_type"] = RuntimeError
        return (_WorkerError.__new__, (_WorkerError,), state)

    def reraise(self):
        try:
            exc = self.exc_type(*self.args)
            if str(exc) != self.message:
                raise TypeError
        except Exception:
            exc = (ValueError if issubclass(self.exc_type, ValueError)
                   else RuntimeError)(self.message)
        add_note(exc,
            f"(raised in DataLoader worker process {self.worker}; its traceback:)\n"
            + self.traceback
        )
        raise exc


def _collate(images):
    for image in images:
        if isinstance(image, _WorkerError):
            return image
    try:
        return _stack(images)
    except Exception as exc:
        if get_worker_info() is None:
            raise
        return _WorkerError(exc)


def _stack(images):
    if any(image.dtype != images[0].dtype for image in images):
        # Some images were resized (float32), some not (uint8): all to [0, 1].
        images = [image.float().div_(255.0) if image.dtype == torch.uint8 else image
                  for image in images]
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


def _worker_processes(num_workers):
    """``(num_workers, multiprocessing_context)`` for a DataLoader started here.

    In a joblib (loky) worker, multiprocessing's default start method is loky's,
    whose processes a DataLoader cannot start: take the platform's own default
    (what a DataLoader uses in an ordinary process). A daemonic process (a worker
    of joblib's "multiprocessing" backend, of a ``multiprocessing.Pool``) may not
    have children at all: decode in this process, with a warning.
    """
    if num_workers == 0:
        return 0, None
    if multiprocessing.current_process().daemon:
        warn(
            f"num_workers={num_workers} is ignored: this is a daemonic process (for "
            "instance a worker of joblib's 'multiprocessing' backend or of a "
            "multiprocessing.Pool), which may not start DataLoader worker "
            "processes; images are decoded in this process instead. Use joblib's "
            "default 'loky' backend to decode in workers, or num_workers=0 to "
            "silence this warning.",
            UserWarning,
        )
        return 0, None
    methods = multiprocessing.get_all_start_methods()
    if multiprocessing.get_start_method(allow_none=True) not in (None, *methods):
        return num_workers, multiprocessing.get_context(methods[0])
    return num_workers, None


class _PerImageSource(ImageSource):
    geometry_done = True
    _dataset_class = _ImageDataset

    def __init__(self, items, in_chans, transform=None):
        self.items = items
        self.in_chans = in_chans
        self.transform = transform

    def __len__(self):
        return len(self.items)

    def with_transform(self, transform, *, in_chans):
        return type(self)(self.items, in_chans, transform)

    def first_image_size(self):
        dataset = self._dataset_class(self.items, None, self.in_chans)
        return tuple(dataset._tensor(0).shape[-2:])

    def batches(self, batch_size, *, indices=None, config=None, num_workers=0,
                pin_memory=False):
        dataset = self._dataset_class(self.items, config, self.in_chans, self.transform)
        sampler = range(len(self)) if indices is None else [int(i) for i in indices]
        num_workers, context = _worker_processes(num_workers)
        loader = DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=num_workers,
            pin_memory=pin_memory,
            collate_fn=_collate,
            multiprocessing_context=context,
            generator=loader_generator(),
        )
        iterator = iter(loader)
        try:
            for batch in iterator:
                if isinstance(batch, _WorkerError):
                    batch.reraise()
                yield batch
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


class _TransformedArraySource(_PerImageSource):
    """An array's images served one by one, as PIL images are, for a per-image
    transform (the array is not copied; each image is, when it is read)."""

    _dataset_class = _TensorDataset

    @property
    def image_shape(self):
        return tuple(self.items.shape[1:])


_UINT8_OR_16 = (np.dtype(np.uint8), np.dtype(np.uint16))
# Unsigned tensors wider than 8 bits (torch >= 2.3) have no min/max kernels.
_WIDE_UNSIGNED_TENSORS = tuple(
    getattr(torch, name) for name in ("uint16", "uint32", "uint64") if hasattr(torch, name)
)


def _integers_as_uint8(X, is_tensor):
    """Integer images other than uint8 and uint16 (int8 to int64, uint32, uint64)
    hold 8-bit pixels: check that they lie in 0-255 and return them as uint8."""
    if (X.numel() if is_tensor else X.size) > 0:
        low, high = int(X.min()), int(X.max())
        if low < 0 or high > 255:
            raise ValueError(
                f"integer images are read as 8-bit pixels and must hold values in "
                f"0-255, but X (dtype {X.dtype}) ranges over [{low}, {high}]. Pass "
                "uint16 images for 0-65535, or floats scaled to [0, 1]."
            )
    return X.to(torch.uint8) if is_tensor else X.astype(np.uint8)


def _array_to_tensor(X, *, channels_first_hint):
    """Check an image array and view it as an (N, C, H, W) tensor (no copy for
    uint8 and float32)."""
    is_tensor = isinstance(X, torch.Tensor)
    if is_tensor and X.dtype in _WIDE_UNSIGNED_TENSORS:
        # torch has no min/max for these: read them as the numpy arrays they are.
        X, is_tensor = X.detach().cpu().numpy(), False
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
        if X.shape[2] in (3, 4) and min(X.shape[:2]) > 4:
            # (N, H, W) grayscale images 3 or 4 pixels wide, or, far likelier, one
            # colour image (H, W, C) given without its batch axis
            n, height, width = tuple(X.shape)
            warn(f"X of shape {(n, height, width)} is read as {n} grayscale images "
                 f"of {height} x {width} pixels; one colour image is X[None], of "
                 f"shape {(1, n, height, width)}.", UserWarning)
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
    if kind in "iu" and X.dtype not in ((torch.uint8,) if is_tensor else _UINT8_OR_16):
        X = _integers_as_uint8(X, is_tensor)
    if is_tensor:
        tensor = X
    else:
        if any(stride < 0 for stride in X.strides):  # X[::-1]: torch cannot view it
            X = np.ascontiguousarray(X)
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
        warn(
            f"float images are read as values in [0, 1], but X ranges over "
            f"[{low:.3g}, {high:.3g}]; scale them (e.g. divide by their maximum) or "
            "pass uint8 images (0-255).",
            UserWarning,
        )


def _refuse_path(index, path):
    """Say why the path ``X[index]``, which is not a regular file, cannot be read."""
    where = f"X[{index}] = {os.fspath(path)!r}"
    try:
        status = os.stat(path)
    except FileNotFoundError:
        if os.path.lexists(path):
            raise ValueError(f"{where} is a broken symbolic link: its target does "
                             "not exist.") from None
        hint = ""
        if isinstance(path, str) and (" " in path.strip() or not os.path.splitext(path)[1]):
            hint = (" Strings are file paths for an image backbone; if X holds texts, "
                    "use a text backbone, e.g. model='all-MiniLM-L6-v2'.")
        raise ValueError(f"{where}: no such file.{hint}") from None
    except OSError as exc:  # a parent folder that may not be searched, say
        raise ValueError(f"{where} cannot be read: {exc.strerror}.") from None
    if stat.S_ISDIR(status.st_mode):
        raise ValueError(
            f"{where} is a folder, not an image file; for a folder of class "
            "subfolders pass the paths and labels of "
            "sktransfer.datasets.load_image_folder(folder), for a flat folder of "
            "images sktransfer.datasets.list_image_files(folder)."
        )
    raise ValueError(
        f"{where} is not a regular file (a named pipe, a device or a socket), so "
        "it is not read as an image; pass image files."
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
                _refuse_path(i, item)
        # Every os.PathLike becomes its path string, which every Pillow version
        # opens (Pillow < 10 knows str and pathlib.Path only).
        return PathSource([os.fspath(item) for item in X], in_chans)
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
        ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)`` numpy arrays or torch
        tensors, or a list of equal-shape arrays, with pixels by dtype:

        * uint8 - 0-255;
        * other integers (int8, int16, int32, int64, uint32, uint64 and the torch
          integer tensors, e.g. ``torch.long``) - 8-bit pixels, read exactly as
          the same uint8 image; they must lie in 0-255, and a value outside is a
          ValueError naming the range found (no wider range is guessed);
        * uint16 - 0-65535 (16-bit images), scaled by 1/65535;
        * bool - False/True as 0 and full intensity;
        * float16, float32, float64 - values in [0, 1] (others warn).

        Or images of any size: a list of PIL images; file paths (``str`` or any
        ``os.PathLike`` such as ``pathlib.Path``) in a list, tuple, 1-D array,
        pandas Series or one-column DataFrame. PIL images and files are turned
        upright by their EXIF orientation; 16-bit grey ones follow the uint16
        rule and float ones (mode ``"F"``, float TIFFs) the float rule. A path
        that is not a regular file is refused saying what it is (a folder, a
        named pipe, a broken link); a single path (a folder or one file, not in
        a list) is refused with what to pass instead. Flat
        ``(n_samples, n_features)`` input is handled by the estimators, with their
        ``input_shape`` (integer rows keep the rules above).
    in_chans : int
        Channels the model takes; 1-channel (grey) and 4-channel (RGBA) images are
        converted to it.

    Returns
    -------
    source : ImageSource
    """
    if X is None:
        raise ValueError("X is None; expected images.")
    if _is_path(X):
        _refuse_single_path(X)
    paths = _frame_paths(X)
    if paths is not None:
        X = paths
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

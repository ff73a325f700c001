"""Offline builders of small real-image tasks, from photographs that scikit-image
and scikit-learn ship (no download)."""

import numpy as np
from sklearn.utils import check_random_state

#: Photographs used as classes by :func:`load_photo_patches`.
PHOTO_CLASSES = (
    "astronaut", "brick", "camera", "chelsea", "coffee", "coins", "grass",
    "gravel", "moon", "rocket",
)


def _photo(name):
    try:
        from skimage import data
    except ImportError as exc:
        raise ImportError(
            "the photo datasets need scikit-image: pip install scikit-image "
            "(or sktransfer[examples])."
        ) from exc
    image = np.asarray(getattr(data, name)())
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
    classes : sequence of str, default=PHOTO_CLASSES
        Names of scikit-image ``data`` photographs.
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
    rng = check_random_state(random_state)
    images, labels = [], []
    for name in classes:
        photo = _photo(name)
        height, width = photo.shape[:2]
        half = width // 2
        low = 0 if split == "train" else half
        if half < patch_size or height < patch_size:
            raise ValueError(f"photo {name!r} is too small for {patch_size}px patches.")
        for _ in range(n_per_class):
            top = rng.randint(0, height - patch_size + 1)
            left = low + rng.randint(0, half - patch_size + 1)
            images.append(photo[top:top + patch_size, left:left + patch_size])
            labels.append(name)
    return np.stack(images), np.asarray(labels)

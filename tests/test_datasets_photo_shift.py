"""load_photo_shift: crops as photographed -> the same photographs rendered another way."""

import hashlib

import numpy as np
import pytest

from sktransfer.datasets import (
    PHOTO_CLASSES,
    PHOTO_SHIFTS,
    _colour_photo,
    load_photo_shift,
)

SMALL = dict(n_per_class=6, n_test_per_class=4, patch_size=16)


def _digest(image):
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()


def _shared_images(first, second):
    """The images of ``first`` equal to an image of ``second``, compared by digest."""
    digests = {_digest(image) for image in second}
    return [image for image in first if _digest(image) in digests]


@pytest.fixture(scope="module", params=PHOTO_SHIFTS)
def small(request):
    return load_photo_shift(request.param, **SMALL, random_state=0)


def test_shapes_dtypes_labels_and_layout(small):
    n_classes = len(PHOTO_CLASSES)
    for part, per_class in (("source", 6), ("target", 6), ("test", 4)):
        X, y = small[f"X_{part}"], small[f"y_{part}"]
        assert X.shape == (n_classes * per_class, 16, 16, 3) and X.dtype == np.uint8
        assert y.shape == (len(X),) and np.issubdtype(y.dtype, np.integer)
        np.testing.assert_array_equal(np.bincount(y), [per_class] * n_classes)
        np.testing.assert_array_equal(small[f"{part}_origin"][:, 0], y)
    assert small.X_test_source.shape == small.X_test.shape
    assert small.X_test_source.dtype == np.uint8
    assert small.target_names.tolist() == list(PHOTO_CLASSES)
    assert small.shift in PHOTO_SHIFTS and small.shift in small.DESCR
    # the y == -1 convention of mix_domains, as the digit shifts give it
    n_source = len(small.X_source)
    np.testing.assert_array_equal(small.X_train[:n_source], small.X_source)
    np.testing.assert_array_equal(small.X_train[n_source:], small.X_target)
    np.testing.assert_array_equal(small.y_train[:n_source], small.y_source)
    assert np.all(small.y_train[n_source:] == -1)
    np.testing.assert_array_equal(small.sample_domain, np.where(small.y_train == -1, -1, 1))


def test_default_sizes():
    data = load_photo_shift("grey")
    assert data.X_source.shape == data.X_target.shape == (400, 64, 64, 3)
    assert data.X_test.shape == data.X_test_source.shape == (200, 64, 64, 3)


def test_source_crops_are_the_photographs_pixels(small):
    photos = [_colour_photo(name) for name in small.target_names]
    for X, origin in ((small.X_source, small.source_origin),
                      (small.X_test_source, small.test_origin)):
        for image, (label, top, left) in zip(X, origin):
            np.testing.assert_array_equal(image, photos[label][top:top + 16, left:left + 16])


def test_no_test_crop_is_in_the_training_data(small):
    training = np.concatenate([small.X_source, small.X_target])
    for test in (small.X_test, small.X_test_source):
        # A rendering can flatten a crop of a plain region (the moon's sky, a
        # posterized wall) to one colour, which another crop may also show.
        for image in _shared_images(test, training):
            assert (image == image[0, 0]).all()
    # Stronger: no test crop shares a pixel with a training crop of its photograph.
    for train_origin in (small.source_origin, small.target_origin):
        for label, top, left in small.test_origin:
            same = train_origin[train_origin[:, 0] == label]
            overlap = ((np.abs(same[:, 1] - top) < 16) & (np.abs(same[:, 2] - left) < 16))
            assert not overlap.any()
    # and the source and target training crops do not overlap either
    for label, top, left in small.target_origin:
        same = small.source_origin[small.source_origin[:, 0] == label]
        assert not ((np.abs(same[:, 1] - top) < 16) & (np.abs(same[:, 2] - left) < 16)).any()


@pytest.mark.parametrize("shift", PHOTO_SHIFTS)
def test_same_seed_same_task_other_seed_other_task(shift):
    first = load_photo_shift(shift, **SMALL, random_state=1)
    again = load_photo_shift(shift, **SMALL, random_state=np.random.RandomState(1))
    other = load_photo_shift(shift, **SMALL, random_state=2)
    for key in ("X_source", "X_target", "X_test", "X_test_source", "test_origin"):
        np.testing.assert_array_equal(first[key], again[key])
        assert not np.array_equal(first[key], other[key])


def _colour_rows(data):
    photos = [_colour_photo(name) for name in data.target_names]
    is_colour = [not (np.array_equal(p[..., 0], p[..., 1])
                      and np.array_equal(p[..., 0], p[..., 2])) for p in photos]
    return np.asarray(is_colour)[data.y_test]


def test_each_rendering_changes_the_same_crop():
    for shift in PHOTO_SHIFTS:
        data = load_photo_shift(shift, **SMALL, random_state=0)
        source, target = data.X_test_source.astype(float), data.X_test.astype(float)
        colour = _colour_rows(data)
        changed = (target != source).any(axis=(1, 2, 3))
        if shift == "grey":     # only the colour photographs change
            assert changed[colour].all() and not changed[~colour].any()
        else:
            assert changed.mean() > 0.9, shift
        assert np.abs(target - source)[colour].mean() > 3, shift


def test_grey_is_the_luminance_on_three_channels():
    data = load_photo_shift("grey", **SMALL, random_state=0)
    X = data.X_test
    assert np.array_equal(X[..., 0], X[..., 1]) and np.array_equal(X[..., 0], X[..., 2])
    luminance = data.X_test_source.astype(float) @ [0.299, 0.587, 0.114]
    assert np.abs(X[..., 0] - luminance).max() <= 0.5 + 1e-9


def test_night_is_dark_and_blue():
    data = load_photo_shift("night", **SMALL, random_state=0)
    night, day = data.X_test.astype(float), data.X_test_source.astype(float)
    assert night.mean() < 0.4 * day.mean()
    red, blue = night[..., 0].mean(), night[..., 2].mean()
    assert blue > 1.3 * red


def test_lowres_is_blocks_of_four_pixels():
    data = load_photo_shift("lowres", **SMALL, random_state=0)
    X = data.X_test.reshape(-1, 4, 4, 4, 4, 3)     # (n, block row, 4, block column, 4, 3)
    assert (X == X[:, :, :1, :, :1]).all()
    # each block is the mean of the crop's pixels under it
    means = data.X_test_source.reshape(-1, 4, 4, 4, 4, 3).mean(axis=(2, 4))
    assert np.abs(X[:, :, 0, :, 0] - means).max() <= 0.5 + 1e-4


def test_posterize_keeps_few_colour_levels():
    data = load_photo_shift("posterize", **SMALL, random_state=0)
    levels = np.isin(data.X_test, [0, 85, 170, 255])
    assert levels.mean() > 0.5           # away from the inked edges
    assert np.isin(data.X_test_source, [0, 85, 170, 255]).mean() < 0.1


def test_scikit_learn_photographs_as_classes():
    data = load_photo_shift("night", classes=("china", "flower"), n_per_class=3,
                            n_test_per_class=2, patch_size=32, random_state=0)
    assert data.target_names.tolist() == ["china", "flower"]
    assert data.X_source.shape == (6, 32, 32, 3) and set(data.y_test) == {0, 1}


@pytest.mark.parametrize("kwargs, match", [
    ({"shift": "sepia"}, "'posterize', 'night', 'lowres', 'grey'"),
    ({"shift": None}, "not a known rendering"),
    ({"n_per_class": 0}, "n_per_class=0"),
    ({"n_per_class": 2.5}, "n_per_class=2.5"),
    ({"n_test_per_class": True}, "n_test_per_class=True"),
    ({"patch_size": 4}, "at least 8"),
    ({"patch_size": 151}, "too large for the photo 'chelsea'"),
    ({"classes": ("astronaut",)}, "fewer than two"),
    ({"classes": "astronaut"}, "fewer than two"),
    ({"classes": ("astronaut", "rocket", "astronaut")}, "twice"),
    # an unknown name was an AttributeError of skimage's; a function of
    # skimage.data that is no photograph (download_all reaches the network)
    ({"classes": ("astronaut", "nope")}, "classes: 'nope' is not a photograph"),
    ({"classes": ("astronaut", "download_all")}, "classes: 'download_all' is not a"),
    ({"classes": ("astronaut", 3)}, "classes: 3 is not a photograph"),
    # a stack of 200 faces of 25 x 25 pixels is no photograph either
    ({"classes": ("astronaut", "lfw_subset")}, "lfw_subset.*not a photograph"),
])
def test_bad_values_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_photo_shift(**kwargs)


def test_the_digit_shifts_refuse_unknown_photographs_and_take_one_name():
    from sktransfer.datasets import load_digits_shift, load_photo_patches

    with pytest.raises(ValueError, match="photos: 'nope' is not a photograph"):
        load_digits_shift(photos=["nope"])
    with pytest.raises(ValueError, match="classes: 'nope' is not a photograph"):
        load_photo_patches(classes=["astronaut", "nope"])
    # one name is one photograph, not its letters ('c', 'h', ...)
    assert load_digits_shift(photos="china").photos == ("china",)

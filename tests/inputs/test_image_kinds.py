"""What ``X`` may be (``inputs/_sources.py``, through ``inputs/_validation.py``):
every input kind, dtype, layout and container of images gives the features of the
same uint8 pixels; images of mixed sizes; files decoded lazily, batch by batch.

Estimator-level tests use the tiny random ``simple_cnn`` backbone (64 features, no
resize) on small images, so the file runs in seconds on a CPU.
"""

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

from sktransfer import PretrainedFeatureExtractor
from sktransfer.inputs import ArraySource, PathSource, PILSource, check_images
from sktransfer.inputs import _sources

from image_inputs import TOL, features, tiny, write_pngs


# -- every input kind, same pixels, same features ------------------------


def test_float_images_equal_uint8_over_255(rgb, expected):
    np.testing.assert_allclose(features(rgb.astype(np.float32) / 255), expected, **TOL)
    # float64 is accepted too (converted to float32).
    np.testing.assert_allclose(features(rgb / 255.0), expected, **TOL)


@pytest.mark.parametrize("shape", ["NHW", "NHW1", "N1HW"])
def test_grey_images_equal_grey_repeated_to_rgb(grey, shape):
    expected = features(np.repeat(grey[..., None], 3, axis=-1))
    X = {"NHW": grey, "NHW1": grey[..., None], "N1HW": grey[:, None]}[shape]
    np.testing.assert_allclose(features(X), expected, **TOL)


def test_channels_first_numpy(rgb, expected):
    np.testing.assert_allclose(features(rgb.transpose(0, 3, 1, 2)), expected, **TOL)
    # A non-contiguous (N, C, H, W) view gives the same.
    nchw = np.ascontiguousarray(rgb.transpose(0, 3, 1, 2))
    np.testing.assert_allclose(features(nchw), expected, **TOL)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_torch_tensors(rgb, expected, layout, dtype):
    tensor = torch.from_numpy(rgb)
    if layout == "NCHW":
        tensor = tensor.permute(0, 3, 1, 2).contiguous()
    if dtype == "float32":
        tensor = tensor.float() / 255
    np.testing.assert_allclose(features(tensor), expected, **TOL)


def test_torch_grey_tensor(grey):
    expected = features(np.repeat(grey[..., None], 3, axis=-1))
    np.testing.assert_allclose(features(torch.from_numpy(grey)), expected, **TOL)


def test_one_colour_image_without_its_batch_axis_is_said(rgb):
    # (H, W, 3) was read as H grayscale images 3 pixels wide, without a word
    with pytest.warns(UserWarning, match=r"X of shape \(16, 16, 3\) is read as 16 "
                                         r"grayscale images of 16 x 3 pixels; one colour "
                                         r"image is X\[None\], of shape \(1, 16, 16, 3\)"):
        check_images(rgb[0][:16, :16])
    with warnings.catch_warnings():  # grayscale images of a common width: no doubt
        warnings.simplefilter("error")
        check_images(rgb[:4, :, :, 0])
        check_images(rgb[0][:16, :16, :3][:3])  # three 16 x 3 images: too few rows to doubt


def test_list_of_equal_shape_arrays(rgb, expected):
    np.testing.assert_allclose(features(list(rgb)), expected, **TOL)
    np.testing.assert_allclose(features(tuple(rgb)), expected, **TOL)
    np.testing.assert_allclose(
        features([torch.from_numpy(image) for image in rgb]), expected, **TOL
    )


def test_pil_rgb_images(rgb, expected):
    images = [Image.fromarray(image) for image in rgb]
    source = check_images(images)
    assert isinstance(source, PILSource) and len(source) == 6
    np.testing.assert_allclose(features(images), expected, **TOL)


def test_pil_grey_images_equal_grey_repeated(grey):
    expected = features(np.repeat(grey[..., None], 3, axis=-1))
    images = [Image.fromarray(image, mode="L") for image in grey]
    assert images[0].mode == "L"
    np.testing.assert_allclose(features(images), expected, **TOL)


def test_pil_rgba_images_drop_alpha(rgb, expected, rng):
    alpha = rng.integers(0, 256, size=rgb.shape[:3] + (1,), dtype=np.uint8)
    rgba = np.concatenate([rgb, alpha], axis=-1)
    images = [Image.fromarray(image, mode="RGBA") for image in rgba]
    np.testing.assert_allclose(features(images), expected, **TOL)
    # The same RGBA pixels as an (N, H, W, 4) array drop alpha too.
    np.testing.assert_allclose(features(rgba), expected, **TOL)


@pytest.mark.parametrize(
    "wrap",
    [
        pytest.param(lambda paths: [str(p) for p in paths], id="list-str"),
        pytest.param(lambda paths: list(paths), id="list-Path"),
        pytest.param(lambda paths: tuple(str(p) for p in paths), id="tuple-str"),
        pytest.param(lambda paths: np.array([str(p) for p in paths]), id="ndarray-str"),
        pytest.param(lambda paths: np.array(paths, dtype=object), id="ndarray-Path"),
    ],
)
def test_png_paths_equal_arrays(tmp_path, rgb, expected, wrap):
    X = wrap(write_pngs(tmp_path, rgb))
    assert isinstance(check_images(X), PathSource)
    np.testing.assert_allclose(features(X, batch_size=4), expected, **TOL)


def test_grey_and_rgba_png_paths(tmp_path, rgb, grey, expected, rng):
    (tmp_path / "grey").mkdir()
    grey_paths = write_pngs(tmp_path / "grey", grey, mode="L")
    assert Image.open(grey_paths[0]).mode == "L"
    np.testing.assert_allclose(
        features(grey_paths), features(np.repeat(grey[..., None], 3, axis=-1)), **TOL
    )
    alpha = rng.integers(0, 256, size=rgb.shape[:3] + (1,), dtype=np.uint8)
    (tmp_path / "rgba").mkdir()
    rgba_paths = write_pngs(tmp_path / "rgba", np.concatenate([rgb, alpha], -1))
    np.testing.assert_allclose(features(rgba_paths), expected, **TOL)


def test_paths_with_workers_equal_without(tmp_path, rgb, expected):
    paths = [str(p) for p in write_pngs(tmp_path, rgb)]
    with_workers = features(paths, num_workers=2, batch_size=2)
    np.testing.assert_allclose(with_workers, features(paths, num_workers=0), **TOL)
    np.testing.assert_allclose(with_workers, expected, **TOL)


@pytest.mark.parametrize("kind", ["png", "pil"])
def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path, kind):
    # A 16-bit grey image holds 0-65535; it must be scaled to the 0-1 range like a
    # uint16 array, not clipped to 255 (which saturates every value above 255).
    values = (np.arange(16 * 16, dtype=np.uint16).reshape(16, 16) * 257)
    image = Image.fromarray(values)
    if kind == "png":
        image.save(tmp_path / "deep.png")
        image = tmp_path / "deep.png"
    batch = next(check_images([image]).batches(1))
    decoded = batch.float().numpy()[0, 0] / (255.0 if batch.dtype == torch.uint8 else 1.0)
    np.testing.assert_allclose(decoded, values / 65535.0, atol=0.5 / 255 + 1e-6)
    from_array = next(check_images(values[None]).batches(1)).numpy()[0, 0]
    np.testing.assert_allclose(decoded, from_array, atol=0.5 / 255 + 1e-6)


@pytest.mark.parametrize(
    "input_shape", [(16, 16, 3), (-1, 16, 3), (16, -1, 3), (16, 16, -1)]
)
def test_flat_rows_with_input_shape(rgb, expected, input_shape):
    flat = rgb.reshape(6, -1).astype(np.float64) / 255
    extractor = tiny(input_shape=input_shape)
    np.testing.assert_allclose(extractor.fit_transform(flat), expected, **TOL)
    assert extractor.n_features_in_ == 16 * 16 * 3


@pytest.mark.parametrize("input_shape", [(16, 16), (-1, 16), (16, -1), [16, 16]])
def test_flat_grey_rows_with_input_shape(grey, input_shape):
    expected = features(np.repeat(grey[..., None], 3, axis=-1))
    flat = grey.reshape(6, -1).astype(np.float32) / 255
    np.testing.assert_allclose(features(flat, input_shape=input_shape), expected, **TOL)


def test_flat_dataframe_with_input_shape(grey):
    pd = pytest.importorskip("pandas")
    flat = grey.reshape(6, -1).astype(np.float32) / 255
    frame = pd.DataFrame(flat, columns=[f"px{i}" for i in range(flat.shape[1])])
    extractor = tiny(input_shape=(16, 16))
    np.testing.assert_allclose(
        extractor.fit_transform(frame), features(flat, input_shape=(16, 16)), **TOL
    )
    assert list(extractor.feature_names_in_[:2]) == ["px0", "px1"]


def test_digits_with_input_shape():
    digits = load_digits()
    X = digits.data[:200] / 16
    extractor = tiny(input_shape=(8, 8), batch_size=128)
    result = extractor.fit_transform(X)
    assert result.shape == (200, 64) and result.dtype == np.float32
    assert np.isfinite(result).all()
    assert extractor.n_features_in_ == 64
    # The same pixels as (N, 8, 8) grey images.
    np.testing.assert_allclose(
        result, features(X.reshape(-1, 8, 8).astype(np.float32)), **TOL
    )
    # transform checks the number of features seen at fit.
    with pytest.raises(ValueError, match="64 features"):
        extractor.transform(X[:, :32])


def test_batches_follow_indices(rng, tmp_path):
    images = rng.integers(0, 256, size=(5, 8, 8, 3), dtype=np.uint8)
    order = [3, 0, 4]
    for X in (images, [Image.fromarray(i) for i in images], write_pngs(tmp_path, images)):
        batches = list(check_images(X).batches(2, indices=order))
        assert [len(b) for b in batches] == [2, 1]
        got = torch.cat(batches).permute(0, 2, 3, 1).numpy()
        np.testing.assert_array_equal(got, images[order])


def test_array_source_is_a_view_of_uint8_and_float32(rgb):
    source = check_images(rgb)
    assert isinstance(source, ArraySource)
    assert source.image_shape == (3, 16, 16) and source.images.dtype == torch.uint8
    assert np.shares_memory(source.images.numpy(), rgb)
    as_float = rgb.astype(np.float32) / 255
    assert np.shares_memory(check_images(as_float).images.numpy(), as_float)


# -- images of mixed sizes ----------------------------------------------


def mixed_size_images(rng):
    sizes = [(16, 16), (20, 28), (30, 18), (16, 16)]
    return [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for h, w in sizes]


@pytest.mark.parametrize("kind", ["pil", "paths"])
def test_mixed_sizes_resized_with_image_size(rng, tmp_path, kind):
    arrays = mixed_size_images(rng)
    if kind == "pil":
        X = [Image.fromarray(a) for a in arrays]
    else:
        X = write_pngs(tmp_path, arrays)
    extractor = tiny(image_size=16, batch_size=3)
    result = extractor.fit_transform(X)
    assert result.shape == (4, 64) and np.isfinite(result).all()
    assert extractor.preprocess_.output_size == (16, 16)
    # Each image is resized on its own: the same features as alone in a batch.
    for i in range(4):
        np.testing.assert_allclose(result[i], extractor.transform(X[i:i + 1])[0], **TOL)
    # The first image is already 16x16 and is left as it is.
    np.testing.assert_allclose(result[0], features(arrays[0][None])[0], **TOL)
    # The source serves 16x16 batches.
    batch = next(check_images(X).batches(4, config=extractor.preprocess_))
    assert tuple(batch.shape) == (4, 3, 16, 16)


@pytest.mark.parametrize("kind", ["pil", "paths"])
def test_mixed_sizes_without_image_size_raise(rng, tmp_path, kind):
    arrays = mixed_size_images(rng)
    if kind == "pil":
        X = [Image.fromarray(a) for a in arrays]
    else:
        X = write_pngs(tmp_path, arrays)
    with pytest.raises(ValueError, match="different sizes.*image_size"):
        features(X, batch_size=4)


# -- files are decoded lazily, batch by batch ------------------------------


def test_paths_are_decoded_batch_by_batch(tmp_path, rgb, monkeypatch):
    paths = write_pngs(tmp_path, rgb)  # six files
    opened = []
    real_open = _sources.Image.open

    def counting_open(path, *args, **kwargs):
        opened.append(os.fspath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(_sources.Image, "open", counting_open)
    source = check_images(paths)
    assert opened == []  # checking the paths decodes nothing
    batches = source.batches(2)
    assert opened == []  # nor does asking for the batches
    first = next(batches)
    assert tuple(first.shape) == (2, 3, 16, 16)
    assert len(opened) == 2  # only the first batch, not all six files
    second = next(batches)
    assert len(opened) == 4
    rest = list(batches)
    assert len(opened) == 6 and len(rest) == 1
    assert opened == [os.fspath(p) for p in paths]
    got = torch.cat([first, second, *rest]).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(got, rgb)


def test_transform_decodes_each_file_once(tmp_path, rgb, monkeypatch):
    paths = write_pngs(tmp_path, rgb)
    calls = []
    real = _sources._FileDataset._open

    def counting(self, index):
        calls.append(index)
        return real(self, index)

    monkeypatch.setattr(_sources._FileDataset, "_open", counting)
    extractor = tiny(batch_size=2).fit(paths)
    assert calls == []  # fit checks the paths without decoding them
    extractor.transform(paths)
    assert calls == list(range(6))


# -- integer dtypes, flat integer rows, paths in containers, single paths -----


def as_torch(array, dtype):
    return torch.from_numpy(np.ascontiguousarray(array)).to(dtype)


INTEGER_FORMS = [
    pytest.param(lambda a: a.astype(np.int8), id="int8"),
    pytest.param(lambda a: a.astype(np.int16), id="int16"),
    pytest.param(lambda a: a.astype(np.int32), id="int32"),
    pytest.param(lambda a: a.astype(np.int64), id="int64"),
    pytest.param(lambda a: a.astype(np.uint32), id="uint32"),
    pytest.param(lambda a: a.astype(np.uint64), id="uint64"),
    pytest.param(lambda a: as_torch(a, torch.int16), id="torch-int16"),
    pytest.param(lambda a: as_torch(a, torch.int32), id="torch-int32"),
    pytest.param(lambda a: as_torch(a, torch.long), id="torch-long"),
    pytest.param(lambda a: as_torch(a, torch.long).permute(0, 3, 1, 2), id="torch-long-nchw"),
]


@pytest.mark.parametrize("form", INTEGER_FORMS)
def test_integer_images_equal_uint8(rgb, form):
    # int8 holds 0-127 only: halve the pixels so that every dtype can hold them.
    images = rgb // 2
    extractor = tiny().fit(images)
    expected = extractor.transform(images)
    X = form(images)
    np.testing.assert_array_equal(extractor.transform(X), expected)
    np.testing.assert_array_equal(tiny().fit(X).transform(X), expected)
    source = check_images(X)
    assert source.images.dtype == torch.uint8


def test_int64_images_equal_uint8_full_range(rgb):
    # The reproducer of the report: int64 pixels 0-255 are uint8 pixels.
    extractor = tiny().fit(rgb)
    np.testing.assert_array_equal(extractor.transform(rgb.astype(np.int64)),
                                  extractor.transform(rgb))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "float images ... [0, 255]" warning
        extractor.transform(rgb.astype(np.int64))
        extractor.transform(torch.from_numpy(rgb).long())


@pytest.mark.parametrize(
    "X, found",
    [
        pytest.param(np.full((2, 8, 8, 3), -1, np.int16), r"\[-1, -1\]", id="negative"),
        pytest.param(np.arange(2 * 8 * 8 * 3, dtype=np.int32).reshape(2, 8, 8, 3),
                     r"\[0, 383\]", id="above-255"),
        pytest.param(torch.full((2, 3, 8, 8), 300, dtype=torch.long), r"\[300, 300\]",
                     id="torch-above-255"),
        pytest.param(np.full((2, 8, 8, 3), -5, np.int8), r"\[-5, -5\]", id="int8-negative"),
    ],
)
def test_integer_images_out_of_range_raise(X, found):
    with pytest.raises(ValueError, match=r"integer images.*0-255.*" + found):
        tiny().fit(X)
    with pytest.raises(ValueError, match=found):
        check_images(X)


def test_uint16_images_still_scale_by_65535(rgb):
    expected = features(rgb)
    np.testing.assert_allclose(features(rgb.astype(np.uint16) * 257), expected, **TOL)


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.int32])
def test_integer_flat_rows_equal_images(rgb, dtype):
    expected = tiny().fit(rgb).transform(rgb)
    flat = rgb.reshape(6, -1).astype(dtype)
    extractor = tiny(input_shape=(16, 16, 3)).fit(flat)
    np.testing.assert_array_equal(extractor.transform(flat), expected)
    assert extractor.n_features_in_ == 16 * 16 * 3
    with pytest.raises(ValueError, match="768 features"):
        extractor.transform(flat[:, :100])


def test_integer_flat_dataframe_keeps_names_and_uint8(rgb):
    pd = pytest.importorskip("pandas")
    expected = tiny().fit(rgb).transform(rgb)
    flat = rgb.reshape(6, -1)
    frame = pd.DataFrame(flat, columns=[f"px{i}" for i in range(flat.shape[1])])
    extractor = tiny(input_shape=(16, 16, 3)).fit(frame)
    np.testing.assert_array_equal(extractor.transform(frame), expected)
    assert list(extractor.feature_names_in_[:2]) == ["px0", "px1"]


def test_integer_flat_rows_out_of_range_raise(rgb):
    flat = rgb.reshape(6, -1).astype(np.int64) * 2
    with pytest.raises(ValueError, match=r"0-255.*\[0, 5\d\d\]"):
        tiny(input_shape=(16, 16, 3)).fit(flat)


def test_finetune_flat_uint8_rows_equal_images(rgb):
    from sktransfer import FineTuneClassifier

    y = np.array([0, 1] * 3)
    params = dict(model="simple_cnn", weights=None, input_shape=(16, 16, 3),
                  image_size=16, epochs=1, random_state=0, device="cpu")
    on_images = FineTuneClassifier(**params).fit(rgb, y).predict_proba(rgb)
    flat = rgb.reshape(6, -1)
    on_rows = FineTuneClassifier(**params).fit(flat, y).predict_proba(flat)
    np.testing.assert_allclose(on_rows, on_images, **TOL)


class _CustomPath(os.PathLike):
    """An os.PathLike that is not a pathlib.Path."""

    def __init__(self, path):
        self.path = os.fspath(path)

    def __fspath__(self):
        return self.path


@pytest.mark.parametrize(
    "wrap",
    [
        pytest.param(lambda paths: [_CustomPath(p) for p in paths], id="list-PathLike"),
        pytest.param(lambda paths: tuple(paths), id="tuple-Path"),
        pytest.param(lambda paths: "series-str", id="series-str"),
        pytest.param(lambda paths: "series-Path", id="series-Path"),
        pytest.param(lambda paths: "frame-str", id="frame-str"),
        pytest.param(lambda paths: "frame-Path", id="frame-Path"),
    ],
)
def test_paths_in_any_container_equal_str_paths(tmp_path, rgb, wrap):
    paths = write_pngs(tmp_path, rgb)
    expected = features([str(p) for p in paths])
    X = wrap(paths)
    if isinstance(X, str):
        pd = pytest.importorskip("pandas")
        items = [str(p) for p in paths] if X.endswith("str") else paths
        X = pd.Series(items) if X.startswith("series") else pd.DataFrame({"file": items})
    assert not _sources.is_tabular(X)
    assert isinstance(check_images(X), PathSource)
    np.testing.assert_allclose(features(X), expected, **TOL)
    extractor = tiny().fit(X)
    assert not hasattr(extractor, "n_features_in_")
    np.testing.assert_allclose(extractor.transform(X), expected, **TOL)


def test_numeric_one_column_dataframe_stays_tabular():
    pd = pytest.importorskip("pandas")
    assert _sources.is_tabular(pd.DataFrame({"a": [1.0, 2.0]}))
    assert _sources.is_tabular(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}))


@pytest.mark.parametrize("kind", ["dir-str", "dir-Path", "file-str", "file-Path",
                                  "file-PathLike"])
def test_single_path_is_refused_with_advice(tmp_path, rgb, kind):
    path = tmp_path if kind.startswith("dir") else write_pngs(tmp_path, rgb[:1])[0]
    X = {"str": str(path), "Path": Path(path), "PathLike": _CustomPath(path)}[
        kind.split("-")[1]
    ]
    advice = (r"X is a single path.*pass a list of image file paths.*"
              r"sktransfer\.datasets\.load_image_folder")
    with pytest.raises(ValueError, match=advice):
        tiny().fit(X)
    with pytest.raises(ValueError, match=advice):
        check_images(X)
    if kind.startswith("file"):
        with pytest.raises(ValueError, match=r"\[X\]|\[path\]"):
            tiny().fit(X)


# -- property: any dtype, layout and container of images ----------------------

try:
    from hypothesis import given, settings, strategies as st
except ImportError:  # pragma: no cover - hypothesis is a test-only dependency
    given = None

needs_hypothesis = pytest.mark.skipif(given is None, reason="needs hypothesis")

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "uint16", "float16",
          "float32", "float64"]
LAYOUTS = ["NHWC", "NCHW", "NHW"]
CONTAINERS = ["numpy", "torch", "list-numpy", "list-torch", "flat"]


def canonical_images(seed, n, height, width, channels, dtype):
    """uint8 (N, H, W, C) pixels that ``dtype`` holds exactly: 0/255 for bool and
    float16 (whose 11-bit mantissa cannot hold k/255), 0-127 for int8."""
    pixels = np.random.default_rng(seed).integers(0, 256, (n, height, width, channels))
    if dtype in ("bool", "float16"):
        pixels = np.where(pixels > 127, 255, 0)
    elif dtype == "int8":
        pixels //= 2
    return pixels.astype(np.uint8)


def to_dtype(canonical, dtype):
    if dtype == "bool":
        return canonical > 0
    if dtype == "uint16":
        return canonical.astype(np.uint16) * 257
    if dtype.startswith("float"):
        return (canonical.astype(np.float64) / 255).astype(dtype)
    return canonical.astype(dtype)


def to_layout(images, layout):
    if layout == "NCHW":
        return np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    if layout == "NHW":
        return images[..., 0]
    return images


def to_container(images, container):
    if container == "numpy":
        return images, {}
    if container == "flat":
        return images.reshape(len(images), -1), dict(input_shape=images.shape[1:])
    tensors = container.endswith("torch")
    if tensors:
        images = torch.from_numpy(np.ascontiguousarray(images))
    if container.startswith("list"):
        return list(images), {}
    return images, {}


@st.composite
def drawn_images(draw):
    dtype = draw(st.sampled_from(DTYPES))
    channels = draw(st.sampled_from([1, 2, 3, 4]))
    layout = draw(st.sampled_from(LAYOUTS if channels == 1 else LAYOUTS[:2]))
    container = draw(st.sampled_from(CONTAINERS if layout == "NHWC" else CONTAINERS[:4]))
    # Sides of 5 or more: a side of 1, 3 or 4 could be taken for the channel axis.
    shape = (draw(st.integers(1, 3)), draw(st.integers(5, 9)), draw(st.integers(5, 9)))
    canonical = canonical_images(draw(st.integers(0, 2**16)), *shape, channels, dtype)
    # Sometimes a pixel outside 0-255 in an integer dtype that can hold it.
    bad_value = None
    if dtype in ("int16", "int32", "int64") and draw(st.booleans()):
        bad_value = draw(st.sampled_from([-1, 256, 1000]))
    elif dtype == "int8" and draw(st.booleans()):
        bad_value = -1
    return dtype, layout, container, canonical, bad_value


if given is not None:
    @needs_hypothesis
    @settings(max_examples=40, deadline=None)
    @given(drawn_images())
    def test_any_form_of_images_is_refused_or_equals_uint8_nhwc(drawn):
        dtype, layout, container, canonical, bad_value = drawn
        images = to_dtype(canonical, dtype)
        if bad_value is not None:
            images[-1, 0, -1, 0] = bad_value
        X, params = to_container(to_layout(images, layout), container)
        channels = canonical.shape[-1]
        if channels == 2:
            with pytest.raises(ValueError, match="1, 3 or 4 channels"):
                features(X, **params)
            return
        if bad_value is not None:
            with pytest.raises(ValueError, match=rf"0-255.*\[-?\d+, {max(bad_value, 255)}\]"
                               if bad_value > 0 else rf"0-255.*\[{bad_value}, \d+\]"):
                features(X, **params)
            return
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # in-range pixels never warn
            got = features(X, **params)
        # Another layout in memory changes the convolution's float rounding only.
        np.testing.assert_allclose(got, features(canonical), **TOL)
        if dtype in ("int8", "int16", "int32", "int64"):
            # Integer pixels are the very uint8 pixels in the same form.
            same_form, _ = to_container(to_layout(canonical, layout), container)
            np.testing.assert_array_equal(got, features(same_form, **params))


def test_views_with_negative_strides_are_read():
    from sktransfer import PretrainedFeatureExtractor

    X = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    extractor = PretrainedFeatureExtractor(model="simple_cnn", weights=None,
                                           random_state=0, device="cpu").fit(X)
    expected = extractor.transform(X)
    # The same samples in another order: equal up to float32 rounding of the kernels.
    np.testing.assert_allclose(extractor.transform(X[::-1]), expected[::-1], atol=1e-6)
    np.testing.assert_array_equal(extractor.transform(X[:, ::-1, ::-1][:, ::-1, ::-1]),
                                  expected)
    floats = (X / 255).astype(np.float32)[::-1]
    np.testing.assert_allclose(extractor.transform(floats), expected[::-1], atol=1e-6)

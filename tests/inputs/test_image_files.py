"""Images given as files (and PIL images): decoded like arrays, everywhere.

Real images, written with PIL into ``tmp_path``: EXIF orientation, the same
features as the same pixels given as an array (resize included), DataLoader
workers inside joblib workers, and errors that name the file.
"""

import multiprocessing
import warnings

import joblib
import numpy as np
import pytest
from PIL import Image
from sklearn.model_selection import cross_val_score

from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor
from sktransfer.inputs import BatchPreprocessor, check_images


def tiny(**params):
    defaults = dict(model="simple_cnn", weights=None, random_state=0, device="cpu")
    defaults.update(params)
    return PretrainedFeatureExtractor(**defaults)


def assert_features_equal(actual, desired):
    # float32 rounding, relative to the scale of the features
    scale = float(np.abs(desired).max())
    np.testing.assert_allclose(actual, desired, rtol=1e-5, atol=1e-5 * scale)


@pytest.fixture(scope="module")
def photos():
    """Three real photos, 80x60 (width x height), uint8 RGB."""
    from skimage import data

    images = [data.astronaut(), data.chelsea(), data.coffee()]
    return np.stack([
        np.asarray(Image.fromarray(image).resize((80, 60), Image.BILINEAR))
        for image in images
    ])


def write(directory, images, suffix=".png", **save):
    paths = []
    for i, image in enumerate(images):
        path = directory / f"photo_{i}{suffix}"
        Image.fromarray(image).save(path, **save)
        paths.append(str(path))
    return paths


# -- 1. EXIF orientation ------------------------------------------------------


def rotated_with_orientation_6(upright):
    """The upright image stored rotated, with EXIF Orientation=6 (rotate 90 CW
    to display), so that honouring the tag restores it."""
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    return stored, exif


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_exif_orientation_is_honoured(tmp_path, photos, fmt):
    upright = photos[0][:, :40]  # 60 x 40, not square
    stored, exif = rotated_with_orientation_6(upright)
    path = tmp_path / f"rotated.{fmt}"
    stored.save(path, exif=exif, **({"quality": 95} if fmt == "jpeg" else {}))
    with Image.open(path) as image:
        assert image.getexif().get(0x0112) == 6
        assert image.size == (60, 40)  # stored rotated
        decoded = np.asarray(image.convert("RGB"))
    # The pixels as stored (JPEG: after its lossy round trip), turned upright.
    expected_pixels = np.asarray(
        Image.fromarray(decoded).transpose(Image.Transpose.ROTATE_270)
    )
    assert expected_pixels.shape == upright.shape
    if fmt == "png":
        np.testing.assert_array_equal(expected_pixels, upright)
    expected = tiny().fit_transform(expected_pixels[None])
    assert_features_equal(tiny().fit_transform([str(path)]), expected)
    # A PIL image opened from that file is turned upright too.
    with Image.open(path) as image:
        image.load()
        assert_features_equal(tiny().fit_transform([image]), expected)


# -- 2. files, PIL images and arrays give the same features --------------------


@pytest.mark.parametrize("params", [
    dict(image_size=32),
    dict(image_size=(24, 40)),
    dict(image_size=20),
])
def test_files_pil_and_arrays_agree_with_resize(tmp_path, photos, params):
    paths = write(tmp_path, photos)
    pil = [Image.fromarray(p) for p in photos]
    from_array = tiny(**params).fit_transform(photos)
    assert_features_equal(tiny(**params).fit_transform(pil), from_array)
    assert_features_equal(tiny(**params).fit_transform(paths), from_array)
    # float arrays in [0, 1] too
    floats = photos.astype(np.float32) / 255
    assert_features_equal(tiny(**params).fit_transform(floats), from_array)


def test_files_pil_and_arrays_agree_efficientnet_lite0(tmp_path, photos):
    # The default backbone and its default preprocessing (resize, then crop).
    paths = write(tmp_path, photos[:2])
    pil = [Image.fromarray(p) for p in photos[:2]]
    extractor = PretrainedFeatureExtractor(device="cpu", batch_size=2).fit(photos[:2])
    assert extractor.preprocess_.has_geometry
    from_array = extractor.transform(photos[:2])
    assert_features_equal(extractor.transform(paths), from_array)
    assert_features_equal(extractor.transform(pil), from_array)


# -- 3. DataLoader workers inside joblib workers -------------------------------


@pytest.fixture(scope="module")
def labelled_files(tmp_path_factory, photos):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(8, 12, 12, 3), dtype=np.uint8)
    images[::2] //= 4  # two classes: dark and bright
    directory = tmp_path_factory.mktemp("labelled")
    return write(directory, images), np.array([0, 1] * 4)


@pytest.fixture
def no_loky_left():
    """Stop joblib's reusable loky workers after the test, so that later tests see
    no child processes."""
    yield
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)


def finetune(**params):
    defaults = dict(model="simple_cnn", weights=None, epochs=1, num_workers=2,
                    image_size=16, device="cpu", random_state=0,
                    validation_fraction=0.25, batch_size=4)
    defaults.update(params)
    return FineTuneClassifier(**defaults)


@pytest.mark.slow  # starts loky worker processes
def test_num_workers_inside_joblib_loky_workers(labelled_files, no_loky_left):
    paths, y = labelled_files
    sequential = cross_val_score(finetune(), paths, y, cv=2, n_jobs=1,
                                 error_score="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no fallback warning here
        parallel = cross_val_score(finetune(), paths, y, cv=2, n_jobs=2,
                                   error_score="raise")
    np.testing.assert_allclose(parallel, sequential)
    # the feature extractor's transform, in loky workers
    extractor = tiny(num_workers=2, image_size=16).fit(paths[:2])
    chunks = [paths[:4], paths[4:]]
    results = joblib.Parallel(n_jobs=2)(
        joblib.delayed(extractor.transform)(chunk) for chunk in chunks
    )
    assert_features_equal(np.concatenate(results), extractor.transform(paths))


def _transform_in_daemon(extractor, paths):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = extractor.transform(paths)
    return result, [str(w.message) for w in caught]


def test_num_workers_in_daemonic_processes_falls_back_with_a_warning(labelled_files,
                                                                    no_loky_left):
    paths, y = labelled_files
    sequential = cross_val_score(finetune(num_workers=0), paths, y, cv=2,
                                 error_score="raise")
    with joblib.parallel_backend("multiprocessing"):
        parallel = cross_val_score(finetune(), paths, y, cv=2, n_jobs=2,
                                   error_score="raise")
    np.testing.assert_allclose(parallel, sequential)
    extractor = tiny(num_workers=2, image_size=16).fit(paths[:2])
    with joblib.parallel_backend("multiprocessing"):
        (result, messages), = joblib.Parallel(n_jobs=2)(
            [joblib.delayed(_transform_in_daemon)(extractor, paths)]
        )
    assert_features_equal(result, extractor.transform(paths))
    assert any("num_workers=2" in m and "daemonic" in m for m in messages), messages


# -- 4. errors name the file ---------------------------------------------------


@pytest.mark.parametrize("num_workers", [0, 2])
def test_decompression_bomb_names_the_file(tmp_path, photos, monkeypatch, num_workers):
    paths = write(tmp_path, photos[:2, :12, :12])  # 144 pixels each
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)  # error above 100 pixels
    with pytest.raises(ValueError, match="MAX_IMAGE_PIXELS") as excinfo:
        tiny(num_workers=num_workers).fit_transform(paths)
    first_line = str(excinfo.value).splitlines()[0]
    assert "photo_0.png" in first_line and "X[0]" in first_line, first_line
    assert multiprocessing.active_children() == []


def test_decompression_bomb_warning_names_the_file(tmp_path, photos, monkeypatch):
    paths = write(tmp_path, photos[:1, :12, :12])  # 144 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # warning, not error
    with pytest.warns(Image.DecompressionBombWarning, match="photo_0.png"):
        tiny().fit_transform(paths)


def test_corrupt_file_with_workers_first_line_names_the_file(tmp_path, photos):
    paths = write(tmp_path, photos[:3, :12, :12])
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    paths.insert(2, str(broken))
    with pytest.raises(ValueError) as excinfo:
        tiny(num_workers=2, batch_size=2).fit_transform(paths)
    first_line = str(excinfo.value).splitlines()[0]
    assert "X[2]" in first_line and "broken.png" in first_line, first_line
    assert "not a decodable image" in first_line
    assert multiprocessing.active_children() == []


# -- 5. float (mode "F") images: read as float arrays are -----------------------


def preprocessed(extractor, X):
    """The model's input for ``X`` under the fitted extractor's preprocessing."""
    source = check_images(X)
    batch = next(source.batches(len(source), config=extractor.preprocess_))
    return BatchPreprocessor(extractor.preprocess_, "cpu")(
        batch, geometry_done=source.geometry_done).numpy()


@pytest.mark.parametrize("params", [{}, dict(image_size=(12, 24))])
def test_float_tiff_reads_as_the_same_float_array(tmp_path, params):
    # PIL writes a float32 array as a mode "F" TIFF; converting it to 8 bits, as
    # the other modes are, read [0, 1] as all black.
    values = np.linspace(0.0, 1.0, 18 * 30, dtype=np.float32).reshape(18, 30)
    path = tmp_path / "float.tif"
    Image.fromarray(values).save(path)
    with Image.open(path) as image:
        assert image.mode == "F"
    extractor = tiny(**params).fit(values[None])
    from_array = preprocessed(extractor, values[None])
    np.testing.assert_allclose(preprocessed(extractor, [str(path)]), from_array,
                               rtol=1e-5, atol=1e-5)
    with Image.open(path) as image:  # a PIL image of mode "F" too
        image.load()
        np.testing.assert_allclose(preprocessed(extractor, [image]), from_array,
                                   rtol=1e-5, atol=1e-5)
    assert_features_equal(extractor.transform([str(path)]),
                          extractor.transform(values[None]))


def test_float_tiff_out_of_range_warns_and_nan_is_refused_naming_the_file(tmp_path):
    wide = np.linspace(0.0, 300.0, 16 * 16, dtype=np.float32).reshape(16, 16)
    path = tmp_path / "wide.tif"
    Image.fromarray(wide).save(path)
    with pytest.warns(UserWarning, match=r"X\[0\] = .*wide.tif.* ranges over \[0, 300\]"):
        batch = next(check_images([str(path)]).batches(1))
    # Used as it is, as a float array out of range is: not clipped to 0-255.
    np.testing.assert_allclose(batch.numpy()[0, 0], wide)
    wide[3, 4] = np.nan
    Image.fromarray(wide).save(tmp_path / "nan.tif")
    with pytest.raises(ValueError, match=r"X\[0\] = .*nan.tif.* contains NaN"):
        tiny().fit_transform([str(tmp_path / "nan.tif")])

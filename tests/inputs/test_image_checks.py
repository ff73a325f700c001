"""What ``X`` may not be (``inputs/_sources.py``, ``inputs/_validation.py``): bad
inputs refused with the sample named, ``check_input_shape``, out-of-range floats."""

import multiprocessing
import os
import re
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

from sktransfer.inputs import check_images, check_input_shape
from sktransfer.inputs import _sources

from image_inputs import TOL, features, tiny, write_pngs


# -- bad inputs -------------------------------------------------------------


BAD_INPUTS = [
    pytest.param(np.zeros((4, 64)), None, ValueError, "input_shape", id="2d-no-input-shape"),
    pytest.param(
        [np.zeros((8, 8, 3)), np.zeros((8, 8, 3)), np.zeros((9, 8, 3))], None,
        ValueError, r"X\[2\] has shape \(9, 8, 3\)", id="list-of-mixed-arrays",
    ),
    pytest.param(np.zeros((0, 8, 8, 3), np.uint8), None, ValueError, "empty", id="empty-4d"),
    pytest.param([], None, ValueError, "empty", id="empty-list"),
    pytest.param(np.zeros((0, 64)), (8, 8), ValueError, "0 sample", id="empty-flat"),
    pytest.param(np.zeros((2, 8, 8, 3), complex), None, ValueError, "[Cc]omplex",
                 id="complex-images"),
    pytest.param(np.zeros((2, 64), complex), (8, 8), ValueError, "[Cc]omplex",
                 id="complex-flat"),
    pytest.param(np.full((2, 8, 8, 3), "a"), None, TypeError, "numbers.*<U1",
                 id="strings-4d"),
    pytest.param(np.array([{"a": 1}, {"b": 2}], dtype=object), None, TypeError,
                 r"X\[0\] is a dict", id="object-dicts"),
    pytest.param([np.zeros((8, 8, 3)), "x.png"], None, TypeError, r"X\[1\] is a str",
                 id="array-then-path"),
    pytest.param(np.zeros((2, 64)), (7, -1), ValueError, "does not divide",
                 id="input-shape-does-not-divide"),
    pytest.param(np.zeros((2, 64)), (7, 7), ValueError, "64 features.*49",
                 id="input-shape-wrong-size"),
    pytest.param(np.zeros((2, 64)), (8, 4, 2), ValueError, "1, 3 or 4 channels",
                 id="input-shape-two-channels"),
    pytest.param(np.zeros((2, 64)), (-1, -1), ValueError, "at most one -1",
                 id="input-shape-two-minus-ones"),
    pytest.param(np.zeros((2, 64)), (8, 0, 8), ValueError, "positive",
                 id="input-shape-zero"),
    pytest.param(np.zeros(10), None, ValueError, "2D array", id="1d-numeric"),
    pytest.param(np.zeros((2, 1, 8, 8, 3)), None, ValueError, r"shape \(2, 1, 8, 8, 3\)",
                 id="5d"),
    pytest.param(np.zeros((2, 8, 8, 2), np.uint8), None, ValueError, "1, 3 or 4 channels",
                 id="2-channels-last"),
    pytest.param(np.zeros((2, 2, 8, 8), np.uint8), None, ValueError, "1, 3 or 4 channels",
                 id="2-channels-first"),
    pytest.param(torch.zeros(2, 2, 8, 8), None, ValueError, "1, 3 or 4 channels",
                 id="2-channels-tensor"),
    pytest.param(None, None, ValueError, "X is None", id="none"),
]


@pytest.mark.parametrize("X, input_shape, error, match", BAD_INPUTS)
def test_bad_inputs_are_refused_at_fit(X, input_shape, error, match):
    extractor = tiny(input_shape=input_shape)
    with pytest.raises(error, match=match):
        extractor.fit(X)
    assert not hasattr(extractor, "n_features_out_")


def test_bad_input_at_transform_is_refused(rgb):
    extractor = tiny().fit(rgb)
    with pytest.raises(ValueError, match="1, 3 or 4 channels"):
        extractor.transform(rgb[..., :2])


def test_missing_path_names_index_and_path(tmp_path, rgb):
    paths = [str(p) for p in write_pngs(tmp_path, rgb[:3])]
    missing = str(tmp_path / "missing.png")
    paths.insert(2, missing)
    with pytest.raises(ValueError, match=r"X\[2\] = " + re.escape(repr(missing))
                       + ".*no such file"):
        tiny().fit(paths)


def test_folder_in_paths_is_named_a_folder_with_advice(tmp_path, rgb):
    paths = [str(p) for p in write_pngs(tmp_path, rgb[:2])]
    folder = tmp_path / "photos"
    folder.mkdir()
    with pytest.raises(ValueError, match=r"X\[2\] = .*photos' is a folder, not an image "
                       r"file; .*load_image_folder\(folder\)"):
        tiny().fit(paths + [str(folder)])


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes (Windows)")
def test_fifo_in_paths_is_not_a_regular_file(tmp_path, rgb):
    # Checked by its file type, never opened (opening a named pipe would block).
    paths = [str(p) for p in write_pngs(tmp_path, rgb[:2])]
    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(ValueError, match=r"X\[1\] = .*pipe.png' is not a regular file"):
        tiny().fit([paths[0], str(tmp_path / "pipe.png"), paths[1]])


def test_broken_link_in_paths_is_named(tmp_path, rgb):
    paths = [str(p) for p in write_pngs(tmp_path, rgb[:1])]
    try:
        os.symlink(tmp_path / "gone.png", tmp_path / "link.png")
    except (OSError, NotImplementedError):
        pytest.skip("symbolic links cannot be made here (Windows without the privilege)")
    with pytest.raises(ValueError, match=r"X\[1\] = .*link.png' is a broken symbolic"):
        tiny().fit(paths + [str(tmp_path / "link.png")])


def test_dataframe_of_several_columns_with_paths_says_which_to_pass(tmp_path, rgb):
    pd = pytest.importorskip("pandas")
    paths = [str(p) for p in write_pngs(tmp_path, rgb[:3])]
    frame = pd.DataFrame({"age": [1.0, 2.0, 3.0], "file": paths, "n": [1, 2, 3]})
    message = (r"DataFrame of 3 columns, and the column\(s\) 'file' hold strings.*"
               r"X\[\['file'\]\].*ColumnTransformer")
    with pytest.raises(ValueError, match=message):
        tiny().fit(frame)
    with pytest.raises(ValueError, match=message):
        tiny().fit(rgb[:3]).transform(frame)
    # The advice works: the path column alone is read as the files.
    np.testing.assert_allclose(features(frame[["file"]]), features(paths), **TOL)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_undecodable_file_names_index(tmp_path, rgb, num_workers):
    paths = [str(p) for p in write_pngs(tmp_path, rgb[:3])]
    broken = tmp_path / "x.png"
    broken.write_text("this is not an image\n")
    paths.insert(1, str(broken))
    with pytest.raises(ValueError, match=r"X\[1\] = .*x\.png.*not a decodable image"):
        features(paths, num_workers=num_workers, batch_size=2)
    # The workers are stopped with the error, not left for the garbage collector.
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("kind", ["numpy", "numpy64", "torch"])
def test_nan_and_inf_name_the_sample(rgb, bad, kind):
    X = rgb.astype(np.float32) / 255
    X[4, 3, 5, 1] = bad
    if kind == "numpy64":
        X = X.astype(np.float64)
    elif kind == "torch":
        X = torch.from_numpy(X).permute(0, 3, 1, 2)
    what = "NaN" if np.isnan(bad) else "infinity"
    with pytest.raises(ValueError, match=f"contains {what}: sample 4 has"):
        tiny().fit(X)


def test_nan_after_the_first_chunk_names_the_sample(monkeypatch, rgb):
    # NaN is looked for chunk by chunk; the index is counted across chunks.
    monkeypatch.setattr(_sources, "_CHUNK", 2)
    X = rgb.astype(np.float32) / 255
    X[5, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="sample 5 has NaN"):
        check_images(X)


def test_nan_in_flat_rows_is_refused(grey):
    X = grey.reshape(6, -1).astype(np.float64) / 255
    X[2, 7] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        tiny(input_shape=(16, 16)).fit(X)


def test_mixed_list_of_path_and_pil_image(tmp_path, rgb):
    path = str(write_pngs(tmp_path, rgb[:1])[0])
    pil = Image.fromarray(rgb[1])
    with pytest.raises(TypeError, match=r"X\[1\] is a .*X\[0\] is a file path"):
        tiny().fit([path, pil])
    with pytest.raises(TypeError, match=r"X\[2\] is a str.*X\[0\] is a PIL image"):
        tiny().fit([pil, pil, path])


# -- check_input_shape ------------------------------------------------------


@pytest.mark.parametrize(
    "input_shape, n_features, expected",
    [((8, 8), 64, (8, 8, 1)), ((8, -1), 64, (8, 8, 1)), ((-1, 4), 64, (16, 4, 1)),
     ((4, 4, 3), 48, (4, 4, 3)), ((-1, 4, 3), 48, (4, 4, 3)), ((4, 4, -1), 48, (4, 4, 3)),
     ([8, 8], 64, (8, 8, 1)), ((np.int64(8), 8), 64, (8, 8, 1))],
)
def test_check_input_shape_resolves(input_shape, n_features, expected):
    assert check_input_shape(input_shape, n_features) == expected


@pytest.mark.parametrize(
    "input_shape, n_features, match",
    [((-1, -1), 64, "at most one -1"), ((-1, 4, -1), 48, "at most one -1"),
     ((7, -1), 64, "does not divide"), ((8, 8), 65, "65 features.*64 values"),
     ((8,), 8, "height, width"), ((1, 2, 3, 4), 24, "height, width"),
     ((8, 0), 0, "positive"), ((8, -2), 64, "positive"), ((8.0, 8), 64, "positive")],
)
def test_check_input_shape_refuses(input_shape, n_features, match):
    with pytest.raises(ValueError, match=match):
        check_input_shape(input_shape, n_features)


# -- out-of-range floats ---------------------------------------------------


@pytest.mark.parametrize("kind", ["numpy", "torch", "flat"])
def test_out_of_range_floats_warn(rgb, kind):
    X = rgb.astype(np.float32)  # 0-255 as floats
    params = {}
    if kind == "torch":
        X = torch.from_numpy(X)
    elif kind == "flat":
        X, params = X.reshape(6, -1), dict(input_shape=(16, 16, 3))
    with pytest.warns(UserWarning, match=r"\[0, 1\].*\[\d+(\.\d+)?, 25\d"):
        extractor = tiny(**params).fit(X)
    with pytest.warns(UserWarning, match=r"\[0, 1\]"):
        extractor.transform(X)


def test_digits_without_scaling_warn():
    X = load_digits().data[:20]  # 0-16
    with pytest.warns(UserWarning, match=r"\[0, 16\]"):
        tiny(input_shape=(8, 8)).fit(X)


def test_in_range_floats_do_not_warn(rgb):
    X = rgb.astype(np.float32) / 255
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tiny().fit_transform(X)
        tiny().fit_transform(rgb)

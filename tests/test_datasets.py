import os
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits, load_sample_image
from sklearn.exceptions import DataConversionWarning

from sktransfer.datasets import (
    DIGIT_SHIFT_PHOTOS,
    _colour_photo,
    _upsample_digits,
    load_digits_shift,
    is_image_name,
    list_image_files,
    load_image_folder,
    load_photo_patches,
    load_sentiment_domains,
    mix_domains,
)

IMAGE_SHAPE = (32, 32, 3)


@pytest.fixture(scope="module")
def shift():
    return load_digits_shift(random_state=0)


def test_digits_shift_shapes_dtypes_and_labels(shift):
    for part in ("source", "target", "test"):
        X, y = shift[f"X_{part}"], shift[f"y_{part}"]
        assert X.dtype == np.uint8 and X.shape[1:] == IMAGE_SHAPE
        assert y.shape == (len(X),) and np.issubdtype(y.dtype, np.integer)
        assert set(np.unique(y)) == set(range(10))   # stratified: every class in every part
    assert shift.X_test_source.shape == shift.X_test.shape
    assert shift.X_test_source.dtype == np.uint8
    n_digits = len(load_digits().target)
    assert len(shift.X_source) + len(shift.X_target) + len(shift.X_test) == n_digits
    assert len(shift.X_test) == pytest.approx(0.25 * n_digits, abs=1)
    assert shift.photos == DIGIT_SHIFT_PHOTOS


def test_digits_shift_split_is_disjoint_and_indexes_load_digits(shift):
    digits = load_digits()
    parts = [shift.source_indices, shift.target_indices, shift.test_indices]
    together = np.concatenate(parts)
    assert len(np.unique(together)) == len(together) == len(digits.target)
    for indices, y in zip(parts, (shift.y_source, shift.y_target, shift.y_test)):
        np.testing.assert_array_equal(digits.target[indices], y)


def test_digits_shift_source_is_grey_upsampled_digit(shift):
    X = shift.X_source
    assert np.array_equal(X[..., 0], X[..., 1]) and np.array_equal(X[..., 0], X[..., 2])
    assert X.min() == 0 and X.max() == 255
    # Bilinear upsampling keeps the 8x8 layout: block means track the original pixels.
    digits = load_digits().images[shift.source_indices[:50]]
    blocks = X[:50, :, :, 0].reshape(50, 8, 4, 8, 4).mean(axis=(2, 4))
    assert np.corrcoef(blocks.ravel(), digits.ravel())[0, 1] > 0.95


def test_digits_shift_target_follows_the_mnist_m_blend(shift):
    # |patch - digit| per channel, with the patch the bunch says it cut.
    grey = _upsample_digits(load_digits().images, 32)
    np.testing.assert_array_equal(shift.X_source[..., 0], grey[shift.source_indices])
    np.testing.assert_array_equal(shift.X_test_source[..., 0], grey[shift.test_indices])
    for X, indices, origin in (
        (shift.X_target, shift.target_indices, shift.target_patch_origin),
        (shift.X_test, shift.test_indices, shift.test_patch_origin),
    ):
        for i in (0, 7, len(X) - 1):
            which, top, left = origin[i]
            patch = _colour_photo(shift.photos[which])[top:top + 32, left:left + 32]
            digit = grey[indices[i]][..., None].astype(int)
            np.testing.assert_array_equal(X[i], np.abs(patch.astype(int) - digit))


def test_digits_shift_target_differs_from_source(shift):
    gap = np.abs(shift.X_test.astype(int) - shift.X_test_source.astype(int)).mean()
    assert gap > 30
    # colour: the channels of a blended image are not all equal
    assert not np.array_equal(shift.X_target[..., 0], shift.X_target[..., 1])
    # a different patch for every sample
    origins = np.concatenate([shift.target_patch_origin, shift.test_patch_origin])
    assert len(np.unique(origins, axis=0)) == len(origins)
    assert len(np.unique(origins[:, 0])) == len(shift.photos)


def test_digits_shift_is_deterministic(shift):
    again = load_digits_shift(random_state=0)
    other = load_digits_shift(random_state=1)
    for key in ("X_source", "X_target", "X_test", "y_target", "test_indices"):
        np.testing.assert_array_equal(shift[key], again[key])
    assert not np.array_equal(shift.test_indices, other.test_indices)
    assert not np.array_equal(shift.test_patch_origin, other.test_patch_origin)


def test_digits_shift_train_uses_the_minus_one_convention(shift):
    n_source = len(shift.X_source)
    np.testing.assert_array_equal(shift.X_train,
                                  np.concatenate([shift.X_source, shift.X_target]))
    np.testing.assert_array_equal(shift.y_train[:n_source], shift.y_source)
    assert np.all(shift.y_train[n_source:] == -1)
    np.testing.assert_array_equal(shift.sample_domain, np.where(shift.y_train == -1, -1, 1))


def test_digits_shift_fractions_and_photos():
    data = load_digits_shift(test_fraction=0.5, source_fraction=0.2,
                             photos=("china", "flower"), random_state=3)
    n_train = len(data.X_source) + len(data.X_target)
    assert len(data.X_test) == pytest.approx(n_train, abs=1)
    assert len(data.X_source) == pytest.approx(0.2 * n_train, abs=2)
    assert set(data.target_patch_origin[:, 0]) == {0, 1}
    which, top, left = data.target_patch_origin[0]
    assert which in (0, 1)
    photo = load_sample_image(f"{data.photos[which]}.jpg")
    assert top + 32 <= photo.shape[0] and left + 32 <= photo.shape[1]


@pytest.mark.parametrize("kwargs, match", [
    ({"test_fraction": 0}, "test_fraction"),
    ({"test_fraction": 1.0}, "test_fraction"),
    ({"source_fraction": 1.5}, "source_fraction"),
    ({"photos": ()}, "photos is empty"),
    ({"photos": None}, "photos=None"),
    ({"test_fraction": "0.2"}, "test_fraction='0.2' must be a number"),
    # sklearn's stratified split named its own test_size
    ({"test_fraction": 0.001}, r"test_fraction=0.001 leaves 2 digits on one side"),
    ({"source_fraction": 0.999}, r"source_fraction=0.999 leaves 2 digits on one side"),
])
def test_digits_shift_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_digits_shift(**kwargs)


@pytest.mark.parametrize("kwargs, match", [
    ({"patch_size": 0}, "patch_size=0 must be an integer of at least 1"),
    ({"patch_size": -5}, "patch_size=-5"),
    ({"patch_size": 4.0}, "patch_size=4.0"),
    ({"n_per_class": 0}, "n_per_class=0"),
    ({"n_per_class": 2.5}, "n_per_class=2.5"),
    ({"classes": []}, "classes is empty"),
    ({"classes": None}, "classes=None"),
    ({"patch_size": 10000}, "patch_size=10000: photo 'astronaut'"),
])
def test_photo_patches_refuse_bad_parameters_naming_them(kwargs, match):
    # patch_size=0 gave (10, 0, 0, 3) empty images, the others numpy's errors
    with pytest.raises(ValueError, match=match):
        load_photo_patches(**{"n_per_class": 1, **kwargs})


def test_photo_patches_take_scikit_learns_photographs_too():
    # the name check accepted them, then skimage.data had no attribute 'china'
    X, y = load_photo_patches(n_per_class=1, patch_size=16, classes=["china", "flower"])
    assert X.shape == (2, 16, 16, 3) and list(y) == ["china", "flower"]


def test_one_extension_given_as_a_string_is_one_ending(tmp_path):
    # ".png" was read letter by letter: any name ending in ".", "p", "n" or "g"
    for label in ("cat", "dog"):
        (tmp_path / label).mkdir()
        for name in ("a.png", "b.jpg", "notes.svg"):
            (tmp_path / label / name).write_bytes(b"")
    paths, labels = load_image_folder(tmp_path, extensions=".png")
    assert [os.path.basename(p) for p in paths] == ["a.png", "a.png"]
    assert not is_image_name("x.svg", ".png") and is_image_name("X.PNG", ".png")
    assert [os.path.basename(p) for p in list_image_files(tmp_path / "cat",
                                                          extensions=".png")] == ["a.png"]
    with pytest.raises(ValueError, match="extensions=.* must be non-empty file name endings"):
        is_image_name("a.png", ())


def test_mix_domains_edge_cases():
    X0, X1 = np.zeros((2, 3)), np.ones((2, 3))
    with pytest.raises(ValueError, match="label above 9223372036854775807"):
        mix_domains(X0, np.array([1, 2 ** 63], dtype=np.uint64), X1)  # wrapped to < 0
    with pytest.warns(DataConversionWarning):  # a column vector, as scikit-learn reads it
        assert list(mix_domains(X0, np.array([[0], [1]]), X1)[1]) == [0, 1, -1, -1]
    import pandas as pd  # a nullable integer column stays integers

    assert list(mix_domains(X0, pd.Series([0, 1], dtype="Int64"), X1)[1]) == [0, 1, -1, -1]
    with pytest.raises(TypeError, match="mix_domains stacks dense arrays"):
        mix_domains(sp.csr_matrix(X0), [0, 1], sp.csr_matrix(X1))


def test_sentiment_domain_must_be_a_name():
    with pytest.raises(ValueError, match=r"domain=\['movies'\] must be one of"):
        load_sentiment_domains(["movies"])


def test_digits_shift_names_the_missing_scikit_image(monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)
    with pytest.raises(ImportError, match="pip install scikit-image"):
        load_digits_shift(photos=("china", "astronaut"))
    # scikit-learn's photographs alone do not need it
    assert load_digits_shift(photos=("china",)).X_test.shape[1:] == IMAGE_SHAPE


def test_mix_domains():
    X_source = np.arange(12).reshape(3, 2, 2)
    X_target = -np.arange(8).reshape(2, 2, 2)
    X, y, sample_domain = mix_domains(X_source, [0, 2, 1], X_target)
    np.testing.assert_array_equal(X, np.concatenate([X_source, X_target]))
    np.testing.assert_array_equal(y, [0, 2, 1, -1, -1])
    np.testing.assert_array_equal(sample_domain, [1, 1, 1, -1, -1])


@pytest.mark.parametrize("y_source, X_target, match", [
    (["a", "b", "c"], np.zeros((1, 2)), "integer labels"),
    ([0, -1, 1], np.zeros((1, 2)), "reserved"),
    ([0, 1], np.zeros((1, 2)), "3 samples"),
    ([0, 1, 2], np.zeros((1, 3)), "shape"),
])
def test_mix_domains_rejects(y_source, X_target, match):
    with pytest.raises(ValueError, match=match):
        mix_domains(np.zeros((3, 2)), y_source, X_target)


# -- load_image_folder ----------------------------------------------------------
def _write_tree(root, layout):
    from PIL import Image

    rng = np.random.default_rng(0)
    for relative in layout:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() in (".png", ".jpg", ".jpeg"):
            image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(image).save(path)
        else:
            path.write_text("not an image")


def test_load_image_folder_follows_torchvision(tmp_path):
    from torchvision.datasets import ImageFolder

    _write_tree(tmp_path, ["dog/b.png", "dog/a.JPG", "cat/z.png", "cat/sub/y.png",
                           "cat/a-b/x.png", "cat/notes.txt", "Bird/c.jpeg"])
    reference = ImageFolder(str(tmp_path))
    # Hidden files and folders are skipped (torchvision would take them).
    _write_tree(tmp_path, ["cat/.hidden.png", ".cache/x.png", "dog/.git/w.png"])
    paths, labels = load_image_folder(tmp_path)
    assert paths == [p for p, _ in reference.samples]
    assert labels.tolist() == [reference.classes[i] for _, i in reference.samples]
    assert labels.tolist() == ["Bird", "cat", "cat", "cat", "dog", "dog"]
    again, again_labels = load_image_folder(str(tmp_path))
    assert again == paths and again_labels.tolist() == labels.tolist()


def test_load_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image_folder(tmp_path / "missing")
    _write_tree(tmp_path, ["loose.png"])
    with pytest.raises(NotADirectoryError, match="is a file"):
        load_image_folder(tmp_path / "loose.png")
    with pytest.raises(ValueError, match="no class subfolder.*1 image file"):
        load_image_folder(tmp_path)
    _write_tree(tmp_path, ["cat/a.png", "dog/readme.txt"])
    with pytest.raises(ValueError, match=r"class folder .*dog.* holds no image"):
        load_image_folder(tmp_path)


def test_load_image_folder_feeds_estimators_and_grid_search(tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline

    from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor

    _write_tree(tmp_path, [f"{label}/{i}.png" for label in ("a", "b") for i in range(6)])
    X, y = load_image_folder(tmp_path)
    pipe = make_pipeline(PretrainedFeatureExtractor(model="simple_cnn", weights=None,
                                                    random_state=0, device="cpu"),
                         LogisticRegression(max_iter=200))
    grid = GridSearchCV(pipe, {"logisticregression__C": [0.1, 1.0]}, cv=2).fit(X, y)
    assert set(grid.predict(X)) <= {"a", "b"}
    clf = FineTuneClassifier(model="simple_cnn", weights=None, epochs=1, image_size=16,
                             random_state=0, device="cpu").fit(X, y)
    assert clf.predict(X).shape == (12,)


def test_list_image_files_flat_and_recursive(tmp_path):
    _write_tree(tmp_path, ["b.png", "a.JPG", ".hidden.png", "notes.txt", "sub/c.png",
                           ".git/d.png"])
    flat = list_image_files(tmp_path)
    assert [os.path.basename(p) for p in flat] == ["a.JPG", "b.png"]
    deep = list_image_files(tmp_path, recursive=True)
    assert [os.path.relpath(p, tmp_path) for p in deep] == ["a.JPG", "b.png",
                                                            os.path.join("sub", "c.png")]
    assert is_image_name("x/y.WEBP") and not is_image_name(".z.png")
    assert not is_image_name("y.txt")


# -- symbolic links: cycles, duplicates, other classes ----------------------------
def _link(target, path):
    try:
        os.symlink(target, path)
    except (OSError, NotImplementedError):
        pytest.skip("symbolic links cannot be made here (Windows without the privilege)")


def _relative(paths, root):
    return [os.path.relpath(p, root) for p in paths]


def test_load_image_folder_link_cycle_lists_each_image_once(tmp_path):
    # The probe's tree: a link back to the root inside a class folder turned 4
    # images into 164, each listed again and again under both labels.
    _write_tree(tmp_path, ["a/x.png", "a/sub/x2.png", "b/y.png", "b/y2.png"])
    _link("..", tmp_path / "a" / "loop")  # to the root, which holds the class folder b
    with pytest.warns(UserWarning, match=r"loop' is skipped: it is a link to a folder "
                      r"that holds the class folder .*b'"):
        paths, labels = load_image_folder(tmp_path)
    assert _relative(paths, tmp_path) == ["a/x.png", "a/sub/x2.png", "b/y.png",
                                          "b/y2.png"]
    assert labels.tolist() == ["a", "a", "b", "b"]


def test_load_image_folder_cycle_inside_a_class_is_read_once(tmp_path):
    _write_tree(tmp_path, ["a/x.png", "b/y.png", "b/sub/z.png"])
    _link("..", tmp_path / "b" / "sub" / "up")  # back to the class folder itself
    with pytest.warns(UserWarning) as record:
        paths, labels = load_image_folder(tmp_path)
    assert _relative(paths, tmp_path) == ["a/x.png", "b/y.png", "b/sub/z.png"]
    assert labels.tolist() == ["a", "b", "b"]
    assert [str(w.message).split(" is skipped: ")[0] for w in record] == [
        repr(str(tmp_path / "b" / "sub" / "up"))]
    assert "already read (a link cycle" in str(record[0].message)


def test_load_image_folder_links_into_another_class_are_skipped(tmp_path):
    _write_tree(tmp_path, ["a/x.png", "b/y.png", "b/deep/z.png"])
    _link(str(tmp_path / "b" / "deep"), tmp_path / "a" / "borrowed")   # a folder
    _link(os.path.join("..", "b", "y.png"), tmp_path / "a" / "y.png")  # a file
    with pytest.warns(UserWarning, match=r"link into the class folder .*b'"):
        paths, labels = load_image_folder(tmp_path)
    assert _relative(paths, tmp_path) == ["a/x.png", "b/y.png", "b/deep/z.png"]
    assert labels.tolist() == ["a", "b", "b"]


def test_load_image_folder_follows_links_elsewhere_once(tmp_path):
    root, shared = tmp_path / "root", tmp_path / "shared"
    _write_tree(tmp_path, ["root/a/x.png", "root/b/y.png", "shared/s1.png",
                           "shared/more/s2.png", "elsewhere/e.png"])
    _link(str(shared), root / "a" / "shared")               # followed
    _link(str(shared), root / "a" / "shared_again")         # the same folder twice
    _link(os.path.join("x.png"), root / "a" / "x_copy.png")  # the same file twice
    _link(str(tmp_path / "elsewhere"), root / "c")          # a class folder that is a link
    with pytest.warns(UserWarning, match=r"shared_again' is skipped: it leads to the "
                      r"folder .*shared', already read"):
        paths, labels = load_image_folder(root)
    assert _relative(paths, root) == ["a/x.png", "a/shared/s1.png",
                                      "a/shared/more/s2.png", "b/y.png", "c/e.png"]
    assert labels.tolist() == ["a", "a", "a", "b", "c"]


def test_load_image_folder_refuses_a_class_folder_linked_to_another(tmp_path):
    _write_tree(tmp_path, ["a/x.png", "a/sub/z.png", "b/y.png"])
    _link("a", tmp_path / "c")
    with pytest.raises(ValueError, match=r"class folders .*a' and .*c' are one folder"):
        load_image_folder(tmp_path)
    os.remove(tmp_path / "c")
    _link(os.path.join("a", "sub"), tmp_path / "c")
    with pytest.raises(ValueError, match=r"one holds the other"):
        load_image_folder(tmp_path)


def test_list_image_files_recursive_survives_a_link_cycle(tmp_path):
    _write_tree(tmp_path, ["a.png", "sub/b.png"])
    _link("..", tmp_path / "sub" / "loop")
    with pytest.warns(UserWarning, match=r"loop' is skipped.*link cycle"):
        found = list_image_files(tmp_path, recursive=True)
    assert _relative(found, tmp_path) == ["a.png", os.path.join("sub", "b.png")]

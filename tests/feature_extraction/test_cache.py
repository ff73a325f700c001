"""PretrainedFeatureExtractor(cache=...): per-image feature caches and shared backbones."""

import contextlib
import os
import pickle
import subprocess
import sys
import textwrap
import warnings

import joblib
import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.utils.estimator_checks import check_estimator

import sktransfer.feature_extraction._extractor as feature_extraction
from sktransfer import PretrainedFeatureExtractor
from sktransfer.feature_extraction import FeatureCacheWarning
from sktransfer.feature_extraction._cache import DISK_FOLDER
from sktransfer.backbones import Backbone, SimpleCNN
from sktransfer.feature_extraction import (
    clear_feature_cache,
    feature_cache_info,
    set_feature_cache_size,
)


def tiny(**params):
    defaults = dict(model="simple_cnn", weights=None, random_state=0, device="cpu",
                    batch_size=8)
    defaults.update(params)
    return PretrainedFeatureExtractor(**defaults)


@pytest.fixture(autouse=True)
def fresh_cache():
    clear_feature_cache()
    yield
    clear_feature_cache()
    set_feature_cache_size(1 << 30)


@pytest.fixture
def images(rng):
    """Twenty 16x16 RGB uint8 images, channels last."""
    return rng.integers(0, 256, size=(20, 16, 16, 3), dtype=np.uint8)


@contextlib.contextmanager
def forwarded():
    """Count the images that go through any backbone while the block runs."""
    counts = {"images": 0}

    def hook(module, args, output):
        if isinstance(module, Backbone):
            counts["images"] += args[0].shape[0]

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        yield counts
    finally:
        handle.remove()


def entry_files(root):
    folder = os.path.join(root, DISK_FOLDER)
    return sorted(
        os.path.join(path, name)
        for path, _, names in os.walk(folder) for name in names if name.endswith(".feat")
    )


@pytest.mark.parametrize("name, value", [("pooling", "max"), ("layer", "1")])
def test_a_parameter_set_after_fit_that_chooses_another_network_is_refused(
        images, name, value):
    """set_params(pooling="max") without a refit ran the fitted average pooling
    and filed its features under the key of max pooling: a new extractor fitted
    with max pooling was then served them."""
    fitted = tiny(layer="0", pooling="avg", cache=True).fit(images)  # 16 features,
    reference = tiny(**{"layer": "0", "pooling": "avg", name: value}).fit(images)  # as here
    expected = reference.transform(images)
    fitted.set_params(**{name: value})
    with pytest.raises(ValueError, match=rf"{name}='{value}' was set after fit, which "
                                         rf"ran {name}=.*Call fit again"):
        fitted.transform(images)
    # nothing was filed under the other network's name
    fresh = tiny(**{"layer": "0", "pooling": "avg", name: value, "cache": True})
    np.testing.assert_array_equal(fresh.fit(images).transform(images), expected)
    np.testing.assert_array_equal(fitted.fit(images).transform(images), expected)
    # without a cache too: the live extractor and an unpickled copy would differ
    uncached = tiny(layer="0", pooling="avg").fit(images).set_params(**{name: value})
    with pytest.raises(ValueError, match="was set after fit"):
        uncached.transform(images)


def test_a_module_changed_in_place_after_fit_is_no_new_parameter(images):
    # the record is the parameter as given: a user's module is compared by identity,
    # so an attribute set on it (or an edit of its code) is not refused, and an
    # unpickled extractor's module is still its own
    net = SimpleCNN()
    extractor = tiny(model=net).fit(images)
    expected = extractor.transform(images)
    net.note = "trained elsewhere"
    np.testing.assert_array_equal(extractor.transform(images), expected)
    copy = pickle.loads(pickle.dumps(extractor))
    np.testing.assert_array_equal(copy.transform(images), expected)
    copy.set_params(model=SimpleCNN())
    with pytest.raises(ValueError, match=r"model=a SimpleCNN module was set after fit, "
                                         r"which ran model=a SimpleCNN module"):
        copy.transform(images)


# -- the same features, fewer forward passes ------------------------------------
@pytest.mark.parametrize("where", ["memory", "disk"])
def test_cached_features_are_identical_to_uncached(images, tmp_path, where):
    expected = tiny().fit(images).transform(images)
    extractor = tiny(cache=True if where == "memory" else tmp_path).fit(images)
    cold = extractor.transform(images)
    warm = extractor.transform(images)
    np.testing.assert_array_equal(cold, expected)  # bitwise, not allclose
    np.testing.assert_array_equal(warm, expected)
    assert warm.dtype == np.float32 and warm.flags.writeable
    warm[:] = 0  # the caller's array is a copy: the cache is not changed
    np.testing.assert_array_equal(extractor.transform(images), expected)


@pytest.mark.parametrize("where", ["memory", "disk"])
def test_fold_subsets_hit_the_cache(images, tmp_path, where):
    extractor = tiny(cache=True if where == "memory" else tmp_path).fit(images)
    full = extractor.transform(images)
    with forwarded() as counts:
        for train, test in KFold(5, shuffle=True, random_state=0).split(images):
            np.testing.assert_array_equal(extractor.transform(images[train]), full[train])
            np.testing.assert_array_equal(extractor.transform(images[test]), full[test])
    assert counts["images"] == 0
    info = feature_cache_info()
    assert info.misses == 20 and info.hits == 5 * 20


def test_only_missing_images_are_computed(images):
    extractor = tiny(cache=True).fit(images)
    extractor.transform(images[:12])
    with forwarded() as counts:
        features = extractor.transform(images)
    assert counts["images"] == 8
    np.testing.assert_allclose(features, tiny().fit(images).transform(images),
                               rtol=1e-5, atol=1e-6)


def test_repeated_images_are_computed_once(images):
    X = images[[0, 1, 0, 2, 1, 0]]
    with forwarded() as counts:
        features = tiny(cache=True).fit(X).transform(X)
    assert counts["images"] == 3
    np.testing.assert_array_equal(features[0], features[2])
    np.testing.assert_array_equal(features[0], features[5])
    np.testing.assert_array_equal(features[1], features[4])


def test_gridsearch_runs_the_network_once_per_image(rng):
    X = rng.integers(0, 256, size=(24, 16, 16, 3), dtype=np.uint8)
    y = np.repeat(["dark", "light"], 12)
    X[12:] = np.clip(X[12:].astype(int) + 120, 0, 255)
    grid = {"logisticregression__C": [0.01, 0.1, 1.0]}
    results = {}
    for cache in (None, True):
        pipe = make_pipeline(tiny(cache=cache), LogisticRegression(max_iter=500))
        with forwarded() as counts:
            search = GridSearchCV(pipe, grid, cv=3).fit(X, y)
        results[cache] = counts["images"], search
    uncached, cached = results[None], results[True]
    # 3 folds x 3 candidates x 24 images, plus the refit on all 24.
    assert uncached[0] == 3 * 3 * 24 + 24
    assert cached[0] == 24
    assert cached[1].best_params_ == uncached[1].best_params_
    np.testing.assert_array_equal(cached[1].cv_results_["mean_test_score"],
                                  uncached[1].cv_results_["mean_test_score"])


# -- never stale -------------------------------------------------------------
LAYER = dict(model="resnet18", layer="layer1", image_size=16)


@pytest.mark.parametrize(
    "before, after",
    [
        ({}, dict(image_size=12)),  # the preprocessing
        ({}, dict(random_state=1)),  # the weights
        ({}, dict(precision="bf16")),  # the autocast dtype
        (dict(LAYER, pooling="avg"), dict(LAYER, pooling="max")),
        (dict(LAYER, layer="layer1"), dict(LAYER, layer="layer2")),
        (dict(input_shape=(16, 16, 3)), dict(input_shape=(16, 48, 1))),  # same values
    ],
)
def test_a_changed_parameter_misses(images, before, after):
    X = images.reshape(20, -1) / 255.0 if "input_shape" in after else images
    tiny(cache=True, **before).fit(X).transform(X)
    extractor = tiny(cache=True, **after).fit(X)
    with forwarded() as counts:
        features = extractor.transform(X)
    assert counts["images"] == 20
    np.testing.assert_array_equal(features, tiny(**after).fit(X).transform(X))
    with forwarded() as counts:  # and the first ones are still there
        tiny(cache=True, **before).fit(X).transform(X)
    assert counts["images"] == 0


class _Tap(torch.nn.Module):
    """The features after the first ``depth`` layers of a shared trunk: ``depth``
    is a plain attribute, which ``repr`` does not show."""

    def __init__(self, trunk, depth):
        super().__init__()
        self.trunk, self.depth = trunk, depth

    def forward(self, x):
        for layer in self.trunk[:self.depth]:
            x = layer(x)
        return x.mean(dim=(2, 3))


def _tap_class(reduce):
    """A class of the same name, structure and ``repr`` as ``_Tap``, whose
    ``forward`` pools with ``reduce`` (the user edited the code)."""
    if reduce == "mean":
        def forward(self, x):
            return self.trunk(x).mean(dim=(2, 3))
    else:
        def forward(self, x):
            return self.trunk(x).amax(dim=(2, 3))
    return type("Edited", (torch.nn.Module,), {
        "__init__": lambda self, trunk: (torch.nn.Module.__init__(self),
                                         setattr(self, "trunk", trunk))[0],
        "forward": forward})


def test_a_user_modules_code_and_plain_attributes_are_in_the_key(images):
    torch.manual_seed(0)
    trunk = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(),
                                torch.nn.Conv2d(4, 4, 3))
    modules = [_Tap(trunk, 1), _Tap(trunk, 3), _tap_class("mean")(trunk),
               _tap_class("max")(trunk)]
    assert repr(modules[0]) == repr(modules[1]) and repr(modules[2]) == repr(modules[3])
    for module in modules:
        extractor = tiny(model=module, cache=True).fit(images)
        with forwarded() as counts:
            features = extractor.transform(images)
        assert counts["images"] == 20  # none served from another module's entries
        np.testing.assert_array_equal(features, tiny(model=module).fit(images).transform(images))
    extractor = tiny(model=modules[1], cache=True).fit(images)
    with forwarded() as counts:  # the same module again: its own entries
        extractor.transform(images)
    assert counts["images"] == 0


_DECORATED = textwrap.dedent("""
    import torch
    from sktransfer.feature_extraction._cache import model_identity

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.mode = torch.nn.Conv2d(3, 4, 3), "mean"

        @torch.no_grad()
        def forward(self, x):
            pool = x.mean if self.mode in {"mean", "avg", "average"} else x.{reduce}
            return pool(dim=(2, 3))

    print(model_identity(Net()))
""")


def _identity_in_a_new_process(reduce, hash_seed):
    code = _DECORATED.replace("x.{reduce}", f"x.{reduce}")
    environment = dict(os.environ, PYTHONHASHSEED=str(hash_seed), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env=environment, timeout=120).stdout.strip()


def test_a_user_modules_key_is_the_same_in_every_process_and_sees_decorated_code():
    """A set in a method's code is a frozenset constant, listed in an order that
    follows the process's hash seed: the key must not. A ``forward`` under
    ``@torch.no_grad()`` is keyed by its own code, not the decorator's."""
    first = _identity_in_a_new_process("amax", hash_seed=1)
    assert first == _identity_in_a_new_process("amax", hash_seed=2)
    assert first != _identity_in_a_new_process("amin", hash_seed=1)


def test_a_changed_pixel_misses_for_that_image_only(images, tmp_path):
    extractor = tiny(cache=tmp_path).fit(images)
    before = extractor.transform(images)
    changed = images.copy()
    changed[3, 5, 5, 0] ^= 0xFF
    with forwarded() as counts:
        after = extractor.transform(changed)
    assert counts["images"] == 1
    np.testing.assert_array_equal(np.delete(after, 3, 0), np.delete(before, 3, 0))
    fresh = tiny().fit(changed).transform(changed[3:4])  # a batch of 1 as well
    np.testing.assert_array_equal(after[3], fresh[0])
    assert not np.array_equal(after[3], before[3])


def test_changed_checkpoint_at_the_same_path_misses(images, tmp_path):
    path = tmp_path / "cnn.pth"
    torch.manual_seed(1)
    torch.save(SimpleCNN().state_dict(), path)
    first = tiny(weights=path, cache=tmp_path / "cache").fit(images).transform(images)
    torch.manual_seed(2)
    torch.save(SimpleCNN().state_dict(), path)  # other weights, same file name
    extractor = tiny(weights=path, cache=tmp_path / "cache").fit(images)
    with forwarded() as counts:
        second = extractor.transform(images)
    assert counts["images"] == 20
    assert not np.allclose(first, second)
    np.testing.assert_array_equal(second, tiny(weights=path).fit(images).transform(images))


def test_pil_images_and_files_are_keyed_by_content_and_version(images, tmp_path):
    pils = [Image.fromarray(image) for image in images[:6]]
    paths = []
    for i, pil in enumerate(pils):
        paths.append(str(tmp_path / f"{i}.png"))
        pil.save(paths[-1])
    for X in (pils, paths):
        expected = tiny().fit(X).transform(X)
        extractor = tiny(cache=True).fit(X)
        np.testing.assert_array_equal(extractor.transform(X), expected)
        with forwarded() as counts:
            np.testing.assert_array_equal(extractor.transform(X), expected)
        assert counts["images"] == 0
    # A rewritten file (new pixels, new modification time) is computed again.
    Image.fromarray(255 - images[2]).save(paths[2])
    os.utime(paths[2], ns=(os.stat(paths[2]).st_atime_ns,
                           os.stat(paths[2]).st_mtime_ns + 10**9))
    with forwarded() as counts:
        features = extractor.transform(paths)
    assert counts["images"] == 1
    np.testing.assert_array_equal(features[2], tiny().fit(paths).transform(paths[2:3])[0])


# -- the disk store ----------------------------------------------------------
def test_corrupt_entries_are_detected_deleted_and_recomputed(images, tmp_path):
    extractor = tiny(cache=tmp_path).fit(images)
    expected = extractor.transform(images)
    files = entry_files(tmp_path)
    assert len(files) == 20
    flipped, truncated, garbage, swapped = files[:4]
    data = bytearray(open(flipped, "rb").read())
    data[-3] ^= 0x01  # one bit of the payload: the checksum catches it
    open(flipped, "wb").write(bytes(data))
    open(truncated, "r+b").truncate(100)
    open(garbage, "wb").write(b"not a feature")
    open(swapped, "wb").write(open(files[5], "rb").read())  # another image's entry
    with forwarded() as counts, pytest.warns(FeatureCacheWarning, match="4 corrupt"):
        features = extractor.transform(images)
    assert counts["images"] == 4
    np.testing.assert_array_equal(features, expected)
    assert entry_files(tmp_path) == files  # rewritten, intact
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with forwarded() as counts:
            np.testing.assert_array_equal(extractor.transform(images), expected)
    assert counts["images"] == 0


def test_disk_layout_sharded_atomic_and_not_pickled(images, tmp_path):
    tiny(cache=tmp_path).fit(images).transform(images)
    root = tmp_path / DISK_FOLDER
    (model_folder,) = root.iterdir()
    assert (model_folder / "info.json").is_file()  # what the fingerprint describes
    for path in entry_files(tmp_path):
        name = os.path.basename(path)
        assert os.path.basename(os.path.dirname(path)) == name[:3]
        assert open(path, "rb").read(7) == b"SKTFEAT"
        assert os.path.getsize(path) == 64 + 4 * 64
    leftovers = [n for _, _, names in os.walk(root) for n in names if n.startswith(".tmp")]
    assert leftovers == []


def test_disk_store_is_shared_by_instances_and_processes(images, tmp_path):
    np.save(tmp_path / "images.npy", images)
    script = textwrap.dedent(f"""
        import numpy as np, torch
        torch.set_num_threads(1)
        from sktransfer import PretrainedFeatureExtractor
        X = np.load({str(tmp_path / "images.npy")!r})
        extractor = PretrainedFeatureExtractor(
            model="simple_cnn", weights=None, random_state=0, device="cpu",
            batch_size=8, cache={str(tmp_path / "cache")!r})
        np.save({str(tmp_path / "features.npy")!r}, extractor.fit_transform(X))
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    written = np.load(tmp_path / "features.npy")
    for _ in range(2):  # two instances of this process, after another process
        extractor = tiny(cache=str(tmp_path / "cache")).fit(images)
        with forwarded() as counts:
            np.testing.assert_array_equal(extractor.transform(images), written)
        assert counts["images"] == 0


def test_joblib_memory_is_accepted(images, tmp_path):
    memory = joblib.Memory(tmp_path, verbose=0)
    expected = tiny(cache=memory).fit(images).transform(images)
    assert len(entry_files(tmp_path)) == 20
    with forwarded() as counts:
        np.testing.assert_array_equal(
            tiny(cache=str(tmp_path)).fit(images).transform(images), expected
        )
    assert counts["images"] == 0
    # Memory(None) caches nothing, as in joblib.
    with forwarded() as counts:
        tiny(cache=joblib.Memory(None)).fit(images).transform(images)
    assert counts["images"] == 20


# -- the in-memory store -------------------------------------------------------
def test_memory_store_survives_clone(images):
    extractor = tiny(cache=True).fit(images)
    expected = extractor.transform(images)
    cloned = clone(extractor)
    assert cloned.cache is True and "_backbone_" not in vars(cloned)
    with forwarded() as counts:
        np.testing.assert_array_equal(cloned.fit(images).transform(images), expected)
    assert counts["images"] == 0


def test_memory_store_is_bounded_lru(images):
    extractor = tiny(cache=True).fit(images)
    row = 64 * 4 + 256  # values plus the per-entry allowance
    set_feature_cache_size(10 * row)
    extractor.transform(images)
    info = feature_cache_info()
    assert info.memory_entries == 10 and info.memory_bytes <= 10 * row
    with forwarded() as counts:
        extractor.transform(images[10:])  # the ten most recent ones are kept
    assert counts["images"] == 0
    with forwarded() as counts:
        extractor.transform(images[:10])
    assert counts["images"] == 10
    set_feature_cache_size(0)
    assert feature_cache_info().memory_entries == 0
    with pytest.raises(ValueError, match="max_bytes"):
        set_feature_cache_size(-1)


# -- sklearn discipline ----------------------------------------------------------
@pytest.mark.parametrize("cache", [None, True, "dir", "memory"])
def test_pickle_small_and_hash_stable_across_clones(images, tmp_path, cache):
    cache = {"dir": str(tmp_path), "memory": joblib.Memory(tmp_path, verbose=0)}.get(
        cache, cache
    )
    extractor = tiny(cache=cache)
    assert joblib.hash(clone(extractor)) == joblib.hash(extractor)
    assert joblib.hash(clone(clone(extractor))) == joblib.hash(extractor)
    assert len(pickle.dumps(extractor)) < 2_000
    extractor.fit(images).transform(images)
    assert len(pickle.dumps(extractor)) < 20_000  # the features live in the cache


def test_pipeline_memory_reuses_the_fitted_extractor(images, tmp_path, monkeypatch):
    y = np.arange(20) % 2
    calls = []
    original = feature_extraction.load_backbone
    monkeypatch.setattr(feature_extraction, "load_backbone",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    memory = joblib.Memory(tmp_path, verbose=0)

    def pipe():
        return Pipeline([("features", tiny(cache=True)),
                         ("clf", LogisticRegression(max_iter=200))], memory=memory)

    first = pipe().fit(images, y)
    assert len(calls) == 1
    clear_feature_cache()  # neither features nor backbones left in this process
    with forwarded() as counts:
        second = pipe().fit(images, y)
    assert counts["images"] == 0 and len(calls) == 1  # joblib's cache answered
    assert second.named_steps["features"].n_features_out_ == 64
    np.testing.assert_array_equal(second.predict_proba(images),
                                  first.predict_proba(images))


@pytest.mark.parametrize(
    "cache, error, match",
    [
        (3, ValueError, "'cache' parameter"),
        (object(), ValueError, "'cache' parameter"),
        ("", ValueError, "not a directory"),
        ("file", ValueError, "not a directory"),
    ],
)
def test_bad_cache_values_fail_at_fit(images, tmp_path, cache, error, match):
    if cache == "file":
        cache = tmp_path / "a_file"
        cache.write_text("")
    extractor = tiny(cache=cache)  # construction never fails
    with pytest.raises(error, match=match):
        extractor.fit(images)


def test_sklearn_checks_pass_with_a_cache():
    # test_common runs them without a cache; a cached transform must pass them too
    # (its transform leaves the estimator's __dict__ unchanged, for one).
    check_estimator(tiny(cache=True, input_shape=(1, -1), batch_size=64))


def test_cache_false_is_off(images):
    with forwarded() as counts:
        extractor = tiny(cache=False).fit(images)
        extractor.transform(images)
        extractor.transform(images)
    assert counts["images"] == 40
    assert feature_cache_info().hits == 0


# -- one backbone per process ----------------------------------------------------
def count_loads(monkeypatch):
    calls = []
    original = feature_extraction.load_backbone
    monkeypatch.setattr(feature_extraction, "load_backbone",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    return calls


def test_unpickled_copies_share_one_backbone(images, monkeypatch):
    blob = pickle.dumps(tiny().fit(images))
    calls = count_loads(monkeypatch)
    first, second = pickle.loads(blob), pickle.loads(blob)
    expected = first.transform(images)
    np.testing.assert_array_equal(second.transform(images), expected)
    assert len(calls) == 1
    assert first._backbone_ is second._backbone_
    assert not any(p.requires_grad for p in first._backbone_.parameters())
    assert not first._backbone_.training


def test_shared_backbone_still_refuses_changed_weights(images, monkeypatch):
    blob = pickle.dumps(tiny().fit(images))
    pickle.loads(blob).transform(images)  # remembered for (simple_cnn, None, seed 0)
    loaded = pickle.loads(blob)
    loaded._weights_fingerprint_ = "0" * 32  # as if fitted with other weights
    with pytest.raises(RuntimeError, match="differ from those this extractor was fitted"):
        loaded.transform(images)


def test_clones_with_a_cache_share_one_backbone(images, monkeypatch):
    calls = count_loads(monkeypatch)
    extractor = tiny(cache=True).fit(images)
    for _ in range(3):
        clone(extractor).fit(images)
    assert len(calls) == 1
    tiny().fit(images)  # without a cache, fit loads its own, as before
    assert len(calls) == 2


def test_unseeded_random_weights_are_never_shared(images, monkeypatch):
    calls = count_loads(monkeypatch)
    a = tiny(random_state=None, cache=True).fit(images).transform(images)
    b = tiny(random_state=None, cache=True).fit(images).transform(images)
    assert len(calls) == 2 and not np.allclose(a, b)


# -- a file's key: rewritten in place with its old size and times -------------------
def test_file_rewritten_in_place_with_restored_mtime_misses(images, tmp_path):
    import time

    path = str(tmp_path / "image.bmp")  # uncompressed: any pixels, the same size
    Image.fromarray(images[0]).save(path)
    extractor = tiny(cache=tmp_path / "cache").fit([path])
    first = extractor.transform([path])
    before = os.stat(path)
    time.sleep(0.05)  # past the file system's timestamp granularity
    with open(path, "r+b") as file:  # in place: same inode
        file.write(open_bmp_bytes(255 - images[0]))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size, before.st_mtime_ns, before.st_ino)
    with forwarded() as counts:
        features = extractor.transform([path])
    assert counts["images"] == 1  # recomputed, not the old entry
    assert not np.array_equal(features, first)
    np.testing.assert_array_equal(features, tiny().fit([path]).transform([path]))
    with forwarded() as counts:  # and cached again under its new key
        np.testing.assert_array_equal(extractor.transform([path]), features)
    assert counts["images"] == 0


def open_bmp_bytes(image):
    import io

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="BMP")
    return buffer.getvalue()


# -- entries that are not regular files ---------------------------------------------
def run_with_timeout(function, seconds, unblock=None):
    """``function()`` in a daemon thread: its result, or a test failure after
    ``seconds`` (``unblock()`` then frees the thread) instead of a hung run."""
    import threading

    outcome = {}

    def target():
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                outcome["value"] = function()
            outcome["warnings"] = caught
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        if unblock is not None:
            unblock()
            thread.join(10)
        pytest.fail(f"transform did not return within {seconds} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"], outcome["warnings"]


def _unblock_fifo(path):
    def unblock():
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))  # EOF to the reader
        except OSError:
            pass
    return unblock


@pytest.mark.skipif(not os.path.exists("/dev/zero") or not hasattr(os, "mkfifo"),
                    reason="needs /dev/zero and FIFOs")
@pytest.mark.parametrize("kind", ["symlink to /dev/zero", "fifo", "symlink to an entry",
                                  "oversized", "empty folder"])
def test_entries_that_are_not_plain_entry_files_are_discarded(images, tmp_path, kind):
    extractor = tiny(cache=tmp_path).fit(images)
    expected = extractor.transform(images)
    files = entry_files(tmp_path)
    target = files[0]
    os.remove(target)
    if kind == "symlink to /dev/zero":
        os.symlink("/dev/zero", target)
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "symlink to an entry":
        os.symlink(files[1], target)  # a valid file, for another key
    elif kind == "empty folder":  # stayed, warned, recomputed at every call
        os.mkdir(target)
    else:
        with open(files[1], "rb") as file:
            data = file.read()
        with open(target, "wb") as file:
            file.write(data + bytes(64 << 20))  # a right entry's start, then 64 MiB
    with forwarded() as counts:
        features, caught = run_with_timeout(lambda: extractor.transform(images), 60,
                                            unblock=_unblock_fifo(target))
    # The recomputed image ran in a batch of one: equal to the last bits only.
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-7)
    assert counts["images"] == 1
    messages = [str(w.message) for w in caught if w.category is FeatureCacheWarning]
    assert len(messages) == 1 and "1 corrupt" in messages[0], messages
    # Replaced by a regular, intact entry; the target of a link is untouched.
    assert not os.path.islink(target) and os.path.isfile(target)
    assert os.path.getsize(target) == 64 + 4 * 64
    assert entry_files(tmp_path) == files
    with forwarded() as counts:
        np.testing.assert_array_equal(extractor.transform(images), features)
    assert counts["images"] == 0

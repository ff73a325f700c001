"""What a safe file may ask of the machine that loads it
(``persistence/_limits.py``): sizes, workers and backbones from outside the file."""

import contextlib
import io
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import sktransfer

from safe_files import (
    assert_same_outputs,
    changed_preprocess,
    counted_restores,
    extractor,
    images,
    mlp,
    no_io_outside,
    outputs,
    safe_round_trip,
    save_changed,
)


@contextlib.contextmanager
def _built_on_meta_only(*names):
    """Fail the test when the classifiers build one of ``names`` (parts of their
    network) anywhere but on torch's meta device, where nothing is allocated."""
    from sktransfer.classifiers import _base

    with contextlib.ExitStack() as stack:
        for name in names:
            def guarded(*args, _real=getattr(_base, name), _name=name, **kwargs):
                assert torch.get_default_device().type == "meta", f"{_name} was built"
                return _real(*args, **kwargs)

            stack.enter_context(mock.patch.object(_base, name, guarded))
        yield


@contextlib.contextmanager
def _images_at_most(side):
    """Fail the test when an image is resized or cropped to more than ``side``
    pixels a side (what a crafted preprocessing would make predict allocate)."""
    from torchvision.transforms.v2 import functional as TF

    def guard(real):
        def guarded(images, size, *args, **kwargs):
            assert max(size) <= side, f"an image of {size} pixels"
            return real(images, size, *args, **kwargs)
        return guarded

    with mock.patch.object(TF, "resize", guard(TF.resize)), \
            mock.patch.object(TF, "center_crop", guard(TF.center_crop)):
        yield


def _widths(*widths):
    return lambda d: d["params"].update(hidden_layer_sizes={"$tuple": list(widths)})


@pytest.mark.parametrize("name, change", [
    ("mlp", _widths(25000, 25000)),
    ("mlp", lambda d: d["fitted"].update(n_features_in_=10**9)),
    ("mlp", lambda d: d["fitted"].update(classes_={"$ndarray": {
        "dtype": "<i8", "shape": [50_000], "data": list(range(50_000))}})),
    ("cnn", lambda d: d["fitted"].update(classes_={"$ndarray": {
        "dtype": "<i8", "shape": [50_000], "data": list(range(50_000))}})),
], ids=["hidden-widths", "input-width", "mlp-classes", "cnn-classes"])
def test_a_layer_width_bomb_is_refused_before_the_network_is_built(fitted, tmp_path,
                                                                    name, change):
    path = save_changed(fitted[name][0], tmp_path / "bomb.safetensors", change)
    with _built_on_meta_only("mlp_backbone", "ClassifierNet"):
        with pytest.raises(ValueError, match="weights do not fit the network"):
            sktransfer.load(path)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(widths=st.lists(st.integers(1, 10**6), min_size=1, max_size=3))
def test_declared_widths_load_only_when_the_tensors_hold_them(fitted, tmp_path, widths):
    estimator, X = fitted["mlp"]  # hidden_layer_sizes=(8,)
    path = save_changed(estimator, tmp_path / "widths.safetensors", _widths(*widths))
    if widths == [8]:
        assert_same_outputs(sktransfer.load(path), estimator, X)
        return
    with _built_on_meta_only("mlp_backbone", "ClassifierNet"):
        with pytest.raises(ValueError, match="weights do not fit the network"):
            sktransfer.load(path)


@pytest.mark.parametrize("name", ["cnn", "extractor"])
@pytest.mark.parametrize("change, match", [
    (changed_preprocess(crop_size={"$tuple": [12000, 12000]}), r"preprocess_.crop_size=\(12000"),
    (changed_preprocess(resize_size=12000), "preprocess_.resize_size=12000"),
    (changed_preprocess(resize_size={"$tuple": [16, 60000]}), r"preprocess_.resize_size=\(16, 60000"),
    (lambda d: d["params"].update(image_size=12000), "image_size=12000"),
], ids=["crop", "resize", "resize-pair", "image_size"])
def test_an_image_size_bomb_is_refused_before_predict(fitted, tmp_path, name, change,
                                                     match):
    estimator, X = fitted[name]
    path = save_changed(estimator, tmp_path / "bomb.safetensors", change)
    with _images_at_most(2048), pytest.raises(ValueError, match=match + ".*2048 pixels"):
        outputs(sktransfer.load(path), X)  # predict or transform, as a caller would


@pytest.mark.parametrize("change, match", [
    (lambda d: d["params"].update(batch_size=2**40), "batch_size=1099511627776"),
    (changed_preprocess(in_chans=10**9), "in_chans=1000000000"),
    (lambda d: d["fitted"].update(n_features_out_=10**12), "n_features_out_=10{12}"),
    # the feature count of a backbone sized at its training images: a negative
    # one made torch raise a RuntimeError (load raises only ValueError)
    (lambda d: d["fitted"].update(_input_features_=-1),
     "_input_features_=-1 is not a number of features from 1"),
    (lambda d: d["fitted"].update(_input_features_=10**12), "_input_features_=10{12}"),
], ids=["batch_size", "in_chans", "n_features_out", "input_features", "input_features_big"])
def test_other_declared_sizes_are_bounded(fitted, tmp_path, change, match):
    estimator, X = fitted["extractor"]
    path = save_changed(estimator, tmp_path / "bomb.safetensors", change)
    with counted_restores() as restored, pytest.raises(ValueError, match=match):
        sktransfer.load(path)
    assert restored == []


@pytest.mark.parametrize("name", ["cnn", "extractor"])
@pytest.mark.parametrize("change, match", [
    (changed_preprocess(std={"$tuple": [0.0, 0.0, 0.0]}),
     r"std=\(0.0, 0.0, 0.0\) must be finite and above 0"),
    (changed_preprocess(mean={"$tuple": [{"$float": "nan"}, 0.5, 0.5]}),
     r"mean=\(nan, 0.5, 0.5\) holds a value that is not finite"),
    (changed_preprocess(in_chans=1), "preprocess_.in_chans=1 is not the 3 channels"),
    (changed_preprocess(resize_size=0), "resize_size=0 is not a size of at least one"),
    (changed_preprocess(crop_size={"$tuple": [16, 0]}), r"crop_size=\(16, 0\) is not a size"),
], ids=["std", "mean", "in_chans", "resize", "crop"])
def test_a_preprocessing_the_network_does_not_read_is_refused_at_load(
        fitted, tmp_path, name, change, match):
    # Each loaded without a word and then predicted NaN (a zero std), a constant
    # class, or failed in the network: the normalisation and channels come
    # with the network the parameters build; only the geometry may be the file's.
    estimator, X = fitted[name]
    path = save_changed(estimator, tmp_path / "edited.safetensors", change)
    with pytest.raises(ValueError, match=match):
        sktransfer.load(path)


@pytest.mark.parametrize("name", ["cnn", "extractor", "mlp"])
def test_a_device_that_holds_no_data_is_refused_at_load(fitted, tmp_path, name):
    # torch's meta device: a loaded extractor moved the backbone that every
    # extractor of that model shares in the process there, and broke them all.
    estimator, X = fitted[name]
    path = save_changed(estimator, tmp_path / "meta.safetensors",
                        lambda d: d["params"].update(device="meta"))
    with pytest.raises(ValueError, match="device='meta'"):
        sktransfer.load(path)
    assert_same_outputs(sktransfer.load(save_changed(
        estimator, tmp_path / "cpu.safetensors", lambda d: None)), estimator, X)


def _write_pngs(folder, images):
    from PIL import Image

    folder.mkdir()
    paths = [str(folder / f"{i}.png") for i in range(len(images))]
    for path, pixels in zip(paths, images):
        Image.fromarray(pixels).save(path)
    return paths


def test_a_loaded_model_forks_no_worker_process(fitted, tmp_path):
    """A file does not choose the caller's resources: num_workers is 0 once loaded."""
    estimator, X = fitted["cnn"]
    path = save_changed(estimator, tmp_path / "m.safetensors",
                         lambda d: d["params"].update(num_workers=8))
    loaded = sktransfer.load(path)
    assert loaded.num_workers == 0
    paths = _write_pngs(tmp_path / "images", X[:4])
    workers = []
    real = torch.utils.data.DataLoader.__init__

    def recording(self, *args, **kwargs):
        workers.append(kwargs.get("num_workers", 0))
        real(self, *args, **kwargs)

    with mock.patch.object(torch.utils.data.DataLoader, "__init__", recording):
        predicted = loaded.predict(paths)
    assert workers and set(workers) == {0}
    np.testing.assert_array_equal(predicted, estimator.predict(paths))


def _outside_models(folder):
    return {"hf-hub": "timm:hf-hub:evil/repo", "local-dir": f"timm:local-dir:{folder}",
            "repo-path": "timm:evil/repo"}


@pytest.mark.parametrize("name", ["cnn", "extractor"])
@pytest.mark.parametrize("source", ["hf-hub", "local-dir", "repo-path"])
def test_a_backbone_from_outside_the_file_is_refused_without_io(fitted, tmp_path, name,
                                                               source):
    """Neither load nor a predict after it reaches the Hub or a folder (an
    extractor with named weights builds its backbone at its first transform)."""
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "config.json").write_text('{"architecture": "resnet18"}')
    estimator, X = fitted[name]
    model = _outside_models(folder)[source]
    path = save_changed(estimator, tmp_path / "m.safetensors",
                         lambda d: d["params"].update(model=model))
    with no_io_outside(folder), pytest.raises(ValueError, match="outside the safe file"):
        outputs(sktransfer.load(path), X)


@pytest.mark.parametrize("estimator, match", [
    (extractor(model="timm:hf-hub:evil/repo"), "outside the safe file"),
    (extractor(model="timm:local-dir:/models/vit"), "outside the safe file"),
    (mlp(image_size=4096), "image_size=4096 is larger than the 2048 pixels"),
], ids=["hf-hub", "local-dir", "image_size"])
def test_save_refuses_what_load_would_refuse(estimator, match):
    with pytest.raises(ValueError, match=f"cannot save.*{match}.*joblib.dump"):
        sktransfer.save(estimator, io.BytesIO())


@pytest.mark.parametrize("model", ["simple_cnn", "efficientnet_lite0", "resnet18",
                                   "timm:resnet18", "timm:vit_small_patch14_dinov2.lvd142m"])
def test_backbones_the_package_builds_are_kept(model):
    assert safe_round_trip(extractor(model=model)).model == model


def test_torch_compile_options_are_refused_at_save_and_at_load(tmp_path):
    """torch.compile's options name programs and folders (``cpp.cxx``,
    ``trace.debug_dir``): a file that sets them could make ``predict`` run a
    program of its author's choosing."""
    from safe_files import rewrite

    from sktransfer import FineTuneClassifier

    X = np.random.default_rng(0).normal(size=(20, 4))
    clf = FineTuneClassifier(model=None, epochs=1, device="cpu").fit(X, np.arange(20) % 2)
    options = {"options": {"cpp.cxx": [str(tmp_path / "fake-compiler")]}}
    with pytest.raises(ValueError, match="torch.compile options beyond mode"):
        sktransfer.save(clf.set_params(compile=options), tmp_path / "refused.sktransfer")
    path = tmp_path / "crafted.sktransfer"
    sktransfer.save(clf.set_params(compile=False), path)
    from sktransfer.persistence._codec import encode

    rewrite(path, lambda document: document["params"].update(compile=encode(options)))
    with pytest.raises(ValueError, match="torch.compile options beyond mode"):
        sktransfer.load(path)
    clf.set_params(compile=True)
    sktransfer.save(clf, tmp_path / "kept.sktransfer")
    assert sktransfer.load(tmp_path / "kept.sktransfer").compile is True

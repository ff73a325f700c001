"""One estimator's record (``persistence/_records.py``): what is stored and
rebuilt, what is refused at save, and what a loaded file may not set."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

import sktransfer
from sktransfer import FineTuneClassifier

from safe_files import cnn, domain_adapt, extractor, mlp, rewrite, safe_round_trip


def test_named_weights_are_not_stored_but_checked_on_use(fitted, tmp_path):
    estimator, X = fitted["extractor"]  # weights=None, random_state=0: rebuildable
    sktransfer.save(estimator, tmp_path / "a.safetensors")
    sktransfer.save(fitted["extractor_unseeded"][0], tmp_path / "b.safetensors")
    assert (tmp_path / "a.safetensors").stat().st_size < 10_000
    assert (tmp_path / "b.safetensors").stat().st_size > 50_000
    loaded = sktransfer.load(tmp_path / "a.safetensors")
    loaded._seed_ = 1  # as if other weights were installed under the same name
    with pytest.raises(RuntimeError, match="differ from those this extractor was fitted"):
        loaded.transform(X)


@pytest.mark.parametrize("estimator", [cnn(), mlp(), domain_adapt(), extractor()],
                         ids=lambda e: type(e).__name__)
def test_unfitted_estimator_round_trips_its_parameters(estimator):
    loaded = safe_round_trip(estimator)
    assert type(loaded) is type(estimator)
    assert loaded.get_params() == estimator.get_params()
    assert vars(loaded) == vars(estimator)


def test_set_output_config_is_kept(fitted):
    pd = pytest.importorskip("pandas")
    estimator, X = fitted["extractor"]
    pandas_extractor = extractor().fit(X).set_output(transform="pandas")
    frame = safe_round_trip(pandas_extractor).transform(X)
    assert isinstance(frame, pd.DataFrame)
    np.testing.assert_array_equal(frame.to_numpy(), estimator.transform(X))


class _Loss(nn.Module):
    def forward(self, source, target):
        return (source.mean() - target.mean()) ** 2


@pytest.mark.parametrize("estimator, parameter", [
    (cnn(model=nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1))), "model"),
    (cnn(optimizer=torch.optim.SGD), "optimizer"),
    (cnn(augment=lambda batch: batch.flip(-1)), "augment"),
    (domain_adapt(method=_Loss()), "method"),
    (extractor(model=nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1))), "model"),
], ids=["module", "optimizer-class", "callable-augment", "loss-object", "extractor-module"])
def test_code_in_parameters_is_refused_at_save(estimator, parameter, tmp_path):
    path = tmp_path / "model.safetensors"
    with pytest.raises(ValueError, match=rf"parameter {parameter} .*joblib\.dump"):
        sktransfer.save(estimator, path)
    assert not path.exists()


def test_other_estimators_are_refused_at_save(tmp_path):
    class MyClassifier(FineTuneClassifier):
        pass

    for estimator in (LogisticRegression(), MyClassifier()):
        with pytest.raises(TypeError, match="joblib.dump"):
            sktransfer.save(estimator, tmp_path / "model.safetensors")


@pytest.mark.parametrize("change, match", [
    (lambda d: d.update(estimator="Exploit"), "'Exploit', which is not an estimator"),
    (lambda d: d["params"].update(exec="x"), "has no parameter 'exec'"),
    (lambda d: d["fitted"].update(predict=1), "'predict' is not a fitted attribute"),
    (lambda d: d["fitted"].update(__class__="x"), "'__class__' is not a fitted attribute"),
    (lambda d: d["fitted"].update(n_iter_={"$pickle": "gASV"}), r"unknown value tag '\$pickle'"),
    (lambda d: d["fitted"].update(classes_={"$ndarray": {"dtype": "|V8", "shape": [1],
                                                         "data": [1]}}), r"dtype '\|V8'"),
    (lambda d: d.update(weights="_backbone"), "weights belong to '_backbone'"),
    (lambda d: d["fitted"].update(_estimator_type="regressor"),
     "'_estimator_type' is not a fitted attribute"),
    (lambda d: d["fitted"].update(classes_={"$ndarray": {
        "dtype": "<i8", "shape": [3], "data": [2, 1, 0]}}), "classes_ is not what a fit"),
    (lambda d: d["fitted"].update(classes_={"$ndarray": {
        "dtype": "<i8", "shape": [3], "data": [0, 1, 1]}}), "classes_ is not what a fit"),
    (lambda d: d["fitted"].update(classes_="abc"), "classes_ is not what a fit"),
], ids=["estimator", "parameter", "method-name", "dunder", "tag", "dtype", "weights",
        "class-attribute", "classes-reordered", "classes-repeated", "classes-str"])
def test_unexpected_content_is_refused(saved_mlp, change, match):
    rewrite(saved_mlp, change)
    with pytest.raises(ValueError, match=match):
        sktransfer.load(saved_mlp)


@pytest.mark.parametrize("change", [
    lambda d: d["fitted"].update(mean_="0.5"),
    lambda d: d["fitted"].update(scale_={"$ndarray": {"dtype": "<f8", "shape": [1],
                                                      "data": [0.0]}}),
    lambda d: d["fitted"].update(n_outputs_=2),
], ids=["mean-str", "scale-zero", "n_outputs"])
def test_a_regressors_target_scaling_is_checked_at_load(tmp_path, change):
    """``predict`` undoes ``(y - mean_) / scale_`` as read: a file whose author
    recomputed its checksum must not reach it with other values."""
    from sktransfer import FineTuneRegressor

    X = np.random.default_rng(0).normal(size=(20, 3))
    regressor = FineTuneRegressor(model=None, epochs=1, device="cpu").fit(X, X[:, 0])
    path = tmp_path / "reg.safetensors"
    sktransfer.save(regressor, path)
    sktransfer.load(path)  # as saved
    rewrite(path, change)
    with pytest.raises(ValueError, match="mean_, scale_ and n_outputs_ are not what"):
        sktransfer.load(path)


@pytest.mark.parametrize("change, match", [
    (lambda d: d["params"].update(lr=-1.0), "'lr' parameter"),
    (lambda d: d["params"].update(freeze="ngne"), "'freeze' parameter"),
    (lambda d: d["params"].update(batch_size=0), "'batch_size' parameter"),
    (lambda d: d["params"].update(callbacks=["checkpoint"]), "callbacks=.*set_params"),
], ids=["lr", "freeze", "batch_size", "callbacks"])
def test_parameters_are_validated_at_load(saved_mlp, change, match):
    rewrite(saved_mlp, change)  # checksum recomputed: only validation stops it
    with pytest.raises(ValueError, match=match):
        sktransfer.load(saved_mlp)


def test_dropped_default_callbacks_round_trip(tmp_path):
    """``(name, None)`` drops a default callback (the advice of the CPU warning):
    data, not code, so a safe file holds it and loads it."""
    from sktransfer import FineTuneClassifier

    X = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    y = np.arange(20) % 2
    clf = FineTuneClassifier(model=None, epochs=1, device="cpu", random_state=0,
                             callbacks=[("long_fit_warning", None)]).fit(X, y)
    path = tmp_path / "dropped.safetensors"
    sktransfer.save(clf, path)
    loaded = sktransfer.load(path)
    assert loaded.callbacks == [("long_fit_warning", None)]
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    # a pair with a callback is still refused
    rewrite(path, lambda d: d["params"].update(callbacks=[["long_fit_warning", "x"]]))
    with pytest.raises(ValueError, match="callbacks=.*set_params"):
        sktransfer.load(path)


@pytest.mark.parametrize("encode", [str, lambda p: {"$path": str(p)}], ids=["str", "path"])
def test_a_cache_folder_in_a_safe_file_is_not_used(fitted, tmp_path, encode):
    estimator, X = fitted["extractor"]
    folder = tmp_path / "planted"
    path = tmp_path / "extractor.safetensors"
    sktransfer.save(estimator, path)
    rewrite(path, lambda d: d["params"].update(cache=encode(folder)))
    with pytest.warns(UserWarning, match=r"cache=.*set_params\(cache=") as record:
        loaded = sktransfer.load(path)
    assert record[0].filename == __file__
    assert loaded.cache is None
    np.testing.assert_array_equal(loaded.transform(X), estimator.transform(X))
    assert not folder.exists()
    # an in-memory cache writes nothing to disk: kept
    sktransfer.save(extractor(cache=True).fit(X), path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sktransfer.load(path).cache is True


def test_a_fitted_extractor_without_its_checkpoint_weights_is_refused(fitted, tmp_path):
    """Its first transform would read the checkpoint path that the file names."""
    estimator, _ = fitted["extractor"]  # rebuildable: the file holds no tensors
    path = tmp_path / "extractor.safetensors"
    sktransfer.save(estimator, path)
    rewrite(path, lambda d: d["params"].update(weights={"$path": str(tmp_path / "x.pth")}))
    with pytest.raises(ValueError, match="holds no weights"):
        sktransfer.load(path)

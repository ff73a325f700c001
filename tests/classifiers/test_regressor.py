"""FineTuneRegressor: output shapes and dtypes, the target scaling, the three
losses, multi-output, sample weights, bad targets refused before training,
scikit-learn's meta-estimators, and round trips through joblib and safe files."""

import io

import joblib
import numpy as np
import pytest
import torch
from scipy import sparse
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import make_regression
from sklearn.ensemble import BaggingRegressor
from sklearn.model_selection import GridSearchCV, cross_val_score

import sktransfer
from sktransfer import FineTuneRegressor
from sktransfer.training._criteria import RegressionLoss


def mlp(**params):
    return FineTuneRegressor(**{**dict(model=None, epochs=15, lr=1e-2, batch_size=16,
                                       device="cpu", random_state=0), **params})


@pytest.fixture(scope="module")
def task():
    X, y = make_regression(n_samples=96, n_features=6, noise=0.5, random_state=0)
    return X.astype(np.float32), 40.0 * y + 1000.0  # far from unit scale


@pytest.fixture(scope="module")
def fitted(task):
    X, y = task
    return mlp().fit(X, y)


def test_outputs_have_the_shapes_and_dtypes_of_scikit_learn_regressors(task, fitted):
    X, y = task
    prediction = fitted.predict(X)
    assert prediction.shape == (len(X),) and prediction.dtype == np.float64
    assert fitted.mean_.shape == fitted.scale_.shape == (1,) and fitted.n_outputs_ == 1
    features = fitted.transform(X[:5])
    assert features.shape == (5, 256) and features.dtype == np.float32
    assert fitted.score(X, y) > 0.95  # R²
    two = mlp(epochs=2).fit(X, np.c_[y, -y])
    assert two.predict(X).shape == (len(X), 2) and two.n_outputs_ == 2
    # A column y is one output: (n_samples,) as MLPRegressor returns.
    assert mlp(epochs=2).fit(X, y[:, None]).predict(X).shape == (len(X),)


def test_targets_are_standardised_in_fit_and_the_scaling_undone_exactly(task, fitted):
    X, y = task
    np.testing.assert_allclose(fitted.mean_, [y.mean()])
    np.testing.assert_allclose(fitted.scale_, [y.std()])
    raw = fitted._forward_all(X).astype(np.float64)[:, 0]
    np.testing.assert_array_equal(fitted.predict(X), raw * fitted.scale_[0] + fitted.mean_[0])
    # The network sees the same standardised targets whatever the scale of y.
    small = mlp().fit(X, (y - 1000.0) / 40.0)
    np.testing.assert_allclose(fitted.predict(X), small.predict(X) * 40.0 + 1000.0,
                               rtol=1e-4)


def test_a_constant_target_gets_scale_one():
    X = np.random.default_rng(0).normal(size=(20, 3))
    reg = mlp(epochs=1).fit(X, np.c_[np.full(20, 7.0), np.arange(20.0)])
    assert reg.scale_[0] == 1.0 and reg.mean_[0] == 7.0


def test_the_constant_target_warning_points_at_the_users_line():
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = np.full(20, 5.0)
    with pytest.warns(UserWarning, match="take one value") as record:
        mlp(epochs=1).fit(X, y)
    assert record[0].filename == __file__
    with pytest.warns(UserWarning, match="take one value") as record:
        cross_val_score(mlp(epochs=1), X, y, cv=2)  # through scikit-learn and joblib
    assert {warning.filename for warning in record} == {__file__}


def test_targets_too_large_to_square_are_standardised_and_round_trip(tmp_path):
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = (X @ np.array([1.0, -2.0, 0.5])) * 1e154  # squares overflow float64
    reg = mlp(epochs=1).fit(X, y)
    expected = np.sqrt(np.mean((y / 1e154 - np.mean(y / 1e154)) ** 2)) * 1e154
    assert reg.scale_[0] == pytest.approx(expected, rel=1e-12)
    predictions = reg.predict(X)
    assert np.isfinite(predictions).all()
    path = tmp_path / "large.safetensors"
    sktransfer.save(reg, path)
    np.testing.assert_array_equal(sktransfer.load(path).predict(X), predictions)
    with pytest.raises(ValueError, match="too large to standardise"):
        mlp(epochs=1).fit(X[:3], np.array([1.7e308, 1.7e308, -1.7e308]))


@pytest.mark.parametrize("loss, expected", [
    ("squared_error", lambda e: e ** 2),
    ("absolute_error", np.abs),
    ("huber", lambda e: np.where(np.abs(e) <= 1, 0.5 * e ** 2, np.abs(e) - 0.5)),
])
def test_each_loss_is_the_weighted_mean_of_its_formula(loss, expected):
    rng = np.random.default_rng(0)
    outputs, targets = rng.normal(size=(8, 2)) * 2, rng.normal(size=(8, 2))
    weights = rng.uniform(0, 2, size=8)
    value = RegressionLoss(loss)(torch.tensor(outputs), torch.tensor(targets),
                                 torch.tensor(weights))
    per_sample = expected(outputs - targets).mean(axis=1)
    assert float(value) == pytest.approx((per_sample * weights).sum() / weights.sum(),
                                         rel=1e-5)


def test_r2_of_a_one_row_validation_split_is_nan_as_in_r2_score():
    # One row has no spread: R² is not defined (sklearn's r2_score gives nan),
    # not the 0 or 1 of a constant column.
    scores = RegressionLoss().scores(np.array([[1.5]]), np.array([[2.0]]))
    assert np.isnan(scores["valid_score"]) and scores["valid_loss"] == pytest.approx(0.25)
    X, y = make_regression(n_samples=10, n_features=3, random_state=0)
    reg = mlp(epochs=2, early_stopping=True, validation_fraction=0.1).fit(X.astype(np.float32), y)
    assert all(np.isnan(record["valid_score"]) for record in reg.history_)


@pytest.mark.parametrize("loss", ["squared_error", "absolute_error", "huber"])
def test_each_loss_learns_and_reports_r2_for_early_stopping(task, loss):
    X, y = task
    reg = mlp(loss=loss, early_stopping=True, patience=20).fit(X, y)
    assert reg.score(X, y) > 0.9
    last = reg.history_[-1]
    assert last["valid_score"] > 0.8 and last["valid_loss"] < 1.0


def test_an_outlier_pulls_absolute_error_less_than_squared_error(task):
    X, y = task
    y = y.copy()
    y[:4] += 50 * y.std()
    clean = slice(4, None)
    squared = mlp(loss="squared_error").fit(X, y).score(X[clean], y[clean])
    absolute = mlp(loss="absolute_error").fit(X, y).score(X[clean], y[clean])
    assert absolute > squared


def test_rows_of_weight_zero_are_ignored_by_the_scaling_and_the_loss(task):
    X, y = task
    wild = y.copy()
    wild[::2] = 1e6  # garbage, weighted 0
    weights = np.tile([0.0, 1.0], len(y) // 2)
    reg = mlp().fit(X, wild, sample_weight=weights)
    np.testing.assert_allclose(reg.mean_, [y[1::2].mean()])
    assert reg.score(X[1::2], y[1::2]) > 0.9


@pytest.mark.parametrize("y, message", [
    (np.r_[np.nan, np.ones(19)], "NaN or infinity, the first at row 0"),
    (np.r_[np.ones(5), np.inf, np.ones(14)], "the first at row 5"),
    (np.array(["a"] * 20, dtype=object), "must be numbers"),
    (np.array(["1.5"] * 20), None),  # numeric strings are numbers
    (np.ones((20, 2, 2)), "1-D"),
    (np.ones(19), "same length"),
    (sparse.csr_matrix(np.ones((20, 2))), "sparse y is not supported"),
])
def test_bad_targets_are_refused_before_training(y, message):
    X = np.random.default_rng(0).normal(size=(20, 3))
    reg = mlp(epochs=1)
    if message is None:
        assert reg.fit(X, y).predict(X).shape == (20,)
        return
    with pytest.raises(ValueError, match=message):
        reg.fit(X, y)
    assert not hasattr(reg, "module_")


def test_partial_fit_keeps_the_first_scaling_and_warm_start_continues(task):
    X, y = task
    reg = mlp()
    reg.partial_fit(X[:48], y[:48])
    first = reg.mean_.copy()
    reg.partial_fit(X[48:], y[48:] + 500)
    np.testing.assert_array_equal(reg.mean_, first)
    assert reg.n_iter_ == 2
    warm = mlp(epochs=2, warm_start=True).fit(X, y)
    warm.fit(X, y)
    assert len(warm.history_) == 4
    with pytest.raises(ValueError, match="2 outputs; this estimator was fitted with 1"):
        warm.fit(X, np.c_[y, y])


def test_works_in_scikit_learns_meta_estimators(task):
    X, y = task
    positive = np.exp((y - y.mean()) / y.std())  # linear in X after the log
    wrapped = TransformedTargetRegressor(regressor=mlp(), func=np.log, inverse_func=np.exp)
    assert wrapped.fit(X, positive).predict(X).shape == (len(X),)
    assert wrapped.score(X, positive) > 0.8
    scores = cross_val_score(mlp(epochs=5), X, y, cv=2)
    assert scores.shape == (2,) and np.isfinite(scores).all()
    grid = GridSearchCV(mlp(epochs=5), {"loss": ["squared_error", "huber"]}, cv=2).fit(X, y)
    assert grid.best_params_["loss"] in ("squared_error", "huber")
    bagging = BaggingRegressor(mlp(epochs=5), n_estimators=2, random_state=0).fit(X, y)
    assert bagging.predict(X).shape == (len(X),)


def test_round_trips_through_joblib_and_safe_files(task, fitted, tmp_path):
    X, y = task
    buffer = io.BytesIO()
    joblib.dump(fitted, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(joblib.load(buffer).predict(X), fitted.predict(X))
    sktransfer.save(fitted, tmp_path / "reg.safetensors")
    loaded = sktransfer.load(tmp_path / "reg.safetensors")
    assert isinstance(loaded, FineTuneRegressor)
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))
    np.testing.assert_array_equal(loaded.scale_, fitted.scale_)
    unfitted = clone(fitted)
    sktransfer.save(unfitted, tmp_path / "unfitted.safetensors")
    assert sktransfer.load(tmp_path / "unfitted.safetensors").get_params()["loss"] == "squared_error"


def test_regresses_on_images_with_a_small_cnn(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (32, 16, 16, 3), dtype=np.uint8)
    y = X.mean(axis=(1, 2, 3)) / 255.0
    reg = FineTuneRegressor(model="simple_cnn", weights=None, image_size=16, epochs=2,
                            batch_size=8, device="cpu", random_state=0).fit(X, y)
    prediction = reg.predict(X)
    assert prediction.shape == (32,) and np.isfinite(prediction).all()
    sktransfer.save(reg, tmp_path / "cnn.safetensors")
    np.testing.assert_array_equal(sktransfer.load(tmp_path / "cnn.safetensors").predict(X),
                                  prediction)


def test_parameters_of_class_labels_are_not_regressor_parameters():
    params = FineTuneRegressor().get_params()
    assert "loss" in params
    assert not {"mixup", "label_smoothing", "class_weight"} & set(params)
    with pytest.raises(ValueError, match="loss"):
        mlp(loss="hinge").fit(np.ones((4, 2)), np.arange(4.0))


def test_regresses_on_text_with_a_tiny_transformer(tmp_path):
    pytest.importorskip("transformers", reason="text backbones need transformers")
    from text_models import sentiment_texts, write_tiny_bert

    model = "hf:" + str(write_tiny_bert(tmp_path / "tiny_bert"))
    texts, labels = sentiment_texts(32)
    y = np.where(labels == 1, 4.5, 1.5)  # a rating
    reg = FineTuneRegressor(model=model, epochs=6, batch_size=8, lr=3e-3,
                            backbone_lr_ratio=1.0, device="cpu", random_state=0)
    reg.fit(texts, y)
    prediction = reg.predict(texts)
    assert prediction.shape == (32,) and reg.score(texts, y) > 0.5
    with pytest.raises(ValueError, match="augment"):
        clone(reg).set_params(augment="randaugment").fit(texts, y)
    joblib.dump(reg, tmp_path / "reg.joblib")
    np.testing.assert_allclose(joblib.load(tmp_path / "reg.joblib").predict(texts),
                               prediction, atol=1e-5)

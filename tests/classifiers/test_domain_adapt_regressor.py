"""DomainAdaptRegressor: numbers learned on a labeled source domain while the
features adapt to an unlabeled target domain (NaN targets, skada's convention)."""

import numpy as np
import pytest

import sktransfer
from sktransfer import DomainAdaptRegressor


def _task(n=64, seed=0):
    rng = np.random.default_rng(seed)
    X_source = rng.normal(size=(n, 6)).astype(np.float32)
    y_source = X_source @ np.array([1.0, -2.0, 0.5, 0.0, 1.0, 0.3]) + 3.0
    X_target = (X_source * 1.5 + 0.7).astype(np.float32)  # the shifted domain
    X = np.vstack([X_source, X_target])
    y = np.concatenate([y_source, np.full(n, np.nan)])
    return X, y, X_target, y_source


def regressor(**params):
    return DomainAdaptRegressor(**{**dict(model=None, epochs=3, batch_size=16, lr=1e-2,
                                          hidden_layer_sizes=(16,), random_state=0,
                                          device="cpu"), **params})


@pytest.mark.parametrize("method", ["dann", "coral", "mmd"])
def test_adapts_with_each_feature_level_method(method):
    X, y, X_target, _ = _task()
    reg = regressor(method=method).fit(X, y)
    assert (reg.n_source_, reg.n_target_) == (64, 64)
    assert reg.predict(X_target).shape == (64,)
    assert {"supervised_loss", "adaptation_loss"} <= set(reg.history_[-1])
    assert np.isfinite(reg.history_[-1]["adaptation_loss"])


def test_source_only_needs_no_target_and_scores_labeled_rows_only():
    X, y, X_target, y_source = _task()
    reg = regressor(method="source_only").fit(X[:64], y[:64])
    assert reg.n_target_ == 0
    # NaN rows are skipped by score, as unlabeled rows
    mixed = np.concatenate([y_source[:10], np.full(5, np.nan)])
    expected = reg.score(X[:10], y_source[:10])
    assert reg.score(X[:15], mixed) == pytest.approx(expected)


def test_score_refuses_inputs_of_other_lengths():
    X, y, _, y_source = _task()
    reg = regressor(method="coral").fit(X, y)
    for X_, y_, weights in [(X, y_source, None), (X[:64], y, None), (X[:10], y_source, None),
                            (X, y, np.ones(128 + 3)), (X, y, np.ones(5))]:
        with pytest.raises(ValueError, match="inconsistent numbers of samples"):
            reg.score(X_, y_, weights)


@pytest.mark.parametrize("missing", [None, "pd.NA"])
def test_none_and_pandas_na_mark_unlabeled_rows_as_nan_does(missing):
    pd = pytest.importorskip("pandas")
    X, y, _, y_source = _task()
    marker = pd.NA if missing == "pd.NA" else None
    as_object = list(y_source) + [marker] * 64
    expected = regressor(method="coral").fit(X, y).predict(X[:5])
    for y_ in (as_object, pd.Series(as_object, dtype=object)):
        reg = regressor(method="coral").fit(X, y_)
        assert (reg.n_source_, reg.n_target_) == (64, 64)
        np.testing.assert_array_equal(reg.predict(X[:5]), expected)
        assert reg.score(X, y_) == pytest.approx(reg.score(X[:64], y_source))
    with pytest.raises(ValueError, match="must be numbers"):
        regressor(method="coral").fit(X, list(y_source) + ["a"] + [None] * 63)


def test_sample_domain_error_names_nan_as_the_unlabeled_marker():
    X, y, _, _ = _task()
    domain = np.ones(128, int)  # every row a source row, the NaN rows too
    with pytest.raises(ValueError, match=r"sample 64 is unlabeled \(y is NaN\)"):
        regressor(method="coral").fit(X, y, sample_domain=domain)


def test_sample_domain_marks_labeled_target_rows():
    X, y, X_target, y_source = _task()
    y_all = np.concatenate([y_source, y_source])  # target labeled too
    domain = np.r_[np.ones(64, int), -np.ones(64, int)]
    reg = regressor(method="coral").fit(X, y_all, sample_domain=domain)
    assert (reg.n_source_, reg.n_target_) == (128, 64)


def test_multi_output_targets_with_nan_rows():
    X, y, _, y_source = _task()
    Y = np.column_stack([y, 2 * y])
    reg = regressor(method="coral").fit(X, Y)
    assert reg.predict(X[:3]).shape == (3, 2) and reg.n_outputs_ == 2


@pytest.mark.parametrize("y_change, match", [
    (lambda y: np.full_like(y, np.nan), "no labeled sample"),
    (lambda y: np.column_stack([y, np.r_[y[:-1], 1.0]]), "some outputs but not all"),
    (lambda y: np.r_[y[:-1], np.inf], "infinity|NaN"),
    (lambda y: y[:-1], "same length|samples"),
])
def test_bad_targets_are_refused_before_training(y_change, match):
    X, y, _, _ = _task()
    with pytest.raises(ValueError, match=match):
        regressor(method="coral").fit(X, y_change(y))


def test_an_adapting_method_needs_target_rows():
    X, y, _, _ = _task()
    with pytest.raises(ValueError, match="adapts to target samples, but there is none"):
        regressor(method="dann").fit(X[:64], y[:64])


@pytest.mark.parametrize("method", ["self_training", "mcc", "cdan", "unknown"])
def test_methods_built_on_classes_are_refused(method):
    X, y, _, _ = _task()
    with pytest.raises(ValueError, match="method"):
        regressor(method=method).fit(X, y)


@pytest.mark.parametrize("loss", ["MCCLoss", "CDANLoss", "SelfTrainingLoss",
                                  "EpochSelfTrainingLoss", "VADALoss", "DIRTTLoss"])
def test_loss_objects_built_on_classes_are_refused(loss):
    """Given as objects, the methods that read class scores are refused as their
    names are, before the input is read."""
    from sktransfer import adaptation

    reg = regressor(method=getattr(adaptation, loss)())
    with pytest.raises(ValueError, match=f"{loss}.needs_classes is True.*'dann', 'coral'"):
        reg.fit(np.full((4, 6), np.nan), np.full(4, np.nan))  # refused before X is read
    assert not hasattr(reg, "module_")


def test_a_loss_on_features_is_taken_as_it_is():
    from sktransfer.adaptation import AdaptationLoss, CORALLoss, DANNLoss, MMDLoss

    class MeanGap(AdaptationLoss):
        def forward(self, features_source, logits_source, features_target, logits_target):
            return (features_source.mean(0) - features_target.mean(0)).pow(2).sum()

    X, y, _, _ = _task()
    for loss in (MeanGap(), CORALLoss(), DANNLoss(), MMDLoss()):
        assert not loss.needs_classes
        reg = regressor(method=loss).fit(X, y)
        assert reg.history_[-1]["adaptation_loss"] > 0


def test_no_partial_fit():
    assert not hasattr(DomainAdaptRegressor(), "partial_fit")


def test_saves_and_loads_safely(tmp_path):
    X, y, X_target, _ = _task()
    reg = regressor(method="coral").fit(X, y)
    sktransfer.save(reg, tmp_path / "reg.skt")
    loaded = sktransfer.load(tmp_path / "reg.skt")
    np.testing.assert_array_equal(loaded.predict(X_target), reg.predict(X_target))

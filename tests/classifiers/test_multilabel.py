"""Multi-label FineTuneClassifier: a 0/1 indicator matrix as y trains one
sigmoid per label; the outputs' shapes and dtypes, the threshold, per-label
weights, scikit-learn's multilabel metrics, bad matrices refused before
training, and round trips through joblib and safe files."""

import io

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import make_multilabel_classification
from sklearn.metrics import f1_score, hamming_loss
from sklearn.preprocessing import MultiLabelBinarizer

import sktransfer
from sktransfer import FineTuneClassifier
from sktransfer.classifiers._targets import MultiLabel
from sktransfer.training._criteria import BinaryCrossEntropy


def mlp(**params):
    return FineTuneClassifier(**{**dict(model=None, epochs=20, lr=1e-2, batch_size=16,
                                        device="cpu", random_state=0), **params})


@pytest.fixture(scope="module")
def task():
    X, Y = make_multilabel_classification(n_samples=120, n_features=8, n_classes=4,
                                          n_labels=2, random_state=0)
    return X.astype(np.float32), Y


@pytest.fixture(scope="module")
def fitted(task):
    X, Y = task
    return mlp().fit(X, Y)


def test_outputs_have_the_shapes_and_dtypes_of_mlpclassifier(task, fitted):
    X, Y = task
    assert fitted.multilabel_ and list(fitted.classes_) == [0, 1, 2, 3]
    predicted = fitted.predict(X)
    assert predicted.shape == Y.shape and predicted.dtype == np.int64
    assert set(np.unique(predicted)) <= {0, 1}
    proba = fitted.predict_proba(X)
    assert proba.shape == Y.shape and proba.dtype == np.float64
    assert ((proba > 0) & (proba < 1)).all()
    np.testing.assert_allclose(np.exp(fitted.predict_log_proba(X)), proba, rtol=1e-9)
    decision = fitted.decision_function(X)
    assert decision.shape == Y.shape
    np.testing.assert_array_equal(decision > 0, predicted == 1)


def test_scikit_learns_multilabel_metrics_work_on_the_output(task, fitted):
    X, Y = task
    predicted = fitted.predict(X)
    assert f1_score(Y, predicted, average="samples", zero_division=1.0) > 0.7
    assert hamming_loss(Y, predicted) < 0.2
    assert 0 < fitted.score(X, Y) <= 1  # subset accuracy


def test_the_threshold_decides_predict_without_a_refit(task, fitted):
    X, _ = task
    proba = fitted.predict_proba(X)
    for threshold in (0.2, 0.5, 0.8):
        fitted.set_params(threshold=threshold)
        np.testing.assert_array_equal(fitted.predict(X), (proba > threshold).astype(int))
    fitted.set_params(threshold=0.5)
    low = mlp(threshold=0.1).fit(*task).predict(X).sum()
    high = mlp(threshold=0.9).fit(*task).predict(X).sum()
    assert low > high


def test_binary_cross_entropy_is_weighted_per_sample_or_per_label():
    rng = np.random.default_rng(0)
    logits = torch.tensor(rng.normal(size=(6, 3)))
    targets = torch.tensor(rng.integers(0, 2, (6, 3)), dtype=torch.float32)
    per_element = F.binary_cross_entropy_with_logits(logits.float(), targets,
                                                     reduction="none")
    weights = torch.tensor(rng.uniform(0, 2, size=(6, 3)), dtype=torch.float32)
    criterion = BinaryCrossEntropy()
    torch.testing.assert_close(criterion(logits, targets, weights),
                               (per_element * weights).sum() / weights.sum())
    rows = torch.tensor([1.0, 0, 1, 1, 0, 2])
    torch.testing.assert_close(criterion(logits, targets, rows),
                               (per_element * rows[:, None]).sum() / (3 * rows.sum()))


def test_balanced_label_weights_count_samples_by_their_weight():
    Y = np.array([[1, 0], [1, 0], [0, 0], [0, 1], [0, 1]], dtype=np.float32)
    weights = np.array([0.0, 2.0, 1.0, 1.0, 0.0])
    got = MultiLabel(2, class_weight="balanced").sample_weights(Y, weights)
    repeated = np.repeat(Y, weights.astype(int), axis=0)  # [1,0] twice, [0,0], [0,1]
    expected = MultiLabel(2, class_weight="balanced").sample_weights(
        repeated, np.ones(len(repeated)))
    np.testing.assert_allclose(got[[1, 2, 3]], expected[[0, 2, 3]] * weights[[1, 2, 3], None])
    np.testing.assert_array_equal(got[[0, 4]], 0.0)


def test_balanced_and_listed_class_weights_weigh_each_label():
    Y = np.array([[1, 0], [0, 0], [0, 1], [0, 1]], dtype=np.float32)
    balanced = MultiLabel(2, class_weight="balanced").sample_weights(Y, np.ones(4))
    # Label 0: 1 of 4 samples has it (weight 4/2), 3 do not (weight 4/6).
    np.testing.assert_allclose(balanced[:, 0], [2.0, 2 / 3, 2 / 3, 2 / 3])
    np.testing.assert_allclose(balanced[:, 1], [1.0, 1.0, 1.0, 1.0])
    listed = MultiLabel(2, class_weight=[{1: 5.0}, {0: 0.5}]).sample_weights(
        Y, np.array([1.0, 1.0, 1.0, 2.0]))
    np.testing.assert_allclose(listed, [[5, 0.5], [1, 0.5], [1, 1], [2, 2]])


def test_class_weight_on_a_rare_label_raises_its_recall(task):
    X, Y = task
    rare = Y.copy()
    rare[np.flatnonzero(rare[:, 0])[8:], 0] = 0  # label 0 on 8 samples only
    plain = mlp().fit(X, rare).predict(X)[:, 0]
    weighted = mlp(class_weight=[{1: 10.0}, {}, {}, {}]).fit(X, rare).predict(X)[:, 0]
    assert weighted[rare[:, 0] == 1].sum() >= plain[rare[:, 0] == 1].sum()
    assert weighted.sum() > plain.sum()
    balanced = mlp(class_weight="balanced", epochs=2).fit(X, rare)
    assert balanced.predict(X).shape == rare.shape


@pytest.mark.parametrize("class_weight, message", [
    ({0: 2.0}, "one dict per label"),
    ([{1: 2.0}], "one dict per label"),
    ([{2: 1.0}, {}, {}, {}], "keys other than 0 and 1"),
])
def test_class_weights_that_do_not_fit_the_labels_are_refused(task, class_weight, message):
    X, Y = task
    clf = mlp(class_weight=class_weight)
    with pytest.raises(ValueError, match=message):
        clf.fit(X, Y)
    assert not hasattr(clf, "module_")


def test_a_label_list_for_one_label_per_sample_is_refused(task):
    X, Y = task
    with pytest.raises(ValueError, match="multi-label"):
        mlp(class_weight=[{1: 2.0}]).fit(X, Y[:, 0])


@pytest.mark.parametrize("as_lists", [
    lambda Y: [np.flatnonzero(row).tolist() for row in Y],  # rows of different lengths
    lambda Y: [tuple(np.flatnonzero(row)[:1]) for row in Y],  # one label each, as tuples
    lambda Y: pd.Series([list(np.flatnonzero(row)) for row in Y]),
])
def test_label_lists_per_sample_are_refused_with_the_binarizer_named(task, as_lists):
    X, Y = task
    clf = mlp(epochs=1)
    with pytest.raises(ValueError, match="list of lists.*MultiLabelBinarizer"):
        clf.fit(X, as_lists(Y))
    assert not hasattr(clf, "module_")


@pytest.mark.parametrize("change, message", [
    (lambda Y: Y.astype(float) + np.r_[np.nan, np.zeros(Y.size - 1)].reshape(Y.shape),
     "NaN or infinity, the first at row 0"),
    (lambda Y: np.where(np.arange(Y.size).reshape(Y.shape) == 5, np.inf, Y),
     "NaN or infinity, the first at row 1"),
    (lambda Y: Y * 2, r"hold 0 and 1 only; y\[\d+, \d+\] is 2"),
    (lambda Y: np.where(Y == 1, "a", "b"), "MultiLabelBinarizer"),
    (lambda Y: np.c_[Y, np.zeros(len(Y), dtype=int)], "label column 4 of y is all 0"),
    (lambda Y: np.c_[np.ones(len(Y), dtype=int), Y], "label column 0 of y is all 1"),
])
def test_bad_indicator_matrices_are_refused_before_training(task, change, message):
    X, Y = task
    clf = mlp(epochs=1)
    with pytest.raises(ValueError, match=message):
        clf.fit(X, change(Y))
    assert not hasattr(clf, "module_")


def test_pandas_nullable_indicator_columns_are_read_as_numbers(task, fitted):
    """A DataFrame of Int64 or boolean columns (0/1, no NA) was refused as
    "dtype object"; with an NA, the reason is the NaN."""
    X, Y = task
    frame = pd.DataFrame(Y, columns=["a", "b", "c", "d"]).astype("Int64")
    np.testing.assert_array_equal(mlp().fit(X, frame).predict_proba(X),
                                  fitted.predict_proba(X))
    mlp(epochs=1).fit(X, frame.astype("boolean"))
    missing = frame.astype("boolean")
    missing.iloc[3, 1] = pd.NA
    with pytest.raises(ValueError, match="NaN or infinity, the first at row 3"):
        mlp(epochs=1).fit(X, missing)
    with pytest.raises(ValueError, match="MultiLabelBinarizer"):
        mlp(epochs=1).fit(X, frame.astype("string"))


def test_partial_fit_takes_batches_without_some_labels(task):
    X, Y = task
    clf = mlp()
    first = Y[:10].copy()
    first[:, 3] = 0  # a batch may lack a label
    clf.partial_fit(X[:10], first)
    clf.partial_fit(X[10:], Y[10:])
    assert clf.predict(X).shape == Y.shape and clf.n_iter_ == 2
    with pytest.raises(ValueError, match="one label per sample"):
        clf.partial_fit(X, Y[:, 0])


def test_mixup_is_refused_for_multi_label(task):
    X, Y = task
    with pytest.raises(ValueError, match="mixup"):
        mlp(mixup="mixup").fit(X, Y)


def test_multilabelbinarizer_output_and_early_stopping(task):
    X, _ = task
    tags = [["cat"], ["dog", "cat"], ["bird"], ["dog"]] * 30
    Y = MultiLabelBinarizer().fit_transform(tags)
    clf = mlp(early_stopping=True, patience=2).fit(X, Y)
    record = clf.history_[-1]
    assert 0 <= record["valid_score"] <= 1 and record["valid_loss"] > 0


def test_round_trips_through_joblib_and_safe_files(task, fitted, tmp_path):
    X, _ = task
    buffer = io.BytesIO()
    joblib.dump(fitted, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    sktransfer.save(fitted, tmp_path / "multi.safetensors")
    loaded = sktransfer.load(tmp_path / "multi.safetensors")
    assert loaded.multilabel_
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))


def test_multi_label_on_images_with_a_small_cnn():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (32, 16, 16, 3), dtype=np.uint8)
    Y = np.c_[np.arange(32) % 2, (np.arange(32) // 2) % 2]
    X[Y[:, 0] == 1, :8] //= 3
    clf = FineTuneClassifier(model="simple_cnn", weights=None, image_size=16, epochs=2,
                             batch_size=8, device="cpu", random_state=0).fit(X, Y)
    assert clf.predict(X).shape == (32, 2) and clf.predict_proba(X).shape == (32, 2)


def test_a_refused_multilabel_fit_leaves_the_fitted_estimator_as_it_was():
    from sklearn.datasets import make_classification, make_multilabel_classification

    X, y = make_classification(n_samples=60, n_features=6, n_informative=4,
                               n_classes=3, random_state=0)
    clf = FineTuneClassifier(model=None, epochs=1, device="cpu", random_state=0).fit(X, y)
    before = clf.predict_proba(X)
    _, Y = make_multilabel_classification(n_samples=60, n_features=6, n_classes=3,
                                          random_state=0)
    with pytest.raises(ValueError, match="class_weight"):
        clf.set_params(class_weight={0: 1.0, 1: 2.0}).fit(X, Y)
    assert list(clf.classes_) == [0, 1, 2] and not clf.multilabel_
    np.testing.assert_array_equal(clf.predict_proba(X), before)


@pytest.mark.parametrize("threshold", [0.0, 1.0, -0.2, "half"])
def test_a_bad_threshold_is_refused(task, threshold):
    with pytest.raises(ValueError, match="threshold"):
        FineTuneClassifier(model=None, epochs=1, device="cpu",
                           threshold=threshold).fit(*task)

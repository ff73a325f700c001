"""``head_init``: a linear probe fits the new head before fine-tuning (LP-FT)."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LogisticRegression

from sktransfer import (
    DomainAdaptClassifier,
    DomainAdaptRegressor,
    FineTuneClassifier,
    FineTuneRegressor,
)
from sktransfer.classifiers._text_defaults import auto_head_init
from sktransfer.training._criteria import BinaryCrossEntropy, CrossEntropy, RegressionLoss
from sktransfer.training._probe import PROBE_C, fit_head

from text_models import sentiment_texts, write_tiny_bert

# lr so small that one epoch leaves the weights where the fit starts them
FROZEN = dict(lr=1e-12, epochs=1, device="cpu", random_state=0, hidden_layer_sizes=(16,))


def _three_classes():
    return make_classification(n_samples=120, n_features=8, n_informative=5, n_classes=3,
                               random_state=0)


def test_fit_head_is_scikit_learns_logistic_regression():
    X, y = _three_classes()
    head = torch.nn.Linear(8, 3)
    fit_head(head, X, y, np.ones(len(y)), CrossEntropy(), C=0.5)
    reference = LogisticRegression(C=0.5, max_iter=10_000, tol=1e-10).fit(X, y)
    np.testing.assert_allclose(head.weight.detach().numpy(), reference.coef_, atol=2e-3)
    np.testing.assert_allclose(head.bias.detach().numpy(), reference.intercept_, atol=2e-3)


def test_fit_head_weighs_samples_as_the_criterion_does():
    # weight 0 removes a sample; weight 2 counts it twice
    X, y = _three_classes()
    weights = np.r_[np.zeros(20), 2 * np.ones(20), np.ones(80)]
    weighted = fit_head(torch.nn.Linear(8, 3), X, y, weights, CrossEntropy())
    rows = np.r_[np.arange(20, 40), np.arange(20, 120)]
    repeated = fit_head(torch.nn.Linear(8, 3), X[rows], y[rows], np.ones(len(rows)),
                        CrossEntropy())
    np.testing.assert_allclose(weighted.weight.detach().numpy(),
                               repeated.weight.detach().numpy(), atol=1e-3)


def test_fit_head_with_a_regression_loss_is_ridge():
    from sklearn.linear_model import Ridge

    X, y = make_regression(n_samples=80, n_features=6, noise=5.0, random_state=0)
    y = (y - y.mean()) / y.std()
    head = fit_head(torch.nn.Linear(6, 1), X, y[:, None], np.ones(len(y)),
                    RegressionLoss("squared_error"), C=1.0)
    # mean squared error + ||w||^2 / (2 C n), times n: Ridge with alpha = 1 / (2 C)
    reference = Ridge(alpha=0.5).fit(X, y)
    np.testing.assert_allclose(head.weight.detach().numpy()[0], reference.coef_, atol=1e-3)


def test_the_probe_fits_the_head_on_the_backbones_features():
    X, y = _three_classes()
    clf = FineTuneClassifier(model=None, head_init="linear_probe", **FROZEN).fit(X, y)
    features = clf.transform(X)  # the MLP's (untrained) features
    reference = LogisticRegression(C=PROBE_C, max_iter=10_000, tol=1e-10).fit(features, y)
    np.testing.assert_allclose(clf.module_.head.weight.detach().numpy(), reference.coef_,
                               atol=2e-3)
    np.testing.assert_array_equal(clf.predict(X), reference.predict(features))
    # a random head predicts far worse at the same (untrained) features
    random_head = FineTuneClassifier(model=None, head_init="random", **FROZEN).fit(X, y)
    assert clf.score(X, y) > random_head.score(X, y) + 0.2


def test_the_probe_leaves_out_the_validation_rows():
    X, y = _three_classes()
    clf = FineTuneClassifier(model=None, head_init="linear_probe", early_stopping=True,
                             validation_fraction=0.25, **FROZEN).fit(X, y)
    train, valid = clf._split(y, clf._seed(), np.arange(len(y)))  # the fit's own split
    assert len(valid) == 30
    on_train = LogisticRegression(C=PROBE_C, max_iter=10_000,
                                  tol=1e-10).fit(clf.transform(X[train]), y[train])
    np.testing.assert_allclose(clf.module_.head.weight.detach().numpy(), on_train.coef_,
                               atol=2e-3)


def test_a_class_without_rows_keeps_its_initial_head():
    # Its unpenalised bias would run to minus infinity: a partial_fit whose
    # first batch lacks a class could then never predict it.
    X, y = _three_classes()
    head = torch.nn.Linear(8, 3)
    before = head.weight.detach().clone(), head.bias.detach().clone()
    fit_head(head, X[y != 2], y[y != 2], np.ones(int((y != 2).sum())), CrossEntropy())
    torch.testing.assert_close(head.weight[2].detach(), before[0][2])
    torch.testing.assert_close(head.bias[2].detach(), before[1][2])
    # the two classes seen: their logits' difference is the binary logistic
    # regression at twice C (as in the text test below)
    reference = LogisticRegression(C=2 * PROBE_C, max_iter=10_000,
                                   tol=1e-10).fit(X[y != 2], y[y != 2])
    weight = head.weight.detach().numpy()
    np.testing.assert_allclose(weight[1] - weight[0], reference.coef_[0], atol=2e-3)
    # through partial_fit, and later batches teach the class
    clf = FineTuneClassifier(model=None, head_init="linear_probe", lr=1e-2, device="cpu",
                             random_state=0, hidden_layer_sizes=(16,))
    clf.partial_fit(X[y != 2], y[y != 2], classes=[0, 1, 2])
    assert abs(float(clf.module_.head.bias[2].detach())) < 1.0
    for _ in range(10):
        clf.partial_fit(X, y)
    assert (clf.predict(X[y == 2]) == 2).mean() > 0.5


def test_each_label_is_a_logistic_regression_at_C():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 6))
    Y = (X @ rng.normal(size=(6, 5)) + rng.normal(size=(150, 5)) > 0).astype(np.float32)
    Y[:, 4] = 0  # a label no row has: its head row is left alone
    head = torch.nn.Linear(6, 5)
    before = head.weight[4].detach().clone()
    fit_head(head, X, Y, np.ones(150), BinaryCrossEntropy(), C=0.1)
    for label in range(4):
        reference = LogisticRegression(C=0.1, max_iter=10_000, tol=1e-10).fit(X, Y[:, label])
        np.testing.assert_allclose(head.weight[label].detach().numpy(), reference.coef_[0],
                                   atol=2e-3)
    torch.testing.assert_close(head.weight[4].detach(), before)


def test_each_regression_target_is_a_ridge():
    from sklearn.linear_model import Ridge

    X, Y = make_regression(n_samples=80, n_features=6, n_targets=3, noise=5.0,
                           random_state=0)
    Y = (Y - Y.mean(0)) / Y.std(0)
    head = fit_head(torch.nn.Linear(6, 3), X, Y, np.ones(len(Y)),
                    RegressionLoss("squared_error"), C=1.0)
    reference = Ridge(alpha=0.5).fit(X, Y)
    np.testing.assert_allclose(head.weight.detach().numpy(), reference.coef_, atol=1e-3)


def test_a_resumed_fit_is_the_same_fit_whatever_head_the_probe_gives(tmp_path, monkeypatch):
    # The probe's head depends on the device's arithmetic; the fit's
    # fingerprint hashes the head from before it, so a fit checkpointed on one
    # device resumes on another.
    import sktransfer.classifiers._base as base
    from sktransfer.training import Checkpoint

    from tiny_fits import InterruptAt

    X, y = _three_classes()
    common = dict(model=None, head_init="linear_probe", epochs=3, device="cpu",
                  random_state=0, hidden_layer_sizes=(16,))
    interrupted = FineTuneClassifier(
        callbacks=[Checkpoint(tmp_path), InterruptAt(epoch=1)], **common).fit(X, y)
    assert interrupted.interrupted_
    probe = base.linear_probe

    def another_device(net, *args, **kwargs):
        probe(net, *args, **kwargs)
        with torch.no_grad():
            net.head.weight.add_(1e-4)

    monkeypatch.setattr(base, "linear_probe", another_device)
    resumed = FineTuneClassifier(callbacks=[Checkpoint(tmp_path)], **common).fit(X, y)
    assert [r["epoch"] for r in resumed.history_] == [1, 2, 3]


def test_a_continued_fit_keeps_its_head():
    X, y = _three_classes()
    clf = FineTuneClassifier(model=None, head_init="random", **FROZEN).fit(X, y)
    before = clf.module_.head.weight.detach().clone()
    clf.set_params(warm_start=True, head_init="linear_probe").fit(X, y)
    torch.testing.assert_close(clf.module_.head.weight.detach(), before)


@pytest.mark.parametrize("estimator, make", [
    (FineTuneRegressor, lambda: make_regression(n_samples=60, n_features=5, random_state=0)),
    (DomainAdaptClassifier, _three_classes),
    (DomainAdaptRegressor, lambda: make_regression(n_samples=60, n_features=5, random_state=0)),
])
def test_every_estimator_probes_through_the_shared_core(estimator, make):
    X, y = make()
    extra = {"method": "source_only"} if estimator.__name__.startswith("Domain") else {}
    fitted = {init: estimator(model=None, head_init=init, **extra, **FROZEN).fit(X, y)
              for init in ("random", "linear_probe")}
    assert fitted["linear_probe"].score(X, y) > fitted["random"].score(X, y)


def test_auto_rule():
    assert auto_head_init("text", pretrained=True) == "linear_probe"
    assert auto_head_init("text", pretrained=False) == "random"
    assert auto_head_init("image", pretrained=True) == "random"
    with pytest.raises(ValueError, match="modality='audio'"):
        auto_head_init("audio", pretrained=True)
    # resolved from model and weights alone, nothing loaded
    assert FineTuneClassifier(model="all-MiniLM-L6-v2")._head_init() == "linear_probe"
    assert FineTuneClassifier(model="all-MiniLM-L6-v2", weights=None)._head_init() == "random"
    assert FineTuneClassifier(model="efficientnet_lite0")._head_init() == "random"
    assert FineTuneClassifier(model=None)._head_init() == "random"
    assert FineTuneClassifier(model="all-MiniLM-L6-v2",
                              head_init="random")._head_init() == "random"


def test_auto_probes_a_pretrained_text_backbone(tmp_path):
    folder = "hf:" + str(write_tiny_bert(tmp_path / "bert"))
    texts, labels = sentiment_texts(n=32)
    common = dict(model=folder, epochs=1, lr=1e-12, batch_size=16, random_state=0,
                  device="cpu")
    auto = FineTuneClassifier(**common).fit(texts, labels)
    assert FineTuneClassifier(**common)._head_init() == "linear_probe"
    features = auto.transform(texts)
    # Two logits under softmax with the penalty on both rows: their difference
    # is the binary logistic regression's vector at twice C.
    reference = LogisticRegression(C=2 * PROBE_C, max_iter=10_000,
                                   tol=1e-10).fit(features, labels)
    weight = auto.module_.head.weight.detach().numpy()
    np.testing.assert_allclose(weight[1] - weight[0], reference.coef_[0], atol=2e-3)
    np.testing.assert_array_equal(auto.predict(texts), reference.predict(features))


@pytest.mark.parametrize("value", ["zeros", 1, None])
def test_bad_head_init_is_refused_naming_it(value):
    X, y = _three_classes()
    with pytest.raises(ValueError, match="head_init"):
        FineTuneClassifier(model=None, head_init=value, **FROZEN).fit(X, y)


def test_an_adapting_fit_probes_on_the_labeled_source_rows_only():
    X, y = _three_classes()
    y = y.copy()
    y[60:] = -1  # target rows: no label, so no part in the probe
    clf = DomainAdaptClassifier(model=None, method="coral", head_init="linear_probe",
                                **FROZEN).fit(X, y)
    features = clf.transform(X[:60])
    reference = LogisticRegression(C=PROBE_C, max_iter=10_000,
                                   tol=1e-10).fit(features, y[:60])
    np.testing.assert_allclose(clf.module_.head.weight.detach().numpy(), reference.coef_,
                               atol=2e-3)

"""FineTuneClassifier and the training core it shares."""

import pickle

import joblib
import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor
from sktransfer.training._freeze import BATCH_NORMS


def images_task(n_per_class=16, size=32, seed=0):
    """Two classes of small images that differ in brightness and texture."""
    rng = np.random.default_rng(seed)
    dark = rng.integers(0, 100, size=(n_per_class, size, size, 3), dtype=np.uint8)
    light = rng.integers(120, 256, size=(n_per_class, size, size, 3), dtype=np.uint8)
    X = np.concatenate([dark, light])
    y = np.array(["cat"] * n_per_class + ["dog"] * n_per_class)
    return X, y


def cnn(**params):
    defaults = dict(model="simple_cnn", weights=None, epochs=3, batch_size=8, lr=1e-2,
                    device="cpu", random_state=0)
    defaults.update(params)
    return FineTuneClassifier(**defaults)


def mlp(**params):
    defaults = dict(model=None, epochs=10, lr=3e-2, device="cpu", random_state=0)
    defaults.update(params)
    return FineTuneClassifier(**defaults)


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=120, centers=3, random_state=0)
    return StandardScaler().fit_transform(X), y


def test_learns_images_with_string_labels():
    X, y = images_task()
    clf = cnn(epochs=4).fit(X, y)
    assert clf.score(X, y) >= 0.9
    assert list(clf.classes_) == ["cat", "dog"]
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba, rtol=1e-6)
    assert clf.decision_function(X).shape == (len(X),)
    assert [set(r) for r in clf.history_][0] == {
        "epoch", "train_loss", "valid_loss", "valid_score", "lr", "duration"}
    assert clf.n_iter_ == 4 and clf.interrupted_ is False


@pytest.mark.parametrize("labels", [np.array([3, 7, 11]), np.array([True, False, True])])
def test_label_types(blobs, labels):
    X, y = blobs
    if labels.dtype == bool:
        X, y = X[y < 2], y[y < 2]
        mapped = labels[:2][y]
    else:
        mapped = labels[y]
    clf = mlp().fit(X, mapped)
    assert set(clf.predict(X)) <= set(labels.tolist())
    assert clf.score(X, mapped) > 0.8


def test_reproducible_on_cpu(blobs):
    X, y = blobs
    a = mlp().fit(X, y).predict_proba(X)
    b = mlp().fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    c = mlp(random_state=1).fit(X, y).predict_proba(X)
    assert not np.allclose(a, c)


def test_transform_returns_finetuned_features(blobs):
    X, y = blobs
    clf = mlp(hidden_layer_sizes=(16,)).fit(X, y)
    features = clf.transform(X)
    assert features.shape == (len(X), 16) and features.dtype == np.float32
    assert clf.get_feature_names_out()[0] == "finetuneclassifier0"


def test_batch_size_invariance_of_predictions(blobs):
    X, y = blobs
    clf = mlp().fit(X, y)
    small = clf.set_params(batch_size=7).predict_proba(X)
    large = clf.set_params(batch_size=120).predict_proba(X)
    np.testing.assert_allclose(small, large, rtol=1e-5, atol=1e-6)


def test_freeze_backbone_trains_head_only_and_keeps_bn_stats():
    X, y = images_task()
    clf = cnn(freeze="backbone", epochs=2)
    clf.fit(X, y)
    # Compare with the untouched random backbone of the same seed.
    reference = clf._build_network(weights=None, seed=clf._seed())
    for (name, after), before in zip(clf.module_.backbone.state_dict().items(),
                                     reference.backbone.state_dict().values()):
        torch.testing.assert_close(after, before, msg=f"{name} changed")


def test_freeze_last_k_stages():
    from sktransfer.training import stages
    from sktransfer.training._freeze import set_trainable

    from sktransfer.backbones import load_backbone

    backbone = load_backbone("resnet18", None, random_state=0)
    set_trainable(backbone, 1)
    trainable = {n.split(".")[1] for n, p in backbone.named_parameters() if p.requires_grad}
    assert trainable == {"layer4"}
    assert len(stages(backbone.body)) == 6  # conv1, bn1, layer1..4
    with pytest.raises(ValueError, match="freeze"):
        set_trainable(backbone, "some")


@pytest.mark.parametrize("k", [6, 8, 11, 100])
def test_freeze_at_least_the_stage_count_trains_every_stage(k):
    from sktransfer.backbones import load_backbone
    from sktransfer.training import stages
    from sktransfer.training._freeze import set_trainable

    backbone = load_backbone("resnet18", None, random_state=0)
    assert len(stages(backbone.body)) == 6
    set_trainable(backbone, "backbone")
    set_trainable(backbone, k)  # "the last k stages": all 6 of them
    assert all(p.requires_grad for p in backbone.parameters())


def test_unfreeze_after_trains_head_first(monkeypatch):
    import sktransfer.training._callbacks as base

    X, y = images_task()
    applied = []
    real_set_trainable = base.set_trainable

    def record(backbone, freeze):
        applied.append((len(clf.history_), freeze))
        return real_set_trainable(backbone, freeze)

    monkeypatch.setattr(base, "set_trainable", record)
    clf = cnn(epochs=3, unfreeze_after=2, augment=None)
    clf.fit(X, y)
    assert applied == [(2, None)]  # head only for epochs 1-2, all from epoch 3
    assert len(clf.history_) == 3


def test_unfreeze_after_warmup_trains_batchnorm_not_weights():
    """During the head-only warm-up the BatchNorm layers that will train later keep
    batch statistics and learn their affine parameters (fastai's recipe), so the
    head does not see the features shift at unfreezing; conv weights stay put."""
    import torch.nn as nn

    X, y = images_task()
    clf = cnn(epochs=1, unfreeze_after=1, augment=None)
    clf.fit(X, y)
    reference = clf._build_network(weights=None, seed=clf._seed())
    after = dict(clf.module_.backbone.named_modules())
    changed_norm = 0
    for name, layer in reference.backbone.named_modules():
        for pname, before in layer.named_parameters(recurse=False):
            now = getattr(after[name], pname)
            if isinstance(layer, BATCH_NORMS):
                changed_norm += not torch.equal(now, before)
            else:
                torch.testing.assert_close(now, before, msg=f"{name}.{pname} trained")
    assert changed_norm > 0
    norms = [m for m in after.values() if isinstance(m, BATCH_NORMS)]
    # running statistics were updated by batch statistics during the warm-up
    ref_norms = [m for m in reference.backbone.modules()
                 if isinstance(m, BATCH_NORMS)]
    assert any(not torch.equal(a.running_mean, b.running_mean)
               for a, b in zip(norms, ref_norms))


def test_unfreeze_after_keeps_frozen_parts_batchnorm_in_eval():
    import torch.nn as nn

    from sktransfer.training._freeze import head_warmup

    from sktransfer.backbones import load_backbone

    backbone = load_backbone("resnet18", None, random_state=0)
    head_warmup(backbone, 1)  # later: train layer4 only
    trainable = {n for n, p in backbone.named_parameters() if p.requires_grad}
    assert trainable and all(".layer4." in f".{n}" and ".bn" in n or "downsample.1" in n
                             for n in trainable)
    assert not any(p.requires_grad for n, p in backbone.named_parameters()
                   if "conv" in n)


def test_param_groups_use_backbone_lr_ratio():
    from sktransfer.training._setup import build_optimizer, param_groups

    net = cnn()
    X, y = images_task()
    net.fit(X, y)
    groups = param_groups(net.module_.backbone, net.module_.head, lr=0.1,
                          backbone_lr_ratio=0.01)
    optimizer = build_optimizer("sgd", groups, weight_decay=0.0)
    assert [g["lr"] for g in optimizer.param_groups] == [pytest.approx(0.001), 0.1]


@pytest.mark.parametrize("optimizer", ["adamw", "sgd", torch.optim.RMSprop])
@pytest.mark.parametrize("scheduler", ["onecycle", "cosine", None])
def test_optimizers_and_schedulers(blobs, optimizer, scheduler):
    X, y = blobs
    clf = mlp(optimizer=optimizer, scheduler=scheduler, lr=1e-2, epochs=8).fit(X, y)
    assert clf.score(X, y) > 0.8
    lrs = [r["lr"] for r in clf.history_]
    if scheduler is None:
        assert len(set(lrs)) == 1
    else:
        assert len(set(lrs)) > 1


def test_class_weight_and_sample_weight_shift_predictions(blobs):
    X, y = blobs
    base = mlp(epochs=4).fit(X, y).predict_proba(X)[:, 0].mean()
    weighted = mlp(epochs=4, class_weight={0: 20.0}).fit(X, y).predict_proba(X)[:, 0].mean()
    assert weighted > base
    w = np.where(y == 0, 20.0, 1.0)
    by_sample = mlp(epochs=4).fit(X, y, sample_weight=w).predict_proba(X)[:, 0].mean()
    assert by_sample > base
    balanced = mlp(class_weight="balanced").fit(X, y)
    assert balanced.score(X, y) > 0.8


def test_balanced_class_weights_count_samples_by_their_weight():
    # As LogisticRegression(class_weight="balanced"): a row of weight 0 is a
    # row dropped, a row of weight 2 a row repeated, for the class counts too.
    from sklearn.utils.class_weight import compute_class_weight

    from sktransfer.classifiers._targets import SingleLabel

    classes = np.array(["a", "b", "c"])
    encoded = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2])
    weights = np.array([0.0, 0.0, 1.0, 2.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    got = SingleLabel(classes, class_weight="balanced").sample_weights(encoded, weights)
    kept = np.repeat(np.arange(9), weights.astype(int))  # rows as many times as weighed
    per_class = compute_class_weight("balanced", classes=np.array([0, 1]), y=encoded[kept])
    np.testing.assert_allclose(got[weights > 0], (weights * per_class[np.minimum(encoded, 1)])[weights > 0])
    np.testing.assert_array_equal(got[weights == 0], 0.0)


def test_partial_fit_refuses_balanced_class_weights(blobs):
    # "balanced" would weigh each batch by its own class counts (SGDClassifier
    # refuses it too); a dict of weights applies to every batch alike
    X, y = blobs
    with pytest.raises(ValueError, match="class_weight='balanced' is not supported "
                                         "by partial_fit"):
        mlp(class_weight="balanced").partial_fit(X, y, classes=np.unique(y))
    mlp(class_weight={0: 2.0}).partial_fit(X, y, classes=np.unique(y))


@pytest.mark.parametrize("kind", ["classifier", "regressor", "multilabel"])
def test_early_stopping_weighs_the_validation_rows_as_the_loss_does(kind):
    # As MLPClassifier scores its held-out rows with their sample_weight: a row
    # of weight 0 does not count in valid_loss / valid_score, one of weight 2
    # counts twice.
    from sklearn.metrics import accuracy_score, r2_score

    from sktransfer import FineTuneRegressor
    from sktransfer.training import EarlyStopping
    from sktransfer.training._criteria import (BinaryCrossEntropy, CrossEntropy,
                                               RegressionLoss)

    rng = np.random.default_rng(0)
    outputs = rng.normal(size=(6, 3)).astype(np.float32)
    weights = np.array([0.0, 2.0, 1.0, 0.0, 1.0, 3.0])
    repeat = np.repeat(np.arange(6), weights.astype(int))
    if kind == "classifier":
        criterion, targets = CrossEntropy(), np.array([0, 1, 2, 2, 1, 0])
    elif kind == "regressor":
        criterion, targets = RegressionLoss(), rng.normal(size=(6, 3))
    else:
        criterion = BinaryCrossEntropy()
        targets = (rng.random((6, 3)) > 0.5).astype(np.float32)
    weighted = criterion.scores(outputs, targets, weights)
    repeated = criterion.scores(outputs[repeat], targets[repeat], np.ones(len(repeat)))
    assert weighted == pytest.approx(repeated)
    assert criterion.scores(outputs, targets, np.ones(6)) == pytest.approx(
        criterion.scores(outputs, targets, None))
    if kind == "classifier":
        assert repeated["valid_score"] == pytest.approx(
            accuracy_score(targets, outputs.argmax(1), sample_weight=weights))
    if kind == "regressor":
        assert repeated["valid_score"] == pytest.approx(
            r2_score(targets, outputs, sample_weight=weights))
    if kind == "multilabel":
        return
    # and a fit hands the held-out rows' weights to it: weights changed on
    # those rows alone leave the training as it was and change the scores
    X = rng.normal(size=(40, 4)).astype(np.float32)
    y = (np.arange(40) % 2) if kind == "classifier" else X[:, 0]
    Estimator = FineTuneRegressor if kind == "regressor" else FineTuneClassifier
    kw = dict(model=None, epochs=2, early_stopping=True, validation_fraction=0.5,
              hidden_layer_sizes=(8,), device="cpu", random_state=0)
    probe = Estimator(**kw)
    _, valid = probe._split(y if kind == "classifier" else None, probe._seed(),
                            np.arange(40))
    w = np.ones(40)
    w[valid] = np.where(np.arange(len(valid)) % 2, 0.0, 3.0)  # the training rows: 1
    # the last epoch's network, not the best one: the history_ row to compare
    last = [("early_stopping", EarlyStopping(load_best=False))]
    fitted = Estimator(**kw, callbacks=last).fit(X, y, sample_weight=w)
    with torch.no_grad():
        out = fitted.module_.eval()(torch.as_tensor(X[valid])).numpy()
    target = y[valid] if kind == "classifier" else (
        (y[valid] - fitted.mean_) / fitted.scale_)[:, None]
    for name, value in criterion.scores(out, target, w[valid]).items():
        assert fitted.history_[-1][name] == pytest.approx(value, rel=1e-5)
    # held-out rows that all weigh 0 have no validation loss: said before training
    w[valid] = 0.0
    with pytest.raises(ValueError, match=r"rows held out for early stopping \(validation_"
                                         r"fraction=0.5\) all have a sample_weight of 0"):
        Estimator(**kw).fit(X, y, sample_weight=w)


def test_label_smoothing_softens_probabilities(blobs):
    X, y = blobs
    sharp = mlp(epochs=20).fit(X, y).predict_proba(X).max(axis=1).mean()
    smooth = mlp(epochs=20, label_smoothing=0.3).fit(X, y).predict_proba(X).max(axis=1).mean()
    assert smooth < sharp


def test_early_stopping_keeps_best_epoch(blobs):
    X, y = blobs
    clf = mlp(epochs=50, early_stopping=True, patience=2, validation_fraction=0.25,
              lr=0.3, scheduler=None).fit(X, y)
    losses = [r["valid_loss"] for r in clf.history_]
    assert all(loss is not None for loss in losses)
    assert len(losses) < 50  # stopped early
    assert clf.history_[-1]["valid_score"] is not None


def test_grad_clip_and_bf16_precision(blobs):
    X, y = blobs
    clf = mlp(grad_clip=0.5, precision="bf16").fit(X, y)
    assert clf.score(X, y) > 0.8
    with pytest.raises(ValueError, match="fp16"):
        mlp(precision="fp16").fit(X, y)


def test_augment_default_and_callable():
    X, y = images_task()
    calls = []

    def flip(batch):
        calls.append(batch.shape)
        assert 0.0 <= float(batch.min()) and float(batch.max()) <= 1.0
        return batch.flip(-1)

    cnn(augment=flip, epochs=1).fit(X, y)
    assert len(calls) == 4 and calls[0][1:] == (3, 32, 32)
    from sktransfer.training._augment import DefaultAugment

    out = DefaultAugment()(torch.rand(5, 3, 16, 16))
    assert out.shape == (5, 3, 16, 16) and 0 <= out.min() and out.max() <= 1
    with pytest.raises(ValueError, match="augment"):
        cnn(augment="heavy").fit(X, y)


def test_keyboard_interrupt_keeps_last_finished_epoch():
    X, y = images_task()
    batches_per_epoch = 4
    count = [0]

    def interrupt_in_third_epoch(batch):
        count[0] += 1
        if count[0] == 2 * batches_per_epoch + 2:
            raise KeyboardInterrupt
        return batch

    interrupted = cnn(epochs=5, augment=interrupt_in_third_epoch, scheduler=None).fit(X, y)
    assert interrupted.interrupted_ and len(interrupted.history_) == 2
    two_epochs = cnn(epochs=2, augment=lambda b: b, scheduler=None).fit(X, y)
    np.testing.assert_allclose(interrupted.predict_proba(X), two_epochs.predict_proba(X),
                               rtol=1e-6, atol=1e-7)


def test_warm_start_and_partial_fit(blobs):
    X, y = blobs
    clf = mlp(epochs=2, warm_start=True).fit(X, y)
    clf.fit(X, y)
    assert [r["epoch"] for r in clf.history_] == [1, 2, 3, 4]
    inc = mlp()
    inc.partial_fit(X[:30], y[:30], classes=[0, 1, 2])
    inc.partial_fit(X[30:], y[30:])
    assert inc.n_iter_ == 2 and list(inc.classes_) == [0, 1, 2]
    with pytest.raises(ValueError, match="not in classes_"):
        inc.partial_fit(X[:5], np.full(5, 9))


def test_partial_fit_requires_classes_at_the_first_call(blobs, monkeypatch):
    import sktransfer.training._loop as loop

    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    X, y = blobs
    monkeypatch.setattr(loop.Trainer, "fit", no_training)
    with pytest.raises(ValueError, match="classes= is required at the first call"):
        mlp().partial_fit(X[:10], y[:10])


def test_joblib_round_trip_cpu(tmp_path):
    X, y = images_task()
    clf = cnn().fit(X, y)
    expected = clf.predict_proba(X)
    joblib.dump(clf, tmp_path / "clf.joblib")
    loaded = joblib.load(tmp_path / "clf.joblib")
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)
    state = clf.__getstate__()
    assert all(t.device.type == "cpu" for t in state["_module_state"].values())
    assert "module_" in vars(clf)  # pickling leaves the live estimator intact


def test_round_trip_does_not_need_the_checkpoint(tmp_path):
    from sktransfer.backbones import SimpleCNN

    torch.manual_seed(0)
    path = tmp_path / "pre.pth"
    torch.save(SimpleCNN().state_dict(), path)
    X, y = images_task()
    clf = cnn(weights=str(path)).fit(X, y)
    blob = pickle.dumps(clf)
    path.unlink()
    np.testing.assert_array_equal(pickle.loads(blob).predict(X), clf.predict(X))


def test_gridsearch_with_string_labels_and_cross_val():
    X, y = images_task(n_per_class=12)
    grid = GridSearchCV(cnn(epochs=2), {"lr": [1e-3, 1e-2]}, cv=2).fit(X, y)
    assert grid.best_params_["lr"] in (1e-3, 1e-2)
    assert set(grid.predict(X)) <= {"cat", "dog"}
    scores = cross_val_score(make_pipeline(StandardScaler(), mlp(epochs=20)),
                             *make_blobs(n_samples=60, random_state=0), cv=3)
    assert scores.mean() > 0.8


def test_pipeline_with_feature_extractor_then_mlp():
    X, y = images_task()
    pipe = make_pipeline(
        PretrainedFeatureExtractor(model="simple_cnn", weights=None, random_state=0,
                                   device="cpu"),
        FineTuneClassifier(model=None, epochs=20, lr=1e-2, device="cpu", random_state=0),
    )
    assert pipe.fit(X, y).score(X, y) >= 0.9


def test_other_image_size_is_resized_by_preprocessing():
    X, y = images_task(size=32)
    clf = cnn(image_size=24).fit(X, y)
    bigger = np.repeat(np.repeat(X, 2, axis=1), 2, axis=2)  # 64x64
    assert clf.predict(bigger).shape == (len(X),)
    with pytest.raises(ValueError, match="channels"):
        clf.predict(np.zeros((2, 32, 32, 2), np.uint8))


def test_verbose_prints_epoch_lines(blobs, capsys):
    X, y = blobs
    mlp(epochs=2, verbose=1).fit(X, y)
    out = capsys.readouterr().out
    assert out.count("train_loss") == 2


def test_the_epoch_line_names_what_the_validation_score_is(blobs, capsys):
    """Accuracy, R² or samples-F1, as the estimator's target makes it."""
    from sktransfer import FineTuneRegressor

    X, y = blobs
    fits = {"valid_acc": (mlp(), y), "valid_f1_samples": (mlp(), np.c_[y == 0, y == 1].astype(int)),
            "valid_r2": (FineTuneRegressor(model=None, device="cpu"), X[:, 0])}
    for label, (estimator, target) in fits.items():
        estimator.set_params(epochs=1, early_stopping=True, verbose=1).fit(X, target)
        lines = [line for line in capsys.readouterr().out.splitlines() if "train_loss" in line]
        assert len(lines) == 1 and f" {label} " in lines[0]
        assert sum(" valid_" + name in lines[0] for name in ("acc", "r2", "f1")) == 1


@pytest.mark.parametrize(
    "params, X_y, match",
    [
        (dict(), "one_class", "at least 2 classes"),
        (dict(), "length", "same length"),
        (dict(), "nan", "NaN"),
        (dict(freeze="half"), None, "freeze"),
        (dict(lr=0.0), None, "lr"),
        (dict(lr=-1.0), None, "lr"),
        (dict(epochs=0), None, "epochs"),
        (dict(optimizer="lbfgs"), None, "optimizer"),
        (dict(optimizer=dict), None, "optimizer"),
        (dict(scheduler="step"), None, "scheduler"),
        (dict(class_weight={"zebra": 2.0}), None, "class_weight"),
        (dict(validation_fraction=1.5), None, "validation_fraction"),
        (dict(model=42), None, "model"),
        (dict(hidden_layer_sizes=(0,)), None, "hidden_layer_sizes"),
        (dict(device="cuda:3"), None, "CUDA"),
    ],
)
def test_bad_input_is_refused_before_training(blobs, params, X_y, match, monkeypatch):
    X, y = blobs
    if X_y == "one_class":
        y = np.zeros_like(y)
    elif X_y == "length":
        y = y[:-1]
    elif X_y == "nan":
        X = X.copy()
        X[3, 1] = np.nan
    import sktransfer.training._loop as core

    def no_training(*args, **kwargs):
        raise AssertionError("training started before the input was checked")

    monkeypatch.setattr(core.Trainer, "fit", no_training)
    with pytest.raises(ValueError, match=match):
        mlp(**params).fit(X, y)


def test_flat_images_without_input_shape_are_refused():
    X, y = images_task()
    with pytest.raises(ValueError, match="input_shape"):
        cnn().fit(X.reshape(len(X), -1), y)
    clf = cnn(input_shape=(32, 32, 3)).fit(X.reshape(len(X), -1), y)
    assert clf.n_features_in_ == 32 * 32 * 3


def test_negative_sample_weight_is_refused(blobs):
    X, y = blobs
    weights = np.ones(len(y))
    weights[3] = -1.0
    with pytest.raises(ValueError, match="[Nn]egative"):
        mlp(epochs=1).fit(X, y, sample_weight=weights)


def test_partial_fit_refuses_other_classes_than_the_first_call(blobs):
    X, y = blobs
    classes = np.unique(y)
    clf = mlp().partial_fit(X, y, classes=classes)
    clf.partial_fit(X, y, classes=classes)  # the same classes again: fine
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X, y, classes=np.append(classes, classes.max() + 1))
    np.testing.assert_array_equal(clf.classes_, classes)


def test_verbose_shows_a_progress_bar_on_inference(blobs, capsys):
    X, y = blobs
    clf = mlp(epochs=1, batch_size=16).fit(X, y)
    capsys.readouterr()
    clf.predict_proba(X)
    assert capsys.readouterr().err == ""  # quiet by default
    clf.set_params(verbose=1)
    for method, name in [(clf.predict, "predict"), (clf.predict_proba, "predict"),
                         (clf.transform, "transform")]:
        method(X)
        err = capsys.readouterr().err
        assert f"FineTuneClassifier.{name}" in err and "8/8" in err


def test_a_refused_class_weight_leaves_a_fitted_classifier_as_it_was():
    X = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    clf = FineTuneClassifier(model=None, epochs=1, random_state=0, device="cpu")
    clf.fit(X, np.array([0, 1, 2] * 10))
    before = clf.predict(X)
    with pytest.raises(ValueError, match=r"class_weight names classes \[7\]"):
        clf.set_params(class_weight={7: 2.0}).fit(X, np.array(["a", "b", "c"] * 10))
    assert clf.classes_.tolist() == [0, 1, 2]  # not the refused fit's labels
    np.testing.assert_array_equal(clf.predict(X), before)


def test_a_last_batch_of_one_image_is_left_out_so_batchnorm_trains():
    """17 images in batches of 8 left one image alone in the last batch, which a
    BatchNorm over a 1x1 map (here after global pooling) cannot normalise in
    training mode: torch's "Expected more than 1 value per channel". That row
    sits the epoch out (another row each epoch); 16 or 18 rows are unchanged."""
    class PooledBN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)
            self.pool = torch.nn.AdaptiveAvgPool2d(1)
            self.norm = torch.nn.BatchNorm2d(4)

        def forward(self, x):
            return self.norm(self.pool(self.conv(x)))

    from sktransfer.training import Callback

    class CountBatches(Callback):
        def __init__(self, counts):
            self.counts = counts

        def on_batch_end(self, state, **kwargs):
            self.counts.append(state.epoch)

        def __deepcopy__(self, memo):
            return self

    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (18, 16, 16, 3), dtype=np.uint8)
    y = np.arange(18) % 2
    for n, per_epoch in ((17, 2), (16, 2), (18, 3)):
        counts = []
        clf = FineTuneClassifier(model=PooledBN(), batch_size=8, epochs=2, device="cpu",
                                 random_state=0, callbacks=[CountBatches(counts)])
        clf.fit(X[:n], y[:n])
        assert counts == [0] * per_epoch + [1] * per_epoch, n


def test_ctrl_c_before_the_first_epoch_ends_leaves_the_estimator_as_it_was(blobs, capsys):
    """No epoch finished: no model to keep. The KeyboardInterrupt goes through
    (it left an estimator that predicted from its random head); a continued
    fit keeps the model it started from."""
    from sklearn.exceptions import NotFittedError

    from tiny_fits import InterruptAt, mlp

    X, y = blobs
    clf = mlp(epochs=3, verbose=1, callbacks=[InterruptAt(epoch=0, batch=1)])
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, y)
    assert "interrupted before the first epoch finished: no model to keep" \
        in capsys.readouterr().out
    with pytest.raises(NotFittedError):
        clf.predict(X)
    fitted = mlp(epochs=2).fit(X, y)
    before = fitted.predict_proba(X)
    fitted.set_params(warm_start=True, callbacks=[InterruptAt(epoch=2, batch=1)])
    fitted.fit(X, y)
    assert fitted.interrupted_ and len(fitted.history_) == 2
    np.testing.assert_array_equal(fitted.predict_proba(X), before)


def test_fp16_predicts_in_float32_on_a_cpu_and_refuses_to_train_there(blobs, monkeypatch):
    """A model fitted on a GPU in fp16 could not predict where there is none
    ("precision='fp16' needs a GPU"); training in fp16 on a CPU is refused
    before the network is built."""
    import sktransfer.classifiers._base as base

    from tiny_fits import mlp

    X, y = blobs
    clf = mlp(epochs=2).fit(X, y)
    expected = clf.predict_proba(X)
    clf.set_params(precision="fp16")  # as a GPU fit in fp16 would be
    np.testing.assert_array_equal(clf.predict_proba(X), expected)

    def no_network(*args, **kwargs):
        raise AssertionError("the network was built before the precision was checked")

    monkeypatch.setattr(base, "mlp_backbone", no_network)
    with pytest.raises(ValueError, match="precision='fp16' needs a GPU"):
        mlp(precision="fp16").fit(X, y)


def test_a_continued_fit_refuses_another_image_size():
    from tiny_fits import cnn, images_task

    X, y = images_task()
    clf = cnn(epochs=1).fit(X, y)
    clf.set_params(warm_start=True, image_size=24)
    with pytest.raises(ValueError, match=r"image_size=24 changes the preprocessing the "
                                         r"model was fitted with \(images resized to 16, "
                                         r"cropped to \(16, 16\)\)"):
        clf.fit(X, y)
    assert clf.set_params(image_size=16).fit(X, y).n_iter_ == 2


@pytest.mark.parametrize("partial", [False, True])
def test_a_continued_fit_refuses_other_hidden_layer_sizes(blobs, partial):
    # The MLP of flat input is built once: a continued fit that silently kept
    # the first fit's layers would report a model the user did not ask for.
    from tiny_fits import mlp

    X, y = blobs
    clf = mlp(epochs=1, hidden_layer_sizes=(8,)).fit(X, y)
    clf.set_params(warm_start=True, hidden_layer_sizes=[16, 4])
    with pytest.raises(ValueError, match=r"hidden_layer_sizes=\[16, 4\] changes the "
                                         r"network the model was fitted with \(hidden "
                                         r"layers \(8,\)\)"):
        clf.partial_fit(X, y) if partial else clf.fit(X, y)
    assert clf.set_params(hidden_layer_sizes=[8]).fit(X, y).n_iter_ == 2


@pytest.mark.parametrize("partial", [False, True])
@pytest.mark.parametrize("regressor", [False, True])
def test_a_continued_fit_refuses_another_model(partial, regressor):
    # set_params(model=...) before a warm fit kept training the first network
    # silently; get_params then described another one, and the fitted model
    # pickled but could not be unpickled (the rebuild follows the parameters).
    import pickle

    from torch import nn

    from sktransfer import FineTuneRegressor
    from tiny_fits import cnn, images_task

    X, y = images_task()
    first = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    params = dict(model=first, weights=None, image_size=16, epochs=1, batch_size=8,
                  device="cpu", random_state=0)
    clf = (FineTuneRegressor(**params).fit(X, y.astype(float)) if regressor
           else cnn(**params).fit(X, y))
    target = y.astype(float) if regressor else y
    expected = clf.predict(X)
    clf.set_params(warm_start=True, model=nn.Sequential(
        nn.Conv2d(3, 6, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()))
    with pytest.raises(ValueError, match=r"the parameters \(model=Sequential, and "
                                         r"image_size, which sizes it\) build another "
                                         r"network than the fitted one: 'backbone.body.0."
                                         r"bias' is \(6,\) as the parameters build it and "
                                         r"\(4,\) in the fitted network"):
        clf.partial_fit(X, target) if partial else clf.fit(X, target)
    np.testing.assert_array_equal(clf.predict(X), expected)  # left as it was
    # said before any input is read (a missing file would be named otherwise)
    with pytest.raises(ValueError, match=r"build another network than the fitted one"):
        clf.partial_fit(["no/such/image.png"], target[:1]) if partial else \
            clf.fit(["no/such/image.png"], target[:1])
    # the same shapes, another layer: unpickled, the model would be that other network
    clf.set_params(model=nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveMaxPool2d(1),
                                       nn.Flatten()))
    with pytest.raises(ValueError, match=r"'backbone.body.1' is AdaptiveMaxPool2d as the "
                                         r"parameters build it and AdaptiveAvgPool2d in "
                                         r"the fitted network"):
        clf.partial_fit(X, target) if partial else clf.fit(X, target)
    clf.set_params(model=first)
    clf.partial_fit(X, target) if partial else clf.fit(X, target)
    assert clf.n_iter_ == 2
    assert pickle.loads(pickle.dumps(clf)).predict(X).shape == expected.shape


def test_a_validation_fraction_that_empties_a_side_is_said_in_the_package_words(blobs):
    from tiny_fits import mlp

    X, y = blobs
    with pytest.raises(ValueError, match="validation_fraction=0.99 leaves an empty "
                                         "training or validation set for 12 samples"):
        mlp(early_stopping=True, validation_fraction=0.99).fit(X[:12], y[:12])


def test_fits_in_threads_give_what_they_give_alone():
    # torch's global generator is shared by a process's threads: seeded builds
    # and trainings in joblib's "threading" backend drew from each other's
    # state, and the same random_state gave other models (other features).
    from joblib import Parallel, delayed
    from sklearn.base import clone

    from sktransfer import PretrainedFeatureExtractor

    images = np.random.default_rng(0).integers(0, 256, size=(4, 16, 16, 3), dtype=np.uint8)
    extractor = PretrainedFeatureExtractor(model="resnet18", weights=None, image_size=16,
                                           device="cpu", random_state=0)
    alone = clone(extractor).fit_transform(images)
    X, y = np.random.default_rng(1).normal(size=(40, 6)).astype(np.float32), np.arange(40) % 2
    clf = mlp(hidden_layer_sizes=(64, 64), epochs=2)
    clf_alone = clone(clf).fit(X, y).predict_proba(X)
    jobs = [delayed(lambda: clone(extractor).fit_transform(images))() for _ in range(4)]
    jobs += [delayed(lambda: clone(clf).fit(X, y).predict_proba(X))() for _ in range(4)]
    results = Parallel(n_jobs=4, backend="threading")(jobs)
    for features in results[:4]:
        np.testing.assert_array_equal(features, alone)
    for proba in results[4:]:
        np.testing.assert_array_equal(proba, clf_alone)


def test_a_class_weight_dict_may_name_a_class_whose_rows_weigh_nothing():
    from sktransfer.classifiers._targets import SingleLabel

    target = SingleLabel(np.array([0, 1, 2]), class_weight={2: 5.0})
    encoded = np.array([0, 1, 2, 2])
    weights = target.sample_weights(encoded, np.array([1.0, 1.0, 0.0, 0.0]))
    np.testing.assert_array_equal(weights, [1.0, 1.0, 0.0, 0.0])
    # and a batch of partial_fit without a class the dict names
    target = SingleLabel(np.array([0, 1, 2]), class_weight={0: 1.0, 1: 2.0})
    np.testing.assert_array_equal(target.sample_weights(np.array([0, 2]), np.ones(2)),
                                  [1.0, 1.0])


def test_predictions_in_another_thread_leave_a_seeded_fit_as_it_is_alone(tmp_path):
    # A DataLoader draws its base seed from torch's global generator: a predict
    # on files in one thread advanced the generator that a seeded fit with
    # dropout in another thread draws from.
    import threading

    from PIL import Image

    X = np.random.default_rng(0).integers(0, 256, size=(16, 16, 16, 3), dtype=np.uint8)
    y = np.arange(16) % 2
    paths = []
    for i, image in enumerate(X):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(image).save(paths[-1])

    def make():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(768, 32),
                                      torch.nn.Dropout(0.5))
        return FineTuneClassifier(model=net, weights=None, image_size=16, epochs=3,
                                  batch_size=4, device="cpu", random_state=0, augment=None)

    alone = make().fit(X, y).predict_proba(X)
    other = make().fit(X, y)
    stop = threading.Event()

    def predicting():
        while not stop.is_set():
            other.predict(paths)

    thread = threading.Thread(target=predicting)
    thread.start()
    try:
        beside = [make().fit(X, y).predict_proba(X) for _ in range(3)]
    finally:
        stop.set()
        thread.join()
    for proba in beside:
        np.testing.assert_array_equal(proba, alone)

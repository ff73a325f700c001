"""What ``"auto"`` stands for on a text backbone (``classifiers/_text_defaults``),
and that a value the user set is kept."""

import warnings

import numpy as np
import pytest

from sktransfer import (DomainAdaptClassifier, DomainAdaptRegressor, FineTuneClassifier,
                        FineTuneRegressor)
from sktransfer.classifiers._text_defaults import (
    ADAPT_EPOCHS, FEW_STEPS, FINETUNE_EPOCHS, TEXT_ADAPT_STEPS, TEXT_FINETUNE_STEPS,
    auto_adapt_epochs, auto_backbone_lr_ratio, auto_finetune_epochs)
from sktransfer.training import Callback

from text_models import sentiment_texts, write_tiny_bert


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return "hf:" + str(write_tiny_bert(tmp_path_factory.mktemp("tiny_bert")))


def test_auto_ratio_per_modality_and_steps():
    few, many = FEW_STEPS - 1, FEW_STEPS
    assert auto_backbone_lr_ratio("image", pretrained=True) == 0.1  # images unchanged
    assert auto_backbone_lr_ratio("image", pretrained=True, steps=few) == 0.1
    # a language model in a fit of few steps trains at a larger share, below the head
    assert 0.1 < auto_backbone_lr_ratio("text", pretrained=True, steps=few) < 1.0
    # with more steps, or unscheduled steps (partial_fit), at the tenth
    assert auto_backbone_lr_ratio("text", pretrained=True, steps=many) == 0.1
    assert auto_backbone_lr_ratio("text", pretrained=True, steps=None) == 0.1
    for modality in ("image", "text"):
        assert auto_backbone_lr_ratio(modality, pretrained=False, steps=few) == 1.0
    with pytest.raises(ValueError, match="modality='audio'"):
        auto_backbone_lr_ratio("audio", pretrained=True)


@pytest.mark.parametrize("estimator", [FineTuneClassifier, FineTuneRegressor,
                                       DomainAdaptClassifier])
def test_estimators_resolve_auto_by_the_backbone_they_name(estimator):
    # Resolved from ``model``, ``weights`` and the steps alone: nothing is loaded.
    few = auto_backbone_lr_ratio("text", pretrained=True, steps=1)
    assert estimator(model="all-MiniLM-L6-v2")._backbone_lr_ratio(steps=1) == few
    assert estimator(model="hf:some/repo")._backbone_lr_ratio(steps=1) == few
    assert estimator(model="all-MiniLM-L6-v2")._backbone_lr_ratio(steps=500) == 0.1
    assert estimator(model="all-MiniLM-L6-v2", weights=None)._backbone_lr_ratio(steps=1) == 1.0
    # (an adapting fit of an image backbone has its own rule, tested below)
    supervised = {"method": "source_only"} if estimator is DomainAdaptClassifier else {}
    assert estimator(model="efficientnet_lite0", **supervised)._backbone_lr_ratio(steps=1) == 0.1
    assert estimator(model="resnet18", weights=None)._backbone_lr_ratio() == 1.0
    assert estimator(model=None)._backbone_lr_ratio(steps=1) == 1.0


@pytest.mark.parametrize("ratio", [0.1, 1.0, 0.0])
def test_a_ratio_the_user_set_is_kept_on_text(ratio):
    assert FineTuneClassifier(model="all-MiniLM-L6-v2",
                              backbone_lr_ratio=ratio)._backbone_lr_ratio() == ratio


class _Rates(Callback):
    """Records each parameter group's learning rate when the fit begins (on the
    class: a fit trains with a copy of its callbacks)."""

    seen = {}

    def on_fit_begin(self, state, **kwargs):
        type(self).seen = {group["name"]: group["lr"]
                           for group in state.optimizer.param_groups}


@pytest.mark.parametrize("ratio, epochs", [("auto", 1), ("auto", 20), (0.1, 1)])
def test_a_text_fit_trains_the_transformer_at_the_resolved_rate(tiny_bert, ratio, epochs):
    X, y = sentiment_texts(16)  # 2 batches of 8: 2 steps an epoch
    _Rates.seen = {}
    FineTuneClassifier(model=tiny_bert, epochs=epochs, batch_size=8, lr=1e-3,
                       scheduler=None, backbone_lr_ratio=ratio, device="cpu",
                       random_state=0, callbacks=[("rates", _Rates())]).fit(X, y)
    expected = (auto_backbone_lr_ratio("text", pretrained=True, steps=2 * epochs)
                if ratio == "auto" else ratio)
    assert (expected > 0.1) == (ratio == "auto" and epochs == 1)
    assert _Rates.seen["head"] == pytest.approx(1e-3)
    assert _Rates.seen["backbone"] == pytest.approx(1e-3 * expected)


def test_auto_adapt_epochs_rule():
    for modality in ("image", "tabular"):
        for n_batches in (1, 7, 500):
            assert auto_adapt_epochs(modality, pretrained=modality == "image",
                                     n_batches=n_batches) == ADAPT_EPOCHS == 30
    assert auto_adapt_epochs("text", pretrained=False, n_batches=63) == 30
    # a pretrained language model: whole epochs within the step budget, >= 1, <= 30
    assert TEXT_ADAPT_STEPS == 64
    assert auto_adapt_epochs("text", pretrained=True, n_batches=63) == 1  # 2,000 texts
    assert auto_adapt_epochs("text", pretrained=True, n_batches=5000) == 1
    assert auto_adapt_epochs("text", pretrained=True, n_batches=7) == 9
    assert auto_adapt_epochs("text", pretrained=True, n_batches=1) == 30
    with pytest.raises(ValueError, match="modality='audio'"):
        auto_adapt_epochs("audio", pretrained=True, n_batches=1)


@pytest.mark.parametrize("estimator", [DomainAdaptClassifier, DomainAdaptRegressor])
def test_adapting_fits_resolve_auto_epochs_from_their_batches(tiny_bert, estimator):
    texts, labels = sentiment_texts(16)
    assert estimator().epochs == "auto"
    if estimator is DomainAdaptRegressor:
        labels = labels.astype(float)
        target = np.full(16, np.nan)
    else:
        target = -np.ones(16, dtype=int)
    # 16 labeled texts at batch 2: 8 steps an epoch, so 64 // 8 = 8 epochs.
    fitted = estimator(model=tiny_bert, method="coral", batch_size=2, lr=1e-4,
                       device="cpu", random_state=0).fit(
        list(texts) + list(texts), np.concatenate([labels, target]))
    assert fitted.n_iter_ == len(fitted.history_) == TEXT_ADAPT_STEPS // 8
    assert fitted.epochs == "auto"  # the parameter is left as set
    # flat rows: thirty epochs, as before the rule
    X = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    y = np.r_[np.arange(10) % 2, -np.ones(10, dtype=int)] if estimator is \
        DomainAdaptClassifier else np.r_[np.arange(10.0), np.full(10, np.nan)]
    flat = estimator(model=None, method="coral", device="cpu", random_state=0).fit(X, y)
    assert flat.n_iter_ == ADAPT_EPOCHS


def test_auto_finetune_epochs_aim_at_a_step_budget_for_a_language_model():
    assert FINETUNE_EPOCHS == 10 and TEXT_FINETUNE_STEPS == 120
    for modality in ("image", "tabular"):
        assert auto_finetune_epochs(modality, pretrained=True, n_batches=1) == 10
    assert auto_finetune_epochs("text", pretrained=False, n_batches=1) == 10
    # a pretrained language model: about 120 steps, at least 3 and at most 30 epochs
    assert auto_finetune_epochs("text", pretrained=True, n_batches=1) == 30  # 8 per class
    assert auto_finetune_epochs("text", pretrained=True, n_batches=4) == 30  # 64 per class
    assert auto_finetune_epochs("text", pretrained=True, n_batches=8) == 15
    assert auto_finetune_epochs("text", pretrained=True, n_batches=16) == 8
    assert auto_finetune_epochs("text", pretrained=True, n_batches=63) == 3  # 2,000 texts
    assert auto_finetune_epochs("text", pretrained=True, n_batches=5000) == 3
    with pytest.raises(ValueError, match="modality='audio'"):
        auto_finetune_epochs("audio", pretrained=True, n_batches=1)


@pytest.mark.parametrize("estimator", [FineTuneClassifier, FineTuneRegressor])
def test_supervised_fits_resolve_auto_epochs_from_their_batches(tiny_bert, estimator):
    texts, labels = sentiment_texts(16)
    assert estimator().epochs == "auto"
    labels = labels.astype(float) if estimator is FineTuneRegressor else labels
    # 16 labeled texts at batch 2: 8 steps an epoch, so 120 / 8 = 15 epochs.
    fitted = estimator(model=tiny_bert, batch_size=2, lr=1e-4, device="cpu",
                       random_state=0).fit(list(texts), labels)
    assert fitted.n_iter_ == len(fitted.history_) == 15
    assert fitted.epochs == "auto"  # the parameter is left as set
    X = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    flat = estimator(model=None, device="cpu", random_state=0).fit(X, np.arange(20) % 2)
    assert flat.n_iter_ == FINETUNE_EPOCHS  # flat rows (and images): ten, as before


@pytest.mark.parametrize("value", ["many", 0, 2.5])
def test_bad_epochs_are_refused_naming_them(value):
    X = np.zeros((4, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="epochs"):
        DomainAdaptClassifier(model=None, epochs=value).fit(X, [0, 1, -1, -1])
    with pytest.raises(ValueError, match="epochs"):
        FineTuneClassifier(model=None, epochs=value).fit(X, [0, 1, 0, 1])


def test_an_adapting_fit_trains_a_pretrained_image_backbone_at_the_head_rate():
    # The rule: image + pretrained + adapting -> 1.0; a language model keeps its rule.
    assert auto_backbone_lr_ratio("image", pretrained=True, adapting=True) == 1.0
    assert auto_backbone_lr_ratio("image", pretrained=True, steps=500, adapting=False) == 0.1
    assert auto_backbone_lr_ratio("text", pretrained=True, steps=500, adapting=True) == 0.1
    assert auto_backbone_lr_ratio("image", pretrained=False, adapting=True) == 1.0
    # The estimators: every adapting method (a user's loss too), not source_only,
    # not the supervised estimators.
    for method in ("self_training", "mmd", "dann", lambda fs, ls, ft, lt: 0.0):
        for estimator in (DomainAdaptClassifier, DomainAdaptRegressor):
            if estimator is DomainAdaptRegressor and method == "self_training":
                continue
            clf = estimator(model="efficientnet_lite0", method=method)
            assert clf._backbone_lr_ratio(steps=500) == 1.0
            assert estimator(model="all-MiniLM-L6-v2",
                             method=method)._backbone_lr_ratio(steps=500) == 0.1
    for estimator in (DomainAdaptClassifier, DomainAdaptRegressor):
        assert estimator(model="efficientnet_lite0",
                         method="source_only")._backbone_lr_ratio(steps=500) == 0.1
        assert estimator(model="efficientnet_lite0", method="mmd",
                         backbone_lr_ratio=0.1)._backbone_lr_ratio(steps=500) == 0.1
    assert FineTuneClassifier(model="efficientnet_lite0")._backbone_lr_ratio(steps=500) == 0.1


def test_auto_epochs_warn_when_the_warm_up_covers_the_whole_fit(tiny_bert):
    texts, labels = sentiment_texts(16)
    X, y = list(texts) * 2, np.concatenate([labels, -np.ones(16, dtype=int)])
    common = dict(model=tiny_bert, method="coral", batch_size=2, lr=1e-4, device="cpu",
                  random_state=0, unfreeze_after=TEXT_ADAPT_STEPS // 8)  # 8 epochs
    with pytest.warns(UserWarning, match='epochs="auto" is 8 epoch.*only the head trains'):
        DomainAdaptClassifier(**common).fit(X, y)
    with warnings.catch_warnings():  # a number the user chose: as asked, no warning
        warnings.filterwarnings("error", message="epochs=", category=UserWarning)
        DomainAdaptClassifier(epochs=8, **common).fit(X, y)
